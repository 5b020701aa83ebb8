//go:build soak

package tests

// The soak, run by `make soak` (go test -tags soak), outside CI's time
// budget: a running node whose module processes are killed again and
// again, and a first boot cut by the power again and again. Each writes
// its section of BENCHMARKS.md. SOAK_KILLS and SOAK_CUTS set how many (a
// loaded machine runs fewer; the section says how many ran).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/qemu"
)

// readStatus GETs /status; an error is no answer yet (the console module
// serves it, and may be the one just killed).
func readStatus(url string) (statusDoc, error) {
	var st statusDoc
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// waitStatus polls /status until ok holds or the deadline passes.
func waitStatus(t *testing.T, url string, within time.Duration, what string, ok func(statusDoc) bool) statusDoc {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := readStatus(url)
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last status %+v, %v)", what, within, st, err)
		}
		<-tick.C
	}
}

// shell runs commands on the debug image's shell (its second serial line).
type shell struct {
	t   *testing.T
	p   *qemu.Port
	seq int
}

// run sends cmd, then waits for the line want (when not nil) and for the
// end of cmd's output: a marker the echo of the command line itself does
// not contain ("mk-$((N+1000000))" is echoed, "mk-100000N" printed).
func (s *shell) run(cmd string, want *regexp.Regexp) []string {
	s.t.Helper()
	s.seq++
	if _, err := s.p.Write([]byte(fmt.Sprintf("%s; echo mk-$((%d+1000000))\n", cmd, s.seq))); err != nil {
		s.t.Fatal(err)
	}
	var got []string
	if want != nil {
		m, err := s.p.Expect(context.Background(), want, 2*time.Minute)
		if err != nil {
			s.t.Fatalf("shell %q: %v", cmd, err)
		}
		got = m.Groups
	}
	if _, err := s.p.Expect(context.Background(), regexp.MustCompile(fmt.Sprintf(`^mk-%d$`, s.seq+1000000)), 2*time.Minute); err != nil {
		s.t.Fatalf("shell %q: %v", cmd, err)
	}
	return got
}

// soakCount is the positive integer in the environment variable name, or
// def.
func soakCount(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// TestSoakKills: SOAK_KILLS times (1,000 by default), a module process of
// a running, registered node, picked at random, is killed with SIGKILL
// from the debug shell, and the test waits until the supervisor has it
// ready again. PID 1 stays up (a dead PID 1 panics the kernel), no zombie
// is left (every 25 kills and at the end, from /proc), every module ends
// ready, and the registration is the one made before the first kill: the
// same twin and node, one node on the registrar.
func TestSoakKills(t *testing.T) {
	kills := soakCount(t, "SOAK_KILLS", 1000)
	r := image(t, "debug")
	g := newRig(t)
	g.serveNodes()
	vm := boot(t, qemu.Options{
		Boot:         kernelBoot(r, g.cmdline(time.Minute)...),
		Memory:       1024,
		Disks:        []qemu.Disk{{Path: filepath.Join(t.TempDir(), "disk.img"), Size: 2 * gib, Serial: "soak0"}},
		ExtraSerials: 1,
		Forwards:     []qemu.Forward{{Guest: 9100}},
	})
	expect(t, vm, `^gridnode: ready$`, bootTimeout)
	url := "http://" + vm.HostAddr(9100) + "/status"
	before := waitStatus(t, url, 3*time.Minute, "registered", func(st statusDoc) bool {
		return st.Registrar.State == fact.RegRegistered && st.Registrar.NodeID != 0
	})
	sh := &shell{t: t, p: vm.Port(1)}
	sh.run("true", nil)

	start := time.Now()
	var back []time.Duration
	perModule := map[string]int{}
	maxZombies := 0
	zombies := func() int {
		g := sh.run(`echo zz-$(cat /proc/[0-9]*/stat 2>/dev/null | awk '$3=="Z"' | wc -l)`, regexp.MustCompile(`^zz-(\d+)$`))
		n, _ := strconv.Atoi(g[1])
		return n
	}
	for i := 0; i < kills; i++ {
		st := waitStatus(t, url, 5*time.Minute, "every module ready before a kill", func(st statusDoc) bool {
			for _, m := range st.Modules {
				if m.State != "ready" || m.PID == 0 {
					return false
				}
			}
			return len(st.Modules) > 0
		})
		var names []string // modules, not the debug flavour's shells (services too)
		for _, n := range slices.Sorted(maps.Keys(st.Modules)) {
			if !strings.HasPrefix(n, "shell-") {
				names = append(names, n)
			}
		}
		name := names[rand.IntN(len(names))]
		m := st.Modules[name]
		sh.run(fmt.Sprintf("kill -KILL %d", m.PID), nil)
		killed := time.Now()
		waitStatus(t, url, 5*time.Minute, fmt.Sprintf("kill %d: %s back to ready", i+1, name), func(st statusDoc) bool {
			n := st.Modules[name]
			return n.State == "ready" && n.Restarts > m.Restarts && n.PID != m.PID
		})
		back = append(back, time.Since(killed))
		perModule[name]++
		if (i+1)%25 == 0 || i == kills-1 {
			z := zombies()
			maxZombies = max(maxZombies, z)
			if z != 0 {
				t.Errorf("after %d kills: %d zombie processes", i+1, z)
			}
			t.Logf("%d kills in %s", i+1, time.Since(start).Round(time.Second))
		}
	}
	elapsed := time.Since(start)
	after := waitStatus(t, url, 5*time.Minute, "every module ready at the end", func(st statusDoc) bool {
		for _, m := range st.Modules {
			if m.State != "ready" {
				return false
			}
		}
		return st.Registrar.State == fact.RegRegistered
	})
	if after.Registrar.TwinID != before.Registrar.TwinID || after.Registrar.NodeID != before.Registrar.NodeID || after.Identity.PublicKey != before.Identity.PublicKey {
		t.Errorf("registration changed: twin %d node %d key %s before, twin %d node %d key %s after",
			before.Registrar.TwinID, before.Registrar.NodeID, before.Identity.PublicKey, after.Registrar.TwinID, after.Registrar.NodeID, after.Identity.PublicKey)
	}
	if n := g.rec.nodeCount(); n != 1 {
		t.Errorf("the registrar created %d nodes, want 1", n)
	}
	if strings.Contains(vm.Console(), "Kernel panic") {
		t.Error("the kernel panicked (PID 1 died?)")
	}
	warnings := strings.Count(vm.Console(), plainHTTPWarning)
	if warnings != 1 {
		t.Errorf("the plain-HTTP warning was said %d times in one boot, want once", warnings)
	}

	slices.Sort(back)
	var mods []string
	for _, n := range slices.Sorted(maps.Keys(perModule)) {
		mods = append(mods, fmt.Sprintf("%s %d", n, perModule[n]))
	}
	verdict := "passed"
	if t.Failed() {
		verdict = "FAILED"
	}
	section(t, "soak-kills", fmt.Sprintf(`### Soak: killing module processes (%s)

`+"`"+`make soak`+"`"+` (`+"`"+`SOAK_KILLS=%d go test -tags soak -run TestSoakKills ./tests/`+"`"+`), %s, %s.
The debug image under QEMU (TCG, 1 CPU, 1 GiB, a 2 GiB disk), registered with
the in-process registrar; each kill is a SIGKILL from the debug shell to the
PID the supervisor published, of a module picked at random, then a wait
until that module is ready again.

| | |
|---|---|
| kills | %d in %s (%s) |
| back to ready after a kill | median %s, p95 %s, max %s (the supervisor's backoff: 1 s doubling to 60 s while a module is killed again within 30 s) |
| zombies | %d at most (checked every 25 kills) |
| PID 1 | up throughout (no kernel panic) |
| registration | twin %d, node %d, key unchanged; 1 node on the registrar |
| plain-HTTP warning | said %d time(s) in the boot, whatever the registrar module's restarts |

Load average at the end: %s (above 2, other work shared the 2 cores and the
restart times are upper bounds).`,
		verdict, kills, time.Now().UTC().Format("2006-01-02"), machine(), kills, elapsed.Round(time.Second), strings.Join(mods, ", "),
		pct(back, 50), pct(back, 95), back[len(back)-1].Round(100*time.Millisecond), maxZombies,
		after.Registrar.TwinID, after.Registrar.NodeID, warnings, loadavg()))
}

// TestSoakPowerCuts: SOAK_CUTS times (50 by default), a node's first boot
// on an empty disk is cut (QEMU killed: a power cut) at a random moment
// between its start and a little past the time a whole first boot takes,
// and it boots again on the same disk; then one last boot runs to
// registered. The identity is never damaged past repair nor silently
// replaced: the registrar created one node and one node account, whose key
// is the key the node ends with.
func TestSoakPowerCuts(t *testing.T) {
	cuts := soakCount(t, "SOAK_CUTS", 50)
	r := image(t, "node")
	g := newRig(t)
	g.serveNodes()
	disk := qemu.Disk{Path: filepath.Join(t.TempDir(), "disk.img"), Size: 2 * gib, Serial: "soak0"}
	opts := func() qemu.Options {
		return qemu.Options{
			Boot:     kernelBoot(r, g.cmdline(time.Minute)...),
			Disks:    []qemu.Disk{disk},
			Forwards: []qemu.Forward{{Guest: 9100}},
		}
	}

	// How long a whole first boot takes, to spread the cuts over: measured
	// on a disk of its own, then thrown away.
	calib := opts()
	calib.Disks = []qemu.Disk{{Path: filepath.Join(t.TempDir(), "calib.img"), Size: 2 * gib, Serial: "calib0"}}
	t0 := time.Now()
	vm := boot(t, calib)
	expect(t, vm, `^gridnode: ready$`, bootTimeout)
	g.rec.waitCreated(t, 1, time.Now().Add(3*time.Minute))
	window := time.Since(t0) * 5 / 4
	vm.Kill()

	start := time.Now()
	stages := map[string]int{}
	var consoles []string
	for i := 0; i < cuts; i++ {
		at := time.Duration(rand.Int64N(int64(window)))
		vm := boot(t, opts())
		select {
		case <-time.After(at): // a deliberate random moment: the power cut
		case <-vm.Done():
		}
		vm.Kill()
		stage := lastStage(vm.Console())
		stages[stage]++
		consoles = append(consoles, vm.Console())
		t.Logf("cut %d at %s: %s", i+1, at.Round(100*time.Millisecond), stage)
	}
	vm = boot(t, opts())
	expect(t, vm, `^gridnode: ready$`, bootTimeout)
	url := "http://" + vm.HostAddr(9100) + "/status"
	final := waitStatus(t, url, 5*time.Minute, "registered after the cuts", func(st statusDoc) bool {
		return st.Registrar.State == fact.RegRegistered && st.Registrar.NodeID != 0
	})
	consoles = append(consoles, vm.Console())
	elapsed := time.Since(start)

	// The calibration node is node 1; the soak's node must be created
	// once, under one account, with the key it ends with.
	created := g.rec.nodeCount() - 1
	if created != 1 {
		t.Errorf("the registrar created %d nodes for the cut node, want 1", created)
	}
	c, err := client.New(g.farmer.BaseURL(), nil, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	acct, err := c.Account(context.Background(), final.Registrar.TwinID)
	if err != nil || acct.PublicKey != final.Identity.PublicKey {
		t.Errorf("the node's twin %d has key %q (%v); the node runs with %s", final.Registrar.TwinID, acct.PublicKey, err, final.Identity.PublicKey)
	}
	twins := 0
	for id := uint64(1); id <= final.Registrar.TwinID+3; id++ {
		if _, err := c.Account(context.Background(), id); err == nil {
			twins++
		}
	}
	// The farmer, the calibration node and the cut node.
	if twins != 3 {
		t.Errorf("%d accounts on the registrar, want 3 (farmer, calibration node, the cut node): a key was replaced", twins)
	}
	all := strings.Join(consoles, "\n")
	damaged := strings.Count(all, "THE NODE KEY IS DAMAGED")
	if damaged != 0 || final.Identity.Ephemeral {
		t.Errorf("the node key was found damaged past repair %d times; ephemeral at the end: %v", damaged, final.Identity.Ephemeral)
	}
	created1 := strings.Count(all, "created a new node key")
	restored := strings.Count(all, "restored from the mirror")

	var st []string
	for _, s := range slices.Sorted(maps.Keys(stages)) {
		st = append(st, fmt.Sprintf("%s %d", s, stages[s]))
	}
	verdict := "passed"
	if t.Failed() {
		verdict = "FAILED"
	}
	section(t, "soak-powercuts", fmt.Sprintf(`### Soak: power cuts during a first boot (%s)

`+"`"+`make soak`+"`"+` (`+"`"+`SOAK_CUTS=%d go test -tags soak -run TestSoakPowerCuts ./tests/`+"`"+`), %s, %s.
The node image under QEMU (TCG, 1 CPU, 512 MiB, one empty 2 GiB disk), the
in-process registrar up. A whole first boot to registered took %s here; each
cut kills QEMU at a moment drawn uniformly from the first %s of a boot on
the same disk, then the next boot starts.

| | |
|---|---|
| power cuts | %d in %s |
| where the boots were cut (last step on the console) | %s |
| node keys created | %d (a key is made once: a boot cut before it was written makes it again) |
| keys restored from a mirror | %d |
| keys found damaged past repair | %d |
| at the end | registered as twin %d, node %d; the registrar created one node and one account for it, with the key the node runs with |

Load average at the end: %s.`,
		verdict, cuts, time.Now().UTC().Format("2006-01-02"), machine(), window.Round(time.Second)*4/5, window.Round(time.Second),
		cuts, elapsed.Round(time.Second), strings.Join(st, ", "), created1, restored, damaged,
		final.Registrar.TwinID, final.Registrar.NodeID, loadavg()))
}

// lastStage names how far a cut boot got, from its console.
func lastStage(console string) string {
	stage := "before init"
	for _, s := range []struct{ re, name string }{
		{`gridnode: init `, "init"},
		{`cache file system|mkfs|gridnode-cache`, "cache disk"},
		{`created a new node key|msg="node key"`, "node key"},
		{`gridnode: ready`, "ready"},
		{`node account ready`, "account"},
		{`node created|node found`, "registered"},
	} {
		if regexp.MustCompile(s.re).MatchString(console) {
			stage = s.name
		}
	}
	return stage
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, len(d)*p/100)].Round(100 * time.Millisecond)
}
