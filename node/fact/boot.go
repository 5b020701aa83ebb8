package fact

// Coldplug is the fact "coldplug" that PID 1 publishes: the kernel modules
// it loaded for the machine's devices.
type Coldplug struct {
	Loaded   []string          `json:"loaded"`
	Failed   map[string]string `json:"failed"`
	Modalias map[string]string `json:"modalias"`
}

// BootMedium is the fact "bootmedium" that PID 1 publishes on iso and usb
// boots: the block device holding the boot medium's file system. That disk
// is not capacity and is never written.
type BootMedium struct {
	Device string `json:"device"` // e.g. sr0, sda1
	Disk   string `json:"disk"`   // the whole disk: sr0, sda
	FSType string `json:"fstype"` // iso9660 or vfat
}
