package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gridnode/gridnode/workload/container/rootfs"
)

// What the node program and the container helper (cmd/gridnode-container,
// package shim) exchange: files in a container's bundle folder, one line on
// the helper's stdout, and the helper's arguments.

// Files of a bundle.
const (
	ConfigFile = "config.json" // the OCI runtime spec
	ExitFile   = "exit.json"   // Exit, written by the helper when the container ended
	ShimPid    = "shim.pid"    // the pid of the helper that runs the container
	StateDir   = "state"       // libcontainer's state folder
	LogFile    = "log"         // the container's stdout and stderr
)

// OutputEnv, set to "3" in the helper's environment, says the container's
// stdout and stderr go to the helper's fd 3 (a pipe) instead of LogFile.
const OutputEnv = "GRIDNODE_CONTAINER_OUTPUT_FD"

// Annotations of config.json that say how to build the root file system.
const (
	AnnotationLowers = "org.gridnode.rootfs.lowers" // JSON list of layer folders, topmost first
	AnnotationDisk   = "org.gridnode.rootfs.disk"   // writable layer size in bytes
)

// Exit is how a container ended.
type Exit struct {
	Code   int    `json:"code"`
	Signal string `json:"signal,omitempty"`
	// OOMKilled says the kernel killed a process of the container for
	// going over its memory limit.
	OOMKilled bool `json:"oom_killed,omitempty"`
	// Error says why the container could not start (Code is -1), or that
	// its helper died and the exit is unknown.
	Error string    `json:"error,omitempty"`
	At    time.Time `json:"at"`
}

// Started is the line the helper prints once the container runs.
type Started struct {
	Pid int `json:"pid"`
}

// Stats is a container's use of its limits, as the helper prints it.
type Stats struct {
	MemoryBytes uint64 `json:"memory_bytes"`
	CPUNanos    uint64 `json:"cpu_nanos"` // CPU time used since the start
	Pids        uint64 `json:"pids"`
}

// Parent is the cap of the cgroup every workload runs under, so that
// together they leave the node its reserve.
type Parent struct {
	Path        string  `json:"path"` // e.g. /workloads
	MemoryBytes int64   `json:"memory_bytes"`
	CPUs        float64 `json:"cpus"`
	Pids        int64   `json:"pids"`
}

// WriteJSON writes v to path through a rename, so a reader never sees half
// a file. Nothing is synced to disk: bundles do not outlive a reboot (the
// workloads module recreates them from its own state), and a sync on a busy
// disk would cost every container start milliseconds.
func WriteJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// IsShim says whether pid is the helper running bundle (and not another
// process that got the pid of a helper long gone).
func IsShim(pid int, bundle string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	return len(args) == 3 && args[1] == "run" && filepath.Clean(args[2]) == bundle
}

// ReadSpec reads the OCI spec of the bundle folder.
func ReadSpec(bundle string) (*specs.Spec, error) {
	var s specs.Spec
	path := filepath.Join(bundle, ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.Linux == nil || len(s.Linux.UIDMappings) != 1 || s.Process == nil {
		return nil, fmt.Errorf("%s: a gridnode container has a process and exactly one uid mapping", path)
	}
	return &s, nil
}

// LayoutOf is the root file system the spec of bundle describes.
func LayoutOf(bundle string, s *specs.Spec) (rootfs.Layout, error) {
	path := filepath.Join(bundle, ConfigFile)
	l := rootfs.Layout{Dir: bundle, HostID: s.Linux.UIDMappings[0].HostID, Size: s.Linux.UIDMappings[0].Size}
	if err := json.Unmarshal([]byte(s.Annotations[AnnotationLowers]), &l.Lowers); err != nil {
		return l, fmt.Errorf("%s: annotation %s: %w", path, AnnotationLowers, err)
	}
	var err error
	if l.Disk, err = strconv.ParseInt(s.Annotations[AnnotationDisk], 10, 64); err != nil {
		return l, fmt.Errorf("%s: annotation %s: %w", path, AnnotationDisk, err)
	}
	return l, nil
}
