package cli

import (
	"crypto/ed25519"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/gridnode/gridnode/build/release"
	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/farm"
	"github.com/gridnode/gridnode/upgrade/doc"
)

// channelRoutes serves the channel routes of the documented wire shape
// (upgrade/doc.ChannelPath) the way the registrar is to: PUT by the admin
// twin only, the body stored as sent, GET answering it with the hold. It
// stands in for the registrar until the registrar serves them.
type channelRoutes struct {
	mu     sync.Mutex
	admin  ed25519.PublicKey
	twin   uint64
	stored map[string][]byte
}

func (c *channelRoutes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, api.Prefix+"/channels/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		challenge, _, twin, sig, err := api.ParseAuthHeader(r.Header.Get("X-Auth"))
		if err != nil || twin != c.twin || !ed25519.Verify(c.admin, challenge, sig) {
			http.Error(w, `{"error":"not the admin twin"}`, http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		c.stored[name] = b
		w.WriteHeader(http.StatusCreated)
	case http.MethodGet:
		b, ok := c.stored[name]
		if !ok {
			http.Error(w, `{"error":"no such channel"}`, http.StatusNotFound)
			return
		}
		w.Write([]byte(`{"document":` + strings.TrimSpace(string(b)) + `,"hold":{"paused":true}}`))
	}
}

func TestChannelPublish(t *testing.T) {
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

	adminKey := filepath.Join(dir, "admin.key")
	_, admin, _ := ed25519.GenerateKey(nil)
	farm.SaveKey(adminKey, admin, false)
	routes := &channelRoutes{admin: admin.Public().(ed25519.PublicKey), twin: 1, stored: map[string][]byte{}}
	reg := httptest.NewServer(routes)
	defer reg.Close()

	publish := func(extra ...string) (string, string, int) {
		return farmRun(t, "", append([]string{"channel", "publish", "--registrar", reg.URL, "--channel", "beta",
			"--release", repo + "@" + digest, "--key", relKey, "--admin-key", adminKey, "--twin", "1",
			"--waves", "10%,100%", "--wave-time", "1h", "--canary-farms", "7", "--start", "2026-06-01T12:00:00Z"}, extra...)...)
	}
	if out, errOut, code := publish(); code != 0 || !strings.Contains(out, "sequence 1, version 2.0") {
		t.Fatalf("channel publish: %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := publish(); code != 0 || !strings.Contains(out, "sequence 2,") {
		t.Fatalf("second channel publish: %d\n%s%s", code, out, errOut)
	}
	c, err := doc.OpenChannel(routes.stored["beta"], []doc.PublicKey{mustKey(t, pub)})
	if err != nil {
		t.Fatalf("the stored document: %v", err)
	}
	if c.Sequence != 2 || c.Version != "2.0" || c.Release != repo+"@"+digest || len(c.Waves) != 2 || c.Waves[0].SharePPM != 100_000 || c.CanaryFarms[0] != 7 {
		t.Fatalf("stored %+v", c)
	}
	out, errOut, code = farmRun(t, "", "channel", "show", "--registrar", reg.URL, "--channel", "beta", "--key", pub)
	if code != 0 || !strings.Contains(out, "sequence 2, version 2.0") || !strings.Contains(out, "signed by a given key") || !strings.Contains(out, "paused true") {
		t.Fatalf("channel show: %d\n%s%s", code, out, errOut)
	}

	// A release not signed by the channel's key is refused before anything
	// is stored.
	otherKey := filepath.Join(dir, "other.key")
	farmRun(t, "", "release", "keygen", "-o", otherKey)
	_, errOut, code = farmRun(t, "", "channel", "publish", "--registrar", reg.URL, "--channel", "edge",
		"--release", repo+"@"+digest, "--key", otherKey, "--admin-key", adminKey, "--twin", "1")
	if code == 0 || !strings.Contains(errOut, "no trusted release key") || routes.stored["edge"] != nil {
		t.Fatalf("publishing a release signed by another key: %d %s", code, errOut)
	}
	// A key that is not the admin twin's is refused by the registrar.
	_, errOut, code = publish("--twin", "2")
	if code == 0 || !strings.Contains(errOut, "401") {
		t.Fatalf("publish as another twin: %d %s", code, errOut)
	}
}

func mustKey(t *testing.T, s string) doc.PublicKey {
	k, err := doc.ParsePublicKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
