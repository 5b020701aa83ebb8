// Package hardware probes the node's hardware and publishes it as the fact
// "hardware" (/run/gridnode/hardware.json), the capacity the node reports to
// the grid.
//
// Fields of the fact (type Facts):
//
//	cru          logical CPUs
//	mru          memory bytes: MemTotal of /proc/meminfo (what the kernel can
//	             hand out, a few percent below the installed size)
//	sru, hru     total bytes of the SSDs and of the HDDs that count as capacity
//	disks        every block device with name, size, serial, model, type
//	             ("ssd" or "hdd"), removable, capacity, and the reason in words
//	             when it is not capacity (loop, zram, dm, md, optical, the boot
//	             medium, ...)
//	gpus         PCI display controllers (class 03xx, with or without a
//	             driver; BMC and hypervisor consoles left out): address,
//	             vendor and model from pci.ids, vendor_id, device_id, class,
//	             iommu_group, driver
//	unclaimed    PCI devices a module of the image matches that no driver
//	             claimed (its load or probe failed), named from pci.ids
//	nics         network interfaces: name, mac, driver, speed (Mb/s, 0 when
//	             unknown), carrier, physical (backed by a device, not virtual)
//	dmi          vendor, product, serial from SMBIOS ("" when a placeholder)
//	virtualized  the CPU has the hypervisor flag or DMI names a hypervisor
//	pci          number of PCI functions
//
// SSD or HDD comes from the kernel's rotational flag, overridden per disk
// serial by the configuration's disktype (gridnode.disktype=SERIAL:hdd) for
// controllers that lie. The boot medium is the disk named by the fact
// "bootmedium" ({"disk":"sdb"}) that PID 1 publishes when it booted from an
// ISO or USB stick.
//
// Disk serial and model come from sysfs directly (virtio's serial, NVMe's
// serial, SCSI VPD page 0x80), not from ghw: ghw reads them from the udev
// database, and a node has no udev.
//
// The module re-probes when the set of block devices or network interfaces
// changes, or the bootmedium fact appears (checked every second for the
// first minute, while drivers load, then every 30 s), and republishes only
// when the fact changed.
//
// pci.ids: read by package pciids (/usr/share/misc/pci.ids, where the image
// ships Debian's, then /usr/share/hwdata/pci.ids) only when there is a GPU
// or an unclaimed device to name. Without it, GPUs are listed by hex IDs.
package hardware

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
)

// Name is the module's and its fact's name.
const Name = fact.NameHardware

// Interval is how often the module looks for new disks and NICs; for its
// first minute it looks every second, as disks and NICs appear while PID 1
// loads their drivers.
var Interval = 30 * time.Second

// Run probes, publishes, and re-probes when devices come or go.
func Run(ctx context.Context, cfg config.Node, log *slog.Logger) error {
	var last fact.Hardware
	lastDevices := ""
	published := false
	start := time.Now()
	for {
		boot := bootDisk()
		devices := deviceList("/") + " boot:" + boot
		if devices != lastDevices || !published {
			f, err := Probe("/", cfg, boot)
			// The PCI database is the bulk of the probe's memory: give it
			// back now rather than at the next GC.
			debug.FreeOSMemory()
			if err != nil {
				return err
			}
			if !published || !reflect.DeepEqual(f, last) {
				if err := fact.Write(Name, f); err != nil {
					return fmt.Errorf("hardware: publishing the fact: %w", err)
				}
				logFacts(log, f, published)
				last, published = f, true
			}
			lastDevices = devices
		}
		wait := Interval
		if time.Since(start) < time.Minute {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

func bootDisk() string {
	var b fact.BootMedium
	if err := fact.Read(fact.NameBootMedium, &b); err != nil {
		return ""
	}
	return b.Disk
}

func logFacts(log *slog.Logger, f fact.Hardware, again bool) {
	msg := "capacity"
	if again {
		msg = "capacity changed"
	}
	log.Info(msg, "cru", f.CRU, "mru", f.MRU, "sru", f.SRU, "hru", f.HRU,
		"virtualized", f.Virtualized, "pci", f.PCI, "gpus", len(f.GPUs))
	for _, d := range f.Disks {
		if d.Capacity {
			log.Info("disk", "name", d.Name, "type", d.Type, "size", d.Size, "serial", d.Serial, "model", d.Model)
		} else {
			log.Info("disk not counted", "name", d.Name, "size", d.Size, "serial", d.Serial, "reason", d.Reason)
		}
	}
	for _, n := range f.NICs {
		log.Info("nic", "name", n.Name, "mac", n.MAC, "driver", n.Driver, "speed", n.Speed, "carrier", n.Carrier, "physical", n.Physical)
	}
}

// deviceList is a cheap fingerprint of the block devices (and their sizes,
// for media that appear in a drive) and network interfaces under root.
func deviceList(root string) string {
	var b strings.Builder
	for _, dir := range []string{"sys/block", "sys/class/net"} {
		ents, _ := os.ReadDir(filepath.Join(root, dir))
		for _, e := range ents {
			b.WriteString(e.Name())
			if dir == "sys/block" {
				b.WriteString(":" + readTrim(filepath.Join(root, dir, e.Name(), "size")))
			}
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// Probe reads the hardware under root ("/" on a node; a synthetic tree in
// tests). bootDisk names the boot medium's disk, "" when there is none.
func Probe(root string, cfg config.Node, bootDisk string) (fact.Hardware, error) {
	f := fact.Hardware{Disks: []fact.Disk{}, GPUs: []fact.GPU{}, NICs: []fact.NIC{}, Unclaimed: []fact.PCIDevice{}}
	cpuinfo, err := os.ReadFile(filepath.Join(root, "proc/cpuinfo"))
	if err != nil {
		return f, fmt.Errorf("hardware: reading /proc/cpuinfo: %w", err)
	}
	f.CRU = cpuCount(root, cpuinfo)
	f.MRU, err = memTotal(filepath.Join(root, "proc/meminfo"))
	if err != nil {
		return f, err
	}
	f.DMI = dmi(root)
	f.Virtualized = hasHypervisorFlag(cpuinfo) || hypervisorVendor(f.DMI)
	f.Disks = disks(root, cfg, bootDisk)
	for _, d := range f.Disks {
		switch {
		case !d.Capacity:
		case d.Type == fact.SSD:
			f.SRU += d.Size
		default:
			f.HRU += d.Size
		}
	}
	f.NICs = nics(root)
	f.PCI, f.GPUs, f.Unclaimed = pciDevices(root)
	return f, nil
}

// memTotal is MemTotal of meminfo in bytes. It is what the kernel manages
// (installed memory less firmware and kernel reservations): on QEMU -m 1024
// about 960 MiB. ghw's "physical" figure counts hot-pluggable memory blocks
// instead and is absent on kernels without memory hotplug; MemTotal is
// always there and is what a workload can be given.
func memTotal(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("hardware: reading %s: %w", path, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d", &kb); err != nil {
				return 0, fmt.Errorf("hardware: %s: bad MemTotal line %q", path, line)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("hardware: %s has no MemTotal line", path)
}

func hasHypervisorFlag(cpuinfo []byte) bool {
	for _, line := range strings.Split(string(cpuinfo), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "flags" {
			for _, fl := range strings.Fields(v) {
				if fl == "hypervisor" {
					return true
				}
			}
		}
	}
	return false
}

// hypervisorVendors are substrings of DMI vendor or product names that only
// virtual machines carry.
var hypervisorVendors = []string{"qemu", "kvm", "vmware", "virtualbox", "innotek", "xen", "bochs", "parallels", "microsoft corporation virtual", "amazon ec2", "google compute engine", "openstack", "cloud hypervisor", "firecracker"}

func hypervisorVendor(d fact.DMI) bool {
	s := strings.ToLower(d.Vendor + " " + d.Product)
	for _, v := range hypervisorVendors {
		if strings.Contains(s, v) {
			return true
		}
	}
	return false
}

// placeholders are what vendors leave in SMBIOS strings they did not fill.
var placeholders = map[string]bool{
	"": true, "unknown": true, "not specified": true, "to be filled by o.e.m.": true,
	"default string": true, "system serial number": true, "none": true, "n/a": true,
	"0": true, "0123456789": true, "not applicable": true, "system product name": true,
	"system manufacturer": true,
}

func clean(s string) string {
	s = strings.TrimSpace(s)
	if placeholders[strings.ToLower(s)] {
		return ""
	}
	return s
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// disks lists /sys/block, larger first within a type, in name order.
func disks(root string, cfg config.Node, bootDisk string) []fact.Disk {
	sys := filepath.Join(root, "sys/block")
	ents, err := os.ReadDir(sys)
	if err != nil {
		return []fact.Disk{}
	}
	l := []fact.Disk{}
	for _, e := range ents {
		name := e.Name()
		dir := filepath.Join(sys, name)
		var sectors uint64
		fmt.Sscanf(readTrim(filepath.Join(dir, "size")), "%d", &sectors)
		d := fact.Disk{
			Name:      name,
			Size:      sectors * 512, // sysfs counts 512-byte sectors whatever the device's sector size
			Serial:    diskSerial(dir),
			Model:     diskModel(dir),
			Removable: readTrim(filepath.Join(dir, "removable")) == "1",
			Type:      fact.HDD,
		}
		if readTrim(filepath.Join(dir, "queue/rotational")) == "0" {
			d.Type = fact.SSD
		}
		if t, ok := cfg.DiskType[d.Serial]; ok && d.Serial != "" && (t == fact.SSD || t == fact.HDD) {
			d.Type = t
		}
		d.Reason = notCapacity(root, d, bootDisk)
		if d.Reason == "skip" {
			continue
		}
		d.Capacity = d.Reason == ""
		l = append(l, d)
	}
	sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	return l
}

// notCapacity says why a disk is not capacity, "" when it is, and "skip"
// for devices not worth listing (idle loop and RAM-disk slots).
func notCapacity(root string, d fact.Disk, bootDisk string) string {
	n := d.Name
	has := func(p string) bool { return strings.HasPrefix(n, p) }
	switch {
	case (has("loop") || has("ram")) && d.Size == 0:
		return "skip"
	case has("loop"):
		return "loop device (a file, not a disk)"
	case has("zram"):
		return "compressed RAM (zram), not a disk"
	case has("ram"):
		return "RAM disk, not a disk"
	case has("dm-"):
		return "device-mapper volume on other disks"
	case has("md"):
		return "software RAID volume on other disks"
	case has("sr"):
		return "optical drive"
	case has("fd"):
		return "floppy drive"
	case has("nbd") && d.Size == 0:
		return "skip"
	case has("nbd"):
		return "network block device"
	case bootDisk != "" && n == bootDisk:
		if d.Removable {
			return "removable drive holding the boot medium"
		}
		return "holds the boot medium"
	case d.Size == 0:
		return "no medium (size 0)"
	case holdsBootLabel(root, n):
		return "holds the boot medium (GRIDNODE label)"
	}
	return ""
}

// diskSerial reads the serial the kernel exposes without udev: virtio-blk's
// serial, NVMe's controller serial, then SCSI VPD page 0x80 (unit serial
// number: what QEMU's scsi-hd serial= sets and what SATA disks answer
// through libata's SCSI translation).
func diskSerial(dir string) string {
	for _, p := range []string{"serial", "device/serial"} {
		if s := readTrim(filepath.Join(dir, p)); s != "" {
			return s
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "device/vpd_pg80")); err == nil {
		return parseVPD80(b)
	}
	return ""
}

// parseVPD80 decodes a Unit Serial Number VPD page: a 4-byte header whose
// last byte is the length, then the serial, space padded.
func parseVPD80(b []byte) string {
	if len(b) < 4 || b[1] != 0x80 {
		return ""
	}
	n := int(b[3])
	if 4+n > len(b) {
		n = len(b) - 4
	}
	return strings.Trim(string(b[4:4+n]), " \x00")
}

func diskModel(dir string) string {
	model := readTrim(filepath.Join(dir, "device/model"))
	vendor := readTrim(filepath.Join(dir, "device/vendor"))
	if strings.HasPrefix(vendor, "0x") { // a PCI vendor id: virtio-blk
		vendor = ""
		if model == "" && strings.HasPrefix(filepath.Base(dir), "vd") {
			model = "virtio block device"
		}
	}
	switch {
	case vendor == "" || strings.EqualFold(vendor, "ATA"):
		return model
	case model == "":
		return vendor
	}
	return vendor + " " + model
}

// holdsBootLabel says whether a disk holds a gridnode boot medium: an ISO
// 9660 volume or a FAT file system labelled GRIDNODE, on the disk itself or
// on one of its partitions. PID 1's bootmedium fact is the main source; this
// catches a second stick, or a medium PID 1 did not wait for.
func holdsBootLabel(root, disk string) bool {
	devs := []string{disk}
	ents, _ := os.ReadDir(filepath.Join(root, "sys/block", disk))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), disk) {
			devs = append(devs, e.Name())
		}
	}
	for _, d := range devs {
		if BootLabel(filepath.Join(root, "dev", d)) {
			return true
		}
	}
	return false
}

// BootLabel says whether the device or image file at path starts with an
// ISO 9660 volume or a FAT file system labelled GRIDNODE.
func BootLabel(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 512)
	if _, err := f.ReadAt(b, 0); err == nil && b[510] == 0x55 && b[511] == 0xAA {
		// FAT: the volume label is at 43 (FAT12/16) or 71 (FAT32), after
		// an extended boot signature 0x29 at 38 or 66.
		if b[38] == 0x29 && strings.TrimSpace(string(b[43:54])) == "GRIDNODE" {
			return true
		}
		if b[66] == 0x29 && strings.TrimSpace(string(b[71:82])) == "GRIDNODE" {
			return true
		}
	}
	// ISO 9660 primary volume descriptor at 32 KiB, volume id at 40.
	b = make([]byte, 72)
	if _, err := f.ReadAt(b, 32768); err == nil && string(b[1:6]) == "CD001" {
		return strings.TrimSpace(string(b[40:72])) == "GRIDNODE"
	}
	return false
}

// nics lists /sys/class/net except the loopback.
func nics(root string) []fact.NIC {
	sys := filepath.Join(root, "sys/class/net")
	ents, err := os.ReadDir(sys)
	if err != nil {
		return []fact.NIC{}
	}
	l := []fact.NIC{}
	for _, e := range ents {
		dir := filepath.Join(sys, e.Name())
		if e.Name() == "lo" || readTrim(filepath.Join(dir, "type")) == "772" {
			continue
		}
		n := fact.NIC{
			Name:    e.Name(),
			MAC:     readTrim(filepath.Join(dir, "address")),
			Carrier: readTrim(filepath.Join(dir, "carrier")) == "1",
		}
		if _, err := os.Stat(filepath.Join(dir, "device")); err == nil {
			n.Physical = true
		}
		if drv, err := os.Readlink(filepath.Join(dir, "device/driver")); err == nil {
			n.Driver = filepath.Base(drv)
		}
		// speed is -1 or unreadable (EINVAL) while the link is down.
		if _, err := fmt.Sscanf(readTrim(filepath.Join(dir, "speed")), "%d", &n.Speed); err != nil || n.Speed < 0 {
			n.Speed = 0
		}
		l = append(l, n)
	}
	return l
}
