package main

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/gridnode/gridnode/node/config"
)

func TestRunCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := run([]string{"version"}, &out, &errb); rc != 0 || out.String() != version+"\n" {
		t.Errorf("version: rc %d, %q", rc, out.String())
	}
	out.Reset()
	if rc := run(nil, &out, &errb); rc != 2 || !strings.Contains(errb.String(), "init module NAME") {
		t.Errorf("no arguments: rc %d, stderr %q", rc, errb.String())
	}
	errb.Reset()
	if rc := run([]string{"frobnicate"}, &out, &errb); rc != 2 || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Errorf("unknown: rc %d, stderr %q", rc, errb.String())
	}
	errb.Reset()
	if rc := run([]string{"module", "nope"}, &out, &errb); rc != 2 || !strings.Contains(errb.String(), `no module "nope"`) {
		t.Errorf("unknown module: rc %d, stderr %q", rc, errb.String())
	}
}

// TestPoweroffRefusesForeignInit makes sure `init poweroff` on a
// workstation does not signal that machine's init.
func TestPoweroffRefusesForeignInit(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := run([]string{"poweroff"}, &out, &errb); rc != 1 || !strings.Contains(errb.String(), "not the gridnode node program") {
		t.Errorf("rc %d, stderr %q", rc, errb.String())
	}
}

func TestApplyKVSkipsBadLines(t *testing.T) {
	n := config.Default()
	con := &console{w: &bytes.Buffer{}}
	applyKV(&n, "gridnode.conf", "# comment\nfarm=42\nbogus\nflavour=weird\nhostname=n1\n", con)
	if n.Farm != 42 || n.Hostname != "n1" || n.Flavour != config.FlavourNode {
		t.Errorf("got %+v", n)
	}
	warn := con.w.(*bytes.Buffer).String()
	for _, w := range []string{`gridnode.conf:3: "bogus" is not key=value`, `gridnode.conf:4: flavour "weird"`} {
		if !strings.Contains(warn, w) {
			t.Errorf("warnings lack %q:\n%s", w, warn)
		}
	}
}

func TestApplyCmdlineLaterWinsAndSkipsBad(t *testing.T) {
	n := config.Default()
	n.Farm = 42
	con := &console{w: &bytes.Buffer{}}
	applyCmdline(&n, "console=ttyS0 gridnode.farm=7 gridnode.flavour=weird gridnode.modules=hardware quiet", con)
	if n.Farm != 7 || n.Flavour != config.FlavourNode || !reflect.DeepEqual(n.Modules, []string{"hardware"}) {
		t.Errorf("got %+v", n)
	}
	if !strings.Contains(con.w.(*bytes.Buffer).String(), `flavour "weird"`) {
		t.Errorf("no warning: %q", con.w.(*bytes.Buffer).String())
	}
}

func TestSelectModulesAddsDependencies(t *testing.T) {
	saved := table
	defer func() { table = saved }()
	nop := func(context.Context, config.Node, *slog.Logger) error { return nil }
	table = []module{{name: "hardware", run: nop}, {name: "network", deps: []string{"hardware"}, run: nop}, {name: "console", run: nop}}
	sel, unknown := selectModules([]string{"network", "ghost"})
	var names []string
	for _, m := range sel {
		names = append(names, m.name)
	}
	if !reflect.DeepEqual(names, []string{"hardware", "network"}) || !reflect.DeepEqual(unknown, []string{"ghost"}) {
		t.Errorf("selected %v, unknown %v", names, unknown)
	}
	if sel, _ := selectModules(nil); len(sel) != 3 {
		t.Errorf("no selection should start everything, got %d", len(sel))
	}
}
