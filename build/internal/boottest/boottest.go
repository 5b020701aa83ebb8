// Package boottest gives the boot-medium tests a real kernel (Debian's, the
// one the image builder fetches into .cache) and a tiny initramfs whose
// /init prints "hello from init" and the command line, then powers off.
package boottest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"testing"
	"time"

	kernelpkg "github.com/gridnode/gridnode/build/kernel"
	"github.com/gridnode/gridnode/build/media"
	"github.com/gridnode/gridnode/qemu"
	"github.com/u-root/mkuimage/cpio"
	"golang.org/x/sys/unix"
)

// Hello is what the test init prints once it runs.
const Hello = "hello from init"

var (
	once    sync.Once
	kernel  string
	initrd  string
	prepErr error
)

func moduleRoot() string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(f), "..", "..", "..")
}

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

// KernelPackage is the Debian kernel the boot tests use, as images/node.yaml.
const KernelPackage = "linux-image-amd64"

var (
	kernelMu   sync.Mutex
	kernelPath string
)

// Need skips t because what it needs is missing here, except under CI
// (CI set in the environment, as .ci/run has it), where every boot test must
// run: there the missing piece is a failure.
func Need(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("CI: %s", msg)
	}
	t.Skip(msg)
}

// Input returns a media.Input with the Debian kernel, the test initramfs and
// Debian's boot-loader files; it skips the test when they are not there
// (fails it under CI, see Need).
func Input(t testing.TB) media.Input {
	t.Helper()
	once.Do(prepare)
	if prepErr != nil {
		Need(t, "boot test inputs: %v", prepErr)
	}
	for _, p := range []string{media.DebEFIStub, media.DebIsolinux, media.DebIsoHdpfx, media.DebLdlinux} {
		if _, err := os.Stat(p); err != nil {
			Need(t, "boot-loader file missing (make deps installs systemd-boot-efi isolinux syslinux-common): %v", err)
		}
	}
	return media.Input{
		Kernel: kernel,
		Initrd: initrd,
		// no_timer_check: under TCG on a loaded host the kernel may wrongly
		// decide the IO-APIC timer is broken and panic.
		Cmdline:  "console=ttyS0,115200 panic=-1 no_timer_check",
		Version:  "0.0.1-test",
		Config:   []byte("# gridnode.conf\nfarm=1\n"),
		Epoch:    time.Unix(1700000000, 0).UTC(),
		EFIStub:  media.DebEFIStub,
		Isolinux: media.DebIsolinux,
		IsoHdpfx: media.DebIsoHdpfx,
		Ldlinux:  media.DebLdlinux,
	}
}

func prepare() {
	root := moduleRoot()
	cache := filepath.Join(os.TempDir(), "gridnode-boottest")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		prepErr = err
		return
	}
	if kernel, prepErr = Kernel(); prepErr != nil {
		return
	}

	bin := filepath.Join(cache, fmt.Sprintf("testinit-%d", os.Getpid()))
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "github.com/gridnode/gridnode/build/internal/boottest/testinit")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		prepErr = fmt.Errorf("building testinit: %v: %s", err, out)
		return
	}
	defer os.Remove(bin)
	data, err := os.ReadFile(bin)
	if err != nil {
		prepErr = err
		return
	}
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticFile("init", string(data), 0o755),
	}
	if err := cpio.WriteRecordsAndDirs(w, recs); err != nil {
		prepErr = err
		return
	}
	if err := cpio.WriteTrailer(w); err != nil {
		prepErr = err
		return
	}
	initrd = filepath.Join(cache, "initrd.cpio")
	tmp := fmt.Sprintf("%s.%d", initrd, os.Getpid())
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		prepErr = err
		return
	}
	prepErr = os.Rename(tmp, initrd)
}

// Boot starts QEMU with o and waits until the test init has printed a
// command line containing want (so the kernel's own "Command line:" log
// does not count), failing the test at the deadline.
func Boot(t testing.TB, o qemu.Options, want string) {
	t.Helper()
	if testing.Short() {
		t.Skip("QEMU boot: not in -short")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		Need(t, "qemu-system-x86_64 not installed (make deps installs qemu-system-x86)")
	}
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
