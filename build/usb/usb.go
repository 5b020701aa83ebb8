// Package usb writes gridnode's USB disk image (gridnode-VERSION.img): a GPT
// disk whose one partition (FAT16, label GRIDNODE) holds systemd-boot as
// EFI/BOOT/BOOTX64.EFI, two release slots (upgrade/layout: this release in
// slot a, slot b preallocated for the next one, which the node writes after
// a successful upgrade) and the farmer-editable gridnode.conf.
//
// The partition is typed Microsoft basic data, not EFI system partition:
// Windows gives ESPs no drive letter and macOS does not mount them, and the
// farmer must be able to edit gridnode.conf on any computer. UEFI firmware
// boots the removable-media path EFI/BOOT/BOOTX64.EFI from any FAT
// partition (as Windows install sticks made by Rufus rely on); set
// iso.Options.BasicData to false for a typed ESP.
//
// BIOS boot uses the isohybrid approach: the protective MBR carries
// isohdpfx.bin's code, which loads isolinux.bin from an ISO 9660 file system
// that starts at the disk's first sector (GPT and ISO 9660 share the first
// 32 KiB, as in xorriso's hybrid images); isolinux then loads the kernel and
// initramfs from it. That needs no sector map patched into a FAT file system
// (syslinux's installer) and no ldlinux.sys, which Debian ships only inside
// the syslinux binary. The ISO 9660 volume is labelled GRIDNODE_USB and has
// no gridnode.conf, so the ESP's copy is the one the node reads.
package usb

import (
	"path/filepath"

	"github.com/gridnode/gridnode/build/iso"
	"github.com/gridnode/gridnode/build/media"
)

// VolumeID is the label of the image's ISO 9660 (BIOS boot) volume.
const VolumeID = "GRIDNODE_USB"

// FreeSpace is left free in the ESP for the farmer's own files.
const FreeSpace = 1 << 20

// Write writes the USB disk image of in to path (gridnode-VERSION.img).
func Write(in media.Input, path string) error {
	return iso.WriteImage(in, path, iso.Options{Medium: "usb", GPT: true, BasicData: true, VolumeID: VolumeID, FATFree: FreeSpace, Slots: 2})
}

// Format writes DIR/gridnode-VERSION.img; it has the signature of the
// builder's format writers.
func Format(in media.Input, dir string) ([]string, error) {
	p := filepath.Join(dir, "gridnode-"+in.Version+".img")
	if err := Write(in, p); err != nil {
		return nil, err
	}
	return []string{p}, nil
}
