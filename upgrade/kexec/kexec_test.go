package kexec

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gridnode/gridnode/build/media"
	"github.com/gridnode/gridnode/build/uki"
	"github.com/gridnode/gridnode/internal/need"
)

// The sections come out of a UKI written by the builder byte for byte.
func TestFromUKI(t *testing.T) {
	need.File(t, media.DebEFIStub, "systemd-boot-efi")
	dir := t.TempDir()
	kernel, initrd := make([]byte, 1_234_567), make([]byte, 765_432)
	rand.Read(kernel)
	rand.Read(initrd)
	os.WriteFile(filepath.Join(dir, "k"), kernel, 0o644)
	os.WriteFile(filepath.Join(dir, "i"), initrd, 0o644)
	in := media.Input{Kernel: filepath.Join(dir, "k"), Initrd: filepath.Join(dir, "i"), Cmdline: "console=ttyS0 panic=10", Version: "2.0", EFIStub: media.DebEFIStub}
	p := filepath.Join(dir, "x.efi")
	if err := uki.Write(in, p); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(p)
	defer f.Close()
	st, _ := f.Stat()
	im, err := FromUKI(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(im.Kernel, kernel) || !bytes.Equal(im.Initrd, initrd) || im.Cmdline != in.Cmdline || im.Version != "2.0" {
		t.Fatalf("FromUKI: kernel %v, initrd %v, cmdline %q, version %q", bytes.Equal(im.Kernel, kernel), bytes.Equal(im.Initrd, initrd), im.Cmdline, im.Version)
	}
	if _, err := FromUKI(bytes.NewReader(kernel), int64(len(kernel))); err == nil {
		t.Fatal("random bytes read as a UKI")
	}
}

func TestTrialCmdline(t *testing.T) {
	tr := Trial{Version: "2.0", Medium: "usb", OpenTimeout: 5 * time.Minute, Panic: 10}
	release := "console=ttyS0,115200 panic=30 gridnode.registrar=main gridnode.uptime=40m quiet"
	running := "BOOT_IMAGE=/x console=tty1 panic=10 gridnode.registrar=http://10.0.2.2:8080 gridnode.farm=42 gridnode.boot=usb gridnode.trial=1.9 watchdog.open_timeout=1"
	got := tr.Cmdline(release, running)
	want := "console=ttyS0,115200 gridnode.uptime=40m quiet gridnode.registrar=http://10.0.2.2:8080 gridnode.farm=42 gridnode.boot=usb gridnode.trial=2.0 watchdog.open_timeout=300 panic=10 watchdog.stop_on_reboot=0"
	if got != want {
		t.Fatalf("trial command line\n got %q\nwant %q", got, want)
	}
	if got := (Trial{Version: "2.0", OpenTimeout: time.Minute}).Cmdline("a=1", ""); got != "a=1 gridnode.trial=2.0 watchdog.open_timeout=60 panic=10 watchdog.stop_on_reboot=0" {
		t.Fatalf("netboot trial (no medium): %q", got)
	}
}
