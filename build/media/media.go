// Package media holds what every boot-medium writer takes: the kernel, the
// initramfs and the command line the builder made, and the boot-loader files
// it took from Debian packages.
package media

import "time"

// Input is what a format writer turns into a boot medium.
type Input struct {
	Kernel  string // path to the kernel (bzImage with EFI stub)
	Initrd  string // path to the compressed initramfs
	Cmdline string // default kernel command line
	Version string // image version, used in file names and .osrel
	// Config is the farmer-editable gridnode.conf (key=value lines, keys as
	// the kernel command line's without "gridnode.") put on ISO and USB media.
	Config []byte
	// Epoch is SOURCE_DATE_EPOCH: every timestamp written uses it.
	Epoch time.Time

	// Boot-loader files, extracted by the builder from Debian packages.
	EFIStub string // systemd-boot-efi: linuxx64.efi.stub
	// SystemdBoot is systemd-boot-efi's systemd-bootx64.efi: the boot
	// menu of ISO and USB media, which picks a release slot.
	SystemdBoot string
	Isolinux    string // isolinux: isolinux.bin
	IsoHdpfx    string // isolinux: isohdpfx.bin (hybrid MBR)
	Ldlinux     string // syslinux-common: ldlinux.c32
	IPXEEFI     string // ipxe: ipxe.efi
	Undionly    string // ipxe: undionly.kpxe
}

// Debian paths of the boot-loader files, for tests and for the builder's
// extraction from the .deb packages.
const (
	DebEFIStub  = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
	DebSDBoot   = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
	DebIsolinux = "/usr/lib/ISOLINUX/isolinux.bin"
	DebIsoHdpfx = "/usr/lib/ISOLINUX/isohdpfx.bin"
	DebLdlinux  = "/usr/lib/syslinux/modules/bios/ldlinux.c32"
	DebIPXEEFI  = "/usr/lib/ipxe/ipxe.efi"
	DebUndionly = "/usr/lib/ipxe/undionly.kpxe"
)

// Label is the volume label of ISO and USB media; the node looks for it to
// find gridnode.conf.
const Label = "GRIDNODE"

// ConfigName is the farmer-editable configuration file at the medium's root.
const ConfigName = "gridnode.conf"
