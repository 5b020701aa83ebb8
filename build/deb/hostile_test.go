package deb

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gridnode/gridnode/internal/untar"
	"github.com/klauspost/compress/zstd"
)

// entry is one tar entry of a hostile archive.
type entry struct {
	h    tar.Header
	body string
}

func file(name, body string) entry {
	return entry{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}, body}
}

func link(name, target string, typ byte) entry {
	return entry{h: tar.Header{Name: name, Typeflag: typ, Linkname: target, Mode: 0o777}}
}

func rawTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		if err := tw.WriteHeader(&e.h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	return b.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// debOf writes a .deb with the given control and data members.
func debOf(t *testing.T, control []byte, dataName string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hostile_1_amd64.deb")
	writeAr(t, p, "control.tar.gz", control, dataName, data)
	return p
}

func okControl(t *testing.T) []byte {
	return gz(t, rawTar(t, file("./control", "Package: hostile\nVersion: 1\nArchitecture: amd64\n")))
}

// A package whose entries write through a symlink an earlier entry made
// (to an absolute path, or climbing out), or hard-link or name a file
// outside, is refused by Extract, and nothing outside the folder changes.
func TestExtractRefusesEscapes(t *testing.T) {
	for name, entries := range map[string][]entry{
		"through absolute link": {link("./lib", "/", tar.TypeSymlink), file("./lib/tmp/owned", "x")},
		"through climbing link": {link("./lib", "../../../..", tar.TypeSymlink), file("./lib/owned", "x")},
		"through inner link":    {file("./usr/a", "a"), link("./bin", "usr", tar.TypeSymlink), file("./bin/owned", "x")},
		"dotdot name":           {file("./../owned", "x")},
		"hard link out":         {link("./passwd", "../outside/secret", tar.TypeLink)},
		"hard link via symlink": {link("./l", "/etc", tar.TypeSymlink), link("./passwd", "l/passwd", tar.TypeLink)},
	} {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			os.MkdirAll(outside, 0o755)
			os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644)
			p, err := Open(debOf(t, okControl(t), "data.tar.gz", gz(t, rawTar(t, entries...))))
			if err != nil {
				t.Fatal(err)
			}
			err = p.Extract(filepath.Join(base, "root", "x"))
			if !errors.Is(err, untar.ErrUnsafe) {
				t.Fatalf("Extract: %v; want it refused as unsafe", err)
			}
			ents, _ := os.ReadDir(outside)
			if b, _ := os.ReadFile(filepath.Join(outside, "secret")); len(ents) != 1 || string(b) != "secret" {
				t.Fatalf("outside the folder changed: %d entries, secret %q", len(ents), b)
			}
			if _, err := os.Stat(filepath.Join(base, "root", "owned")); err == nil {
				t.Fatal("a file was written above the folder")
			}
		})
	}
}

// A decompression bomb in the data member (gzip, zstd) or the control
// member stops at the cap with an error that says so, having written no
// more than the cap; the walk that reads one file out of a package stops
// too.
func TestBombsStopAtTheCap(t *testing.T) {
	oldData, oldControl := MaxData, MaxControl
	MaxData, MaxControl = 8<<20, 1<<20
	t.Cleanup(func() { MaxData, MaxControl = oldData, oldControl })
	zeros := strings.Repeat("\x00", 64<<20)
	bomb := rawTar(t, file("./boot/vmlinuz", zeros))
	zst, _ := zstd.NewWriter(nil)
	for name, data := range map[string][]byte{"data.tar.gz": gz(t, bomb), "data.tar.zst": zst.EncodeAll(bomb, nil)} {
		t.Run(name, func(t *testing.T) {
			if len(data) > 1<<20 {
				t.Fatalf("the bomb is %d bytes compressed; want a small one", len(data))
			}
			p, err := Open(debOf(t, okControl(t), name, data))
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "x")
			err = p.Extract(dir)
			if !errors.Is(err, untar.ErrTooLarge) || !strings.Contains(err.Error(), "at most 8 MiB") {
				t.Fatalf("Extract: %v; want it stopped at the cap", err)
			}
			if n := dirSize(t, dir); n > MaxData {
				t.Fatalf("%d bytes written, over the cap of %d", n, MaxData)
			}
			err = p.Walk(func(h *tar.Header, r io.Reader) error { _, err := io.Copy(io.Discard, r); return err })
			if !errors.Is(err, untar.ErrTooLarge) {
				t.Fatalf("Walk: %v; want it stopped at the cap", err)
			}
		})
	}
	t.Run("control", func(t *testing.T) {
		_, err := Open(debOf(t, gz(t, rawTar(t, file("./control", zeros))), "data.tar.gz", gz(t, rawTar(t))))
		if !errors.Is(err, untar.ErrTooLarge) {
			t.Fatalf("Open: %v; want the control bomb stopped at the cap", err)
		}
	})
}

func dirSize(t *testing.T, dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
