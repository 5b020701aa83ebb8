// Package image is the node's image store: one OCI image layout on the
// cache disk that every deployment shares, filled by digest from
// registries, and the unpacked root file systems made from it.
//
// Layout of the store's folder:
//
//	oci-layout, index.json   an OCI image layout; index.json lists each pulled
//	                         image by its pinned reference (annotation
//	                         org.opencontainers.image.ref.name)
//	blobs/sha256/HEX         manifests, configs and layers, each verified
//	                         against its digest before it lands here
//	partial/HEX              a blob being downloaded; a pull cut off resumes
//	                         from it (with an HTTP range where the registry
//	                         supports ranges)
//	roots/HEX                an image's layers applied in order (whiteouts
//	                         resolved), by manifest digest; made in a
//	                         temporary folder and renamed into place
//
// Pull fetches what is missing, verifies every blob, retries with backoff
// (internal/backoff) and resumes; a full disk is an error that says so and
// removes what it was writing. Get finds a pulled image without any network
// (a node booting with none). GC removes what no deployment uses.
package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/gridnode/gridnode/internal/backoff"
	"github.com/gridnode/gridnode/node/fact"
)

// RefAnnotation names an image's pinned reference in index.json.
const RefAnnotation = "org.opencontainers.image.ref.name"

// Options tune a Store. The zero value is fine.
type Options struct {
	// Mirror is a registry (host[:port], or http://host[:port] to force
	// plain HTTP) tried first for every image, with the same repository
	// path; the image's own registry is asked when the mirror fails. Every
	// blob is verified, so the mirror need not be trusted.
	Mirror string
	// Transport carries the requests; nil means http.DefaultTransport.
	Transport http.RoundTripper
	// Backoff is the schedule between attempts of one blob; the zero value
	// means 500 ms doubling to 30 s, with jitter.
	Backoff backoff.Policy
	// Attempts is how often a blob is tried before the pull fails; 0
	// means 8.
	Attempts int
	// Stall is how long a download may make no progress before it is cut
	// and resumed; 0 means 60 s.
	Stall time.Duration
	// MaxUnpacked caps an image's unpacked size (a layer that
	// decompresses to more is a bomb); 0 means 64 GiB.
	MaxUnpacked int64
	// Platform is the platform chosen from a multi-platform image; the
	// zero value means linux and this machine's architecture.
	Platform v1.Platform
	Log      *slog.Logger
}

// Store is an image store. It is safe for concurrent use.
type Store struct {
	dir string
	opt Options

	// gc is held for reading by pulls and unpacks, for writing by GC, so
	// that GC never removes what a pull has just verified.
	gc sync.RWMutex
	// index serializes changes of index.json.
	index sync.Mutex
	// unpacking holds a lock per root being made.
	unpacking sync.Map
}

// Image is a pulled image.
type Image struct {
	// Ref is the pinned reference (REPO@sha256:...).
	Ref string
	// Digest is the digest Ref names (an index or a manifest); Manifest
	// the digest of the platform's manifest.
	Digest, Manifest v1.Hash
	// Config is the image's configuration (entrypoint, cmd, env, ...).
	Config v1.Config
	// Layers are the layers' descriptors, lowest first; DiffIDs their
	// uncompressed digests, as the config lists them.
	Layers  []v1.Descriptor
	DiffIDs []v1.Hash
	// Size is the bytes of the manifest's config and layers.
	Size int64
}

// Open opens (making it when missing) the store in dir, and removes the
// temporary folders an interrupted unpack left.
func Open(dir string, opt Options) (*Store, error) {
	if opt.Attempts == 0 {
		opt.Attempts = 8
	}
	if opt.Backoff.Base == 0 {
		opt.Backoff = backoff.Policy{Base: 500 * time.Millisecond, Max: 30 * time.Second, Min: 100 * time.Millisecond, Jitter: true}
	}
	if opt.Stall == 0 {
		opt.Stall = 60 * time.Second
	}
	if opt.MaxUnpacked == 0 {
		opt.MaxUnpacked = 64 << 30
	}
	if opt.Platform.OS == "" {
		opt.Platform = v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	}
	if opt.Transport == nil {
		opt.Transport = http.DefaultTransport
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	s := &Store{dir: dir, opt: opt}
	for _, d := range []string{"blobs/sha256", "partial", "roots"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); errors.Is(err, fs.ErrNotExist) {
		if err := fact.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "roots"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			os.RemoveAll(filepath.Join(dir, "roots", e.Name()))
		}
	}
	return s, nil
}

// Dir is the store's folder.
func (s *Store) Dir() string { return s.dir }

func (s *Store) blobPath(h v1.Hash) string { return filepath.Join(s.dir, "blobs", h.Algorithm, h.Hex) }

func (s *Store) hasBlob(d v1.Descriptor) bool {
	fi, err := os.Stat(s.blobPath(d.Digest))
	return err == nil && fi.Size() == d.Size
}

// readIndex reads index.json (an empty index when there is none).
func (s *Store) readIndex() (v1.IndexManifest, error) {
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	b, err := os.ReadFile(filepath.Join(s.dir, "index.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return idx, nil
	}
	if err != nil {
		return idx, err
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return idx, fmt.Errorf("image store: %s/index.json: %w", s.dir, err)
	}
	return idx, nil
}

// Refs are the references of the images the store holds, as index.json
// lists them.
func (s *Store) Refs() ([]string, error) {
	s.index.Lock()
	idx, err := s.readIndex()
	s.index.Unlock()
	if err != nil {
		return nil, err
	}
	var l []string
	for _, m := range idx.Manifests {
		l = append(l, m.Annotations[RefAnnotation])
	}
	return l, nil
}

// record adds (or replaces) the descriptor of the image ref in index.json.
func (s *Store) record(ref string, d v1.Descriptor) error {
	s.index.Lock()
	defer s.index.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	d.Annotations = map[string]string{RefAnnotation: ref}
	kept := idx.Manifests[:0]
	for _, m := range idx.Manifests {
		if m.Annotations[RefAnnotation] != ref {
			kept = append(kept, m)
		}
	}
	idx.Manifests = append(kept, d)
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return fact.WriteFile(filepath.Join(s.dir, "index.json"), b, 0o644)
}

// Get returns the pulled image ref (pinned) from the store alone: no
// network. fs.ErrNotExist when it was never pulled or is incomplete.
func (s *Store) Get(ref string) (Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return Image{}, err
	}
	for _, m := range idx.Manifests {
		if m.Annotations[RefAnnotation] == ref {
			img, err := s.load(ref, m)
			if err != nil {
				return Image{}, fmt.Errorf("image %s in the store: %w", ref, err)
			}
			return img, nil
		}
	}
	return Image{}, fmt.Errorf("image %s: not in the store: %w", ref, fs.ErrNotExist)
}

// load reads an image's manifests and config from blobs, checking that
// every blob it needs is there.
func (s *Store) load(ref string, top v1.Descriptor) (Image, error) {
	img := Image{Ref: ref, Digest: top.Digest}
	m, err := s.manifest(top)
	if err != nil {
		return Image{}, err
	}
	img.Manifest = m.digest
	cb, err := os.ReadFile(s.blobPath(m.Config.Digest))
	if err != nil {
		return Image{}, err
	}
	var cf v1.ConfigFile
	if err := json.Unmarshal(cb, &cf); err != nil {
		return Image{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	img.Config, img.DiffIDs, img.Layers = cf.Config, cf.RootFS.DiffIDs, m.Layers
	img.Size = m.Config.Size
	for _, l := range m.Layers {
		if !s.hasBlob(l) {
			return Image{}, fmt.Errorf("layer %s missing: %w", l.Digest, fs.ErrNotExist)
		}
		img.Size += l.Size
	}
	if len(img.DiffIDs) != len(img.Layers) {
		return Image{}, fmt.Errorf("config %s lists %d layers, the manifest %d", m.Config.Digest, len(img.DiffIDs), len(img.Layers))
	}
	return img, nil
}

type manifest struct {
	v1.Manifest
	digest v1.Hash
}

// manifest reads the image manifest top names, choosing the platform's
// from an index.
func (s *Store) manifest(top v1.Descriptor) (manifest, error) {
	b, err := os.ReadFile(s.blobPath(top.Digest))
	if err != nil {
		return manifest{}, err
	}
	if top.MediaType.IsIndex() {
		var idx v1.IndexManifest
		if err := json.Unmarshal(b, &idx); err != nil {
			return manifest{}, fmt.Errorf("index %s: %w", top.Digest, err)
		}
		d, err := s.platform(idx)
		if err != nil {
			return manifest{}, err
		}
		return s.manifest(d)
	}
	var m v1.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return manifest{}, fmt.Errorf("manifest %s: %w", top.Digest, err)
	}
	return manifest{Manifest: m, digest: top.Digest}, nil
}

// platform picks the store's platform's manifest from an index.
func (s *Store) platform(idx v1.IndexManifest) (v1.Descriptor, error) {
	var have []string
	for _, d := range idx.Manifests {
		if d.Platform != nil && d.Platform.Satisfies(s.opt.Platform) && d.MediaType.IsImage() {
			return d, nil
		}
		if d.Platform != nil {
			have = append(have, d.Platform.String())
		}
	}
	return v1.Descriptor{}, fmt.Errorf("no image for %s in the index (it has %s)", s.opt.Platform, strings.Join(have, ", "))
}
