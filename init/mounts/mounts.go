// Package mounts sets up the file systems PID 1 needs before anything else
// (/proc, /sys, /dev, /run, /tmp, cgroups) and takes every mount down again
// at shutdown.
package mounts

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one file system to mount.
type Mount struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
	// Optional mounts are skipped when their target's parent is missing
	// (no cgroup2 in this kernel, say).
	Optional bool
}

const nodev = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

// Early are the mounts PID 1 makes first, in order.
var Early = []Mount{
	{"proc", "/proc", "proc", nodev, "", false},
	{"sysfs", "/sys", "sysfs", nodev, "", false},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755", false},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666", false},
	{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", false},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755", false},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", false},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", nodev, "", true},
}

// Do mounts each of ms, creating targets as needed; a target that is
// already a mount point of that type (the kernel's own devtmpfs, say) is
// left alone. It returns one error per mount that failed and goes on.
func Do(ms []Mount) []error {
	var errs []error
	for _, m := range ms {
		if m.Optional {
			if _, err := os.Stat(m.Target); err != nil {
				continue
			}
		}
		if mounted(m.Target, m.FSType) {
			continue
		}
		if err := os.MkdirAll(m.Target, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("mount %s: %w", m.Target, err))
			continue
		}
		if err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data); err != nil && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, fmt.Errorf("mount %s on %s: %w", m.FSType, m.Target, err))
		}
	}
	return errs
}

// Entry is a line of /proc/mounts.
type Entry struct{ Source, Target, FSType string }

// Table reads /proc/mounts.
func Table() ([]Entry, error) {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var l []Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 {
			l = append(l, Entry{f[0], unescape(f[1]), f[2]})
		}
	}
	return l, sc.Err()
}

// unescape undoes /proc/mounts' octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func mounted(target, fstype string) bool {
	t, err := Table()
	if err != nil {
		return false
	}
	for _, e := range t {
		if e.Target == target && e.FSType == fstype {
			return true
		}
	}
	return false
}

// UnmountAll unmounts everything but the root, most recent first, after a
// sync. A busy file system is detached (lazily unmounted) rather than left
// mounted: at this point nothing runs that could still write to it, and its
// data was synced.
func UnmountAll(logf func(string, ...any)) {
	unix.Sync()
	t, err := Table()
	if err != nil {
		logf("unmount: reading /proc/mounts: %v", err)
		return
	}
	for i := len(t) - 1; i >= 0; i-- {
		e := t[i]
		if e.Target == "/" {
			continue
		}
		if err := unix.Unmount(e.Target, 0); err != nil {
			if err2 := unix.Unmount(e.Target, unix.MNT_DETACH); err2 != nil && !errors.Is(err2, unix.EINVAL) && !errors.Is(err2, unix.ENOENT) {
				logf("unmount %s: %v", e.Target, err)
			}
		}
	}
	unix.Sync()
}
