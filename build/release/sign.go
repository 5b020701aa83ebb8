package release

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gridnode/gridnode/internal/filehash"
	"github.com/gridnode/gridnode/upgrade/doc"
)

// ErrUnsigned is CheckSigned's answer for a release without a signature.
var ErrUnsigned = errors.New("the release is unsigned")

// Sign writes dir/release.json: the release document (upgrade/doc) naming
// version and every other file of dir with its sha256 and size, signed by
// key, or unsigned when key is nil (release push then refuses it unless
// told --unsigned).
func Sign(dir, version string, key ed25519.PrivateKey) error {
	r, err := document(dir, version)
	if err != nil {
		return err
	}
	var keys []ed25519.PrivateKey
	if key != nil {
		keys = append(keys, key)
	}
	b, err := doc.SignRelease(*r, keys...)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, doc.ReleaseName), b, 0o644); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	return nil
}

// document lists the files of dir (release.json excepted) with their sums.
func document(dir, version string) (*doc.Release, error) {
	files, err := releaseFiles(dir, true)
	if err != nil {
		return nil, err
	}
	r := &doc.Release{Version: version}
	for _, name := range files {
		if name == doc.ReleaseName {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		sum, err := filehash.SHA256(p)
		if err != nil {
			return nil, fmt.Errorf("release: %w", err)
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("release: %w", err)
		}
		r.Files = append(r.Files, doc.File{Name: name, SHA256: sum, Size: st.Size()})
	}
	return r, nil
}

// CheckSigned says whether dir holds a signed release.json (without
// checking the signature: push does not know the image's keys).
func CheckSigned(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, doc.ReleaseName))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s has no %s: %w (make it with make release RELEASE_KEY=KEYFILE)", dir, doc.ReleaseName, ErrUnsigned)
	}
	if err != nil {
		return err
	}
	if !doc.Signed(b) {
		return fmt.Errorf("%s: %w (make release RELEASE_KEY=KEYFILE signs it)", filepath.Join(dir, doc.ReleaseName), ErrUnsigned)
	}
	return nil
}

// Verify checks dir against its release.json: signed by one of keys, and
// every file of dir listed with its size and sha256, and nothing listed
// missing.
func Verify(dir string, keys []doc.PublicKey) (*doc.Release, error) {
	b, err := os.ReadFile(filepath.Join(dir, doc.ReleaseName))
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	r, err := doc.OpenRelease(b, keys)
	if err != nil {
		return nil, fmt.Errorf("release: %s: %w", dir, err)
	}
	have, err := document(dir, r.Version)
	if err != nil {
		return nil, err
	}
	if err := sameFiles(r, have.Files); err != nil {
		return nil, fmt.Errorf("release: %s: %w", dir, err)
	}
	return r, nil
}

// sameFiles compares the files a document names with the files there are.
func sameFiles(r *doc.Release, got []doc.File) error {
	seen := map[string]bool{}
	for _, g := range got {
		want, ok := r.File(g.Name)
		if !ok {
			return fmt.Errorf("%s is not in the signed release document", g.Name)
		}
		sum, _ := hex.DecodeString(g.SHA256)
		if err := want.CheckFile(sum, g.Size); err != nil {
			return err
		}
		seen[g.Name] = true
	}
	for _, f := range r.Files {
		if !seen[f.Name] {
			return fmt.Errorf("%s, named by the signed release document, is missing", f.Name)
		}
	}
	return nil
}
