package upgrade

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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
	"github.com/gridnode/gridnode/upgrade/doc"
	"github.com/gridnode/gridnode/upgrade/layout"
)

// testRegistry is go-containerregistry's registry in process, behind a
// handler that logs every blob request and can send other bytes for one
// blob (a registry, or a mirror, that lies).
type testRegistry struct {
	*httptest.Server
	mu     sync.Mutex
	blobs  []string // digests asked for
	forged map[string][]byte
}

func newRegistry(t *testing.T) *testRegistry {
	t.Helper()
	r := &testRegistry{forged: map[string][]byte{}}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, q *http.Request) {
		if i := strings.Index(q.URL.Path, "/blobs/sha256:"); i >= 0 && q.Method == http.MethodGet {
			d := q.URL.Path[i+len("/blobs/"):]
			r.mu.Lock()
			r.blobs = append(r.blobs, d)
			b, forged := r.forged[d]
			r.mu.Unlock()
			if forged {
				w.Header().Set("Docker-Content-Digest", d)
				w.Write(b)
				return
			}
		}
		h.ServeHTTP(w, q)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *testRegistry) host() string { return strings.TrimPrefix(r.URL, "http://") }

func (r *testRegistry) asked(digest string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.blobs {
		if d == digest {
			return true
		}
	}
	return false
}

// testRelease is a release folder: a UKI-named file of random bytes (the
// puller does not read it) and its release document.
type testRelease struct {
	version string
	uki     []byte
	file    doc.File
	ref     string // pushed, by digest
}

func pushRelease(t *testing.T, reg *testRegistry, version string, signer []byte, sign func(doc.Release) ([]byte, error)) *testRelease {
	t.Helper()
	dir := t.TempDir()
	r := &testRelease{version: version, uki: make([]byte, 3<<20+17)}
	rand.Read(r.uki)
	if signer != nil {
		r.uki = signer
	}
	name := layout.UKIName(version)
	os.WriteFile(filepath.Join(dir, name), r.uki, 0o644)
	sum := sha256.Sum256(r.uki)
	r.file = doc.File{Name: name, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(r.uki))}
	b, err := sign(doc.Release{Version: version, Files: []doc.File{r.file}})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, doc.ReleaseName), b, 0o644)
	d, err := release.Push(context.Background(), dir, reg.host()+"/gridnode/release:"+version)
	if err != nil {
		t.Fatal(err)
	}
	r.ref = reg.host() + "/gridnode/release@" + d
	return r
}

func TestPull(t *testing.T) {
	key, pub := releaseKey(t)
	other, _ := releaseKey(t)
	signed := func(r doc.Release) ([]byte, error) { return doc.SignRelease(r, key) }
	reg := newRegistry(t)
	good := pushRelease(t, reg, "0.2.0", nil, signed)
	ukiDigest := "sha256:" + good.file.SHA256
	ctx := context.Background()
	p := puller{keys: []doc.PublicKey{pub}}

	t.Run("verified", func(t *testing.T) {
		var seen int64
		p := p
		p.progress = func(file string, done, total int64) { seen = done }
		dir := filepath.Join(t.TempDir(), "release")
		r, err := p.pull(ctx, good.ref, "0.2.0", dir)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(r.ukiPath())
		if !bytes.Equal(b, good.uki) || r.uki != good.file || seen != good.file.Size {
			t.Fatalf("pulled %d bytes (%v), file %+v, progress %d", len(b), bytes.Equal(b, good.uki), r.uki, seen)
		}
		if _, err := os.Stat(filepath.Join(dir, doc.ReleaseName)); err != nil {
			t.Fatalf("the release document is not kept for the trial: %v", err)
		}
	})

	// Refused before the UKI is downloaded.
	for _, c := range []struct {
		name    string
		rel     *testRelease
		version string
		want    string
	}{
		{"signed by another key", pushRelease(t, reg, "0.2.1", nil, func(r doc.Release) ([]byte, error) { return doc.SignRelease(r, other) }), "0.2.1", "signed by no trusted release key"},
		{"unsigned", pushRelease(t, reg, "0.2.2", nil, func(r doc.Release) ([]byte, error) { return doc.SignRelease(r) }), "0.2.2", "not signed"},
		{"another version", good, "0.3.0", "is for version 0.2.0, the channel for 0.3.0"},
		{"the artifact's UKI is not the signed one", pushRelease(t, reg, "0.2.3", nil, func(r doc.Release) ([]byte, error) {
			r.Files[0].SHA256 = strings.Repeat("0", 64)
			return doc.SignRelease(r, key)
		}), "0.2.3", "is not the signed one"},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg.mu.Lock()
			reg.blobs = nil
			reg.mu.Unlock()
			_, err := p.pull(ctx, c.rel.ref, c.version, filepath.Join(t.TempDir(), "release"))
			if !errors.Is(err, errRefused) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("pull: %v, want refused: %q", err, c.want)
			}
			if reg.asked("sha256:" + c.rel.file.SHA256) {
				t.Fatal("the UKI was downloaded for a release that was refused")
			}
		})
	}

	t.Run("the registry sends other bytes", func(t *testing.T) {
		forged := append([]byte(nil), good.uki...)
		forged[len(forged)/2] ^= 1
		reg.mu.Lock()
		reg.forged[ukiDigest] = forged
		reg.mu.Unlock()
		defer func() { reg.mu.Lock(); delete(reg.forged, ukiDigest); reg.mu.Unlock() }()
		dir := filepath.Join(t.TempDir(), "release")
		_, err := p.pull(ctx, good.ref, "0.2.0", dir)
		if !errors.Is(err, errRefused) || !strings.Contains(err.Error(), "the signed release says "+good.file.SHA256) {
			t.Fatalf("pull: %v, want the sha256 mismatch", err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("a refused download left %v in %s", ents, dir)
		}
	})

	t.Run("a lying mirror is passed over", func(t *testing.T) {
		mirror := newRegistry(t)
		// The mirror holds the same artifact, but sends other bytes for
		// its UKI.
		pushRelease(t, mirror, "0.2.0", good.uki, signed)
		mirror.forged[ukiDigest] = make([]byte, len(good.uki))
		p := p
		p.mirror = "http://" + mirror.host()
		r, err := p.pull(ctx, good.ref, "0.2.0", filepath.Join(t.TempDir(), "release"))
		if err != nil {
			t.Fatal(err)
		}
		if !mirror.asked(ukiDigest) {
			t.Fatal("the mirror was not asked first")
		}
		if b, _ := os.ReadFile(r.ukiPath()); !bytes.Equal(b, good.uki) {
			t.Fatal("the UKI pulled is not the signed one")
		}
	})
}
