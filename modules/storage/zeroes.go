package storage

import (
	"errors"
	"os"

	"github.com/diskfs/go-diskfs/backend"
	"golang.org/x/sys/unix"
)

// zeroAware is the disk go-diskfs writes the cache file system through. The
// ext4 writer zeroes every inode table and the whole journal with plain
// writes: on an 8 GiB disk well over 100 MiB, most of a first boot's time
// under emulation and seconds on a USB stick. zeroAware turns a write of
// zeroes into a request that the disk zero the range itself
// (BLKZEROOUT: WRITE ZEROES on NVMe, virtio and SCSI disks that have it; the
// kernel writes zero pages itself on those that do not, no slower than we
// would), or a hole in an image file. It is what mkfs.ext4 gets from
// lazy_itable_init, without leaving stale bytes on the disk for the kernel
// to zero later.
type zeroAware struct {
	backend.Storage
}

// minZeroRun is the smallest write handed to the disk as a zeroing request;
// smaller ones are cheaper written.
const minZeroRun = 64 << 10

func (z zeroAware) Writable() (backend.WritableFile, error) {
	w, err := z.Storage.Writable()
	if err != nil {
		return nil, err
	}
	f, _ := z.Storage.Sys()
	return zeroWriter{WritableFile: w, f: f}, nil
}

type zeroWriter struct {
	backend.WritableFile
	f *os.File // for ioctl and fallocate; nil: plain writes only
}

func (w zeroWriter) WriteAt(p []byte, off int64) (int, error) {
	if w.f == nil || len(p) < minZeroRun || !allZero(p) {
		return w.WritableFile.WriteAt(p, off)
	}
	// Whole 4 KiB pages only: the block device's page cache is dropped for
	// the range, and a partial page must keep what was written beside it.
	// The ragged ends are written.
	start := (off + 4095) &^ 4095
	end := (off + int64(len(p))) &^ 4095
	if end-start < minZeroRun || zeroRange(w.f, start, end-start) != nil {
		return w.WritableFile.WriteAt(p, off)
	}
	if _, err := w.WritableFile.WriteAt(p[:start-off], off); err != nil {
		return 0, err
	}
	if _, err := w.WritableFile.WriteAt(p[end-off:], end); err != nil {
		return 0, err
	}
	return len(p), nil
}

// zeroRange has the range read back as zeroes without writing them.
func zeroRange(f *os.File, off, n int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeDevice != 0 {
		// Dirty pages of the range are dropped by the ioctl: write out
		// what came before, so nothing outside the range is lost.
		if err := f.Sync(); err != nil {
			return err
		}
		r := [2]uint64{uint64(off), uint64(n)}
		return ioctlRange(f, unix.BLKZEROOUT, &r)
	}
	if fi.Mode().IsRegular() {
		return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	}
	return errors.ErrUnsupported
}
