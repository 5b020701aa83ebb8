package untar

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seeds are archives the fuzzer starts from: ordinary ones and the hostile
// ones of TestHostile.
func seeds(t testing.TB) map[string][]byte {
	return map[string][]byte{
		"plain":      archive(t, dir("d/"), file("d/f", "body"), symlink("d/l", "f"), hardlink("d/h", "d/f")),
		"whiteouts":  archive(t, file("a/x", "x"), file("a/.wh.x", ""), file("b/.wh..wh..opq", ""), file("b/n", "n")),
		"dotdot":     archive(t, file("../outside/secret", "owned")),
		"through":    archive(t, symlink("l", "../outside"), file("l/secret", "owned")),
		"inner-link": archive(t, dir("d"), symlink("l", "d"), file("l/x", "x")),
		"hardlink":   archive(t, hardlink("h", "../outside/secret")),
		"absolute":   archive(t, symlink("l", "/"), file("l/tmp/owned", "owned")),
	}
}

var writeSeeds = flag.Bool("write-seeds", false, "rewrite testdata/fuzz/FuzzExtract from seeds()")

// TestWriteSeeds keeps the seed corpus in testdata in step with seeds():
// with -write-seeds it rewrites the files, otherwise it checks them.
func TestWriteSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzExtract")
	for name, b := range seeds(t) {
		for _, mode := range []byte{0, 3} {
			p := filepath.Join(dir, fmt.Sprintf("%s-%d", name, mode))
			want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbyte(%q)\n", b, mode)
			if *writeSeeds {
				os.MkdirAll(dir, 0o755)
				if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if got, err := os.ReadFile(p); err != nil || string(got) != want {
				t.Errorf("seed %s is missing or stale: run go test -run TestWriteSeeds -write-seeds ./internal/untar", p)
			}
		}
	}
}

// FuzzExtract: whatever the archive, Extract does not panic, nothing
// outside the root changes, and without RootedLinks no symlink in the root
// points out of it.
func FuzzExtract(f *testing.F) {
	for _, b := range seeds(f) {
		f.Add(b, byte(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode byte) {
		root, outside := sandbox(t)
		opt := Options{Whiteouts: mode&1 != 0, RootedLinks: mode&2 != 0, MaxBytes: 4 << 20, MaxEntries: 1000}
		ExtractDir(root, bytes.NewReader(data), opt)
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() {
				os.Chmod(p, 0o755) // a read-only folder must not stop the cleanup
			}
			if d.Type()&fs.ModeSymlink != 0 && !opt.RootedLinks {
				l, _ := os.Readlink(p)
				abs := filepath.Join(filepath.Dir(p), l)
				if filepath.IsAbs(l) || !strings.HasPrefix(abs+"/", root+"/") {
					t.Fatalf("symlink %s → %s leaves the root", p, l)
				}
			}
			return nil
		})
		checkOutside(t, outside)
	})
}
