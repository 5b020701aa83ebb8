package kexec

import (
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
