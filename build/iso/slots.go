package iso

import (
	"fmt"

	"github.com/gridnode/gridnode/build/fat"
	"github.com/gridnode/gridnode/build/uki"
	"github.com/gridnode/gridnode/upgrade/layout"
)

// slotFiles returns isolinux.cfg and the FAT files of the release slots
// (upgrade/layout): slot a holds the UKI u and is the default of both boot
// paths; slot b, on media with two, is preallocated and empty.
func slotFiles(first layout.Slot, slots []string, u *uki.Image, slotSize int64) (cfg []byte, files []fat.File, err error) {
	cfg = layout.IsolinuxHeader(first.Name)
	files = []fat.File{{Path: layout.LoaderConf, Data: layout.LoaderConfText(first.Name)}}
	for _, s := range layout.Slots {
		sl := layout.Slot{Name: s}
		if s == first.Name {
			sl = first
		}
		region, err := layout.IsolinuxSlot(sl)
		if err != nil {
			return nil, nil, err
		}
		cfg = append(cfg, region...)
		if s == first.Name || len(slots) == 2 {
			entry, err := layout.EntryText(sl)
			if err != nil {
				return nil, nil, err
			}
			files = append(files, fat.File{Path: layout.EntryFile(s), Data: entry})
		}
	}
	// The slots last, one after the other: contiguous, as the medium
	// writer and the ISO 9660 records need them.
	for _, s := range slots {
		f := fat.File{Path: layout.SlotFile(s), ZeroTail: slotSize}
		if s == first.Name {
			f = fat.File{Path: layout.SlotFile(s), Source: u, Size: u.Size(), ZeroTail: slotSize - u.Size()}
		}
		files = append(files, f)
	}
	return cfg, files, nil
}

// slotRecords are the ISO 9660 records of each slot's kernel and initramfs:
// extents inside the slot's UKI in the FAT image at fatLBA, or an empty file
// at the slot's start for an empty slot.
func slotRecords(fs *fat.Image, fatLBA int64, slots []string, u *uki.Image) ([]*file, error) {
	var out []*file
	for i, s := range slots {
		slotOff, _, ok := fs.Offset(layout.SlotFile(s))
		if !ok {
			return nil, fmt.Errorf("iso: slot %s not in the FAT image (bug)", s)
		}
		for _, sec := range []struct{ section, record string }{
			{layout.SectionLinux, layout.LinuxRecord(s)}, {layout.SectionInitrd, layout.InitrdRecord(s)},
		} {
			at, size := fatLBA*block+slotOff, int64(0)
			if i == 0 {
				off, n, _ := u.SectionOffset(sec.section)
				at, size = at+off, n
			}
			if at%block != 0 {
				return nil, fmt.Errorf("iso: %s of slot %s at byte %d is not block-aligned (bug)", sec.section, s, at)
			}
			out = append(out, &file{dir: "BOOT", name: sec.record[len("BOOT/"):] + ".", lba: at / block, size: size})
		}
	}
	return out, nil
}
