package main

import (
	"context"
	"log/slog"
	"sort"
	"strings"

	consolemod "github.com/gridnode/gridnode/modules/console"
	"github.com/gridnode/gridnode/modules/hardware"
	"github.com/gridnode/gridnode/modules/identity"
	"github.com/gridnode/gridnode/modules/network"
	"github.com/gridnode/gridnode/modules/registrar"
	"github.com/gridnode/gridnode/modules/storage"
	"github.com/gridnode/gridnode/modules/upgrade"
	"github.com/gridnode/gridnode/node/config"
)

// module is one node service: PID 1 runs it as `/init module NAME` once
// every dependency is ready, and treats it as ready when it has published
// the fact NAME.
type module struct {
	name string
	deps []string
	run  func(ctx context.Context, cfg config.Node, log *slog.Logger) error
}

// table lists the modules PID 1 supervises, in start order. The console
// depends on nothing so that a node stuck early (no disk, no network) still
// shows why.
var table = []module{
	{"console", nil, consolemod.Run},
	{"hardware", nil, hardware.Run},
	{"storage", []string{"hardware"}, storage.Run},
	{"identity", []string{"storage"}, identity.Run},
	{"network", []string{"hardware"}, network.Run},
	{"registrar", []string{"network", "identity", "hardware"}, registrar.Run},
	// The upgrade module needs the cache disk (its trial record) and
	// nothing more to start: a trial boot re-arms the watchdog as early as
	// it can, and judges the other modules, the registrar's among them,
	// whatever they do. It waits for the identity (its key places the node
	// in a rollout) and reads the registrar's channel when it follows one.
	{"upgrade", []string{"storage"}, upgrade.Run},
}

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
