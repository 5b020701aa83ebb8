// Package kexec is the node side of moving into a new release without a
// firmware reset: it takes kernel, initramfs and command line out of the
// release's UKI (Linux cannot kexec a UKI), composes the trial command line,
// loads the new kernel with kexec_file_load, and arms the hardware watchdog
// so that a trial boot that hangs resets the machine into the medium's
// default release.
//
// The reboot(LINUX_REBOOT_CMD_KEXEC) that jumps into the loaded kernel is
// PID 1's, after its ordered stop; this package only loads.
package kexec

import (
	"cmp"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gridnode/gridnode/upgrade/layout"
)

// Image is what kexec needs from a release.
type Image struct {
	Kernel, Initrd []byte
	Cmdline        string // the release's own command line (.cmdline)
	Version        string // VERSION_ID of its .osrel
}

// FromUKI takes the sections out of the UKI in r (size bytes).
func FromUKI(r io.ReaderAt, size int64) (*Image, error) {
	u, err := layout.ReadUKI(r, size)
	if err != nil {
		return nil, fmt.Errorf("kexec: %w", err)
	}
	im := &Image{}
	if im.Kernel, err = u.Read(r, layout.SectionLinux); err != nil {
		return nil, fmt.Errorf("kexec: %w", err)
	}
	if im.Initrd, err = u.Read(r, layout.SectionInitrd); err != nil {
		return nil, fmt.Errorf("kexec: %w", err)
	}
	if im.Cmdline, err = u.Cmdline(r); err != nil {
		return nil, fmt.Errorf("kexec: %w", err)
	}
	if im.Version, err = u.Version(r); err != nil {
		return nil, fmt.Errorf("kexec: %w", err)
	}
	return im, nil
}

// Trial says how the trial boot is bounded.
type Trial struct {
	Version string // the release on trial: gridnode.trial=VERSION
	Medium  string // gridnode.boot of the running node (usb, iso, pxe; "" for none)
	// OpenTimeout bounds how long the new kernel pings a running watchdog
	// for user space (watchdog.open_timeout): a trial that never gets as far
	// as the upgrade module opening /dev/watchdog resets then.
	OpenTimeout time.Duration
	// Panic is the seconds after a panic before the kernel resets the
	// machine (panic=): the firmware then boots the medium's default. Zero
	// is DefaultPanic: a trial must never stay in a panic.
	Panic int
}

// DefaultPanic is the trial's panic= when Trial.Panic is zero.
const DefaultPanic = 10

// owned are the keys the trial command line sets itself.
var owned = []string{"gridnode.boot", "gridnode.trial", "panic", "watchdog.open_timeout", "watchdog.stop_on_reboot"}

func key(field string) string {
	k, _, _ := strings.Cut(field, "=")
	return k
}

// Cmdline composes the trial's kernel command line: the new release's own
// command line, the running node's gridnode.* keys (what the farmer set at
// the boot loader or the netboot server gave: they win over the release's),
// the medium tag, gridnode.trial, watchdog.open_timeout, panic, and
// watchdog.stop_on_reboot=0.
//
// watchdog.stop_on_reboot=0 matters before the jump, not after it: the
// watchdog core stops a running watchdog from its reboot notifier, which a
// kexec runs too, unless the watchdog module was loaded with
// stop_on_reboot=0. So the running release must have loaded it so (its
// command line has the key, and its module loader passes MODULE.PARAM keys
// on, as modprobe does); the trial's command line carries it on for the
// trial's own next kexec. tests/kexec_test.go shows both.
func (t Trial) Cmdline(release, running string) string {
	farmer := map[string]bool{}
	var keep []string
	for _, f := range strings.Fields(running) {
		if k := key(f); strings.HasPrefix(k, "gridnode.") && !isOwned(k) {
			farmer[k] = true
			keep = append(keep, f)
		}
	}
	var out []string
	for _, f := range strings.Fields(release) {
		if k := key(f); !isOwned(k) && !farmer[k] {
			out = append(out, f)
		}
	}
	out = append(out, keep...)
	if t.Medium != "" {
		out = append(out, "gridnode.boot="+t.Medium)
	}
	out = append(out, "gridnode.trial="+t.Version,
		"watchdog.open_timeout="+strconv.Itoa(int(t.OpenTimeout.Round(time.Second)/time.Second)),
		"panic="+strconv.Itoa(cmp.Or(t.Panic, DefaultPanic)), "watchdog.stop_on_reboot=0")
	return strings.Join(out, " ")
}

func isOwned(k string) bool {
	for _, o := range owned {
		if k == o {
			return true
		}
	}
	return false
}

// Load loads kernel and initramfs with cmdline for the next
// reboot(LINUX_REBOOT_CMD_KEXEC). They go through memory files: the node has
// no file system of its own to put them on, and the cache disk is unmounted
// by the ordered stop before the jump.
func Load(im *Image, cmdline string) error {
	k, err := memfd("kernel", im.Kernel)
	if err != nil {
		return err
	}
	defer unix.Close(k)
	i, err := memfd("initrd", im.Initrd)
	if err != nil {
		return err
	}
	defer unix.Close(i)
	if err := unix.KexecFileLoad(k, i, cmdline, 0); err != nil {
		return fmt.Errorf("kexec: loading release %s: kexec_file_load: %w (a kernel with Secure Boot lockdown loads only signed kernels)", im.Version, err)
	}
	return nil
}

func memfd(name string, data []byte) (int, error) {
	fd, err := unix.MemfdCreate("gridnode-"+name, unix.MFD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("kexec: memfd_create: %w", err)
	}
	for b := data; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("kexec: writing the %s: %w", name, err)
		}
		b = b[n:]
	}
	return fd, nil
}

// Unload drops a loaded kernel (the trial was called off before the jump).
func Unload() error {
	if err := unix.KexecFileLoad(-1, -1, "", unix.KEXEC_FILE_UNLOAD|unix.KEXEC_FILE_NO_INITRAMFS); err != nil {
		return fmt.Errorf("kexec: unloading: %w", err)
	}
	return nil
}
