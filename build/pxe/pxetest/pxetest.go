// Package pxetest has what the PXE and netboot tests share to boot a QEMU
// guest over the network: the Debian kernel the image builder uses, a
// tiny initramfs whose init prints its command line and powers off, and a
// QEMU runner that waits for a console line with a deadline.
//
// Tests that use it skip under go test -short, and when QEMU, OVMF or the
// kernel package is missing, except under CI, where those fail the test
// (internal/need).
package pxetest

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/internal/boottest"
	"github.com/gridnode/gridnode/internal/need"
	"github.com/gridnode/gridnode/qemu"
)

// Hello is the first line the test init prints; its second line is
// "cmdline: " and the contents of /proc/cmdline.
const Hello = boottest.Hello

// Skip skips t when it cannot boot a guest here (under go test -short, or
// without QEMU outside CI; under CI a missing QEMU fails it).
func Skip(t testing.TB) {
	t.Helper()
	boottest.NeedQEMU(t)
}

// Kernel returns the path of the Debian kernel the image builder uses,
// fetched into the project's .cache by the builder's code when missing
// (boottest.Kernel).
func Kernel(t testing.TB) string {
	t.Helper()
	return boottest.NeedKernel(t)
}

// Initramfs returns the test initramfs: an uncompressed newc cpio whose
// init prints Hello and its command line, then powers off.
func Initramfs(t testing.TB) string {
	t.Helper()
	return boottest.Initramfs(t, boottest.TestInit)
}

// UEFI returns the QEMU arguments that boot the guest with OVMF.
func UEFI(t testing.TB) []string {
	t.Helper()
	need.File(t, qemu.OVMFCode, "ovmf")
	vars := filepath.Join(t.TempDir(), "OVMF_VARS.fd")
	b, err := os.ReadFile(qemu.OVMFVars)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vars, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + qemu.OVMFCode,
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars,
	}
}

// Boot starts qemu-system-x86_64 with the common arguments (TCG, since
// /dev/kvm can exist here and still fail with an emulation error; 512 MiB;
// no display; serial console on stdout) and args, and waits until a console
// line matches want or the deadline passes. It returns the matching line and
// stops the guest. The end of the console is in the failure message when the
// line does not come.
func Boot(t testing.TB, args []string, want *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	return BootIn(t, nil, args, want, timeout)
}

// BootIn is Boot with QEMU started by a command prefix, such as
// "ip netns exec NAME" to reach a tap device in a network namespace.
func BootIn(t testing.TB, prefix, args []string, want *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	all := append(append(append([]string{}, prefix...), "qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-nographic", "-no-reboot"), args...)
	cmd := exec.CommandContext(ctx, all[0], all[1:]...)
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	cmd.WaitDelay = 2 * time.Second
	t.Logf("%s", strings.Join(all, " "))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-done
	}()

	var console strings.Builder
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		matched := false
		for sc.Scan() {
			line := sc.Text()
			console.WriteString(line + "\n")
			if !matched && want.MatchString(line) {
				matched = true
				found <- line
			}
		}
		close(found)
	}()
	line, ok := <-found
	if !ok {
		t.Fatalf("guest console has no line matching %q within %s (qemu: %v); console:\n%s", want, timeout, ctx.Err(), tail(console.String()))
	}
	return line
}

func tail(s string) string {
	const max = 8000
	if len(s) > max {
		return "...\n" + s[len(s)-max:]
	}
	return s
}
