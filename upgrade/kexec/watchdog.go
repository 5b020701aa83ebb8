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

// Dog is the hardware watchdog held open: it runs while the device is open
// and after a close without the magic 'V' ("watchdog did not stop!").
type Dog struct {
	f       *os.File
	dev     string
	Timeout time.Duration // what the hardware took
}

// Open starts the hardware watchdog at dev with timeout (the driver may
// round it) and pings it once.
func Open(dev string, timeout time.Duration) (*Dog, error) {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("watchdog: %w (is the watchdog driver loaded? QEMU needs -device i6300esb)", err)
	}
	d := &Dog{f: f, dev: dev}
	secs := int32(timeout.Round(time.Second) / time.Second)
	if err := ioctlInt(f, unix.WDIOC_SETTIMEOUT, &secs); err != nil {
		f.Close() // no magic close: a watchdog that was running stays so
		return nil, fmt.Errorf("watchdog %s: setting a %s timeout: %w", dev, timeout, err)
	}
	d.Timeout = time.Duration(secs) * time.Second
	if err := d.Keepalive(); err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// Keepalive pings the watchdog: the machine resets Timeout after the last
// ping (i6300esb: after twice that, in its two stages).
func (d *Dog) Keepalive() error {
	var dummy int32
	if err := ioctlInt(d.f, wdiocKeepalive, &dummy); err != nil {
		return fmt.Errorf("watchdog %s: keepalive: %w", d.dev, err)
	}
	return nil
}

// Leave closes the device without the magic close: the watchdog keeps
// running, and nothing pings it any more.
func (d *Dog) Leave() error { return d.f.Close() }

// Disarm stops the watchdog (the magic close) and closes the device.
func (d *Dog) Disarm() error {
	if _, err := d.f.Write([]byte("V")); err != nil {
		d.f.Close()
		return fmt.Errorf("watchdog %s: magic close: %w", d.dev, err)
	}
	return d.f.Close()
}

// Arm starts the hardware watchdog at dev with timeout and leaves it running:
// the device is closed without the magic 'V', so the driver keeps the timer
// going and nothing pings it. Unless the next boot's user space opens the
// device in time (or its kernel pings it, for at most
// watchdog.open_timeout), the machine resets when timeout runs out. A kexec
// does not reset the device: the timer runs across the jump. It returns the
// timeout the hardware took.
func Arm(dev string, timeout time.Duration) (time.Duration, error) {
	d, err := Open(dev, timeout)
	if err != nil {
		return 0, err
	}
	return d.Timeout, d.Leave()
}

// Disarm stops the watchdog at dev (the magic close): the trial passed, or
// was called off.
func Disarm(dev string) error {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("watchdog: %w", err)
	}
	return (&Dog{f: f, dev: dev}).Disarm()
}

func ioctlInt(f *os.File, req uint, v *int32) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(req), uintptr(unsafe.Pointer(v)))
	if errno != 0 {
		return errno
	}
	return nil
}
