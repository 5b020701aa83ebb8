package qemu

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

func (o *Options) validate() error {
	b := o.Boot
	switch b.Kind {
	case BootKernel:
		if b.Kernel == "" {
			return errors.New("qemu: no boot medium: set Options.Boot (KernelBoot, CDROMBoot, USBBoot, DiskBoot or PXEBoot)")
		}
		if err := mustExist("kernel", b.Kernel); err != nil {
			return err
		}
		if b.Initrd != "" {
			if err := mustExist("initrd", b.Initrd); err != nil {
				return err
			}
		}
	case BootCDROM, BootUSB, BootDisk:
		if b.Image == "" {
			return fmt.Errorf("qemu: %s boot: no image", b.Kind)
		}
		if err := mustExist(b.Kind.String()+" image", b.Image); err != nil {
			return err
		}
	case BootPXE:
		if len(o.NICs) == 0 {
			return errors.New("qemu: pxe boot: the VM has no NIC")
		}
		if o.NICs[0].Netdev != "" {
			return errors.New("qemu: pxe boot: the first NIC must use user networking (no Netdev)")
		}
		if b.TFTPDir != "" {
			if err := mustExist("tftp folder", b.TFTPDir); err != nil {
				return err
			}
		} else if !strings.Contains(b.BootFile, "://") {
			return fmt.Errorf("qemu: pxe boot: boot file %q without a TFTP folder: set Boot.TFTPDir, or make the boot file a URL like http://10.0.2.2:PORT/boot.ipxe", b.BootFile)
		}
	default:
		return fmt.Errorf("qemu: unknown boot kind %v", b.Kind)
	}
	if len(o.Forwards) > 0 && (len(o.NICs) == 0 || o.NICs[0].Netdev != "") {
		return errors.New("qemu: port forwards need the first NIC on user networking")
	}
	for i, d := range o.Disks {
		if d.RotationRate != 0 && !d.Bus.scsiHD() && d.Bus != BusAHCI {
			return fmt.Errorf("qemu: disk %d: a rotation rate needs a SCSI disk (%s, %s, %s, %s) or %s, not %s", i, BusSCSI, BusLSI, BusMegaSAS, BusUAS, BusAHCI, busOr(d.Bus))
		}
		if d.Bus == BusIDE && o.Machine != "pc" {
			return fmt.Errorf("qemu: disk %d: bus %s needs machine pc (q35 has no IDE controller; use %s)", i, BusIDE, BusAHCI)
		}
		if d.Path == "" && d.Size <= 0 {
			return fmt.Errorf("qemu: disk %d: set Path to an image or Size to create one", i)
		}
	}
	if o.Firmware == UEFI {
		if _, err := os.Stat(OVMFCode); err != nil {
			if _, err := os.Stat(OVMFFull); err != nil {
				return fmt.Errorf("qemu: UEFI firmware: neither %s nor %s exists; install Debian package ovmf", OVMFCode, OVMFFull)
			}
		}
	}
	return nil
}

func mustExist(what, path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("qemu: %s: %w", what, err)
	}
	return nil
}

func busOr(b Bus) Bus {
	if b == "" {
		return BusVirtio
	}
	return b
}

// argBuilder turns Options into a QEMU command line, creating what the
// command line refers to (disks, UEFI variable store, forward ports).
type argBuilder struct {
	o       *Options
	vm      *VM
	sockDir string

	args        []string
	sockets     []string // unix sockets QEMU connects to, in the order it does
	socketNames []string // what each socket is, for errors
	portNames   []string // serial lines captured, sockets[i] for portNames[i]
	qmpIndex    int      // index of the QMP socket in sockets, or -1

	ahci        bool // the AHCI controller was added
	ahciPort    int
	idePort     int
	controllers map[string]bool // SCSI and USB controllers added, by id
	drives      int
}

func (b *argBuilder) add(args ...string) { b.args = append(b.args, args...) }

func (b *argBuilder) socket(name string) string {
	path := filepath.Join(b.sockDir, strconv.Itoa(len(b.sockets))+".sock")
	b.sockets = append(b.sockets, path)
	b.socketNames = append(b.socketNames, name)
	return path
}

// esc escapes a value for QEMU's comma-separated option syntax.
func esc(s string) string { return strings.ReplaceAll(s, ",", ",,") }

func (b *argBuilder) build() ([]string, error) {
	o := b.o
	b.qmpIndex = -1
	b.add("-name", "gridnode", "-nodefaults", "-no-user-config", "-display", "none",
		"-machine", o.Machine)
	b.add(accelArgs(b.vm.Accel, o.CPU)...)
	b.add("-smp", strconv.Itoa(o.CPUs), "-m", strconv.Itoa(o.Memory))
	if !o.AllowReboot {
		b.add("-no-reboot")
	}
	if err := b.firmware(); err != nil {
		return nil, err
	}
	b.serials()
	if !o.NoRNG {
		// Entropy for the guest's CRNG (needs the virtio_rng driver).
		b.add("-device", "virtio-rng-pci")
	}
	if err := b.boot(); err != nil {
		return nil, err
	}
	for i, d := range o.Disks {
		if err := b.disk(i, d); err != nil {
			return nil, err
		}
	}
	if err := b.nics(); err != nil {
		return nil, err
	}
	b.add(o.ExtraArgs...)
	return b.args, nil
}

func (b *argBuilder) firmware() error {
	if b.o.Firmware != UEFI {
		return nil
	}
	if _, err := os.Stat(OVMFCode); err == nil {
		b.add("-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+esc(OVMFCode))
		if _, err := os.Stat(OVMFVars); err == nil {
			// Each VM gets its own variable store, so boot entries one
			// VM writes do not leak into the next.
			vars := filepath.Join(b.o.Dir, "OVMF_VARS.fd")
			if err := copyFile(OVMFVars, vars); err != nil {
				return fmt.Errorf("qemu: UEFI variable store: %w", err)
			}
			b.add("-drive", "if=pflash,format=raw,unit=1,file="+esc(vars))
		}
		return nil
	}
	b.add("-bios", OVMFFull)
	return nil
}

func (b *argBuilder) serials() {
	o := b.o
	if o.Interactive {
		// The console multiplexed with the monitor on the terminal:
		// Ctrl-A X quits, Ctrl-C goes to the guest.
		b.add("-chardev", "stdio,id=ser0,mux=on,signal=off,logfile="+esc(b.vm.LogPath),
			"-serial", "chardev:ser0", "-mon", "chardev=ser0,mode=readline")
		for i := 1; i <= o.ExtraSerials; i++ {
			b.add("-serial", "pty")
		}
	} else {
		for i := 0; i <= o.ExtraSerials; i++ {
			name := "ttyS" + strconv.Itoa(i)
			path := b.socket(name)
			b.portNames = append(b.portNames, name)
			id := "ser" + strconv.Itoa(i)
			b.add("-chardev", "socket,id="+id+",path="+esc(path)+",server=off",
				"-serial", "chardev:"+id)
		}
	}
	b.qmpIndex = len(b.sockets)
	path := b.socket("qmp")
	b.add("-chardev", "socket,id=qmp,path="+esc(path)+",server=off", "-mon", "chardev=qmp,mode=control")
}

func (b *argBuilder) boot() error {
	bt := b.o.Boot
	switch bt.Kind {
	case BootKernel:
		b.add("-kernel", bt.Kernel)
		if bt.Initrd != "" {
			b.add("-initrd", bt.Initrd)
		}
		cmdline := bt.Cmdline
		// Under TCG on a busy host the kernel's IO-APIC timer check can
		// fail and panic ("IO-APIC + timer doesn't work!"); in a VM the
		// check proves nothing.
		if b.vm.Accel == "tcg" && !strings.Contains(cmdline, "no_timer_check") {
			cmdline = strings.TrimSpace(cmdline + " no_timer_check")
		}
		b.add("-append", cmdline)
	case BootCDROM:
		id := b.drive(bt.Image, "raw", "media=cdrom,readonly=on")
		b.add("-device", "ide-cd,drive="+id+",bus="+b.ahciBus()+",bootindex=0")
	case BootUSB:
		b.controller("xhci", "qemu-xhci")
		id := b.drive(bt.Image, bt.Format, driveFlags(bt.ReadOnly, bt.Snapshot))
		b.add("-device", "usb-storage,bus=xhci.0,drive="+id+",removable=on,bootindex=0")
	case BootDisk:
		return b.attach(Disk{Path: bt.Image, Format: bt.Format, Bus: bt.DiskBus, ReadOnly: bt.ReadOnly, Snapshot: bt.Snapshot}, ",bootindex=0")
	case BootPXE:
		// Set up in nics.
	}
	return nil
}

func driveFlags(readOnly, snapshot bool) string {
	switch {
	case readOnly:
		return "readonly=on"
	case snapshot:
		return "snapshot=on"
	}
	return ""
}

// drive adds a -drive without a device and returns its id.
func (b *argBuilder) drive(path, format, flags string) string {
	if format == "" {
		format = "raw"
	}
	id := "drive" + strconv.Itoa(b.drives)
	b.drives++
	v := "if=none,id=" + id + ",format=" + format + ",file=" + esc(path)
	if flags != "" {
		v += "," + flags
	}
	b.add("-drive", v)
	return id
}

func (b *argBuilder) ahciBus() string {
	if !b.ahci {
		b.add("-device", "ahci,id=ahci0")
		b.ahci = true
	}
	bus := "ahci0." + strconv.Itoa(b.ahciPort)
	b.ahciPort++
	return bus
}

func (b *argBuilder) disk(i int, d Disk) error {
	if d.Path == "" {
		d.Path = filepath.Join(b.o.Dir, "disk"+strconv.Itoa(i)+".img")
	}
	if _, err := os.Stat(d.Path); errors.Is(err, os.ErrNotExist) {
		if err := createDisk(d); err != nil {
			return fmt.Errorf("qemu: disk %d: %w", i, err)
		}
	}
	if d.Bus == BusNVMe && d.Serial == "" {
		d.Serial = "gridnode" + strconv.Itoa(i)
	}
	return b.attach(d, "")
}

// attach adds a drive and its device on d.Bus; extra is appended to the device.
func (b *argBuilder) attach(d Disk, extra string) error {
	id := b.drive(d.Path, d.Format, driveFlags(d.ReadOnly, d.Snapshot))
	var dev string
	switch busOr(d.Bus) {
	case BusVirtio:
		dev = "virtio-blk-pci,drive=" + id
	case BusSCSI:
		dev = "scsi-hd,bus=" + b.controller("scsi0", "virtio-scsi-pci") + ".0,drive=" + id
	case BusLSI:
		dev = "scsi-hd,bus=" + b.controller("lsi0", "lsi53c895a") + ".0,drive=" + id
	case BusMegaSAS:
		dev = "scsi-hd,bus=" + b.controller("megasas0", "megasas") + ".0,drive=" + id
	case BusUSB:
		dev = "usb-storage,bus=" + b.controller("xhci", "qemu-xhci") + ".0,drive=" + id
	case BusUAS:
		// One UAS device per disk: each is a USB device with one LUN.
		uas := "uas-" + id
		b.add("-device", "usb-uas,id="+uas+",bus="+b.controller("xhci", "qemu-xhci")+".0")
		dev = "scsi-hd,bus=" + uas + ".0,drive=" + id
	case BusAHCI:
		dev = "ide-hd,bus=" + b.ahciBus() + ",drive=" + id
	case BusIDE:
		// PIIX's two channels, master first: ide.0 unit 0, ide.1 unit 0, ...
		dev = fmt.Sprintf("ide-hd,bus=ide.%d,unit=%d,drive=%s", b.idePort%2, b.idePort/2, id)
		b.idePort++
	case BusNVMe:
		if d.Serial == "" {
			d.Serial = "gridnode-" + id
		}
		dev = "nvme,drive=" + id
	default:
		return fmt.Errorf("qemu: disk %s: unknown bus %q: want one of %v", d.Path, d.Bus, Buses)
	}
	if d.RotationRate != 0 {
		dev += ",rotation_rate=" + strconv.Itoa(d.RotationRate)
	}
	if d.Serial != "" {
		dev += ",serial=" + esc(d.Serial)
	}
	b.add("-device", dev+extra)
	return nil
}

// controller adds the controller device of the given id and type once,
// and returns its id.
func (b *argBuilder) controller(id, device string) string {
	if b.controllers == nil {
		b.controllers = map[string]bool{}
	}
	if !b.controllers[id] {
		b.add("-device", device+",id="+id)
		b.controllers[id] = true
	}
	return id
}

func createDisk(d Disk) error {
	if d.Size <= 0 {
		return fmt.Errorf("%s does not exist and has no Size to create it with", d.Path)
	}
	if d.Format == "qcow2" {
		out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", d.Path, strconv.FormatInt(d.Size, 10)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("qemu-img create %s: %v: %s", d.Path, err, out)
		}
		return nil
	}
	f, err := os.OpenFile(d.Path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := f.Truncate(d.Size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (b *argBuilder) nics() error {
	o := b.o
	for i, n := range o.NICs {
		id := "net" + strconv.Itoa(i)
		netdev := n.Netdev
		if netdev == "" {
			netdev = "user"
			if o.Restrict {
				netdev += ",restrict=on"
			}
			if i == 0 {
				for _, f := range o.Forwards {
					host, err := b.hostPort(f)
					if err != nil {
						return err
					}
					proto := "tcp"
					if f.UDP {
						proto = "udp"
					}
					netdev += fmt.Sprintf(",hostfwd=%s:127.0.0.1:%d-:%d", proto, host, f.Guest)
				}
				if o.Boot.Kind == BootPXE {
					if o.Boot.TFTPDir != "" {
						dir, err := filepath.Abs(o.Boot.TFTPDir)
						if err != nil {
							return err
						}
						netdev += ",tftp=" + esc(dir)
					}
					netdev += ",bootfile=" + esc(o.Boot.BootFile)
				}
			}
		}
		b.add("-netdev", netdev+",id="+id)
		model := n.Model
		if model == "" {
			model = "virtio-net-pci"
		}
		dev := model + ",netdev=" + id
		if n.MAC != "" {
			dev += ",mac=" + n.MAC
		}
		if i == 0 && o.Boot.Kind == BootPXE {
			dev += ",bootindex=0"
		} else {
			// No iPXE option ROM: it only slows down a boot that does
			// not use it.
			dev += ",romfile="
		}
		b.add("-device", dev)
	}
	return nil
}

// hostPort returns f.Host, or a free port on 127.0.0.1 when it is 0, and
// records it for VM.HostPort. A port found free can be taken by another
// process before QEMU binds it; QEMU then fails to start with a clear error.
func (b *argBuilder) hostPort(f Forward) (int, error) {
	port := f.Host
	if port == 0 {
		var addr net.Addr
		if f.UDP {
			c, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				return 0, fmt.Errorf("qemu: finding a free UDP port: %w", err)
			}
			addr = c.LocalAddr()
			c.Close()
		} else {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return 0, fmt.Errorf("qemu: finding a free TCP port: %w", err)
			}
			addr = l.Addr()
			l.Close()
		}
		_, p, _ := net.SplitHostPort(addr.String())
		port, _ = strconv.Atoi(p)
	}
	b.vm.fwd[Forward{Guest: f.Guest, UDP: f.UDP}] = port
	return port, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
