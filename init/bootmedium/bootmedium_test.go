package bootmedium

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gridnode/gridnode/internal/need"
	"github.com/gridnode/gridnode/node/fact"
)

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(need.Tool(t, name), args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func labelOf(t *testing.T, path string) (string, string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	label, fstype, err := ReadLabel(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return label, fstype
}

func TestReadLabelFAT(t *testing.T) {
	dir := t.TempDir()
	for _, bits := range []string{"16", "32"} {
		img := filepath.Join(dir, "fat"+bits+".img")
		if err := os.WriteFile(img, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Truncate(img, 64<<20)
		run(t, "mkfs.vfat", "-F", bits, "-n", "GRIDNODE", img)
		if l, ty := labelOf(t, img); l != "GRIDNODE" || ty != "vfat" {
			t.Errorf("FAT%s: label %q type %q", bits, l, ty)
		}
	}
}

func TestReadLabelISO(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "gridnode.conf"), []byte("farm=1\n"), 0o644)
	iso := filepath.Join(t.TempDir(), "x.iso")
	run(t, "xorriso", "-as", "mkisofs", "-quiet", "-V", "GRIDNODE", "-o", iso, dir)
	if l, ty := labelOf(t, iso); l != "GRIDNODE" || ty != "iso9660" {
		t.Errorf("ISO: label %q type %q", l, ty)
	}
}

func TestReadLabelNothing(t *testing.T) {
	img := filepath.Join(t.TempDir(), "zero.img")
	os.WriteFile(img, make([]byte, 1<<20), 0o644)
	f, _ := os.Open(img)
	defer f.Close()
	if _, _, err := ReadLabel(f); err != ErrNoFS {
		t.Errorf("zeros: %v", err)
	}
}

// TestFind lays out a fake /sys and /dev: a disk with a partition holding
// the medium.
func TestFind(t *testing.T) {
	root := t.TempDir()
	sys, dev := filepath.Join(root, "sys"), filepath.Join(root, "dev")
	os.MkdirAll(filepath.Join(sys, "devices/pci/block/sda/sda1"), 0o755)
	os.MkdirAll(filepath.Join(sys, "devices/pci/block/sr0"), 0o755)
	os.MkdirAll(filepath.Join(sys, "class/block"), 0o755)
	os.MkdirAll(dev, 0o755)
	os.WriteFile(filepath.Join(sys, "devices/pci/block/sda/sda1/partition"), []byte("1\n"), 0o644)
	os.WriteFile(filepath.Join(sys, "devices/pci/block/sr0/size"), []byte("0\n"), 0o644) // empty drive
	for _, d := range []string{"sda", "sda/sda1", "sr0"} {
		os.Symlink(filepath.Join(sys, "devices/pci/block", d), filepath.Join(sys, "class/block", filepath.Base(d)))
	}
	os.WriteFile(filepath.Join(dev, "sda"), make([]byte, 1<<20), 0o644)
	img := filepath.Join(dev, "sda1")
	os.WriteFile(img, nil, 0o644)
	os.Truncate(img, 64<<20)
	run(t, "mkfs.vfat", "-n", "gridnode", img)

	m, ok := Find(sys, dev)
	if !ok || m != (fact.BootMedium{Device: "sda1", Disk: "sda", FSType: "vfat"}) {
		t.Errorf("Find: %+v %v", m, ok)
	}
}
