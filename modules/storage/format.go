package storage

import (
	"fmt"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/filesystem/ext4"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

// Partition geometry: 1 MiB aligned start, 1 MiB left free at the end (the
// backup GPT lives in the last 33 sectors).
const (
	sector    = 512
	partStart = 2048 // sectors
)

// inodeRatio is one inode per 64 KiB: the cache holds image layers and
// blobs, not millions of small files, and fewer inodes make the file system
// faster to write (an 8 GiB disk: 32 MiB of inode tables, not 256 MiB).
const inodeRatio = 65536

// Format writes a GPT with one Linux partition over the whole disk (or image
// file) at path and an ext4 file system labelled Label in it, then has the
// kernel re-read the partition table (for a block device). It returns the
// partition's offset and size in bytes.
//
// Format destroys what the disk holds: callers decide with Inspect and the
// farmer's wipe list first.
func Format(path string) (offset, size int64, err error) {
	return format(path, func(s backend.Storage) backend.Storage { return zeroAware{s} })
}

// format is Format writing the file system through the disk that through
// returns (tests compare zeroAware with the plain disk).
func format(path string, through func(backend.Storage) backend.Storage) (offset, size int64, err error) {
	d, err := diskfs.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("opening %s: %w", path, err)
	}
	defer d.Close()
	if d.LogicalBlocksize != sector {
		return 0, 0, fmt.Errorf("%s has %d-byte sectors; only 512-byte sectors are supported for the cache", path, d.LogicalBlocksize)
	}
	total := d.Size / sector
	end := total - partStart - 1 // 1 MiB free at the end, aligned like the start
	if end <= partStart+(64<<20)/sector {
		return 0, 0, fmt.Errorf("%s is too small for a cache (%d bytes)", path, d.Size)
	}
	table := &gpt.Table{
		LogicalSectorSize:  sector,
		PhysicalSectorSize: int(d.PhysicalBlocksize),
		ProtectiveMBR:      true,
		Partitions: []*gpt.Partition{{
			Index: 1,
			Start: partStart,
			End:   uint64(end),
			Type:  gpt.LinuxFilesystem,
			Name:  Label,
		}},
	}
	if table.PhysicalSectorSize == 0 {
		table.PhysicalSectorSize = sector
	}
	// Partition also re-reads the table (BLKRRPART) on a block device.
	if err := d.Partition(table); err != nil {
		return 0, 0, fmt.Errorf("writing the partition table on %s: %w", path, err)
	}
	offset = partStart * sector
	size = (end - partStart + 1) * sector
	if _, err := ext4.Create(through(d.Backend), size, offset, sector, &ext4.Params{VolumeName: Label, InodeRatio: inodeRatio}); err != nil {
		return 0, 0, fmt.Errorf("writing the ext4 file system on %s: %w", path, err)
	}
	// The file system went through the whole-disk device; flush it before
	// the kernel reads it through the partition's.
	if f, err := d.Backend.Sys(); err == nil {
		if err := f.Sync(); err != nil {
			return 0, 0, fmt.Errorf("flushing %s: %w", path, err)
		}
	}
	if err := d.ReReadPartitionTable(); err != nil {
		return 0, 0, fmt.Errorf("re-reading the partition table of %s: %w", path, err)
	}
	return offset, size, nil
}
