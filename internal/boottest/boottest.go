// Package boottest gives boot tests a real kernel (Debian's, the one the
// image builder fetches into .cache) and tiny initramfs images whose /init is
// a Go program of the test's: by default testinit, which prints "hello from
// init" and the command line, then powers off.
//
// What a boot test needs and does not find here skips it, or fails it under
// CI (internal/need).
package boottest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	kernelpkg "github.com/gridnode/gridnode/build/kernel"
	"github.com/gridnode/gridnode/build/media"
	"github.com/gridnode/gridnode/internal/need"
	"github.com/gridnode/gridnode/qemu"
	"github.com/u-root/mkuimage/cpio"
	"golang.org/x/sys/unix"
)

// Hello is what the test init prints once it runs; its next line is
// "cmdline: " and the kernel command line.
const Hello = "hello from init"

// TestInit is the import path of the default test init.
const TestInit = "github.com/gridnode/gridnode/internal/boottest/testinit"

// KernelPackage is the Debian kernel the boot tests use, as images/node.yaml.
const KernelPackage = "linux-image-amd64"

func moduleRoot() string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(f), "..", "..")
}

var (
	kernelMu   sync.Mutex
	kernelPath string
)

// Kernel returns the path of the Debian kernel the image builder uses
// (package linux-image-amd64), fetched and unpacked by the builder's own code
// into the project's .cache: apt-get download on a fresh machine, the cached
// copy afterwards. Test binaries of several packages may call it at once, so
// it holds a lock on the cache while it works.
func Kernel() (string, error) {
	kernelMu.Lock()
	defer kernelMu.Unlock()
	if kernelPath != "" {
		return kernelPath, nil
	}
	cache := filepath.Join(moduleRoot(), ".cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(cache, ".boottest.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	k, err := kernelpkg.Resolve(ctx, kernelpkg.Source{Package: KernelPackage}, cache)
	if err != nil {
		return "", fmt.Errorf("the test kernel (Debian package %s): %w", KernelPackage, err)
	}
	kernelPath = k.Vmlinuz
	return kernelPath, nil
}

// NeedKernel is Kernel for a test: without the kernel it skips t, or fails
// it under CI.
func NeedKernel(t testing.TB) string {
	t.Helper()
	k, err := Kernel()
	if err != nil {
		need.Missing(t, "%v", err)
	}
	return k
}

var (
	initrdMu sync.Mutex
	initrds  = map[string]string{}
)

// Initramfs builds the Go main package pkg (an import path of this module)
// as a static binary and packs it as /init, with /dev/console and /proc, in
// an uncompressed newc cpio; it returns the cpio's path. Each package is
// built once per test binary.
func Initramfs(t testing.TB, pkg string) string {
	t.Helper()
	initrdMu.Lock()
	defer initrdMu.Unlock()
	if p, ok := initrds[pkg]; ok {
		return p
	}
	p, err := buildInitramfs(pkg, nil)
	if err != nil {
		t.Fatal(err)
	}
	initrds[pkg] = p
	return p
}

// InitramfsFiles is Initramfs with more files in the archive (path without
// a leading slash → content, mode 0644), built each call.
func InitramfsFiles(t testing.TB, pkg string, files map[string][]byte) string {
	t.Helper()
	p, err := buildInitramfs(pkg, files)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func buildInitramfs(pkg string, files map[string][]byte) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", pkg)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s %x\n", n, sha256.Sum256(files[n]))
	}
	sum := h.Sum(nil)
	dir := filepath.Join(os.TempDir(), "gridnode-boottest")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, fmt.Sprintf("init-%d", os.Getpid()))
	defer os.Remove(bin)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, pkg)
	cmd.Dir = moduleRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the test init %s: %v\n%s", pkg, err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.Directory("proc", 0o555),
		cpio.StaticFile("init", string(data), 0o755),
	}
	for _, n := range names {
		recs = append(recs, cpio.StaticFile(n, string(files[n]), 0o644))
	}
	cpio.MakeAllReproducible(recs)
	if err := cpio.WriteRecordsAndDirs(w, recs); err != nil {
		return "", err
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return "", err
	}
	// Test binaries of several packages may build the same init at once:
	// each writes its own file and renames it into place.
	out := filepath.Join(dir, hex.EncodeToString(sum[:8])+".cpio")
	tmp := fmt.Sprintf("%s.%d", out, os.Getpid())
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	return out, os.Rename(tmp, out)
}

// Input returns a media.Input with the Debian kernel, the test initramfs and
// Debian's boot-loader files; it skips the test when they are not there
// (fails it under CI).
func Input(t testing.TB) media.Input {
	t.Helper()
	kernel := NeedKernel(t)
	for _, f := range []struct{ path, pkg string }{
		{media.DebEFIStub, "systemd-boot-efi"}, {media.DebSDBoot, "systemd-boot-efi"}, {media.DebIsolinux, "isolinux"},
		{media.DebIsoHdpfx, "isolinux"}, {media.DebLdlinux, "syslinux-common"},
	} {
		need.File(t, f.path, f.pkg)
	}
	return media.Input{
		Kernel: kernel,
		Initrd: Initramfs(t, TestInit),
		// no_timer_check: under TCG on a loaded host the kernel may wrongly
		// decide the IO-APIC timer is broken and panic.
		Cmdline:     "console=ttyS0,115200 panic=-1 no_timer_check",
		Version:     "0.0.1-test",
		Config:      []byte("# gridnode.conf\nfarm=1\n"),
		Epoch:       time.Unix(1700000000, 0).UTC(),
		EFIStub:     media.DebEFIStub,
		SystemdBoot: media.DebSDBoot,
		Isolinux:    media.DebIsolinux,
		IsoHdpfx:    media.DebIsoHdpfx,
		Ldlinux:     media.DebLdlinux,
	}
}

// NeedQEMU skips t under go test -short, and stops it (see need.Missing)
// when QEMU is not installed.
func NeedQEMU(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("QEMU boot: not in -short")
	}
	need.Tool(t, "qemu-system-x86_64")
}

// Boot starts QEMU with o and waits until the test init has printed a
// command line containing want (so the kernel's own "Command line:" log
// does not count), failing the test at the deadline.
func Boot(t testing.TB, o qemu.Options, want string) {
	t.Helper()
	NeedQEMU(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	o.NoNetwork = true
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	vm, err := qemu.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	re := regexp.MustCompile(`cmdline: [^\n]*` + regexp.QuoteMeta(want))
	if _, err := vm.Expect(ctx, re, 200*time.Second); err != nil {
		t.Fatalf("%s boot from %s: init did not show %q: %v", o.Firmware, o.Boot.Kind, want, err)
	}
}
