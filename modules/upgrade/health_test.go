package upgrade

import (
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/node/fact"
)

// A trial is healthy only when every module is ready, the registrar took
// a report (or is unreachable in the second half of the deadline) and the
// workloads that ran before the jump run again.
func TestHealthy(t *testing.T) {
	ready := func(names ...string) fact.Modules {
		m := fact.Modules{}
		for _, n := range names {
			m[n] = fact.Module{State: fact.StateReady}
		}
		return m
	}
	all := ready("console", "hardware", "network", "registrar", "storage", "upgrade")
	now := time.Now()
	reported := &fact.Registrar{State: fact.RegRegistered, LastUptime: &now}
	down := &fact.Registrar{State: fact.RegError, Unreachable: true, LastError: "registrar http://x unreachable: connection refused"}
	refused := &fact.Registrar{State: fact.RegError, LastError: "registrar http://x answered 401"}
	wl := func(states ...string) *fact.Workloads {
		w := &fact.Workloads{}
		for i, s := range states {
			w.Workloads = append(w.Workloads, fact.WorkloadState{Owner: 1, Deployment: "web", Workload: string(rune('a' + i)), State: s})
		}
		return w
	}
	restarting := ready("console", "hardware", "network", "registrar", "storage", "upgrade")
	restarting["network"] = fact.Module{State: fact.StateRestarting}
	noRegistrar := ready("console", "hardware", "network", "storage", "upgrade")
	selfStarting := ready("console", "hardware", "network", "registrar", "storage")
	selfStarting["upgrade"] = fact.Module{State: fact.StateStarting}

	for _, c := range []struct {
		name     string
		v        view
		ok       bool
		waiting  string
		hopeless bool
	}{
		{"all ready, reported", view{modules: all, registrar: reported}, true, "", false},
		{"itself not ready yet", view{modules: selfStarting, registrar: reported, self: "upgrade"}, true, "", false},
		{"no module states", view{registrar: reported}, false, "the supervisor's module states", false},
		{"a module restarting", view{modules: restarting, registrar: reported}, false, "module network (restarting)", false},
		{"no report yet", view{modules: all, registrar: &fact.Registrar{State: fact.RegRegistering}}, false, "an uptime report the registrar accepts", false},
		{"refused by the registrar", view{modules: all, registrar: refused, elapsed: 9, deadline: 10}, false, "answered 401", false},
		{"registrar down, first half", view{modules: all, registrar: down, elapsed: 4, deadline: 10}, false, "unreachable", false},
		{"registrar down, second half", view{modules: all, registrar: down, elapsed: 5, deadline: 10}, true, "", false},
		{"registrar not run", view{modules: noRegistrar, registrar: reported}, false, "does not run", true},
		{"workloads run again", view{modules: all, registrar: reported, workloads: wl(fact.WorkloadRunning, fact.WorkloadExited)}, true, "", false},
		{"a workload pulling", view{modules: all, registrar: reported, workloads: wl(fact.WorkloadRunning, fact.WorkloadPulling)}, false, "workload 1/web/b (pulling)", false},
		{"only those that ran count", view{modules: all, registrar: reported, workloads: wl(fact.WorkloadRunning, fact.WorkloadFailed), ran: []string{"1/web/a"}}, true, "", false},
		{"one that ran is gone", view{modules: all, registrar: reported, workloads: wl(fact.WorkloadRunning), ran: []string{"1/web/a", "1/web/z"}}, false, "workload 1/web/z (not there)", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ok, hopeless, waiting := healthy(c.v)
			if ok != c.ok || hopeless != c.hopeless || !strings.Contains(strings.Join(waiting, "; "), c.waiting) {
				t.Fatalf("healthy = %v (hopeless %v), waiting %q; want %v (hopeless %v), waiting for %q", ok, hopeless, waiting, c.ok, c.hopeless, c.waiting)
			}
		})
	}
}

func TestRunningWorkloads(t *testing.T) {
	w := &fact.Workloads{Workloads: []fact.WorkloadState{
		{Owner: 2, Deployment: "db", Workload: "pg", State: fact.WorkloadRunning},
		{Owner: 1, Deployment: "web", Workload: "web", State: fact.WorkloadRunning},
		{Owner: 1, Deployment: "web", Workload: "job", State: fact.WorkloadExited},
	}}
	if got := strings.Join(running(w), " "); got != "1/web/web 2/db/pg" {
		t.Fatalf("running = %q", got)
	}
	if got := running(nil); got == nil || len(got) != 0 {
		t.Fatalf("running(nil) = %#v, want an empty list (no workloads must run again)", got)
	}
}
