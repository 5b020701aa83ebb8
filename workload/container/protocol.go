package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gridnode/gridnode/node/fact"
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

// WriteJSON writes v to path atomically: a reader sees the old file or the
// whole new one, also after a power cut.
func WriteJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return fact.WriteFile(path, append(b, '\n'), 0o644)
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
