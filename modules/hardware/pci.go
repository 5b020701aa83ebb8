package hardware

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gridnode/gridnode/internal/pciids"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/node/modalias"
	"github.com/jaypipes/ghw"
	"github.com/jaypipes/ghw/pkg/util"
)

// ghwOpts points ghw at root and keeps it quiet and self-contained: no
// topology walk (the node does not report NUMA), no external tools (the
// node has none), no warnings on stdout.
func ghwOpts(root string, more ...any) []any {
	return append([]any{
		ghw.WithChroot(root),
		ghw.WithDisableTopology(),
		ghw.WithDisableTools(),
		ghw.WithDisableWarnings(),
	}, more...)
}

// cpuCount is the number of logical CPUs: ghw's hardware threads, else the
// processor entries of /proc/cpuinfo.
func cpuCount(root string, cpuinfo []byte) uint64 {
	if c, err := ghw.CPU(ghwOpts(root)...); err == nil && c.TotalHardwareThreads > 0 {
		return uint64(c.TotalHardwareThreads)
	}
	var n uint64
	for _, line := range strings.Split(string(cpuinfo), "\n") {
		if k, _, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "processor" {
			n++
		}
	}
	return n
}

// dmi reads the SMBIOS system vendor, product and serial.
func dmi(root string) fact.DMI {
	p, err := ghw.Product(ghwOpts(root)...)
	if err != nil {
		return fact.DMI{}
	}
	unk := func(s string) string {
		if s == util.UNKNOWN {
			return ""
		}
		return clean(s)
	}
	return fact.DMI{Vendor: unk(p.Vendor), Product: unk(p.Name), Serial: unk(p.SerialNumber)}
}

// consoleVGA are the PCI vendors of display controllers that are a
// server's BMC console or a hypervisor's emulated screen, not a GPU a
// workload could use: ASPEED, Matrox (G200 on BMCs), QEMU/Bochs, Cirrus,
// Red Hat (QXL, virtio-gpu), VMware, VirtualBox.
var consoleVGA = map[string]bool{"1a03": true, "102b": true, "1234": true, "1013": true, "1b36": true, "1af4": true, "15ad": true, "80ee": true}

// pciFunc is what sysfs says of one PCI function.
type pciFunc struct {
	addr, vendor, device, class, modalias, driver, iommuGroup string
}

// readPCI reads every PCI function under root/sys/bus/pci/devices, ids in
// lower-case hex without 0x.
func readPCI(root string) []pciFunc {
	dir := filepath.Join(root, "sys/bus/pci/devices")
	ents, _ := os.ReadDir(dir)
	var l []pciFunc
	for _, e := range ents {
		d := filepath.Join(dir, e.Name())
		hex := func(attr string) string {
			return strings.ToLower(strings.TrimPrefix(readTrim(filepath.Join(d, attr)), "0x"))
		}
		link := func(name string) string {
			if t, err := os.Readlink(filepath.Join(d, name)); err == nil {
				return filepath.Base(t)
			}
			return ""
		}
		l = append(l, pciFunc{
			addr: e.Name(), vendor: hex("vendor"), device: hex("device"), class: hex("class"),
			modalias: readTrim(filepath.Join(d, "modalias")), driver: link("driver"), iommuGroup: link("iommu_group"),
		})
	}
	return l
}

// pciDevices counts PCI functions, lists the display controllers (class
// 03, less consoleVGA) whatever their driver — a GPU without a loaded
// driver has no /sys/class/drm entry, which is where ghw's GPU probe
// looks —, and the devices left without a driver although a module of the
// image matches them. Names come from pci.ids, read only when there is
// something to name (see package pciids); without it the ids stand in.
func pciDevices(root string) (int, []fact.GPU, []fact.PCIDevice) {
	funcs := readPCI(root)
	gpus, unclaimed := []fact.GPU{}, []fact.PCIDevice{}
	var aliases *modalias.Aliases
	var ids []pciids.ID
	for _, p := range funcs {
		if strings.HasPrefix(p.class, "03") && !consoleVGA[p.vendor] {
			gpus = append(gpus, fact.GPU{Address: p.addr, VendorID: p.vendor, DeviceID: p.device,
				Class: p.class, IOMMUGroup: p.iommuGroup, Driver: p.driver})
			ids = append(ids, pciids.ID{Vendor: p.vendor, Device: p.device})
		}
		if p.driver != "" || p.modalias == "" {
			continue
		}
		if aliases == nil {
			aliases = imageAliases(root)
		}
		if mods := aliases.Match(p.modalias); len(mods) > 0 {
			unclaimed = append(unclaimed, fact.PCIDevice{Address: p.addr, VendorID: p.vendor, DeviceID: p.device,
				Class: p.class, Modules: mods})
			ids = append(ids, pciids.ID{Vendor: p.vendor, Device: p.device})
		}
	}
	names := pciids.Lookup(root, ids...)
	for i, g := range gpus {
		n := names[pciids.ID{Vendor: g.VendorID, Device: g.DeviceID}]
		gpus[i].Vendor, gpus[i].Model = orHex(n.Vendor, g.VendorID), orHex(n.Device, g.DeviceID)
	}
	for i, u := range unclaimed {
		n := names[pciids.ID{Vendor: u.VendorID, Device: u.DeviceID}]
		unclaimed[i].Vendor, unclaimed[i].Device = n.Vendor, n.Device
	}
	return len(funcs), gpus, unclaimed
}

func orHex(name, id string) string {
	if name == "" {
		return "0x" + id
	}
	return name
}

// imageAliases reads the modules.alias of the image's kernel (the one
// folder under lib/modules on a node); none is an empty set.
func imageAliases(root string) *modalias.Aliases {
	files, _ := filepath.Glob(filepath.Join(root, "lib/modules/*/modules.alias"))
	sort.Strings(files)
	for _, p := range files {
		if f, err := os.Open(p); err == nil {
			a, err := modalias.ParseAliases(f)
			f.Close()
			if err == nil {
				return a
			}
		}
	}
	a, _ := modalias.ParseAliases(strings.NewReader(""))
	return a
}
