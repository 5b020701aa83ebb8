//go:build bench

package tests

// Upgrade downtime (issue 13; go test -tags bench -run
// TestBenchUpgradeDowntime ./tests/): two nodes (OVMF, SeaBIOS) on release
// 1's stick, reporting uptime every 2 s, move into release 2 by kexec and
// its trial; the downtime is the time from the last uptime report on
// release 1 to the first on release 2, as the registrar received them.
// Its peer, in the same run on the same nodes: a cold boot of release 2
// from the stick (QMP system_reset), from the last report before the reset
// to the first after it. Bytes downloaded per upgrade: the blob bytes the
// registry served for the upgrade, per node.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/qemu"
)

func TestBenchUpgradeDowntime(t *testing.T) {
	const v1, v2 = "0.1.0-slot", "0.2.0-slot"
	r1, r2 := releaseBuild(t, v1), releaseBuild(t, v2)
	g := newUpgradeRig(t)
	g.uptime = 2 * time.Second
	art1, art2 := g.push(t, r1, nil), g.push(t, r2, nil)
	g.publish(t, 2, v1, art1, 100, nil)
	nodes := []*upNode{
		g.boot(t, "uefi", qemu.UEFI, g.farms[0], r1),
		g.boot(t, "bios", qemu.BIOS, g.farms[1], r1),
	}
	each := func(f func(t *testing.T, n *upNode)) {
		t.Run("", func(t *testing.T) {
			for _, n := range nodes {
				t.Run(n.name, func(t *testing.T) { t.Parallel(); f(t, n) })
			}
		})
		if t.Failed() {
			t.FailNow()
		}
	}
	each(func(t *testing.T, n *upNode) {
		expect(t, n.vm, `^gridnode: ready$`, bootTimeout)
		n.id = g.waitOS(t, n, v1, false, "")
		n.sawUpgrade(t, `msg="up to date"`, time.Minute)
	})

	served := g.oci.Served.Load()
	g.publish(t, 3, v2, art2, 100, nil)
	upgrade := map[string]time.Duration{}
	cold := map[string]time.Duration{}
	each(func(t *testing.T, n *upNode) {
		n.expectUpgrade(t, v2+` passed its trial`, upgradeTrial+time.Minute)
		first := g.waitReport(t, n, func(u uptime) bool { return u.OS.OSVersion == v2 })
		last := g.lastReport(t, n, first.At, func(u uptime) bool { return u.OS.OSVersion == v1 })
		upgrade[n.name] = first.At.Sub(last.At)
	})
	bytes := (g.oci.Served.Load() - served) / int64(len(nodes))

	each(func(t *testing.T, n *upNode) {
		reset := time.Now()
		if err := n.vm.Reset(context.Background()); err != nil {
			t.Fatal(err)
		}
		expect(t, n.vm, `gridnode: init `+v2, bootTimeout)
		first := g.waitReport(t, n, func(u uptime) bool { return u.At.After(reset) })
		last := g.lastReport(t, n, reset, func(uptime) bool { return true })
		cold[n.name] = first.At.Sub(last.At)
	})

	uki := art2.uki.Size
	img, err := os.Stat(filepath.Join(r2.Dir, "gridnode-"+v2+".img"))
	if err != nil {
		t.Fatal(err)
	}
	var rows strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&rows, "| %s | %s | %s |\n", n.fw, upgrade[n.name].Round(100*time.Millisecond), cold[n.name].Round(100*time.Millisecond))
	}
	section(t, "upgrade-downtime", fmt.Sprintf(`### Upgrade downtime (issue 13)

Two nodes (q35, 2 CPUs, 1 GiB, TCG) on release 1's USB image, reporting uptime every 2 s to the project's registrar on the host: release 2 is published on their channel; each pulls it, kexecs (PID 1's ordered stop, no firmware), and reports from release 2 once its trial started. Downtime is from the last uptime report on release 1 to the first on release 2, as the registrar received them (± the 2 s report interval). Peer, in the same run on the same nodes: a cold boot of release 2 from the stick (QMP system_reset: firmware, boot loader, the same boot to a report), from the last report before the reset to the first after it. `+"`go test -tags bench -run TestBenchUpgradeDowntime ./tests/`"+`, %s; load average at the end %s (other engineers' builds and VMs share the machine).

| firmware | upgrade (kexec) | cold boot |
|---|---|---|
%s
Bytes downloaded per upgrade: %s (the blobs the registry served: release.json and the UKI; the manifest besides is under 1 KiB), against %s for the UKI alone and %s for release 2's whole USB image, which rewriting the stick would take.`,
		machine(), loadavg(), rows.String(), mib(bytes), mib(uki), mib(img.Size())))
}

// waitReport waits for node n's first uptime report that ok accepts.
func (g *upRig) waitReport(t *testing.T, n *upNode, ok func(uptime) bool) uptime {
	t.Helper()
	var found uptime
	err := g.rec.wait(time.Now().Add(bootTimeout), func() bool {
		for _, u := range g.rec.uptimes {
			if u.NodeID == n.id && ok(u) {
				found = u
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("the %s node made no such uptime report: %v", n.name, err)
	}
	return found
}

// lastReport is node n's last uptime report before before that ok accepts.
func (g *upRig) lastReport(t *testing.T, n *upNode, before time.Time, ok func(uptime) bool) uptime {
	t.Helper()
	var found *uptime
	for _, u := range g.rec.uptimesOf(n.id) {
		if u.At.Before(before) && ok(u) {
			found = &u
		}
	}
	if found == nil {
		t.Fatalf("the %s node made no uptime report before %s", n.name, before.Format(time.TimeOnly))
	}
	return *found
}
