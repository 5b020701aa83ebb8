package pxe_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/build/media"
	"github.com/gridnode/gridnode/build/pxe"
)

// fakeInput makes small stand-ins for the kernel, initramfs and iPXE files.
func fakeInput(t *testing.T) media.Input {
	t.Helper()
	dir := t.TempDir()
	write := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("contents of "+name), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return media.Input{
		Kernel:   write("k"),
		Initrd:   write("i"),
		IPXEEFI:  write("e"),
		Undionly: write("u"),
		Cmdline:  "console=ttyS0 gridnode.farm=7",
		Epoch:    time.Unix(1700000000, 0),
	}
}

func TestWriteBundle(t *testing.T) {
	in := fakeInput(t)
	dir := filepath.Join(t.TempDir(), "pxe")
	if err := pxe.Write(in, dir); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{"vmlinuz": in.Kernel, "initrd": in.Initrd, "ipxe.efi": in.IPXEEFI, "undionly.kpxe": in.Undionly} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(src)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: contents differ from %s", name, src)
		}
	}
	script, err := os.ReadFile(filepath.Join(dir, "boot.ipxe"))
	if err != nil {
		t.Fatal(err)
	}
	want := "#!ipxe\nkernel vmlinuz initrd=initrd console=ttyS0 gridnode.farm=7 gridnode.boot=pxe\ninitrd initrd\nboot\n"
	if string(script) != want {
		t.Errorf("boot.ipxe =\n%s\nwant\n%s", script, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 5 {
		t.Errorf("bundle has %d files, want 5", len(entries))
	}
	for _, e := range entries {
		fi, _ := e.Info()
		if !fi.ModTime().Equal(in.Epoch) {
			t.Errorf("%s: mtime %v, want the epoch %v", e.Name(), fi.ModTime(), in.Epoch)
		}
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v, want 0644", e.Name(), fi.Mode())
		}
	}
	cmdline, err := pxe.ParseCmdline(script)
	if err != nil || cmdline != in.Cmdline {
		t.Errorf("ParseCmdline = %q, %v; want %q", cmdline, err, in.Cmdline)
	}
}

func TestWriteIsReproducible(t *testing.T) {
	in := fakeInput(t)
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, d := range []string{a, b} {
		if err := pxe.Write(in, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"vmlinuz", "initrd", "ipxe.efi", "undionly.kpxe", "boot.ipxe"} {
		x, _ := os.ReadFile(filepath.Join(a, name))
		y, _ := os.ReadFile(filepath.Join(b, name))
		fx, _ := os.Stat(filepath.Join(a, name))
		fy, _ := os.Stat(filepath.Join(b, name))
		if !bytes.Equal(x, y) || !fx.ModTime().Equal(fy.ModTime()) {
			t.Errorf("%s differs between two writes", name)
		}
	}
}

func TestWriteNamesMissingInput(t *testing.T) {
	in := fakeInput(t)
	in.Undionly = ""
	err := pxe.Write(in, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "undionly.kpxe") {
		t.Errorf("Write without Undionly: err = %v, want one naming undionly.kpxe", err)
	}
}

// The bundle's boots through QEMU's iPXE and TFTP server, on BIOS and on
// UEFI, are tested with the real image in tests/media_test.go.
