package usb_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gridnode/gridnode/build/mediaconf"
	"github.com/gridnode/gridnode/build/usb"
	"github.com/gridnode/gridnode/internal/boottest"
	"github.com/gridnode/gridnode/internal/need"
	"github.com/gridnode/gridnode/qemu"
)

func write(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gridnode.img")
	if err := usb.Write(boottest.Input(t), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReproducible(t *testing.T) {
	a, _ := os.ReadFile(write(t))
	b, _ := os.ReadFile(write(t))
	if sha256.Sum256(a) != sha256.Sum256(b) {
		t.Fatal("two writes with the same inputs differ")
	}
}

// TestLayout checks the GPT and the ESP, with sfdisk, xorriso, dosfstools,
// mtools and blkid as oracles (under CI a missing one fails the test).
func TestLayout(t *testing.T) {
	in := boottest.Input(t)
	p := write(t)
	img, _ := os.ReadFile(p)
	if string(img[512:520]) != "EFI PART" {
		t.Fatal("no GPT header at LBA 1")
	}
	if img[446+4] != 0xEE {
		t.Fatalf("protective MBR partition type %#x, want 0xEE", img[446+4])
	}
	ent := img[1024:]
	basicData := []byte{0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44, 0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99, 0xC7}
	if !bytes.Equal(ent[:16], basicData) {
		t.Errorf("partition type %x, want Microsoft basic data", ent[:16])
	}
	first := int64(binary.LittleEndian.Uint64(ent[32:]))
	last := int64(binary.LittleEndian.Uint64(ent[40:]))
	esp := img[first*512 : (last+1)*512]
	if string(img[len(img)-512:len(img)-504]) != "EFI PART" {
		t.Fatal("no backup GPT header at the last LBA")
	}
	// util-linux reads the GPT as firmware and kernels do: both copies
	// valid, the one partition where the entry says, typed and named.
	sfdisk := need.Tool(t, "sfdisk")
	if out, err := exec.Command(sfdisk, "--verify", p).CombinedOutput(); err != nil || !bytes.Contains(out, []byte("No errors detected")) {
		t.Errorf("sfdisk --verify: %v\n%s", err, out)
	}
	js, err := exec.Command(sfdisk, "--json", p).Output()
	if err != nil {
		t.Fatalf("sfdisk --json: %v", err)
	}
	var table struct {
		PartitionTable struct {
			Label      string
			Partitions []struct {
				Start, Size int64
				Type, Name  string
			}
		}
	}
	if err := json.Unmarshal(js, &table); err != nil {
		t.Fatalf("sfdisk --json: %v\n%s", err, js)
	}
	if pt := table.PartitionTable; pt.Label != "gpt" || len(pt.Partitions) != 1 || pt.Partitions[0].Start != first ||
		pt.Partitions[0].Size != last-first+1 || pt.Partitions[0].Type != "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" || pt.Partitions[0].Name != "GRIDNODE" {
		t.Errorf("sfdisk reads %+v; want one basic data partition GRIDNODE at sectors %d-%d", pt, first, last)
	}
	out, err := exec.Command(need.Tool(t, "xorriso"), "-indev", p, "-report_system_area", "plain").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	for _, want := range []string{"GPT", "isohybrid"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("xorriso report lacks %q:\n%s", want, out)
		}
	}
	espPath := filepath.Join(t.TempDir(), "esp.img")
	os.WriteFile(espPath, esp, 0o644)
	if out, err := exec.Command(need.Tool(t, "fsck.vfat"), "-n", espPath).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat -n on the ESP: %v\n%s", err, out)
	}
	out, err = exec.Command(need.Tool(t, "mtype"), "-i", espPath, "::gridnode.conf").Output()
	if err != nil || !bytes.Equal(mediaconf.Strip(out), in.Config) {
		t.Errorf("gridnode.conf on the ESP = %q (%v), want %q", out, err, in.Config)
	}
	if out, err := exec.Command(need.Tool(t, "mdir"), "-i", espPath, "::EFI/BOOT").CombinedOutput(); err != nil || !bytes.Contains(out, []byte("BOOTX64")) {
		t.Errorf("mdir EFI/BOOT: %v\n%s", err, out)
	}
	out, _ = exec.Command(need.Tool(t, "blkid"), "-p", "-o", "export", espPath).Output()
	if !bytes.Contains(out, []byte("LABEL=GRIDNODE\n")) {
		t.Errorf("blkid: ESP label is not GRIDNODE:\n%s", out)
	}
}

// The USB image's boots on BIOS and on UEFI are tested with the real image
// in tests/media_test.go.

// TestBoots boots the slotted image with the test init on SeaBIOS (isolinux
// → slot a's records) and on OVMF (systemd-boot → slot a's UKI): each path
// must give the kernel the boot entry's command line, gridnode.boot=usb
// included (the UKI's own .cmdline lacks it).
func TestBoots(t *testing.T) {
	boottest.NeedQEMU(t)
	p := write(t)
	for _, fw := range []qemu.Firmware{qemu.BIOS, qemu.UEFI} {
		t.Run(fw.String(), func(t *testing.T) {
			t.Parallel()
			boottest.Boot(t, qemu.Options{Boot: qemu.USBBoot(p), Firmware: fw}, "gridnode.boot=usb")
		})
	}
}
