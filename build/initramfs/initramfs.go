// Package initramfs writes a deterministic newc cpio archive: entries in path
// order, parents created, inode numbers counted, every timestamp set to
// SOURCE_DATE_EPOCH and owners zero, then zstd- or gzip-compressed with
// settings that give the same bytes for the same input.
package initramfs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/u-root/mkuimage/cpio"
)

type entry struct {
	mode         uint64
	data         []byte
	src          string // read at write time when data is nil
	rmaj, rmin   uint64
	isDir, isDev bool
}

// Archive is an initramfs being assembled. Later additions at a path replace
// earlier ones.
type Archive struct {
	entries map[string]*entry
}

// New returns an empty archive.
func New() *Archive { return &Archive{entries: map[string]*entry{}} }

func clean(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

// Dir adds a folder.
func (a *Archive) Dir(p string, perm uint64) {
	a.entries[clean(p)] = &entry{mode: cpio.S_IFDIR | perm, isDir: true}
}

// Bytes adds a file with the given content.
func (a *Archive) Bytes(p string, data []byte, perm uint64) {
	if data == nil {
		data = []byte{}
	}
	a.entries[clean(p)] = &entry{mode: cpio.S_IFREG | perm, data: data}
}

// File adds the file at src (read when the archive is written).
func (a *Archive) File(p, src string, perm uint64) {
	a.entries[clean(p)] = &entry{mode: cpio.S_IFREG | perm, src: src}
}

// Symlink adds a symbolic link to target.
func (a *Archive) Symlink(p, target string) {
	a.entries[clean(p)] = &entry{mode: cpio.S_IFLNK | 0o777, data: []byte(target)}
}

// CharDev adds a character device node.
func (a *Archive) CharDev(p string, perm, major, minor uint64) {
	a.entries[clean(p)] = &entry{mode: cpio.S_IFCHR | perm, rmaj: major, rmin: minor, isDev: true}
}

// Has says whether p is in the archive.
func (a *Archive) Has(p string) bool { return a.entries[clean(p)] != nil }

// WriteTo writes the uncompressed cpio archive with every mtime set to epoch.
func (a *Archive) WriteTo(w io.Writer, epoch int64) (int64, error) {
	// Every parent folder exists, as a folder.
	for p := range a.entries {
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			if a.entries[d] == nil {
				a.entries[d] = &entry{mode: cpio.S_IFDIR | 0o755, isDir: true}
			}
		}
	}
	names := make([]string, 0, len(a.entries))
	for p := range a.entries {
		names = append(names, p)
	}
	sort.Strings(names)
	cw := &countWriter{w: w}
	rw := cpio.Newc.Writer(cw)
	for i, p := range names {
		e := a.entries[p]
		data := e.data
		if e.src != "" {
			b, err := os.ReadFile(e.src)
			if err != nil {
				return cw.n, fmt.Errorf("initramfs: %s: %w", p, err)
			}
			data = b
		}
		info := cpio.Info{
			Ino:    uint64(i + 1),
			Mode:   e.mode,
			NLink:  1,
			MTime:  uint64(epoch),
			Name:   p,
			Rmajor: e.rmaj,
			Rminor: e.rmin,
		}
		if e.isDir {
			info.NLink = 2
			data = nil
		}
		if err := rw.WriteRecord(cpio.StaticRecord(data, info)); err != nil {
			return cw.n, err
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// Compress compresses raw with "zstd" or "gzip" deterministically.
func Compress(raw []byte, method string) ([]byte, error) {
	var buf bytes.Buffer
	switch method {
	case "zstd":
		// One encoder goroutine and a fixed window: the same input gives the
		// same frame, and the kernel's decompressor handles an 8 MiB window.
		enc, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(8<<20),
			zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderCRC(true))
		if err != nil {
			return nil, err
		}
		if _, err := enc.Write(raw); err != nil {
			return nil, err
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
	case "gzip":
		gw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return nil, err
		}
		if _, err := gw.Write(raw); err != nil {
			return nil, err
		}
		if err := gw.Close(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("compression %q: allowed values are zstd, gzip", method)
	}
	return buf.Bytes(), nil
}
