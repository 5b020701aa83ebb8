// Package iso writes gridnode's hybrid boot image: one ISO 9660 file that
// boots as a CD and, written to a USB stick, as a disk, on BIOS and on UEFI.
//
//   - BIOS, CD: El Torito no-emulation entry → isolinux.bin (with its boot
//     info table) → isolinux.cfg's default slot: /boot/linux_a and
//     /boot/initrd_a, records that point into slot a's UKI.
//   - BIOS, disk: isohybrid MBR code (isohdpfx.bin) → isolinux.bin, whose LBA
//     is at MBR offset 432 → the same ISO 9660 file system, read as a disk.
//   - UEFI, CD: El Torito EFI entry → a FAT image holding systemd-boot as
//     EFI/BOOT/BOOTX64.EFI, which boots loader.conf's default slot (the UKI
//     in gridnode/slot-a.efi).
//   - UEFI, disk: the same FAT image as MBR partition 2 (type 0xEF) or, for
//     USB images, as the GPT's EFI system partition.
//
// The release slots and the files that name the default one are
// upgrade/layout's: the hybrid ISO has one slot, sized for its release; the
// USB image two. gridnode.conf sits at the ISO root and in the FAT image root, padded to
// mediaconf.Reserved bytes so `gridnode image set` rewrites it in place.
//
// The ISO 9660 writer is ours (level 2 names, no Rock Ridge or Joliet): it is
// little code, and every byte, timestamps included, follows from the inputs.
package iso

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gridnode/gridnode/build/fat"
	"github.com/gridnode/gridnode/build/media"
	"github.com/gridnode/gridnode/build/mediaconf"
	"github.com/gridnode/gridnode/build/uki"
	"github.com/gridnode/gridnode/upgrade/layout"
)

// Options select between the hybrid ISO and the USB disk image, which share
// this layout.
type Options struct {
	// Medium is the value of gridnode.boot on the command lines: iso or usb.
	Medium string
	// GPT writes a GPT (with the FAT image as its partition) and a
	// protective MBR instead of the isohybrid MBR partition table.
	GPT bool
	// BasicData types the GPT partition as Microsoft basic data instead of
	// EFI system partition: Windows and macOS then mount it (they hide
	// ESPs), and UEFI firmware still boots EFI/BOOT/BOOTX64.EFI from it on
	// removable media.
	BasicData bool
	// VolumeID is the ISO 9660 volume label.
	VolumeID string
	// ISOConfig puts gridnode.conf at the ISO 9660 root too (the FAT copy
	// is always written).
	ISOConfig bool
	// FATFree is free room left in the FAT file system, in bytes.
	FATFree int64
	// Slots is 2 for a medium that takes upgrades (two release slots of
	// layout.SlotSize), else one slot sized for this release.
	Slots int
}

const (
	block     = 2048
	mib       = 1 << 20
	sysBlocks = 16 // system area: MBR, GPT
)

// Write writes the hybrid ISO of in to path (gridnode-VERSION.iso).
func Write(in media.Input, path string) error {
	return WriteImage(in, path, Options{Medium: "iso", VolumeID: media.Label, ISOConfig: true})
}

type file struct {
	dir, name string // ISO identifiers: "BOOT", "VMLINUZ."
	data      []byte
	size      int64
	lba       int64
}

type dir struct {
	name    string
	lba     int64
	size    int64
	records []record
}

type record struct {
	id    string
	lba   int64
	size  int64
	isDir bool
}

// WriteImage writes in as a hybrid image laid out per opt.
func WriteImage(in media.Input, path string, opt Options) (err error) {
	seed, err := inputHash(in, opt)
	if err != nil {
		return err
	}
	conf, err := mediaconf.Pad(in.Config, mediaconf.Reserved)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	cmdline := layout.WithBoot(in.Cmdline, opt.Medium)
	// The slot holds the release's UKI as released (its own command line,
	// sections on 2048-byte blocks): the boot entries add gridnode.boot, and
	// the ISO 9660 records of the kernel and initramfs point into it, so
	// there is one copy.
	u, err := uki.NewAligned(in, in.Cmdline, block)
	if err != nil {
		return err
	}
	slots := layout.Slots[:1]
	slotSize := alignUp(u.Size(), block)
	if opt.Slots == 2 {
		slots = layout.Slots
		slotSize = layout.SlotSize
	}
	if u.Size() > slotSize {
		return fmt.Errorf("iso: the UKI is %d bytes, more than a release slot's %d (layout.SlotSize); shrink the image (drivers, firmware)", u.Size(), slotSize)
	}
	isolinux, err := os.ReadFile(in.Isolinux)
	if err != nil {
		return fmt.Errorf("iso: isolinux.bin: %w (install isolinux)", err)
	}
	if len(isolinux) < 64+4 || binary.LittleEndian.Uint32(isolinux[0x40:]) != 0x7078c0fb && binary.LittleEndian.Uint32(isolinux[0x40:]) != 0x7078a0fb {
		return fmt.Errorf("iso: %s is not a hybrid-capable isolinux.bin", in.Isolinux)
	}
	mbrCode, err := os.ReadFile(in.IsoHdpfx)
	if err != nil {
		return fmt.Errorf("iso: isohdpfx.bin: %w (install isolinux)", err)
	}
	if len(mbrCode) < 432 {
		return fmt.Errorf("iso: %s: %d bytes, want 432 of MBR code", in.IsoHdpfx, len(mbrCode))
	}
	ldlinux, err := os.ReadFile(in.Ldlinux)
	if err != nil {
		return fmt.Errorf("iso: ldlinux.c32: %w (install syslinux-common)", err)
	}
	sdboot, err := os.ReadFile(in.SystemdBoot)
	if err != nil {
		return fmt.Errorf("iso: systemd-bootx64.efi: %w (install systemd-boot-efi)", err)
	}

	first := layout.Slot{Name: "a", Version: in.Version, Cmdline: cmdline}
	cfg, fatSlotFiles, err := slotFiles(first, slots, u, slotSize)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	files := []*file{
		{dir: "ISOLINUX", name: "ISOLINUX.BIN", data: isolinux},
		{dir: "ISOLINUX", name: "LDLINUX.C32", data: ldlinux},
		{dir: "ISOLINUX", name: "ISOLINUX.CFG", data: cfg},
	}
	if opt.ISOConfig {
		files = append(files, &file{name: strings.ToUpper(media.ConfigName), data: conf})
	}
	for _, f := range files {
		if f.data != nil {
			f.size = int64(len(f.data))
		}
	}

	// Fixed blocks: 16 PVD, 17 boot record, 18 terminator, 19 L path
	// table, 20 M path table, then directories, boot catalog, files, FAT.
	dirNames := []string{"", "BOOT", "ISOLINUX"}
	dirs := map[string]*dir{}
	next := int64(21)
	for _, d := range dirNames {
		dirs[d] = &dir{name: d, lba: next, size: block}
		next++
	}
	catalog := next
	next++
	for _, f := range files {
		f.lba = next
		next += ceilDiv(f.size, block)
	}
	fatLBA := next
	fatOpt := fat.Options{Label: media.Label, VolumeID: binary.LittleEndian.Uint32(seed[0:]), Time: in.Epoch, Free: opt.FATFree, HiddenSectors: uint32(fatLBA * 4), Align: block}
	fs, err := fat.New(append([]fat.File{
		{Path: media.ConfigName, Data: conf},
		{Path: layout.BootLoader, Data: sdboot},
	}, fatSlotFiles...), fatOpt)
	if err != nil {
		return fmt.Errorf("iso: EFI image: %w", err)
	}
	fatSize := alignUp(fs.Size(), block)
	files = append(files, &file{dir: "BOOT", name: "EFI.IMG", lba: fatLBA, size: fs.Size()})
	recs, err := slotRecords(fs, fatLBA, slots, u)
	if err != nil {
		return err
	}
	files = append(files, recs...)
	end := fatLBA*block + fatSize
	total := alignUp(end, mib)
	if opt.GPT {
		total = alignUp(end+gptBytes, mib)
	}
	volBlocks := total / block

	// Directory records.
	for _, f := range files {
		d := dirs[f.dir]
		d.records = append(d.records, record{id: f.name + ";1", lba: f.lba, size: f.size})
	}
	root := dirs[""]
	for _, d := range dirNames[1:] {
		root.records = append(root.records, record{id: d, lba: dirs[d].lba, size: block, isDir: true})
	}
	for _, d := range dirs {
		sort.Slice(d.records, func(i, j int) bool { return d.records[i].id < d.records[j].id })
	}

	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("iso: writing %s: %w", path, cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	if err := out.Truncate(total); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	w := func(b []byte, off int64) {
		if err == nil {
			_, err = out.WriteAt(b, off)
		}
	}
	if in.Epoch.Before(time.Unix(0, 0)) {
		in.Epoch = time.Unix(0, 0) // unset: ISO 9660 dates start in 1900, keep it sane
	}
	date := isoDate(in.Epoch)
	// Path tables (root first, then its subdirectories in name order).
	lpt, mpt := pathTables(dirNames, dirs)
	w(pvd(opt.VolumeID, volBlocks, len(lpt), root, date, in.Epoch), 16*block)
	w(bootRecord(catalog), 17*block)
	w(terminator(), 18*block)
	w(lpt, 19*block)
	w(mpt, 20*block)
	for _, name := range dirNames {
		d := dirs[name]
		w(dirData(d, root, date), d.lba*block) // the root is every directory's parent
	}
	isolinuxFile := files[0]
	fatCount := fs.Size() / 512
	if fatCount > 0xFFFF {
		// Too large for the 16-bit count: 0 tells firmware to use the rest of
		// the volume, which the FAT image ends.
		fatCount = 0
	}
	w(bootCatalog(isolinuxFile.lba, fatLBA, uint16(fatCount)), catalog*block)
	patchBootInfo(isolinuxFile.data, isolinuxFile.lba)
	for _, f := range files {
		if err != nil {
			break
		}
		if f.data != nil {
			w(f.data, f.lba*block)
		}
	}
	if err != nil {
		return fmt.Errorf("iso: writing %s: %w", path, err)
	}
	if err := fs.WriteTo(out, fatLBA*block); err != nil {
		return fmt.Errorf("iso: writing %s: %w", path, err)
	}
	mbr := hybridMBR(mbrCode, isolinuxFile.lba, seed)
	if opt.GPT {
		protective(mbr, total/512)
		typ, name := espType, "EFI system partition"
		if opt.BasicData {
			typ, name = basicDataType, media.Label
		}
		gpt, gerr := newGPT(seed, total/512, fatLBA*4, fatLBA*4+fs.Size()/512-1, typ, name)
		if gerr != nil {
			return gerr
		}
		w(gpt.primary, 512)
		w(gpt.backup, total-gptBytes)
	} else {
		partition(mbr[446:], 0x80, 0x00, 0, total/512)
		partition(mbr[462:], 0x00, 0xEF, fatLBA*4, fs.Size()/512)
	}
	w(mbr, 0)
	if err != nil {
		return fmt.Errorf("iso: writing %s: %w", path, err)
	}
	return nil
}

// inputHash seeds volume ids, disk signatures and GUIDs: same inputs, same ids.
func inputHash(in media.Input, opt Options) ([32]byte, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q %d %+v\n", in.Version, in.Cmdline, in.Config, in.Epoch.Unix(), opt)
	for _, p := range []string{in.Kernel, in.Initrd, in.EFIStub, in.SystemdBoot, in.Isolinux, in.IsoHdpfx, in.Ldlinux} {
		f, err := os.Open(p)
		if err != nil {
			return [32]byte{}, fmt.Errorf("iso: %w", err)
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return [32]byte{}, fmt.Errorf("iso: reading %s: %w", p, err)
		}
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s, nil
}

// isoDate is a directory record date: years since 1900, month, day, hour,
// minute, second, GMT offset.
func isoDate(t time.Time) []byte {
	t = t.UTC()
	return []byte{byte(t.Year() - 1900), byte(t.Month()), byte(t.Day()), byte(t.Hour()), byte(t.Minute()), byte(t.Second()), 0}
}

// longDate is a volume descriptor date: "YYYYMMDDHHMMSScc" and GMT offset.
func longDate(t time.Time) []byte {
	return append([]byte(t.UTC().Format("20060102150405")+"00"), 0)
}

func both16(b []byte, v uint16) {
	binary.LittleEndian.PutUint16(b, v)
	binary.BigEndian.PutUint16(b[2:], v)
}

func both32(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b, v)
	binary.BigEndian.PutUint32(b[4:], v)
}

func dirRecord(id []byte, lba, size int64, isDir bool, date []byte) []byte {
	n := 33 + len(id)
	if n%2 == 1 {
		n++
	}
	r := make([]byte, n)
	r[0] = byte(n)
	both32(r[2:], uint32(lba))
	both32(r[10:], uint32(size))
	copy(r[18:25], date)
	if isDir {
		r[25] = 0x02
	}
	both16(r[28:], 1)
	r[32] = byte(len(id))
	copy(r[33:], id)
	return r
}

func dirData(d, parent *dir, date []byte) []byte {
	b := make([]byte, 0, block)
	b = append(b, dirRecord([]byte{0}, d.lba, d.size, true, date)...)
	b = append(b, dirRecord([]byte{1}, parent.lba, parent.size, true, date)...)
	for _, r := range d.records {
		b = append(b, dirRecord([]byte(r.id), r.lba, r.size, r.isDir, date)...)
	}
	if len(b) > block {
		panic("iso: directory larger than one block")
	}
	return b
}

func pathTables(names []string, dirs map[string]*dir) (l, m []byte) {
	for _, name := range names {
		id := []byte(name)
		if name == "" {
			id = []byte{0}
		}
		parent := uint16(1) // every directory is the root or in it
		rec := func(be bool) []byte {
			r := make([]byte, 8+len(id)+len(id)%2)
			r[0] = byte(len(id))
			if be {
				binary.BigEndian.PutUint32(r[2:], uint32(dirs[name].lba))
				binary.BigEndian.PutUint16(r[6:], parent)
			} else {
				binary.LittleEndian.PutUint32(r[2:], uint32(dirs[name].lba))
				binary.LittleEndian.PutUint16(r[6:], parent)
			}
			copy(r[8:], id)
			return r
		}
		l = append(l, rec(false)...)
		m = append(m, rec(true)...)
	}
	return l, m
}

func pad(s string, n int) []byte {
	b := bytes.Repeat([]byte(" "), n)
	copy(b, s)
	return b
}

func pvd(volID string, blocks int64, ptSize int, root *dir, date []byte, t time.Time) []byte {
	b := make([]byte, block)
	b[0] = 1
	copy(b[1:], "CD001")
	b[6] = 1
	copy(b[8:40], pad("", 32))
	copy(b[40:72], pad(strings.ToUpper(volID), 32))
	both32(b[80:], uint32(blocks))
	both16(b[120:], 1)
	both16(b[124:], 1)
	both16(b[128:], block)
	both32(b[132:], uint32(ptSize))
	binary.LittleEndian.PutUint32(b[140:], 19)
	binary.BigEndian.PutUint32(b[148:], 20)
	copy(b[156:190], dirRecord([]byte{0}, root.lba, root.size, true, date))
	copy(b[190:318], pad("", 128))                          // volume set
	copy(b[318:446], pad("", 128))                          // publisher
	copy(b[446:574], pad("", 128))                          // preparer
	copy(b[574:702], pad("GRIDNODE", 128))                  // application
	copy(b[702:813], pad("", 37*3))                         // copyright, abstract, bibliographic files
	copy(b[813:830], longDate(t))                           // creation
	copy(b[830:847], longDate(t))                           // modification
	copy(b[847:864], append([]byte("0000000000000000"), 0)) // expiration: none
	copy(b[864:881], longDate(t))                           // effective
	b[881] = 1
	return b
}

func bootRecord(catalog int64) []byte {
	b := make([]byte, block)
	b[0] = 0
	copy(b[1:], "CD001")
	b[6] = 1
	copy(b[7:], "EL TORITO SPECIFICATION")
	binary.LittleEndian.PutUint32(b[0x47:], uint32(catalog))
	return b
}

func terminator() []byte {
	b := make([]byte, block)
	b[0] = 255
	copy(b[1:], "CD001")
	b[6] = 1
	return b
}

// bootCatalog: validation entry, BIOS default entry (isolinux, 4 virtual
// sectors loaded), then a final section for the EFI platform (0xEF).
func bootCatalog(isolinuxLBA, fatLBA int64, fatCount uint16) []byte {
	b := make([]byte, block)
	v := b[0:32]
	v[0] = 1
	v[1] = 0 // x86
	v[30], v[31] = 0x55, 0xAA
	var sum uint16
	for i := 0; i < 32; i += 2 {
		sum += binary.LittleEndian.Uint16(v[i:])
	}
	binary.LittleEndian.PutUint16(v[28:], -sum)
	d := b[32:64]
	d[0] = 0x88
	binary.LittleEndian.PutUint16(d[6:], 4)
	binary.LittleEndian.PutUint32(d[8:], uint32(isolinuxLBA))
	h := b[64:96]
	h[0] = 0x91 // final section header
	h[1] = 0xEF
	binary.LittleEndian.PutUint16(h[2:], 1)
	e := b[96:128]
	e[0] = 0x88
	binary.LittleEndian.PutUint16(e[6:], fatCount)
	binary.LittleEndian.PutUint32(e[8:], uint32(fatLBA))
	return b
}

// patchBootInfo writes isolinux's boot info table: PVD LBA, its own LBA,
// length, and the checksum of its 32-bit words from byte 64 on.
func patchBootInfo(b []byte, lba int64) {
	binary.LittleEndian.PutUint32(b[8:], 16)
	binary.LittleEndian.PutUint32(b[12:], uint32(lba))
	binary.LittleEndian.PutUint32(b[16:], uint32(len(b)))
	var sum uint32
	for i := 64; i < len(b); i += 4 {
		var w [4]byte
		copy(w[:], b[i:])
		sum += binary.LittleEndian.Uint32(w[:])
	}
	binary.LittleEndian.PutUint32(b[20:], sum)
	clear(b[24:64])
}

// hybridMBR is isohdpfx's code with isolinux.bin's LBA (in 512-byte
// sectors) at 432, as isohybrid writes it, and a disk signature.
func hybridMBR(code []byte, isolinuxLBA int64, seed [32]byte) []byte {
	b := make([]byte, 512)
	copy(b, code[:432])
	binary.LittleEndian.PutUint32(b[432:], uint32(isolinuxLBA*4))
	copy(b[440:444], seed[4:8])
	b[510], b[511] = 0x55, 0xAA
	return b
}

// partition fills an MBR partition entry (geometry 64 heads, 32 sectors, as
// isohybrid assumes).
func partition(e []byte, status, typ byte, start, count int64) {
	e[0] = status
	copy(e[1:4], chs(start))
	e[4] = typ
	copy(e[5:8], chs(start+count-1))
	binary.LittleEndian.PutUint32(e[8:], uint32(start))
	binary.LittleEndian.PutUint32(e[12:], uint32(min(count, 0xFFFFFFFF)))
}

func chs(lba int64) []byte {
	c := lba / (64 * 32)
	h := lba / 32 % 64
	s := lba%32 + 1
	if c > 1023 {
		return []byte{0xFE, 0xFF, 0xFF}
	}
	return []byte{byte(h), byte(s) | byte(c>>2)&0xC0, byte(c)}
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
func alignUp(v, a int64) int64 { return ceilDiv(v, a) * a }

// Format writes DIR/gridnode-VERSION.iso; it has the signature of the
// builder's format writers.
func Format(in media.Input, dir string) ([]string, error) {
	p := filepath.Join(dir, "gridnode-"+in.Version+".iso")
	if err := Write(in, p); err != nil {
		return nil, err
	}
	return []string{p}, nil
}
