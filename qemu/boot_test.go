package qemu

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridnode/gridnode/build/kernel"
	"github.com/u-root/mkuimage/cpio"
)

// The boot tests run real QEMU with the Debian kernel the project builds
// with and a one-file initramfs; under TCG a boot takes about 6 s.

// bootTimeout is generous: on a loaded CI machine a 6 s boot can take 60 s.
const bootTimeout = 5 * time.Minute

func needQEMU(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU; skipped with -short")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not installed (Debian package qemu-system-x86)")
	}
}

var (
	kernelOnce sync.Once
	kernelPath string
	kernelErr  error
)

// testKernel is the Debian kernel the image builder uses, fetched and
// unpacked by the builder's own code into the project's .cache. Under CI a
// missing kernel fails the test instead of skipping it.
func testKernel(t *testing.T) string {
	t.Helper()
	kernelOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		k, err := kernel.Resolve(ctx, kernel.Source{Package: "linux-image-amd64"}, "../.cache")
		if err != nil {
			kernelErr = err
			return
		}
		kernelPath = k.Vmlinuz
	})
	if kernelErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI: the test kernel: %v", kernelErr)
		}
		t.Skip(kernelErr)
	}
	return kernelPath
}

// testInitramfs builds testdata/init as a static binary and packs it as /init.
func testInitramfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "init")
	build := exec.Command("go", "build", "-o", bin, "./testdata/init")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the test init: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticRecord(data, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}),
	}
	if err := cpio.WriteRecordsAndDirs(w, recs); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "initramfs.cpio")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBootKernel boots the kernel and the test init directly, and drives it
// through its console and a second serial line until it powers off.
func TestBootKernel(t *testing.T) {
	needQEMU(t)
	kernel, initrd := testKernel(t), testInitramfs(t)
	ctx := t.Context()
	dir := t.TempDir()
	vm, err := Start(ctx, Options{
		Boot:         KernelBoot(kernel, initrd, "console=ttyS0 quiet panic=-1 no_timer_check"),
		Memory:       256,
		NoNetwork:    true,
		ExtraSerials: 1,
		Dir:          dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	t.Logf("accel %s; %s", vm.Accel, strings.Join(vm.Args, " "))

	m, err := vm.Expect(ctx, regexp.MustCompile(`^hello from (\w+)$`), bootTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if m.Groups[1] != "init" {
		t.Errorf("submatch = %q, want init", m.Groups[1])
	}

	// A line that never comes: the error shows what the node printed.
	_, err = vm.ExpectString(ctx, "never printed", 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "hello from init") {
		t.Errorf("Expect timeout error = %v; want it to show the console tail", err)
	}

	// The second serial line talks both ways.
	tty1 := vm.Port(1)
	if _, err := tty1.ExpectString(ctx, "ttyS1 ready", bootTimeout); err != nil {
		t.Fatal(err)
	}
	if err := vm.Write(1, "ping\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := tty1.ExpectString(ctx, "echo: ping", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := vm.Write(1, "poweroff\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.ExpectString(ctx, "powering off", 30*time.Second); err != nil {
		t.Fatal(err)
	}

	if err := vm.Wait(); err != nil {
		t.Fatalf("Wait after poweroff: %v", err)
	}
	if vm.ExitCode() != 0 {
		t.Errorf("exit code %d, want 0", vm.ExitCode())
	}
	log, err := os.ReadFile(vm.LogPath)
	if err != nil || !bytes.Contains(log, []byte("hello from init")) {
		t.Errorf("console log %s: %v; want it to hold the console", vm.LogPath, err)
	}
	if vm.Console() != string(log) {
		t.Error("Console() differs from the console log")
	}
}

func TestStartReportsQEMUErrors(t *testing.T) {
	needQEMU(t)
	_, err := Start(t.Context(), Options{
		Boot:      KernelBoot(testKernel(t), "", ""),
		NoNetwork: true,
		Accel:     "tcg",
		ExtraArgs: []string{"-device", "no-such-device"},
	})
	if err == nil || !strings.Contains(err.Error(), "no-such-device") {
		t.Errorf("Start = %v; want QEMU's complaint about no-such-device", err)
	}
}

func TestKillEndsTheVMAndExpect(t *testing.T) {
	needQEMU(t)
	vm, err := Start(t.Context(), Options{Boot: KernelBoot(testKernel(t), "", "console=ttyS0"), NoNetwork: true, Accel: "tcg"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := vm.QMP(t.Context(), "query-status", nil)
	if err != nil || !strings.Contains(string(st), `"running"`) {
		t.Errorf("QMP query-status = %s, %v; want running", st, err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := vm.ExpectString(t.Context(), "never printed", 0)
		errc <- err
	}()
	vm.Kill()
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "VM exited") {
		t.Errorf("Expect after Kill = %v, want VM exited", err)
	}
	if vm.Wait() == nil {
		t.Error("Wait after Kill = nil, want the kill")
	}
}
