package iso_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gridnode/gridnode/build/iso"
	"github.com/gridnode/gridnode/build/mediaconf"
	"github.com/gridnode/gridnode/internal/boottest"
	"github.com/gridnode/gridnode/internal/need"
	"github.com/gridnode/gridnode/qemu"
)

var built string

// image writes the test ISO once per test binary.
func image(t *testing.T) string {
	t.Helper()
	if built != "" {
		return built
	}
	in := boottest.Input(t)
	dir, err := os.MkdirTemp("", "isotest-")
	if err != nil {
		t.Fatal(err)
	}
	built = filepath.Join(dir, "gridnode-"+in.Version+".iso")
	if err := iso.Write(in, built); err != nil {
		t.Fatal(err)
	}
	return built
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built != "" {
		os.RemoveAll(filepath.Dir(built))
	}
	os.Exit(code)
}

func TestReproducible(t *testing.T) {
	in := boottest.Input(t)
	a := image(t)
	b := filepath.Join(t.TempDir(), "b.iso")
	if err := iso.Write(in, b); err != nil {
		t.Fatal(err)
	}
	if sum(t, a) != sum(t, b) {
		t.Fatal("two writes with the same inputs differ")
	}
}

func sum(t *testing.T, p string) [32]byte {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// TestToolsAgree checks the image with xorriso, blkid, fsck.vfat and mtools,
// the oracles: under CI a missing one fails the test.
func TestToolsAgree(t *testing.T) {
	in := boottest.Input(t)
	p := image(t)
	x := need.Tool(t, "xorriso")
	out, err := exec.Command(x, "-indev", p, "-report_el_torito", "plain", "-report_system_area", "plain").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	for _, want := range []string{"El Torito boot img :   1  BIOS  y   none", "El Torito boot img :   2  UEFI  y   none", "isohybrid"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("xorriso report lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command(x, "-indev", p, "-find", "/", "-exec", "lsdl").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso -find: %v\n%s", err, out)
	}
	for _, want := range []string{"/boot/linux_a", "/boot/initrd_a", "/isolinux/isolinux.bin", "/gridnode.conf"} {
		if !strings.Contains(strings.ToLower(string(out)), want) {
			t.Errorf("xorriso lists no %s:\n%s", want, out)
		}
	}
	conf := filepath.Join(t.TempDir(), "gridnode.conf")
	if out, err := exec.Command(x, "-osirrox", "on", "-indev", p, "-extract", "/GRIDNODE.CONF", conf).CombinedOutput(); err != nil {
		t.Fatalf("xorriso -extract: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(conf); !bytes.Equal(mediaconf.Strip(got), in.Config) {
		t.Errorf("gridnode.conf in the ISO = %q, want %q", mediaconf.Strip(got), in.Config)
	}
	// Kernel and initramfs are extents inside the UKI: same bytes.
	for isoPath, want := range map[string]string{"/BOOT/LINUX_A": in.Kernel, "/BOOT/INITRD_A": in.Initrd} {
		got := filepath.Join(t.TempDir(), "f")
		if out, err := exec.Command(x, "-osirrox", "on", "-indev", p, "-extract", isoPath, got).CombinedOutput(); err != nil {
			t.Fatalf("xorriso -extract %s: %v\n%s", isoPath, err, out)
		}
		a, _ := os.ReadFile(got)
		b, _ := os.ReadFile(want)
		if !bytes.Equal(a, b) {
			t.Errorf("%s in the ISO (%d bytes) differs from %s (%d bytes)", isoPath, len(a), want, len(b))
		}
	}
	out, _ = exec.Command(need.Tool(t, "blkid"), "-p", "-o", "export", p).Output()
	if !bytes.Contains(out, []byte("LABEL=GRIDNODE")) {
		t.Errorf("blkid: no label GRIDNODE:\n%s", out)
	}
	start, size := efiPartition(t, p)
	fatImg := filepath.Join(t.TempDir(), "efi.img")
	data := make([]byte, size)
	f, _ := os.Open(p)
	f.ReadAt(data, start)
	f.Close()
	os.WriteFile(fatImg, data, 0o644)
	if out, err := exec.Command(need.Tool(t, "fsck.vfat"), "-n", fatImg).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat -n on the EFI partition: %v\n%s", err, out)
	}
	out, err = exec.Command(need.Tool(t, "mtype"), "-i", fatImg, "::gridnode.conf").Output()
	if err != nil || !bytes.Equal(mediaconf.Strip(out), in.Config) {
		t.Errorf("gridnode.conf in the EFI image = %q (%v), want %q", out, err, in.Config)
	}
}

// efiPartition reads MBR partition 2 (the EFI FAT image).
func efiPartition(t *testing.T, p string) (start, size int64) {
	b := make([]byte, 512)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.ReadAt(b, 0)
	e := b[462:478]
	if e[4] != 0xEF {
		t.Fatalf("MBR partition 2 has type %#x, want 0xEF", e[4])
	}
	le := func(x []byte) int64 { return int64(x[0]) | int64(x[1])<<8 | int64(x[2])<<16 | int64(x[3])<<24 }
	return le(e[8:]) * 512, le(e[12:]) * 512
}

// The ISO's boots as a CD-ROM and as a USB stick, on BIOS and on UEFI, are
// tested with the real image in tests/media_test.go; this one is not.

// TestBootCDROMUEFILarge boots an ISO whose EFI image is larger than the
// El Torito sector count can say (32 MiB): the count is 0 and firmware
// takes the rest of the volume, which the FAT image ends.
func TestBootCDROMUEFILarge(t *testing.T) {
	boottest.NeedQEMU(t)
	in := boottest.Input(t)
	dir := t.TempDir()
	// The kernel skips zeros between and after cpio archives.
	cpio, err := os.ReadFile(in.Initrd)
	if err != nil {
		t.Fatal(err)
	}
	in.Initrd = filepath.Join(dir, "initrd")
	if err := os.WriteFile(in.Initrd, append(cpio, make([]byte, 40<<20)...), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "large.iso")
	if err := iso.Write(in, p); err != nil {
		t.Fatal(err)
	}
	if _, size := efiPartition(t, p); size <= 0xFFFF*512 {
		t.Fatalf("EFI image is %d bytes: not larger than 32 MiB, the test tests nothing", size)
	}
	boottest.Boot(t, qemu.Options{Boot: qemu.CDROMBoot(p), Firmware: qemu.UEFI}, "gridnode.boot=iso")
}
