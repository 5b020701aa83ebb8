package deb

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzPackage: whatever a .deb holds, reading its control fields and
// walking its data member (the ar reader, the decompressors, the tar
// walk) do not panic and read no more than the caps. What extraction does
// with the entries is internal/untar's, fuzzed there (FuzzExtract).
func FuzzPackage(f *testing.F) {
	oldData, oldControl := MaxData, MaxControl
	MaxData, MaxControl = 1<<20, 64<<10
	f.Cleanup(func() { MaxData, MaxControl = oldData, oldControl })
	f.Add(debBytes(f, gz(f, rawTar(f, file("./control", "Package: a\nVersion: 1\n"))), "data.tar.gz",
		gz(f, rawTar(f, file("./boot/vmlinuz", "K"), link("./vmlinuz", "boot/vmlinuz", tar.TypeSymlink)))))
	f.Add(debBytes(f, gz(f, rawTar(f, file("./control", "Package: a\n"))), "data.tar.gz",
		gz(f, rawTar(f, link("./lib", "/", tar.TypeSymlink), file("./lib/tmp/owned", "x")))))
	f.Add([]byte("!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parse(b)
		var read int64
		walkData(b, func(h *tar.Header, r io.Reader) error {
			n, err := io.Copy(io.Discard, r)
			read += n
			return err
		})
		if read > MaxData {
			t.Fatalf("walked %d bytes of data, over the cap of %d", read, MaxData)
		}
	})
}

// debBytes is a .deb with the given members, in memory.
func debBytes(f *testing.F, control []byte, dataName string, data []byte) []byte {
	p := filepath.Join(f.TempDir(), "seed.deb")
	writeAr(f, p, "control.tar.gz", control, dataName, data)
	b, err := os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
