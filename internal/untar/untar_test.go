package untar

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// ent is one archive entry for the tests.
type ent struct {
	name string
	typ  byte
	body string
	link string
	mode int64
}

func file(name, body string) ent  { return ent{name: name, typ: tar.TypeReg, body: body} }
func dir(name string) ent         { return ent{name: name, typ: tar.TypeDir} }
func symlink(name, to string) ent { return ent{name: name, typ: tar.TypeSymlink, link: to} }
func hardlink(name, to string) ent {
	return ent{name: name, typ: tar.TypeLink, link: to}
}

var mtime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

func archive(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if e.typ == tar.TypeDir {
				mode = 0o755
			}
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode, Size: int64(len(e.body)), ModTime: mtime, Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// sandbox is a folder with the root to extract into and, beside it, a
// folder "outside" with a file that hostile archives aim at.
func sandbox(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root, outside = filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{root, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, outside
}

// checkOutside fails unless the outside folder holds exactly its secret,
// unchanged, and the sandbox nothing but root and outside.
func checkOutside(t *testing.T, outside string) {
	t.Helper()
	ents, _ := os.ReadDir(outside)
	if len(ents) != 1 || ents[0].Name() != "secret" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("outside holds %v; want only secret", names)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "untouched" {
		t.Fatalf("outside/secret = %q; want it untouched", b)
	}
	sib, _ := os.ReadDir(filepath.Dir(outside))
	if len(sib) != 2 {
		t.Fatalf("the sandbox holds %d entries; want root and outside", len(sib))
	}
}

// TestHostile: archives that try to write outside the root are refused
// with ErrUnsafe, and nothing outside changes.
func TestHostile(t *testing.T) {
	for _, c := range []struct {
		name   string
		ents   []ent
		rooted bool
	}{
		{"dot-dot", []ent{file("../outside/secret", "owned")}, false},
		{"dot-dot inside", []ent{file("a/../../outside/secret", "owned")}, false},
		{"absolute", []ent{file("/tmp/owned", "owned")}, false},
		{"symlink absolute", []ent{symlink("l", "/etc")}, false},
		{"symlink climbing", []ent{symlink("d/l", "../../outside")}, false},
		{"write through escaping symlink", []ent{symlink("l", "../outside"), file("l/secret", "owned")}, true},
		{"write through absolute symlink", []ent{symlink("l", "/"), file("l/tmp/owned", "owned")}, true},
		{"write through inner symlink", []ent{dir("d"), symlink("l", "d"), file("l/x", "x")}, false},
		{"folder through symlink", []ent{symlink("l", "."), dir("l/d")}, false},
		{"hard link dot-dot", []ent{hardlink("h", "../outside/secret")}, false},
		{"hard link absolute", []ent{hardlink("h", "/etc/passwd")}, false},
		{"hard link through symlink", []ent{symlink("l", "../outside"), hardlink("h", "l/secret")}, true},
		{"hard link to a folder", []ent{dir("d"), hardlink("h", "d")}, false},
		{"whiteout dot-dot", []ent{file(".wh..", "")}, false},
		{"whiteout through symlink", []ent{symlink("l", "../outside"), file("l/.wh.secret", "")}, true},
		{"opaque through symlink", []ent{symlink("l", "../outside"), file("l/.wh..wh..opq", "")}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			root, outside := sandbox(t)
			_, err := ExtractDir(root, bytes.NewReader(archive(t, c.ents...)), Options{Whiteouts: true, RootedLinks: c.rooted})
			if !errors.Is(err, ErrUnsafe) {
				t.Fatalf("Extract = %v; want ErrUnsafe", err)
			}
			checkOutside(t, outside)
		})
	}
}

// TestReplaceDoesNotFollow: an entry over a symlink replaces the link; it
// never writes where the link points.
func TestReplaceDoesNotFollow(t *testing.T) {
	root, outside := sandbox(t)
	a := archive(t, symlink("f", "/outside/secret"), file("f", "mine"), symlink("g", "/outside"), dir("g"))
	if _, err := ExtractDir(root, bytes.NewReader(a), Options{RootedLinks: true}); err != nil {
		t.Fatal(err)
	}
	checkOutside(t, outside)
	if fi, err := os.Lstat(filepath.Join(root, "f")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("f = %v, %v; want a regular file", fi, err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "g")); err != nil || !fi.IsDir() {
		t.Fatalf("g = %v, %v; want a folder", fi, err)
	}
}

// TestRootedLinks: a container's absolute and climbing links are kept as
// links (resolved inside the container), never followed here.
func TestRootedLinks(t *testing.T) {
	root, outside := sandbox(t)
	a := archive(t, symlink("usr/bin/awk", "/etc/alternatives/awk"), symlink("x", "../../../etc"))
	if _, err := ExtractDir(root, bytes.NewReader(a), Options{RootedLinks: true}); err != nil {
		t.Fatal(err)
	}
	if l, err := os.Readlink(filepath.Join(root, "usr/bin/awk")); err != nil || l != "/etc/alternatives/awk" {
		t.Fatalf("usr/bin/awk → %q, %v", l, err)
	}
	checkOutside(t, outside)
}

// TestExtract: a plain archive comes out with its contents, modes, times,
// links, implicit folders, and a read-only folder that still filled.
func TestExtract(t *testing.T) {
	root, _ := sandbox(t)
	a := archive(t,
		dir("./"),
		ent{name: "ro/", typ: tar.TypeDir, mode: 0o555},
		file("ro/inside", "in a read-only folder"),
		ent{name: "bin/tool", typ: tar.TypeReg, body: "#!/bin/sh\n", mode: 0o4755},
		file("deep/er/file", "implicit parents"),
		symlink("lnk", "deep/er/file"),
		hardlink("hard", "deep/er/file"),
		ent{name: "dev/null", typ: tar.TypeChar},
		ent{name: "fifo", typ: tar.TypeFifo},
	)
	st, err := ExtractDir(root, bytes.NewReader(a), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 9 || !slices.Equal(st.Skipped, []string{"dev/null", "fifo"}) {
		t.Fatalf("stats = %+v; want 9 entries, device and fifo skipped", st)
	}
	for p, want := range map[string]string{"ro/inside": "in a read-only folder", "deep/er/file": "implicit parents", "lnk": "implicit parents", "hard": "implicit parents"} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	fi, _ := os.Stat(filepath.Join(root, "ro"))
	if fi.Mode().Perm() != 0o555 || !fi.ModTime().Equal(mtime) {
		t.Errorf("ro: mode %v time %v; want 0555 and %v", fi.Mode(), fi.ModTime(), mtime)
	}
	fi, _ = os.Stat(filepath.Join(root, "bin/tool"))
	if fi.Mode() != 0o755 || !fi.ModTime().Equal(mtime) {
		t.Errorf("bin/tool: mode %v time %v; want 0755 (setuid dropped without Owners) and %v", fi.Mode(), fi.ModTime(), mtime)
	}
	a1, _ := os.Stat(filepath.Join(root, "hard"))
	a2, _ := os.Stat(filepath.Join(root, "deep/er/file"))
	if !os.SameFile(a1, a2) {
		t.Error("hard is not a hard link of deep/er/file")
	}
	os.Chmod(filepath.Join(root, "ro"), 0o755) // let TempDir clean up as non-root
}

// TestWhiteouts: layers applied in order; .wh.NAME hides what lower
// layers made, an opaque folder keeps only this layer's entries, whatever
// the order of the marker and the entries.
func TestWhiteouts(t *testing.T) {
	root, _ := sandbox(t)
	lower := archive(t, file("a/x", "x"), file("a/y", "y"), file("b/z", "z"), file("c/old", "old"), file("d/old", "old"), file("keep", "k"))
	upper := archive(t,
		file("a/.wh.x", ""),
		file(".wh.b", ""),
		file("c/new", "new"),
		file("c/.wh..wh..opq", ""), // after this layer's own entry
		file("d/.wh..wh..opq", ""), // before it
		file("d/new", "new"),
		file("e/.wh.e1", ""), // hides nothing: fine
	)
	for _, l := range [][]byte{lower, upper} {
		if _, err := ExtractDir(root, bytes.NewReader(l), Options{Whiteouts: true}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			got = append(got, rel)
		}
		return nil
	})
	want := []string{"a/y", "c/new", "d/new", "keep"}
	if !slices.Equal(got, want) {
		t.Fatalf("after whiteouts: %v; want %v", got, want)
	}

	// Without Whiteouts, a .wh. entry is a file like any other.
	plain, _ := sandbox(t)
	if _, err := ExtractDir(plain, bytes.NewReader(upper), Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(plain, ".wh.b")); err != nil {
		t.Fatalf(".wh.b not extracted as a file without Whiteouts: %v", err)
	}
}

// TestBomb: a small gzip that decompresses to far more than the cap stops
// at the cap, with ErrTooLarge, as do too many entries and a header that
// announces more than the cap.
func TestBomb(t *testing.T) {
	root, _ := sandbox(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	tw := tar.NewWriter(zw)
	const size = 256 << 20
	tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Size: size, Mode: 0o644})
	zero := make([]byte, 1<<20)
	for range size / len(zero) {
		tw.Write(zero)
	}
	tw.Close()
	zw.Close()
	if gz.Len() > 1<<20 {
		t.Fatalf("the bomb is %d bytes compressed; the test wants a small one", gz.Len())
	}
	// A lying header (size 0 in the header would not do): cap the stream
	// below the file and see the copy stop.
	zr, _ := gzip.NewReader(bytes.NewReader(gz.Bytes()))
	st, err := ExtractDir(root, zr, Options{MaxBytes: 8 << 20})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Extract of a 256 MiB bomb with an 8 MiB cap = %v; want ErrTooLarge", err)
	}
	if st.Bytes > 8<<20 {
		t.Fatalf("wrote %d bytes; want at most the cap", st.Bytes)
	}
	if !strings.Contains(err.Error(), "over the cap") && !strings.Contains(err.Error(), "after decompression") {
		t.Fatalf("error %q does not say what the cap is", err)
	}

	var many []ent
	for i := range 50 {
		many = append(many, file("f"+strings.Repeat("x", i), ""))
	}
	if _, err := ExtractDir(t.TempDir(), bytes.NewReader(archive(t, many...)), Options{MaxEntries: 49}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("50 entries with a cap of 49: %v; want ErrTooLarge", err)
	}
	exact := archive(t, many...)
	if _, err := ExtractDir(t.TempDir(), bytes.NewReader(exact), Options{MaxEntries: 50, MaxBytes: int64(len(exact))}); err != nil {
		t.Fatalf("an archive exactly at its caps: %v", err)
	}
}

// TestDebianPackage: the builder's use (issue 14): a package's data walked
// entry by entry through Dir, names with a leading "/" or "./", the
// kernel's absolute "build" link kept as a link, a hard link that keeps the
// old content when its target is replaced, no device node, no setuid bit.
func TestDebianPackage(t *testing.T) {
	root, outside := sandbox(t)
	d, err := Open(root, Options{RootedLinks: true, TrimSlash: true})
	if err != nil {
		t.Fatal(err)
	}
	a := archive(t,
		ent{name: "./lib/modules/6.1/", typ: tar.TypeDir, mode: 0o755},
		file("lib/modules/6.1/kernel/e1000.ko", "ko"),
		ent{name: "/boot/vmlinuz", typ: tar.TypeReg, body: "bz", mode: 0o4755},
		symlink("vmlinuz", "boot/vmlinuz"),
		symlink("lib/modules/6.1/build", "/usr/src/linux-headers-6.1"),
		hardlink("lib/e1000.ko", "./lib/modules/6.1/kernel/e1000.ko"),
		file("lib/modules/6.1/kernel/e1000.ko", "ko v2"),
		ent{name: "dev/null", typ: tar.TypeChar},
	)
	if err := Walk(tar.NewReader(bytes.NewReader(a)), d.Add); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"lib/modules/6.1/kernel/e1000.ko": "ko v2", "boot/vmlinuz": "bz", "vmlinuz": "bz", "lib/e1000.ko": "ko"} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	if l, err := os.Readlink(filepath.Join(root, "lib/modules/6.1/build")); err != nil || l != "/usr/src/linux-headers-6.1" {
		t.Errorf("build -> %q, %v", l, err)
	}
	if fi, err := os.Stat(filepath.Join(root, "boot/vmlinuz")); err != nil || fi.Mode() != 0o755 {
		t.Errorf("boot/vmlinuz mode %v, %v; want 0755", fi.Mode(), err)
	}
	if _, err := os.Lstat(filepath.Join(root, "dev/null")); err == nil {
		t.Error("a device node was made")
	}
	// The same archive with an escape added stops there, through Dir too.
	d2, _ := Open(root, Options{RootedLinks: true, TrimSlash: true})
	defer d2.Close()
	bad := archive(t, symlink("lib2", "../outside"), file("lib2/secret", "owned"))
	if err := Walk(tar.NewReader(bytes.NewReader(bad)), d2.Add); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("an escape through Dir: %v", err)
	}
	checkOutside(t, outside)
}
