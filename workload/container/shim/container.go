package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	// Device rules: the eBPF program on cgroup v2, devices.allow on v1.
	_ "github.com/opencontainers/cgroups/devices"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gridnode/gridnode/workload/container"
	"github.com/gridnode/gridnode/workload/container/rootfs"
)

// load reads the bundle's OCI spec and the root file system it describes.
func load(bundle string) (*specs.Spec, rootfs.Layout, error) {
	spec, err := container.ReadSpec(bundle)
	if err != nil {
		return nil, rootfs.Layout{}, err
	}
	l, err := container.LayoutOf(bundle, spec)
	return spec, l, err
}

// id is the container's libcontainer id: its bundle folder's name.
func id(bundle string) string { return filepath.Base(bundle) }

func runContainer(dir string, stdout io.Writer) error {
	bundle, err := bundlePath(dir)
	if err != nil {
		return err
	}
	// A node shutting down signals every process: the container gets
	// its own signal and ends; this helper stays to record that.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if err := subreaper(); err != nil {
		return err
	}
	os.Remove(filepath.Join(bundle, container.ExitFile))
	if err := os.WriteFile(filepath.Join(bundle, container.ShimPid), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	c, p, err := start(bundle)
	if err != nil {
		container.WriteJSON(filepath.Join(bundle, container.ExitFile), container.Exit{Code: -1, Error: err.Error()})
		return err
	}
	pid, _ := p.Pid()
	if err := json.NewEncoder(stdout).Encode(container.Started{Pid: pid}); err != nil {
		return err
	}
	if f, ok := stdout.(*os.File); ok {
		f.Close()
	}
	ps, _ := p.Wait()
	ex := exitOf(ps)
	ex.At = time.Now()
	ex.OOMKilled = oomKilled(c)
	reapOrphans()
	err = container.WriteJSON(filepath.Join(bundle, container.ExitFile), ex)
	return errors.Join(err, c.Destroy())
}

// start starts the container's init on the root file system Create
// mounted.
func start(bundle string) (*libcontainer.Container, *libcontainer.Process, error) {
	spec, err := container.ReadSpec(bundle)
	if err != nil {
		return nil, nil, err
	}
	// specconv resolves the bundle-relative root against the working
	// folder, as runc does.
	if err := os.Chdir(bundle); err != nil {
		return nil, nil, err
	}
	noPivot := onInitramfs()
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: id(bundle), Spec: spec, NoPivotRoot: noPivot})
	if err != nil {
		return nil, nil, fmt.Errorf("container config: %w", err)
	}
	if noPivot {
		// Without pivot_root the container is held by a chroot, which a
		// process allowed to chroot could leave: take that right away.
		dropCapability(cfg.Capabilities, "CAP_SYS_CHROOT")
	}
	c, err := libcontainer.Create(filepath.Join(bundle, container.StateDir), id(bundle), cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("creating container %s: %w", id(bundle), err)
	}
	log, err := output(bundle)
	if err != nil {
		c.Destroy()
		return nil, nil, err
	}
	defer log.Close()
	p := &libcontainer.Process{
		Args: spec.Process.Args, Env: spec.Process.Env, Cwd: spec.Process.Cwd,
		UID: int(spec.Process.User.UID), GID: int(spec.Process.User.GID),
		Stdout: log, Stderr: log, Init: true,
	}
	if err := c.Run(p); err != nil {
		c.Destroy()
		return nil, nil, fmt.Errorf("starting container %s: %w", id(bundle), err)
	}
	return c, p, nil
}

// onInitramfs says whether this process's root is the kernel's initramfs
// (rootfs), which pivot_root cannot leave: the node runs from its
// initramfs unless PID 1 switched to another root. libcontainer then moves
// the container's root over / and chroots into it instead (runc
// --no-pivot).
func onInitramfs() bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		// id parent major:minor root mountpoint options ... - fstype source
		if len(f) > 4 && f[4] == "/" {
			for i, x := range f {
				if x == "-" && i+1 < len(f) {
					return f[i+1] == "rootfs"
				}
			}
		}
	}
	return false
}

func dropCapability(c *configs.Capabilities, name string) {
	if c == nil {
		return
	}
	for _, l := range []*[]string{&c.Bounding, &c.Effective, &c.Permitted, &c.Inheritable, &c.Ambient} {
		*l = slices.DeleteFunc(*l, func(x string) bool { return x == name })
	}
}

// output is where the container's stdout and stderr go: the pipe its
// starter passed as fd 3 (container.OutputEnv), else the bundle's log file.
func output(bundle string) (*os.File, error) {
	if os.Getenv(container.OutputEnv) == "3" {
		return os.NewFile(3, "output"), nil
	}
	return os.OpenFile(filepath.Join(bundle, container.LogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
}

func exitOf(ps *os.ProcessState) container.Exit {
	if ps == nil {
		return container.Exit{Code: -1, Error: "the container's init could not be waited for"}
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return container.Exit{Code: 128 + int(ws.Signal()), Signal: unix.SignalName(ws.Signal())}
	}
	return container.Exit{Code: ps.ExitCode()}
}

// reapOrphans collects the container's other processes, which the kernel
// kills with its init and hands to this subreaper.
func reapOrphans() {
	for {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(-1, &ws, 0, nil); err != nil {
			return
		}
	}
}

// oomKilled reads the oom_kill counter of the container's memory cgroup
// (memory.events on cgroup v2, memory.oom_control on v1).
func oomKilled(c *libcontainer.Container) bool {
	st, err := c.State()
	if err != nil {
		return false
	}
	for key, file := range map[string]string{"": "memory.events", "memory": "memory.oom_control"} {
		if dir, ok := st.CgroupPaths[key]; ok {
			if n := counter(filepath.Join(dir, file), "oom_kill"); n > 0 {
				return true
			}
		}
	}
	return false
}

// counter reads "name N" from a cgroup key-value file.
func counter(path, name string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, _ := strings.Cut(s.Text(), " ")
		if k == name {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// loadContainer returns the libcontainer container of the bundle dir.
func loadContainer(dir string) (*libcontainer.Container, error) {
	bundle, err := bundlePath(dir)
	if err != nil {
		return nil, err
	}
	c, err := libcontainer.Load(filepath.Join(bundle, container.StateDir), id(bundle))
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id(bundle), err)
	}
	return c, nil
}

func kill(dir string, sig syscall.Signal) error {
	c, err := loadContainer(dir)
	if err != nil {
		return err
	}
	return c.Signal(sig)
}

// remove kills the container, waits for its helper to take it down, and
// cleans up whatever a helper that died left behind.
func remove(dir string) error {
	bundle, err := bundlePath(dir)
	if err != nil {
		return err
	}
	_, l, err := load(bundle)
	if err != nil {
		return err
	}
	if c, err := libcontainer.Load(filepath.Join(bundle, container.StateDir), id(bundle)); err == nil {
		if st, _ := c.Status(); st != libcontainer.Stopped {
			c.Signal(unix.SIGKILL)
		}
		waitShim(bundle, 10*time.Second)
		// The helper destroys the container as it exits; this is for one
		// that died first.
		if c, err := libcontainer.Load(filepath.Join(bundle, container.StateDir), id(bundle)); err == nil {
			if err := c.Destroy(); err != nil {
				return fmt.Errorf("container %s: %w", id(bundle), err)
			}
		}
	}
	return l.Unmount()
}

// waitShim waits until the helper running bundle has exited.
func waitShim(bundle string, limit time.Duration) {
	b, err := os.ReadFile(filepath.Join(bundle, container.ShimPid))
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if !container.IsShim(pid, bundle) {
		return
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(limit.Milliseconds()))
}
