package release

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gridnode/gridnode/upgrade/doc"
)

// Media types of a release artifact, as upgrade/doc defines them for the
// node that pulls it too.
const (
	ArtifactType  = doc.ArtifactType
	FileMediaType = doc.FileMediaType
	TitleKey      = doc.TitleKey
)

// The config blob: an empty JSON object, typed by its media type.
var configBlob = []byte("{}")

// Push publishes the files under dir as one OCI artifact at ref (a tag, e.g.
// registry.example.com/gridnode/release:1.2.0) and returns the manifest
// digest ("sha256:..."), by which the release can be pulled unchanged for
// ever. The manifest holds no timestamps: the same folder pushed twice has
// the same digest. Credentials come from the Docker config (docker login),
// unless opts give others.
func Push(ctx context.Context, dir, ref string, opts ...remote.Option) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("release: push: reference %q: %w", ref, err)
	}
	files, err := releaseFiles(dir, true)
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return "", fmt.Errorf("release: push: %s holds no files; build the release first (make release)", dir)
	}
	opts = remoteOptions(ctx, opts)

	config := static.NewLayer(configBlob, ArtifactType)
	cd, _ := config.Digest()
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  ArtifactType,
		Config:        v1.Descriptor{MediaType: ArtifactType, Size: int64(len(configBlob)), Digest: cd},
		Layers:        []v1.Descriptor{},
	}
	layers := []v1.Layer{config}
	for _, f := range files {
		l, err := newFileLayer(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return "", fmt.Errorf("release: push: %w", err)
		}
		layers = append(layers, l)
		m.Layers = append(m.Layers, v1.Descriptor{
			MediaType:   FileMediaType,
			Size:        l.size,
			Digest:      l.digest,
			Annotations: map[string]string{TitleKey: f},
		})
	}
	for _, l := range layers {
		if err := remote.WriteLayer(r.Context(), l, opts...); err != nil {
			return "", fmt.Errorf("release: push to %s: %w", r.Context(), err)
		}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	if err := remote.Put(r, rawManifest(raw), opts...); err != nil {
		return "", fmt.Errorf("release: push manifest to %s: %w", r, err)
	}
	sum := sha256.Sum256(raw)
	return fmt.Sprintf("sha256:%x", sum), nil
}

// Pull fetches the release at ref (by tag or by digest) into dir, creating
// it, and returns the manifest digest. Every file is checked against the
// digest and size in the manifest, and the manifest against ref's digest
// when ref has one; a file is only renamed into place once it matched.
//
// With keys, the release document (release.json) is fetched first and
// must be signed by one of them, and the artifact must hold exactly the
// files it names with their sha256 and size: an artifact that does not
// match is refused before any other blob is downloaded.
func Pull(ctx context.Context, ref, dir string, keys []doc.PublicKey, opts ...remote.Option) (string, error) {
	return PullFiles(ctx, ref, dir, keys, nil, opts...)
}

// PullFiles is Pull of the files whose names keep accepts (nil: all): the
// netboot server takes a release's PXE kernel and initramfs, not its disk
// images. The release document is still checked against every file of the
// artifact (their digests and sizes are in the manifest), so a release
// that does not match what was signed is refused as whole as by Pull.
func PullFiles(ctx context.Context, ref, dir string, keys []doc.PublicKey, keep func(name string) bool, opts ...remote.Option) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("release: pull: reference %q: %w", ref, err)
	}
	opts = remoteOptions(ctx, opts)
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return "", fmt.Errorf("release: pull %s: %w", r, err)
	}
	got := fmt.Sprintf("sha256:%x", sha256.Sum256(desc.Manifest))
	if d, ok := r.(name.Digest); ok && d.DigestStr() != got {
		return "", fmt.Errorf("release: pull %s: registry sent a manifest with digest %s", r, got)
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return "", fmt.Errorf("release: pull %s: manifest: %w", r, err)
	}
	if m.Config.MediaType != ArtifactType && m.ArtifactType != ArtifactType {
		return "", fmt.Errorf("release: pull %s: not a gridnode release (config type %q, want %q)", r, m.Config.MediaType, ArtifactType)
	}
	// Check every name before writing anything.
	for _, l := range m.Layers {
		if !safeName(l.Annotations[TitleKey]) {
			return "", fmt.Errorf("release: pull %s: layer %s has unusable file name %q", r, l.Digest, l.Annotations[TitleKey])
		}
	}
	if len(keys) > 0 {
		if err := verifyLayers(r, m.Layers, keys, opts); err != nil {
			return "", fmt.Errorf("release: pull %s: %w", r, err)
		}
	}
	for _, l := range m.Layers {
		title := l.Annotations[TitleKey]
		if keep != nil && !keep(title) {
			continue
		}
		layer, err := remote.Layer(r.Context().Digest(l.Digest.String()), opts...)
		if err != nil {
			return "", fmt.Errorf("release: pull %s: %s: %w", r, title, err)
		}
		if err := fetch(layer, l, filepath.Join(dir, filepath.FromSlash(title))); err != nil {
			return "", fmt.Errorf("release: pull %s: %s: %w", r, title, err)
		}
	}
	return got, nil
}

// verifyLayers fetches and verifies the release document among layers and
// checks every other layer against it.
func verifyLayers(r name.Reference, layers []v1.Descriptor, keys []doc.PublicKey, opts []remote.Option) error {
	rel, err := readDocument(r, layers, keys, opts)
	if err != nil {
		return err
	}
	var files []doc.File
	for _, l := range layers {
		if title := l.Annotations[TitleKey]; title != doc.ReleaseName {
			files = append(files, doc.File{Name: title, SHA256: l.Digest.Hex, Size: l.Size})
		}
	}
	return sameFiles(rel, files)
}

// ReadDocument fetches only the release document of the release at ref
// (its manifest and release.json) and verifies it with keys: what gridnode
// channel publish checks before it signs a channel document naming ref.
func ReadDocument(ctx context.Context, ref string, keys []doc.PublicKey, opts ...remote.Option) (*doc.Release, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("release: reference %q: %w", ref, err)
	}
	opts = remoteOptions(ctx, opts)
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return nil, fmt.Errorf("release: %s: %w", r, err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return nil, fmt.Errorf("release: %s: manifest: %w", r, err)
	}
	rel, err := readDocument(r, m.Layers, keys, opts)
	if err != nil {
		return nil, fmt.Errorf("release: %s: %w", r, err)
	}
	return rel, nil
}

func readDocument(r name.Reference, layers []v1.Descriptor, keys []doc.PublicKey, opts []remote.Option) (*doc.Release, error) {
	var docLayer *v1.Descriptor
	for i, l := range layers {
		if l.Annotations[TitleKey] == doc.ReleaseName {
			docLayer = &layers[i]
		}
	}
	if docLayer == nil {
		return nil, fmt.Errorf("no %s: an unsigned release (pull it without --key to take it unverified)", doc.ReleaseName)
	}
	if docLayer.Size > doc.MaxEnvelope {
		return nil, fmt.Errorf("%s of %d bytes: not a release document", doc.ReleaseName, docLayer.Size)
	}
	layer, err := remote.Layer(r.Context().Digest(docLayer.Digest.String()), opts...)
	if err != nil {
		return nil, err
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(rc, doc.MaxEnvelope+1))
	rc.Close()
	if err != nil {
		return nil, err
	}
	if got := fmt.Sprintf("sha256:%x", sha256.Sum256(b)); got != docLayer.Digest.String() {
		return nil, fmt.Errorf("%s: registry sent digest %s, manifest says %s", doc.ReleaseName, got, docLayer.Digest)
	}
	return doc.OpenRelease(b, keys)
}

func fetch(layer v1.Layer, want v1.Descriptor, dst string) error {
	rc, err := layer.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".pull-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), rc)
	if err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if got := fmt.Sprintf("sha256:%x", h.Sum(nil)); got != want.Digest.String() || n != want.Size {
		return fmt.Errorf("downloaded %d bytes with digest %s, manifest says %d bytes %s", n, got, want.Size, want.Digest)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// safeName accepts relative slash paths that stay inside the folder.
func safeName(s string) bool {
	return s != "" && !strings.HasPrefix(s, "/") && !strings.Contains(s, "\\") &&
		path.Clean(s) == s && s != "." && s != ".." && !strings.HasPrefix(s, "../")
}

func remoteOptions(ctx context.Context, opts []remote.Option) []remote.Option {
	return append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
}

type rawManifest []byte

func (r rawManifest) RawManifest() ([]byte, error)        { return r, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// fileLayer is one release file as a blob, read from disk when uploaded
// rather than held in memory (ISO and disk images are hundreds of MB).
type fileLayer struct {
	path   string
	size   int64
	digest v1.Hash
}

func newFileLayer(p string) (*fileLayer, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return &fileLayer{path: p, size: n, digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}}, nil
}

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return FileMediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }
