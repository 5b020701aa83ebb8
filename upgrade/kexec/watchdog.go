package kexec

import (
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Watchdog is the hardware watchdog's device.
const Watchdog = "/dev/watchdog"

// WDIOC_KEEPALIVE is _IOR('W', 5, int), which x/sys/unix lacks.
const wdiocKeepalive = 0x80045705

// Arm starts the hardware watchdog at dev with timeout and leaves it running:
// the device is closed without the magic 'V', so the driver keeps the timer
// going ("watchdog did not stop!") and nothing pings it. Unless the next
// boot's user space opens the device in time (or its kernel pings it, for
// at most watchdog.open_timeout), the machine resets when timeout runs out.
// A kexec does not reset the device: the timer runs across the jump. It
// returns the timeout the hardware took.
func Arm(dev string, timeout time.Duration) (time.Duration, error) {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("watchdog: %w (is the watchdog driver loaded? QEMU needs -device i6300esb)", err)
	}
	defer f.Close() // no magic close: it stays armed
	secs := int32(timeout.Round(time.Second) / time.Second)
	if err := ioctlInt(f, unix.WDIOC_SETTIMEOUT, &secs); err != nil {
		return 0, fmt.Errorf("watchdog %s: setting a %s timeout: %w", dev, timeout, err)
	}
	var dummy int32
	if err := ioctlInt(f, wdiocKeepalive, &dummy); err != nil {
		return 0, fmt.Errorf("watchdog %s: keepalive: %w", dev, err)
	}
	return time.Duration(secs) * time.Second, nil
}

// Disarm stops the watchdog at dev (the magic close): the trial passed.
func Disarm(dev string) error {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("watchdog: %w", err)
	}
	if _, err := f.Write([]byte("V")); err != nil {
		f.Close()
		return fmt.Errorf("watchdog %s: magic close: %w", dev, err)
	}
	return f.Close()
}

func ioctlInt(f *os.File, req uint, v *int32) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(req), uintptr(unsafe.Pointer(v)))
	if errno != 0 {
		return errno
	}
	return nil
}
