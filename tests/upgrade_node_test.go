package tests

// Issue 13's node side, booted: two nodes boot release 1 from its USB
// image, one under OVMF, one under SeaBIOS, each with a cache disk and
// QEMU's i6300esb watchdog, against the project's registrar (serving the
// release channel) and go-containerregistry's registry in process, both on
// the host's loopback; the farmer deploys a web server on each. In order,
// on both at once:
//
//   - refused, nothing downloaded: the registrar, made to lie, serves a
//     channel document of an older sequence than the one accepted, one
//     with a bad signature, one expired; the registry serves nothing;
//   - refused before kexec: a release whose UKI the registry sends with
//     other bytes than signed;
//   - release 2: each node pulls it, kexecs (the same QEMU process, no
//     firmware), passes its trial once its web server runs again (the
//     registrar shows os_version 2, the server answers), writes it into
//     the stick's other slot as the default of both boot paths, keeping
//     release 1;
//   - the OVMF node is reset (QMP system_reset): the stick boots release
//     2, and the web server answers again; it is not in release 3's
//     rollout (wave 0 %), the SeaBIOS node's farm is its canary farm: that
//     node kexecs into release 3, whose
//     registrar module does not run (its baked-in modules list leaves it
//     out), fails its trial, reboots, the stick boots release 2 on the BIOS
//     path, the registrar shows the rollback, and release 3 is not pulled
//     again.

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/gridnode/gridnode/build"
	"github.com/gridnode/gridnode/build/release"
	"github.com/gridnode/gridnode/build/spec"
	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/farm"
	"github.com/gridnode/gridnode/grid/registrar"
	"github.com/gridnode/gridnode/internal/need"
	"github.com/gridnode/gridnode/internal/testutil"
	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/qemu"
	"github.com/gridnode/gridnode/upgrade/doc"
	"github.com/gridnode/gridnode/upgrade/doc/doctest"
	"github.com/gridnode/gridnode/upgrade/layout"
	"github.com/gridnode/gridnode/workload/image/imagetest"
	"github.com/gridnode/gridnode/workload/nodeclient"
)

const (
	upgradePoll  = 5 * time.Second // gridnode.upgrade_poll of the test nodes
	upgradeTrial = 4 * time.Minute // gridnode.upgrade_trial: generous, under TCG on a loaded machine
)

func TestUpgradeNode(t *testing.T) {
	skipBoot(t)
	const v1, v2, v3 = "0.1.0-slot", "0.2.0-slot", "0.3.0-sick"
	start := time.Now()
	r1, r2 := releaseBuild(t, v1), releaseBuild(t, v2)
	r3 := releaseBuildWith(t, v3, func(s *spec.Spec) {
		s.Node.Modules = []string{"console", "hardware", "storage", "identity", "network", "upgrade"}
	})
	t.Logf("three releases built in %s", time.Since(start).Round(time.Second))
	g := newUpgradeRig(t)
	art1, art2, art3 := g.push(t, r1, nil), g.push(t, r2, nil), g.push(t, r3, nil)
	forged := g.push(t, r2, []byte{0}) // release 2 with a byte more, which the registry sends wrong
	g.oci.Corrupt("sha256:" + forged.uki.SHA256)

	web := g.webImage(t)
	g.publish(t, 2, v1, art1, 100, nil)
	nodes := []*upNode{
		g.boot(t, "uefi", qemu.UEFI, g.farms[0], r1),
		g.boot(t, "bios", qemu.BIOS, g.farms[1], r1),
	}
	// phase runs f on both nodes at once, as subtest name of t.
	phase := func(t *testing.T, name string, f func(t *testing.T, n *upNode)) bool {
		t0 := time.Now()
		defer func() { t.Logf("%s: %s", name, time.Since(t0).Round(time.Second)) }()
		return t.Run(name, func(t *testing.T) {
			for _, n := range nodes {
				t.Run(n.name, func(t *testing.T) {
					t.Parallel()
					f(t, n)
				})
			}
		})
	}

	ok := phase(t, "release 1", func(t *testing.T, n *upNode) {
		if m := expect(t, n.vm, `gridnode: init (\S+)`, bootTimeout); m.Groups[1] != v1 {
			t.Fatalf("booted %s, want %s", m.Groups[1], v1)
		}
		expect(t, n.vm, `^gridnode: ready$`, bootTimeout)
		n.id = g.waitOS(t, n, v1, false, "")
		g.deploy(t, n, web)
		n.sawUpgrade(t, `msg="up to date"`, time.Minute)
	})
	if !ok {
		return
	}

	// A registrar that lies: each document is refused, and the registry
	// serves nothing at all meanwhile.
	served := len(g.oci.Requests())
	ok = t.Run("refused", func(t *testing.T) {
		for _, c := range []struct{ name, doc, want string }{
			{"old sequence", string(g.sign(t, 1, v2, art2, 100, nil)), "old sequence 1; this node already accepted 2"},
			{"bad signature", string(doctest.TamperChannel(t, g.sign(t, 3, v2, art2, 100, nil), func(c *doc.Channel) { c.Version = "9" + c.Version })), "bad signature"},
			{"expired", string(g.sign(t, 3, v2, art2, 100, func(c *doc.Channel) { c.Expires = time.Now().Add(-time.Minute) })), "expired at"},
		} {
			g.lie([]byte(c.doc))
			phase(t, c.name, func(t *testing.T, n *upNode) {
				n.expectUpgrade(t, `channel document refused, nothing downloaded: .*`+regexp.QuoteMeta(c.want), time.Minute)
			})
		}
		g.lie(nil)
		if got := g.oci.Requests()[served:]; len(got) > 0 {
			t.Errorf("the registry served %d requests while the nodes refused every document: %v", len(got), got)
		}
	})
	if !ok {
		return
	}

	g.publish(t, 3, v2, forged, 100, nil)
	ok = phase(t, "forged UKI", func(t *testing.T, n *upNode) {
		n.expectUpgrade(t, `the signed release says `+forged.uki.SHA256, 2*time.Minute)
		if strings.Contains(n.vm.Console(), "jumping into") {
			t.Fatal("the node jumped into a release whose UKI was not the signed one")
		}
	})
	if !ok {
		return
	}

	g.publish(t, 4, v2, art2, 100, nil)
	ok = phase(t, "release 2", func(t *testing.T, n *upNode) {
		n.expectUpgrade(t, `downloaded release `+v2, 2*time.Minute)
		expect(t, n.vm, `^gridnode: jumping into the loaded release \(kexec\)$`, 2*time.Minute)
		jumped := len(n.vm.Port(0).Lines())
		if m := expect(t, n.vm, `gridnode: init (\S+)`, bootTimeout); m.Groups[1] != v2 {
			t.Fatalf("kexec'd into %s, want %s", m.Groups[1], v2)
		}
		// No firmware ran between the jump and the new kernel.
		for _, l := range n.vm.Port(0).Lines()[jumped:] {
			if strings.Contains(l, "BdsDxe") || strings.Contains(l, "SeaBIOS") || strings.Contains(l, "Booting from") {
				t.Fatalf("firmware after the jump: %q", l)
			}
		}
		n.expectUpgrade(t, `this boot is a trial of `+v2, time.Minute)
		n.expectUpgrade(t, `boot medium: `+v2+` written to /dev/\S+ as the default of both boot paths; slot a keeps `+v1, upgradeTrial)
		n.expectUpgrade(t, v2+` passed its trial`, time.Minute)
		g.waitOS(t, n, v2, false, "")
		n.answers(t)
	})
	if !ok {
		return
	}

	// Release 3 for the SeaBIOS node's farm only (wave 0 %, canary farm).
	g.publish(t, 5, v3, art3, 0, func(c *doc.Channel) { c.CanaryFarms = []uint64{nodes[1].farm} })
	phase(t, "release 3", func(t *testing.T, n *upNode) {
		if n.fw == qemu.UEFI {
			// A cold reset boots release 2 from the stick.
			if err := n.vm.Reset(context.Background()); err != nil {
				t.Fatal(err)
			}
			reset := len(n.vm.Port(0).Lines())
			if m := expect(t, n.vm, `gridnode: init (\S+)`, bootTimeout); m.Groups[1] != v2 {
				t.Fatalf("the stick booted %s after a reset, want %s", m.Groups[1], v2)
			}
			expect(t, n.vm, `gridnode: boot medium sda1 \(vfat on disk sda\)`, bootTimeout)
			n.expectUpgrade(t, v3+` offered; this node \(at \S+\) is not in the rollout, open to 0%`, 2*time.Minute)
			if strings.Contains(strings.Join(n.vm.Port(0).Lines()[reset:], "\n"), "this boot is a trial") {
				t.Fatal("a cold boot of the installed release was taken for a trial")
			}
			n.answers(t)
			return
		}
		n.expectUpgrade(t, `downloaded release `+v3, 2*time.Minute)
		if m := expect(t, n.vm, `gridnode: init (\S+)`, bootTimeout); m.Groups[1] != v3 {
			t.Fatalf("kexec'd into %s, want %s", m.Groups[1], v3)
		}
		n.expectUpgrade(t, `the trial of `+v3+` failed: it cannot become healthy in this boot; waiting for the registrar module, which does not run`, bootTimeout)
		if m := expect(t, n.vm, `gridnode: init (\S+)`, bootTimeout); m.Groups[1] != v2 {
			t.Fatalf("the stick booted %s after the failed trial, want %s", m.Groups[1], v2)
		}
		n.expectUpgrade(t, `the trial of `+v3+` failed: the machine came back to `+v2, time.Minute)
		g.waitOS(t, n, v2, true, v3)
		// Not tried again: the next polls say so, and release 3's UKI was
		// pulled once.
		n.expectUpgrade(t, v3+` failed its trial on this node; not tried again`, time.Minute)
		n.waitPolls(t, 2)
		if got := g.oci.blobGets(art3.uki.SHA256); got != 1 {
			t.Fatalf("release 3's UKI was pulled %d times, want once", got)
		}
	})
	t.Logf("the whole test took %s", time.Since(start).Round(time.Second))
}

// upNode is a test node.
type upNode struct {
	name string
	fw   qemu.Firmware
	farm uint64
	vm   *qemu.VM
	id   uint64
}

// answers waits until the node's web server answers through its port.
func (n *upNode) answers(t *testing.T) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	var last strings.Builder
	testutil.Eventually(t, 3*time.Minute, func() bool {
		last.Reset()
		resp, err := c.Get("http://" + n.vm.HostAddr(webPort) + "/")
		if err != nil {
			last.WriteString(err.Error())
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		last.WriteString(resp.Status + ": " + string(b))
		return resp.StatusCode == http.StatusOK && string(b) == webPage
	}, "the %s node's web server to answer; last: %s", n.name, &last)
}

// expectUpgrade waits for a line of the upgrade module matching re.
func (n *upNode) expectUpgrade(t *testing.T, re string, timeout time.Duration) {
	t.Helper()
	expect(t, n.vm, `^upgrade: .*`+re, timeout)
}

// sawUpgrade is expectUpgrade for a line that may have come already,
// before the line the console's cursor is past.
func (n *upNode) sawUpgrade(t *testing.T, re string, timeout time.Duration) {
	t.Helper()
	rx := regexp.MustCompile(`^upgrade: .*` + re)
	for _, l := range n.vm.Port(0).Lines() {
		if rx.MatchString(l) {
			return
		}
	}
	n.expectUpgrade(t, re, timeout)
}

// waitPolls waits until the node has read its channel k more times.
func (n *upNode) waitPolls(t *testing.T, k int) {
	t.Helper()
	last := func() time.Time {
		var st struct {
			Upgrade fact.Upgrade `json:"upgrade"`
		}
		getJSON(t, "http://"+n.vm.HostAddr(9100)+"/status", &st)
		if st.Upgrade.LastCheck == nil {
			return time.Time{}
		}
		return *st.Upgrade.LastCheck
	}
	seen := last()
	for i := 0; i < k; i++ {
		testutil.Eventually(t, 4*upgradePoll, func() bool { return last().After(seen) }, "poll %d of the channel", i+1)
		seen = last()
	}
}

// The web server deployed on each node: busybox's httpd.
const (
	webPort = 8080
	webPage = "a workload that outlives upgrades\n"
)

// webImage pushes an image of Debian's busybox-static with a page, and
// returns it pinned as the nodes reach it.
func (g *upRig) webImage(t *testing.T) string {
	t.Helper()
	bb, err := os.ReadFile(need.Tool(t, "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	img := imagetest.Image(t, v1.Config{}, imagetest.Layer(t, map[string]string{
		"bin/": "", "bin/busybox": string(bb), "bin/sh -> busybox": "", "www/": "", "www/index.html": webPage,
	}))
	_, pinned := g.oci.Push(t, "web:1", img)
	_, port, _ := net.SplitHostPort(g.oci.Host)
	return strings.Replace(pinned, g.oci.Host, "10.0.2.2:"+port, 1)
}

// deploy runs the web server image on n as the farmer, and waits until it
// answers.
func (g *upRig) deploy(t *testing.T, n *upNode, image string) {
	t.Helper()
	d, err := deployment.Parse("web.yaml", []byte(fmt.Sprintf(`name: web
workloads:
  - name: web
    image: %s
    command: [/bin/busybox, httpd, -f, -p, "%d", -h, /www]
    memory: 32Mi
    cpu: 0.2
    disk: 32Mi
    ports: ["%d:%d/tcp"]
`, image, webPort, webPort, webPort)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := nodeclient.New("http://"+n.vm.HostAddr(9100), g.farmerKey, g.admin.Twin())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := c.Deploy(ctx, d)
	if err != nil {
		t.Fatalf("deploying on the %s node: %v", n.name, err)
	}
	if _, err := c.Wait(ctx, d.Name, st.Generation, nil); err != nil {
		t.Fatalf("deploying on the %s node: %v", n.name, err)
	}
	n.answers(t)
}

// upRig is the grid the test nodes upgrade in.
type upRig struct {
	rec       *recorder
	farmerKey ed25519.PrivateKey
	admin     *client.Client // the registrar's admin twin, a farmer too
	farms     [2]uint64
	port      int           // the nodes' registrar: http://10.0.2.2:port
	uptime    time.Duration // gridnode.uptime of the nodes
	oci       *ociLog
	key       releaseKey
	mu        sync.Mutex
	override  []byte // a channel document served instead of the registrar's
}

// artifact is a release pushed to the test registry.
type artifact struct {
	ref string   // as the nodes reach it: 10.0.2.2:PORT/gridnode/release@sha256:…
	uki doc.File // its UKI, as signed
}

// ociLog is the test registry with what it served.
type ociLog struct{ *imagetest.Registry }

// blobGets counts the GETs of the blob with sha256 hex.
func (o ociLog) blobGets(hex string) int {
	n := 0
	for _, r := range o.Requests() {
		if strings.HasPrefix(r, "GET ") && strings.Contains(r, "/blobs/sha256:"+hex+" ") {
			n++
		}
	}
	return n
}

func newUpgradeRig(t *testing.T) *upRig {
	t.Helper()
	ctx := context.Background()
	g := &upRig{oci: &ociLog{imagetest.Start(t)}, key: testReleaseKey(t), uptime: nodeUptime}
	st, err := registrar.OpenStore(ctx, filepath.Join(t.TempDir(), "registrar.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// The farmer's twin and farms first: the registrar's admin is that twin.
	key, _, err := farm.NewKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	boot := httptest.NewServer(registrar.New(registrar.Config{Store: st, Log: quiet}))
	c, err := client.New(boot.URL, key, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"upgradea", "upgradeb"} {
		if g.farms[i], err = farm.CreateFarm(ctx, c, name, "GBZ6VHJ4KQ5Q7J4Y5G2N3X6TZ3V5W6Q7R2S3T4U5V6W7X8Y9Z2A3B4C5", false); err != nil {
			t.Fatalf("creating farm %s: %v", name, err)
		}
	}
	boot.Close()
	g.farmerKey = key
	srv := registrar.New(registrar.Config{Store: st, Log: quiet, AdminTwin: c.Twin(), ReleaseKeys: []doc.PublicKey{g.key.pub}})
	t.Cleanup(func() { srv.Close() })
	g.rec = &recorder{h: srv, changed: make(chan struct{})}
	admin := httptest.NewServer(g.rec)
	t.Cleanup(admin.Close)
	if g.admin, err = client.New(admin.URL, key, client.Options{}); err != nil {
		t.Fatal(err)
	}
	g.admin.SetTwin(c.Twin())

	// The nodes' side, which the test can make lie about the channel.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.port = l.Addr().(*net.TCPAddr).Port
	channel := regexp.MustCompile(`^/(api/)?v1` + regexp.QuoteMeta(doc.ChannelPath("stable")) + `$`)
	hs := &http.Server{ReadHeaderTimeout: 30 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		lie := g.override
		g.mu.Unlock()
		if lie != nil && r.Method == http.MethodGet && channel.MatchString(r.URL.Path) {
			json.NewEncoder(w).Encode(doc.ChannelState{Document: lie})
			return
		}
		g.rec.ServeHTTP(w, r)
	})}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	return g
}

// lie makes the registrar serve document as the channel's, to the nodes;
// nil ends the lie.
func (g *upRig) lie(document []byte) {
	g.mu.Lock()
	g.override = document
	g.mu.Unlock()
}

// push publishes release r's UKI (with extra bytes appended, for a UKI that
// is not the build's) and its signed document to the test registry.
func (g *upRig) push(t *testing.T, r *build.Result, extra []byte) artifact {
	t.Helper()
	version := r.Manifest.Version
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(r.Dir, layout.UKIName(version)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, layout.UKIName(version)), append(b, extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := release.Sign(dir, version, g.key.priv); err != nil {
		t.Fatal(err)
	}
	repo := fmt.Sprintf("gridnode/release-%s-%d", version, len(extra))
	digest, err := release.Push(context.Background(), dir, g.oci.Host+"/"+repo+":"+version)
	if err != nil {
		t.Fatal(err)
	}
	uki := signedFile(t, filepath.Join(dir, layout.UKIName(version)))
	_, port, _ := net.SplitHostPort(g.oci.Host)
	return artifact{ref: "10.0.2.2:" + port + "/" + repo + "@" + digest, uki: uki}
}

// sign signs a channel document for stable: version from a, its one wave
// open to share percent of the nodes since an hour ago.
func (g *upRig) sign(t *testing.T, seq uint64, version string, a artifact, share uint32, change func(*doc.Channel)) []byte {
	t.Helper()
	c := doc.Channel{Channel: "stable", Sequence: seq, Expires: time.Now().Add(2 * time.Hour), Version: version, Release: a.ref,
		Waves: []doc.Wave{{At: time.Now().Add(-time.Hour), SharePPM: share * doc.PPM / 100}}, CanaryFarms: []uint64{}}
	if change != nil {
		change(&c)
	}
	b, err := doc.SignChannel(c, g.key.priv)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publish stores a channel document on the registrar, as its admin.
func (g *upRig) publish(t *testing.T, seq uint64, version string, a artifact, share uint32, change func(*doc.Channel)) {
	t.Helper()
	if err := g.admin.PutChannel(context.Background(), "stable", g.sign(t, seq, version, a, share, change)); err != nil {
		t.Fatalf("publishing sequence %d (%s): %v", seq, version, err)
	}
}

// boot starts a node from a copy of r's USB image set for the rig, with a
// cache disk and a watchdog; it lives as long as the test.
func (g *upRig) boot(t *testing.T, name string, fw qemu.Firmware, farmID uint64, r *build.Result) *upNode {
	t.Helper()
	stick := withConf(t, filepath.Join(r.Dir, "gridnode-"+r.Manifest.Version+".img"),
		"registrar=http://10.0.2.2:"+strconv.Itoa(g.port), "farm="+strconv.FormatUint(farmID, 10),
		"uptime="+g.uptime.String(), "upgrade_poll="+upgradePoll.String(), "upgrade_trial="+upgradeTrial.String())
	vm := boot(t, qemu.Options{
		Boot:        qemu.USBBoot(stick),
		Firmware:    fw,
		Disks:       []qemu.Disk{{Size: 4 * gib, Serial: "cache-" + name}},
		ExtraArgs:   []string{"-device", "i6300esb"},
		AllowReboot: true,
		Forwards:    []qemu.Forward{{Guest: 9100}, {Guest: webPort}},
	})
	return &upNode{name: name, fw: fw, farm: farmID, vm: vm}
}

// waitOS waits until the registrar's record of n's node says it runs
// version (and whether it rolled back, from what), and returns its id.
func (g *upRig) waitOS(t *testing.T, n *upNode, version string, rolledBack bool, from string) uint64 {
	t.Helper()
	var last api.Node
	testutil.Eventually(t, 3*time.Minute, func() bool {
		nodes, err := farm.Nodes(context.Background(), g.admin, n.farm)
		if err != nil || len(nodes) != 1 {
			return false
		}
		last = nodes[0]
		return last.OSVersion == version && last.RolledBack == rolledBack && last.RolledBackFrom == from
	}, "the registrar's record of the %s node to say os_version %s, rolled_back %v %s; last: %+v", n.name, version, rolledBack, from, &last.OSState)
	return last.NodeID
}
