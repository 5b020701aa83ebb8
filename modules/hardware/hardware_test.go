package hardware

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
)

// tree builds a synthetic root (the parts of /proc, /sys and /dev that the
// probe reads) in a temp folder, as ghw's chroot snapshots do.
type tree struct {
	t    *testing.T
	root string
}

func newTree(t *testing.T) *tree {
	tr := &tree{t: t, root: t.TempDir()}
	tr.file("proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu sse2\n\nprocessor\t: 1\nflags\t\t: fpu sse2\n")
	tr.file("proc/meminfo", "MemTotal:        1000000 kB\nMemFree:          500000 kB\n")
	tr.file("sys/class/dmi/id/sys_vendor", "Supermicro\n")
	tr.file("sys/class/dmi/id/product_name", "X11SCL-F\n")
	tr.file("sys/class/dmi/id/product_serial", "To Be Filled By O.E.M.\n")
	return tr
}

func (tr *tree) file(p, content string) {
	tr.t.Helper()
	p = filepath.Join(tr.root, p)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tr.t.Fatal(err)
	}
}

// disk adds /sys/block/NAME with a size in GiB and a serial.
func (tr *tree) disk(name string, gib uint64, rotational bool, serial string) {
	d := "sys/block/" + name + "/"
	tr.file(d+"size", itoa(gib<<30/512)+"\n")
	rot := "0"
	if rotational {
		rot = "1"
	}
	tr.file(d+"queue/rotational", rot+"\n")
	tr.file(d+"removable", "0\n")
	if serial != "" {
		tr.file(d+"serial", serial+"\n")
	}
}

func itoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
	}
	return string(b)
}

func (tr *tree) probe(cfg config.Node, boot string) fact.Hardware {
	tr.t.Helper()
	f, err := Probe(tr.root, cfg, boot)
	if err != nil {
		tr.t.Fatal(err)
	}
	return f
}

func find(t *testing.T, f fact.Hardware, name string) fact.Disk {
	t.Helper()
	for _, d := range f.Disks {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("disk %s not listed in %+v", name, f.Disks)
	return fact.Disk{}
}

func TestSSDAndHDDSplit(t *testing.T) {
	tr := newTree(t)
	tr.disk("sda", 8, false, "SSD1")
	tr.disk("sdb", 16, true, "HDD1")
	tr.disk("nvme0n1", 4, false, "")
	f := tr.probe(config.Default(), "")
	if f.SRU != 12<<30 {
		t.Errorf("sru = %d, want %d (8 GiB + 4 GiB SSDs)", f.SRU, uint64(12<<30))
	}
	if f.HRU != 16<<30 {
		t.Errorf("hru = %d, want %d", f.HRU, uint64(16<<30))
	}
	if d := find(t, f, "sda"); d.Type != fact.SSD || !d.Capacity || d.Serial != "SSD1" {
		t.Errorf("sda = %+v, want a capacity SSD with serial SSD1", d)
	}
	if f.CRU != 2 {
		t.Errorf("cru = %d, want 2", f.CRU)
	}
	if f.MRU != 1000000*1024 {
		t.Errorf("mru = %d, want MemTotal 1000000 kB", f.MRU)
	}
	if f.DMI.Vendor != "Supermicro" || f.DMI.Product != "X11SCL-F" || f.DMI.Serial != "" {
		t.Errorf("dmi = %+v, want Supermicro X11SCL-F and the placeholder serial dropped", f.DMI)
	}
}

func TestDiskTypeOverrideBySerial(t *testing.T) {
	tr := newTree(t)
	tr.disk("sda", 8, false, "LIAR") // a controller that says non-rotational
	tr.disk("sdb", 16, true, "HDD1")
	cfg := config.Default()
	if err := config.Set(&cfg, "disktype", "LIAR:hdd"); err != nil {
		t.Fatal(err)
	}
	f := tr.probe(cfg, "")
	if d := find(t, f, "sda"); d.Type != fact.HDD {
		t.Errorf("sda type = %q, want hdd from gridnode.disktype=LIAR:hdd", d.Type)
	}
	if f.SRU != 0 || f.HRU != 24<<30 {
		t.Errorf("sru, hru = %d, %d; want 0, 24 GiB", f.SRU, f.HRU)
	}
}

func TestNotCapacity(t *testing.T) {
	tr := newTree(t)
	tr.disk("sda", 8, false, "DATA")
	tr.disk("sdb", 2, false, "STICK") // the USB stick we booted from
	tr.file("sys/block/sdb/removable", "1\n")
	tr.disk("loop0", 1, false, "")
	tr.disk("loop1", 0, false, "") // an idle loop slot: not even listed
	tr.disk("zram0", 1, false, "")
	tr.disk("dm-0", 4, false, "")
	tr.disk("md0", 4, false, "")
	tr.disk("sr0", 1, true, "")
	f := tr.probe(config.Default(), "sdb")
	if f.SRU != 8<<30 || f.HRU != 0 {
		t.Errorf("sru, hru = %d, %d; want only sda's 8 GiB", f.SRU, f.HRU)
	}
	for _, n := range []string{"sdb", "loop0", "zram0", "dm-0", "md0", "sr0"} {
		if d := find(t, f, n); d.Capacity || d.Reason == "" {
			t.Errorf("%s = %+v, want not capacity with a reason", n, d)
		}
	}
	for _, d := range f.Disks {
		if d.Name == "loop1" {
			t.Errorf("idle loop1 listed: %+v", d)
		}
	}
}

func TestBootMediumFoundByLabel(t *testing.T) {
	tr := newTree(t)
	tr.disk("sda", 8, false, "DATA")
	tr.disk("sdb", 2, false, "STICK")
	tr.file("sys/block/sdb/sdb1/partition", "1\n")
	// A FAT32 boot sector labelled GRIDNODE on sdb1.
	bs := make([]byte, 512)
	bs[66] = 0x29
	copy(bs[71:82], "GRIDNODE   ")
	bs[510], bs[511] = 0x55, 0xAA
	tr.file("dev/sdb1", string(bs))
	tr.file("dev/sda", string(make([]byte, 4096)))
	f := tr.probe(config.Default(), "")
	if d := find(t, f, "sdb"); d.Capacity {
		t.Errorf("sdb = %+v, want not capacity: it holds the GRIDNODE medium", d)
	}
	if d := find(t, f, "sda"); !d.Capacity {
		t.Errorf("sda = %+v, want capacity", d)
	}
}

func TestVirtualized(t *testing.T) {
	tr := newTree(t)
	if f := tr.probe(config.Default(), ""); f.Virtualized {
		t.Errorf("virtualized on a Supermicro without the hypervisor flag")
	}
	tr.file("proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu sse2 hypervisor\n")
	if f := tr.probe(config.Default(), ""); !f.Virtualized || f.CRU != 1 {
		t.Errorf("virtualized = %v, cru = %d; want true from the hypervisor flag, 1 CPU", f.Virtualized, f.CRU)
	}
	tr = newTree(t)
	tr.file("sys/class/dmi/id/sys_vendor", "QEMU\n")
	tr.file("sys/class/dmi/id/product_name", "Standard PC (Q35 + ICH9, 2009)\n")
	if f := tr.probe(config.Default(), ""); !f.Virtualized {
		t.Errorf("virtualized = false with DMI vendor QEMU")
	}
}

func TestSCSISerialFromVPD(t *testing.T) {
	tr := newTree(t)
	tr.disk("sda", 8, false, "")
	// What QEMU's scsi-hd,serial=SSD-A answers for VPD page 0x80.
	tr.file("sys/block/sda/device/vpd_pg80", "\x00\x80\x00\x05SSD-A")
	tr.file("sys/block/sda/device/vendor", "QEMU    \n")
	tr.file("sys/block/sda/device/model", "QEMU HARDDISK   \n")
	f := tr.probe(config.Default(), "")
	if d := find(t, f, "sda"); d.Serial != "SSD-A" || d.Model != "QEMU QEMU HARDDISK" {
		t.Errorf("sda serial, model = %q, %q; want SSD-A, QEMU QEMU HARDDISK", d.Serial, d.Model)
	}
}

func TestNICsAndGPUs(t *testing.T) {
	tr := newTree(t)
	tr.file("sys/class/net/lo/address", "00:00:00:00:00:00\n")
	tr.file("sys/class/net/eth0/address", "52:54:00:12:34:56\n")
	tr.file("sys/class/net/eth0/carrier", "1\n")
	tr.file("sys/class/net/eth0/speed", "1000\n")
	tr.file("sys/bus/pci/drivers/virtio_net/.keep", "")
	if err := os.MkdirAll(filepath.Join(tr.root, "sys/class/net/eth0/device"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../bus/pci/drivers/virtio_net", filepath.Join(tr.root, "sys/class/net/eth0/device/driver")); err != nil {
		t.Fatal(err)
	}
	tr.file("sys/class/net/br0/address", "52:54:00:aa:bb:cc\n")
	tr.file("sys/class/net/br0/speed", "-1\n")
	for addr, cls := range map[string]string{"0000:00:01.0": "0x030000", "0000:00:02.0": "0x020000"} {
		d := "sys/bus/pci/devices/" + addr + "/"
		tr.file(d+"class", cls+"\n")
		tr.file(d+"vendor", "0x10de\n")
		tr.file(d+"device", "0x1eb8\n")
	}
	// QEMU's emulated VGA: a display controller, not a GPU.
	tr.file("sys/bus/pci/devices/0000:00:03.0/class", "0x030000\n")
	tr.file("sys/bus/pci/devices/0000:00:03.0/vendor", "0x1234\n")
	tr.file("sys/bus/pci/devices/0000:00:03.0/modalias", "pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00\n")
	tr.file("sys/bus/pci/devices/0000:00:01.0/modalias", "pci:v000010DEd00001EB8sv000010DEsd000012A2bc03sc02i00\n")
	tr.file("sys/bus/pci/devices/0000:00:02.0/modalias", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00\n")
	tr.file("usr/share/misc/pci.ids", "10de  NVIDIA Corporation\n\t1eb8  TU104GL [Tesla T4]\n1af4  Red Hat, Inc.\n\t1000  Virtio network device\n"+
		"C 02  Network controller\n\t00  Ethernet controller\nC 03  Display controller\n\t02  3D controller\n")
	f := tr.probe(config.Default(), "")
	if len(f.NICs) != 2 {
		t.Fatalf("nics = %+v, want eth0 and br0 (lo skipped)", f.NICs)
	}
	eth := f.NICs[1]
	if eth.Name != "eth0" || !eth.Physical || eth.Driver != "virtio_net" || eth.Speed != 1000 || !eth.Carrier || eth.MAC != "52:54:00:12:34:56" {
		t.Errorf("eth0 = %+v", eth)
	}
	if br := f.NICs[0]; br.Physical || br.Speed != 0 {
		t.Errorf("br0 = %+v, want virtual with speed 0", br)
	}
	if f.PCI != 3 {
		t.Errorf("pci = %d, want 3", f.PCI)
	}
	if len(f.GPUs) != 1 || f.GPUs[0].Vendor != "NVIDIA Corporation" || f.GPUs[0].Model != "TU104GL [Tesla T4]" {
		t.Errorf("gpus = %+v, want the Tesla T4 named from pci.ids and not QEMU's VGA", f.GPUs)
	}
	// Without pci.ids the IDs are still reported.
	if err := os.Remove(filepath.Join(tr.root, "usr/share/misc/pci.ids")); err != nil {
		t.Fatal(err)
	}
	f = tr.probe(config.Default(), "")
	if f.PCI != 3 || len(f.GPUs) != 1 || f.GPUs[0].Vendor != "0x10de" {
		t.Errorf("without pci.ids: pci = %d, gpus = %+v", f.PCI, f.GPUs)
	}
}

func TestDeviceListChangesWithDisks(t *testing.T) {
	tr := newTree(t)
	tr.disk("sda", 8, false, "A")
	before := deviceList(tr.root)
	if deviceList(tr.root) != before {
		t.Fatal("device list not stable")
	}
	tr.disk("sdb", 8, false, "B")
	if deviceList(tr.root) == before {
		t.Error("device list did not change when sdb appeared")
	}
}

// TestRunPublishesTheHostsHardware runs the module on this machine's /proc
// and /sys and waits for its fact.
func TestRunPublishesTheHostsHardware(t *testing.T) {
	t.Setenv("GRIDNODE_RUN", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, config.Default(), slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	var f fact.Hardware
	if err := fact.Wait(ctx, Name, &f); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if f.CRU == 0 || f.MRU == 0 || f.Disks == nil || f.NICs == nil || f.GPUs == nil {
		t.Errorf("fact %+v: want CPUs, memory, and lists (possibly empty) rather than null", f)
	}
}
