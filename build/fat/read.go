package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// Extent is a byte range of a disk image.
type Extent struct{ Off, Len int64 }

// Found is a file located in a file system on a disk image.
type Found struct {
	// Clusters holding the content, in order, as absolute byte ranges.
	Clusters []Extent
	// Size is the file's size from its directory entry.
	Size int64
	// Entry is the absolute offset of the file's 32-byte short directory entry.
	Entry int64

	vol *volume // the file system it was found in (Allocate)
}

// Capacity is how many bytes the file can hold without allocating clusters.
func (f Found) Capacity() int64 {
	var n int64
	for _, c := range f.Clusters {
		n += c.Len
	}
	return n
}

// ErrNotFAT says there is no FAT16 or FAT32 file system at the offset;
// ErrNotFound that the file system has no such file.
var (
	ErrNotFAT   = errors.New("no FAT16 or FAT32 file system")
	ErrNotFound = errors.New("not found")
)

type volume struct {
	r           io.ReaderAt
	off         int64
	bps         int64
	spc         int64
	nfats       int64
	fatSize     int64 // bytes of one FAT
	fatOff      int64
	rootOff     int64 // FAT16 fixed root
	rootSize    int64
	rootCluster uint32 // FAT32
	dataOff     int64
	fat32       bool
	clusters    int64
}

func openVolume(r io.ReaderAt, off int64) (*volume, error) {
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, off); err != nil {
		return nil, err
	}
	if b[510] != 0x55 || b[511] != 0xAA {
		return nil, ErrNotFAT
	}
	v := &volume{r: r, off: off}
	v.bps = int64(binary.LittleEndian.Uint16(b[11:]))
	v.spc = int64(b[13])
	reserved := int64(binary.LittleEndian.Uint16(b[14:]))
	nfats := int64(b[16])
	rootEnt := int64(binary.LittleEndian.Uint16(b[17:]))
	total := int64(binary.LittleEndian.Uint16(b[19:]))
	if total == 0 {
		total = int64(binary.LittleEndian.Uint32(b[32:]))
	}
	fatSz := int64(binary.LittleEndian.Uint16(b[22:]))
	if fatSz == 0 {
		fatSz = int64(binary.LittleEndian.Uint32(b[36:]))
		v.rootCluster = binary.LittleEndian.Uint32(b[44:])
	}
	// What the boot sector says is all the reader knows of the volume: it
	// is checked against FAT's own limits and against the image, so that
	// nothing sized from it is larger than the image (a hostile image
	// claiming 2^32 clusters gets no 2^32 of anything).
	if v.bps < 512 || v.bps&(v.bps-1) != 0 || v.spc == 0 || v.spc&(v.spc-1) != 0 || v.bps*v.spc > maxClusterBytes ||
		nfats == 0 || nfats > 4 || fatSz == 0 || reserved == 0 {
		return nil, ErrNotFAT
	}
	if end := off + total*v.bps; total == 0 || end <= off {
		return nil, ErrNotFAT
	} else if _, err := r.ReadAt(b[:1], end-1); err != nil {
		return nil, fmt.Errorf("%w: the volume claims %d bytes, past the end of the image", ErrNotFAT, total*v.bps)
	}
	v.nfats, v.fatSize = nfats, fatSz*v.bps
	v.fatOff = off + reserved*v.bps
	v.rootOff = v.fatOff + nfats*fatSz*v.bps
	v.rootSize = rootEnt * 32
	v.dataOff = v.rootOff + ceilDiv(v.rootSize, v.bps)*v.bps
	v.clusters = (total*v.bps - (v.dataOff - off)) / (v.spc * v.bps)
	switch {
	case v.clusters < 4085:
		return nil, fmt.Errorf("%w (FAT12 is not supported)", ErrNotFAT)
	case v.clusters < 65525:
	default:
		v.fat32 = true
	}
	entry := int64(2)
	if v.fat32 {
		entry = 4
	}
	if v.fatSize < (v.clusters+2)*entry {
		return nil, fmt.Errorf("%w: its FAT of %d bytes is too small for %d clusters", ErrNotFAT, v.fatSize, v.clusters)
	}
	return v, nil
}

// FAT's limits: a cluster is at most 64 KiB (32 KiB by the specification;
// some formatters use 64), a directory at most 65,536 entries of 32 bytes.
const (
	maxClusterBytes = 64 << 10
	maxDirBytes     = 65536 * 32
)

func (v *volume) next(c uint32) (uint32, error) {
	if v.fat32 {
		var b [4]byte
		if _, err := v.r.ReadAt(b[:], v.fatOff+int64(c)*4); err != nil {
			return 0, err
		}
		n := binary.LittleEndian.Uint32(b[:]) & 0x0FFFFFFF
		if n >= 0x0FFFFFF8 {
			return 0, nil
		}
		return n, nil
	}
	var b [2]byte
	if _, err := v.r.ReadAt(b[:], v.fatOff+int64(c)*2); err != nil {
		return 0, err
	}
	n := binary.LittleEndian.Uint16(b[:])
	if n >= 0xFFF8 {
		return 0, nil
	}
	return uint32(n), nil
}

// chain follows the cluster chain from c for at most max clusters: what
// a file of its size or a directory can have. A longer chain (or one that
// loops) is cut there, as readers of the file system do.
func (v *volume) chain(c uint32, max int64) ([]Extent, error) {
	var out []Extent
	cb := v.spc * v.bps
	for c >= 2 && int64(len(out)) < max {
		if int64(c) >= v.clusters+2 {
			return nil, fmt.Errorf("fat: broken cluster chain at cluster %d", c)
		}
		out = append(out, Extent{v.dataOff + int64(c-2)*cb, cb})
		n, err := v.next(c)
		if err != nil {
			return nil, err
		}
		c = n
	}
	return out, nil
}

// Lookup finds the file at p (slash-separated, case-insensitive, long or
// short names) in the FAT16/FAT32 file system that starts at off of r.
func Lookup(r io.ReaderAt, off int64, p string) (Found, error) {
	v, err := openVolume(r, off)
	if err != nil {
		return Found{}, err
	}
	var dir []Extent
	maxDir := ceilDiv(maxDirBytes, v.spc*v.bps)
	if v.fat32 {
		if dir, err = v.chain(v.rootCluster, maxDir); err != nil {
			return Found{}, err
		}
	} else {
		dir = []Extent{{v.rootOff, v.rootSize}}
	}
	parts := strings.Split(Clean(p), "/")
	for i, name := range parts {
		e, entOff, err := v.find(dir, name)
		if err != nil {
			return Found{}, fmt.Errorf("fat: %s: %w", p, err)
		}
		cluster := uint32(binary.LittleEndian.Uint16(e[26:]))
		if v.fat32 {
			cluster |= uint32(binary.LittleEndian.Uint16(e[20:])) << 16
		}
		isDir := e[11]&0x10 != 0
		if i < len(parts)-1 {
			if !isDir {
				return Found{}, fmt.Errorf("fat: %s: %s is not a directory", p, name)
			}
			if dir, err = v.chain(cluster, maxDir); err != nil {
				return Found{}, err
			}
			continue
		}
		if isDir {
			return Found{}, fmt.Errorf("fat: %s is a directory", p)
		}
		size := int64(binary.LittleEndian.Uint32(e[28:]))
		if size > v.clusters*v.spc*v.bps {
			return Found{}, fmt.Errorf("fat: %s claims %d bytes, more than the volume holds", p, size)
		}
		cl, err := v.chain(cluster, max(1, ceilDiv(size, v.spc*v.bps)))
		if err != nil {
			return Found{}, err
		}
		return Found{Clusters: cl, Size: size, Entry: entOff, vol: v}, nil
	}
	return Found{}, fmt.Errorf("fat: %s: empty path", p)
}

// find scans a directory for name; returns the short entry and its offset.
func (v *volume) find(dir []Extent, name string) ([]byte, int64, error) {
	var lfn []uint16
	for _, x := range dir {
		buf := make([]byte, x.Len)
		if _, err := v.r.ReadAt(buf, x.Off); err != nil {
			return nil, 0, err
		}
		for i := 0; i+32 <= len(buf); i += 32 {
			e := buf[i : i+32]
			switch {
			case e[0] == 0:
				return nil, 0, ErrNotFound
			case e[0] == 0xE5:
				lfn = nil
				continue
			case e[11] == 0x0F:
				seq := int(e[0] & 0x1F)
				if e[0]&0x40 != 0 {
					lfn = make([]uint16, seq*13)
				}
				if seq == 0 || seq*13 > len(lfn) {
					lfn = nil
					continue
				}
				pos := []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}
				for j, p := range pos {
					lfn[(seq-1)*13+j] = binary.LittleEndian.Uint16(e[p:])
				}
				continue
			case e[11]&0x08 != 0:
				lfn = nil
				continue
			}
			long := ""
			if lfn != nil {
				u := lfn
				for k, c := range u {
					if c == 0 {
						u = u[:k]
						break
					}
				}
				long = string(utf16.Decode(u))
			}
			lfn = nil
			base := strings.TrimRight(string(e[0:8]), " ")
			ext := strings.TrimRight(string(e[8:11]), " ")
			shortName := base
			if ext != "" {
				shortName += "." + ext
			}
			if strings.EqualFold(long, name) || strings.EqualFold(shortName, name) {
				return e, x.Off + int64(i), nil
			}
		}
	}
	return nil, 0, ErrNotFound
}

// WriteContent overwrites the file found with data, which must fit in its
// clusters, and updates its size in the directory entry.
func WriteContent(w io.WriterAt, f Found, data []byte) error {
	if int64(len(data)) > f.Capacity() {
		return fmt.Errorf("fat: %d bytes do not fit in the file's %d bytes of clusters", len(data), f.Capacity())
	}
	rest := data
	for _, c := range f.Clusters {
		if len(rest) == 0 {
			break
		}
		n := min(int64(len(rest)), c.Len)
		if _, err := w.WriteAt(rest[:n], c.Off); err != nil {
			return err
		}
		rest = rest[n:]
	}
	if int64(len(data)) != f.Size {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(len(data)))
		if _, err := w.WriteAt(b[:], f.Entry+28); err != nil {
			return err
		}
	}
	return nil
}

// ReadWriterAt is a disk image open for reading and writing.
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// Allocate gives a file that has no cluster (a file emptied by an editor:
// FAT frees its clusters) room for n bytes: free clusters, chained in
// every copy of the FAT, the first named in its directory entry. The chain
// is written before the entry, so a power cut in between leaves at worst
// clusters that fsck reclaims. The file's size stays; WriteContent fills
// it. A file that has clusters comes back as it is.
func Allocate(rw ReadWriterAt, f Found, n int64) (Found, error) {
	v := f.vol
	if v == nil {
		return f, errors.New("fat: Allocate takes a file that Lookup found")
	}
	if len(f.Clusters) > 0 || n <= 0 {
		return f, nil
	}
	cb := v.spc * v.bps
	need := ceilDiv(n, cb)
	width := int64(2)
	if v.fat32 {
		width = 4
	}
	var free []uint32
	buf := make([]byte, 64<<10)
	for c := int64(2); c < v.clusters+2 && int64(len(free)) < need; {
		k := min(int64(len(buf))/width, v.clusters+2-c)
		if _, err := v.r.ReadAt(buf[:k*width], v.fatOff+c*width); err != nil {
			return f, fmt.Errorf("fat: reading the FAT: %w", err)
		}
		for i := int64(0); i < k && int64(len(free)) < need; i++ {
			e := buf[i*width:]
			used := binary.LittleEndian.Uint16(e) != 0
			if v.fat32 {
				used = binary.LittleEndian.Uint32(e)&0x0FFFFFFF != 0
			}
			if !used {
				free = append(free, uint32(c+i))
			}
		}
		c += k
	}
	if int64(len(free)) < need {
		return f, fmt.Errorf("fat: no room for %d bytes: the file system has %d free clusters of %d bytes", n, len(free), cb)
	}
	out := Found{Size: f.Size, Entry: f.Entry, vol: v}
	for i, c := range free {
		next := uint32(0x0FFFFFFF) // end of chain
		if i < len(free)-1 {
			next = free[i+1]
		}
		e := make([]byte, width)
		if v.fat32 {
			binary.LittleEndian.PutUint32(e, next) // the top 4 bits of a free entry are 0: keep them so
		} else {
			binary.LittleEndian.PutUint16(e, uint16(min(next, 0xFFFF)))
		}
		for k := int64(0); k < v.nfats; k++ {
			if _, err := rw.WriteAt(e, v.fatOff+k*v.fatSize+int64(c)*width); err != nil {
				return f, fmt.Errorf("fat: writing the FAT: %w", err)
			}
		}
		out.Clusters = append(out.Clusters, Extent{v.dataOff + int64(c-2)*cb, cb})
	}
	var e [2]byte
	binary.LittleEndian.PutUint16(e[:], uint16(free[0]))
	if _, err := rw.WriteAt(e[:], f.Entry+26); err != nil {
		return f, fmt.Errorf("fat: writing the directory entry: %w", err)
	}
	if v.fat32 {
		binary.LittleEndian.PutUint16(e[:], uint16(free[0]>>16))
		if _, err := rw.WriteAt(e[:], f.Entry+20); err != nil {
			return f, fmt.Errorf("fat: writing the directory entry: %w", err)
		}
	}
	return out, nil
}
