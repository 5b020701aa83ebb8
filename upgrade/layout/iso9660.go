package layout

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Record is an ISO 9660 directory record on a medium: where it is and the
// extent it points at.
type Record struct {
	At        int64 // byte offset of the record
	LBA, Size int64 // its extent, in blocks and bytes
}

// ErrNoISO says the medium has no ISO 9660 volume at its start;
// ErrNotFound that the volume has no such file.
var (
	ErrNoISO    = errors.New("no ISO 9660 volume")
	ErrNotFound = errors.New("not found")
)

// FindRecord finds the record of the file or folder p ("BOOT/LINUX_A",
// case-insensitive, without ";1" or a trailing dot) in the ISO 9660 volume at
// the start of r.
func FindRecord(r io.ReaderAt, p string) (Record, error) {
	pvd := make([]byte, Block)
	if _, err := r.ReadAt(pvd, 16*Block); err != nil || pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return Record{}, ErrNoISO
	}
	cur := Record{At: 16*Block + 156, LBA: int64(binary.LittleEndian.Uint32(pvd[158:])), Size: int64(binary.LittleEndian.Uint32(pvd[166:]))}
	for _, name := range strings.Split(strings.Trim(p, "/"), "/") {
		next, err := findIn(r, cur, name)
		if err != nil {
			return Record{}, fmt.Errorf("ISO 9660 %s: %w", p, err)
		}
		cur = next
	}
	return cur, nil
}

func findIn(r io.ReaderAt, d Record, name string) (Record, error) {
	if d.Size > 1<<20 {
		return Record{}, fmt.Errorf("directory of %d bytes: not a gridnode medium", d.Size)
	}
	dir := make([]byte, d.Size)
	if _, err := r.ReadAt(dir, d.LBA*Block); err != nil {
		return Record{}, err
	}
	for i := 0; i < len(dir); {
		n := int(dir[i])
		if n == 0 { // the rest of the block is padding
			i = (i/Block + 1) * Block
			continue
		}
		if i+n > len(dir) || n < 34 || 33+int(dir[i+32]) > n {
			return Record{}, errors.New("damaged directory record")
		}
		rec := dir[i : i+n]
		id, _, _ := strings.Cut(string(rec[33:33+int(rec[32])]), ";")
		if strings.EqualFold(strings.TrimSuffix(id, "."), name) {
			return Record{
				At:   d.LBA*Block + int64(i),
				LBA:  int64(binary.LittleEndian.Uint32(rec[2:])),
				Size: int64(binary.LittleEndian.Uint32(rec[10:])),
			}, nil
		}
		i += n
	}
	return Record{}, fmt.Errorf("%s: %w", name, ErrNotFound)
}

// Extent16 returns the 16 bytes at At+2 of a record that point it at lba and
// size (both-endian, as ISO 9660 stores them): rewriting them in place
// points the record at another extent.
func Extent16(lba, size int64) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint32(b[0:], uint32(lba))
	binary.BigEndian.PutUint32(b[4:], uint32(lba))
	binary.LittleEndian.PutUint32(b[8:], uint32(size))
	binary.BigEndian.PutUint32(b[12:], uint32(size))
	return b
}
