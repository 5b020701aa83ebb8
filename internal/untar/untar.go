// Package untar writes tar entries (regular files, folders, symlinks, hard
// links) into a folder through an os.Root, so that no entry can write
// outside it whatever the archive says: not by its name ("../x", "/etc/x")
// nor through a symlink an earlier entry made ("lib -> /etc", then
// "lib/passwd"). Kernels and firmware come from Debian packages and OCI
// images, that is from the network.
package untar

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Dir is a folder entries are written into.
type Dir struct{ root *os.Root }

// Open opens dir, made if need be, to write entries into.
func Open(dir string) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Dir{root: r}, nil
}

// Close releases the folder.
func (d *Dir) Close() error { return d.root.Close() }

// Name is the entry's path inside the folder: h.Name cleaned, without a
// leading "/" or "./"; "" for the folder itself. A name that climbs out
// ("../x") is an error.
func Name(h *tar.Header) (string, error) {
	n := path.Clean(strings.TrimLeft(h.Name, "/"))
	if n == "." {
		return "", nil
	}
	if n == ".." || strings.HasPrefix(n, "../") {
		return "", fmt.Errorf("entry %q escapes the target folder", h.Name)
	}
	return n, nil
}

// Add writes the entry h, with its content r for a regular file. Modes keep
// their permission bits (no setuid, setgid or sticky bit from an archive);
// device nodes, fifos and the like are skipped.
func (d *Dir) Add(h *tar.Header, r io.Reader) error {
	name, err := Name(h)
	if err != nil || name == "" {
		return err
	}
	perm := fs.FileMode(h.Mode) & fs.ModePerm
	if h.Typeflag != tar.TypeDir {
		if err := d.root.MkdirAll(path.Dir(name), 0o755); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		err = d.root.MkdirAll(name, 0o755)
	case tar.TypeSymlink:
		err = d.replace(name, func() error { return d.root.Symlink(h.Linkname, name) })
	case tar.TypeLink:
		target, lerr := Name(&tar.Header{Name: h.Linkname})
		if lerr != nil {
			return fmt.Errorf("%s: hard link: %w", h.Name, lerr)
		}
		err = d.replace(name, func() error { return d.root.Link(target, name) })
	case tar.TypeReg:
		err = d.replace(name, func() error {
			f, err := d.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, r); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		})
	}
	if err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	return nil
}

// replace removes what name holds (a later entry wins, as tar has it) and
// makes it anew: never writing through an existing symlink.
func (d *Dir) replace(name string, make func() error) error {
	if err := d.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return make()
}

// All extracts every entry of tr into dir.
func All(tr *tar.Reader, dir string) error {
	d, err := Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return Walk(tr, d.Add)
}

// Walk calls fn for every entry of tr, in archive order, with the entry's
// content, and stops at the first error.
func Walk(tr *tar.Reader, fn func(h *tar.Header, r io.Reader) error) error {
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}
