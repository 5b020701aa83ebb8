// Package rootfs mounts a container's root file system: the image's layer
// folders, read-only and id-mapped into the container's uid range, under an
// overlay whose writable layer is an ext4 file system of its own in a sparse
// file, so that the layer can never grow past its size nor fill the cache
// disk, and a container sees no other container's files.
//
// The layer folders are shared by every deployment that uses the image and
// stay owned by uid 0 on disk; an id-mapped mount (mount_setattr with
// MOUNT_ATTR_IDMAP) shows them owned by the container's range instead, so
// root in the container owns its image's files without a copy or a chown.
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/ext4"
	"golang.org/x/sys/unix"
)

// Layout is where one container's root file system lives: Dir/rootfs is the
// overlay, Dir/rw the writable ext4, Dir/upper.img its backing file.
type Layout struct {
	Dir string
	// Lowers are the image's unpacked layer folders, topmost first.
	Lowers []string
	// Disk is the writable layer's size in bytes.
	Disk int64
	// HostID is the first host uid (and gid) of the container's range of
	// Size ids; container id 0 is HostID.
	HostID, Size uint32
}

// minDisk is the smallest writable layer ext4 can hold a journal in.
const minDisk = 16 << 20

// Root is the overlay's mount point.
func (l Layout) Root() string { return filepath.Join(l.Dir, "rootfs") }

func (l Layout) rw() string    { return filepath.Join(l.Dir, "rw") }
func (l Layout) image() string { return filepath.Join(l.Dir, "upper.img") }
func (l Layout) lower(i int) string {
	return filepath.Join(l.Dir, "lower", strconv.Itoa(i))
}

// Mount builds a fresh root file system: a new, empty writable layer each
// time (what a workload wrote there before is gone; volumes keep data).
func (l Layout) Mount() (err error) {
	if len(l.Lowers) == 0 {
		return errors.New("rootfs: no image layers")
	}
	if l.Disk < minDisk {
		return fmt.Errorf("rootfs: writable layer of %d bytes is too small; give the workload a disk of at least %d MiB", l.Disk, minDisk>>20)
	}
	for _, d := range l.Lowers {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return fmt.Errorf("rootfs: image layer %s is not an unpacked folder (%v); pull the image again", d, err)
		}
	}
	// Search permission for the container's root user, who opens the root
	// file system from inside its user namespace.
	if err := os.MkdirAll(l.Dir, 0o711); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	defer func() {
		if err != nil {
			l.Unmount()
		}
	}()
	if err := l.mountWritable(); err != nil {
		return err
	}
	return l.mountOverlay()
}

// mountWritable formats a sparse file of Disk bytes as ext4 and mounts it
// through a loop device that frees itself when unmounted.
func (l Layout) mountWritable() error {
	os.Remove(l.image())
	f, err := os.OpenFile(l.image(), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("rootfs: writable layer: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(l.Disk); err != nil {
		return fmt.Errorf("rootfs: writable layer %s: %w", l.image(), err)
	}
	// No journal: the layer is thrown away at every start, so there is
	// nothing to recover after a crash, and formatting and unmounting
	// have no journal to write.
	p := &ext4.Params{InodeRatio: 16384, Features: []ext4.FeatureOpt{ext4.WithFeatureHasJournal(false)}}
	if _, err := ext4.Create(file.New(f, false), l.Disk, 0, 512, p); err != nil {
		return fmt.Errorf("rootfs: formatting the writable layer %s: %w", l.image(), err)
	}
	if err := os.MkdirAll(l.rw(), 0o711); err != nil {
		return err
	}
	dev, err := attachLoop(f)
	if err != nil {
		return err
	}
	err = unix.Mount(dev.Name(), l.rw(), "ext4", unix.MS_NOSUID|unix.MS_NODEV, "")
	dev.Close() // mounted, the loop device lives as long as the mount
	if err != nil {
		return fmt.Errorf("rootfs: mounting the writable layer %s (%s) on %s: %w", l.image(), dev.Name(), l.rw(), err)
	}
	for _, d := range []string{"upper", "work"} {
		p := filepath.Join(l.rw(), d)
		if err := os.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	// The root folder of the container belongs to its root user.
	return os.Chown(filepath.Join(l.rw(), "upper"), int(l.HostID), int(l.HostID))
}

// mountOverlay id-maps each layer into the container's range on a private
// mount point, puts the overlay over them, and drops the private mounts
// (the overlay keeps its own references).
func (l Layout) mountOverlay() error {
	userns, err := userNamespace(l.HostID, l.Size)
	if err != nil {
		return err
	}
	defer userns.Close()
	var lowers []string
	defer func() {
		for _, d := range lowers {
			unix.Unmount(d, unix.MNT_DETACH)
			os.Remove(d)
		}
		os.Remove(filepath.Join(l.Dir, "lower"))
	}()
	for i, src := range l.Lowers {
		dst := l.lower(i)
		if err := os.MkdirAll(dst, 0o711); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
		lowers = append(lowers, dst)
		if err := idmapMount(src, dst, int(userns.Fd())); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(l.Root(), 0o755); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	opts := "lowerdir=" + strings.Join(lowers, ":") +
		",upperdir=" + filepath.Join(l.rw(), "upper") + ",workdir=" + filepath.Join(l.rw(), "work")
	if len(opts) >= os.Getpagesize() {
		return fmt.Errorf("rootfs: %d image layers make overlay options of %d bytes, over the kernel's limit of a page; flatten the image", len(l.Lowers), len(opts))
	}
	if err := unix.Mount("overlay", l.Root(), "overlay", unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("rootfs: mounting the overlay on %s: %w (does the kernel have overlay with id-mapped layers, Linux ≥ 5.19?)", l.Root(), err)
	}
	return nil
}

// idmapMount clones the folder src as a detached mount, id-maps it through
// the user namespace userns and attaches it at dst, read-only.
func idmapMount(src, dst string, userns int) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("rootfs: cloning layer %s: %w", src, err)
	}
	defer unix.Close(fd)
	attr := &unix.MountAttr{
		Attr_set:  unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV,
		Userns_fd: uint64(userns),
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return fmt.Errorf("rootfs: id-mapping layer %s: %w (the layer's file system must support id-mapped mounts: ext4, btrfs, tmpfs on Linux ≥ 5.12/6.3)", src, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("rootfs: attaching layer %s at %s: %w", src, dst, err)
	}
	return nil
}

// Unmount takes the root file system down and removes the writable layer;
// what is already gone is no error, so it also cleans up after a crash.
func (l Layout) Unmount() error {
	var errs []error
	for _, p := range []string{l.Root(), l.rw()} {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			errs = append(errs, fmt.Errorf("rootfs: unmounting %s: %w", p, err))
		}
		os.Remove(p)
	}
	if err := os.Remove(l.image()); err != nil && !os.IsNotExist(err) {
		errs = append(errs, fmt.Errorf("rootfs: %w", err))
	}
	return errors.Join(errs...)
}
