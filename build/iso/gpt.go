package iso

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"

	diskfs "github.com/diskfs/go-diskfs/partition/gpt"
)

// The GPT of USB images is written by go-diskfs (partition/gpt). It gives
// the same bytes, primary and backup, as the hand-written writer it replaced
// (TestGPTBytes holds their sums), once it is handed GUIDs derived from the
// inputs instead of random ones: images stay reproducible.
//
// The protective MBR stays ours: it is the isohybrid MBR, with isohdpfx's
// boot code and a disk signature, and go-diskfs writes its partition entry
// with zero CHS fields where the UEFI specification asks for 0x000200 and
// the address of the last block.

// gptBytes is one GPT copy: header sector and 128 entries of 128 bytes.
const gptBytes = 512 + 128*128

// Partition types: the EFI system partition, and Microsoft's basic data
// partition, which Windows and macOS mount.
const (
	espType       = diskfs.EFISystemPartition
	basicDataType = diskfs.MicrosoftBasicData
)

type gpt struct{ primary, backup []byte }

// guid makes a version-4-shaped GUID from hash bytes: fixed per input. The
// bytes are as on disk (first three fields little-endian).
func guid(b []byte) string {
	var g [16]byte
	copy(g[:], b)
	g[7] = g[7]&0x0F | 0x40
	g[8] = g[8]&0x3F | 0x80
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(g[0:]), binary.LittleEndian.Uint16(g[4:]),
		binary.LittleEndian.Uint16(g[6:]), g[8:10], g[10:])
}

// newGPT returns the primary (for LBA 1) and backup (for the disk's last 33
// sectors) GPT with one partition of type typ from first to last (inclusive).
func newGPT(seed [32]byte, sectors, first, last int64, typ diskfs.Type, name string) (gpt, error) {
	t := &diskfs.Table{
		LogicalSectorSize: 512, PhysicalSectorSize: 512,
		GUID: guid(seed[8:24]),
		Partitions: []*diskfs.Partition{{
			Index: 1, Start: uint64(first), End: uint64(last), Type: typ, Name: name, GUID: guid(seed[16:32]),
		}},
	}
	g := &gptCopies{gpt: gpt{primary: make([]byte, gptBytes), backup: make([]byte, gptBytes)}, backupAt: sectors*512 - gptBytes}
	if err := t.Write(g, sectors*512); err != nil {
		return gpt{}, fmt.Errorf("iso: GPT: %w", err)
	}
	return g.gpt, nil
}

// gptCopies takes go-diskfs's writes of the two GPT copies into memory: the
// image writer puts them in place with the rest. It has no Sync, so
// go-diskfs's crash-safe write order costs no fsync on a file being built.
type gptCopies struct {
	gpt
	backupAt int64
}

func (g *gptCopies) WriteAt(p []byte, off int64) (int, error) {
	switch {
	case off >= 512 && off+int64(len(p)) <= 512+gptBytes:
		copy(g.primary[off-512:], p)
	case off >= g.backupAt && off+int64(len(p)) <= g.backupAt+gptBytes:
		copy(g.backup[off-g.backupAt:], p)
	default:
		return 0, fmt.Errorf("write of %d bytes at %d is outside the GPT copies", len(p), off)
	}
	return len(p), nil
}

func (g *gptCopies) ReadAt([]byte, int64) (int, error) { return 0, io.EOF }
func (g *gptCopies) Read([]byte) (int, error)          { return 0, io.EOF }
func (g *gptCopies) Seek(int64, int) (int64, error)    { return 0, nil }
func (g *gptCopies) Stat() (fs.FileInfo, error)        { return nil, fs.ErrInvalid }
func (g *gptCopies) Close() error                      { return nil }

// protective turns the hybrid MBR's partition table into a GPT protective
// one: a single 0xEE partition over the whole disk. The boot code stays.
func protective(mbr []byte, sectors int64) {
	clear(mbr[446:510])
	partition(mbr[446:], 0x00, 0xEE, 1, sectors-1)
}
