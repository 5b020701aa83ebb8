package image

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
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/gridnode/gridnode/internal/backoff"
	"github.com/gridnode/gridnode/node/deployment"
	"golang.org/x/sys/unix"
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

// writeBlob stores small content (a manifest) already verified.
func (s *Store) writeBlob(h v1.Hash, b []byte) error {
	tmp := filepath.Join(s.dir, "partial", h.Hex+".manifest")
	f, err := os.Create(tmp)
	if err == nil {
		_, err = f.Write(b)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.Remove(tmp)
		return s.diskFull(err)
	}
	return s.land(tmp, h)
}

// land moves a verified file, synced, into blobs/, durably.
func (s *Store) land(tmp string, h v1.Hash) error {
	if err := os.Rename(tmp, s.blobPath(h)); err != nil {
		os.Remove(tmp)
		return s.diskFull(err)
	}
	return syncDir(filepath.Dir(s.blobPath(h)))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// diskFull turns ENOSPC and EDQUOT into ErrDiskFull, saying how much is
// free.
func (s *Store) diskFull(err error) error {
	if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
		return err
	}
	var st unix.Statfs_t
	free := "?"
	if unix.Statfs(s.dir, &st) == nil {
		free = fmt.Sprint(st.Bavail * uint64(st.Bsize))
	}
	return fmt.Errorf("%w (%s bytes free under %s): undeploy something, or give the node a larger disk (%v)", ErrDiskFull, free, s.dir, err)
}

// fetchBlob downloads d into partial/HEX, resuming what is there, tries
// each source in turn with backoff between rounds, verifies the whole and
// moves it into blobs/. report gets the bytes held of d.
func (s *Store) fetchBlob(ctx context.Context, srcs []*source, d v1.Descriptor, report func(int64)) error {
	partial := filepath.Join(s.dir, "partial", d.Digest.Hex)
	c := backoff.Counter{Policy: s.opt.Backoff}
	restarted := false
	for attempt := 1; ; attempt++ {
		var errs []error
		for _, src := range srcs {
			sum, err := s.download(ctx, src, d, partial, report)
			if err == nil {
				if sum == d.Digest.String() {
					return s.land(partial, d.Digest)
				}
				err = fmt.Errorf("%w: the %d bytes have digest %s", ErrDigestMismatch, d.Size, sum)
				os.Remove(partial)
				if !restarted {
					// A resumed download may have glued bad bytes on:
					// once more, from zero.
					restarted = true
					errs = append(errs, fmt.Errorf("%s: %v; fetching it again", src, err))
					continue
				}
			}
			if ctx.Err() != nil {
				os.Remove(partial)
				return ctx.Err()
			}
			if errors.Is(err, ErrDiskFull) {
				os.Remove(partial)
				return err
			}
			errs = append(errs, fmt.Errorf("%s: %w", src, classify(err)))
		}
		err := joinErrs(errs)
		if Permanent(err) || attempt >= s.opt.Attempts {
			return fmt.Errorf("after %d attempts: %w", attempt, err)
		}
		t := time.NewTimer(c.Next())
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// download appends to partial what it lacks of d, asking src for the rest
// with a range when partial holds some, and returns the digest of the
// whole (hashed as it is written; what partial held is read once).
func (s *Store) download(ctx context.Context, src *source, d v1.Descriptor, partial string, report func(int64)) (string, error) {
	f, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", s.diskFull(err)
	}
	defer f.Close()
	off, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", err
	}
	if off > d.Size {
		if err := f.Truncate(0); err != nil {
			return "", err
		}
		off, _ = f.Seek(0, io.SeekStart)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, off)); err != nil {
		return "", err
	}
	sum := func() string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }
	report(off)
	if off == d.Size {
		return sum(), nil
	}
	if src.rt == nil {
		rt, err := transport.NewWithContext(ctx, src.repo.Registry, src.auth, s.opt.Transport, []string{src.repo.Scope(transport.PullScope)})
		if err != nil {
			return "", err
		}
		src.rt = rt
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stall := time.AfterFunc(s.opt.Stall, cancel)
	defer stall.Stop()
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", src.repo.Scheme(), src.repo.RegistryStr(), src.repo.RepositoryStr(), d.Digest)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, d.Size-1))
	}
	resp, err := (&http.Client{Transport: src.rt}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && off > 0:
		var start int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-", &start); err != nil || start != off {
			return "", fmt.Errorf("asked for bytes from %d, the registry sent %q", off, resp.Header.Get("Content-Range"))
		}
	case resp.StatusCode == http.StatusOK:
		if off > 0 { // no ranges here: start over
			if err := f.Truncate(0); err != nil {
				return "", err
			}
			off, _ = f.Seek(0, io.SeekStart)
			h.Reset()
			report(0)
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		f.Truncate(0)
		return "", fmt.Errorf("the registry refused the range from %d; starting over", off)
	default:
		return "", transport.CheckError(resp, http.StatusOK, http.StatusPartialContent)
	}
	w := &progressWriter{w: io.MultiWriter(f, h), f: f, n: off, flushed: off, report: report, stall: stall, every: s.opt.Stall}
	_, err = io.Copy(w, io.LimitReader(resp.Body, d.Size-off+1))
	if err == nil && w.n < d.Size {
		err = fmt.Errorf("connection ended at byte %d of %d: %w", w.n, d.Size, io.ErrUnexpectedEOF)
	}
	if err == nil && w.n > d.Size {
		err = fmt.Errorf("the registry sent more than %d bytes: %w", d.Size, ErrDigestMismatch)
		f.Truncate(0)
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil && w.n > off {
		err = fmt.Errorf("no data for %s at byte %d; resuming", s.opt.Stall, w.n)
	}
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if err != nil {
		return "", s.diskFull(err)
	}
	return sum(), nil
}

// progressWriter writes to w, counts, reports, and pushes back the stall
// timer on every write. Every writeback bytes it starts writing f's new
// pages to disk, so that the fsync that ends the download has little left
// to wait for: the disk works while the network does.
type progressWriter struct {
	w       io.Writer
	f       *os.File
	n       int64
	flushed int64
	report  func(int64)
	stall   *time.Timer
	every   time.Duration
}

const writeback = 8 << 20

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.stall.Reset(p.every)
	p.report(p.n)
	if p.n-p.flushed >= writeback {
		unix.SyncFileRange(int(p.f.Fd()), p.flushed, p.n-p.flushed, unix.SYNC_FILE_RANGE_WRITE)
		p.flushed = p.n
	}
	return n, err
}
