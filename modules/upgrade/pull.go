package upgrade

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/upgrade/doc"
	"github.com/gridnode/gridnode/upgrade/layout"
)

// MaxUKI bounds the UKI the node downloads and loads: 4 slots' worth.
const MaxUKI = 4 * layout.SlotSize

// puller fetches a release's document and its UKI from a registry, the
// mirror first when there is one.
type puller struct {
	mirror    string // config RegistryMirror: HOST[:PORT], or http://HOST[:PORT]
	keys      []doc.PublicKey
	transport http.RoundTripper
	// progress is told the bytes of the UKI downloaded so far.
	progress func(file string, done, total int64)
}

// pulled is a release on the cache disk, checked: its signed document and
// its UKI.
type pulled struct {
	rel *doc.Release
	uki doc.File // the UKI's entry in rel
	dir string   // holds doc.ReleaseName and uki.Name
}

// ukiPath is where the UKI is.
func (p pulled) ukiPath() string { return filepath.Join(p.dir, p.uki.Name) }

// errRefused marks a release that is not what its signature says: trying
// again under the same document will not help, unless the registry mends.
var errRefused = errors.New("refused")

// pull fetches the release ref (REGISTRY/REPO@sha256:…) of version into
// dir: its manifest (checked against the digest), its release document
// (signed by one of the keys, for version), then the UKI the document
// names, checked against the signed sha256 and size as it streams in —
// before anything of it is used. A manifest whose UKI layer is not the
// signed one is refused before the UKI is downloaded.
func (p puller) pull(ctx context.Context, ref, version, dir string) (*pulled, error) {
	d, err := name.NewDigest(ref)
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", ref, err)
	}
	var errs []error
	for _, repo := range p.sources(d.Context()) {
		r, err := p.pullFrom(ctx, repo, d.DigestStr(), version, dir)
		if err == nil {
			return r, nil
		}
		// A mirror that sent other bytes is passed over for the origin.
		errs = append(errs, fmt.Errorf("%s: %w", repo.RegistryStr(), err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("release %s (%s): %w", version, ref, errors.Join(errs...))
}

// sources are the repository on the mirror (same path), then its own.
func (p puller) sources(repo name.Repository) []name.Repository {
	var l []name.Repository
	if p.mirror != "" {
		host, insecure := strings.CutPrefix(p.mirror, "http://")
		var opts []name.Option
		if insecure {
			opts = append(opts, name.Insecure)
		}
		if m, err := name.NewRepository(strings.TrimSuffix(host, "/")+"/"+repo.RepositoryStr(), opts...); err == nil {
			l = append(l, m)
		}
	}
	return append(l, repo)
}

func (p puller) remote(ctx context.Context) []remote.Option {
	t := p.transport
	if t == nil {
		t = http.DefaultTransport
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithTransport(t), remote.WithUserAgent("gridnode-upgrade")}
}

func (p puller) pullFrom(ctx context.Context, repo name.Repository, digest, version, dir string) (*pulled, error) {
	desc, err := remote.Get(repo.Digest(digest), p.remote(ctx)...)
	if err != nil {
		return nil, err
	}
	if got := "sha256:" + sum(desc.Manifest); got != digest {
		return nil, fmt.Errorf("%w: the registry sent a manifest with digest %s", errRefused, got)
	}
	m, err := v1.ParseManifest(strings.NewReader(string(desc.Manifest)))
	if err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", errRefused, err)
	}
	if m.Config.MediaType != doc.ArtifactType && m.ArtifactType != doc.ArtifactType {
		return nil, fmt.Errorf("%w: not a gridnode release (config type %q)", errRefused, m.Config.MediaType)
	}
	layers := map[string]v1.Descriptor{}
	for _, l := range m.Layers {
		layers[l.Annotations[doc.TitleKey]] = l
	}

	// The signed document first, small and bounded.
	dl, ok := layers[doc.ReleaseName]
	if !ok || dl.Size > doc.MaxEnvelope {
		return nil, fmt.Errorf("%w: no %s of at most %d bytes (an unsigned release?)", errRefused, doc.ReleaseName, doc.MaxEnvelope)
	}
	signed, err := p.blob(ctx, repo, dl, nil)
	if err != nil {
		return nil, err
	}
	rel, err := doc.OpenRelease(signed, p.keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errRefused, err)
	}
	if rel.Version != version {
		return nil, fmt.Errorf("%w: the release document is for version %s, the channel for %s", errRefused, rel.Version, version)
	}
	uki, ok := rel.File(layout.UKIName(version))
	if !ok {
		return nil, fmt.Errorf("%w: the signed release names no %s", errRefused, layout.UKIName(version))
	}
	if uki.Size > MaxUKI {
		return nil, fmt.Errorf("%w: its UKI is %d bytes, more than the %d a node loads", errRefused, uki.Size, int64(MaxUKI))
	}
	ul, ok := layers[uki.Name]
	if !ok || ul.Digest.Hex != uki.SHA256 || ul.Size != uki.Size {
		return nil, fmt.Errorf("%w: the artifact's %s is not the signed one (%d bytes, sha256 %s; its manifest says %d bytes, %s)", errRefused, uki.Name, uki.Size, uki.SHA256, ul.Size, ul.Digest)
	}

	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	out := &pulled{rel: rel, uki: uki, dir: dir}
	part := out.ukiPath() + ".part"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer os.Remove(part)
	_, err = p.blob(ctx, repo, ul, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Rename(part, out.ukiPath()); err != nil {
		return nil, err
	}
	if err := fact.WriteFile(filepath.Join(dir, doc.ReleaseName), signed, 0o600); err != nil {
		return nil, err
	}
	return out, nil
}

// blob fetches the blob of d, into w as it streams or, with w nil, into
// memory (returned), and checks it against d's digest and size: a registry
// that sends other bytes is refused.
func (p puller) blob(ctx context.Context, repo name.Repository, d v1.Descriptor, w io.Writer) ([]byte, error) {
	l, err := remote.Layer(repo.Digest(d.Digest.String()), p.remote(ctx)...)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	title := d.Annotations[doc.TitleKey]
	var mem []byte
	h := sha256.New()
	var n int64
	buf := make([]byte, 1<<20)
	for {
		k, rerr := rc.Read(buf)
		if int64(k) > d.Size-n {
			return nil, fmt.Errorf("%w: %s: the registry sent more than its %d bytes", errRefused, title, d.Size)
		}
		h.Write(buf[:k])
		n += int64(k)
		if w == nil {
			mem = append(mem, buf[:k]...)
		} else if _, err := w.Write(buf[:k]); err != nil {
			return nil, fmt.Errorf("%s: writing to the cache disk: %w", title, err)
		}
		if w != nil && p.progress != nil {
			p.progress(title, n, d.Size)
		}
		if n == d.Size {
			// Checked here rather than by the registry client's own
			// check at EOF, so the error says what the signed release
			// says.
			if got := hex.EncodeToString(h.Sum(nil)); got != d.Digest.Hex {
				return nil, fmt.Errorf("%w: %s: the registry sent %d bytes with sha256 %s; the signed release says %s", errRefused, title, n, got, d.Digest.Hex)
			}
			return mem, nil
		}
		if rerr != nil {
			return nil, fmt.Errorf("%s: after %d of %d bytes: %w", title, n, d.Size, rerr)
		}
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
