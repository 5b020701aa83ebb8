package deb

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ulikunitz/xz"
)

func tarball(t *testing.T, files map[string]string, compress string) []byte {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755})
	for _, name := range []string{"./control", "./boot/vmlinuz-6.1.0-test", "./lib/modules/6.1.0-test/kernel/a.ko"} {
		body, ok := files[name]
		if !ok {
			continue
		}
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
		tw.Write([]byte(body))
	}
	tw.WriteHeader(&tar.Header{Name: "./vmlinuz", Typeflag: tar.TypeSymlink, Linkname: "boot/vmlinuz-6.1.0-test"})
	tw.Close()
	var out bytes.Buffer
	switch compress {
	case "xz":
		w, _ := xz.NewWriter(&out)
		w.Write(raw.Bytes())
		w.Close()
	case "gz":
		w := gzip.NewWriter(&out)
		w.Write(raw.Bytes())
		w.Close()
	}
	return out.Bytes()
}

// writeDeb writes a kernel package the way dpkg-deb does.
func writeDeb(t *testing.T, path string) {
	writeAr(t, path,
		"control.tar.gz", tarball(t, map[string]string{"./control": "Package: linux-image-test\nVersion: 6.1.1-1\nArchitecture: amd64\nDepends: kmod, linux-base (>= 4.3~)\nDescription: test\n a kernel\n"}, "gz"),
		"data.tar.xz", tarball(t, map[string]string{"./boot/vmlinuz-6.1.0-test": "KERNEL", "./lib/modules/6.1.0-test/kernel/a.ko": "KO"}, "xz"))
}

// writeAr writes a .deb's ar archive: debian-binary, then the control and
// data members given as name, content.
func writeAr(t testing.TB, path, controlName string, control []byte, dataName string, data []byte) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("!<arch>\n")
	member := func(name string, data []byte) {
		fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, 0, 0, 0, "100644", len(data))
		b.Write(data)
		if len(data)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	member("debian-binary", []byte("2.0\n"))
	member(controlName, control)
	member(dataName, data)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOpenAndExtract(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "linux-image-test_6.1.1-1_amd64.deb")
	writeDeb(t, path)
	for i := 0; i < 2; i++ { // the second Open comes from the .meta.json cache
		p, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if p.Name != "linux-image-test" || p.Version != "6.1.1-1" || p.Arch != "amd64" || len(p.SHA256) != 64 {
			t.Fatalf("open #%d: %+v", i, p)
		}
		if p.DependsOn("linux-base") != "linux-base" || p.DependsOn("nope") != "" {
			t.Errorf("DependsOn on %q", p.Depends)
		}
	}
	p, _ := Open(path)
	out := filepath.Join(dir, "x")
	if err := p.Extract(out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "vmlinuz")); string(b) != "KERNEL" {
		t.Errorf("vmlinuz through its symlink = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "lib/modules/6.1.0-test/kernel/a.ko")); string(b) != "KO" {
		t.Errorf("module = %q", b)
	}
}

func TestOpenRejectsNonDeb(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.deb")
	os.WriteFile(path, []byte("not an archive"), 0o644)
	if _, err := Open(path); err == nil {
		t.Error("opened a file that is not a .deb")
	}
}
