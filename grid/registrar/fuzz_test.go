package registrar

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
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
		`{"relays":null,"rmb_enc_key":7}`, "\x00\xff", `{"a":` + string(bytes.Repeat([]byte("["), 1000))} {
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
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("X-Auth %q: %d %s", h, w.Code, w.Body)
		}
		if w.Code < 300 && h != valid {
			t.Fatalf("X-Auth %q accepted: %d", h, w.Code)
		}
		_, _, _, _, err := api.ParseAuthHeader(h)
		if err != nil && w.Code != http.StatusBadRequest && h != "" {
			t.Fatalf("malformed X-Auth %q answered %d, want 400", h, w.Code)
		}
	})
	_ = node
}
