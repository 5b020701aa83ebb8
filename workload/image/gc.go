package image

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/gridnode/gridnode/node/fact"
)

// GC removes the images not in what keep returns (pinned references), and
// the blobs, roots and partial downloads no kept image needs. It returns
// the bytes freed. keep is called once no pull or unpack runs, so an image
// pulled for a deployment accepted meanwhile is in it.
func (s *Store) GC(keep func() []string) (int64, error) {
	s.gc.Lock()
	defer s.gc.Unlock()
	s.index.Lock()
	defer s.index.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		return 0, err
	}
	wanted := map[string]bool{}
	for _, r := range keep() {
		wanted[r] = true
	}
	blobs, roots := map[string]bool{}, map[string]bool{}
	kept := idx.Manifests[:0]
	for _, m := range idx.Manifests {
		if !wanted[m.Annotations[RefAnnotation]] {
			continue
		}
		kept = append(kept, m)
		blobs[m.Digest.Hex] = true
		if m.MediaType.IsIndex() {
			if b, err := os.ReadFile(s.blobPath(m.Digest)); err == nil {
				var ix v1.IndexManifest
				if json.Unmarshal(b, &ix) == nil {
					for _, c := range ix.Manifests {
						blobs[c.Digest.Hex] = true
					}
				}
			}
		}
		if mf, err := s.manifest(m); err == nil {
			blobs[mf.digest.Hex], roots[mf.digest.Hex] = true, true
			blobs[mf.Config.Digest.Hex] = true
			for _, l := range mf.Layers {
				blobs[l.Digest.Hex] = true
			}
		}
	}
	idx.Manifests = kept
	b, err := json.Marshal(idx)
	if err != nil {
		return 0, err
	}
	if err := fact.WriteFile(filepath.Join(s.dir, "index.json"), b, 0o644); err != nil {
		return 0, err
	}
	var freed int64
	sweep := func(dir string, keep map[string]bool) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if keep[e.Name()] {
				continue
			}
			p := filepath.Join(dir, e.Name())
			freed += du(p)
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
		return nil
	}
	for _, d := range []struct {
		dir  string
		keep map[string]bool
	}{{"blobs/sha256", blobs}, {"partial", nil}, {"roots", roots}} {
		if err := sweep(filepath.Join(s.dir, d.dir), d.keep); err != nil {
			return freed, fmt.Errorf("image store: collecting %s: %w", d.dir, err)
		}
	}
	return freed, nil
}

// du is the bytes of the regular files under p.
func du(p string) int64 {
	var n int64
	filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
