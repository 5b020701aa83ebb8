// Package pxetest has what the PXE and netboot tests share to boot a QEMU
// guest over the network: the Debian kernel the image builder uses, a
// tiny initramfs whose init prints its command line and powers off, and a
// QEMU runner that waits for a console line with a deadline.
//
// Tests that use it skip under go test -short, and when QEMU, OVMF or the
// kernel package is missing, except under CI, where those fail the test.
package pxetest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/gridnode/gridnode/build/internal/boottest"
)

// Hello is the first line the test init prints; its second line is
// "cmdline: " and the contents of /proc/cmdline.
const Hello = "hello from init"

// OVMFCode is the UEFI firmware (Debian package ovmf).
const (
	OVMFCode = "/usr/share/OVMF/OVMF_CODE.fd"
	OVMFVars = "/usr/share/OVMF/OVMF_VARS.fd"
)

// Skip skips t when it cannot boot a guest here.
func Skip(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("QEMU boot test skipped under -short")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		boottest.Need(t, "qemu-system-x86_64 not installed (Debian package qemu-system-x86)")
	}
}

// Need skips t for want of what format says, or fails it under CI, where
// every boot test must run (see boottest.Need).
func Need(t testing.TB, format string, args ...any) {
	t.Helper()
	boottest.Need(t, format, args...)
}

// Kernel returns the path of the Debian kernel the image builder uses,
// fetched into the project's .cache by the builder's code when missing
// (boottest.Kernel).
func Kernel(t testing.TB) string {
	t.Helper()
	k, err := boottest.Kernel()
	if err != nil {
		boottest.Need(t, "%v", err)
	}
	return k
}

const initSource = `package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	fmt.Println("` + Hello + `")
	if err := syscall.Mount("proc", "/proc", "proc", 0, ""); err != nil {
		fmt.Println("mount /proc:", err)
	}
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		fmt.Println("read /proc/cmdline:", err)
	}
	fmt.Printf("cmdline: %s", b)
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}
`

// Initramfs compiles the test init (static, stdlib only) and packs it into
// an uncompressed newc cpio in a temporary folder, returning its path.
func Initramfs(t testing.TB) string {
	t.Helper()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module testinit\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(initSource), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(src, "init")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOWORK=off", "GOFLAGS=-buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build test init: %v: %s", err, b)
	}
	initBin, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.Directory("proc", 0o755),
		cpio.StaticFile("init", string(initBin), 0o755),
	}
	cpio.MakeAllReproducible(recs)
	if err := cpio.WriteRecords(w, recs); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "initrd")
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// UEFI returns the QEMU arguments that boot the guest with OVMF.
func UEFI(t testing.TB) []string {
	t.Helper()
	if _, err := os.Stat(OVMFCode); err != nil {
		boottest.Need(t, "%s missing (Debian package ovmf)", OVMFCode)
	}
	vars := filepath.Join(t.TempDir(), "OVMF_VARS.fd")
	b, err := os.ReadFile(OVMFVars)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vars, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + OVMFCode,
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
