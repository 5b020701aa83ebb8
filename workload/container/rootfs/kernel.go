package rootfs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// attachLoop binds f to a free loop device that detaches itself when its
// last user (the mount) goes away, so no loop device outlives a container,
// even when the helper that mounted it is killed. It returns the device
// open: the kernel detaches it at its last close unless it is mounted by
// then, so the caller closes it after mounting.
func attachLoop(f *os.File) (*os.File, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w (is the loop module loaded?)", err)
	}
	defer ctl.Close()
	// Another process may take the free device between the two calls:
	// ask again a few times.
	for try := 0; try < 8; try++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("rootfs: finding a free loop device: %w", err)
		}
		dev := "/dev/loop" + strconv.Itoa(n)
		lf, err := os.OpenFile(dev, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("rootfs: %w", err)
		}
		cfg := &unix.LoopConfig{Fd: uint32(f.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		err = unix.IoctlLoopConfigure(int(lf.Fd()), cfg)
		if err == nil {
			return lf, nil
		}
		lf.Close()
		if err != unix.EBUSY {
			return nil, fmt.Errorf("rootfs: attaching %s to %s: %w", f.Name(), dev, err)
		}
	}
	return nil, errors.New("rootfs: every free loop device was taken by another process; try again")
}

// userNamespace returns a user namespace that maps ids 0..size-1 to
// hostID..hostID+size-1, the mapping an id-mapped mount takes. The kernel
// makes one only for a process: a child is started in a new namespace and
// stopped by ptrace at its exec, before it runs any code, then killed once
// its namespace is open.
func userNamespace(hostID, size uint32) (*os.File, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(hostID), Size: int(size)}}
	cmd := exec.Command(self)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: m,
		GidMappings: m,
		Ptrace:      true,
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("rootfs: starting a process in a new user namespace: %w", err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	return ns, nil
}
