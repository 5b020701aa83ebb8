// Package container runs workloads as OCI containers on the node. It writes
// each container's OCI runtime spec (namespaces, id mapping, cgroup limits,
// capabilities, seccomp, masked paths) into a bundle folder and drives the
// container helper beside /init (cmd/gridnode-container, package shim),
// which is the one program of the node linked with runc's libcontainer.
// This package is pure Go, as PID 1 and the modules are.
package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Config is one container of a deployment.
type Config struct {
	// ID names the container on the node (its bundle folder and cgroup):
	// letters, digits, '.', '_' and '-'.
	ID       string
	Hostname string
	Args     []string
	Env      []string // KEY=VALUE
	Cwd      string   // default /
	UID, GID uint32   // the process's user inside the container
	// Layers are the image's unpacked layer folders, topmost first.
	Layers []string
	// Limits.
	CPUs        float64 // CPUs; 0.5 is half of one
	MemoryBytes int64   // no swap beyond it; over it the kernel kills in the container
	Pids        int64   // 0: no limit of its own (the workloads cgroup's applies)
	DiskBytes   int64   // the writable layer
	IOWeight    uint16  // cgroup v2 io.weight, 1..10000; 0 leaves the kernel's 100
	// IDs is the deployment's host uid/gid range (Range).
	IDs Range
	// NetNS is the path of the deployment's network namespace; empty gives
	// the container a namespace of its own with only loopback.
	NetNS string
	// Volumes are folders on the cache disk bind-mounted into the container.
	Volumes []Volume
	// Devices are host device nodes (a GPU's) the container may use.
	Devices []string
	// ResolvConf is the path of the resolv.conf the container sees.
	ResolvConf string
	// Cgroup is the parent cgroup path of every workload (default /workloads).
	Cgroup string
}

// Volume is a bind mount of a node folder into the container.
type Volume struct {
	Source, Target string
	ReadOnly       bool
}

// DefaultCgroup is the cgroup every workload runs under.
const DefaultCgroup = "/workloads"

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// cpuPeriod is the CFS bandwidth period, 100 ms (the kernel's default).
const cpuPeriod = 100000

// Capabilities a workload's root keeps: Docker's and containerd's default
// set. They act only inside the container's own user namespace.
var Capabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Masked and read-only /proc and /sys paths: containerd's defaults.
var (
	MaskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
		"/proc/timer_stats", "/sys/firmware", "/sys/devices/virtual/powercap",
		"/sys/kernel/debug", "/sys/kernel/tracing",
	}
	ReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// Spec returns the OCI runtime spec of c, for a bundle whose root file
// system is bundle/rootfs.
func Spec(c Config) (*specs.Spec, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	cwd := c.Cwd
	if cwd == "" {
		cwd = "/"
	}
	caps := append([]string(nil), Capabilities...)
	s := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: c.Hostname,
		Process: &specs.Process{
			Args: c.Args, Env: c.Env, Cwd: cwd,
			User:            specs.User{UID: c.UID, GID: c.GID},
			NoNewPrivileges: true,
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 4096, Soft: 1024}}, // the kernel's defaults
		},
		Mounts: mounts(c),
		Annotations: map[string]string{
			AnnotationDisk: strconv.FormatInt(c.DiskBytes, 10),
		},
	}
	lowers, _ := json.Marshal(c.Layers)
	s.Annotations[AnnotationLowers] = string(lowers)
	ids := []specs.LinuxIDMapping{{ContainerID: 0, HostID: c.IDs.HostID, Size: c.IDs.Size}}
	parent := c.Cgroup
	if parent == "" {
		parent = DefaultCgroup
	}
	quota := int64(c.CPUs * cpuPeriod)
	period := uint64(cpuPeriod)
	swap := c.MemoryBytes // memory+swap = memory: no swap
	s.Linux = &specs.Linux{
		UIDMappings: ids,
		GIDMappings: ids,
		CgroupsPath: filepath.Join(parent, c.ID),
		Namespaces: []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
			{Type: specs.MountNamespace}, {Type: specs.UserNamespace}, {Type: specs.CgroupNamespace},
			{Type: specs.NetworkNamespace, Path: c.NetNS},
		},
		Resources: &specs.LinuxResources{
			Memory:  &specs.LinuxMemory{Limit: &c.MemoryBytes, Swap: &swap},
			CPU:     &specs.LinuxCPU{Quota: &quota, Period: &period},
			Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
		},
		MaskedPaths:   MaskedPaths,
		ReadonlyPaths: ReadonlyPaths,
	}
	sc, err := seccomp.GetDefaultProfile(s)
	if err != nil {
		return nil, fmt.Errorf("container %s: seccomp profile: %w", c.ID, err)
	}
	s.Linux.Seccomp = sc
	if c.Pids > 0 {
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &c.Pids}
	}
	if c.IOWeight > 0 {
		// Left alone unless asked: it needs an io scheduler or io.cost
		// that weighs.
		if cgroup2() {
			s.Linux.Resources.Unified = map[string]string{"io.weight": strconv.Itoa(int(c.IOWeight))}
		} else {
			// cgroup v1's blkio weight is 10..1000.
			w := uint16(10 + (uint32(c.IOWeight)-1)*990/9999)
			s.Linux.Resources.BlockIO = &specs.LinuxBlockIO{Weight: &w}
		}
	}
	if err := devices(s, c.Devices); err != nil {
		return nil, fmt.Errorf("container %s: %w", c.ID, err)
	}
	return s, nil
}

func (c Config) check() error {
	switch {
	case !idPattern.MatchString(c.ID):
		return fmt.Errorf("container id %q: use letters, digits, '.', '_' and '-' (at most 128)", c.ID)
	case len(c.Args) == 0:
		return fmt.Errorf("container %s: no command", c.ID)
	case len(c.Layers) == 0:
		return fmt.Errorf("container %s: no image layers", c.ID)
	case c.CPUs <= 0 || c.MemoryBytes <= 0 || c.DiskBytes <= 0 || c.Pids < 0:
		return fmt.Errorf("container %s: cpu, memory and disk limits are all required (have %g CPUs, %d bytes, %d bytes of disk)", c.ID, c.CPUs, c.MemoryBytes, c.DiskBytes)
	case c.IDs.HostID < FirstHostID || c.IDs.Size == 0:
		return fmt.Errorf("container %s: id range %d+%d is not a workload range (from %d up)", c.ID, c.IDs.HostID, c.IDs.Size, FirstHostID)
	case c.IOWeight > 10000:
		return fmt.Errorf("container %s: io weight %d is over 10000", c.ID, c.IOWeight)
	}
	for _, v := range c.Volumes {
		if !filepath.IsAbs(v.Source) || !filepath.IsAbs(v.Target) {
			return fmt.Errorf("container %s: volume %s:%s: both paths must be absolute", c.ID, v.Source, v.Target)
		}
	}
	return nil
}

// mounts are the container's file systems over its root: runc's default
// set, /sys read-only, the deployment's resolv.conf, and the volumes.
func mounts(c Config) []specs.Mount {
	m := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	}
	if c.NetNS == "" {
		m = append(m, specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}})
	} else {
		// A sysfs mount needs the network namespace to belong to the
		// container's user namespace; the deployment's belongs to the
		// node (so root in the container cannot change its addresses or
		// routes): /sys is the node's, bound read-only all the way down.
		m = append(m, specs.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "rro"}})
	}
	m = append(m, specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}})
	if c.ResolvConf != "" {
		m = append(m, specs.Mount{Destination: "/etc/resolv.conf", Type: "none", Source: c.ResolvConf, Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}})
	}
	for _, v := range c.Volumes {
		o := []string{"rbind", "nosuid", "nodev"}
		if v.ReadOnly {
			o = append(o, "ro")
		}
		m = append(m, specs.Mount{Destination: v.Target, Type: "none", Source: v.Source, Options: o})
	}
	return m
}

// devices lets the container use host device nodes: runc binds them in (a
// user namespace may not make device nodes) and the device cgroup allows
// them.
func devices(s *specs.Spec, paths []string) error {
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return fmt.Errorf("device %s: %w", p, err)
		}
		typ := map[uint32]string{unix.S_IFCHR: "c", unix.S_IFBLK: "b"}[st.Mode&unix.S_IFMT]
		if typ == "" {
			return fmt.Errorf("device %s: not a device node", p)
		}
		major, minor := int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		mode := os.FileMode(st.Mode & 0o777)
		s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: p, Type: typ, Major: major, Minor: minor, FileMode: &mode})
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
			specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: "rwm"})
	}
	return nil
}

// cgroup2 says whether the node has the unified cgroup hierarchy (the node
// has; a development machine may have cgroup v1).
func cgroup2() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}
