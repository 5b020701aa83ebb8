package supervisor

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/node/fact"
)

// TestReadyDespiteClockStep: a module whose fact carries a time before its
// own start (the clock was stepped back a day in between) is ready all
// the same, and its dependant starts: readiness reads no clock.
func TestReadyDespiteClockStep(t *testing.T) {
	b := newBench(t)
	s, _ := b.start([]Service{b.svc("network", "backdated"), b.svc("registrar", "daemon", "network")}, Options{})
	waitFor(t, "registrar ready after network", func() bool { return s.Status()["registrar"].State == fact.StateReady })
	fi, err := os.Stat(fact.Folder(b.run).Path("network"))
	if err != nil {
		t.Fatal(err)
	}
	if age := time.Since(fi.ModTime()); age < 23*time.Hour {
		t.Fatalf("the network fact is stamped %s ago, want a day: the test does not test what it says", age)
	}
}

// TestRestartIsNotReadyUntilItSays: after a restart the module is ready
// again only when its new process says so; the fact left by the process
// before, or written again, does not make it ready.
func TestRestartIsNotReadyUntilItSays(t *testing.T) {
	b := newBench(t)
	s, _ := b.start([]Service{b.svc("twice", "twice")}, Options{BackoffMin: time.Millisecond})
	waitFor(t, "the second process republished", func() bool {
		for _, l := range s.Lines("twice") {
			if l == "republished" {
				return true
			}
		}
		return false
	})
	if st := s.Status()["twice"]; st.State != fact.StateStarting || st.Restarts != 1 {
		t.Fatalf("second process, fact republished but not said ready: %+v, want starting after 1 restart", st)
	}
	os.WriteFile(b.rec+".go", nil, 0o644)
	waitFor(t, "ready again", func() bool { return s.Status()["twice"].State == fact.StateReady })
}

// TestGracePerService: a service with a grace of its own gets it at
// shutdown; the others get the supervisor's.
func TestGracePerService(t *testing.T) {
	b := newBench(t)
	long := b.svc("long", "stubborn")
	long.Grace = 300 * time.Millisecond
	s, stop := b.start([]Service{long, b.svc("short", "stubborn")}, Options{Grace: 50 * time.Millisecond})
	waitFor(t, "both ready", func() bool {
		st := s.Status()
		return st["long"].State == fact.StateReady && st["short"].State == fact.StateReady
	})
	t0 := time.Now()
	stop()
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("shutdown took %s, less than the long service's grace", d)
	}
	out := b.console.String()
	for _, want := range []string{"supervisor: short did not stop within 50ms: killing it", "supervisor: long did not stop within 300ms: killing it"} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
}

func TestNewNeedsFacts(t *testing.T) {
	t.Parallel()
	_, err := New([]Service{{Name: "a", Argv: []string{"x"}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "Options.Facts") {
		t.Errorf("New without a fact folder: %v", err)
	}
}

// TestStopBatches: the node's modules stop dependants first; the console,
// which nothing needs, with the first.
func TestStopBatches(t *testing.T) {
	t.Parallel()
	deps := map[string][]string{
		"console": nil, "hardware": nil, "storage": {"hardware"}, "identity": {"storage"},
		"network": {"hardware"}, "registrar": {"network", "identity", "hardware"},
	}
	order, err := topo(deps)
	if err != nil {
		t.Fatal(err)
	}
	dependants := map[string][]string{}
	for n, ds := range deps {
		for _, d := range ds {
			dependants[d] = append(dependants[d], n)
		}
	}
	got := fmt.Sprint(stopBatches(order, dependants))
	if want := "[[registrar console] [network identity] [storage] [hardware]]"; got != want {
		t.Errorf("stop batches %s, want %s (order %v)", got, want, order)
	}
}
