// Package medium is the node's writer of its boot medium (a USB stick, or
// the hybrid ISO written to one): it reads the release slots of
// upgrade/layout, writes a release into the slot that is not the default,
// checks it against the signed sha256, and only then makes it the default
// of both boot paths, keeping the previous release in the other slot.
//
// It works on an io.ReaderAt and io.WriterAt with Sync: a block device on
// the node, an image file in tests. Every step is written and synced before
// the next, in an order where a power cut at any moment leaves a medium whose
// UEFI path and BIOS path each boot a release that was tested: the old one,
// or, once both defaults name it, the new one.
package medium

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gridnode/gridnode/build/fat"
	"github.com/gridnode/gridnode/build/mediaconf"
	"github.com/gridnode/gridnode/upgrade/layout"
)

// Device is a boot medium opened for writing.
type Device interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}

// Errors a caller tells apart (errors.Is): each means "upgrade by kexec
// only, the medium keeps booting what it boots".
var (
	ErrNoSlots  = errors.New("this boot medium has no release slots (written by a gridnode image older than slotted media): the node can upgrade only by kexec until the stick is rewritten with a new image")
	ErrOneSlot  = errors.New("this boot medium has one release slot (a hybrid ISO): the node can upgrade only by kexec until the stick is rewritten with the USB image")
	ErrReadOnly = errors.New("the boot medium is read-only (a CD, or a write-protected stick): the node runs the new release until the next cold boot, which boots the old one")
	ErrTooBig   = errors.New("the release does not fit in a slot of this medium: rewrite the stick with a newer image")
)

// Slot is what a slot holds.
type Slot struct {
	Name    string
	Version string // from the UKI's .osrel; empty for an empty slot
	Size    int64  // bytes of the UKI in it
	// UEFI and BIOS say whether each boot path boots this slot by default.
	UEFI, BIOS bool
}

// Medium is a slotted boot medium as read.
type Medium struct {
	r       io.ReaderAt
	loader  fat.Found
	slots   map[string]*slot
	order   []string
	cfg     *layout.Record // isolinux.cfg; nil: no BIOS path
	uefiDef string
	biosDef string
	Tag     string // gridnode.boot of the medium: usb or iso
}

type slot struct {
	Slot
	at, room      int64 // the slot file's bytes on the medium (contiguous)
	entry         fat.Found
	linux, initrd layout.Record
	entryText     layout.Slot
}

// Open reads the layout of the medium r.
func Open(r io.ReaderAt) (*Medium, error) {
	starts, err := mediaconf.Partitions(r)
	if err != nil {
		return nil, err
	}
	m := &Medium{r: r, slots: map[string]*slot{}}
	fatAt, found := int64(-1), false
	for _, s := range append([]int64{0}, starts...) {
		if f, err := fat.Lookup(r, s, layout.LoaderConf); err == nil {
			m.loader, fatAt, found = f, s, true
			break
		}
		if _, err := fat.Lookup(r, s, layout.BootLoader); err == nil {
			fatAt = s
		}
	}
	if !found {
		if fatAt >= 0 {
			return nil, ErrNoSlots
		}
		return nil, errors.New("no gridnode boot medium here (no FAT file system with " + layout.BootLoader + ")")
	}
	b, err := readFound(r, m.loader)
	if err != nil {
		return nil, err
	}
	if m.uefiDef, err = layout.ParseLoaderConf(b); err != nil {
		return nil, err
	}
	if rec, err := layout.FindRecord(r, layout.IsolinuxCfg); err == nil {
		m.cfg = &rec
		b := make([]byte, rec.Size)
		if _, err := r.ReadAt(b, rec.LBA*layout.Block); err != nil {
			return nil, fmt.Errorf("reading %s: %w", layout.IsolinuxCfg, err)
		}
		if m.biosDef, _, err = layout.ParseIsolinux(b); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, layout.ErrNoISO) {
		return nil, err
	}
	for _, name := range layout.Slots {
		s, err := m.readSlot(fatAt, name)
		if err != nil {
			return nil, err
		}
		if s == nil {
			continue
		}
		m.slots[name] = s
		m.order = append(m.order, name)
	}
	def := m.slots[m.uefiDef]
	if def == nil {
		return nil, fmt.Errorf("%s names slot %s, which this medium lacks", layout.LoaderConf, m.uefiDef)
	}
	for _, f := range strings.Fields(def.entryText.Cmdline) {
		if v, ok := strings.CutPrefix(f, "gridnode.boot="); ok {
			m.Tag = v
		}
	}
	if m.Tag == "" {
		return nil, fmt.Errorf("%s: the default entry's command line has no gridnode.boot", layout.EntryFile(m.uefiDef))
	}
	return m, nil
}

func (m *Medium) readSlot(fatAt int64, name string) (*slot, error) {
	f, err := fat.Lookup(m.r, fatAt, layout.SlotFile(name))
	if err != nil {
		return nil, nil // no such slot
	}
	s := &slot{Slot: Slot{Name: name, UEFI: m.uefiDef == name, BIOS: m.biosDef == name}}
	s.at, s.room = f.Clusters[0].Off, f.Size
	for i, c := range f.Clusters {
		if c.Off != s.at+int64(i)*f.Clusters[0].Len {
			return nil, fmt.Errorf("%s is not contiguous: the medium was changed by hand; rewrite the stick", layout.SlotFile(name))
		}
	}
	if s.at%layout.Block != 0 {
		return nil, fmt.Errorf("%s starts at byte %d, not on a %d-byte block", layout.SlotFile(name), s.at, layout.Block)
	}
	if s.entry, err = fat.Lookup(m.r, fatAt, layout.EntryFile(name)); err != nil {
		return nil, fmt.Errorf("slot %s has no boot entry: %w", name, err)
	}
	b, err := readFound(m.r, s.entry)
	if err != nil {
		return nil, err
	}
	if s.entryText, err = layout.ParseEntry(name, b); err != nil {
		return nil, err
	}
	if m.cfg != nil {
		if s.linux, err = layout.FindRecord(m.r, layout.LinuxRecord(name)); err != nil {
			return nil, err
		}
		if s.initrd, err = layout.FindRecord(m.r, layout.InitrdRecord(name)); err != nil {
			return nil, err
		}
	}
	sr := io.NewSectionReader(m.r, s.at, s.room)
	if u, err := layout.ReadUKI(sr, s.room); err == nil {
		s.Size = u.Size
		s.Version, _ = u.Version(sr)
	}
	return s, nil
}

// Slots reports each slot: the version it holds and which boot paths boot
// it by default.
func (m *Medium) Slots() []Slot {
	var out []Slot
	for _, n := range m.order {
		out = append(out, m.slots[n].Slot)
	}
	return out
}

// Default is the slot the UEFI path boots (the BIOS path's, when they differ
// after a power cut, is repaired to it by the next Install).
func (m *Medium) Default() Slot { return m.slots[m.uefiDef].Slot }

func readFound(r io.ReaderAt, f fat.Found) ([]byte, error) {
	b := make([]byte, 0, f.Size)
	for _, c := range f.Clusters {
		n := min(c.Len, f.Size-int64(len(b)))
		buf := make([]byte, n)
		if _, err := r.ReadAt(buf, c.Off); err != nil {
			return nil, err
		}
		b = append(b, buf...)
	}
	return b, nil
}

// sumOf hashes n bytes of r from off.
func sumOf(r io.ReaderAt, off, n int64) ([]byte, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, off, n)); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
