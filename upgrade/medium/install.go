package medium

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gridnode/gridnode/build/fat"
	"github.com/gridnode/gridnode/upgrade/doc"
	"github.com/gridnode/gridnode/upgrade/layout"
)

// OpenFile opens the medium at path (a block device or an image file) for
// Install; a read-only medium is ErrReadOnly.
func OpenFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
		return nil, fmt.Errorf("%s: %w", path, ErrReadOnly)
	}
	return f, err
}

// step is one write, then a sync: nothing after it is written before it
// is on the medium.
func step(dev Device, what string, b []byte, off int64) error {
	if _, err := dev.WriteAt(b, off); err != nil {
		return writeErr(what, err)
	}
	if err := dev.Sync(); err != nil {
		return writeErr(what, err)
	}
	return nil
}

func writeErr(what string, err error) error {
	if errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EBADF) {
		return fmt.Errorf("writing %s: %w", what, ErrReadOnly)
	}
	return fmt.Errorf("writing %s: %w (the default slot is untouched)", what, err)
}

// Install writes the release UKI uki (want: its name, size and sha256 from
// the signed release document; version: the release's version) into the
// slot that is not the default, checks it, and makes it the default of both
// boot paths. The previous default stays in the other slot. It returns the
// slots as they are afterwards.
func Install(dev Device, uki io.ReaderAt, want doc.File, version string) ([]Slot, error) {
	m, err := Open(dev)
	if err != nil {
		return nil, err
	}
	if len(m.order) < 2 {
		return nil, ErrOneSlot
	}
	// A power cut between the two flips leaves the BIOS path ahead: both
	// of its slots were tested, but the slot to write must be booted by
	// neither path.
	if m.cfg != nil && m.biosDef != m.uefiDef {
		if err := step(dev, layout.IsolinuxCfg, layout.IsolinuxHeader(m.uefiDef), m.cfg.LBA*layout.Block); err != nil {
			return nil, err
		}
	}
	target := m.slots[layout.Other(m.uefiDef)]
	if want.Size > target.room {
		return nil, fmt.Errorf("release %s: its UKI is %d bytes, a slot holds %d: %w", version, want.Size, target.room, ErrTooBig)
	}
	u, err := layout.ReadUKI(uki, want.Size)
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", version, err)
	}
	if !u.Aligned() {
		return nil, fmt.Errorf("release %s: its UKI's kernel and initramfs are not on %d-byte blocks (a UKI not built by gridnode's builder?)", version, layout.Block)
	}
	if v, err := u.Version(uki); err != nil || v != version {
		return nil, fmt.Errorf("release %s: its UKI says version %q (%v)", version, v, err)
	}
	cmdline, err := u.Cmdline(uki)
	if err != nil {
		return nil, err
	}
	next := layout.Slot{Name: target.Name, Version: version, Cmdline: layout.WithBoot(cmdline, m.Tag)}
	entry, err := layout.EntryText(next)
	if err != nil {
		return nil, err
	}
	region, err := layout.IsolinuxSlot(next)
	if err != nil {
		return nil, err
	}

	// 1. Retire the other slot (its release is overwritten next): its
	// entry and its isolinux label are emptied first, so neither boot menu
	// offers a slot half written. Then the release, read back.
	retired := layout.Slot{Name: target.Name}
	emptyEntry, _ := layout.EntryText(retired)
	if err := stepFAT(dev, layout.EntryFile(target.Name), target.entry, emptyEntry); err != nil {
		return nil, err
	}
	if m.cfg != nil {
		emptyRegion, _ := layout.IsolinuxSlot(retired)
		if err := step(dev, layout.IsolinuxCfg, emptyRegion, m.cfg.LBA*layout.Block+layout.IsolinuxRegionOffset(target.Name)); err != nil {
			return nil, err
		}
	}
	if err := copySlot(dev, uki, want, target); err != nil {
		return nil, err
	}
	// Read back from the medium, not from the page cache the write left.
	if f, ok := dev.(*os.File); ok {
		if err := unix.Fadvise(int(f.Fd()), target.at, want.Size, unix.FADV_DONTNEED); err != nil {
			return nil, fmt.Errorf("dropping slot %s from the page cache before reading it back: %w", target.Name, err)
		}
	}
	got, err := sumOf(dev, target.at, want.Size)
	if err != nil {
		return nil, fmt.Errorf("reading slot %s back: %w", target.Name, err)
	}
	if err := want.CheckFile(got, want.Size); err != nil {
		return nil, fmt.Errorf("slot %s read back: %w (the medium may be failing; the default slot is untouched)", target.Name, err)
	}
	// 2. The slot's UEFI entry, its ISO 9660 records and its isolinux
	// label: none is a default yet.
	if err := stepFAT(dev, layout.EntryFile(target.Name), target.entry, entry); err != nil {
		return nil, err
	}
	if m.cfg != nil {
		for _, r := range []struct {
			rec     layout.Record
			section string
		}{{target.linux, layout.SectionLinux}, {target.initrd, layout.SectionInitrd}} {
			x := u.Sections[r.section]
			if err := step(dev, "ISO 9660 record of "+r.section, layout.Extent16((target.at+x.Off)/layout.Block, x.Size), r.rec.At+2); err != nil {
				return nil, err
			}
		}
		if err := step(dev, layout.IsolinuxCfg, region, m.cfg.LBA*layout.Block+layout.IsolinuxRegionOffset(target.Name)); err != nil {
			return nil, err
		}
	}
	// 3. The switch: one sector for BIOS, one for UEFI.
	if err := m.flip(dev, target.Name); err != nil {
		return nil, err
	}
	after, err := Open(dev)
	if err != nil {
		return nil, fmt.Errorf("reading the medium after the switch: %w", err)
	}
	return after.Slots(), nil
}

// flip makes slot s the default: BIOS first, then UEFI.
func (m *Medium) flip(dev Device, s string) error {
	if m.cfg != nil {
		if err := step(dev, layout.IsolinuxCfg, layout.IsolinuxHeader(s), m.cfg.LBA*layout.Block); err != nil {
			return err
		}
	}
	return stepFAT(dev, layout.LoaderConf, m.loader, layout.LoaderConfText(s))
}

// SetDefault makes slot s, which must hold a release, the default of both
// boot paths: going back to the previous release without the boot menu.
func SetDefault(dev Device, s string) error {
	m, err := Open(dev)
	if err != nil {
		return err
	}
	sl := m.slots[s]
	if sl == nil || sl.Version == "" || sl.entryText.Version == "" {
		return fmt.Errorf("slot %s holds no release", s)
	}
	return m.flip(dev, s)
}

func stepFAT(dev Device, what string, f fat.Found, b []byte) error {
	if int64(len(b)) != f.Size {
		return fmt.Errorf("%s: %d bytes on the medium, want %d: not written by gridnode's builder", what, f.Size, len(b))
	}
	if err := fat.WriteContent(dev, f, b); err != nil {
		return writeErr(what, err)
	}
	if err := dev.Sync(); err != nil {
		return writeErr(what, err)
	}
	return nil
}

// copySlot copies want.Size bytes of uki into the slot, hashing what it
// reads: a source that is not the signed release stops before the read-back.
func copySlot(dev Device, uki io.ReaderAt, want doc.File, s *slot) error {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < want.Size; {
		n := min(int64(len(buf)), want.Size-off)
		if _, err := uki.ReadAt(buf[:n], off); err != nil {
			return fmt.Errorf("reading the release UKI: %w", err)
		}
		h.Write(buf[:n])
		if _, err := dev.WriteAt(buf[:n], s.at+off); err != nil {
			return writeErr("slot "+s.Name, err)
		}
		off += n
	}
	if err := want.CheckFile(h.Sum(nil), want.Size); err != nil {
		return fmt.Errorf("the release UKI given: %w", err)
	}
	if err := dev.Sync(); err != nil {
		return writeErr("slot "+s.Name, err)
	}
	return nil
}
