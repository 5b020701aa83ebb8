package tests

// The hardware matrix (issue 11): the default image booted on the CPUs,
// machines, firmware, disk controllers and NICs farmers have, each row to
// `gridnode: ready` with its disks counted in the capacity and the cache
// made on an empty one, and each row booted twice on the same disks (the
// second boot is a node's usual one, the one that stalled for entropy).
// TestMatrix boots a covering set in CI; `make matrix` (bench_matrix_test.go)
// boots the product and writes the table to BENCHMARKS.md.

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/qemu"
)

// row is one machine of the matrix.
type row struct {
	CPU      string // -cpu: qemu64, Nehalem, max
	Machine  string // pc or q35
	Firmware qemu.Firmware
	Disks    []qemu.Bus // one empty disk on each
	NIC      string     // -device model
	CPUs     int
	Memory   int  // MiB
	RNG      bool // a virtio-rng device
	GPU      bool // an ATI VGA card behind a PCIe root port (q35 only)
	// Skip, when set, is why the row cannot work; it is listed, not booted.
	Skip string
}

func (r row) String() string {
	var d []string
	for _, b := range r.Disks {
		d = append(d, string(b))
	}
	s := fmt.Sprintf("%s,%s-%s,%s,%s,%dcpu-%dM", r.CPU, r.Machine, r.Firmware, strings.Join(d, "+"), r.NIC, r.CPUs, r.Memory)
	if r.RNG {
		s += ",rng"
	} else {
		s += ",no-rng"
	}
	if r.GPU {
		s += ",gpu"
	}
	return s
}

// ciRows is the covering set CI boots: every value of every axis at least
// once, every disk controller on qemu64 (no PCLMULQDQ, no RDRAND), two
// disks on two controllers per row.
var ciRows = []row{
	{CPU: "qemu64", Machine: "pc", Firmware: qemu.BIOS, Disks: []qemu.Bus{qemu.BusIDE, qemu.BusVirtio}, NIC: "e1000", CPUs: 1, Memory: 512},
	{CPU: "qemu64", Machine: "q35", Firmware: qemu.BIOS, Disks: []qemu.Bus{qemu.BusSCSI, qemu.BusNVMe}, NIC: "e1000e", CPUs: 1, Memory: 512},
	{CPU: "qemu64", Machine: "q35", Firmware: qemu.UEFI, Disks: []qemu.Bus{qemu.BusAHCI, qemu.BusLSI}, NIC: "rtl8139", CPUs: 4, Memory: 4096, RNG: true},
	{CPU: "qemu64", Machine: "pc", Firmware: qemu.BIOS, Disks: []qemu.Bus{qemu.BusMegaSAS, qemu.BusUSB}, NIC: "vmxnet3", CPUs: 1, Memory: 512, RNG: true},
	{CPU: "qemu64", Machine: "q35", Firmware: qemu.BIOS, Disks: []qemu.Bus{qemu.BusUAS, qemu.BusVirtio}, NIC: "virtio-net-pci", CPUs: 4, Memory: 4096},
	{CPU: "Nehalem", Machine: "q35", Firmware: qemu.UEFI, Disks: []qemu.Bus{qemu.BusNVMe, qemu.BusSCSI}, NIC: "virtio-net-pci", CPUs: 1, Memory: 512, GPU: true},
	{CPU: "max", Machine: "q35", Firmware: qemu.BIOS, Disks: []qemu.Bus{qemu.BusVirtio}, NIC: "e1000e", CPUs: 4, Memory: 4096, RNG: true},
}

// rowResult is what a row's two boots measured.
type rowResult struct {
	First, Second time.Duration // QEMU start → gridnode: ready
	Err           string        // the first failure, "" when both boots passed
}

const matrixDiskGiB = 2 // the first disk; the second is 1 GiB larger, to tell them apart

// bootRow boots r twice on the same empty disks and checks, each time,
// ready, the disks counted in the capacity, and the cache on one of them;
// the second time, the key loaded from it. Failures are reported on t.
func bootRow(t *testing.T, r row, dir string) rowResult {
	t.Helper()
	disks := rowDisks(r, dir)
	o := qemu.Options{
		Boot:     kernelBoot(image(t, "node"), "gridnode.registrar=http://10.0.2.2:9"),
		CPU:      r.CPU,
		Machine:  r.Machine,
		Firmware: r.Firmware,
		CPUs:     r.CPUs,
		Memory:   r.Memory,
		NoRNG:    !r.RNG,
		Disks:    disks,
		NICs:     []qemu.NIC{{Model: r.NIC}},
		Forwards: []qemu.Forward{{Guest: 9100}},
	}
	if r.GPU {
		o.ExtraArgs = []string{"-device", "pcie-root-port,id=rp1,chassis=1", "-device", "ati-vga,bus=rp1"}
	}
	var res rowResult
	var key string
	for n := 1; n <= 2; n++ {
		start := time.Now()
		vm := boot(t, o)
		expect(t, vm, `^gridnode: ready$`, bootTimeout)
		took := time.Since(start)
		var st struct {
			Hardware fact.Hardware `json:"hardware"`
			Storage  fact.Storage  `json:"storage"`
			Identity fact.Identity `json:"identity"`
		}
		getJSON(t, "http://"+vm.HostAddr(9100)+"/status", &st)
		checkRowDisks(t, n, disks, st.Hardware, st.Storage)
		switch {
		case n == 1 && st.Identity.Source != "created":
			t.Errorf("boot 1: identity %q, want a key created on the cache disk", st.Identity.Source)
		case n == 2 && (st.Identity.Source != "loaded" || st.Identity.PublicKey != key):
			t.Errorf("boot 2: identity %q key %s, want the key of boot 1 (%s) loaded from the cache disk", st.Identity.Source, st.Identity.PublicKey, key)
		}
		key = st.Identity.PublicKey
		if len(st.Hardware.Unclaimed) > 0 {
			t.Errorf("boot %d: devices left without a driver: %+v", n, st.Hardware.Unclaimed)
		}
		if r.GPU && !slices.ContainsFunc(st.Hardware.GPUs, func(g fact.GPU) bool { return g.VendorID == "1002" }) {
			t.Errorf("boot %d: GPUs %+v, want the ATI card (vendor 1002)", n, st.Hardware.GPUs)
		}
		vm.Kill()
		if n == 1 {
			res.First = took
		} else {
			res.Second = took
		}
		if t.Failed() {
			break
		}
	}
	return res
}

// rowDisks are the row's disks, in dir (created empty by the first boot).
func rowDisks(r row, dir string) []qemu.Disk {
	var disks []qemu.Disk
	for i, b := range r.Disks {
		disks = append(disks, qemu.Disk{
			Path: filepath.Join(dir, fmt.Sprintf("disk%d.img", i)), Size: int64(matrixDiskGiB+i) * gib,
			Bus: b, Serial: fmt.Sprintf("mx%d", i),
		})
	}
	return disks
}

// checkRowDisks checks that every disk of the row is in the hardware fact
// as capacity, that sru+hru covers them, and that the cache is on one.
func checkRowDisks(t *testing.T, n int, disks []qemu.Disk, hw fact.Hardware, st fact.Storage) {
	t.Helper()
	names := map[string]bool{}
	var total uint64
	for _, d := range disks {
		i := slices.IndexFunc(hw.Disks, func(x fact.Disk) bool { return x.Size == uint64(d.Size) })
		if i < 0 {
			t.Errorf("boot %d: the %d GiB disk on %s is not among the node's disks %+v", n, d.Size/gib, d.Bus, hw.Disks)
			continue
		}
		if !hw.Disks[i].Capacity {
			t.Errorf("boot %d: the disk on %s (%s) is not counted in the capacity: %s", n, d.Bus, hw.Disks[i].Name, hw.Disks[i].Reason)
		}
		names[hw.Disks[i].Name] = true
		total += uint64(d.Size)
	}
	if hw.SRU+hw.HRU < total {
		t.Errorf("boot %d: capacity sru=%d hru=%d, less than the row's disks (%d bytes)", n, hw.SRU, hw.HRU, total)
	}
	switch {
	case st.Cache == nil:
		t.Errorf("boot %d: no cache disk: %s", n, st.Error)
	case !names[st.Cache.Disk]:
		t.Errorf("boot %d: cache on %s, not on a disk of the row %v", n, st.Cache.Disk, names)
	case n == 2 && st.Cache.Fresh:
		t.Errorf("boot %d: the cache file system was made again", n)
	}
}

// TestMatrix boots the covering set, two QEMUs at a time (go test's
// -parallel defaults to the 2 cores).
func TestMatrix(t *testing.T) {
	image(t, "node") // once, before the rows start
	for _, r := range ciRows {
		t.Run(r.String(), func(t *testing.T) {
			t.Parallel()
			bootRow(t, r, t.TempDir())
		})
	}
}
