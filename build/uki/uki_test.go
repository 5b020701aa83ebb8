package uki_test

import (
	"bytes"
	"crypto/sha256"
	"debug/pe"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gridnode/gridnode/build/fat"
	"github.com/gridnode/gridnode/build/uki"
	"github.com/gridnode/gridnode/internal/boottest"
	"github.com/gridnode/gridnode/internal/need"
	"github.com/gridnode/gridnode/qemu"
)

func TestSectionsAndReproducible(t *testing.T) {
	in := boottest.Input(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.efi"), filepath.Join(dir, "b.efi")
	for _, p := range []string{a, b} {
		if err := uki.Write(in, p); err != nil {
			t.Fatal(err)
		}
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if sha256.Sum256(da) != sha256.Sum256(db) {
		t.Fatal("two writes with the same inputs differ")
	}
	f, err := pe.NewFile(bytes.NewReader(da))
	if err != nil {
		t.Fatalf("output is not a PE file: %v", err)
	}
	kernel, _ := os.ReadFile(in.Kernel)
	initrd, _ := os.ReadFile(in.Initrd)
	want := map[string][]byte{
		".osrel":   []byte(uki.OSRelease(in.Version)),
		".cmdline": []byte(in.Cmdline),
		".initrd":  initrd,
		".linux":   kernel,
	}
	oh := f.OptionalHeader.(*pe.OptionalHeader64)
	var end uint32
	for _, s := range f.Sections {
		end = max(end, s.VirtualAddress+s.VirtualSize)
		w, ok := want[s.Name]
		if !ok {
			continue
		}
		delete(want, s.Name)
		got, err := s.Data()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:s.VirtualSize], w) {
			t.Errorf("section %s: content differs", s.Name)
		}
		if s.VirtualAddress%4096 != 0 || s.Offset%oh.FileAlignment != 0 {
			t.Errorf("section %s: address %#x, offset %#x not aligned", s.Name, s.VirtualAddress, s.Offset)
		}
	}
	if len(want) != 0 {
		t.Errorf("sections missing: %v", want)
	}
	if last := f.Sections[len(f.Sections)-1].Name; last != ".linux" {
		t.Errorf("last section %s, want .linux", last)
	}
	if oh.SizeOfImage < end {
		t.Errorf("SizeOfImage %#x < end of sections %#x", oh.SizeOfImage, end)
	}
	out, err := exec.Command(need.Tool(t, "objdump"), "-h", a).CombinedOutput()
	if err != nil {
		t.Errorf("objdump -h: %v\n%s", err, out)
	}
	for _, s := range []string{".osrel", ".cmdline", ".initrd", ".linux"} {
		if !bytes.Contains(out, []byte(s)) {
			t.Errorf("objdump -h lists no section %s:\n%s", s, out)
		}
	}
}

// TestBootsOnOVMF boots the UKI as EFI/BOOT/BOOTX64.EFI from a FAT disk.
func TestBootsOnOVMF(t *testing.T) {
	boottest.NeedQEMU(t)
	in := boottest.Input(t)
	dir := t.TempDir()
	efi := filepath.Join(dir, "BOOTX64.EFI")
	in.Cmdline += " uki.test=1"
	if err := uki.Write(in, efi); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(efi)
	fs, err := fat.New([]fat.File{{Path: "EFI/BOOT/BOOTX64.EFI", Source: fat.FileSource(efi), Size: st.Size()}},
		fat.Options{Label: "ESP", VolumeID: 1, Time: in.Epoch})
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "esp.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
	f.Truncate(fs.Size())
	f.Close()

	boottest.Boot(t, qemu.Options{Boot: qemu.DiskBoot(img, qemu.BusVirtio), Firmware: qemu.UEFI}, "uki.test=1")
}
