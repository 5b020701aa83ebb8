package registrar

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/grid/registrar/store/storetest"
	"github.com/gridnode/gridnode/internal/testutil"
)

// Issue 14: what a hostile client sends to a public registrar.

// A node's resources are bounded: one above the bound is refused with 400
// naming the field and the bound, and nothing is stored; the grid's totals,
// the dashboard and /metrics keep working whatever the store holds.
func TestResourceBounds(t *testing.T) {
	for _, o := range storetest.Stores() {
		t.Run(o.Name, func(t *testing.T) {
			e := newEnv(t, o.Open(t), Config{})
			farmer := e.account()
			farm := e.farm(farmer, "bounds")
			tw := e.account()
			b := nodeBody(tw, farm)
			b.Resources.HRU = 1<<63 - 1
			got := e.expect(400, "POST", "/api/v1/nodes", b, tw, nil)
			if !strings.Contains(string(got), "resources.hru") || !strings.Contains(string(got), "16 PiB") {
				t.Fatalf("over-bound hru: %s; want the field and the bound named", got)
			}
			b.Resources.HRU, b.Resources.CRU = api.MaxHRU, api.MaxCRU+1
			if got := e.expect(400, "POST", "/api/v1/nodes", b, tw, nil); !strings.Contains(string(got), "resources.cru") {
				t.Fatalf("over-bound cru: %s", got)
			}
			if ns, err := e.st.Nodes(context.Background(), store.NodeFilter{TwinID: tw.id}); err != nil || len(ns) != 0 {
				t.Fatalf("a refused node was stored: %+v, %v", ns, err)
			}
			b.Resources = api.Resources{CRU: api.MaxCRU, MRU: api.MaxMRU, SRU: api.MaxSRU, HRU: api.MaxHRU}
			id := e.node(tw, farm)
			upd := api.UpdateNode{FarmID: farm, Resources: api.Resources{MRU: api.MaxMRU + 1}, Location: b.Location, Interfaces: b.Interfaces, SerialNumber: "SN-1"}
			if got := e.expect(400, "PATCH", fmt.Sprintf("/api/v1/nodes/%d", id), upd, tw, nil); !strings.Contains(string(got), "resources.mru") {
				t.Fatalf("over-bound mru in a PATCH: %s", got)
			}

			// Nodes stored before the bounds existed, with what used to
			// make the sums overflow (SQLite: "integer overflow";
			// PostgreSQL: "bigint out of range").
			for range 3 {
				huge := e.account()
				if _, err := e.st.CreateNode(context.Background(), api.Node{FarmID: farm, TwinID: huge.id, SerialNumber: "old", Interfaces: b.Interfaces,
					Resources: api.Resources{CRU: 1<<63 - 1, MRU: 1<<63 - 1, SRU: 1<<63 - 1, HRU: 1<<63 - 1}}); err != nil {
					t.Fatal(err)
				}
			}
			s, err := e.st.Stats(context.Background(), time.Now().Add(-api.OnlineWindow))
			if err != nil {
				t.Fatalf("Stats with huge nodes stored: %v", err)
			}
			if s.Capacity.HRU != 1<<64-1 || s.Capacity.CRU != 1<<64-1 {
				t.Fatalf("capacity %+v; want the sums saturated at the largest uint64", s.Capacity)
			}
			e.expect(200, "GET", "/", nil, nil, nil)
			got = e.expect(200, "GET", "/metrics", nil, nil, nil)
			if !strings.Contains(string(got), "registrar_nodes 4\n") {
				t.Fatalf("/metrics with huge nodes stored lacks registrar_nodes 4: %s", got)
			}
		})
	}
}

// Names, serials, locations, interfaces, addresses, relays and keys are
// bounded: 400 naming the field.
func TestFieldBounds(t *testing.T) {
	e := newEnv(t, storetest.SQLite().Open(t), Config{})
	farmer := e.account()
	farm := e.farm(farmer, "fields")
	tw := e.account()
	for want, change := range map[string]func(*api.CreateNode){
		"serial_number: 129 bytes":     func(b *api.CreateNode) { b.SerialNumber = strings.Repeat("s", 129) },
		"location.city: 129 bytes":     func(b *api.CreateNode) { b.Location.City = strings.Repeat("c", 129) },
		"control character":            func(b *api.CreateNode) { b.SerialNumber = "\x1b]0;owned\a" },
		"interfaces: 65 interfaces":    func(b *api.CreateNode) { b.Interfaces = make([]api.Interface, 65) },
		"more than 256 addresses":      func(b *api.CreateNode) { b.Interfaces[0].IPs = make(api.IPs, 257) },
		"interfaces[0].name: 65 bytes": func(b *api.CreateNode) { b.Interfaces[0].Name = strings.Repeat("e", 65) },
	} {
		b := nodeBody(tw, farm)
		change(&b)
		if got := e.expect(400, "POST", "/api/v1/nodes", b, tw, nil); !strings.Contains(string(got), want) {
			t.Errorf("node body answered %s; want %q", got, want)
		}
	}
	req := api.NewAccount(newKey(), time.Now())
	req.Relays = make([]string, api.MaxRelays+1)
	if got := e.expect(400, "POST", "/api/v1/accounts", req, nil, nil); !strings.Contains(string(got), "relays: 17 relays") {
		t.Errorf("account with 17 relays: %s", got)
	}
	req.Relays, req.RMBEncKey = nil, strings.Repeat("k", api.MaxRMBEncKey+1)
	if got := e.expect(400, "POST", "/api/v1/accounts", req, nil, nil); !strings.Contains(string(got), "rmb_enc_key") {
		t.Errorf("account with a long rmb_enc_key: %s", got)
	}
	if got := e.expect(400, "PATCH", fmt.Sprintf("/api/v1/accounts/%d", tw.id), api.UpdateAccount{Relays: []string{strings.Repeat("r", 257)}}, tw, nil); !strings.Contains(string(got), "relays[0]") {
		t.Errorf("PATCH with a long relay: %s", got)
	}
	if got := e.expect(400, "GET", "/api/v1/nodes?size=1001", nil, nil, nil); !strings.Contains(string(got), "1 to 1000") {
		t.Errorf("a page of 1001: %s", got)
	}
}

// Forged X-Auth headers naming a victim twin (any timestamp, any
// signature) cost the victim nothing: its bucket is charged only once its
// signature is verified.
func TestForgedAuthDoesNotDrainVictim(t *testing.T) {
	e := newEnv(t, storetest.SQLite().Open(t), Config{RatePerTwin: 1, BurstPerTwin: 2})
	victim := e.account()
	forger := &twin{key: newKey(), id: victim.id}
	path := fmt.Sprintf("/api/v1/accounts/%d", victim.id)
	for range 20 {
		if got, b := e.call("PATCH", path, api.UpdateAccount{}, forger, nil); got != 401 {
			t.Fatalf("forged request: %d %s, want 401", got, b)
		}
	}
	e.expect(200, "PATCH", path, api.UpdateAccount{}, victim, nil)
	e.expect(200, "PATCH", path, api.UpdateAccount{}, victim, nil)
	// The victim's own requests are still limited.
	e.expect(429, "PATCH", path, api.UpdateAccount{}, victim, nil)
}

// One key has one account: the other spellings of its base64 that lenient
// decoders accept are refused, and lookups in any spelling find the one
// account.
func TestOneKeyOneAccount(t *testing.T) {
	for _, o := range storetest.Stores() {
		t.Run(o.Name, func(t *testing.T) {
			e := newEnv(t, o.Open(t), Config{})
			k := newKey()
			pub := k.Public().(ed25519.PublicKey)
			pub[31] &^= 3 // not the key k signs with; only the spelling matters below
			_, k2, _ := ed25519.GenerateKey(nil)
			for k2.Public().(ed25519.PublicKey)[31]&3 != 0 {
				_, k2, _ = ed25519.GenerateKey(nil)
			}
			canon := api.PublicKey(k2.Public().(ed25519.PublicKey))
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
			spellings := []string{
				canon[:20] + "\n" + canon[20:],
				canon[:42] + string(alphabet[strings.IndexByte(alphabet, canon[42])|1]) + "=",
				canon[:42] + string(alphabet[strings.IndexByte(alphabet, canon[42])|2]) + "=",
				canon + "\r\n",
			}
			create := func(spelled string) (int, []byte) {
				ts := time.Now().Unix()
				sig := ed25519.Sign(k2, api.AccountMessage(ts, spelled))
				return e.call("POST", "/api/v1/accounts", api.CreateAccount{Timestamp: ts, PublicKey: spelled, Signature: base64.StdEncoding.EncodeToString(sig)}, nil, nil)
			}
			var a api.Account
			e.expect(201, "POST", "/api/v1/accounts", api.NewAccount(k2, time.Now()), nil, &a)
			for _, s := range spellings {
				if got, b := create(s); got != 400 || !strings.Contains(string(b), "canonical") {
					t.Errorf("account for %q (the same key spelled otherwise): %d %s; want 400 naming the canonical form", s, got, b)
				}
			}
			st, _ := e.st.Stats(context.Background(), time.Now())
			if st.Accounts != 1 {
				t.Fatalf("%d accounts for one key", st.Accounts)
			}
			var got api.Account
			for _, s := range spellings[:2] {
				e.expect(200, "GET", "/api/v1/accounts?public_key="+strings.NewReplacer("+", "%2B", "\n", "%0A", "/", "%2F").Replace(s), nil, nil, &got)
				if got.TwinID != a.TwinID {
					t.Fatalf("lookup of %q found twin %d, want %d", s, got.TwinID, a.TwinID)
				}
			}
			_ = http.StatusOK
		})
	}
}

// strictSend sends a strict request with the headers given (a capture, to
// replay) and returns the status and body.
func strictSend(t *testing.T, url, method, path string, body []byte, xa, xs string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url+path, bytes.NewReader(body))
	req.Header.Set(api.HeaderAuth, xa)
	req.Header.Set(api.HeaderAuthStrict, xs)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A strict request accepted by one registrar is refused when replayed to
// another on the same database (PostgreSQL: replicas behind a load
// balancer), and to a registrar started afresh on it (a restart).
func TestStrictReplayAcrossReplicas(t *testing.T) {
	for _, o := range storetest.Stores() {
		t.Run(o.Name, func(t *testing.T) {
			o.Fresh(t)
			e1 := newEnv(t, o.Reopen(t), Config{StrictAuth: true})
			e2 := newEnv(t, o.Reopen(t), Config{StrictAuth: true})
			tw := e1.account()
			path := fmt.Sprintf("/api/v1/accounts/%d", tw.id)
			body := []byte(`{"relays":["r"],"rmb_enc_key":"k"}`)
			xa, xs := api.StrictAuthHeaders(tw.key, tw.id, time.Now(), []byte("0123456789abcdef"), "PATCH", path, body)
			if got, b := strictSend(t, e1.url, "PATCH", path, body, xa, xs); got != 200 {
				t.Fatalf("strict request: %d %s", got, b)
			}
			if got, b := strictSend(t, e2.url, "PATCH", path, body, xa, xs); got != 401 || !strings.Contains(b, "replay") {
				t.Fatalf("replayed to the other replica: %d %s; want 401 replayed", got, b)
			}
			e3 := newEnv(t, o.Reopen(t), Config{StrictAuth: true}) // started after the request
			if got, b := strictSend(t, e3.url, "PATCH", path, body, xa, xs); got != 401 || !strings.Contains(b, "replay") {
				t.Fatalf("replayed to a registrar started since: %d %s; want 401 replayed", got, b)
			}
		})
	}
}

// after=ID pages by key: the records after ID in id order, with the other
// filters; page/size keeps its reference meaning; both together are 400.
func TestKeysetPaging(t *testing.T) {
	for _, o := range storetest.Stores() {
		t.Run(o.Name, func(t *testing.T) {
			e := newEnv(t, o.Open(t), Config{})
			farmer := e.account()
			f1, f2 := e.farm(farmer, "keyset1"), e.farm(farmer, "keyset2")
			var in1 []uint64
			for i := range 7 {
				f := f1
				if i%3 == 2 {
					f = f2
				}
				id := e.node(e.account(), f)
				if f == f1 {
					in1 = append(in1, id)
				}
			}
			ids := func(q string) []uint64 {
				t.Helper()
				var ns []api.Node
				e.expect(200, "GET", "/api/v1/nodes?"+q, nil, nil, &ns)
				var out []uint64
				for _, n := range ns {
					out = append(out, n.NodeID)
				}
				return out
			}
			var walked []uint64
			for after := uint64(0); ; {
				page := ids(fmt.Sprintf("farm_id=%d&size=2&after=%d", f1, after))
				walked = append(walked, page...)
				if len(page) < 2 {
					break
				}
				after = page[len(page)-1]
			}
			if fmt.Sprint(walked) != fmt.Sprint(in1) {
				t.Fatalf("farm %d walked by after: %v, want %v", f1, walked, in1)
			}
			if got := ids(fmt.Sprintf("farm_id=%d&size=2&page=2", f1)); fmt.Sprint(got) != fmt.Sprint(in1[2:4]) {
				t.Fatalf("page 2: %v, want %v", got, in1[2:4])
			}
			e.expect(400, "GET", "/api/v1/nodes?page=2&after=1", nil, nil, nil)
			e.expect(400, "GET", "/api/v1/nodes?after=x", nil, nil, nil)
			var fs []api.Farm
			e.expect(200, "GET", fmt.Sprintf("/api/v1/farms?after=%d", f1), nil, nil, &fs)
			if len(fs) != 1 || fs[0].FarmID != f2 {
				t.Fatalf("farms after %d: %+v", f1, fs)
			}
		})
	}
}

// Every answer, errors and the dashboard included, names the extensions:
// after always, strict-auth only when strict signatures are required.
func TestExtensionsHeader(t *testing.T) {
	st := storetest.SQLite().Open(t)
	for _, strict := range []bool{false, true} {
		e := newEnv(t, st, Config{StrictAuth: strict})
		for _, path := range []string{"/api/v1/farms", "/v1/nodes/99999", "/api/v1/nowhere", "/", "/metrics"} {
			resp, err := http.Get(e.url + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if !api.HasExtension(resp.Header, api.ExtAfter) || api.HasExtension(resp.Header, api.ExtStrictAuth) != strict {
				t.Errorf("strict %v, GET %s: %s: %q", strict, path, api.HeaderExtensions, resp.Header.Values(api.HeaderExtensions))
			}
		}
	}
}

// Nonces are forgotten once past their keep, by the registrar itself.
func TestNoncesForgotten(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	st := storetest.SQLite().Open(t)
	e := newEnv(t, st, Config{StrictAuth: true, Now: clock, SampleEvery: 10 * time.Millisecond})
	tw := e.account()
	path := fmt.Sprintf("/api/v1/accounts/%d", tw.id)
	body := []byte(`{}`)
	xa, xs := api.StrictAuthHeaders(tw.key, tw.id, now, []byte("0123456789abcdef"), "PATCH", path, body)
	if got, b := strictSend(t, e.url, "PATCH", path, body, xa, xs); got != 200 {
		t.Fatalf("strict request: %d %s", got, b)
	}
	nonce := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	if fresh, _ := st.UseNonce(context.Background(), tw.id, nonce, now.Add(time.Hour)); fresh {
		t.Fatal("the nonce of an accepted request is not recorded")
	}
	mu.Lock()
	now = now.Add(3 * time.Hour)
	mu.Unlock()
	testutil.Eventually(t, 10*time.Second, func() bool {
		fresh, _ := st.UseNonce(context.Background(), tw.id, nonce, now.Add(-time.Hour))
		return fresh
	}, "the registrar did not forget a nonce past its keep")
}
