package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// probeSize is how much of a disk's start Inspect reads: every signature it
// knows lives there.
const probeSize = 1 << 20

// Inspect says what a disk (or image file) of the given size holds at its
// start and end, in words ("an ext4 file system", "a GPT partition table"),
// or "" when it is empty: no partition table, no file system or volume
// signature, and only zeros in its first MiB. Anything it does not recognise
// but is not zero counts as data: a disk is wiped only on the farmer's word.
func Inspect(r io.ReaderAt, size int64) (string, error) {
	n := int64(probeSize)
	if size < n {
		n = size
	}
	b := make([]byte, probeSize) // zero past n, so short disks read as zeros there
	if _, err := r.ReadAt(b[:n], 0); err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the first MiB: %w", err)
	}
	if what := signature(b); what != "" {
		return what, nil
	}
	// A backup GPT header in the last sector: the primary one was destroyed
	// but the disk was partitioned.
	if size >= 2*512 {
		last := make([]byte, 512)
		if _, err := r.ReadAt(last, size-512); err == nil && string(last[:8]) == "EFI PART" {
			return "a backup GPT partition table (at its end)", nil
		}
	}
	if !allZero(b[:n]) {
		return "data that is not a known partition table or file system (non-zero bytes in its first MiB)", nil
	}
	return "", nil
}

// signature recognises the partition tables, file systems and volume
// headers a disk may start with; b is the first MiB.
func signature(b []byte) string {
	at := func(off int, s string) bool {
		return off+len(s) <= len(b) && string(b[off:off+len(s)]) == s
	}
	le16 := func(off int) uint16 { return binary.LittleEndian.Uint16(b[off:]) }
	le32 := func(off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
	switch {
	case at(512, "EFI PART") || at(4096, "EFI PART"):
		return "a GPT partition table"
	case le16(1024+56) == 0xEF53:
		return "an " + extKind(b[1024:2048]) + " file system"
	case at(0, "XFSB"):
		return "an XFS file system"
	case at(65536+64, "_BHRfS_M"):
		return "a btrfs file system"
	case at(32769, "CD001"):
		return "an ISO 9660 file system"
	case at(0, "LUKS\xba\xbe"):
		return "a LUKS encrypted volume"
	case at(512, "LABELONE") || at(0, "LABELONE") || at(1024, "LABELONE") || at(1536, "LABELONE"):
		return "an LVM physical volume"
	case at(4086, "SWAPSPACE2") || at(4086, "SWAP-SPACE") || at(65526, "SWAPSPACE2"):
		return "a swap area"
	case le32(4096) == 0xa92b4efc || le32(0) == 0xa92b4efc:
		return "a Linux software RAID (md) member"
	case at(4096+24, "\xc6\x85\x73\xf6\x4e\x1a\x45\xca\x82\x65\xf5\x7f\x48\xba\x6d\x81"):
		return "a bcache device"
	case at(3, "NTFS    "):
		return "an NTFS file system"
	case at(3, "EXFAT   "):
		return "an exFAT file system"
	case at(54, "FAT") || at(82, "FAT32"):
		return "a FAT file system"
	case zfsLabel(b):
		return "a ZFS pool member"
	case b[510] == 0x55 && b[511] == 0xAA && mbrHasPartitions(b):
		return "an MBR partition table"
	}
	return ""
}

// extKind tells ext2, ext3 and ext4 apart by their feature flags (sb is the
// superblock).
func extKind(sb []byte) string {
	compat := binary.LittleEndian.Uint32(sb[92:])
	incompat := binary.LittleEndian.Uint32(sb[96:])
	switch {
	case incompat&(0x40|0x80|0x200) != 0: // extents, 64bit, flex_bg
		return "ext4"
	case compat&0x4 != 0: // has_journal
		return "ext3"
	}
	return "ext2"
}

// zfsLabel finds an uberblock magic in the first label's uberblock ring
// (128 KiB into the disk), in either byte order.
func zfsLabel(b []byte) bool {
	for off := 128 << 10; off+8 <= 256<<10 && off+8 <= len(b); off += 1 << 10 {
		m := binary.LittleEndian.Uint64(b[off:])
		if m == 0x00bab10c || m == 0x0cb1ba0000000000 {
			return true
		}
	}
	return false
}

func mbrHasPartitions(b []byte) bool {
	for i := 0; i < 4; i++ {
		e := b[446+16*i : 446+16*(i+1)]
		if e[4] != 0 { // partition type
			return true
		}
	}
	return false
}

func allZero(b []byte) bool {
	var z [4096]byte
	for len(b) > 0 {
		n := min(len(b), len(z))
		if !bytes.Equal(b[:n], z[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// Ext4Label reads the volume label of an ext2/3/4 file system from its
// superblock (at 1024: magic 0xEF53 at +56, label at +120, 16 bytes). ok is
// false when r does not hold one.
func Ext4Label(r io.ReaderAt) (label string, ok bool) {
	sb := make([]byte, 1024)
	if _, err := r.ReadAt(sb, 1024); err != nil {
		return "", false
	}
	if binary.LittleEndian.Uint16(sb[56:]) != 0xEF53 {
		return "", false
	}
	return strings.TrimRight(string(sb[120:136]), "\x00"), true
}
