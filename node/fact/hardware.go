package fact

import "encoding/json"

// Hardware is the fact "hardware", published by the hardware module: the
// capacity the node reports to the grid and what it is made of.
type Hardware struct {
	// CRU is the number of logical CPUs.
	CRU uint64 `json:"cru"`
	// MRU is MemTotal of /proc/meminfo in bytes: what the kernel can hand
	// out, a few percent below the installed size.
	MRU uint64 `json:"mru"`
	// SRU and HRU are the total bytes of the SSDs and of the HDDs that
	// count as capacity.
	SRU   uint64 `json:"sru"`
	HRU   uint64 `json:"hru"`
	Disks []Disk `json:"disks"`
	GPUs  []GPU  `json:"gpus"`
	NICs  []NIC  `json:"nics"`
	DMI   DMI    `json:"dmi"`
	// Virtualized: the CPU has the hypervisor flag or DMI names a hypervisor.
	Virtualized bool `json:"virtualized"`
	// PCI is the number of PCI functions.
	PCI int `json:"pci"`
	// Unclaimed are the PCI devices that a module of the image matches
	// but that no driver claimed: the module failed to load or to probe.
	// The console names each; empty when every device has its driver.
	Unclaimed []PCIDevice `json:"unclaimed"`
}

// PCIDevice is one PCI function, named from pci.ids.
type PCIDevice struct {
	Address  string `json:"address"`   // "0000:00:04.0"
	VendorID string `json:"vendor_id"` // four lower-case hex digits: "1b36"
	DeviceID string `json:"device_id"` // "0010"
	Class    string `json:"class"`     // class, subclass, interface: "010802"
	// Vendor and Device are the names in pci.ids, "" when it has none.
	Vendor string `json:"vendor"`
	Device string `json:"device"`
	// Modules are the image's modules whose aliases match the device.
	Modules []string `json:"modules,omitempty"`
}

// String is how the console names the device: "[1b36:0010] Red Hat, Inc.
// QEMU NVM Express Controller at 0000:00:04.0", words a farmer can search for.
func (d PCIDevice) String() string {
	s := "[" + d.VendorID + ":" + d.DeviceID + "]"
	if d.Vendor != "" {
		s += " " + d.Vendor
	}
	if d.Device != "" {
		s += " " + d.Device
	}
	return s + " at " + d.Address
}

// Disk types.
const (
	SSD = "ssd"
	HDD = "hdd"
)

// Disk is one block device.
type Disk struct {
	Name      string `json:"name"`
	Size      uint64 `json:"size"`
	Serial    string `json:"serial"`
	Model     string `json:"model"`
	Type      string `json:"type"` // SSD or HDD
	Removable bool   `json:"removable"`
	// Capacity says whether the disk counts in sru/hru (and may be used by
	// the node); Reason says why not, in words (loop, zram, the boot
	// medium, ...).
	Capacity bool   `json:"capacity"`
	Reason   string `json:"reason,omitempty"`
}

// GPU is a PCI display controller (class 0x03: VGA 0300, 3D controller
// 0302, other 0380), found whether or not a driver is bound; the consoles
// of BMCs and hypervisors are left out. The JSON field names are a
// contract: the registrar record carries them as "gpus".
type GPU struct {
	// Address is the PCI address, "0000:01:00.0".
	Address string `json:"address"`
	// Vendor and Model are the names in pci.ids, or "0x10de" and "0x1eb8"
	// (the sysfs ids) when it has none.
	Vendor string `json:"vendor"`
	Model  string `json:"model"`
	// VendorID and DeviceID are four lower-case hex digits: "10de", "1eb8".
	VendorID string `json:"vendor_id"`
	DeviceID string `json:"device_id"`
	// Class is class, subclass and interface in hex: "030200".
	Class string `json:"class"`
	// IOMMUGroup is the device's IOMMU group number, "" when the IOMMU is
	// off (a workload can be handed the device only with one).
	IOMMUGroup string `json:"iommu_group"`
	// Driver is the bound kernel driver, "" when none.
	Driver string `json:"driver"`
}

// NIC is a network interface.
type NIC struct {
	Name    string `json:"name"`
	MAC     string `json:"mac"`
	Driver  string `json:"driver"`
	Speed   int    `json:"speed"` // Mb/s, 0 when unknown
	Carrier bool   `json:"carrier"`
	// Physical: backed by a device, not virtual.
	Physical bool `json:"physical"`
}

// DMI is the SMBIOS system identity ("" where a placeholder).
type DMI struct {
	Vendor  string `json:"vendor"`
	Product string `json:"product"`
	Serial  string `json:"serial"`
}

// String is a one-line summary of the capacity, for the console and logs.
func (h Hardware) String() string {
	b, _ := json.Marshal(struct{ CRU, MRU, SRU, HRU uint64 }{h.CRU, h.MRU, h.SRU, h.HRU})
	return string(b)
}
