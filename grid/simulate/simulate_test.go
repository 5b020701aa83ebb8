package simulate

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"path/filepath"
	"reflect"
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

// A storm keeps the ids (KeepIDs), calls OnCheckpoint as the count grows,
// and a steady run given those ids (Known) registers nothing and reports
// for the very nodes the storm made.
func TestKnownIDsAndCheckpoints(t *testing.T) {
	reg := regtest.New()
	srv := reg.Start()
	defer srv.Close()
	var seen []int
	res, err := Run(context.Background(), Config{Registrar: srv.URL, Nodes: 100, Concurrency: 8, AssumeNew: true, KeepIDs: true, KeepKeys: true,
		Checkpoints: []int{50, 10, 100}, OnCheckpoint: func(n int, _ time.Duration) { seen = append(seen, n) }})
	if err != nil || res.Registered != 100 || res.IDs == nil || len(res.IDs.Nodes) != 100 || res.RegisterS <= 0 {
		t.Fatalf("storm: %+v, %v", res, err)
	}
	if len(seen) != 3 || seen[0] < 10 || seen[1] < 50 || seen[2] != 100 {
		t.Fatalf("checkpoints called at %v, want at 10, 50 and 100 registered", seen)
	}
	distinct := map[uint64]bool{}
	for i, id := range res.IDs.Nodes {
		if id == 0 || res.IDs.Twins[i] == 0 || distinct[id] {
			t.Fatalf("node %d: twin %d node %d", i, res.IDs.Twins[i], id)
		}
		distinct[id] = true
	}

	// The keys kept are the keys the seed gives.
	probe := &sim{cfg: Config{Seed: "gridnode-simulate"}}
	for _, i := range []int{0, 57, 99} {
		if !ed25519.PrivateKey(res.IDs.keys[i*64 : (i+1)*64]).Equal(probe.key(i)) {
			t.Fatalf("kept key %d is not the derived one", i)
		}
	}
	// And a run given them uses them (same nodes, no error).
	kept := res.IDs
	r2, err := Run(context.Background(), Config{Registrar: srv.URL, Nodes: 100, Mode: Steady, Known: kept, Rate: 200, Duration: 300 * time.Millisecond, Concurrency: 4})
	if err != nil || r2.Known != 100 || r2.Ops[OpUptime].Errors != 0 || r2.Ops[OpUptime].Count == 0 {
		t.Fatalf("steady with kept keys: %+v, %v", r2, err)
	}

	// Through a file, as `gridnode simulate --ids` does.
	path := filepath.Join(t.TempDir(), "ids")
	cfg := Config{Registrar: srv.URL, Nodes: 100}
	if err := SaveIDs(path, cfg, res.IDs); err != nil {
		t.Fatal(err)
	}
	known, err := LoadIDs(path, cfg)
	if err != nil || !reflect.DeepEqual(known.Nodes, res.IDs.Nodes) || !reflect.DeepEqual(known.Twins, res.IDs.Twins) || known.keys != nil {
		t.Fatalf("LoadIDs: %v", err)
	}
	if _, err := LoadIDs(path, Config{Registrar: srv.URL, Nodes: 100, Seed: "other"}); err == nil || !strings.Contains(err.Error(), "seed") {
		t.Fatalf("ids of another seed: %v", err)
	}
	if k, err := LoadIDs(path, Config{Registrar: srv.URL, Nodes: 40}); err != nil || len(k.Nodes) != 40 {
		t.Fatalf("fewer nodes than the file: %v", err)
	}

	before := reg.UptimeCount()
	res, err = Run(context.Background(), Config{Registrar: srv.URL, Nodes: 100, Mode: Steady, Known: known, Rate: 100, Duration: time.Second, Concurrency: 8})
	if err != nil || res.Known != 100 || res.Registered != 0 {
		t.Fatalf("steady with known ids: %+v, %v", res, err)
	}
	if _, ok := res.Ops[OpAccount]; ok {
		t.Fatal("steady with known ids made accounts")
	}
	if up := res.Ops[OpUptime]; up.Count == 0 || up.Errors != 0 || reg.UptimeCount() != before+int(up.Count) {
		t.Fatalf("uptime with known ids: %+v, errors %v", up, res.Errors)
	}
}

// Paced reports count their latency from when they were due: a registrar
// that stalls shows in the percentiles of the reports that waited for it,
// not only in the one it held. A negative rate is a closed loop.
func TestSteadyLatencyFromDue(t *testing.T) {
	reg := regtest.New()
	stall := make(chan struct{})
	var held atomic.Bool
	reg.Fail = func(r *http.Request) (int, string) {
		if strings.HasSuffix(r.URL.Path, "/uptime") && held.CompareAndSwap(false, true) {
			<-stall // the registrar stalls on one report
		}
		return 0, ""
	}
	srv := reg.Start()
	defer srv.Close()
	held.Store(true) // no stall while the nodes register
	res, err := Run(context.Background(), Config{Registrar: srv.URL, Nodes: 20, Concurrency: 4, KeepIDs: true})
	if err != nil {
		t.Fatal(err)
	}
	held.Store(false)
	time.AfterFunc(300*time.Millisecond, func() { close(stall) }) // the stall lasts 300 ms
	res, err = Run(context.Background(), Config{Registrar: srv.URL, Nodes: 20, Mode: Steady, Known: res.IDs, Rate: 100, Duration: time.Second, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	up := res.Ops[OpUptime]
	// About 30 reports were due during the stall; counted from their due
	// time, a tenth of them at least waited over 100 ms.
	if up.Count < 20 || up.P90MS < 100 {
		t.Fatalf("paced through a stall: %+v; want p90 ≥ 100 ms", up)
	}

	res, err = Run(context.Background(), Config{Registrar: srv.URL, Nodes: 20, Mode: Steady, Known: res.IDs, Rate: -1, Duration: 300 * time.Millisecond, Concurrency: 2})
	var txt bytes.Buffer
	res.WriteText(&txt)
	if err != nil || res.TargetRate >= 0 || res.Ops[OpUptime].Count == 0 || !strings.Contains(txt.String(), "closed loop") {
		t.Fatalf("closed loop: %+v, %v\n%s", res, err, txt.String())
	}
}
