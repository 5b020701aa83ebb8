package kexec

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Request is the signal that asks PID 1 to end in a kexec: stop every
// module in order, unmount, and jump into the kernel loaded beforehand.
// It is SIGRTMIN+6 as user space counts real-time signals (34 + 6), the
// signal systemd takes for kexec. A signal rather than a request file in
// the fact folder: PID 1 takes its other endings (power-off, reboot) as
// signals already, a signal arrives at once without a folder watch, and
// the one thing a kexec needs besides the request, the loaded kernel, is
// in the kernel itself (Loaded), so a file would have nothing to carry.
const Request = unix.Signal(34 + 6)

// LoadedPath says whether a kernel is loaded for kexec ("1" or "0").
const LoadedPath = "/sys/kernel/kexec_loaded"

// Loaded says whether a kernel is loaded for kexec: PID 1 honours a Request
// only then, so a stray signal cannot turn into a reboot.
func Loaded() bool {
	b, err := os.ReadFile(LoadedPath)
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// Jump reboots into the loaded kernel (reboot(LINUX_REBOOT_CMD_KEXEC)).
// It returns only when that failed; PID 1 calls it after its ordered stop.
func Jump() error { return unix.Reboot(unix.LINUX_REBOOT_CMD_KEXEC) }

// SignalInit sends sig to PID 1, refusing unless PID 1 runs the program this
// process runs (the node program): a module, or `/init reboot`, started on
// a workstation by mistake must not power that off.
func SignalInit(sig unix.Signal) error {
	self, err1 := os.Stat("/proc/self/exe")
	one, err2 := os.Stat("/proc/1/exe")
	if err1 != nil || err2 != nil || !os.SameFile(self, one) {
		return errors.New("PID 1 is not the gridnode node program; not signalling it")
	}
	if err := unix.Kill(1, sig); err != nil {
		return fmt.Errorf("signalling PID 1: %w", err)
	}
	return nil
}
