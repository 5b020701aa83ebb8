// Package layout is the contract between the image builder (build/iso,
// build/usb, build/uki) and the node's medium writer (upgrade/medium) on
// how a boot medium holds releases: two release slots ("A/B") in the FAT
// file system, and the small files that say which one boots.
//
// The FAT file system (label GRIDNODE) holds:
//
//	EFI/BOOT/BOOTX64.EFI          systemd-boot
//	loader/loader.conf            timeout 0, default gridnode-X.conf (one sector)
//	loader/entries/gridnode-a.conf   slot a: version, efi /gridnode/slot-a.efi, options CMDLINE
//	loader/entries/gridnode-b.conf   slot b (comments only while empty: systemd-boot skips it)
//	gridnode/slot-a.efi           SlotSize bytes: a release's UKI, then zeros
//	gridnode/slot-b.efi           the same, preallocated and contiguous
//	gridnode.conf                 the farmer's settings
//
// The ISO 9660 file system that BIOS boots through isolinux holds
// /isolinux/isolinux.cfg: a first sector that names the default label, then
// one fixed-size region per slot with its label, and /boot/linux_X and
// /boot/initrd_X, whose records point at the .linux and .initrd sections of
// slot X's UKI inside the FAT file system (one copy of each release).
//
// Switching the default is a rewrite of one sector in each of two files,
// after the new slot's bytes were written and checked; a medium whose
// loader.conf and isolinux.cfg disagree after a power cut boots a tested
// release on either path.
//
// A medium with one slot (the hybrid ISO, sized for its one release) or
// none (written before slots existed) cannot take a release: the node
// upgrades by kexec only, until the stick is rewritten.
package layout

import (
	"bytes"
	"fmt"
	"strings"
)

// Block is the ISO 9660 block size: the UKI's sections are aligned to it so
// ISO 9660 records can point into a slot.
const Block = 2048

// The UKI sections (systemd-stub's names).
const (
	SectionOSRel   = ".osrel"
	SectionCmdline = ".cmdline"
	SectionInitrd  = ".initrd"
	SectionLinux   = ".linux"
)

// SlotSize is the room of one slot: 64 MiB. Today's UKI of images/node.yaml
// is 18 MiB (kernel 8, initramfs 10, BENCHMARKS.md); 64 MiB leaves room for
// 3.5 times that (firmware packages for more NICs and GPUs grow the
// initramfs most), and two slots keep the USB image at about 130 MiB, far
// below the smallest stick sold. A release that outgrows it is refused with
// a message to rewrite the stick with a newer image.
const SlotSize = 64 << 20

// Slots are the slot names, in order.
var Slots = []string{"a", "b"}

// Other returns the slot that is not s.
func Other(s string) string {
	if s == "a" {
		return "b"
	}
	return "a"
}

// FAT paths.
const (
	BootLoader = "EFI/BOOT/BOOTX64.EFI"
	LoaderConf = "loader/loader.conf"
)

// UKIName is the file name of a release's UKI, in a release folder and
// artifact (build/uki writes it): what a slot holds byte for byte.
func UKIName(version string) string { return "gridnode-" + version + ".efi" }

// SlotFile is the FAT path of slot s's UKI.
func SlotFile(s string) string { return "gridnode/slot-" + s + ".efi" }

// EntryFile is the FAT path of slot s's systemd-boot entry.
func EntryFile(s string) string { return "loader/entries/" + entryID(s) }

func entryID(s string) string { return "gridnode-" + s + ".conf" }

// ISO 9660 paths (as isolinux and the records name them).
const IsolinuxCfg = "ISOLINUX/ISOLINUX.CFG"

// LinuxRecord and InitrdRecord are the ISO 9660 paths of slot s's kernel and
// initramfs.
func LinuxRecord(s string) string  { return "BOOT/LINUX_" + strings.ToUpper(s) }
func InitrdRecord(s string) string { return "BOOT/INITRD_" + strings.ToUpper(s) }

// Fixed sizes of the rewritable files: the first sector of each holds what
// a switch changes, so a switch is one sector write each.
const (
	Sector         = 512
	LoaderConfSize = Sector
	EntrySize      = 4096
	IsolinuxRegion = 4096                      // per slot
	IsolinuxSize   = Sector + 2*IsolinuxRegion // header, then a and b
)

// pad pads text to size with comment lines ('#'), as gridnode.conf is.
func pad(what string, text []byte, size int) ([]byte, error) {
	if len(text) > size {
		return nil, fmt.Errorf("%s: %d bytes, more than its %d on the medium (a command line too long?)", what, len(text), size)
	}
	b := append([]byte(nil), text...)
	for len(b) < size {
		n := min(size-len(b), 64)
		b = append(b, bytes.Repeat([]byte("#"), n-1)...)
		b = append(b, '\n')
	}
	return b, nil
}

// LoaderConfText is loader/loader.conf naming slot def. timeout 0: the menu
// shows only while a key is pressed at boot (the farmer's way back to the
// other slot).
func LoaderConfText(def string) []byte {
	b, _ := pad(LoaderConf, []byte("timeout 0\ndefault "+entryID(def)+"\n"), LoaderConfSize)
	return b
}

// Slot is what a slot holds, as its boot entries say.
type Slot struct {
	Name    string // a or b
	Version string // empty: the slot is empty
	Cmdline string // the kernel command line both boot paths give it
}

// EntryText is slot s's systemd-boot entry; an empty slot's is comments
// only.
func EntryText(s Slot) ([]byte, error) {
	var text string
	if s.Version != "" {
		text = fmt.Sprintf("title gridnode %s (slot %s)\nversion %s\nefi /%s\noptions %s\n", s.Version, s.Name, s.Version, SlotFile(s.Name), s.Cmdline)
	}
	return pad(EntryFile(s.Name), []byte(text), EntrySize)
}

// IsolinuxHeader is the first sector of isolinux.cfg, naming slot def.
func IsolinuxHeader(def string) []byte {
	b, _ := pad(IsolinuxCfg, []byte("default "+def+"\nprompt 0\ntimeout 0\n"), Sector)
	return b
}

// IsolinuxSlot is slot s's region of isolinux.cfg; an empty slot's is
// comments only.
func IsolinuxSlot(s Slot) ([]byte, error) {
	var text string
	if s.Version != "" {
		text = fmt.Sprintf("label %s\n  menu label gridnode %s\n  kernel /%s\n  initrd /%s\n  append %s\n",
			s.Name, s.Version, strings.ToLower(LinuxRecord(s.Name)), strings.ToLower(InitrdRecord(s.Name)), s.Cmdline)
	}
	return pad(IsolinuxCfg+" slot "+s.Name, []byte(text), IsolinuxRegion)
}

// IsolinuxRegionOffset is where slot s's region starts in isolinux.cfg.
func IsolinuxRegionOffset(s string) int64 {
	if s == "a" {
		return Sector
	}
	return Sector + IsolinuxRegion
}

// lines yields the meaningful lines of a padded file: trimmed, comments and
// blanks dropped.
func lines(b []byte) [][2]string {
	var out [][2]string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		k, v, _ := strings.Cut(l, " ")
		out = append(out, [2]string{k, strings.TrimSpace(v)})
	}
	return out
}

// ParseLoaderConf returns the slot loader.conf names as default.
func ParseLoaderConf(b []byte) (string, error) {
	for _, kv := range lines(b) {
		if kv[0] == "default" {
			for _, s := range Slots {
				if kv[1] == entryID(s) {
					return s, nil
				}
			}
			return "", fmt.Errorf("%s: default %q is no gridnode slot", LoaderConf, kv[1])
		}
	}
	return "", fmt.Errorf("%s: no default line", LoaderConf)
}

// ParseEntry reads slot s's entry; a slot without one is empty.
func ParseEntry(s string, b []byte) (Slot, error) {
	out := Slot{Name: s}
	efi := ""
	for _, kv := range lines(b) {
		switch kv[0] {
		case "version":
			out.Version = kv[1]
		case "options":
			out.Cmdline = kv[1]
		case "efi":
			efi = kv[1]
		}
	}
	if out.Version != "" && efi != "/"+SlotFile(s) {
		return out, fmt.Errorf("%s: efi %q, want /%s", EntryFile(s), efi, SlotFile(s))
	}
	return out, nil
}

// ParseIsolinux returns the default label and each slot's region of an
// isolinux.cfg written by IsolinuxHeader and IsolinuxSlot.
func ParseIsolinux(b []byte) (def string, slots map[string]Slot, err error) {
	if len(b) != IsolinuxSize {
		return "", nil, fmt.Errorf("%s: %d bytes, want %d (not a slotted medium)", IsolinuxCfg, len(b), IsolinuxSize)
	}
	for _, kv := range lines(b[:Sector]) {
		if kv[0] == "default" {
			def = kv[1]
		}
	}
	if def != "a" && def != "b" {
		return "", nil, fmt.Errorf("%s: default %q is no gridnode slot", IsolinuxCfg, def)
	}
	slots = map[string]Slot{}
	for _, s := range Slots {
		off := IsolinuxRegionOffset(s)
		sl := Slot{Name: s}
		for _, kv := range lines(b[off : off+IsolinuxRegion]) {
			switch kv[0] {
			case "label":
				if kv[1] != s {
					return "", nil, fmt.Errorf("%s: region of slot %s holds label %q", IsolinuxCfg, s, kv[1])
				}
			case "menu":
				if v, ok := strings.CutPrefix(kv[1], "label gridnode "); ok {
					sl.Version = v
				}
			case "append":
				sl.Cmdline = kv[1]
			}
		}
		slots[s] = sl
	}
	return def, slots, nil
}

// WithBoot returns cmdline with gridnode.boot set to medium (iso, usb),
// replacing any gridnode.boot already there: the boot entries of a slot
// give the kernel its UKI's command line with the medium's tag.
func WithBoot(cmdline, medium string) string {
	var out []string
	for _, f := range strings.Fields(cmdline) {
		if strings.HasPrefix(f, "gridnode.boot=") {
			continue
		}
		out = append(out, f)
	}
	return strings.Join(append(out, "gridnode.boot="+medium), " ")
}
