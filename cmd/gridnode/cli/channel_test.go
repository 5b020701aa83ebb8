package cli

import (
	"context"
	"crypto/ed25519"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/gridnode/gridnode/build/release"
	"github.com/gridnode/gridnode/grid/farm"
	"github.com/gridnode/gridnode/grid/registrar"
	"github.com/gridnode/gridnode/grid/registrar/registrartest"
	"github.com/gridnode/gridnode/upgrade/doc"
)

// TestChannelCommands: publish, show, status, pause and resume against the
// project's registrar in-process, with a signed release in an in-process
// OCI registry.
func TestChannelCommands(t *testing.T) {
	dir := t.TempDir()
	relKey := filepath.Join(dir, "release.key")
	out, errOut, code := farmRun(t, "", "release", "keygen", "-o", relKey)
	if code != 0 {
		t.Fatalf("release keygen: %s", errOut)
	}
	pub := strings.TrimSpace(out)
	key, _ := doc.LoadPrivateKey(relKey)

	// A signed release in an in-process OCI registry.
	rel := filepath.Join(dir, "dist")
	os.MkdirAll(rel, 0o755)
	os.WriteFile(filepath.Join(rel, "vmlinuz"), []byte("kernel"), 0o644)
	if err := release.Sign(rel, "2.0", key); err != nil {
		t.Fatal(err)
	}
	oci := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer oci.Close()
	repo := strings.TrimPrefix(oci.URL, "http://") + "/gridnode/release"
	digest, err := release.Push(t.Context(), rel, repo+":2.0")
	if err != nil {
		t.Fatal(err)
	}

	// The registrar, its admin twin the admin key's, trusting the release key.
	adminKey := filepath.Join(dir, "admin.key")
	r := registrartest.Start(t, registrar.Config{ReleaseKeys: []doc.PublicKey{mustKey(t, pub)}})
	farm.SaveKey(adminKey, r.AdminKey, false)
	st := r.Store

	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := farmRun(t, "", append(args[:1:1], append([]string{"--registrar", r.URL, "--channel", "beta"}, args[1:]...)...)...)
		if code != 0 {
			t.Fatalf("gridnode channel %s: %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	publish := []string{"publish", "--release", repo + "@" + digest, "--key", relKey, "--admin-key", adminKey,
		"--waves", "10%,100%", "--wave-time", "1h", "--canary-farms", "7"}
	if out := run(append([]string{"channel"}, publish...)...); !strings.Contains(out, "sequence 1, version 2.0") {
		t.Fatalf("channel publish: %s", out)
	}
	if out := run(append([]string{"channel"}, publish...)...); !strings.Contains(out, "sequence 2,") {
		t.Fatalf("second channel publish: %s", out)
	}
	stored, err := st.Channel(context.Background(), "beta")
	if err != nil {
		t.Fatal(err)
	}
	c, err := doc.OpenChannel(stored.Document, []doc.PublicKey{mustKey(t, pub)})
	if err != nil {
		t.Fatalf("the stored document: %v", err)
	}
	if c.Sequence != 2 || c.Version != "2.0" || c.Release != repo+"@"+digest || len(c.Waves) != 2 || c.Waves[0].SharePPM != 100_000 || c.CanaryFarms[0] != 7 {
		t.Fatalf("stored %+v", c)
	}
	if out := run("channel", "show", "--key", pub); !strings.Contains(out, "sequence 2, version 2.0") || !strings.Contains(out, "signed by a given key") || !strings.Contains(out, "paused false") {
		t.Fatalf("channel show: %s", out)
	}
	for _, want := range []string{"sequence 2, version 2.0", "signed by a given key", "wave 1 of 2 (10%); next wave", "nodes act on 10%", "hold: none"} {
		if out := run("channel", "status", "--key", pub); !strings.Contains(out, want) {
			t.Fatalf("channel status: no %q in\n%s", want, out)
		}
	}
	out = run("channel", "pause", "--admin-key", adminKey, "--reason", "slow disks on farm 7")
	for _, want := range []string{"nodes act on 0%", "hold: paused, capped at 10%", "by twin", "slow disks on farm 7"} {
		if !strings.Contains(out, want) {
			t.Fatalf("channel pause: no %q in\n%s", want, out)
		}
	}
	out = run("channel", "resume", "--admin-key", adminKey)
	if !strings.Contains(out, "hold: capped at 10%") || !strings.Contains(out, "nodes act on 10%") || strings.Contains(out, "paused") {
		t.Fatalf("channel resume:\n%s", out)
	}

	// A release not signed by the channel's key is refused before anything
	// is stored.
	otherKey := filepath.Join(dir, "other.key")
	farmRun(t, "", "release", "keygen", "-o", otherKey)
	_, errOut, code = farmRun(t, "", "channel", "publish", "--registrar", r.URL, "--channel", "edge",
		"--release", repo+"@"+digest, "--key", otherKey, "--admin-key", adminKey)
	if _, err := st.Channel(context.Background(), "edge"); code == 0 || !strings.Contains(errOut, "no trusted release key") || err == nil {
		t.Fatalf("publishing a release signed by another key: %d %s", code, errOut)
	}
	// A key that is not the admin twin's is refused by the registrar.
	otherAdmin := filepath.Join(dir, "farmer.key")
	_, k2, _ := ed25519.GenerateKey(nil)
	farm.SaveKey(otherAdmin, k2, false)
	r.Account(t, k2.Public().(ed25519.PublicKey))
	for _, args := range [][]string{append(publish, "--admin-key", otherAdmin), {"pause", "--admin-key", otherAdmin}} {
		_, errOut, code = farmRun(t, "", append([]string{"channel", "--registrar", r.URL, "--channel", "beta"}, args...)...)
		if code == 0 || !strings.Contains(errOut, "403 only the admin twin") {
			t.Fatalf("channel %s as another twin: %d %s", args[0], code, errOut)
		}
	}
}

func mustKey(t *testing.T, s string) doc.PublicKey {
	k, err := doc.ParsePublicKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
