package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/gridnode/gridnode/node/deployment"
)

// Errors a pull wraps. Permanent says which retrying will not cure.
var (
	ErrNotFound       = errors.New("not found")
	ErrDenied         = errors.New("access denied")
	ErrDigestMismatch = errors.New("digest mismatch")
	ErrDiskFull       = errors.New("cache disk full")
)

// Permanent says whether a pull error is one that retrying will not cure:
// an image that is not there, credentials refused, content that does not
// match its digest, a full disk, a bad reference.
func Permanent(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrDenied) || errors.Is(err, ErrDigestMismatch) ||
		errors.Is(err, ErrDiskFull) || errors.Is(err, errBadRef)
}

var errBadRef = errors.New("bad image reference")

// Progress is called with the bytes of the image's blobs the store holds so
// far (from earlier pulls, or downloaded) and the total.
type Progress func(done, total int64)

// source is one registry to pull a repository from: the mirror, or the
// image's own registry.
type source struct {
	repo   name.Repository
	auth   authn.Authenticator
	mirror bool
	rt     http.RoundTripper // authenticated for pulls, made on first use
}

func (src *source) String() string {
	if src.mirror {
		return "mirror " + src.repo.RegistryStr()
	}
	return src.repo.RegistryStr()
}

// sources lists where to pull repo from: the mirror first, if any.
func (o Options) sources(repo name.Repository, creds []deployment.Credential) []*source {
	auth := authn.Anonymous
	for _, c := range creds {
		if r, err := name.NewRegistry(c.Registry); err == nil && r.RegistryStr() == repo.RegistryStr() {
			auth = authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Password})
		}
	}
	var l []*source
	if o.Mirror != "" {
		host, insecure := strings.CutPrefix(o.Mirror, "http://")
		var opts []name.Option
		if insecure {
			opts = append(opts, name.Insecure)
		}
		if m, err := name.NewRepository(strings.TrimSuffix(host, "/")+"/"+repo.RepositoryStr(), opts...); err == nil {
			l = append(l, &source{repo: m, auth: authn.Anonymous, mirror: true})
		}
	}
	return append(l, &source{repo: repo, auth: auth})
}

func (o Options) remoteOpts(ctx context.Context, src *source) []remote.Option {
	t := o.Transport
	if t == nil {
		t = http.DefaultTransport
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithAuth(src.auth), remote.WithTransport(t), remote.WithUserAgent("gridnode")}
}

// Pin resolves image to REPO@sha256:DIGEST in the image's own repository
// (asking the store's mirror first); a reference with a digest is returned
// as it is, without asking anyone.
func (s *Store) Pin(ctx context.Context, image string, creds []deployment.Credential) (string, error) {
	return Pin(ctx, image, creds, s.opt)
}

// Pin resolves image to REPO@sha256:DIGEST as Store.Pin does, without a
// store: what the CLI does before it sends a deployment. Of opt only
// Mirror and Transport count.
func Pin(ctx context.Context, image string, creds []deployment.Credential, opt Options) (string, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return "", fmt.Errorf("image %q: %w: %v", image, errBadRef, err)
	}
	if d, ok := ref.(name.Digest); ok {
		return ref.Context().Digest(d.DigestStr()).String(), nil
	}
	var errs []error
	for _, src := range opt.sources(ref.Context(), creds) {
		tag := src.repo.Tag(ref.Identifier())
		d, err := remote.Head(tag, opt.remoteOpts(ctx, src)...)
		if err != nil {
			var gd *remote.Descriptor
			if gd, err = remote.Get(tag, opt.remoteOpts(ctx, src)...); err == nil {
				d = &gd.Descriptor
			}
		}
		if err == nil {
			return ref.Context().Digest(d.Digest.String()).String(), nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", src, classify(err)))
		if ctx.Err() != nil {
			break
		}
	}
	return "", fmt.Errorf("pinning %s to a digest: %w", image, joinErrs(errs))
}

// Pull makes the pinned image ref (REPO@sha256:...) whole in the store and
// returns it. Blobs already there are not fetched again.
func (s *Store) Pull(ctx context.Context, ref string, creds []deployment.Credential, progress Progress) (Image, error) {
	if progress == nil {
		progress = func(int64, int64) {}
	}
	s.gc.RLock()
	defer s.gc.RUnlock()
	dref, err := name.NewDigest(ref)
	if err != nil {
		return Image{}, fmt.Errorf("image %q: %w: want REPO@sha256:DIGEST (%v)", ref, errBadRef, err)
	}
	ref = dref.Context().Digest(dref.DigestStr()).String()
	if img, err := s.Get(ref); err == nil {
		progress(img.Size, img.Size)
		return img, nil
	}
	srcs := s.opt.sources(dref.Context(), creds)
	top, err := s.fetchManifest(ctx, srcs, dref.DigestStr())
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", ref, err)
	}
	m, err := s.manifest(top)
	if errors.Is(err, os.ErrNotExist) && top.MediaType.IsIndex() {
		// The platform's manifest is not in the store yet.
		var d v1.Descriptor
		if d, err = s.platformOf(top); err == nil {
			if _, err = s.fetchManifest(ctx, srcs, d.Digest.String()); err == nil {
				m, err = s.manifest(top)
			}
		}
	}
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", ref, err)
	}
	blobs := append([]v1.Descriptor{m.Config}, m.Layers...)
	var total, done int64
	for _, b := range blobs {
		total += b.Size
		if s.hasBlob(b) {
			done += b.Size
		}
	}
	progress(done, total)
	for _, b := range blobs {
		if s.hasBlob(b) {
			continue
		}
		base := done
		if err := s.fetchBlob(ctx, srcs, b, func(n int64) { progress(base+n, total) }); err != nil {
			return Image{}, fmt.Errorf("image %s: blob %s (%d bytes): %w", ref, b.Digest, b.Size, err)
		}
		done += b.Size
		progress(done, total)
	}
	// The blobs' names, durable before the image that needs them is.
	if err := syncDir(filepath.Join(s.dir, "blobs", "sha256")); err != nil {
		return Image{}, fmt.Errorf("image %s: %w", ref, s.diskFull(err))
	}
	if err := s.record(ref, top); err != nil {
		return Image{}, fmt.Errorf("image %s: %w", ref, s.diskFull(err))
	}
	return s.Get(ref)
}

func (s *Store) platformOf(top v1.Descriptor) (v1.Descriptor, error) {
	b, err := os.ReadFile(s.blobPath(top.Digest))
	if err != nil {
		return v1.Descriptor{}, err
	}
	idx, err := v1.ParseIndexManifest(strings.NewReader(string(b)))
	if err != nil {
		return v1.Descriptor{}, err
	}
	return s.platform(*idx)
}

// fetchManifest gets the manifest (or index) digest from the first source
// that has it, verifies it and stores it as a blob.
func (s *Store) fetchManifest(ctx context.Context, srcs []*source, digest string) (v1.Descriptor, error) {
	var errs []error
	for _, src := range srcs {
		d, err := remote.Get(src.repo.Digest(digest), s.opt.remoteOpts(ctx, src)...)
		if err == nil {
			sum := sha256.Sum256(d.Manifest)
			if "sha256:"+hex.EncodeToString(sum[:]) != digest {
				err = fmt.Errorf("manifest: %w", ErrDigestMismatch)
			} else if !d.MediaType.IsIndex() && !d.MediaType.IsImage() {
				return v1.Descriptor{}, fmt.Errorf("%s is a %s, not an image", digest, d.MediaType)
			} else if err = s.writeBlob(d.Digest, d.Manifest); err == nil {
				return d.Descriptor, nil
			}
		}
		err = classify(err)
		errs = append(errs, fmt.Errorf("%s: %w", src, err))
		if errors.Is(err, ErrDiskFull) || ctx.Err() != nil {
			return v1.Descriptor{}, err
		}
	}
	return v1.Descriptor{}, joinErrs(errs)
}

// joinErrs joins the errors of each source: permanent (errors.Is sees
// their kinds) only when every source's is.
func joinErrs(errs []error) error {
	msgs := make([]string, len(errs))
	all := true
	for i, e := range errs {
		msgs[i] = e.Error()
		all = all && Permanent(e)
	}
	if all {
		return errors.Join(errs...)
	}
	return errors.New(strings.Join(msgs, "; "))
}

// classify wraps a registry's answer in the error it stands for.
func classify(err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %v", ErrNotFound, err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w: %v (give the registry's credentials in the deployment file)", ErrDenied, err)
		}
	}
	return err
}
