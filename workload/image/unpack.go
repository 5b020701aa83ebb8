package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/gridnode/gridnode/internal/untar"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// RootFS returns the folder holding img's layers applied in order, made
// once and shared by every deployment of the image. Each layer is checked
// against its diff id while it unpacks; files keep the owners the image
// says when the node runs as root.
func (s *Store) RootFS(ctx context.Context, img Image) (string, error) {
	s.gc.RLock()
	defer s.gc.RUnlock()
	final := filepath.Join(s.dir, "roots", img.Manifest.Hex)
	mu, _ := s.unpacking.LoadOrStore(img.Manifest.Hex, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if fi, err := os.Stat(final); err == nil && fi.IsDir() {
		return final, nil
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.dir, "roots"), ".tmp-"+img.Manifest.Hex[:12]+"-")
	if err != nil {
		return "", fmt.Errorf("image %s: %w", img.Ref, s.diskFull(err))
	}
	if err := s.unpack(ctx, img, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("image %s: unpacking: %w", img.Ref, s.diskFull(err))
	}
	// The files reach the disk before the folder's name says they are
	// whole: a power cut leaves a temporary folder, removed at Open.
	if d, err := os.Open(tmp); err == nil {
		unix.Syncfs(int(d.Fd()))
		d.Close()
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("image %s: %w", img.Ref, err)
	}
	return final, syncDir(filepath.Dir(final))
}

func (s *Store) unpack(ctx context.Context, img Image, dir string) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	left := s.opt.MaxUnpacked
	opt := untar.Options{Whiteouts: true, RootedLinks: true, Owners: os.Geteuid() == 0}
	for i, l := range img.Layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := s.unpackLayer(dir, l.Digest.Hex, img.DiffIDs[i].String(), left, opt)
		if err != nil {
			return fmt.Errorf("layer %d (%s): %w", i+1, l.Digest, err)
		}
		left -= n
	}
	return nil
}

// unpackLayer applies one layer blob to dir and returns its uncompressed
// size, which must not pass left.
func (s *Store) unpackLayer(dir, hexDigest, diffID string, left int64, opt untar.Options) (int64, error) {
	f, err := os.Open(filepath.Join(s.dir, "blobs", "sha256", hexDigest))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r, closeR, err := decompress(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		return 0, err
	}
	defer closeR()
	h := sha256.New()
	counted := &countReader{r: io.TeeReader(r, h)}
	opt.MaxBytes = left
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	if _, err := untar.Extract(root, counted, opt); err != nil {
		return counted.n, err
	}
	// What follows the archive's end still counts in its diff id.
	if _, err := io.Copy(io.Discard, io.LimitReader(counted, left-counted.n+1)); err != nil {
		return counted.n, err
	}
	if counted.n > left {
		return counted.n, fmt.Errorf("over the cap of %d bytes unpacked: %w", left, untar.ErrTooLarge)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID {
		return counted.n, fmt.Errorf("%w: uncompressed content is %s, the config says %s", ErrDigestMismatch, got, diffID)
	}
	return counted.n, nil
}

// decompress reads gzip, zstd or plain tar, told apart by their first bytes.
func decompress(br *bufio.Reader) (io.Reader, func(), error) {
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return z, func() { z.Close() }, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		return z, z.Close, nil
	}
	return br, func() {}, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// HasRoot says whether img is unpacked already.
func (s *Store) HasRoot(img Image) bool {
	fi, err := os.Stat(filepath.Join(s.dir, "roots", img.Manifest.Hex))
	return err == nil && fi.IsDir()
}
