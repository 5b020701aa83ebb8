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
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/gridnode/gridnode/internal/backoff"
	"golang.org/x/sys/unix"
)

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

// land moves a verified file, synced, into blobs/. The name is made
// durable by Pull's one fsync of the folder before it records the image:
// a power cut before that loses the name (the blob is fetched again), never
// leaves a name on unwritten data.
func (s *Store) land(tmp string, h v1.Hash) error {
	if err := os.Rename(tmp, s.blobPath(h)); err != nil {
		os.Remove(tmp)
		return s.diskFull(err)
	}
	return nil
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
	wb := startWriteback(f, off)
	w := &progressWriter{w: io.MultiWriter(f, h), n: off, report: report, stall: stall, every: s.opt.Stall, wb: wb}
	// Large writes: a tenth of the system calls of io.Copy's 32 KiB.
	_, err = io.CopyBuffer(w, io.LimitReader(resp.Body, d.Size-off+1), make([]byte, 512<<10))
	wb.stop()
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

// progressWriter writes to w, counts, reports, pushes back the stall timer
// on every write, and tells the writeback how far the file is written.
type progressWriter struct {
	w      io.Writer
	n      int64
	report func(int64)
	stall  *time.Timer
	every  time.Duration
	wb     *writeback
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.stall.Reset(p.every)
	p.report(p.n)
	p.wb.written(p.n)
	return n, err
}

// writeback starts writing a download's new pages to disk from a goroutine
// of its own, every writebackChunk bytes, so that the fsync that makes the
// blob durable before it is named has little left to wait for: the disk
// works while the network does, and the download never waits for the disk
// (sync_file_range blocks its caller when the device's queue is full).
type writeback struct {
	f       *os.File
	next    chan int64
	done    chan struct{}
	flushed int64 // the download's side: where the last request ended
}

const writebackChunk = 8 << 20

func startWriteback(f *os.File, from int64) *writeback {
	wb := &writeback{f: f, next: make(chan int64, 1), done: make(chan struct{}), flushed: from}
	go func() {
		defer close(wb.done)
		start := from
		for end := range wb.next {
			unix.SyncFileRange(int(f.Fd()), start, end-start, unix.SYNC_FILE_RANGE_WRITE)
			start = end
		}
	}()
	return wb
}

// written says the file holds n bytes; a chunk more than last time starts
// its writeback, unless the previous one is still being started (the next
// request then covers both).
func (wb *writeback) written(n int64) {
	if n-wb.flushed < writebackChunk {
		return
	}
	select {
	case wb.next <- n:
		wb.flushed = n
	default:
	}
}

// stop ends the writeback goroutine (before the fsync).
func (wb *writeback) stop() {
	close(wb.next)
	<-wb.done
}
