package fat

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gridnode/gridnode/internal/need"
)

func testImage(t *testing.T) (string, []File) {
	t.Helper()
	big := make([]byte, 300000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	files := []File{
		{Path: "gridnode.conf", Data: []byte("farm=1\n")},
		{Path: "EFI/BOOT/BOOTX64.EFI", Data: big},
		{Path: "EFI/BOOT/a-long-file-name.txt", Data: []byte("hello\n")},
		{Path: "empty", Data: []byte{}},
	}
	im, err := New(files, Options{Label: "GRIDNODE", VolumeID: 0x12345678, Time: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "fat.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := im.WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(im.Size()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p, files
}

func TestWriteIsValidAndReproducible(t *testing.T) {
	p1, files := testImage(t)
	p2, _ := testImage(t)
	a, _ := os.ReadFile(p1)
	b, _ := os.ReadFile(p2)
	if sha256.Sum256(a) != sha256.Sum256(b) {
		t.Fatal("two writes of the same files differ")
	}
	fsck(t, p1)
	mtype := need.Tool(t, "mtype")
	for _, f := range files {
		out, err := exec.Command(mtype, "-i", p1, "::"+f.Path).Output()
		if err != nil {
			t.Fatalf("mtype %s: %v", f.Path, err)
		}
		if !bytes.Equal(out, f.Data) {
			t.Errorf("mtype %s: content differs (%d bytes, want %d)", f.Path, len(out), len(f.Data))
		}
	}
	out, _ := exec.Command(need.Tool(t, "blkid"), "-o", "value", "-s", "LABEL", p1).Output()
	if string(bytes.TrimSpace(out)) != "GRIDNODE" {
		t.Errorf("blkid label = %q, want GRIDNODE", out)
	}
}

// fsck checks the FAT file system in the image at p with dosfstools, the
// oracle: a missing fsck.vfat fails the test under CI.
func fsck(t *testing.T, p string) {
	t.Helper()
	if out, err := exec.Command(need.Tool(t, "fsck.vfat"), "-n", p).CombinedOutput(); err != nil {
		t.Fatalf("fsck.vfat -n: %v\n%s", err, out)
	}
}

func TestLookupAndRewrite(t *testing.T) {
	p, files := testImage(t)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, want := range files {
		got, err := Lookup(f, 0, want.Path)
		if err != nil {
			t.Fatalf("Lookup %s: %v", want.Path, err)
		}
		if got.Size != int64(len(want.Data)) {
			t.Fatalf("Lookup %s: size %d, want %d", want.Path, got.Size, len(want.Data))
		}
	}
	c, err := Lookup(f, 0, "GRIDNODE.CONF")
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteContent(f, c, []byte("farm=42\n")); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(need.Tool(t, "mtype"), "-i", p, "::gridnode.conf").Output()
	if err != nil || string(out) != "farm=42\n" {
		t.Fatalf("after rewrite: %q, %v", out, err)
	}
}

func TestAlign(t *testing.T) {
	big := make([]byte, 100000)
	im, err := New([]File{{Path: "a", Data: []byte("x")}, {Path: "EFI/BOOT/BOOTX64.EFI", Data: big}}, Options{Label: "GRIDNODE", Align: 2048})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "EFI/BOOT/BOOTX64.EFI"} {
		off, _, ok := im.Offset(p)
		if !ok || off%2048 != 0 {
			t.Errorf("%s at offset %d, want a multiple of 2048", p, off)
		}
	}
	p := filepath.Join(t.TempDir(), "fat.img")
	f, _ := os.Create(p)
	if err := im.WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
	f.Truncate(im.Size())
	f.Close()
	fsck(t, p)
	if _, err := New(nil, Options{Align: 3000}); err == nil {
		t.Error("New accepted alignment 3000")
	}
}
