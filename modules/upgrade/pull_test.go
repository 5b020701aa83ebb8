package upgrade

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gridnode/gridnode/build/release"
	"github.com/gridnode/gridnode/upgrade/doc"
	"github.com/gridnode/gridnode/upgrade/layout"
	"github.com/gridnode/gridnode/workload/image/imagetest"
)

// asked says whether reg served a GET of blob digest.
func asked(reg *imagetest.Registry, digest string) bool {
	for _, r := range reg.Requests() {
		if strings.HasPrefix(r, "GET ") && strings.Contains(r, "/blobs/"+digest+" ") {
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

func pushRelease(t *testing.T, reg *imagetest.Registry, version string, signer []byte, sign func(doc.Release) ([]byte, error)) *testRelease {
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
	d, err := release.Push(context.Background(), dir, reg.Host+"/gridnode/release:"+version)
	if err != nil {
		t.Fatal(err)
	}
	r.ref = reg.Host + "/gridnode/release@" + d
	return r
}

func TestPull(t *testing.T) {
	key, pub := releaseKey(t)
	other, _ := releaseKey(t)
	signed := func(r doc.Release) ([]byte, error) { return doc.SignRelease(r, key) }
	reg := imagetest.Start(t)
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
			before := len(reg.Requests())
			_, err := p.pull(ctx, c.rel.ref, c.version, filepath.Join(t.TempDir(), "release"))
			if !errors.Is(err, errRefused) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("pull: %v, want refused: %q", err, c.want)
			}
			if slices.ContainsFunc(reg.Requests()[before:], func(r string) bool { return strings.Contains(r, "/blobs/sha256:"+c.rel.file.SHA256+" ") }) {
				t.Fatal("the UKI was downloaded for a release that was refused")
			}
		})
	}

	t.Run("the registry sends other bytes", func(t *testing.T) {
		// A release of its own, as Corrupt lasts: its UKI is good's and
		// one byte more.
		bad := pushRelease(t, reg, "0.2.4", append(append([]byte(nil), good.uki...), 0), signed)
		reg.Corrupt("sha256:" + bad.file.SHA256)
		dir := filepath.Join(t.TempDir(), "release")
		_, err := p.pull(ctx, bad.ref, "0.2.4", dir)
		if !errors.Is(err, errRefused) || !strings.Contains(err.Error(), "the signed release says "+bad.file.SHA256) {
			t.Fatalf("pull: %v, want the sha256 mismatch", err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("a refused download left %v in %s", ents, dir)
		}
	})

	t.Run("a lying mirror is passed over", func(t *testing.T) {
		mirror := imagetest.Start(t)
		// The mirror holds the same artifact, but sends other bytes for
		// its UKI.
		pushRelease(t, mirror, "0.2.0", good.uki, signed)
		mirror.Corrupt(ukiDigest)
		p := p
		p.mirror = "http://" + mirror.Host
		r, err := p.pull(ctx, good.ref, "0.2.0", filepath.Join(t.TempDir(), "release"))
		if err != nil {
			t.Fatal(err)
		}
		if !asked(mirror, ukiDigest) {
			t.Fatal("the mirror was not asked first")
		}
		if b, _ := os.ReadFile(r.ukiPath()); !bytes.Equal(b, good.uki) {
			t.Fatal("the UKI pulled is not the signed one")
		}
	})
}
