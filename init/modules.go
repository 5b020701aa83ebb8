package main

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"time"

	consolemod "github.com/gridnode/gridnode/modules/console"
	"github.com/gridnode/gridnode/modules/hardware"
	"github.com/gridnode/gridnode/modules/identity"
	"github.com/gridnode/gridnode/modules/network"
	"github.com/gridnode/gridnode/modules/registrar"
	"github.com/gridnode/gridnode/modules/storage"
	"github.com/gridnode/gridnode/modules/upgrade"
	"github.com/gridnode/gridnode/modules/workloads"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/workload/runner"
)

// module is one node service: PID 1 runs it as `/init module NAME` once
// every dependency is ready, and treats it as ready when it has published
// the fact NAME.
type module struct {
	name string
	deps []string
	run  func(ctx context.Context, cfg config.Node, log *slog.Logger) error
	// grace, when set, replaces the supervisor's time between SIGTERM and
	// SIGKILL; stopsChildren says the module stops what it started itself
	// (in order, within grace) and must get SIGTERM alone.
	grace         time.Duration
	stopsChildren bool
}

// table lists the modules PID 1 supervises, in start order. The console
// depends on nothing so that a node stuck early (no disk, no network) still
// shows why.
var table = []module{
	{name: "console", deps: nil, run: consolemod.Run},
	{name: "hardware", deps: nil, run: hardware.Run},
	{name: "storage", deps: []string{"hardware"}, run: storage.Run},
	{name: "identity", deps: []string{"storage"}, run: identity.Run},
	{name: "network", deps: []string{"hardware"}, run: network.Run},
	{name: "registrar", deps: []string{"network", "identity", "hardware"}, run: registrar.Run},
	// Not after network: stored deployments come back at a boot without
	// one; what needs the network waits for it inside the module. Its
	// containers run in helpers outside its process group, so the module
	// stops them itself (each gets workloads' own grace, in parallel) and
	// needs time for it.
	{name: "workloads", deps: []string{"storage", "hardware"}, run: workloads.Module(runner.Open),
		grace: workloadsGrace, stopsChildren: true},
	// The upgrade module needs the cache disk (its trial record) and
	// nothing more to start: a trial boot re-arms the watchdog as early as
	// it can, and judges the other modules, the registrar's among them,
	// whatever they do. It waits for the identity (its key places the node
	// in a rollout) and reads the registrar's channel when it follows one.
	// An upgrade's jump is PID 1's ordered stop, in which the workloads
	// module stops its containers within its grace.
	{name: "upgrade", deps: []string{"storage"}, run: upgrade.Run},
}

// workloadsGrace covers the workloads' own grace (SIGTERM, then SIGKILL
// after 10 s, all in parallel), their deletion and their networks' removal.
const workloadsGrace = 30 * time.Second

func findModule(name string) (module, bool) {
	for _, m := range table {
		if m.name == name {
			return m, true
		}
	}
	return module{}, false
}

func moduleNames() string {
	var l []string
	for _, m := range table {
		l = append(l, m.name)
	}
	sort.Strings(l)
	return strings.Join(l, ", ")
}

// selectModules returns the modules to start: all of them, or those named
// (config Modules) with everything they depend on. Unknown names are
// returned apart, for a warning.
func selectModules(names []string) (sel []module, unknown []string) {
	if len(names) == 0 {
		return table, nil
	}
	want := map[string]bool{}
	var add func(n string)
	add = func(n string) {
		if want[n] {
			return
		}
		m, ok := findModule(n)
		if !ok {
			unknown = append(unknown, n)
			return
		}
		want[n] = true
		for _, d := range m.deps {
			add(d)
		}
	}
	for _, n := range names {
		add(n)
	}
	for _, m := range table {
		if want[m.name] {
			sel = append(sel, m)
		}
	}
	return sel, unknown
}
