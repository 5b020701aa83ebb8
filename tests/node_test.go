package tests

// A node joins the grid by itself (issue 3): booted in QEMU against the
// project's registrar, run in-process on a SQLite store and reached by the
// guest through QEMU's user network (10.0.2.2 is the host's loopback).

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridnode/gridnode/internal/testutil"
	"github.com/gridnode/gridnode/node/fact"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/farm"
	"github.com/gridnode/gridnode/grid/registrar"
	modreg "github.com/gridnode/gridnode/modules/registrar"
	"github.com/gridnode/gridnode/qemu"
)

const (
	gib        = int64(1) << 30
	nodeMAC    = "52:54:00:67:6e:01"
	nodeUptime = 10 * time.Second // gridnode.uptime of the test nodes
)

// TestNode boots a node with two CPUs, 1 GiB of memory, an 8 GiB SSD that
// already holds a farmer's ext4 file system and an empty 16 GiB HDD, while
// the registrar is down; the registrar comes up 60 s after the node is
// ready. Then the node loses power and boots again on the same disk images.
// Two boots in all. In order:
//
//   - while the registrar is down the console says so, in words, and no
//     node is registered;
//   - register: once it is up the node registers within the backoff cap,
//     without a reboot, with cru, mru, sru, hru, its MAC and its address,
//     and reports uptime every gridnode.uptime (as the registrar saw it);
//   - disks: the SSD that holds a file system is left alone, the cache is
//     made on the empty HDD;
//   - reboot: after a power cut, the same disks give the same twin and node
//     id, and the farm still has one node;
//   - untouched: the SSD image has the same sha256 after both boots.
func TestNode(t *testing.T) {
	r := image(t, "node")
	g := newRig(t)
	dir := t.TempDir()

	ssd := filepath.Join(dir, "ssd.img")
	hdd := filepath.Join(dir, "hdd.img")
	farmerFS(t, ssd, 8*gib)
	ssdSum := testutil.SHA256File(t, ssd)
	disks := []qemu.Disk{
		{Path: ssd, Bus: qemu.BusSCSI, RotationRate: qemu.SSD, Serial: "ssd0"},
		{Path: hdd, Size: 16 * gib, Bus: qemu.BusSCSI, RotationRate: qemu.HDD, Serial: "hdd0"},
	}
	opts := func() qemu.Options {
		return qemu.Options{
			Boot:     kernelBoot(r, g.cmdline(nodeUptime)...),
			CPUs:     2,
			Memory:   1024,
			Disks:    disks,
			NICs:     []qemu.NIC{{MAC: nodeMAC}},
			Forwards: []qemu.Forward{{Guest: 9100}},
		}
	}

	// ---- first boot, registrar down
	vm := boot(t, opts())
	expect(t, vm, `^gridnode: init `, bootTimeout)
	expect(t, vm, `^gridnode: ready$`, bootTimeout)
	readyAt := time.Now()
	upAt := readyAt.Add(60 * time.Second)

	// The console says what is wrong, in words, while the registrar is down.
	down := regexp.MustCompile(`status: registrar error: registrar http://10\.0\.2\.2:` + strconv.Itoa(g.port) + ` unreachable: connection refused`)
	if !down.MatchString(vm.Console()) {
		if _, err := vm.Expect(context.Background(), down, time.Until(upAt)); err != nil {
			t.Fatalf("the console does not say that the registrar is unreachable: %v", err)
		}
	}
	// A deliberate outage of 60 s from ready: a timer, not a synchronisation.
	<-time.After(time.Until(upAt))
	if n := g.rec.nodeCount(); n != 0 {
		t.Fatalf("the registrar recorded %d nodes while nobody could reach it", n)
	}
	g.serveNodes()
	upAt = time.Now()
	t.Logf("registrar up for the node at %s, %s after ready", g.nodeURL(), upAt.Sub(readyAt).Round(time.Second))

	var node api.Node
	t.Run("register", func(t *testing.T) {
		// Backoff with full jitter is capped at 2 minutes; allow for the
		// request itself on an emulated, loaded machine.
		bound := modreg.BackoffCap + 30*time.Second
		created := g.rec.waitCreated(t, 1, upAt.Add(bound))
		t.Logf("node %d created %s after the registrar came up (bound %s)", created.ID, created.At.Sub(upAt).Round(100*time.Millisecond), bound)

		node = g.onlyNode(t)
		if node.NodeID != created.ID {
			t.Errorf("farm lists node %d, the registrar created node %d", node.NodeID, created.ID)
		}
		checkCapacity(t, node.Resources, 2, 1<<30, 8*gib, 16*gib)
		checkInterface(t, node.Interfaces, nodeMAC, "10.0.2.15")
		if node.SerialNumber == "" {
			t.Error("serial_number is empty")
		}

		// Uptime reports, as the registrar saw them: at least three, so
		// at least two intervals, each about gridnode.uptime.
		ups := g.rec.waitUptimes(t, node.NodeID, 3, time.Now().Add(4*nodeUptime+time.Minute))
		for i := 1; i < len(ups); i++ {
			gap := ups[i].At.Sub(ups[i-1].At)
			t.Logf("uptime report %d: %s after the previous one", i+1, gap.Round(10*time.Millisecond))
			if gap < nodeUptime*8/10 || gap > 2*nodeUptime {
				t.Errorf("uptime reports %d and %d are %s apart; gridnode.uptime is %s", i, i+1, gap.Round(100*time.Millisecond), nodeUptime)
			}
		}
		// No reboot: the node that registered has been up since before the
		// outage, and PID 1 started once.
		if up := time.Duration(ups[0].Uptime) * time.Second; up < upAt.Sub(readyAt) {
			t.Errorf("first uptime report says the node has been up %s, less than the %s outage: did it reboot?", up, upAt.Sub(readyAt).Round(time.Second))
		}
		if n := len(regexp.MustCompile(`(?m)^gridnode: init `).FindAllString(vm.Console(), -1)); n != 1 {
			t.Errorf("PID 1 started %d times during the first boot, want 1", n)
		}
		want := fmt.Sprintf(`status: registrar=registered twin=%d node=%d farm=%d`, node.TwinID, node.NodeID, g.farmID)
		if _, err := vm.Expect(context.Background(), regexp.MustCompile(regexp.QuoteMeta(want)), time.Minute); err != nil {
			t.Errorf("the console does not show the registration: %v", err)
		}
	})

	t.Run("disks", func(t *testing.T) {
		var st struct {
			Storage fact.Storage `json:"storage"`
		}
		getJSON(t, "http://"+vm.HostAddr(9100)+"/status", &st)
		bySerial := map[string]string{}
		for _, d := range st.Storage.Disks {
			bySerial[d.Serial] = d.Name
			t.Logf("storage: %s (serial %s) used=%t: %s", d.Name, d.Serial, d.Used, d.Reason)
			if d.Serial == "ssd0" && (d.Used || !strings.Contains(d.Reason, "ext4")) {
				t.Errorf("SSD %s: used=%t reason %q; want unused, saying it holds an ext4 file system", d.Name, d.Used, d.Reason)
			}
		}
		switch {
		case st.Storage.Cache == nil:
			t.Error("no cache disk, want one on the empty HDD")
		case bySerial["hdd0"] == "" || st.Storage.Cache.Disk != bySerial["hdd0"]:
			t.Errorf("cache on %q, want the empty HDD %q", st.Storage.Cache.Disk, bySerial["hdd0"])
		}
	})
	if t.Failed() {
		return
	}

	// ---- power cut, second boot on the same disk images
	vm.Kill()
	t.Run("reboot", func(t *testing.T) {
		before := len(g.rec.uptimesOf(node.NodeID))
		bootAt := time.Now()
		vm := boot(t, opts())
		expect(t, vm, `^gridnode: ready$`, bootTimeout)
		// Registered again: an uptime report from this boot reaches the
		// registrar (its uptime is shorter than the time since QEMU started).
		ups := g.rec.waitUptimes(t, node.NodeID, before+1, time.Now().Add(modreg.BackoffCap+time.Minute))
		last := ups[len(ups)-1]
		if up := time.Duration(last.Uptime) * time.Second; up > time.Since(bootAt)+5*time.Second {
			t.Errorf("the last uptime report says %s of uptime, but the VM started %s ago", up, time.Since(bootAt).Round(time.Second))
		}
		again := g.onlyNode(t)
		if again.NodeID != node.NodeID || again.TwinID != node.TwinID {
			t.Errorf("after a reboot on the same disks: twin %d node %d, want twin %d node %d", again.TwinID, again.NodeID, node.TwinID, node.NodeID)
		}
		if n := g.rec.nodeCount(); n != 1 {
			t.Errorf("the registrar created %d nodes over two boots, want 1", n)
		}
		var status struct {
			Identity fact.Identity `json:"identity"`
		}
		getJSON(t, "http://"+vm.HostAddr(9100)+"/status", &status)
		if status.Identity.Source != "loaded" || status.Identity.Ephemeral {
			t.Errorf("identity source %q ephemeral %t on the second boot, want loaded from the cache disk", status.Identity.Source, status.Identity.Ephemeral)
		}
		want := fmt.Sprintf(`status: registrar=registered twin=%d node=%d`, node.TwinID, node.NodeID)
		if _, err := vm.Expect(context.Background(), regexp.MustCompile(regexp.QuoteMeta(want)), time.Minute); err != nil {
			t.Errorf("the console does not show the same registration: %v", err)
		}
		vm.Kill()
	})

	t.Run("untouched", func(t *testing.T) {
		if got := testutil.SHA256File(t, ssd); got != ssdSum {
			t.Errorf("the SSD that held a file system changed: sha256 %s before, %s after two boots", ssdSum, got)
		}
	})
}

// checkCapacity compares what a node reports with the VM it runs in: cru
// exactly, mru up to 15% below the VM's memory, sru and hru within 1%.
func checkCapacity(t *testing.T, res api.Resources, cru uint64, mem, sru, hru int64) {
	t.Helper()
	t.Logf("resources: cru=%d mru=%d sru=%d hru=%d", res.CRU, res.MRU, res.SRU, res.HRU)
	if res.CRU != cru {
		t.Errorf("cru %d, want %d", res.CRU, cru)
	}
	if m := float64(res.MRU); m > float64(mem) || m < 0.85*float64(mem) {
		t.Errorf("mru %d (%.1f%% of %d), want within 15%% below the VM's memory", res.MRU, 100*m/float64(mem), mem)
	}
	for _, c := range []struct {
		name      string
		got, want int64
	}{{"sru", int64(res.SRU), sru}, {"hru", int64(res.HRU), hru}} {
		if math.Abs(float64(c.got-c.want)) > 0.01*float64(c.want) {
			t.Errorf("%s %d, want %d ± 1%%", c.name, c.got, c.want)
		}
	}
}

// checkInterface finds the interface with mac and checks it has addr.
func checkInterface(t *testing.T, ifaces []api.Interface, mac, addr string) {
	t.Helper()
	for _, i := range ifaces {
		if strings.EqualFold(i.Mac, mac) {
			for _, ip := range i.IPs {
				if ip == addr {
					return
				}
			}
			t.Errorf("interface %s (%s) has addresses %v, want %s among them", i.Name, i.Mac, i.IPs, addr)
			return
		}
	}
	t.Errorf("no interface with MAC %s in %+v", mac, ifaces)
}

// farmerFS makes a disk image of size bytes that holds an ext4 file system
// (whole disk, no partition table) with a file in it, as a farmer's disk
// with data would.
func farmerFS(t *testing.T, path string, size int64) {
	t.Helper()
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		mkfs = "/sbin/mkfs.ext4"
		if _, err := os.Stat(mkfs); err != nil {
			t.Fatal("mkfs.ext4 not found: apt-get install e2fsprogs")
		}
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "farmer-data.txt"), []byte("the farmer's data: a node must never touch it\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command(mkfs, "-q", "-F", "-L", "farmerdata", "-d", src, path).CombinedOutput()
	if err != nil {
		t.Fatalf("mkfs.ext4 %s: %v\n%s", path, err, out)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, b)
	}
}

// ---- the registrar side

// rig is the grid a test node joins: the project's registrar on a SQLite
// store in a temporary folder, a farmer with a farm, and a port for the
// node that stays closed (the registrar is "down" for the node) until
// serveNodes. The farmer talks to the registrar on a listener of its own.
type rig struct {
	t      *testing.T
	rec    *recorder // the registrar's handler
	farmer *client.Client
	key    ed25519.PrivateKey // the farmer's: the farm's owner twin
	farmID uint64
	port   int          // the node's registrar: http://10.0.2.2:port, i.e. 127.0.0.1:port on the host
	nodes  *http.Server // serving the node's port, from serveNodes on
	// tls, when set, is the certificate the node's side serves HTTPS with
	// (the node's URL is then https://10.0.2.2:port).
	tls *tls.Certificate
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	st, err := registrar.OpenStore(ctx, filepath.Join(t.TempDir(), "registrar.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv := registrar.New(registrar.Config{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { srv.Close(); st.Close() })
	rec := &recorder{h: srv, changed: make(chan struct{})}
	farmerSide := httptest.NewServer(rec)
	t.Cleanup(farmerSide.Close)

	key, _, err := farm.NewKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(farmerSide.URL, key, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := farm.CreateFarm(ctx, c, "nodetest", "GBZ6VHJ4KQ5Q7J4Y5G2N3X6TZ3V5W6Q7R2S3T4U5V6W7X8Y9Z2A3B4C5", false)
	if err != nil {
		t.Fatalf("creating the farm: %v", err)
	}
	// A port found free now; it stays closed until serveNodes, so the
	// node's connections are refused as by a registrar that is down.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return &rig{t: t, rec: rec, farmer: c, key: key, farmID: id, port: port}
}

// cmdline is what the node needs on its kernel command line to join the
// rig's farm.
func (g *rig) cmdline(uptime time.Duration) []string {
	return []string{
		"gridnode.registrar=" + g.nodeURL(),
		"gridnode.farm=" + strconv.FormatUint(g.farmID, 10),
		"gridnode.uptime=" + uptime.String(),
	}
}

func (g *rig) nodeURL() string { return g.scheme() + "://10.0.2.2:" + strconv.Itoa(g.port) }

func (g *rig) scheme() string {
	if g.tls != nil {
		return "https"
	}
	return "http"
}

// serveNodes opens the node's port: the registrar comes up for the node.
func (g *rig) serveNodes() {
	g.t.Helper()
	var l net.Listener
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(g.port))
	if err != nil {
		g.t.Fatalf("opening the node's registrar port %d: %v", g.port, err)
	}
	if g.tls != nil {
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{*g.tls}})
	}
	hs := &http.Server{Handler: g.rec, ReadHeaderTimeout: 30 * time.Second}
	go hs.Serve(l)
	g.nodes = hs
	g.t.Cleanup(func() { hs.Close() })
}

// stopNodes closes the node's port again: the registrar is down for it.
func (g *rig) stopNodes() { g.nodes.Close() }

// onlyNode reads the farm's nodes back through the API and wants one.
func (g *rig) onlyNode(t *testing.T) api.Node {
	t.Helper()
	nodes, err := farm.Nodes(context.Background(), g.farmer, g.farmID)
	if err != nil {
		t.Fatalf("listing the farm's nodes: %v", err)
	}
	if len(nodes) != 1 {
		t.Fatalf("farm %d has %d nodes, want 1: %+v", g.farmID, len(nodes), nodes)
	}
	return nodes[0]
}

// recorder wraps the registrar's HTTP handler and notes, as the registrar
// answers them, every node it creates and every uptime report it accepts
// (201), with the time the request arrived. It sees only the wire API
// (shared/registrar-api.md), not the registrar's internals.
type recorder struct {
	h       http.Handler
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every note
	created []created
	uptimes []uptime
}

type created struct {
	ID uint64
	At time.Time
}

type uptime struct {
	NodeID uint64
	Uptime uint64 // seconds since the node booted, as it reported
	At     time.Time
	OS     api.OSState // the release it said it runs
}

var (
	nodesRoute  = regexp.MustCompile(`^/(?:api/)?v1/nodes/?$`)
	uptimeRoute = regexp.MustCompile(`^/(?:api/)?v1/nodes/(\d+)/uptime$`)
)

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	isNodes, up := nodesRoute.MatchString(req.URL.Path), uptimeRoute.FindStringSubmatch(req.URL.Path)
	if req.Method != http.MethodPost || (!isNodes && up == nil) {
		r.h.ServeHTTP(w, req)
		return
	}
	at := time.Now()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	cw := &captureWriter{ResponseWriter: w, status: http.StatusOK}
	r.h.ServeHTTP(cw, req)
	if cw.status != http.StatusCreated {
		return
	}
	switch {
	case isNodes:
		var id api.NodeID
		if json.Unmarshal(cw.body.Bytes(), &id) == nil && id.NodeID != 0 {
			r.note(func() { r.created = append(r.created, created{id.NodeID, at}) })
		}
	default:
		var u api.Uptime
		node, _ := strconv.ParseUint(up[1], 10, 64)
		if json.Unmarshal(body, &u) == nil {
			r.note(func() { r.uptimes = append(r.uptimes, uptime{node, u.Uptime, at, u.OSState}) })
		}
	}
}

// captureWriter keeps the status and body of a response as it goes out.
type captureWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *captureWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *captureWriter) Write(b []byte) (int, error) {
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

func (r *recorder) note(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) nodeCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.created)
}

func (r *recorder) uptimesOf(node uint64) []uptime {
	r.mu.Lock()
	defer r.mu.Unlock()
	var l []uptime
	for _, u := range r.uptimes {
		if u.NodeID == node {
			l = append(l, u)
		}
	}
	return l
}

// wait waits until done holds (checked under the lock after every change)
// or the deadline passes.
func (r *recorder) wait(deadline time.Time, done func() bool) error {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		r.mu.Lock()
		ok, ch := done(), r.changed
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return errors.New("deadline passed")
		}
	}
}

// waitCreated waits for the n-th node creation and returns it.
func (r *recorder) waitCreated(t *testing.T, n int, deadline time.Time) created {
	t.Helper()
	if err := r.wait(deadline, func() bool { return len(r.created) >= n }); err != nil {
		t.Fatalf("the registrar did not create node number %d by %s (%s from now)", n, deadline.Format(time.TimeOnly), time.Until(deadline).Round(time.Second))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.created[n-1]
}

// waitUptimes waits until the registrar has written n uptime reports of node
// and returns them.
func (r *recorder) waitUptimes(t *testing.T, node uint64, n int, deadline time.Time) []uptime {
	t.Helper()
	count := func() int {
		c := 0
		for _, u := range r.uptimes {
			if u.NodeID == node {
				c++
			}
		}
		return c
	}
	if err := r.wait(deadline, func() bool { return count() >= n }); err != nil {
		t.Fatalf("the registrar has %d uptime reports of node %d, want %d by %s", len(r.uptimesOf(node)), node, n, deadline.Format(time.TimeOnly))
	}
	return r.uptimesOf(node)
}
