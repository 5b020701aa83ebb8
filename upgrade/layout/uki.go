package layout

import (
	"bufio"
	"bytes"
	"debug/pe"
	"fmt"
	"io"
	"os"
	"strings"
)

// Extent is a byte range.
type Extent struct{ Off, Size int64 }

// UKI is where a UKI's sections are, and how long the UKI is.
type UKI struct {
	Sections map[string]Extent
	Size     int64 // the end of the last section's raw data
}

// ReadUKI finds the sections of the UKI at the start of r (which may go on
// past it: a slot holds a UKI and then zeros).
func ReadUKI(r io.ReaderAt, limit int64) (*UKI, error) {
	f, err := pe.NewFile(io.NewSectionReader(r, 0, limit))
	if err != nil {
		return nil, fmt.Errorf("not a UKI (PE image): %w", err)
	}
	defer f.Close()
	u := &UKI{Sections: map[string]Extent{}}
	for _, s := range f.Sections {
		u.Sections[s.Name] = Extent{int64(s.Offset), int64(s.VirtualSize)}
		if end := int64(s.Offset) + int64(s.Size); end > u.Size {
			u.Size = end
		}
	}
	for _, n := range []string{SectionOSRel, SectionCmdline, SectionInitrd, SectionLinux} {
		x, ok := u.Sections[n]
		if !ok {
			return nil, fmt.Errorf("not a gridnode UKI: no %s section", n)
		}
		if x.Off+x.Size > limit {
			return nil, fmt.Errorf("UKI section %s ends at byte %d, past the %d bytes there are", n, x.Off+x.Size, limit)
		}
	}
	return u, nil
}

// Aligned reports whether the kernel and initramfs sections start on ISO
// 9660 blocks, so a medium's BIOS path can point at them.
func (u *UKI) Aligned() bool {
	return u.Sections[SectionLinux].Off%Block == 0 && u.Sections[SectionInitrd].Off%Block == 0
}

// Read returns the content of section name.
func (u *UKI) Read(r io.ReaderAt, name string) ([]byte, error) {
	x := u.Sections[name]
	b := make([]byte, x.Size)
	if _, err := r.ReadAt(b, x.Off); err != nil {
		return nil, fmt.Errorf("reading UKI section %s: %w", name, err)
	}
	return b, nil
}

// Version is VERSION_ID from the UKI's .osrel.
func (u *UKI) Version(r io.ReaderAt) (string, error) {
	b, err := u.Read(r, SectionOSRel)
	if err != nil {
		return "", err
	}
	if v := VersionID(b); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("UKI %s has no VERSION_ID", SectionOSRel)
}

// OSRelease is where a running image keeps its os-release (the builder
// writes it, with the same VERSION_ID as its UKI's .osrel).
const OSRelease = "/etc/os-release"

// VersionID is VERSION_ID of an os-release text, "" when it has none.
func VersionID(osrel []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(osrel))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VERSION_ID="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// Running is the version of the release this node runs: VERSION_ID of
// OSRelease.
func Running() (string, error) {
	b, err := os.ReadFile(OSRelease)
	if err != nil {
		return "", fmt.Errorf("the running release's version: %w", err)
	}
	if v := VersionID(b); v != "" {
		return v, nil
	}
	return "", fmt.Errorf("the running release's version: %s has no VERSION_ID", OSRelease)
}

// Cmdline is the UKI's .cmdline, without trailing NULs and spaces.
func (u *UKI) Cmdline(r io.ReaderAt) (string, error) {
	b, err := u.Read(r, SectionCmdline)
	return strings.TrimRight(string(b), "\x00 \n"), err
}
