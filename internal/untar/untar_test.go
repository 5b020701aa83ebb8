package untar

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func archive(t *testing.T, entries ...entry) *tar.Reader {
	t.Helper()
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Size: int64(len(e.body))}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(e.body))
	}
	w.Close()
	return tar.NewReader(&b)
}

func TestExtracts(t *testing.T) {
	dir := t.TempDir()
	err := All(archive(t,
		entry{name: "./lib/modules/6.1/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "lib/modules/6.1/kernel/e1000.ko", typ: tar.TypeReg, body: "ko"},
		entry{name: "/boot/vmlinuz", typ: tar.TypeReg, body: "bz", mode: 0o4755},
		entry{name: "vmlinuz", typ: tar.TypeSymlink, link: "boot/vmlinuz"},
		entry{name: "lib/modules/6.1/build", typ: tar.TypeSymlink, link: "/usr/src/linux-headers-6.1"},
		entry{name: "lib/e1000.ko", typ: tar.TypeLink, link: "./lib/modules/6.1/kernel/e1000.ko"},
		entry{name: "lib/modules/6.1/kernel/e1000.ko", typ: tar.TypeReg, body: "ko v2"},
		entry{name: "dev/null", typ: tar.TypeChar},
	), dir)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"lib/modules/6.1/kernel/e1000.ko": "ko v2", "boot/vmlinuz": "bz", "vmlinuz": "bz", "lib/e1000.ko": "ko"} {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	if l, err := os.Readlink(filepath.Join(dir, "lib/modules/6.1/build")); err != nil || l != "/usr/src/linux-headers-6.1" {
		t.Errorf("symlink build -> %q, %v", l, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "boot/vmlinuz")); err != nil || fi.Mode() != 0o755 {
		t.Errorf("boot/vmlinuz mode %v, %v; want 0755 (no setuid from an archive)", fi.Mode(), err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "dev/null")); err == nil {
		t.Error("a device node was made")
	}
}

// No entry writes outside the folder: not by its name, not through a
// symlink an earlier entry made, not by a hard link to a file outside.
func TestNothingEscapes(t *testing.T) {
	for _, c := range []struct {
		name    string
		entries []entry
	}{
		{"dot-dot name", []entry{{name: "../outside/pwned", typ: tar.TypeReg, body: "x"}}},
		{"deep dot-dot name", []entry{{name: "a/../../outside/pwned", typ: tar.TypeReg, body: "x"}}},
		{"through a symlinked folder", []entry{{name: "lib", typ: tar.TypeSymlink, link: "../outside"}, {name: "lib/pwned", typ: tar.TypeReg, body: "x"}}},
		{"through an absolute symlinked folder", []entry{{name: "lib", typ: tar.TypeSymlink, link: "OUTSIDE"}, {name: "lib/pwned", typ: tar.TypeReg, body: "x"}}},
		{"hard link out", []entry{{name: "pwned", typ: tar.TypeLink, link: "../outside/secret"}}},
		{"folder through a symlink", []entry{{name: "d", typ: tar.TypeSymlink, link: "../outside"}, {name: "d/pwned/", typ: tar.TypeDir}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			dir, outside := filepath.Join(base, "in"), filepath.Join(base, "outside")
			os.Mkdir(dir, 0o755)
			os.Mkdir(outside, 0o755)
			os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600)
			for i := range c.entries {
				c.entries[i].link = strings.ReplaceAll(c.entries[i].link, "OUTSIDE", outside)
			}
			err := All(archive(t, c.entries...), dir)
			if err == nil {
				t.Error("no error")
			}
			if _, serr := os.Lstat(filepath.Join(outside, "pwned")); serr == nil {
				t.Errorf("wrote outside the folder (error: %v)", err)
			}
			if _, serr := os.Lstat(filepath.Join(dir, "pwned")); c.name == "hard link out" && serr == nil {
				t.Error("linked to a file outside the folder")
			}
		})
	}
}
