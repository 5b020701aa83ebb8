package netboot_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/gridnode/gridnode/build/media"
	"github.com/gridnode/gridnode/build/pxe"
	"github.com/gridnode/gridnode/build/release"
	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/netboot"
	"github.com/gridnode/gridnode/grid/registrar"
	"github.com/gridnode/gridnode/grid/registrar/registrartest"
	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/upgrade/doc"
	"github.com/gridnode/gridnode/upgrade/gate"
)

// pushRelease makes a signed release of stand-in files with a PXE bundle
// (and a disk image the server must not download) and pushes it; it
// returns REPO@DIGEST.
func pushRelease(t *testing.T, repo, version string, key ed25519.PrivateKey) string {
	t.Helper()
	dir := t.TempDir()
	src := t.TempDir()
	in := media.Input{Cmdline: "console=ttyS0 release=" + version, Epoch: time.Unix(0, 0)}
	for _, f := range []struct {
		p    *string
		name string
	}{{&in.Kernel, "kernel-" + version}, {&in.Initrd, "initrd-" + version}, {&in.IPXEEFI, "ipxe.efi"}, {&in.Undionly, "undionly.kpxe"}} {
		*f.p = filepath.Join(src, f.name)
		os.WriteFile(*f.p, bytes.Repeat([]byte(f.name), 100), 0o644)
	}
	if err := pxe.Write(in, filepath.Join(dir, "pxe")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "gridnode-"+version+".img"), bytes.Repeat([]byte("disk"), 1<<16), 0o644)
	if err := release.Sign(dir, version, key); err != nil {
		t.Fatal(err)
	}
	dgst, err := release.Push(context.Background(), dir, repo+":"+version)
	if err != nil {
		t.Fatal(err)
	}
	return repo + "@" + dgst
}

// nodeKeyIn returns a node key whose gate point for version is below share
// (in) or not (!in).
func nodeKeyIn(t *testing.T, version string, share uint32, in bool) ed25519.PublicKey {
	for range 10000 {
		pub, _, _ := ed25519.GenerateKey(nil)
		if (gate.Point(api.PublicKey(pub), version) < share) == in {
			return pub
		}
	}
	t.Fatal("no key found")
	return nil
}

// TestFollowChannel: gridnode netboot --channel serves each machine the
// release its wave allows, found through the registrar's node records by
// its MAC, the previous release to a node that rolled back, to one outside
// the wave and to a machine the registrar does not know, and only releases
// that verified; it pulls a release's PXE files, not its disk images.
func TestFollowChannel(t *testing.T) {
	ctx := context.Background()
	relKey, _ := doc.GenerateKey()
	otherKey, _ := doc.GenerateKey()
	pub := doc.PublicKey(relKey.Public().(ed25519.PublicKey))

	oci := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer oci.Close()
	repo := strings.TrimPrefix(oci.URL, "http://") + "/gridnode/release"
	rel1, rel2 := pushRelease(t, repo, "1.0", relKey), pushRelease(t, repo, "2.0", relKey)
	hex := func(ref string) string { _, d, _ := strings.Cut(ref, "@sha256:"); return d }

	// The registrar (no release keys: it stores what the admin sends, so
	// the netboot server's own check is what refuses a bad document), a
	// farm of three nodes: A in 2.0's 10 % wave, B not, C in it but rolled
	// back from 2.0.
	reg := registrartest.Start(t, registrar.Config{})
	st, now := reg.Store, store.Stamp(time.Now())
	farm, _ := st.CreateFarm(ctx, api.Farm{FarmName: "netfarm", TwinID: reg.AdminTwin, CreatedAt: now, UpdatedAt: now})
	macs := map[string]string{"A": "52:54:00:00:00:0a", "B": "52:54:00:00:00:0b", "C": "52:54:00:00:00:0c"}
	for name, in := range map[string]bool{"A": true, "B": false, "C": true} {
		id, err := st.CreateNode(ctx, api.Node{FarmID: farm, TwinID: reg.Account(t, nodeKeyIn(t, "2.0", 100_000, in)), SerialNumber: name, CreatedAt: now, UpdatedAt: now,
			Interfaces: []api.Interface{{Name: "eth0", Mac: strings.ToUpper(macs[name])}}})
		if err != nil {
			t.Fatal(err)
		}
		if name == "C" {
			st.ReportUptime(ctx, []store.Uptime{{NodeID: id, At: now, OS: api.OSState{OSVersion: "1.0", RolledBack: true, RolledBackFrom: "2.0"}}})
		}
	}
	publish := func(seq uint64, version, ref string, share uint32, key ed25519.PrivateKey) {
		t.Helper()
		d, err := doc.SignChannel(doc.Channel{Channel: "stable", Sequence: seq, Expires: time.Now().Add(time.Hour), Version: version, Release: ref,
			Waves: doc.Schedule(time.Now().Add(-time.Minute), []uint32{share}, time.Hour)}, key)
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Admin.PutChannel(ctx, "stable", d); err != nil {
			t.Fatal(err)
		}
	}

	// The netboot server, following the channel.
	cfg, _ := netboot.ParseConfig("netboot.yaml", []byte(fmt.Sprintf("default: {farm: %d}\n", farm)))
	logger, rec := newLog(t)
	s, err := netboot.New(bundle(t), cfg, net.IPv4(127, 0, 0, 1), logger)
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	if err := s.FollowChannel(netboot.ChannelOptions{Registrar: reg.URL, Channel: "stable", Cache: cache, Poll: 50 * time.Millisecond}); err == nil {
		t.Fatal("following a channel without release keys")
	}
	if err := s.FollowChannel(netboot.ChannelOptions{Registrar: reg.URL, Channel: "stable", Keys: []doc.PublicKey{pub}, Cache: cache, Poll: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var l netboot.Listeners
	if l.HTTP, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, l) }()
	defer func() { cancel(); <-done }()
	base := "http://" + l.HTTP.Addr().String() + "/"
	rec.wait(t, map[string]any{"msg": "netboot: channel: machines known", "count": float64(3)})

	boots := func(mac string) string {
		t.Helper()
		script := get(t, base+"boot.ipxe?mac="+mac)
		kernel := strings.Fields(strings.SplitN(script, "\n", 3)[1])[1]
		return kernel
	}
	// Nothing published: the --image folder.
	if k := boots(macs["A"]); k != "vmlinuz" {
		t.Fatalf("before any document, A boots %s", k)
	}

	publish(1, "1.0", rel1, doc.PPM, relKey)
	rec.wait(t, map[string]any{"msg": "netboot: channel: serving release", "version": "1.0"})
	if k := boots(macs["B"]); k != "release/"+hex(rel1)+"/pxe/vmlinuz" {
		t.Fatalf("with 1.0 at 100 %%, B boots %s", k)
	}

	publish(2, "2.0", rel2, 100_000, relKey)
	rec.wait(t, map[string]any{"msg": "netboot: channel: serving release", "version": "2.0"})
	for who, want := range map[string]string{"A": rel2, "B": rel1, "C": rel1, "unknown": rel1} {
		mac := macs[who]
		if mac == "" {
			mac = "52:54:00:99:99:99"
		}
		if k := boots(mac); k != "release/"+hex(want)+"/pxe/vmlinuz" {
			t.Errorf("%s boots %s, want the release %s", who, k, want)
		}
	}
	script := get(t, base+"boot.ipxe?mac="+macs["A"])
	if !strings.Contains(script, "console=ttyS0 release=2.0 gridnode.farm=") || !strings.Contains(script, "initrd release/"+hex(rel2)+"/pxe/initrd") {
		t.Errorf("A's script does not boot 2.0 with its command line:\n%s", script)
	}
	rec.wait(t, map[string]any{"msg": "netboot: http: sent boot script", "mac": macs["C"], "why": "the previous release, its trial of 2.0 failed (rolled back)"})
	if got := get(t, base+"release/"+hex(rel2)+"/pxe/vmlinuz"); got != strings.Repeat("kernel-2.0", 100) {
		t.Errorf("2.0's kernel over HTTP: %d bytes", len(got))
	}
	for _, bad := range []string{"release/" + hex(rel2) + "/pxe/../../state.json", "release/" + hex(rel2) + "/pxe/boot.ipxe", "release/nothex/pxe/vmlinuz", "release/" + hex(rel2) + "/gridnode-2.0.img"} {
		if resp, err := http.Get(base + bad); err != nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %v %v, want 404", bad, resp.Status, err)
		}
	}
	if _, err := os.Stat(filepath.Join(cache, hex(rel2), "gridnode-2.0.img")); err == nil {
		t.Error("the server downloaded the release's disk image")
	}

	// A document signed by another key is not taken.
	publish(3, "3.0", rel2, doc.PPM, otherKey)
	rec.wait(t, map[string]any{"msg": "netboot: channel: following the channel"})
	if k := boots(macs["B"]); k != "release/"+hex(rel1)+"/pxe/vmlinuz" {
		t.Errorf("after a document signed by another key, B boots %s", k)
	}
}
