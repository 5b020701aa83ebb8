// Package untar extracts tar archives into a folder so that no entry can
// write outside it, whatever the archive holds: OCI image layers pulled from
// a registry, Debian packages, kernel images from OCI artifacts.
//
// Every write goes through an os.Root opened on the folder, and on top of
// what os.Root refuses (a path leaving the root, a symlink leading out of
// it), Extract refuses:
//
//   - names that have a ".." component, or are absolute (unless
//     Options.TrimSlash takes them as relative, as GNU tar does);
//   - an entry whose parent path crosses a symlink, wherever it points (an
//     earlier entry may have made it: "writing through a link");
//   - hard links whose target is such a name, crosses a symlink or is a
//     folder;
//   - symlinks whose target is absolute or climbs out of the root, unless
//     Options.RootedLinks says the tree is a root file system (a
//     container's, a Debian package's), where such links are resolved inside the root by
//     whoever follows them, never by Extract;
//   - more bytes (after decompression) or entries than the caps allow: a
//     bomb stops with ErrTooLarge.
//
// An entry replaces what is at its name without following it: a symlink
// there is removed, not written through. Device nodes and FIFOs are
// skipped (a container gets its own /dev), and counted in Stats.Skipped.
// Extended attributes are not applied.
//
// Extract takes a whole stream; Walk with a Dir's Add takes entries one at
// a time from a caller that walks an archive itself.
//
// Extract assumes nothing else changes the folder while it runs: it
// checks a path and then uses it. Extract into a folder of your own (a
// temporary one, renamed into place when done).
package untar

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
)

// Options tune Extract. The zero value extracts a plain archive with no
// caps, files owned by the caller.
type Options struct {
	// Whiteouts applies OCI image layer whiteouts against what earlier
	// layers put in the folder: an entry ".wh.NAME" removes NAME, and
	// ".wh..wh..opq" in a folder removes what earlier layers put in that
	// folder. Without it such entries are ordinary files.
	Whiteouts bool
	// MaxBytes caps the bytes read from r (the decompressed archive,
	// headers included); 0 means no cap.
	MaxBytes int64
	// MaxEntries caps the number of entries; 0 means no cap.
	MaxEntries int
	// Owners gives each entry the uid and gid the archive says (needs
	// root) and keeps setuid and setgid bits. Without it every entry
	// belongs to the caller and those bits are dropped.
	Owners bool
	// RootedLinks accepts symlinks whose target is absolute or climbs
	// above the root: the folder is a root file system (a container's, a
	// Debian package's), and its links are resolved inside it by whoever
	// uses it, never by Extract.
	RootedLinks bool
	// TrimSlash takes a name with a leading "/" as relative to the root,
	// as GNU tar does, instead of refusing it.
	TrimSlash bool
}

// Stats says what Extract did.
type Stats struct {
	Entries int
	// Bytes is the content written to regular files.
	Bytes int64
	// Skipped lists the names of device nodes, FIFOs and entries of
	// unknown type that were not extracted.
	Skipped []string
}

// Errors Extract wraps; errors.Is tells them apart.
var (
	// ErrUnsafe is an entry that would write, or link, outside the root
	// or through a symlink.
	ErrUnsafe = errors.New("unsafe entry")
	// ErrTooLarge is an archive over Options.MaxBytes or MaxEntries.
	ErrTooLarge = errors.New("archive too large")
)

// ExtractDir extracts the tar stream r into the folder dir (which must
// exist). See Extract.
func ExtractDir(dir string, r io.Reader, opt Options) (Stats, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Stats{}, fmt.Errorf("untar: %w", err)
	}
	defer root.Close()
	return Extract(root, r, opt)
}

// Extract extracts the tar stream r into root.
func Extract(root *os.Root, r io.Reader, opt Options) (Stats, error) {
	if opt.MaxBytes > 0 {
		r = Cap(r, opt.MaxBytes)
	}
	d := &Dir{x: newExtractor(root, opt)}
	if err := Walk(tar.NewReader(r), d.Add); err != nil {
		return d.x.stats, err
	}
	return d.x.stats, d.x.finishDirs()
}

// Walk calls fn for every entry of tr, in archive order, with the entry's
// content, and stops at the first error.
func Walk(tr *tar.Reader, fn func(h *tar.Header, r io.Reader) error) error {
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("untar: after %d entries: %w", n, err)
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}

// Dir extracts entries one at a time into a folder, for a caller that
// walks an archive itself (a Debian package's data member, among others).
// The same rules as Extract's apply; Close gives the folders their modes
// and times.
type Dir struct {
	x    *extractor
	root *os.Root // closed by Close when Open opened it
}

// Open makes the folder dir if need be and opens it for Add.
func Open(dir string, opt Options) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("untar: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("untar: %w", err)
	}
	return &Dir{x: newExtractor(root, opt), root: root}, nil
}

// Add extracts the entry h, with its content r for a regular file.
func (d *Dir) Add(h *tar.Header, r io.Reader) error {
	x := d.x
	x.stats.Entries++
	if x.opt.MaxEntries > 0 && x.stats.Entries > x.opt.MaxEntries {
		return fmt.Errorf("untar: more than %d entries: %w", x.opt.MaxEntries, ErrTooLarge)
	}
	if err := x.entry(h, r); err != nil {
		return fmt.Errorf("untar: entry %q: %w", h.Name, err)
	}
	return nil
}

// Stats says what was extracted so far.
func (d *Dir) Stats() Stats { return d.x.stats }

// Close gives the folders their modes and times and releases the folder.
func (d *Dir) Close() error {
	err := d.x.finishDirs()
	if cerr := d.root.Close(); err == nil {
		err = cerr
	}
	return err
}

func newExtractor(root *os.Root, opt Options) *extractor {
	return &extractor{root: root, opt: opt, mine: map[string]bool{}, dirs: map[string]dirMeta{}}
}

// Cap returns a reader of r that fails with ErrTooLarge once more than
// max bytes were read: a decompressed stream whose size only its end would
// tell (a decompression bomb stops at max).
func Cap(r io.Reader, max int64) io.Reader {
	return &capReader{r: r, left: max, max: max}
}

// capReader fails with ErrTooLarge once more than max bytes were read.
type capReader struct {
	r         io.Reader
	left, max int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// At the cap: only the end of the stream is still fine.
		if n, err := c.r.Read(make([]byte, 1)); n == 0 && err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("more than %d bytes after decompression: %w", c.max, ErrTooLarge)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
