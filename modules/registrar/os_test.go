package registrar

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/client/regtest"
	"github.com/gridnode/gridnode/node/fact"
)

// The uptime report says which release the node runs, the channel it
// follows and, after a failed trial, the version it rolled back from (the
// upgrade module's fact); the node record carries the hardware's GPUs.
func TestReportsReleaseAndGPUs(t *testing.T) {
	n := newNode(t, false)
	old := runningVersion
	runningVersion = func() (string, error) { return "0.2.0", nil }
	t.Cleanup(func() { runningVersion = old })
	gpu := fact.GPU{Address: "0000:01:00.0", Vendor: "ATI", Model: "Rage 128", VendorID: "1002", DeviceID: "5046", Class: "030000"}
	must(t, fact.Write("hardware", map[string]any{
		"cru": 2, "mru": 1 << 30, "sru": 8 << 30, "hru": 0, "virtualized": true, "gpus": []fact.GPU{gpu},
		"nics": []map[string]any{{"name": "eth0", "mac": "52:54:00:12:34:56", "physical": true}},
	}))
	must(t, fact.Write(fact.NameUpgrade, fact.Upgrade{Running: "0.2.0", RolledBack: true, RolledBackFrom: "0.3.0"}))
	_ = n

	reg := regtest.New()
	var mu sync.Mutex
	var created []byte
	h := reg.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/nodes") {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			created = b
			mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	s := &sleeper{auto: true}
	start(t, srv.URL, farm(t, srv.URL), s)
	f := waitFact(t, "reporting", func(f fact.Registrar) bool { return f.UptimeSent >= 1 })
	s.setAuto(false)

	ups := reg.Uptimes(f.NodeID)
	if len(ups) == 0 {
		t.Fatal("no uptime report")
	}
	want := api.OSState{OSVersion: "0.2.0", Channel: "stable", RolledBack: true, RolledBackFrom: "0.3.0"}
	if ups[0].OSState != want {
		t.Errorf("uptime report says %+v, want %+v", ups[0].OSState, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Contains(created, []byte(`"gpus":[{"address":"0000:01:00.0","vendor":"ATI"`)) {
		t.Errorf("POST /nodes sent %s, want the GPU", created)
	}
}

// A registrar that does not answer is unreachable (no verdict on the
// node); one that refuses the node is not.
func TestUnreachableWhenDown(t *testing.T) {
	newNode(t, true)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	url := "http://" + l.Addr().String()
	l.Close()
	s := &sleeper{auto: true}
	start(t, url, 1, s)
	waitFact(t, "unreachable", func(f fact.Registrar) bool { return f.State == fact.RegError && f.Unreachable })
}

func TestRefusedIsNotUnreachable(t *testing.T) {
	newNode(t, true)
	s := &sleeper{auto: true}
	reg := regtest.New()
	srv := reg.Start()
	defer srv.Close()
	start(t, srv.URL, 4242, s) // no such farm: 404 when creating the node
	waitFact(t, "refused, not unreachable", func(f fact.Registrar) bool {
		return f.State == fact.RegError && strings.Contains(f.LastError, "404") && !f.Unreachable
	})
	for code, want := range map[int]bool{http.StatusServiceUnavailable: true, http.StatusTooManyRequests: true, http.StatusForbidden: false, http.StatusBadRequest: false} {
		if got := unreachable(&client.Error{Status: code}); got != want {
			t.Errorf("unreachable(%d) = %v, want %v", code, got, want)
		}
	}
}
