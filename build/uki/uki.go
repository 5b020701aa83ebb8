// Package uki writes a unified kernel image: Debian's systemd EFI stub
// (linuxx64.efi.stub) with .osrel, .cmdline, .initrd and .linux sections
// appended, so UEFI firmware boots kernel, initramfs and command line as one
// file (EFI/BOOT/BOOTX64.EFI on an ESP).
//
// The sections are appended the way ukify does it: new section headers after
// the stub's, each section at the next free virtual address aligned to the
// page size, raw data aligned to the stub's FileAlignment, .linux last. The
// output depends only on the inputs: the PE timestamp and checksum are zero.
package uki

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gridnode/gridnode/build/media"
	"github.com/gridnode/gridnode/upgrade/layout"
)

// Image is a UKI ready to be streamed: the modified stub headers and the
// sections, with kernel and initramfs read from their files when written.
type Image struct {
	head  []byte // stub with patched headers, padded to the first new section
	parts []part
	size  int64
}

type part struct {
	name string
	data []byte // or
	file string
	size int64 // bytes of content
	pad  int64 // zero bytes after the content
	off  int64 // file offset of the content in the image
}

// Section flags of the appended sections, as ukify sets them:
// initialized data, readable.
const sectionFlags = pe.IMAGE_SCN_CNT_INITIALIZED_DATA | pe.IMAGE_SCN_MEM_READ

// pageSize aligns the virtual addresses of the new sections; the stub's own
// SectionAlignment (512) would do for the PE loader, but the kernel is
// happier at a page boundary.
const pageSize = 4096

// OSRelease is the .osrel text for a version.
func OSRelease(version string) string {
	return fmt.Sprintf("NAME=gridnode\nID=gridnode\nPRETTY_NAME=\"gridnode %s\"\nVERSION_ID=%s\nVERSION=%s\n", version, version, version)
}

// New lays out a UKI of in's stub, kernel and initramfs with the given
// command line (in.Cmdline is not used, so callers can set gridnode.boot).
func New(in media.Input, cmdline string) (*Image, error) {
	return NewAligned(in, cmdline, 0)
}

// NewAligned is New with the raw data of every section at a file offset
// that is a multiple of align (a multiple of the stub's FileAlignment), so
// an ISO 9660 file system (align 2048) can point at the kernel and the
// initramfs inside the UKI instead of holding second copies.
func NewAligned(in media.Input, cmdline string, align int64) (*Image, error) {
	stub, err := os.ReadFile(in.EFIStub)
	if err != nil {
		return nil, fmt.Errorf("uki: reading EFI stub: %w (install systemd-boot-efi or set the stub path)", err)
	}
	f, err := pe.NewFile(bytes.NewReader(stub))
	if err != nil {
		return nil, fmt.Errorf("uki: EFI stub %s: %w", in.EFIStub, err)
	}
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok {
		return nil, fmt.Errorf("uki: EFI stub %s is not PE32+ (want the x86-64 stub)", in.EFIStub)
	}
	kernel, err := os.Stat(in.Kernel)
	if err != nil {
		return nil, fmt.Errorf("uki: kernel: %w", err)
	}
	initrd, err := os.Stat(in.Initrd)
	if err != nil {
		return nil, fmt.Errorf("uki: initramfs: %w", err)
	}

	lfanew := int64(binary.LittleEndian.Uint32(stub[0x3c:]))
	coff := lfanew + 4
	opt := coff + 20
	secTable := opt + int64(f.FileHeader.SizeOfOptionalHeader)
	nsec := int64(f.FileHeader.NumberOfSections)
	newTable := secTable + nsec*40
	parts := []part{
		{name: layout.SectionOSRel, data: []byte(OSRelease(in.Version))},
		{name: layout.SectionCmdline, data: []byte(cmdline)},
		{name: layout.SectionInitrd, file: in.Initrd, size: initrd.Size()},
		{name: layout.SectionLinux, file: in.Kernel, size: kernel.Size()},
	}
	end := newTable + int64(len(parts))*40
	firstRaw := int64(oh.SizeOfHeaders)
	for _, s := range f.Sections {
		if s.Offset != 0 && int64(s.Offset) < firstRaw {
			firstRaw = int64(s.Offset)
		}
	}
	if end > firstRaw {
		return nil, fmt.Errorf("uki: EFI stub %s has no room for %d more section headers (%d bytes needed, headers end at %d)", in.EFIStub, len(parts), end, firstRaw)
	}

	fileAlign := int64(oh.FileAlignment)
	rawAlign := max(fileAlign, align)
	if rawAlign%fileAlign != 0 {
		return nil, fmt.Errorf("uki: alignment %d is not a multiple of the stub's FileAlignment %d", align, fileAlign)
	}
	var vaddr int64
	for _, s := range f.Sections {
		if e := int64(s.VirtualAddress) + int64(s.VirtualSize); e > vaddr {
			vaddr = e
		}
	}
	// Raw data goes after everything in the stub file, trailing data included.
	raw := alignUp(int64(len(stub)), rawAlign)
	head := make([]byte, raw)
	copy(head, stub)
	initData := int64(oh.SizeOfInitializedData)
	for i := range parts {
		p := &parts[i]
		if p.data != nil {
			p.size = int64(len(p.data))
		}
		vaddr = alignUp(vaddr, pageSize)
		if i > 0 {
			gap := alignUp(raw, rawAlign) - raw
			parts[i-1].pad += gap
			raw += gap
		}
		rawSize := alignUp(p.size, fileAlign)
		h := head[newTable+int64(i)*40:]
		copy(h[0:8], p.name)
		le32(h[8:], uint32(p.size))   // VirtualSize
		le32(h[12:], uint32(vaddr))   // VirtualAddress
		le32(h[16:], uint32(rawSize)) // SizeOfRawData
		le32(h[20:], uint32(raw))     // PointerToRawData
		le32(h[36:], sectionFlags)    // Characteristics
		if p.size > 1<<32-1 || raw > 1<<32-1 {
			return nil, fmt.Errorf("uki: section %s too large for a PE image", p.name)
		}
		p.off = raw
		p.pad = rawSize - p.size
		raw += rawSize
		vaddr += p.size
		initData += rawSize
	}
	binary.LittleEndian.PutUint16(head[coff+2:], uint16(nsec+int64(len(parts))))
	le32(head[coff+4:], 0) // TimeDateStamp: reproducible
	le32(head[opt+8:], uint32(initData))
	le32(head[opt+56:], uint32(alignUp(vaddr, int64(oh.SectionAlignment))))
	le32(head[opt+64:], 0) // CheckSum: not checked by UEFI; zero rather than stale
	return &Image{head: head, parts: parts, size: raw}, nil
}

// Size is the size of the UKI in bytes.
func (im *Image) Size() int64 { return im.size }

// SectionOffset returns the file offset and size of a section's content, so
// callers can point other file systems at the kernel inside the UKI.
func (im *Image) SectionOffset(name string) (off, size int64, ok bool) {
	for _, p := range im.parts {
		if p.name == name {
			return p.off, p.size, true
		}
	}
	return 0, 0, false
}

// WriteTo streams the UKI to w.
func (im *Image) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(im.head)
	total := int64(n)
	if err != nil {
		return total, err
	}
	zero := make([]byte, 4096)
	for _, p := range im.parts {
		if p.data != nil {
			n, err := w.Write(p.data)
			total += int64(n)
			if err != nil {
				return total, err
			}
		} else {
			f, err := os.Open(p.file)
			if err != nil {
				return total, fmt.Errorf("uki: %w", err)
			}
			c, err := io.CopyN(w, f, p.size)
			f.Close()
			total += c
			if err != nil {
				return total, fmt.Errorf("uki: copying %s: %w (did it change while writing?)", p.file, err)
			}
		}
		for left := p.pad; left > 0; {
			n, err := w.Write(zero[:min(left, int64(len(zero)))])
			total += int64(n)
			left -= int64(n)
			if err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

// Write writes the UKI of in, with in.Cmdline as is, to the file path. Its
// kernel and initramfs start on 2048-byte blocks (layout.Block): the same
// bytes go into a boot medium's release slot, where ISO 9660 records point
// at them for BIOS boot.
func Write(in media.Input, path string) error {
	im, err := NewAligned(in, in.Cmdline, layout.Block)
	if err != nil {
		return err
	}
	return writeFile(path, im)
}

func writeFile(path string, im *Image) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".uki-*")
	if err != nil {
		return fmt.Errorf("uki: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := im.WriteTo(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("uki: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("uki: writing %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

func alignUp(v, a int64) int64 { return (v + a - 1) / a * a }

func le32(b []byte, v uint32) { binary.LittleEndian.PutUint32(b, v) }

// Format writes DIR/gridnode-VERSION.efi; it has the signature of the
// builder's format writers.
func Format(in media.Input, dir string) ([]string, error) {
	p := filepath.Join(dir, layout.UKIName(in.Version))
	if err := Write(in, p); err != nil {
		return nil, err
	}
	return []string{p}, nil
}
