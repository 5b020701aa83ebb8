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

// GPU is a PCI display controller: vendor and model from pci.ids.
type GPU struct {
	Address string `json:"address"`
	Vendor  string `json:"vendor"`
	Model   string `json:"model"`
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
