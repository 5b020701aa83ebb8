// Package runtime is the contract between the workloads module, which
// decides what runs on a node (modules/workloads), and the container runtime,
// which runs it (runc's libcontainer, networking with netlink and nftables).
// Both sides import this package and nothing of each other.
//
// # Who does what
//
// The module owns every decision and everything persistent: which
// deployments exist (stored on the cache disk), their generations, the image
// store (pulled, verified and unpacked layers), the volumes' folders, the
// host id range of each deployment, restart policy and backoff, log files,
// admission. The runtime owns the kernel objects: namespaces, cgroups,
// mounts, the overlay root and its writable layer, the bridge, veths,
// nftables rules, and the processes.
//
// # Lifetime
//
// A Runtime value is made once per module process. The module calls Setup
// once, first, with what workloads may use in total. It then makes, for each
// deployment, one network (AttachNetwork, then Publish), and for each
// workload one instance at a time:
//
//	Create → Start → Wait … (exit) → Delete
//
// A restart is Delete, then Create and Start again with the same Spec: the
// writable layer starts fresh at each start; only volumes persist. Stopping
// is Signal(SIGTERM), Wait with a grace period, Signal(SIGKILL), Wait,
// Delete. Undeploying a deployment is stopping each instance, then
// DetachNetwork.
//
// Instances do not outlive the module process: when the module starts it
// calls List and deletes everything found (instances and networks left by a
// module that died), then creates what its stored state says. A runtime
// may therefore keep per-instance state in memory and tie each container to
// a helper process that dies with the module; it must not leave anything
// behind that Delete and DetachNetwork of the listed ids cannot remove.
//
// # Rules every implementation keeps
//
//   - Methods are safe for concurrent use, for different ids; the module
//     never calls two methods for the same id at once, except Wait, which
//     may block while Signal, Stats and Delete are called for the same id.
//   - Delete and DetachNetwork of an id that does not exist return nil:
//     both are what cleanup calls after partial failures.
//   - Delete kills a running instance (SIGKILL) before removing it; a Wait
//     blocked on it then returns.
//   - Errors say what failed, for which id, and what to do; the module
//     shows them to the user as the deployment's reason.
//   - Going over Limits.Memory kills the instance (Exit.OOMKilled), never
//     the node or the module.
package runtime

import (
	"context"
	"io"
	"syscall"
	"time"

	"github.com/gridnode/gridnode/node/fact"
)

// Runtime runs instances of workloads. See the package comment for the
// contract.
type Runtime interface {
	// Setup prepares the node once, before anything else: the workloads
	// cgroup capped at total (what the node has after its own reserve),
	// kernel modules, the bridge and the base rule set. It may be called
	// again after a failure.
	Setup(ctx context.Context, total Limits) error

	// AttachNetwork makes the network of one deployment: its network
	// namespace, veth on the node's bridge, address, NAT, DNS, and the
	// rules that keep it from the farmer's LAN, link-local addresses, the
	// node's own services and other owners' workloads. Every instance
	// whose Spec.Deployment is n.Deployment joins that namespace.
	AttachNetwork(ctx context.Context, n Network) (NetworkInfo, error)
	// Publish sets the deployment's published ports to exactly ports
	// (forwarded from the node's addresses to the deployment's address),
	// replacing what was published before; nil unpublishes all.
	Publish(ctx context.Context, deployment string, ports []Port) error
	// DetachNetwork removes the deployment's namespace, veth, rules and
	// published ports.
	DetachNetwork(ctx context.Context, deployment string) error

	// Create makes an instance from spec without starting its process:
	// the overlay root (spec.RootFS below, a fresh writable layer of at
	// most spec.Limits.Disk above), volumes, devices, cgroup and
	// namespaces. The returned Instance has the Spec's id.
	Create(ctx context.Context, spec Spec) (Instance, error)
	// Start runs the instance's process. From then on everything it
	// writes to stdout and stderr goes to spec.Output.
	Start(ctx context.Context, id string) error
	// Signal sends sig to the instance's init process.
	Signal(ctx context.Context, id string, sig syscall.Signal) error
	// Wait blocks until the instance's process has exited and returns how
	// it ended, or until ctx is done. It may be called more than once,
	// also after the exit; each call returns the same Exit.
	Wait(ctx context.Context, id string) (Exit, error)
	// Delete kills the instance if it runs and removes everything Create
	// made but the volumes' folders.
	Delete(ctx context.Context, id string) error
	// Stats reads the instance's resource use.
	Stats(ctx context.Context, id string) (Stats, error)
	// List returns every instance and network this runtime finds on the
	// node, including those a previous module process left.
	List(ctx context.Context) (Inventory, error)
}

// Finder is a Runtime that can also look at the node for what workloads
// hold (processes, cgroups, namespaces, veths, rules, mounts, root file
// systems), by reading the kernel and its folder rather than its own
// bookkeeping. The module publishes it in the workloads fact.
type Finder interface {
	Find(ctx context.Context) (fact.WorkloadsFound, error)
}

// Limits are resource limits: of one instance (Spec.Limits), or of all
// workloads together (Setup).
type Limits struct {
	// MilliCPU is CPU time in thousandths of a CPU (500 = half a CPU):
	// cpu.max "MilliCPU*100 100000".
	MilliCPU uint64
	// Memory in bytes: memory.max; swap is always 0 (memory.swap.max=0).
	Memory uint64
	// PIDs is pids.max; 0 means no limit of its own.
	PIDs uint64
	// Disk is the size of the writable layer in bytes (per instance); in
	// Setup, the disk all workloads may use.
	Disk uint64
	// IOWeight is io.weight, 1..10000; 0 means the default (100).
	IOWeight uint16
}

// Spec is what one instance runs.
type Spec struct {
	// ID names the instance, unique on the node: lower-case letters,
	// digits, '-' and '.', at most 128 bytes (no '/'), e.g.
	// "t42-web.web.g3" (owner twin, deployment, workload, generation).
	ID string
	// Deployment is the key of the deployment (unique on the node: owner
	// and name, e.g. "t42-web"); the instance joins its network.
	Deployment string
	// Owner is the twin that deployed it. Instances of different owners
	// must not reach each other.
	Owner uint64
	// Workload is the workload's name within the deployment.
	Workload string
	// Generation is the deployment's generation this instance belongs to.
	Generation uint64

	// RootFS lists read-only folders, lowest first, to stack below the
	// writable layer (overlay lowerdir). The image store gives one: the
	// image's layers applied in order, whiteouts resolved, files owned by
	// the ids the image says (container ids, not shifted: mapping them
	// into the deployment's IDs is the runtime's, e.g. an idmapped mount).
	// The runtime must not write to them: other deployments share them.
	RootFS []string
	// Args is the process's argv (the deployment's command, else the
	// image's entrypoint and cmd); never empty.
	Args []string
	// Env is the environment, "KEY=value" (the image's, then the
	// deployment's, later winning); it includes PATH.
	Env []string
	// Cwd is the working directory inside the container; "" means "/".
	Cwd string
	// User is the image's user as the image config says ("", "uid",
	// "uid:gid", or names to look up in the root's /etc/passwd).
	User string
	// Hostname is the container's host name (the workload's name).
	Hostname string

	// IDs is the host id range of the deployment: container uid/gid 0..
	// Size-1 map to host Base..Base+Size-1. The module allocates it with
	// the deployment and keeps it across reboots and generations, so
	// volumes stay writable.
	IDs IDRange

	Limits  Limits
	Volumes []Volume
	// Devices are device nodes to make available (a GPU's), by host path.
	Devices []string

	// Output receives the process's stdout and stderr. The module gives a
	// size-capped log; writes come from one goroutine at a time.
	Output io.Writer
}

// IDRange is a range of host uids and gids.
type IDRange struct {
	Base uint32
	Size uint32
}

// Volume is a persistent folder of a deployment.
type Volume struct {
	// Name is the volume's name in the deployment file.
	Name string
	// Source is a folder on the cache disk that the module made and keeps
	// across instances, generations and reboots; owned by host root until
	// the runtime first maps it to the deployment's IDs.
	Source string
	// Target is the absolute path inside the container.
	Target string
	// Size is the volume's quota in bytes, enforced where the runtime can
	// (the module already counted it against the node's disk).
	Size uint64
}

// Network is what AttachNetwork makes.
type Network struct {
	Deployment string
	Owner      uint64
}

// NetworkInfo says where a deployment's network is.
type NetworkInfo struct {
	// Address is the deployment's address on the node's bridge (e.g.
	// 10.90.0.5), shown in the deployment's status.
	Address string
	// Namespace is the path of its network namespace (e.g.
	// /run/netns/t42-web), for people debugging a node.
	Namespace string
}

// Port is a published port.
type Port struct {
	// Node is the port on the node's addresses; Container the port the
	// workload listens on.
	Node, Container uint16
	// Protocol is "tcp" or "udp".
	Protocol string
}

// Instance is a created instance.
type Instance struct {
	ID         string
	Deployment string
	// PID is the init process's pid on the node, 0 before Start and
	// after the exit.
	PID int
}

// Exit is how an instance's process ended.
type Exit struct {
	// Code is the exit status, or 128+signal when a signal killed it.
	Code int
	// Signal is the signal that killed it, 0 when it exited.
	Signal syscall.Signal
	// OOMKilled is true when the kernel killed it for going over its
	// memory limit.
	OOMKilled bool
	At        time.Time
}

// Stats is an instance's resource use.
type Stats struct {
	// CPU is the CPU time used since Start (cpu.stat usage_usec).
	CPU time.Duration
	// Memory is the memory in use now, in bytes (memory.current).
	Memory uint64
	// PIDs is the number of processes now (pids.current).
	PIDs uint64
}

// Inventory is what List finds.
type Inventory struct {
	Instances []string // ids
	Networks  []string // deployment keys
}
