package coldplug

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gridnode/gridnode/internal/pciids"
	"github.com/gridnode/gridnode/node/fact"
)

// addDevice remembers that the device in the sysfs folder dir has modalias.
func (l *Loader) addDevice(modalias, dir string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Contains(l.devices[modalias], dir) {
		l.devices[modalias] = append(l.devices[modalias], dir)
	}
}

// sayUnclaimed names, after modules failed to load for modalias, each PCI
// device with that modalias that no driver has claimed, in words a farmer
// can search for: its PCI ids and its name in pci.ids (read now, and only
// as far as that vendor: boot time matters). The hardware module lists
// the same devices in /status.
func (l *Loader) sayUnclaimed(tag, modalias, why string) {
	l.mu.Lock()
	dirs := slices.Clone(l.devices[modalias])
	l.mu.Unlock()
	for _, dir := range dirs {
		if _, e := os.Stat(filepath.Join(dir, "driver")); e == nil {
			continue // another module claimed it
		}
		d, ok := pciDevice(filepath.Dir(l.Sys), dir)
		if !ok {
			continue
		}
		l.Logf("%s: %s is left without a driver: %s", tag, d, why)
	}
}

// pciDevice describes the PCI device in the sysfs folder dir, named from
// the pci.ids under root; ok is false for a device that is not PCI.
func pciDevice(root, dir string) (fact.PCIDevice, bool) {
	read := func(attr string) string {
		b, _ := os.ReadFile(filepath.Join(dir, attr))
		return strings.ToLower(strings.TrimPrefix(strings.TrimSpace(string(b)), "0x"))
	}
	b, _ := os.ReadFile(filepath.Join(dir, "modalias"))
	if !strings.HasPrefix(string(b), "pci:") {
		return fact.PCIDevice{}, false
	}
	d := fact.PCIDevice{Address: filepath.Base(dir), VendorID: read("vendor"), DeviceID: read("device"), Class: read("class")}
	id := pciids.ID{Vendor: d.VendorID, Device: d.DeviceID}
	n := pciids.Lookup(root, id)[id]
	d.Vendor, d.Device = n.Vendor, n.Device
	return d, true
}
