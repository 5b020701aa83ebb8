package container

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// sealedCopy copies the program at path into a sealed memfd (no write, no
// resize, no more seals) and returns it open. The helper is run from it:
// no container can overwrite the binary its runtime executes
// (CVE-2019-5736), and libcontainer, finding itself already sealed, skips
// the copy of itself it would otherwise make at every container start (a
// 7 MiB copy on kernels before 6.5, which lack the overlayfs way).
func sealedCopy(path string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("container helper: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("gridnode-container", unix.MFD_ALLOW_SEALING|unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("container helper: memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "gridnode-container")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, fmt.Errorf("container helper: copying %s: %w", path, err)
	}
	if err := f.Chmod(0o511); err != nil {
		f.Close()
		return nil, err
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("container helper: sealing: %w", err)
	}
	return f, nil
}
