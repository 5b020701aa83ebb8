package hardware

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/gridnode/gridnode/node/fact"
	"github.com/jaypipes/ghw"
	"github.com/jaypipes/ghw/pkg/pci"
	"github.com/jaypipes/ghw/pkg/util"
	"github.com/jaypipes/pcidb"
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

// pciDevices counts PCI functions and lists display controllers (class 03,
// less consoleVGA) whatever their driver: a GPU without a loaded driver has
// no /sys/class/drm entry, which is where ghw's GPU probe looks. Names come
// from pci.ids, which pcidb finds at /usr/share/hwdata/pci.ids or
// /usr/share/misc/pci.ids (the image ships Debian's at the latter); without
// it the IDs are reported in hex. pci.ids is read only when there is a GPU
// to name: parsing its 35,000 lines is most of the hardware probe on a
// small or emulated machine, and most nodes have no GPU.
func pciDevices(root string) (int, []fact.GPU) {
	n, gpus := rawPCI(root)
	if len(gpus) == 0 {
		return n, gpus
	}
	db, err := pcidb.New(pcidb.WithChroot(root))
	if err != nil {
		return n, gpus
	}
	info, err := pci.New(ghwOpts(root, ghw.WithPCIDB(db))...)
	if err != nil {
		return n, gpus
	}
	named := []fact.GPU{}
	for _, d := range info.Devices {
		if d.Class == nil || d.Class.ID != "03" || d.Vendor == nil || consoleVGA[d.Vendor.ID] {
			continue
		}
		g := fact.GPU{Address: d.Address, Vendor: d.Vendor.Name}
		if d.Product != nil {
			g.Model = d.Product.Name
		}
		named = append(named, g)
	}
	return len(info.Devices), named
}

// rawPCI counts PCI functions and finds the GPUs from the raw sysfs
// attributes, with hex IDs for names.
func rawPCI(root string) (int, []fact.GPU) {
	gpus := []fact.GPU{}
	dir := filepath.Join(root, "sys/bus/pci/devices")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		vendor := readTrim(filepath.Join(dir, e.Name(), "vendor"))
		if strings.HasPrefix(readTrim(filepath.Join(dir, e.Name(), "class")), "0x03") && !consoleVGA[strings.TrimPrefix(vendor, "0x")] {
			gpus = append(gpus, fact.GPU{
				Address: e.Name(),
				Vendor:  vendor,
				Model:   readTrim(filepath.Join(dir, e.Name(), "device")),
			})
		}
	}
	return len(ents), gpus
}
