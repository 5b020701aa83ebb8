package initramfs

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/mkuimage/cpio"
)

func sample(t *testing.T) *Archive {
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte("from disk"), 0o600)
	a := New()
	a.Bytes("etc/gridnode/node.yaml", []byte("farm: 1\n"), 0o644)
	a.File("/init", src, 0o755)
	a.Symlink("bin/sh", "busybox")
	a.CharDev("dev/console", 0o600, 5, 1)
	return a
}

func TestDeterministicAndComplete(t *testing.T) {
	var x, y bytes.Buffer
	if _, err := sample(t).WriteTo(&x, 1700000000); err != nil {
		t.Fatal(err)
	}
	if _, err := sample(t).WriteTo(&y, 1700000000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x.Bytes(), y.Bytes()) {
		t.Fatal("two archives of the same input differ")
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(x.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range recs {
		names = append(names, r.Name)
		if r.MTime != 1700000000 || r.UID != 0 {
			t.Errorf("%s: mtime %d uid %d", r.Name, r.MTime, r.UID)
		}
		if r.Name == "dev/console" && (r.Rmajor != 5 || r.Rminor != 1) {
			t.Errorf("dev/console is %d:%d", r.Rmajor, r.Rminor)
		}
		if r.Name == "init" {
			b, _ := io.ReadAll(io.NewSectionReader(r, 0, int64(r.FileSize)))
			if string(b) != "from disk" || r.Mode&0o777 != 0o755 {
				t.Errorf("init: %q mode %o", b, r.Mode)
			}
		}
	}
	want := []string{"bin", "bin/sh", "dev", "dev/console", "etc", "etc/gridnode", "etc/gridnode/node.yaml", "init"}
	if len(names) != len(want) {
		t.Fatalf("records %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("records %v, want %v (parents first, sorted)", names, want)
		}
	}
}

func TestCompressDeterministic(t *testing.T) {
	raw := bytes.Repeat([]byte("gridnode initramfs "), 100000)
	for _, m := range []string{"zstd", "gzip"} {
		a, err := Compress(raw, m)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Compress(raw, m)
		if !bytes.Equal(a, b) {
			t.Errorf("%s output differs between runs", m)
		}
		if m == "zstd" {
			d, _ := zstd.NewReader(nil)
			out, err := d.DecodeAll(a, nil)
			if err != nil || !bytes.Equal(out, raw) {
				t.Errorf("zstd round trip: %v", err)
			}
		}
	}
	if _, err := Compress(raw, "lz4"); err == nil {
		t.Error("lz4 accepted")
	}
}
