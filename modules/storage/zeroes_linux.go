package storage

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

func ioctlRange(f *os.File, req uint, r *[2]uint64) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(req), uintptr(unsafe.Pointer(r)))
	if errno != 0 {
		return errno
	}
	return nil
}
