// Package fat writes small, reproducible FAT16 file systems for boot media
// (the ESP of a USB image, the El Torito EFI image of an ISO) and finds files
// in them again, so their contents can be rewritten in place.
//
// Files are laid out contiguously in the order given, directories first; every
// timestamp is the one passed in and the volume id is the caller's, so the same
// files give the same bytes. FAT16 is what mkfs.fat picks for volumes of this
// size, and what every UEFI firmware reads.
package fat

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"
	"unicode/utf16"
)

// File is one file of the file system.
type File struct {
	// Path is slash-separated, relative to the root: "EFI/BOOT/BOOTX64.EFI".
	Path string
	// Data is the content, or nil to stream Size bytes from Source.
	Data []byte
	// Source writes the content when Data is nil.
	Source io.WriterTo
	Size   int64
	// ZeroTail zero bytes follow the content in the file, allocated with
	// it and left unwritten (the image is zero there): room preallocated
	// for content that is written in place later, such as a release slot.
	ZeroTail int64
}

// Options of a file system.
type Options struct {
	Label    string // volume label, up to 11 characters
	VolumeID uint32 // serial number: derive it from the inputs
	Time     time.Time
	// Free is extra room left free in the file system, in bytes.
	Free int64
	// HiddenSectors is the partition's first sector on the disk (0 if none).
	HiddenSectors uint32
	// Align, a multiple of 512, aligns every cluster to Align bytes from the
	// start of the file system (clusters are at least that large), so files
	// can be shared with a file system of larger blocks (ISO 9660: 2048).
	Align int64
}

const (
	sectorSize   = 512
	rootEntries  = 512
	minClusters  = 4085 // fewer and readers take it for FAT12
	maxClusters  = 65524
	dirEntrySize = 32
)

// Image is a laid-out file system.
type Image struct {
	opt          Options
	spc          int64 // sectors per cluster
	fatSectors   int64
	totalSectors int64
	clusters     int64
	reserved     int64
	root         *node
	nodes        []*node // directories then files, in allocation order
	fat          []uint16
}

type node struct {
	name     string
	dir      bool
	file     *File
	children []*node
	cluster  int64 // first cluster, 0 for empty files and the root
	nclus    int64
	short    [11]byte
	size     int64
}

// New lays out a FAT16 file system holding files.
func New(files []File, opt Options) (*Image, error) {
	if len(opt.Label) > 11 {
		return nil, fmt.Errorf("fat: label %q longer than 11 characters", opt.Label)
	}
	im := &Image{opt: opt, root: &node{dir: true}, reserved: 1}
	var dirs, fileNodes []*node
	for i := range files {
		f := &files[i]
		if f.Data != nil {
			f.Size = int64(len(f.Data))
		} else if f.Source == nil && f.Size != 0 {
			return nil, fmt.Errorf("fat: %s has neither Data nor Source", f.Path)
		}
		if f.ZeroTail < 0 {
			return nil, fmt.Errorf("fat: %s: negative ZeroTail", f.Path)
		}
		if f.Size+f.ZeroTail > 1<<32-1 {
			return nil, fmt.Errorf("fat: %s: %d bytes, FAT files end at 4 GiB", f.Path, f.Size)
		}
		parts := strings.Split(strings.Trim(f.Path, "/"), "/")
		parent := im.root
		for _, d := range parts[:len(parts)-1] {
			var next *node
			for _, c := range parent.children {
				if strings.EqualFold(c.name, d) {
					next = c
				}
			}
			if next == nil {
				next = &node{name: d, dir: true}
				parent.children = append(parent.children, next)
				dirs = append(dirs, next)
			} else if !next.dir {
				return nil, fmt.Errorf("fat: %s: %s is a file", f.Path, d)
			}
			parent = next
		}
		base := parts[len(parts)-1]
		for _, c := range parent.children {
			if strings.EqualFold(c.name, base) {
				return nil, fmt.Errorf("fat: %s given twice", f.Path)
			}
		}
		fn := &node{name: base, file: f, size: f.Size + f.ZeroTail}
		parent.children = append(parent.children, fn)
		fileNodes = append(fileNodes, fn)
	}
	if err := assignShortNames(im.root); err != nil {
		return nil, err
	}
	if n := dirBytes(im.root); n > rootEntries*dirEntrySize {
		return nil, fmt.Errorf("fat: too many files in the root directory")
	}
	// Cluster size: the smallest that keeps the count within FAT16.
	need := func(spc int64) int64 {
		cb := spc * sectorSize
		var n int64
		for _, d := range dirs {
			n += ceilDiv(int64(dirBytes(d)), cb)
		}
		for _, c := range fileNodes {
			n += ceilDiv(c.size, cb)
		}
		return n + ceilDiv(opt.Free, cb)
	}
	minSPC := max(opt.Align/sectorSize, 1)
	if opt.Align%sectorSize != 0 || minSPC&(minSPC-1) != 0 || minSPC > 64 {
		return nil, fmt.Errorf("fat: alignment %d: want a power of two from 512 to 32768", opt.Align)
	}
	for im.spc = minSPC; im.spc <= 64; im.spc *= 2 {
		if need(im.spc) <= maxClusters {
			break
		}
	}
	if im.spc > 64 {
		return nil, fmt.Errorf("fat: files too large for FAT16 (2 GiB)")
	}
	im.clusters = max(need(im.spc), minClusters)
	im.fatSectors = ceilDiv((im.clusters+2)*2, sectorSize)
	// Pad the reserved area so the data area starts on a cluster boundary.
	meta := im.reserved + 2*im.fatSectors + rootEntries*dirEntrySize/sectorSize
	im.reserved += (minSPC - meta%minSPC) % minSPC
	im.totalSectors = im.reserved + 2*im.fatSectors + rootEntries*dirEntrySize/sectorSize + im.clusters*im.spc

	// Allocate: directories (in creation order), then files (in given order).
	next := int64(2)
	cb := im.spc * sectorSize
	for _, d := range dirs {
		d.nclus = ceilDiv(int64(dirBytes(d)), cb)
		d.cluster = next
		next += d.nclus
		im.nodes = append(im.nodes, d)
	}
	for _, f := range fileNodes {
		f.nclus = ceilDiv(f.size, cb)
		if f.nclus > 0 {
			f.cluster = next
			next += f.nclus
		}
		im.nodes = append(im.nodes, f)
	}
	im.fat = make([]uint16, im.clusters+2)
	im.fat[0] = 0xFFF8
	im.fat[1] = 0xFFFF
	for _, n := range im.nodes {
		for i := int64(0); i < n.nclus; i++ {
			c := n.cluster + i
			if i == n.nclus-1 {
				im.fat[c] = 0xFFFF
			} else {
				im.fat[c] = uint16(c + 1)
			}
		}
	}
	return im, nil
}

// Size is the size of the file system in bytes.
func (im *Image) Size() int64 { return im.totalSectors * sectorSize }

func (im *Image) dataStart() int64 {
	return (im.reserved + 2*im.fatSectors + rootEntries*dirEntrySize/sectorSize) * sectorSize
}

func (im *Image) clusterOffset(c int64) int64 {
	return im.dataStart() + (c-2)*im.spc*sectorSize
}

// Offset returns where the content of the file at path starts, in bytes from
// the start of the file system (files are contiguous), and its size.
func (im *Image) Offset(p string) (off, size int64, ok bool) {
	for _, n := range im.nodes {
		if !n.dir && n.file != nil && strings.EqualFold(strings.Trim(n.file.Path, "/"), strings.Trim(p, "/")) {
			return im.clusterOffset(n.cluster), n.size, true
		}
	}
	return 0, 0, false
}

// WriteTo writes the file system at offset off of w. Regions it does not
// write are zero: w must be zero there (a new or truncated file).
func (im *Image) WriteTo(w io.WriterAt, off int64) error {
	bs := im.bootSector()
	if _, err := w.WriteAt(bs, off); err != nil {
		return err
	}
	fat := make([]byte, im.fatSectors*sectorSize)
	for i, v := range im.fat {
		binary.LittleEndian.PutUint16(fat[2*i:], v)
	}
	for i := int64(0); i < 2; i++ {
		if _, err := w.WriteAt(fat, off+(im.reserved+i*im.fatSectors)*sectorSize); err != nil {
			return err
		}
	}
	rootOff := off + (im.reserved+2*im.fatSectors)*sectorSize
	if _, err := w.WriteAt(im.dirData(im.root, nil), rootOff); err != nil {
		return err
	}
	for _, n := range im.nodes {
		o := off + im.clusterOffset(n.cluster)
		if n.dir {
			if _, err := w.WriteAt(im.dirData(n, im.parentOf(n)), o); err != nil {
				return err
			}
			continue
		}
		if n.file.Size == 0 {
			continue
		}
		if n.file.Data != nil {
			if _, err := w.WriteAt(n.file.Data, o); err != nil {
				return err
			}
			continue
		}
		// io.WriterTo reports what it wrote: a source that changed since
		// its size was announced would overrun or leave a hole.
		wrote, err := n.file.Source.WriteTo(io.NewOffsetWriter(w, o))
		if err != nil {
			return fmt.Errorf("fat: writing %s: %w", n.file.Path, err)
		}
		if wrote != n.file.Size {
			return fmt.Errorf("fat: %s: wrote %d bytes, announced %d", n.file.Path, wrote, n.file.Size)
		}
	}
	return nil
}

func (im *Image) parentOf(d *node) *node {
	var find func(p *node) *node
	find = func(p *node) *node {
		for _, c := range p.children {
			if c == d {
				return p
			}
			if c.dir {
				if r := find(c); r != nil {
					return r
				}
			}
		}
		return nil
	}
	return find(im.root)
}

func (im *Image) bootSector() []byte {
	b := make([]byte, sectorSize)
	copy(b, []byte{0xEB, 0x3C, 0x90})
	copy(b[3:11], "GRIDNODE")
	binary.LittleEndian.PutUint16(b[11:], sectorSize)
	b[13] = byte(im.spc)
	binary.LittleEndian.PutUint16(b[14:], uint16(im.reserved))
	b[16] = 2
	binary.LittleEndian.PutUint16(b[17:], rootEntries)
	if im.totalSectors < 65536 {
		binary.LittleEndian.PutUint16(b[19:], uint16(im.totalSectors))
	} else {
		binary.LittleEndian.PutUint32(b[32:], uint32(im.totalSectors))
	}
	b[21] = 0xF8
	binary.LittleEndian.PutUint16(b[22:], uint16(im.fatSectors))
	binary.LittleEndian.PutUint16(b[24:], 32) // sectors per track
	binary.LittleEndian.PutUint16(b[26:], 64) // heads
	binary.LittleEndian.PutUint32(b[28:], im.opt.HiddenSectors)
	b[36] = 0x80
	b[38] = 0x29
	binary.LittleEndian.PutUint32(b[39:], im.opt.VolumeID)
	copy(b[43:54], pad11(im.opt.Label))
	copy(b[54:62], "FAT16   ")
	// Boot code: print a hint and wait, as mkfs.fat's does.
	msg := "This is not a bootable disk: boot the disk itself, not this partition.\r\n"
	code := []byte{0x0E, 0x1F, 0xBE, 0x5B, 0x7C, 0xAC, 0x22, 0xC0, 0x74, 0x0B, 0x56, 0xB4, 0x0E, 0xBB, 0x07, 0x00, 0xCD, 0x10, 0x5E, 0xEB, 0xF0, 0x32, 0xE4, 0xCD, 0x16, 0xCD, 0x19, 0xEB, 0xFE}
	copy(b[62:], code)
	copy(b[62+len(code):], msg)
	b[510], b[511] = 0x55, 0xAA
	return b
}

func pad11(s string) []byte {
	b := []byte("           ")
	copy(b, strings.ToUpper(s))
	return b
}

// dirData is the content of a directory: ".", ".." (not for the root), the
// volume label (root only), then each child with its long-name entries.
func (im *Image) dirData(d, parent *node) []byte {
	var out []byte
	date, tm := dosTime(im.opt.Time)
	entry := func(short [11]byte, attr byte, cluster, size int64) {
		e := make([]byte, dirEntrySize)
		copy(e, short[:])
		e[11] = attr
		binary.LittleEndian.PutUint16(e[14:], tm)
		binary.LittleEndian.PutUint16(e[16:], date)
		binary.LittleEndian.PutUint16(e[18:], date)
		binary.LittleEndian.PutUint16(e[22:], tm)
		binary.LittleEndian.PutUint16(e[24:], date)
		binary.LittleEndian.PutUint16(e[26:], uint16(cluster))
		binary.LittleEndian.PutUint32(e[28:], uint32(size))
		out = append(out, e...)
	}
	if d == im.root {
		if im.opt.Label != "" {
			var s [11]byte
			copy(s[:], pad11(im.opt.Label))
			entry(s, 0x08, 0, 0)
		}
	} else {
		var dot, dotdot [11]byte
		copy(dot[:], ".          ")
		copy(dotdot[:], "..         ")
		entry(dot, 0x10, d.cluster, 0)
		entry(dotdot, 0x10, parent.cluster, 0)
	}
	for _, c := range d.children {
		out = append(out, lfnEntries(c)...)
		if c.dir {
			entry(c.short, 0x10, c.cluster, 0)
		} else {
			entry(c.short, 0x20, c.cluster, c.size)
		}
	}
	if d != im.root {
		// Pad to whole clusters: zero entries end the directory.
		n := d.nclus * im.spc * sectorSize
		out = append(out, make([]byte, n-int64(len(out)))...)
	}
	return out
}

func dirBytes(d *node) int {
	n := 2 // "." and ".." (or the label in the root)
	for _, c := range d.children {
		n += 1 + len(lfnEntries(c))/dirEntrySize
	}
	return n * dirEntrySize
}

func dosTime(t time.Time) (date, tm uint16) {
	t = t.UTC()
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if t.Year() > 2107 {
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
	}
	date = uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day())
	tm = uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2)
	return
}

// needsLFN reports whether name cannot be stored as an 8.3 name as is.
func needsLFN(name string) bool {
	base, ext, _ := strings.Cut(name, ".")
	if strings.Contains(ext, ".") || len(base) == 0 || len(base) > 8 || len(ext) > 3 {
		return true
	}
	return !valid83(base) || !valid83(ext)
}

func valid83(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("!#$%&'()-@^_`{}~", r):
		default:
			return false
		}
	}
	return true
}

func assignShortNames(d *node) error {
	used := map[string]bool{}
	for _, c := range d.children {
		if !needsLFN(c.name) {
			used[strings.ToUpper(c.name)] = true
		}
	}
	for _, c := range d.children {
		if !needsLFN(c.name) {
			base, ext, _ := strings.Cut(c.name, ".")
			c.short = short(base, ext)
		} else {
			base, ext := c.name, ""
			if i := strings.LastIndex(c.name, "."); i > 0 {
				base, ext = c.name[:i], c.name[i+1:]
			}
			base, ext = clean83(base), clean83(ext)
			if len(ext) > 3 {
				ext = ext[:3]
			}
			ok := false
			for i := 1; i < 1000000; i++ {
				suffix := fmt.Sprintf("~%d", i)
				b := base
				if len(b) > 8-len(suffix) {
					b = b[:8-len(suffix)]
				}
				cand := b + suffix
				key := cand
				if ext != "" {
					key += "." + ext
				}
				if !used[key] {
					used[key] = true
					c.short = short(cand, ext)
					ok = true
					break
				}
			}
			if !ok {
				return fmt.Errorf("fat: no short name left for %s", c.name)
			}
		}
		if c.dir {
			if err := assignShortNames(c); err != nil {
				return err
			}
		}
	}
	return nil
}

func clean83(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		if r == ' ' || r == '.' {
			continue
		}
		if valid83(string(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

func short(base, ext string) [11]byte {
	var s [11]byte
	copy(s[:], "           ")
	copy(s[:8], strings.ToUpper(base))
	copy(s[8:], strings.ToUpper(ext))
	return s
}

func shortChecksum(s [11]byte) byte {
	var sum byte
	for _, c := range s {
		sum = (sum>>1 | sum<<7) + c
	}
	return sum
}

// lfnEntries returns the long-name entries that precede c's short entry,
// or none when its name is a plain 8.3 name.
func lfnEntries(c *node) []byte {
	if !needsLFN(c.name) {
		return nil
	}
	u := utf16.Encode([]rune(c.name))
	n := (len(u) + 12) / 13
	if len(u)%13 != 0 {
		u = append(u, 0)
		for len(u)%13 != 0 {
			u = append(u, 0xFFFF)
		}
	}
	sum := shortChecksum(c.short)
	var out []byte
	for i := n; i >= 1; i-- {
		e := make([]byte, dirEntrySize)
		e[0] = byte(i)
		if i == n {
			e[0] |= 0x40
		}
		e[11] = 0x0F
		e[13] = sum
		chars := u[(i-1)*13 : i*13]
		pos := []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}
		for j, p := range pos {
			binary.LittleEndian.PutUint16(e[p:], chars[j])
		}
		out = append(out, e...)
	}
	return out
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// FileSource streams a file from disk into a FAT image.
type FileSource string

// WriteTo implements io.WriterTo.
func (f FileSource) WriteTo(w io.Writer) (int64, error) {
	r, err := os.Open(string(f))
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return io.Copy(w, r)
}

// Clean is path.Clean for FAT paths.
func Clean(p string) string { return strings.Trim(path.Clean("/"+p), "/") }
