package qemu

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// BootKind says from what the VM boots.
type BootKind int

const (
	// BootKernel loads Boot.Kernel and Boot.Initrd directly (QEMU -kernel),
	// with Boot.Cmdline as the kernel command line. Works with BIOS and UEFI.
	BootKernel BootKind = iota
	// BootCDROM boots Boot.Image as an ISO in a CD-ROM drive on AHCI.
	BootCDROM
	// BootUSB boots Boot.Image (a raw disk image, or a hybrid ISO) as a USB
	// stick on an XHCI controller.
	BootUSB
	// BootDisk boots Boot.Image as the VM's first disk on Boot.DiskBus.
	BootDisk
	// BootPXE boots from the first NIC: QEMU's user network answers DHCP
	// with Boot.BootFile, served from Boot.TFTPDir by its built-in TFTP
	// server, or, with no TFTPDir, fetched by iPXE from a URL such as
	// http://10.0.2.2:PORT/boot.ipxe (gridnode's own netboot server).
	BootPXE
)

func (k BootKind) String() string {
	switch k {
	case BootKernel:
		return "kernel"
	case BootCDROM:
		return "cdrom"
	case BootUSB:
		return "usb"
	case BootDisk:
		return "disk"
	case BootPXE:
		return "pxe"
	}
	return "BootKind(" + strconv.Itoa(int(k)) + ")"
}

// Boot is the boot medium. Build it with KernelBoot, CDROMBoot, USBBoot,
// DiskBoot or PXEBoot, or fill it in directly.
type Boot struct {
	Kind BootKind

	// BootKernel.
	Kernel  string // bzImage
	Initrd  string // initramfs; optional
	Cmdline string // kernel command line; add console=ttyS0 to see the node; under TCG, no_timer_check is added

	// BootCDROM, BootUSB, BootDisk.
	Image    string
	DiskBus  Bus    // BootDisk: BusVirtio (default), BusAHCI, BusSCSI or BusNVMe
	Format   string // image format: "raw" (default) or "qcow2"
	ReadOnly bool   // attach read-only (the guest sees a write-protected medium)
	Snapshot bool   // guest writes go to a throw-away overlay; the image is left unchanged

	// BootPXE.
	TFTPDir  string // served by QEMU's TFTP; empty when the boot file is a URL
	BootFile string // DHCP boot file name; default "boot.ipxe"
}

// KernelBoot boots a kernel and initramfs directly.
func KernelBoot(kernel, initrd, cmdline string) Boot {
	return Boot{Kind: BootKernel, Kernel: kernel, Initrd: initrd, Cmdline: cmdline}
}

// CDROMBoot boots an ISO image from a CD-ROM drive.
func CDROMBoot(iso string) Boot { return Boot{Kind: BootCDROM, Image: iso, ReadOnly: true} }

// USBBoot boots a raw disk image (or a hybrid ISO) as a USB stick. Guest
// writes go to an overlay so the image is never modified.
func USBBoot(image string) Boot { return Boot{Kind: BootUSB, Image: image, Snapshot: true} }

// DiskBoot boots a disk image attached on bus (BusVirtio when zero). Guest
// writes go to an overlay so the image is never modified.
func DiskBoot(image string, bus Bus) Boot {
	return Boot{Kind: BootDisk, Image: image, DiskBus: bus, Snapshot: true}
}

// PXEBoot netboots from the first NIC. With tftpDir set, QEMU serves
// bootFile (default "boot.ipxe") from it; with tftpDir empty, bootFile should
// be a URL that iPXE fetches, e.g. "http://10.0.2.2:8080/boot.ipxe".
func PXEBoot(tftpDir, bootFile string) Boot {
	return Boot{Kind: BootPXE, TFTPDir: tftpDir, BootFile: bootFile}
}

// Firmware is the VM's firmware.
type Firmware int

const (
	BIOS Firmware = iota // SeaBIOS, QEMU's default
	UEFI                 // OVMF from Debian's ovmf package
)

func (f Firmware) String() string {
	if f == UEFI {
		return "uefi"
	}
	return "bios"
}

// Bus is how a disk is attached.
type Bus string

const (
	BusVirtio  Bus = "virtio-blk"  // virtio-blk-pci: /dev/vdX
	BusSCSI    Bus = "virtio-scsi" // scsi-hd on virtio-scsi-pci: /dev/sdX, with rotation rate
	BusAHCI    Bus = "ahci"        // ide-hd on an AHCI controller (ich9-ahci): /dev/sdX, with rotation rate
	BusNVMe    Bus = "nvme"        // NVMe controller: /dev/nvmeXn1 (always non-rotational)
	BusIDE     Bus = "ide"         // ide-hd on the machine's own IDE controller (PIIX on pc; none on q35)
	BusLSI     Bus = "lsi53c895a"  // scsi-hd on an LSI 53C895A SCSI controller (sym53c8xx)
	BusMegaSAS Bus = "megasas"     // scsi-hd on an LSI MegaRAID SAS 1078 (megaraid_sas)
	BusUSB     Bus = "usb-storage" // a USB mass-storage stick (bulk-only) on XHCI
	BusUAS     Bus = "uas"         // scsi-hd behind a USB attached SCSI (UAS) device on XHCI
)

// Buses lists every Bus, for errors and test matrices.
var Buses = []Bus{BusVirtio, BusSCSI, BusAHCI, BusNVMe, BusIDE, BusLSI, BusMegaSAS, BusUSB, BusUAS}

// scsiHD says whether disks on the bus are scsi-hd devices, which report a
// rotation rate.
func (b Bus) scsiHD() bool {
	return b == BusSCSI || b == BusLSI || b == BusMegaSAS || b == BusUAS
}

// Rotation rates for Disk.RotationRate (SCSI-disk buses and AHCI only).
const (
	SSD = 1    // reported as non-rotational: /sys/block/X/queue/rotational = 0
	HDD = 7200 // a 7200 rpm disk: rotational = 1
)

// Disk is an extra disk.
type Disk struct {
	// Path of the image. A missing file is created with Size bytes (sparse
	// for raw, qemu-img for qcow2); empty means Dir/diskN.img.
	Path         string
	Size         int64
	Format       string // "raw" (default) or "qcow2"
	Bus          Bus    // BusVirtio when empty
	RotationRate int    // SSD, HDD or 0 (unspecified); needs BusSCSI or BusAHCI
	Serial       string // shown as the disk's serial number; NVMe defaults to "gridnodeN"
	ReadOnly     bool
	Snapshot     bool // guest writes go to a throw-away overlay
}

// NIC is a network card. Unless Netdev is set it is attached to its own
// QEMU user network, where the host is 10.0.2.2, the guest gets 10.0.2.15
// by DHCP, and the first NIC carries Options.Forwards and the PXE settings.
type NIC struct {
	Model string // "virtio-net-pci" (default), "e1000", "e1000e", ...
	MAC   string // e.g. "52:54:00:12:34:56"; QEMU picks one when empty
	// Netdev replaces user networking with another -netdev backend, given
	// without its id, e.g. "socket,connect=127.0.0.1:5000".
	Netdev string
}

// Forward makes a guest port reachable from the host's loopback.
type Forward struct {
	Guest int  // port in the guest
	Host  int  // port on 127.0.0.1; 0 picks a free one (see VM.HostPort)
	UDP   bool // forward UDP instead of TCP
}

// Options configure a VM. The zero value of every field is a sensible default.
type Options struct {
	Boot     Boot
	Firmware Firmware
	CPUs     int // default 2
	Memory   int // MiB; default 1024

	Disks []Disk
	// NICs; nil means one virtio-net-pci NIC on user networking, unless
	// NoNetwork is set.
	NICs      []NIC
	NoNetwork bool
	Forwards  []Forward // host → guest forwards on the first NIC
	// Restrict cuts the user networks off (QEMU's restrict=on): the guest
	// still gets its DHCP lease, and Forwards still reach it, but it
	// reaches neither the host (10.0.2.2) nor anything beyond, as a node
	// whose uplink lost the internet.
	Restrict bool

	// ExtraSerials adds serial lines ttyS1, ttyS2, ... after the console
	// (ttyS0), each readable and writable as VM.Port(i).
	ExtraSerials int

	// Accel is "kvm" or "tcg"; empty means $GRIDNODE_ACCEL, else Accel().
	Accel   string
	Machine string // "pc" (i440fx) or "q35" (default)
	// CPU is the -cpu model under TCG: "max" (default: every feature TCG
	// emulates), or an older one such as "qemu64" or "Nehalem", which lack
	// PCLMULQDQ and RDRAND as real machines do. Under KVM the default is
	// "host".
	CPU string
	// NoRNG leaves out the virtio-rng device that by default feeds the
	// guest's random pool, as on a machine without a hardware RNG.
	NoRNG bool
	// AllowReboot lets a guest reboot restart the VM; by default a reboot
	// (or a panic with panic=N) ends QEMU, so a test sees it as an exit.
	AllowReboot bool

	// Dir holds the console log, created disks and the UEFI variable store.
	// Empty means a temporary folder removed when the VM exits.
	Dir string

	// ConsoleOut, when set, receives a copy of the console as it arrives
	// (e.g. os.Stdout, or a writer to t.Log).
	ConsoleOut io.Writer

	// Interactive puts the console on Stdin/Stdout (the terminal) instead of
	// capturing it: Ctrl-A X quits, Ctrl-A C toggles the QEMU monitor. The
	// console is still logged to LogPath, but Expect is not available.
	// Extra serial lines become host ptys (QEMU prints their names).
	Interactive bool
	Stdin       io.Reader
	Stdout      io.Writer
	Stderr      io.Writer // QEMU's own messages, in every mode; optional

	ExtraArgs []string // appended to the QEMU command line as they are
	Binary    string   // default "qemu-system-x86_64"
}

func (o *Options) defaults() {
	if o.CPUs <= 0 {
		o.CPUs = 2
	}
	if o.Memory <= 0 {
		o.Memory = 1024
	}
	if o.Machine == "" {
		o.Machine = "q35"
	}
	if o.Binary == "" {
		o.Binary = "qemu-system-x86_64"
	}
	if o.NICs == nil && !o.NoNetwork {
		o.NICs = []NIC{{}}
	}
	if o.NoNetwork {
		o.NICs = nil
	}
	if o.Boot.Kind == BootPXE && o.Boot.BootFile == "" {
		o.Boot.BootFile = "boot.ipxe"
	}
}

// ParseSize parses a size such as "512M", "10G", "1T" or "4096" (bytes).
// The suffixes are binary: K = 1024.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B")
	t = strings.TrimSuffix(t, "I") // accept GiB, MiB
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number with an optional K, M, G or T suffix, like 10G", s)
	}
	return n * mult, nil
}

// ParseDisk parses a disk spec of the form SIZE[:ssd|hdd|nvme|virtio], as in
// `gridnode run --disk 20G:ssd`. ssd and hdd attach the disk on virtio-scsi
// with the matching rotation rate, so the node sees the difference; nvme
// attaches an NVMe drive; plain SIZE (or virtio) is a virtio-blk disk.
func ParseDisk(spec string) (Disk, error) {
	size, kind, _ := strings.Cut(spec, ":")
	n, err := ParseSize(size)
	if err != nil {
		return Disk{}, fmt.Errorf("disk %q: %w", spec, err)
	}
	d := Disk{Size: n}
	switch strings.ToLower(kind) {
	case "", "virtio":
		d.Bus = BusVirtio
	case "ssd":
		d.Bus, d.RotationRate = BusSCSI, SSD
	case "hdd":
		d.Bus, d.RotationRate = BusSCSI, HDD
	case "nvme":
		d.Bus = BusNVMe
	default:
		return Disk{}, fmt.Errorf("disk %q: kind %q: want ssd, hdd, nvme or virtio", spec, kind)
	}
	return d, nil
}

// KernelBootDir boots the kernel-format output of `gridnode build` in dir:
// vmlinuz, initramfs.cpio.zst (or .gz, or uncompressed), and the command
// line in the file cmdline (optional). extra is appended to the command line.
func KernelBootDir(dir string, extra ...string) (Boot, error) {
	kernel := filepath.Join(dir, "vmlinuz")
	if _, err := os.Stat(kernel); err != nil {
		return Boot{}, fmt.Errorf("qemu: no kernel in %s: %w; run gridnode build (make image) first", dir, err)
	}
	var initrd string
	for _, name := range []string{"initramfs.cpio.zst", "initramfs.cpio.gz", "initramfs.cpio"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			initrd = filepath.Join(dir, name)
			break
		}
	}
	if initrd == "" {
		return Boot{}, fmt.Errorf("qemu: no initramfs.cpio.zst in %s; run gridnode build (make image) first", dir)
	}
	var cmdline []string
	b, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Boot{}, fmt.Errorf("qemu: %w", err)
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		cmdline = append(cmdline, s)
	}
	for _, e := range extra {
		if e = strings.TrimSpace(e); e != "" {
			cmdline = append(cmdline, e)
		}
	}
	return KernelBoot(kernel, initrd, strings.Join(cmdline, " ")), nil
}
