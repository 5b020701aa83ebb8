package registrar

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
)

// env is a registrar on loopback over one store, and a tiny client.
type env struct {
	t   testing.TB
	url string
	srv *Server
	st  store.Store
}

func newEnv(t testing.TB, st store.Store, cfg Config) *env {
	cfg.Store = st
	srv := New(cfg)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &env{t: t, url: hs.URL, srv: srv, st: st}
}

// twin is a key with its account.
type twin struct {
	key ed25519.PrivateKey
	id  uint64
}

func newKey() ed25519.PrivateKey {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	return k
}

// call sends method path with body (JSON-encoded unless []byte or nil),
// signed by tw when not nil, and decodes the answer into out when not nil.
func (e *env) call(method, path string, body any, tw *twin, out any) (int, []byte) {
	e.t.Helper()
	return e.callH(method, path, body, tw, nil, out)
}

func (e *env) callH(method, path string, body any, tw *twin, hdr http.Header, out any) (int, []byte) {
	e.t.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case []byte:
		b = v
	default:
		b, _ = json.Marshal(v)
	}
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	if tw != nil {
		req.Header.Set(api.HeaderAuth, api.AuthHeader(tw.key, tw.id, time.Now()))
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(rb, out); err != nil {
			e.t.Fatalf("%s %s: decoding %q: %v", method, path, rb, err)
		}
	}
	return resp.StatusCode, rb
}

// expect checks the status of a call.
func (e *env) expect(want int, method, path string, body any, tw *twin, out any) []byte {
	e.t.Helper()
	got, b := e.call(method, path, body, tw, out)
	if got != want {
		e.t.Fatalf("%s %s: status %d (%s), want %d", method, path, got, bytes.TrimSpace(b), want)
	}
	return b
}

func (e *env) account() *twin {
	e.t.Helper()
	k := newKey()
	var a api.Account
	e.expect(201, "POST", "/api/v1/accounts", api.NewAccount(k, time.Now()), nil, &a)
	return &twin{key: k, id: a.TwinID}
}

var stellar = "GA" + "BCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGHIJKLMNOPQRSTUVW"

func (e *env) farm(tw *twin, name string) uint64 {
	e.t.Helper()
	var f api.FarmID
	e.expect(201, "POST", "/api/v1/farms", api.CreateFarm{FarmName: name, TwinID: tw.id, StellarAddress: stellar}, tw, &f)
	return f.FarmID
}

func nodeBody(tw *twin, farm uint64) api.CreateNode {
	return api.CreateNode{TwinID: tw.id, FarmID: farm, SerialNumber: "SN-1",
		Resources:  api.Resources{CRU: 4, MRU: 8 << 30, SRU: 512 << 30, HRU: 2 << 40},
		Location:   api.Location{Country: "BE", City: "Gent", Longitude: "3.72", Latitude: "51.05"},
		Interfaces: []api.Interface{{Name: "eth0", Mac: "52:54:00:12:34:56", IPs: api.IPs{"10.0.2.15/24"}}}}
}

func (e *env) node(tw *twin, farm uint64) uint64 {
	e.t.Helper()
	var n api.NodeID
	e.expect(201, "POST", "/api/v1/nodes", nodeBody(tw, farm), tw, &n)
	return n.NodeID
}
