package qemu

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gridnode/gridnode/internal/need"
)

// buildArgs runs the argument builder the way Start does, without QEMU.
func buildArgs(t *testing.T, o Options) (string, *VM) {
	t.Helper()
	o.defaults()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	vm := &VM{Accel: "tcg", fwd: map[Forward]int{}, LogPath: filepath.Join(o.Dir, "console.log")}
	b := &argBuilder{o: &o, vm: vm, sockDir: "/s"}
	args, err := b.build()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(args, " "), vm
}

func touch(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantArgs(t *testing.T, args string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(args, w) {
			t.Errorf("args do not contain %q:\n%s", w, args)
		}
	}
}

func TestArgsKernelBootCapturesSerialsOverSockets(t *testing.T) {
	k, i := touch(t, "vmlinuz"), touch(t, "initrd")
	args, _ := buildArgs(t, Options{Boot: KernelBoot(k, i, "console=ttyS0 quiet"), ExtraSerials: 1})
	wantArgs(t, args,
		"-nodefaults", "-machine q35", "-accel tcg,thread=multi -cpu max", "-smp 2 -m 1024", "-no-reboot",
		"-kernel "+k, "-initrd "+i, "-append console=ttyS0 quiet no_timer_check",
		"-chardev socket,id=ser0,path=/s/0.sock,server=off -serial chardev:ser0",
		"-chardev socket,id=ser1,path=/s/1.sock,server=off -serial chardev:ser1",
		"-chardev socket,id=qmp,path=/s/2.sock,server=off -mon chardev=qmp,mode=control",
		"-netdev user,id=net0 -device virtio-net-pci,netdev=net0,romfile=")
}

func TestArgsCDROMBootsFromAHCI(t *testing.T) {
	iso := touch(t, "gridnode.iso")
	args, _ := buildArgs(t, Options{Boot: CDROMBoot(iso)})
	wantArgs(t, args, "-device ahci,id=ahci0",
		"-drive if=none,id=drive0,format=raw,file="+iso+",media=cdrom,readonly=on",
		"-device ide-cd,drive=drive0,bus=ahci0.0,bootindex=0")
}

func TestArgsUSBStickOnXHCI(t *testing.T) {
	img := touch(t, "usb.img")
	args, _ := buildArgs(t, Options{Boot: USBBoot(img)})
	wantArgs(t, args, "-device qemu-xhci,id=xhci",
		"-drive if=none,id=drive0,format=raw,file="+img+",snapshot=on",
		"-device usb-storage,bus=xhci.0,drive=drive0,removable=on,bootindex=0")
}

func TestArgsDiskBootOnAHCI(t *testing.T) {
	img := touch(t, "disk.img")
	args, _ := buildArgs(t, Options{Boot: DiskBoot(img, BusAHCI)})
	wantArgs(t, args, "-device ide-hd,bus=ahci0.0,drive=drive0,bootindex=0")
}

func TestArgsPXEWithTFTP(t *testing.T) {
	dir := t.TempDir()
	args, _ := buildArgs(t, Options{Boot: PXEBoot(dir, "")})
	wantArgs(t, args, "-netdev user,tftp="+dir+",bootfile=boot.ipxe,id=net0",
		"-device virtio-net-pci,netdev=net0,bootindex=0")
}

func TestArgsPXEFromAURLNeedsNoTFTP(t *testing.T) {
	args, _ := buildArgs(t, Options{Boot: PXEBoot("", "http://10.0.2.2:8080/boot.ipxe"), NICs: []NIC{{Model: "e1000", MAC: "52:54:00:00:00:01"}}})
	wantArgs(t, args, "-netdev user,bootfile=http://10.0.2.2:8080/boot.ipxe,id=net0",
		"-device e1000,netdev=net0,mac=52:54:00:00:00:01,bootindex=0")
}

func TestArgsUEFIUsesACopyOfTheVariableStore(t *testing.T) {
	need.File(t, OVMFCode, "ovmf")
	dir := t.TempDir()
	args, _ := buildArgs(t, Options{Boot: KernelBoot(touch(t, "k"), "", ""), Firmware: UEFI, Dir: dir})
	wantArgs(t, args, "if=pflash,format=raw,unit=0,readonly=on,file="+OVMFCode)
	need.File(t, OVMFVars, "ovmf")
	wantArgs(t, args, "if=pflash,format=raw,unit=1,file="+filepath.Join(dir, "OVMF_VARS.fd"))
	if _, err := os.Stat(filepath.Join(dir, "OVMF_VARS.fd")); err != nil {
		t.Error(err)
	}
}

func TestArgsExtraDisksAreCreatedSparseWithTheirBus(t *testing.T) {
	dir := t.TempDir()
	ssd, _ := ParseDisk("2G:ssd")
	hdd, _ := ParseDisk("3G:hdd")
	hdd.Serial = "HDD1"
	nvme, _ := ParseDisk("1G:nvme")
	args, _ := buildArgs(t, Options{Boot: KernelBoot(touch(t, "k"), "", ""), Dir: dir,
		Disks: []Disk{ssd, hdd, nvme, {Size: 1 << 20}}})
	wantArgs(t, args, "-device virtio-scsi-pci,id=scsi0",
		"-device scsi-hd,bus=scsi0.0,drive=drive0,rotation_rate=1",
		"-device scsi-hd,bus=scsi0.0,drive=drive1,rotation_rate=7200,serial=HDD1",
		"-device nvme,drive=drive2,serial=gridnode2",
		"-device virtio-blk-pci,drive=drive3")
	fi, err := os.Stat(filepath.Join(dir, "disk1.img"))
	if err != nil || fi.Size() != 3<<30 {
		t.Fatalf("disk1.img: %v, %v; want a 3 GiB file", fi, err)
	}
}

func TestArgsForwardsPickFreeHostPorts(t *testing.T) {
	args, vm := buildArgs(t, Options{Boot: KernelBoot(touch(t, "k"), "", ""),
		Forwards: []Forward{{Guest: 9100}, {Guest: 53, Host: 5353, UDP: true}}})
	host := vm.HostPort(9100)
	if host == 0 {
		t.Fatal("HostPort(9100) = 0")
	}
	wantArgs(t, args, "hostfwd=tcp:127.0.0.1:"+strconv.Itoa(host)+"-:9100", "hostfwd=udp:127.0.0.1:5353-:53")
	if vm.HostPortUDP(53) != 5353 || vm.HostAddr(9100) != "127.0.0.1:"+strconv.Itoa(host) {
		t.Errorf("HostPortUDP(53) = %d, HostAddr(9100) = %s", vm.HostPortUDP(53), vm.HostAddr(9100))
	}
}

func TestArgsRestrictKeepsForwards(t *testing.T) {
	args, vm := buildArgs(t, Options{Boot: KernelBoot(touch(t, "k"), "", ""), Restrict: true, Forwards: []Forward{{Guest: 9100}}})
	wantArgs(t, args, "-netdev user,restrict=on,hostfwd=tcp:127.0.0.1:"+strconv.Itoa(vm.HostPort(9100))+"-:9100,id=net0")
}

func TestArgsInteractiveConsoleOnTheTerminal(t *testing.T) {
	args, _ := buildArgs(t, Options{Boot: KernelBoot(touch(t, "k"), "", ""), Interactive: true, ExtraSerials: 1})
	wantArgs(t, args, "-chardev stdio,id=ser0,mux=on,signal=off,logfile=", "-serial chardev:ser0 -mon chardev=ser0,mode=readline", "-serial pty")
}

func TestArgsEscapeCommasInPaths(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a,b")
	os.Mkdir(dir, 0o755)
	img := filepath.Join(dir, "usb.img")
	os.WriteFile(img, nil, 0o644)
	args, _ := buildArgs(t, Options{Boot: USBBoot(img)})
	wantArgs(t, args, "file="+strings.ReplaceAll(img, ",", ",,"))
}

func TestValidateRejects(t *testing.T) {
	k := touch(t, "k")
	for name, o := range map[string]Options{
		"no boot medium":       {},
		"missing kernel":       {Boot: KernelBoot("/nonexistent/vmlinuz", "", "")},
		"pxe without tftp":     {Boot: PXEBoot("", "boot.ipxe")},
		"pxe without nic":      {Boot: PXEBoot(t.TempDir(), ""), NoNetwork: true},
		"rotation on virtio":   {Boot: KernelBoot(k, "", ""), Disks: []Disk{{Size: 1, RotationRate: SSD}}},
		"disk without size":    {Boot: KernelBoot(k, "", ""), Disks: []Disk{{}}},
		"forwards without nic": {Boot: KernelBoot(k, "", ""), NoNetwork: true, Forwards: []Forward{{Guest: 1}}},
	} {
		o.defaults()
		if err := o.validate(); err == nil {
			t.Errorf("%s: validate accepted %+v", name, o)
		}
	}
}

func TestParseDisk(t *testing.T) {
	for spec, want := range map[string]Disk{
		"10G":       {Size: 10 << 30, Bus: BusVirtio},
		"512M:ssd":  {Size: 512 << 20, Bus: BusSCSI, RotationRate: SSD},
		"1TiB:hdd":  {Size: 1 << 40, Bus: BusSCSI, RotationRate: HDD},
		"4096:nvme": {Size: 4096, Bus: BusNVMe},
	} {
		got, err := ParseDisk(spec)
		if err != nil || got != want {
			t.Errorf("ParseDisk(%q) = %+v, %v; want %+v", spec, got, err, want)
		}
	}
	for _, bad := range []string{"", "G", "-1G", "10X", "10G:floppy"} {
		if _, err := ParseDisk(bad); err == nil {
			t.Errorf("ParseDisk(%q) succeeded", bad)
		}
	}
}

// The boot matrix's machines: a CPU model, no RNG device, and a disk on
// every controller, each controller added once.
func TestArgsCPUModelNoRNGAndEveryDiskController(t *testing.T) {
	k := touch(t, "vmlinuz")
	var disks []Disk
	for _, b := range []Bus{BusVirtio, BusSCSI, BusAHCI, BusNVMe, BusIDE, BusIDE, BusLSI, BusLSI, BusMegaSAS, BusUSB, BusUSB, BusUAS, BusUAS} {
		disks = append(disks, Disk{Size: 1 << 20, Bus: b})
	}
	disks[7].RotationRate = HDD
	args, _ := buildArgs(t, Options{Boot: KernelBoot(k, "", ""), Machine: "pc", CPU: "Nehalem", NoRNG: true, Disks: disks,
		NICs: []NIC{{Model: "vmxnet3"}, {Model: "rtl8139"}}})
	wantArgs(t, args, "-machine pc", "-accel tcg,thread=multi -cpu Nehalem",
		"-device virtio-blk-pci,drive=drive0",
		"-device virtio-scsi-pci,id=scsi0", "-device scsi-hd,bus=scsi0.0,drive=drive1",
		"-device ahci,id=ahci0", "-device ide-hd,bus=ahci0.0,drive=drive2",
		"-device nvme,drive=drive3,serial=gridnode3",
		"-device ide-hd,bus=ide.0,unit=0,drive=drive4", "-device ide-hd,bus=ide.1,unit=0,drive=drive5",
		"-device lsi53c895a,id=lsi0", "-device scsi-hd,bus=lsi0.0,drive=drive6", "-device scsi-hd,bus=lsi0.0,drive=drive7,rotation_rate=7200",
		"-device megasas,id=megasas0", "-device scsi-hd,bus=megasas0.0,drive=drive8",
		"-device qemu-xhci,id=xhci", "-device usb-storage,bus=xhci.0,drive=drive9", "-device usb-storage,bus=xhci.0,drive=drive10",
		"-device usb-uas,id=uas-drive11,bus=xhci.0", "-device scsi-hd,bus=uas-drive11.0,drive=drive11",
		"-device usb-uas,id=uas-drive12,bus=xhci.0", "-device scsi-hd,bus=uas-drive12.0,drive=drive12",
		"-device vmxnet3,netdev=net0", "-device rtl8139,netdev=net1")
	for _, once := range []string{"virtio-rng-pci", "-device lsi53c895a", "-device qemu-xhci", "-device virtio-scsi-pci", "-device megasas"} {
		if n := strings.Count(args, once); n > 1 || (n == 0) != (once == "virtio-rng-pci") {
			t.Errorf("%q appears %d times:\n%s", once, n, args)
		}
	}
	// The default keeps the RNG device and -cpu max.
	args, _ = buildArgs(t, Options{Boot: KernelBoot(k, "", "")})
	wantArgs(t, args, "-cpu max", "-device virtio-rng-pci")
}

func TestValidateIDENeedsPC(t *testing.T) {
	o := Options{Boot: KernelBoot(touch(t, "vmlinuz"), "", ""), Disks: []Disk{{Size: 1, Bus: BusIDE}}}
	o.defaults()
	if err := o.validate(); err == nil || !strings.Contains(err.Error(), "needs machine pc") {
		t.Errorf("IDE on q35: err = %v", err)
	}
}
