package hardware

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
)

// pciDev writes a PCI function into the tree; driver and group are symlink
// targets' names, "" for none.
func (tr *tree) pciDev(addr, vendor, device, class, modalias, driver, group string) {
	d := "sys/bus/pci/devices/" + addr + "/"
	tr.file(d+"vendor", "0x"+vendor+"\n")
	tr.file(d+"device", "0x"+device+"\n")
	tr.file(d+"class", "0x"+class+"\n")
	tr.file(d+"modalias", modalias+"\n")
	link := func(name, dir, target string) {
		if target == "" {
			return
		}
		if err := os.Symlink(dir+target, filepath.Join(tr.root, d, name)); err != nil {
			tr.t.Fatal(err)
		}
	}
	link("driver", "../../../bus/pci/drivers/", driver)
	link("iommu_group", "../../../kernel/iommu_groups/", group)
}

// GPUs of every display class, with ids, IOMMU group and driver; and the
// devices a module of the image matches that no driver claimed, named
// from pci.ids.
func TestGPUsAndUnclaimedDevices(t *testing.T) {
	tr := newTree(t)
	tr.file("lib/modules/6.1.0-test/modules.alias", "alias pci:v*d*sv*sd*bc01sc08i02* nvme\nalias pci:v00001AF4d00001000sv*sd*bc*sc*i* virtio_net\n")
	tr.file("usr/share/misc/pci.ids", "1002  Advanced Micro Devices, Inc. [AMD/ATI]\n\t5159  Rage 128 PF/PRO AGP 4x TMDS\n"+
		"10de  NVIDIA Corporation\n1b36  Red Hat, Inc.\n\t0010  QEMU NVM Express Controller\nC 03  Display controller\n")
	tr.pciDev("0000:01:00.0", "1002", "5159", "030000", "pci:v00001002d00005159sv00001AF4sd00001100bc03sc00i00", "", "7")
	tr.pciDev("0000:02:00.0", "10de", "20b5", "030200", "pci:v000010DEd000020B5sv000010DEsd00001533bc03sc02i00", "vfio-pci", "8")
	tr.pciDev("0000:03:00.0", "10de", "1e36", "038000", "pci:v000010DEd00001E36sv000010DEsd00001234bc03sc80i00", "", "")
	tr.pciDev("0000:00:02.0", "1234", "1111", "030000", "pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00", "", "") // QEMU's VGA
	tr.pciDev("0000:00:04.0", "1b36", "0010", "010802", "pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02", "", "")
	tr.pciDev("0000:00:03.0", "1af4", "1000", "020000", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", "virtio-pci", "")
	tr.pciDev("0000:00:1f.3", "8086", "2930", "0c0500", "pci:v00008086d00002930sv00001AF4sd00001100bc0Csc05i00", "", "") // no module for it

	f := tr.probe(config.Default(), "")
	want := []fact.GPU{
		{Address: "0000:01:00.0", Vendor: "Advanced Micro Devices, Inc. [AMD/ATI]", Model: "Rage 128 PF/PRO AGP 4x TMDS", VendorID: "1002", DeviceID: "5159", Class: "030000", IOMMUGroup: "7"},
		{Address: "0000:02:00.0", Vendor: "NVIDIA Corporation", Model: "0x20b5", VendorID: "10de", DeviceID: "20b5", Class: "030200", IOMMUGroup: "8", Driver: "vfio-pci"},
		{Address: "0000:03:00.0", Vendor: "NVIDIA Corporation", Model: "0x1e36", VendorID: "10de", DeviceID: "1e36", Class: "038000"},
	}
	if !reflect.DeepEqual(f.GPUs, want) {
		t.Errorf("gpus:\n%+v\nwant\n%+v", f.GPUs, want)
	}
	wantU := []fact.PCIDevice{{Address: "0000:00:04.0", VendorID: "1b36", DeviceID: "0010", Class: "010802",
		Vendor: "Red Hat, Inc.", Device: "QEMU NVM Express Controller", Modules: []string{"nvme"}}}
	if !reflect.DeepEqual(f.Unclaimed, wantU) {
		t.Errorf("unclaimed:\n%+v\nwant\n%+v", f.Unclaimed, wantU)
	}
	if len(f.Unclaimed) == 0 {
		return
	}
	if s := f.Unclaimed[0].String(); s != "[1b36:0010] Red Hat, Inc. QEMU NVM Express Controller at 0000:00:04.0" {
		t.Errorf("String() = %q", s)
	}
}
