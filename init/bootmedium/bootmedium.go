// Package bootmedium finds the medium a node booted from — a CD-ROM or USB
// stick whose file system is labelled GRIDNODE — without udev: it reads the
// labels of ISO 9660 and FAT file systems straight from the block devices.
//
// PID 1 publishes what it found as the fact "bootmedium":
//
//	{"device": "sda1", "disk": "sda", "fstype": "vfat"}
//
// so that the hardware module leaves that disk out of the node's capacity.
package bootmedium

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/gridnode/gridnode/node/fact"
)

// Label is the file-system label the image builder gives boot media.
const Label = "GRIDNODE"

// ErrNoFS means the device holds neither ISO 9660 nor FAT.
var ErrNoFS = errors.New("no ISO 9660 or FAT file system")

// ReadLabel returns the label and the file-system type (iso9660, vfat) of
// the file system on r.
func ReadLabel(r io.ReaderAt) (label, fstype string, err error) {
	// ISO 9660: the primary volume descriptor is sector 16 (2 KiB sectors).
	pvd := make([]byte, 72)
	if _, err := r.ReadAt(pvd, 16*2048); err == nil && pvd[0] == 1 && string(pvd[1:6]) == "CD001" {
		return strings.TrimRight(string(pvd[40:72]), " \x00"), "iso9660", nil
	}
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, 0); err != nil {
		return "", "", fmt.Errorf("reading boot sector: %w", err)
	}
	if bs[510] != 0x55 || bs[511] != 0xAA {
		return "", "", ErrNoFS
	}
	// FAT32 has no 16-bit FAT size; its extended BPB then sits further on.
	off, typ := 38, 54
	if binary.LittleEndian.Uint16(bs[22:24]) == 0 {
		off, typ = 66, 82
	}
	if !bytes.HasPrefix(bs[typ:typ+8], []byte("FAT")) || bs[off] != 0x29 {
		return "", "", ErrNoFS
	}
	label = strings.TrimRight(string(bs[off+5:off+16]), " \x00")
	if label == "NO NAME" {
		label = ""
	}
	return label, "vfat", nil
}

// Devices lists the block devices of the machine (sys is /sys), whole
// disks and partitions, without loop, ram and zram devices.
func Devices(sys string) []string {
	ents, _ := os.ReadDir(filepath.Join(sys, "class/block"))
	var l []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "loop") || strings.HasPrefix(n, "ram") || strings.HasPrefix(n, "zram") {
			continue
		}
		l = append(l, n)
	}
	sort.Strings(l)
	return l
}

// DiskOf returns the whole disk a block device belongs to (sda for sda1).
func DiskOf(sys, dev string) string {
	p := filepath.Join(sys, "class/block", dev)
	if _, err := os.Stat(filepath.Join(p, "partition")); err != nil {
		return dev
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return dev
	}
	return filepath.Base(filepath.Dir(real))
}

// Find looks at every block device for a file system labelled Label
// (case-insensitively, as FAT labels are upper case). devDir is /dev.
// Devices that cannot be read (an empty CD drive) are skipped.
func Find(sys, devDir string) (fact.BootMedium, bool) {
	for _, dev := range Devices(sys) {
		if b, err := os.ReadFile(filepath.Join(sys, "class/block", dev, "size")); err == nil {
			if n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); n == 0 {
				continue
			}
		}
		f, err := os.Open(filepath.Join(devDir, dev))
		if err != nil {
			continue
		}
		label, fstype, err := ReadLabel(f)
		f.Close()
		if err == nil && strings.EqualFold(label, Label) {
			return fact.BootMedium{Device: dev, Disk: DiskOf(sys, dev), FSType: fstype}, true
		}
	}
	return fact.BootMedium{}, false
}
