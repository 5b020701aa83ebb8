// Package deb reads Debian binary packages (ar archives holding control and
// data tarballs) in Go and fetches them with apt-get into a cache folder, so
// the image builder takes kernels, firmware and boot loaders from Debian
// without installing them on the build machine.
package deb

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gridnode/gridnode/internal/untar"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Caps on what a package may unpack to: a package is input from a mirror
// (or a file someone handed over), and a few kilobytes of compressed zeros
// would otherwise fill the build machine's disk or memory. Debian's largest
// kernel package unpacks to 400 MB, its firmware packages to less.
// Variables for the tests.
var (
	// MaxData caps the decompressed data member (headers included).
	MaxData int64 = 2 << 30
	// MaxControl caps the decompressed control member.
	MaxControl int64 = 16 << 20
	// MaxEntries caps the entries Extract writes.
	MaxEntries = 200_000
)

// Package is an opened .deb file.
type Package struct {
	Path    string
	Name    string
	Version string
	Arch    string
	Depends string
	SHA256  string
	Control map[string]string
}

// Open reads the control fields and checksum of the .deb at path. They are
// remembered in a PATH.meta.json beside it (keyed by size and mtime), so a
// warm build does not hash a 70 MB kernel package again.
func Open(path string) (*Package, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%d:%d", st.Size(), st.ModTime().UnixNano())
	metaPath := path + ".meta.json"
	var meta struct {
		Key string
		Pkg Package
	}
	if b, err := os.ReadFile(metaPath); err == nil && json.Unmarshal(b, &meta) == nil && meta.Key == key {
		p := meta.Pkg
		p.Path = path
		return &p, nil
	}
	p, err := open(path)
	if err != nil {
		return nil, err
	}
	meta.Key, meta.Pkg = key, *p
	if b, err := json.Marshal(meta); err == nil {
		os.WriteFile(metaPath, b, 0o644) // a cache: failing to write it costs only time
	}
	return p, nil
}

func open(path string) (*Package, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p.Path = path
	return p, nil
}

// parse reads the control fields and checksum of the package b.
func parse(b []byte) (*Package, error) {
	sum := sha256.Sum256(b)
	p := &Package{SHA256: hex.EncodeToString(sum[:])}
	var control []byte
	err := members(b, func(name string, r io.Reader) error {
		if !strings.HasPrefix(name, "control.tar") {
			return nil
		}
		return walkTar(name, r, MaxControl, func(h *tar.Header, r io.Reader) error {
			if filepath.Clean(h.Name) == "control" {
				var err error
				control, err = io.ReadAll(r)
				return err
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if control == nil {
		return nil, errors.New("no control file: not a Debian package")
	}
	p.Control = parseControl(control)
	p.Name, p.Version, p.Arch, p.Depends = p.Control["Package"], p.Control["Version"], p.Control["Architecture"], p.Control["Depends"]
	return p, nil
}

// Walk calls fn for every entry of the package's data tarball, in archive
// order. Names are relative ("boot/vmlinuz-…", "lib/modules/…").
func (p *Package) Walk(fn func(h *tar.Header, r io.Reader) error) error {
	b, err := os.ReadFile(p.Path)
	if err != nil {
		return err
	}
	if err := walkData(b, fn); err != nil {
		return fmt.Errorf("%s: %w", p.Path, err)
	}
	return nil
}

// walkData walks the data member of the package b.
func walkData(b []byte, fn func(h *tar.Header, r io.Reader) error) error {
	found := false
	err := members(b, func(name string, r io.Reader) error {
		if !strings.HasPrefix(name, "data.tar") {
			return nil
		}
		found = true
		return walkTar(name, r, MaxData, func(h *tar.Header, r io.Reader) error {
			h.Name = strings.TrimPrefix(filepath.Clean(h.Name), "./")
			if h.Name == "." {
				return nil
			}
			return fn(h, r)
		})
	})
	if err == nil && !found {
		err = errors.New("no data.tar member")
	}
	return err
}

// Extract writes the package's data files into dir (regular files, folders,
// symlinks and hard links; no device nodes), keeping permissions; no entry
// writes outside dir or through a link an earlier entry made
// (internal/untar), and no more than MaxData bytes and MaxEntries entries
// are written.
func (p *Package) Extract(dir string) error {
	d, err := untar.Open(dir, untar.Options{RootedLinks: true, TrimSlash: true, MaxBytes: MaxData, MaxEntries: MaxEntries})
	if err != nil {
		return err
	}
	defer d.Close()
	return p.Walk(d.Add)
}

// members iterates over the members of an ar archive.
func members(b []byte, fn func(name string, r io.Reader) error) error {
	if !bytes.HasPrefix(b, []byte("!<arch>\n")) {
		return errors.New("not an ar archive")
	}
	off := 8
	for off+60 <= len(b) {
		h := b[off : off+60]
		name := strings.TrimRight(strings.TrimSpace(string(h[0:16])), "/")
		size, err := strconv.ParseInt(strings.TrimSpace(string(h[48:58])), 10, 64)
		if err != nil || size < 0 || off+60+int(size) > len(b) {
			return fmt.Errorf("ar member %q: bad size", name)
		}
		data := b[off+60 : off+60+int(size)]
		if err := fn(name, bytes.NewReader(data)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		off += 60 + int(size) + int(size%2)
	}
	return nil
}

// walkTar walks the tar member name (compressed as its extension says),
// reading at most max bytes of it decompressed.
func walkTar(name string, r io.Reader, max int64, fn func(h *tar.Header, r io.Reader) error) error {
	var dr io.Reader
	switch filepath.Ext(name) {
	case ".xz":
		x, err := xz.NewReader(bufio.NewReaderSize(r, 1<<20))
		if err != nil {
			return err
		}
		dr = x
	case ".zst":
		// The window a frame asks for is allocated: bound it (zstd --long
		// uses up to 128 MiB; the library would grant 512 MiB).
		z, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20), zstd.WithDecoderMaxMemory(uint64(max)))
		if err != nil {
			return err
		}
		defer z.Close()
		dr = z
	case ".gz":
		g, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		dr = g
	case ".tar":
		dr = r
	default:
		return fmt.Errorf("unsupported compression %q", name)
	}
	err := untar.Walk(tar.NewReader(untar.Cap(dr, max)), fn)
	if errors.Is(err, untar.ErrTooLarge) {
		return fmt.Errorf("%w (a package unpacks to at most %d MiB here: a damaged or hostile package?)", err, max>>20)
	}
	return err
}

func parseControl(b []byte) map[string]string {
	m := map[string]string{}
	var last string
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last != "" {
				m[last] += "\n" + strings.TrimSpace(line)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		last = k
		m[k] = strings.TrimSpace(v)
	}
	return m
}
