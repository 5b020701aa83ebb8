package fact

import (
	"time"

	"golang.org/x/sys/unix"
)

// Coldplug is the fact "coldplug" that PID 1 publishes: the kernel modules
// it loaded for the machine's devices.
type Coldplug struct {
	Loaded   []string          `json:"loaded"`
	Failed   map[string]string `json:"failed"`
	Modalias map[string]string `json:"modalias"`
	// At is when this was published, in seconds since boot
	// (CLOCK_BOOTTIME: no clock step moves it): the last time the drivers
	// changed. The storage module counts the quiet of the disk list from
	// it.
	At float64 `json:"at,omitempty"`
}

// BootMedium is the fact "bootmedium" that PID 1 publishes on iso and usb
// boots: the block device holding the boot medium's file system. That disk
// is not capacity and is never written.
type BootMedium struct {
	Device string `json:"device"` // e.g. sr0, sda1
	Disk   string `json:"disk"`   // the whole disk: sr0, sda
	FSType string `json:"fstype"` // iso9660 or vfat
}

// SinceBoot is how long the running kernel has been up (CLOCK_BOOTTIME),
// the time base of the facts' boot times; 0 if the kernel does not say.
func SinceBoot() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
