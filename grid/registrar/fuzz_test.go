package registrar

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store/storetest"
)

// fuzzServer is a registrar with one account, farm and node, so that bodies
// reach the decoding of authenticated routes.
func fuzzServer(f *testing.F) (*Server, *twin, uint64) {
	st := storetest.SQLite().Open(f)
	srv := New(Config{Store: st, AdminTwin: 1})
	f.Cleanup(func() { srv.Close() })
	hs := httptest.NewServer(srv)
	f.Cleanup(hs.Close)
	e := &env{t: f, url: hs.URL, srv: srv, st: st}
	tw := e.account()
	farm := e.farm(tw, "fuzzfarm")
	return srv, tw, e.node(tw, farm)
}

// FuzzDecode sends arbitrary bodies to every route that decodes one: the
// answer must never be a 5xx.
func FuzzDecode(f *testing.F) {
	srv, tw, node := fuzzServer(f)
	_ = node
	routes := []struct{ method, path string }{
		{"POST", "/api/v1/accounts"}, {"PATCH", "/api/v1/accounts/1"}, {"POST", "/api/v1/farms"},
		{"PATCH", "/api/v1/farms/1"}, {"POST", "/api/v1/nodes"}, {"PATCH", "/api/v1/nodes/1"},
		{"POST", "/api/v1/nodes/1/uptime"}, {"PUT", "/api/v1/zos/version"}, {"POST", "/api/v1/nodes/1/approve"},
	}
	for _, s := range []string{``, `{}`, `null`, `[]`, `{"farm_name":"a","twin_id":1,"stellar_address":"G"}`,
		`{"twin_id":1,"farm_id":1,"interfaces":[{"name":"e","mac":"m","ips":"1.2.3.4/5.6.7.8"}],"serial_number":"s","resources":{"cru":18446744073709551615}}`,
		`{"uptime":-1,"timestamp":1e99}`, `{"version":"e30="}`, `{"timestamp":1,"public_key":"AAAA","signature":"AAAA"}`,
		`{"relays":null,"rmb_enc_key":7}`, "\x00\xff", `{"a":` + string(bytes.Repeat([]byte("["), 1000)),
		// Issue 14: resources past their bounds, long and escaping strings,
		// too many interfaces, keys spelled otherwise.
		`{"twin_id":1,"farm_id":1,"interfaces":[{"name":"e"}],"serial_number":"s","resources":{"hru":9223372036854775807,"cru":8193}}`,
		`{"farm_id":1,"interfaces":[{"name":"e","ips":["` + strings.Repeat("1", 100) + `"]}],"serial_number":"\u001b[2J"}`,
		`{"farm_id":1,"interfaces":[` + strings.Repeat(`{},`, 70) + `{}],"serial_number":"s","location":{"city":"` + strings.Repeat("c", 200) + `"}}`,
		`{"timestamp":1,"public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=","signature":"AAAA"}`,
		`{"timestamp":1,"public_key":"AAAAAAAAAAAAAAAAAAAA\nAAAAAAAAAAAAAAAAAAAAAAA=","signature":"AAAA","relays":["` + strings.Repeat("r", 300) + `"]}`,
		`{"relays":[` + strings.Repeat(`"r",`, 20) + `"r"],"rmb_enc_key":"k"}`} {
		for i := range routes {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := routes[int(route)%len(routes)]
		req := httptest.NewRequest(rt.method, rt.path, bytes.NewReader(body))
		req.Header.Set(api.HeaderAuth, api.AuthHeader(tw.key, tw.id, time.Now()))
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, rt.path, body, w.Code, w.Body)
		}
	})
}

// FuzzAuthHeader sends arbitrary X-Auth values: the answer is 400 or 401
// (never 5xx, never a success unless the header is a valid signature).
func FuzzAuthHeader(f *testing.F) {
	srv, tw, node := fuzzServer(f)
	valid := api.AuthHeader(tw.key, tw.id, time.Now())
	for _, s := range []string{"", ":", "a:b", valid, valid + "x", "MTox:" + valid[len(valid)-88:], "::::", "MTIzOjQ1Ng==:AAAA",
		"OTk5OTk5OTk5OTk5OTk5OTk5OTk5Ojk5OTk5OTk5OTk5OTk5OTk5OTk5OQ==:" + valid[len(valid)-88:]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		req := httptest.NewRequest("POST", "/api/v1/nodes/1/uptime", bytes.NewReader([]byte(`{"uptime":1,"timestamp":`+strconv.FormatInt(time.Now().Unix(), 10)+`}`)))
		req.Header.Set(api.HeaderAuth, h)
		code := fuzzServe(t, srv, req, api.HeaderAuth, h, valid)
		_, _, _, _, err := api.ParseAuthHeader(h)
		if err != nil && code != http.StatusBadRequest && h != "" {
			t.Fatalf("malformed X-Auth %q answered %d, want 400", h, code)
		}
	})
	_ = node
}

// FuzzStrictAuth sends arbitrary X-Auth-Strict values with a valid X-Auth
// to a strict registrar: the answer is 400 or 401, never 5xx, never a
// success unless the value is the request's valid strict signature.
func FuzzStrictAuth(f *testing.F) {
	st := storetest.SQLite().Open(f)
	srv := New(Config{Store: st, StrictAuth: true})
	f.Cleanup(func() { srv.Close() })
	hs := httptest.NewServer(srv)
	f.Cleanup(hs.Close)
	e := &env{t: f, url: hs.URL, srv: srv, st: st}
	tw := e.account()
	path := "/api/v1/accounts/" + strconv.FormatUint(tw.id, 10)
	body := []byte(`{"relays":[]}`)
	now := time.Now()
	xa, valid := api.StrictAuthHeaders(tw.key, tw.id, now, []byte("fuzz-nonce-seed!"), "PATCH", path, body)
	for _, s := range []string{"", ":", "a:b", valid, valid + "x", "AAAAAAAAAAA=:" + valid[strings.IndexByte(valid, ':')+1:],
		strings.Repeat("A", 200) + ":" + valid[strings.IndexByte(valid, ':')+1:], "ZnV6ei1ub25jZS1zZWVkIQ==:AAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		req := httptest.NewRequest("PATCH", path, bytes.NewReader(body))
		req.Header.Set(api.HeaderAuth, xa)
		req.Header.Set(api.HeaderAuthStrict, h)
		fuzzServe(t, srv, req, api.HeaderAuthStrict, h, valid)
	})
}

// fuzzServe serves req and fails t on a 5xx, or on a success when the value
// of the header under test is not the valid one. It returns the status.
func fuzzServe(t *testing.T, srv *Server, req *http.Request, header, value, valid string) int {
	t.Helper()
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	if w.Code >= 500 {
		t.Fatalf("%s %q: %d %s", header, value, w.Code, w.Body)
	}
	if w.Code < 300 && value != valid {
		t.Fatalf("%s %q accepted: %d", header, value, w.Code)
	}
	return w.Code
}
