package qemu_test

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/internal/boottest"
	"github.com/gridnode/gridnode/qemu"
)

// The boot tests run real QEMU with the Debian kernel the project builds
// with and a one-file initramfs; under TCG a boot takes about 6 s. Without
// QEMU or the kernel they skip, or fail under CI (internal/need).

// bootTimeout is generous: on a loaded CI machine a 6 s boot can take 60 s.
const bootTimeout = 5 * time.Minute

// testInit is a PID 1 that echoes lines on ttyS1 until "poweroff".
const testInit = "github.com/gridnode/gridnode/qemu/testdata/init"

// TestBootKernel boots the kernel and the test init directly, and drives it
// through its console and a second serial line until it powers off.
func TestBootKernel(t *testing.T) {
	boottest.NeedQEMU(t)
	kernel, initrd := boottest.NeedKernel(t), boottest.Initramfs(t, testInit)
	ctx := t.Context()
	dir := t.TempDir()
	vm, err := qemu.Start(ctx, qemu.Options{
		Boot:         qemu.KernelBoot(kernel, initrd, "console=ttyS0 quiet panic=-1 no_timer_check"),
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
	boottest.NeedQEMU(t)
	_, err := qemu.Start(t.Context(), qemu.Options{
		Boot:      qemu.KernelBoot(boottest.NeedKernel(t), "", ""),
		NoNetwork: true,
		Accel:     "tcg",
		ExtraArgs: []string{"-device", "no-such-device"},
	})
	if err == nil || !strings.Contains(err.Error(), "no-such-device") {
		t.Errorf("Start = %v; want QEMU's complaint about no-such-device", err)
	}
}

func TestKillEndsTheVMAndExpect(t *testing.T) {
	boottest.NeedQEMU(t)
	vm, err := qemu.Start(t.Context(), qemu.Options{Boot: qemu.KernelBoot(boottest.NeedKernel(t), "", "console=ttyS0"), NoNetwork: true, Accel: "tcg"})
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
