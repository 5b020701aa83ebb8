package release_test

import (
	"context"
	"crypto/ed25519"
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
)

func releaseKey(t *testing.T) (ed25519.PrivateKey, doc.PublicKey) {
	t.Helper()
	k, err := doc.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k, doc.PublicKey(k.Public().(ed25519.PublicKey))
}

// blobLog is an in-process registry that records the blobs it sends.
type blobLog struct {
	mu    sync.Mutex
	blobs []string
	h     http.Handler
}

func (b *blobLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
		b.mu.Lock()
		b.blobs = append(b.blobs, r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
		b.mu.Unlock()
	}
	b.h.ServeHTTP(w, r)
}

func TestSignVerifyPull(t *testing.T) {
	key, pub := releaseKey(t)
	_, other := releaseKey(t)
	dir := releaseDir(t)
	if err := release.Checksums(dir); err != nil {
		t.Fatal(err)
	}
	if err := release.Sign(dir, "1.0", nil); err != nil {
		t.Fatal(err)
	}
	if err := release.CheckSigned(dir); !errors.Is(err, release.ErrUnsigned) {
		t.Fatalf("CheckSigned of an unsigned release: %v", err)
	}
	if err := release.Sign(dir, "1.0", key); err != nil {
		t.Fatal(err)
	}
	if err := release.CheckSigned(dir); err != nil {
		t.Fatal(err)
	}
	r, err := release.Verify(dir, []doc.PublicKey{pub})
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != "1.0" || len(r.Files) != 7 { // six files and SHA256SUMS
		t.Fatalf("release document: %+v", r)
	}
	if _, err := release.Verify(dir, []doc.PublicKey{other}); !errors.Is(err, doc.ErrUnknownKey) {
		t.Fatalf("Verify with another key: %v", err)
	}

	logged := &blobLog{h: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(logged)
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/gridnode/release"
	ctx := context.Background()
	if _, err := release.Push(ctx, dir, repo+":good"); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if _, err := release.Pull(ctx, repo+":good", out, []doc.PublicKey{other, pub}); err != nil {
		t.Fatalf("pull of a signed release: %v", err)
	}
	if _, err := release.Verify(out, []doc.PublicKey{pub}); err != nil {
		t.Fatalf("the pulled folder: %v", err)
	}

	// A file changed after signing: pull refuses it having fetched the
	// manifest and release.json only.
	os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("another kernel"), 0o644)
	if _, err := release.Verify(dir, []doc.PublicKey{pub}); err == nil || !strings.Contains(err.Error(), "vmlinuz") {
		t.Fatalf("Verify of a changed file: %v", err)
	}
	if _, err := release.Push(ctx, dir, repo+":tampered"); err != nil {
		t.Fatal(err)
	}
	logged.mu.Lock()
	logged.blobs = nil
	logged.mu.Unlock()
	out = t.TempDir()
	_, err = release.Pull(ctx, repo+":tampered", out, []doc.PublicKey{pub})
	if err == nil || !strings.Contains(err.Error(), "vmlinuz") {
		t.Fatalf("pull of a release whose file does not match its signed document: %v", err)
	}
	if len(logged.blobs) != 1 {
		t.Errorf("the refused pull fetched blobs %v; want release.json's only", logged.blobs)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("the refused pull wrote %d files", len(ents))
	}
	if _, err := release.Pull(ctx, repo+":good", t.TempDir(), []doc.PublicKey{other}); !errors.Is(err, doc.ErrUnknownKey) {
		t.Errorf("pull with a key that did not sign: %v", err)
	}
}

func TestReadDocument(t *testing.T) {
	key, pub := releaseKey(t)
	dir := releaseDir(t)
	release.Sign(dir, "1.0", key)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/gridnode/release:1.0"
	ctx := context.Background()
	digest, err := release.Push(ctx, dir, ref)
	if err != nil {
		t.Fatal(err)
	}
	r, err := release.ReadDocument(ctx, strings.TrimSuffix(ref, ":1.0")+"@"+digest, []doc.PublicKey{pub})
	if err != nil || r.Version != "1.0" {
		t.Fatalf("ReadDocument: %+v, %v", r, err)
	}
	_, other := releaseKey(t)
	if _, err := release.ReadDocument(ctx, ref, []doc.PublicKey{other}); !errors.Is(err, doc.ErrUnknownKey) {
		t.Fatalf("ReadDocument with another key: %v", err)
	}
}
