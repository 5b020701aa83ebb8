package untar

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

type extractor struct {
	root  *os.Root
	opt   Options
	stats Stats
	// mine holds the names this archive made (whiteouts spare them).
	mine map[string]bool
	// dirs holds the mode and time of each folder entry, applied at the
	// end: a read-only folder must stay writable while it fills.
	dirs map[string]dirMeta
}

type dirMeta struct {
	mode  fs.FileMode
	mtime time.Time
	uid   int
	gid   int
}

const whiteoutPrefix, opaque = ".wh.", ".wh..wh..opq"

func (x *extractor) entry(h *tar.Header, r io.Reader) error {
	n := h.Name
	if x.opt.TrimSlash {
		n = strings.TrimLeft(n, "/")
		if n == "" {
			n = "."
		}
	}
	name, err := clean(n)
	if err != nil {
		return err
	}
	if name == "." {
		return nil // the root itself: its mode is the caller's
	}
	if err := x.parents(name); err != nil {
		return err
	}
	base := path.Base(name)
	if x.opt.Whiteouts && strings.HasPrefix(base, whiteoutPrefix) {
		return x.whiteout(name, base)
	}
	switch h.Typeflag {
	case tar.TypeDir:
		return x.dir(name, h)
	case tar.TypeReg, tar.TypeGNUSparse:
		return x.file(name, h, r)
	case tar.TypeSymlink:
		return x.symlink(name, h)
	case tar.TypeLink:
		return x.link(name, h)
	case tar.TypeXGlobalHeader:
		return nil
	default:
		x.stats.Skipped = append(x.stats.Skipped, name)
		return nil
	}
}

// clean checks an entry's name and returns it relative, without "./" or a
// trailing slash.
func clean(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute or empty name: %w", ErrUnsafe)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("NUL byte in the name: %w", ErrUnsafe)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("\"..\" in the name: %w", ErrUnsafe)
		}
	}
	return path.Clean(name), nil
}

// parents makes sure every folder above name is a real folder, not a
// symlink, making the missing ones.
func (x *extractor) parents(name string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	p := ""
	for _, c := range strings.Split(dir, "/") {
		p = path.Join(p, c)
		fi, err := x.root.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := x.root.Mkdir(p, 0o755); err != nil {
				return err
			}
			x.mine[p] = true
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("its path crosses the symlink %q: %w", p, ErrUnsafe)
		case !fi.IsDir():
			return fmt.Errorf("its path crosses %q, which is not a folder", p)
		}
	}
	return nil
}

// clear removes what is at name, without following it; a folder is kept
// when keepDir (a folder entry over a folder merges).
func (x *extractor) clear(name string, keepDir bool) (existed bool, err error) {
	fi, err := x.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fi.IsDir() {
		if keepDir {
			return true, nil
		}
		return false, x.root.RemoveAll(name)
	}
	return false, x.root.Remove(name)
}

func (x *extractor) mode(h *tar.Header) fs.FileMode {
	m := h.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if !x.opt.Owners {
		m &^= fs.ModeSetuid | fs.ModeSetgid
	}
	return m
}

func (x *extractor) dir(name string, h *tar.Header) error {
	existed, err := x.clear(name, true)
	if err != nil {
		return err
	}
	if !existed {
		if err := x.root.Mkdir(name, 0o700); err != nil {
			return err
		}
	}
	x.mine[name] = true
	x.dirs[name] = dirMeta{mode: x.mode(h), mtime: h.ModTime, uid: h.Uid, gid: h.Gid}
	return nil
}

func (x *extractor) file(name string, h *tar.Header, r io.Reader) error {
	if x.opt.MaxBytes > 0 && x.stats.Bytes+h.Size > x.opt.MaxBytes {
		return fmt.Errorf("%d bytes, over the cap of %d: %w", h.Size, x.opt.MaxBytes, ErrTooLarge)
	}
	if _, err := x.clear(name, false); err != nil {
		return err
	}
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	x.mine[name] = true
	n, err := io.Copy(f, io.LimitReader(r, h.Size))
	x.stats.Bytes += n
	if err == nil && x.opt.Owners {
		err = f.Chown(h.Uid, h.Gid) // before Chmod: chown clears setuid
	}
	if err == nil {
		err = f.Chmod(x.mode(h))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return x.root.Chtimes(name, h.ModTime, h.ModTime)
}

func (x *extractor) symlink(name string, h *tar.Header) error {
	t := h.Linkname
	if t == "" || strings.IndexByte(t, 0) >= 0 {
		return fmt.Errorf("empty symlink target or a NUL byte in it: %w", ErrUnsafe)
	}
	if !x.opt.RootedLinks {
		if path.IsAbs(t) {
			return fmt.Errorf("symlink to the absolute path %q: %w", t, ErrUnsafe)
		}
		if j := path.Join(path.Dir(name), t); j == ".." || strings.HasPrefix(j, "../") {
			return fmt.Errorf("symlink to %q leaves the root: %w", t, ErrUnsafe)
		}
	}
	if _, err := x.clear(name, false); err != nil {
		return err
	}
	if err := x.root.Symlink(t, name); err != nil {
		return err
	}
	x.mine[name] = true
	if x.opt.Owners {
		return x.root.Lchown(name, h.Uid, h.Gid)
	}
	return nil
}

func (x *extractor) link(name string, h *tar.Header) error {
	target, err := clean(h.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", h.Linkname, err)
	}
	if target == "." || target == name {
		return fmt.Errorf("hard link to %q: %w", h.Linkname, ErrUnsafe)
	}
	if err := x.parents(target); err != nil {
		return fmt.Errorf("hard link target %q: %w", h.Linkname, err)
	}
	fi, err := x.root.Lstat(target)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", h.Linkname, err)
	}
	if !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0 {
		return fmt.Errorf("hard link to %q, which is not a file: %w", h.Linkname, ErrUnsafe)
	}
	if _, err := x.clear(name, false); err != nil {
		return err
	}
	if err := x.root.Link(target, name); err != nil {
		return err
	}
	x.mine[name] = true
	return nil
}

// whiteout applies ".wh.NAME" (remove NAME) or ".wh..wh..opq" (remove
// what earlier layers put in the folder), sparing what this archive made.
func (x *extractor) whiteout(name, base string) error {
	dir := path.Dir(name)
	if base == opaque {
		ents, err := fs.ReadDir(x.root.FS(), dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		for _, e := range ents {
			p := path.Join(dir, e.Name())
			if !x.mine[p] {
				if err := x.root.RemoveAll(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	hidden := strings.TrimPrefix(base, whiteoutPrefix)
	if hidden == "" || hidden == "." || hidden == ".." {
		return fmt.Errorf("whiteout of %q: %w", hidden, ErrUnsafe)
	}
	p := path.Join(dir, hidden)
	if x.mine[p] {
		return nil // a whiteout hides only what earlier layers made
	}
	return x.root.RemoveAll(p)
}

// finishDirs gives the folders their modes, owners and times, deepest
// first so a parent's time is not changed by its children afterwards.
func (x *extractor) finishDirs() error {
	names := make([]string, 0, len(x.dirs))
	for n := range x.dirs {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, n := range names {
		m := x.dirs[n]
		fi, err := x.root.Lstat(n)
		if err != nil || !fi.IsDir() {
			continue // removed by a later whiteout or replaced
		}
		if x.opt.Owners {
			if err := x.root.Lchown(n, m.uid, m.gid); err != nil {
				return fmt.Errorf("untar: folder %q: %w", n, err)
			}
		}
		if err := x.root.Chmod(n, m.mode); err != nil {
			return fmt.Errorf("untar: folder %q: %w", n, err)
		}
		if err := x.root.Chtimes(n, m.mtime, m.mtime); err != nil {
			return fmt.Errorf("untar: folder %q: %w", n, err)
		}
	}
	return nil
}
