package fact

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Workloads is the fact "workloads", published by the workloads module once
// it has recreated the stored deployments (its readiness) and on every
// change. It is public (/status): it names deployments and their states,
// never their images, environment or credentials; an owner reads those
// through the signed API.
type Workloads struct {
	// Socket is the unix socket of the deployments API, which the status
	// server forwards /api/v1/deployments to.
	Socket string `json:"socket"`
	// Capacity is what workloads may use and what they use.
	Capacity Capacity `json:"capacity"`
	// Workloads lists each workload of each deployment, by owner,
	// deployment and workload name.
	Workloads []WorkloadState `json:"workloads"`
	// Error says why the node takes no deployments ("no cache disk ..."),
	// "" when it does.
	Error string `json:"error,omitempty"`
	// Found is what the node holds for workloads as found by looking at
	// the kernel and the cache disk, not at the module's bookkeeping: a
	// person debugging a node (and the tests) sees that an undeployed
	// deployment left nothing behind. Nil where the runtime cannot look.
	Found *WorkloadsFound `json:"found,omitempty"`
}

// WorkloadsFound lists the workloads' kernel objects and files on a node.
// Entries name the container instance ("t42-web.web.g1") or deployment
// ("t42-web") they belong to where the kernel says it.
type WorkloadsFound struct {
	// Processes are the processes of workloads (host uid in a workload
	// range: "PID UID NAME", the program's name without its arguments)
	// and the container helpers ("PID 0 gridnode-container run INSTANCE").
	Processes []string `json:"processes"`
	// Cgroups are the cgroups under the workloads cgroup.
	Cgroups []string `json:"cgroups"`
	// Namespaces are the deployments' network namespaces; Links the veths
	// on the workload bridge.
	Namespaces []string `json:"namespaces"`
	Links      []string `json:"links"`
	// Rules are the nftables rules that forward to a workload ("chain
	// tcp dport 8080 dnat to 10.249.0.2:8080").
	Rules []string `json:"rules"`
	// Mounts are mount points of the workloads' root file systems and
	// writable layers; RootFS the instances' folders on the cache disk.
	Mounts []string `json:"mounts"`
	RootFS []string `json:"rootfs"`
	// Volumes are the deployments' volume folders ("t42-web/data").
	Volumes []string `json:"volumes"`
	// Images are the references of the images in the store.
	Images []string `json:"images"`
}

// Resources are amounts of what workloads use.
type Resources struct {
	// MilliCPU is thousandths of a CPU.
	MilliCPU uint64 `json:"millicpu"`
	Memory   uint64 `json:"memory_bytes"`
	Disk     uint64 `json:"disk_bytes"`
	GPUs     int    `json:"gpus"`
}

// Add returns r plus o.
func (r Resources) Add(o Resources) Resources {
	return Resources{r.MilliCPU + o.MilliCPU, r.Memory + o.Memory, r.Disk + o.Disk, r.GPUs + o.GPUs}
}

// Capacity is the node's capacity for workloads: Total is the machine's
// (CPUs, memory, the cache file system, GPUs), Reserved what the node keeps
// for itself, Used what accepted deployments ask, Free = Total - Reserved -
// Used (never below 0).
type Capacity struct {
	Total    Resources `json:"total"`
	Reserved Resources `json:"reserved"`
	Used     Resources `json:"used"`
	Free     Resources `json:"free"`
}

// WorkloadState is one workload as /status shows it.
type WorkloadState struct {
	Owner      uint64 `json:"owner"`
	Deployment string `json:"deployment"`
	Workload   string `json:"workload"`
	Generation uint64 `json:"generation"`
	// State is one of the Workload* states.
	State    string `json:"state"`
	Restarts int    `json:"restarts"`
	// LastExit is how the last run ended ("exit 1", "killed by SIGKILL",
	// "out of memory"), "" before the first exit.
	LastExit string    `json:"last_exit,omitempty"`
	Since    time.Time `json:"since"`
}

// States of a workload.
const (
	WorkloadPending    = "pending"    // accepted, waiting for its turn (an older generation stopping)
	WorkloadPulling    = "pulling"    // its image is being pulled or unpacked
	WorkloadStarting   = "starting"   // being created and started
	WorkloadRunning    = "running"    // its process runs
	WorkloadRestarting = "restarting" // exited; waits for its backoff to start again
	WorkloadExited     = "exited"     // exited and stays so by its restart policy
	WorkloadFailed     = "failed"     // cannot run (image not found, bad command ...); the reason says why
	WorkloadStopping   = "stopping"   // being stopped (undeploy, new generation)
)

// Summary is a line for people: how many workloads are in which state, and
// what is free, e.g. "2 running, 1 restarting; free 1.5 CPU, 700 MiB
// memory, 20.0 GiB disk" (or why the node takes no deployments).
func (w Workloads) Summary() string {
	if w.Error != "" {
		return w.Error
	}
	counts := map[string]int{}
	var order []string
	for _, s := range w.Workloads {
		if counts[s.State] == 0 {
			order = append(order, s.State)
		}
		counts[s.State]++
	}
	var parts []string
	for _, st := range order {
		parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
	}
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	f := w.Capacity.Free
	cpu := strconv.FormatFloat(float64(f.MilliCPU)/1000, 'f', -1, 64)
	return fmt.Sprintf("%s; free %s CPU, %.0f MiB memory, %.1f GiB disk", strings.Join(parts, ", "), cpu, float64(f.Memory)/(1<<20), float64(f.Disk)/(1<<30))
}
