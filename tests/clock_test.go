package tests

// A node whose hardware clock is wrong still comes up (issue 10): the
// network module steps the system clock to the registrar's time during
// boot, backwards when the RTC is ahead (a BIOS clock set to local time
// east of UTC, a board shipped with a wrong RTC), forwards when it is years
// behind (a flat battery). Readiness must not depend on the clock.

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/internal/testutil"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/qemu"
)

// TestClock boots the default image three times at once, with the machine's
// real-time clock one day ahead, one year ahead, and in 2001. NTP is
// unreachable (a closed UDP port on the host: the node learns so at once,
// from QEMU's ICMP port-unreachable) and the registrar's clock is right.
// Each node reaches `gridnode: ready`, registers, has an uptime report
// accepted (the registrar takes timestamps within ±60 s of its clock), and
// its clock ends within 5 s of the host's: the Date header of its own
// /status answer, which its HTTP server stamps from its clock.
func TestClock(t *testing.T) {
	r := image(t, "node")
	now := time.Now()
	cases := []struct {
		name string
		rtc  time.Time
		g    *rig
		vm   *qemu.VM
	}{
		{name: "day-ahead", rtc: now.Add(24 * time.Hour)},
		{name: "year-ahead", rtc: now.AddDate(1, 0, 0)},
		{name: "year-2001", rtc: time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC)},
	}
	// All three boot at once, whatever go test's -parallel: the checks
	// below only wait on them.
	for i := range cases {
		c := &cases[i]
		c.g = newRig(t)
		c.g.serveNodes()
		c.vm = boot(t, qemu.Options{
			Boot: kernelBoot(r, append(c.g.cmdline(time.Hour),
				"gridnode.ntp=10.0.2.2:"+strconv.Itoa(closedUDPPort(t)))...),
			// Three nodes at once on a 2-core CI machine: one CPU and no
			// disk each (the key is then ephemeral; that is enough to
			// register).
			CPUs:      1,
			Memory:    512,
			Forwards:  []qemu.Forward{{Guest: 9100}},
			ExtraArgs: []string{"-rtc", "base=" + c.rtc.UTC().Format("2006-01-02T15:04:05")},
		})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			expect(t, c.vm, `^gridnode: ready$`, bootTimeout)
			created := c.g.rec.waitCreated(t, 1, time.Now().Add(3*time.Minute))
			c.g.rec.waitUptimes(t, created.ID, 1, time.Now().Add(3*time.Minute))

			var st struct {
				Network fact.Network `json:"network"`
			}
			off := clockOffset(t, "http://"+c.vm.HostAddr(9100)+"/status", &st)
			t.Logf("RTC %s: node %d registered; node clock %+.1fs from the host's; clock %+v",
				c.rtc.UTC().Format(time.DateTime), created.ID, off.Seconds(), st.Network.Clock)
			if off > 5*time.Second || off < -5*time.Second {
				t.Errorf("the node's clock is %s off the host's, want within 5s", off.Round(100*time.Millisecond))
			}
			if st.Network.Clock.Source != "registrar" {
				t.Errorf("clock source %q (%s), want registrar: NTP is unreachable", st.Network.Clock.Source, st.Network.Clock.Error)
			}
			// The registrar is plain HTTP to another machine (10.0.2.2 is
			// not the guest's loopback): said once.
			if n := strings.Count(c.vm.Console(), plainHTTPWarning); n != 1 {
				t.Errorf("the console warns %d times that the registrar is plain HTTP, want once", n)
			}
		})
	}
}

// plainHTTPWarning is what the registrar module says of a plain-HTTP
// registrar on another machine.
const plainHTTPWarning = "is plain HTTP to another machine"

// TestClockHTTPS boots one node whose real-time clock is in 2001 against
// an HTTPS registrar on the host's loopback, whose certificate comes from a
// CA the test makes and bakes into the image (the spec's tls_roots). Every
// certificate looks "not yet valid" to a clock in 2001, so the node takes
// the registrar's time only by verifying its chain at the time the
// registrar claims (modules/network, verifyAt); NTP is unreachable. The
// node sets its clock, registers over HTTPS and has an uptime report
// accepted, and never warns about plain HTTP.
func TestClockHTTPS(t *testing.T) {
	ca := testutil.NewCA(t)
	caFile := filepath.Join(t.TempDir(), "test-ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	s := loadSpec(t, "node")
	s.TLSRoots = []string{caFile}
	r := buildSpec(t, s, filepath.Join(t.TempDir(), "image"))

	g := newRig(t)
	cert := ca.Leaf(t, time.Now().Add(-time.Hour), time.Now().AddDate(0, 3, 0), "10.0.2.2")
	g.tls = &cert
	g.serveNodes()
	rtc := time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC)
	vm := boot(t, qemu.Options{
		Boot: kernelBoot(r, append(g.cmdline(time.Hour),
			"gridnode.ntp=10.0.2.2:"+strconv.Itoa(closedUDPPort(t)))...),
		CPUs:      1,
		Memory:    512,
		Forwards:  []qemu.Forward{{Guest: 9100}},
		ExtraArgs: []string{"-rtc", "base=" + rtc.Format("2006-01-02T15:04:05")},
	})
	expect(t, vm, `^gridnode: ready$`, bootTimeout)
	created := g.rec.waitCreated(t, 1, time.Now().Add(3*time.Minute))
	g.rec.waitUptimes(t, created.ID, 1, time.Now().Add(3*time.Minute))

	var st struct {
		Network fact.Network   `json:"network"`
		Reg     fact.Registrar `json:"registrar"`
	}
	off := clockOffset(t, "http://"+vm.HostAddr(9100)+"/status", &st)
	t.Logf("RTC %s: node %d registered over %s; node clock %+.1fs from the host's; clock %+v",
		rtc.Format(time.DateTime), created.ID, st.Reg.URL, off.Seconds(), st.Network.Clock)
	if off > 5*time.Second || off < -5*time.Second {
		t.Errorf("the node's clock is %s off the host's, want within 5s", off.Round(100*time.Millisecond))
	}
	if st.Network.Clock.Source != "registrar" || !strings.HasPrefix(st.Reg.URL, "https://") {
		t.Errorf("clock %+v from registrar %s; want the time from the HTTPS registrar", st.Network.Clock, st.Reg.URL)
	}
	if strings.Contains(vm.Console(), plainHTTPWarning) {
		t.Error("the console warns about plain HTTP for an HTTPS registrar")
	}
}

// clockOffset GETs url, decodes its JSON body into v, and returns how far
// the server's clock (its Date header) is ahead of ours.
func clockOffset(t *testing.T, url string, v any) time.Duration {
	t.Helper()
	t0 := time.Now()
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t1 := time.Now()
	resp.Body.Close()
	d, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		t.Fatalf("GET %s: no usable Date header (%q)", url, resp.Header.Get("Date"))
	}
	getJSON(t, url, v)
	// Date has a one-second resolution: its middle, against the middle of
	// the round trip.
	return d.Add(500 * time.Millisecond).Sub(t0.Add(t1.Sub(t0) / 2))
}

// closedUDPPort returns a UDP port on the host's loopback that nothing
// listens on: the guest's packets to 10.0.2.2 there are refused.
func closedUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
