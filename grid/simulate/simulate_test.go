package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/client/regtest"
)

func TestStorm(t *testing.T) {
	reg := regtest.New()
	srv := reg.Start()
	defer srv.Close()
	res, err := Run(context.Background(), Config{Registrar: srv.URL, Nodes: 200, Concurrency: 32})
	if err != nil {
		t.Fatal(err)
	}
	if res.Registered != 200 || res.Failed != 0 || reg.NodeCount() != 200 || reg.AccountCount() != 201 || reg.UptimeCount() != 200 {
		t.Fatalf("registered %d failed %d (%v); registrar has %d nodes, %d accounts, %d uptimes", res.Registered, res.Failed, res.Errors, reg.NodeCount(), reg.AccountCount(), reg.UptimeCount())
	}
	for _, op := range []string{OpAccount, OpNodeLookup, OpNodeCreate, OpUptime} {
		o := res.Ops[op]
		if o.Count != 200 || o.Errors != 0 || o.P50MS <= 0 || o.P50MS > o.P90MS || o.P90MS > o.P99MS || o.P99MS > o.MaxMS {
			t.Errorf("%s: %+v", op, o)
		}
	}
	// Text and JSON forms.
	var txt, js bytes.Buffer
	if err := res.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(txt.String(), "registered 200, failed 0") || !strings.Contains(txt.String(), "node_create") {
		t.Fatalf("text:\n%s", txt.String())
	}
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Registered != 200 || back.Ops[OpUptime].Count != 200 || bytes.Count(js.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("json line %s: %v", js.String(), err)
	}

	// Running the same nodes again finds them: no new node, and resuming
	// from index 200 adds the next ones, in the same farm.
	res, err = Run(context.Background(), Config{Registrar: srv.URL, Nodes: 50, Concurrency: 8})
	if err != nil || res.Registered != 50 || reg.NodeCount() != 200 || res.Ops[OpNodeCreate].Count != 0 {
		t.Fatalf("rerun: %+v, %v; %d nodes", res, err, reg.NodeCount())
	}
	res, err = Run(context.Background(), Config{Registrar: srv.URL, Nodes: 50, StartIndex: 200, Concurrency: 8, AssumeNew: true})
	if err != nil || res.Registered != 50 || reg.NodeCount() != 250 || res.FarmID != 1 {
		t.Fatalf("resume: %+v, %v; %d nodes", res, err, reg.NodeCount())
	}
	if _, ok := res.Ops[OpNodeLookup]; ok {
		t.Error("assume-new looked nodes up")
	}
	// AssumeNew on nodes that exist falls back to lookups.
	res, err = Run(context.Background(), Config{Registrar: srv.URL, Nodes: 10, Concurrency: 4, AssumeNew: true})
	if err != nil || res.Registered != 10 || reg.NodeCount() != 250 {
		t.Fatalf("assume-new on old nodes: %+v, %v", res, err)
	}
}

func TestErrorsByStatus(t *testing.T) {
	reg := regtest.New()
	var n atomic.Int64
	reg.Fail = func(r *http.Request) (int, string) {
		if strings.HasSuffix(r.URL.Path, "/uptime") && n.Add(1)%4 == 0 {
			return http.StatusTooManyRequests, "slow down"
		}
		if r.Method == http.MethodPost && r.URL.Path == "/api/v1/nodes" && n.Add(1)%10 == 0 {
			return http.StatusBadRequest, "no"
		}
		return 0, ""
	}
	srv := reg.Start()
	defer srv.Close()
	res, err := Run(context.Background(), Config{Registrar: srv.URL, Nodes: 100, Concurrency: 16, Retries: 5})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors["uptime 429"] == 0 || res.Errors["node_create 400"] == 0 {
		t.Fatalf("errors %v", res.Errors)
	}
	// 429 is retried; 400 is not.
	if res.Failed != res.Errors["node_create 400"] || res.Registered+res.Failed != 100 {
		t.Fatalf("registered %d failed %d errors %v", res.Registered, res.Failed, res.Errors)
	}
}

func TestSteady(t *testing.T) {
	reg := regtest.New()
	srv := reg.Start()
	defer srv.Close()
	res, err := Run(context.Background(), Config{Registrar: srv.URL, Nodes: 50, Mode: Steady, Rate: 50, Duration: 2 * time.Second, Concurrency: 16})
	if err != nil {
		t.Fatal(err)
	}
	up := res.Ops[OpUptime]
	// About 100 reports in the two seconds, never more; a loaded machine
	// (the race detector, other builds) may make fewer.
	if up.Count < 25 || up.Count > 102 || up.Errors != 0 || res.TargetRate != 50 {
		t.Fatalf("steady: %+v, %.1f/s, errors %v", up, res.UptimePerS, res.Errors)
	}
	if got := reg.UptimeCount(); got != 50+int(up.Count) {
		t.Fatalf("registrar has %d uptimes, want %d", got, 50+up.Count)
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i)*time.Millisecond, false)
	}
	q := h.quantiles(0.5, 0.9, 0.99)
	for i, want := range []time.Duration{500 * time.Millisecond, 900 * time.Millisecond, 990 * time.Millisecond} {
		if d := q[i] - want; d < 0 || d > want/40 {
			t.Errorf("quantile %d: %v, want %v (+2.5%%)", i, q[i], want)
		}
	}
	if time.Duration(h.max.Load()) != time.Second {
		t.Errorf("max %v", time.Duration(h.max.Load()))
	}
}

func TestKeysDeterministic(t *testing.T) {
	a := &sim{cfg: Config{Seed: "x"}}
	b := &sim{cfg: Config{Seed: "x"}}
	c := &sim{cfg: Config{Seed: "y"}}
	if !a.key(7).Equal(b.key(7)) || a.key(7).Equal(a.key(8)) || a.key(7).Equal(c.key(7)) {
		t.Fatal("keys are not a function of seed and index")
	}
}

// BenchmarkStorm measures the simulator's own cost per registered node
// (account, node, uptime) against the in-memory registrar.
func BenchmarkStorm(b *testing.B) {
	reg := regtest.New()
	srv := reg.Start()
	defer srv.Close()
	b.ReportAllocs()
	b.ResetTimer()
	res, err := Run(context.Background(), Config{Registrar: srv.URL, Nodes: b.N, Concurrency: 64, AssumeNew: true})
	if err != nil || res.Registered != uint64(b.N) {
		b.Fatalf("%+v %v", res, err)
	}
}
