// Package runner is the node's workload runtime (runtime.Runtime): OCI
// containers through the container helper (package container) on networks
// made by package netplumb, with the kernel modules of package kernel.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"

	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/workload/container"
	"github.com/gridnode/gridnode/workload/kernel"
	"github.com/gridnode/gridnode/workload/netplumb"
	"github.com/gridnode/gridnode/workload/runtime"
)

// Options of the runtime.
type Options struct {
	// Dir is the runtime's folder on the cache disk: bundles, network
	// namespaces, the address table.
	Dir string
	// Helper is the container helper (default /bin/gridnode-container);
	// Init the node program, whose modprobe loads kernel modules (default
	// /init; "" in Options of a test that loads none: set NoModules).
	Helper, Init string
	NoModules    bool
	// Cgroup is the parent cgroup of every workload (default /workloads).
	Cgroup string
	// Net configures the network; LAN and Resolvers default to what the
	// network fact says.
	Net netplumb.Config
	// Node is the node's network namespace (default: this process's).
	Node netns.NsHandle
	// Facts is the fact folder whose network fact gives LAN and Resolvers
	// when Net has neither (default the node's); Log where following it
	// is reported (default slog's).
	Facts fact.Folder
	Log   *slog.Logger
}

// Runtime implements runtime.Runtime.
type Runtime struct {
	o Options
	// follow: LAN and resolvers come from the network fact, followed from
	// Setup on.
	follow     bool
	followOnce sync.Once
	c          *container.Runtime
	net        *netplumb.Plumber

	mu    sync.Mutex
	specs map[string]runtime.Spec // created instances
	exits map[string]runtime.Exit // ended instances, for Wait after Delete
	pids  map[string]int
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns the runtime; nothing changes on the node before Setup.
func New(o Options) (*Runtime, error) {
	if o.Dir == "" {
		return nil, errors.New("runner: no folder")
	}
	if o.Facts == "" {
		o.Facts = fact.Default()
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Helper == "" {
		o.Helper = container.DefaultHelper
	}
	if o.Init == "" {
		o.Init = "/init"
	}
	if o.Cgroup == "" {
		o.Cgroup = container.DefaultCgroup
	}
	if o.Node == 0 {
		ns, err := netns.Get()
		if err != nil {
			return nil, fmt.Errorf("runner: the node's network namespace: %w", err)
		}
		o.Node = ns
	}
	o.Net.Dir = filepath.Join(o.Dir, "network")
	// A container's root user, an unprivileged id on the node, opens its
	// root file system and resolv.conf below these from inside its user
	// namespace: it must be able to pass through them (not list them).
	for _, d := range []string{o.Dir, filepath.Join(o.Dir, "containers"), o.Net.Dir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("runner: %w", err)
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, fmt.Errorf("runner: %w", err)
		}
	}
	follow := o.Net.LAN == nil && o.Net.Resolvers == nil
	if follow {
		var n fact.Network
		if o.Facts.Read(fact.NameNetwork, &n) == nil {
			o.Net.LAN, o.Net.Resolvers = uplink(n)
		}
	}
	p, err := netplumb.New(o.Net, o.Node)
	if err != nil {
		return nil, err
	}
	return &Runtime{
		o: o, follow: follow, c: container.New(o.Helper, filepath.Join(o.Dir, "containers")), net: p,
		specs: map[string]runtime.Spec{}, exits: map[string]runtime.Exit{}, pids: map[string]int{},
	}, nil
}

// Open is New with the defaults, in the shape the workloads module takes
// (workloads.NewRuntime): modules/workloads' Module(runner.Open).
func Open(dir string, log *slog.Logger) (runtime.Runtime, error) {
	r, err := New(Options{Dir: dir, Log: log})
	if err != nil {
		return nil, err
	}
	log.Info("container runtime", "helper", r.o.Helper, "dir", dir, "bridge", r.net.Gateway().String())
	return r, nil
}

// Setup loads the kernel modules, caps the workloads cgroup at total and
// brings the bridge and the rule set up.
func (r *Runtime) Setup(ctx context.Context, total runtime.Limits) error {
	if !r.o.NoModules {
		at := time.Now()
		if err := kernel.Load(ctx, r.o.Init); err != nil {
			return err
		}
		r.o.Log.Info("workload kernel modules loaded", "took", time.Since(at).Round(time.Millisecond))
	}
	if total.MilliCPU == 0 || total.Memory == 0 {
		return fmt.Errorf("runner: setup: the workloads' total CPU and memory are required (have %d mCPU, %d bytes)", total.MilliCPU, total.Memory)
	}
	p := container.Parent{Path: r.o.Cgroup, MemoryBytes: int64(total.Memory), CPUs: float64(total.MilliCPU) / 1000, Pids: int64(total.PIDs)}
	if err := r.c.SetParent(p); err != nil {
		return err
	}
	if err := r.net.Setup(); err != nil {
		return err
	}
	if r.follow {
		// The module's context: following stops with the module.
		r.followOnce.Do(func() { go followUplink(ctx, r.o.Facts, r.net.SetUplink, r.o.Log) })
	}
	return nil
}

// AttachNetwork makes the deployment's network namespace and veth.
func (r *Runtime) AttachNetwork(ctx context.Context, n runtime.Network) (runtime.NetworkInfo, error) {
	a, err := r.net.Attach(n.Deployment)
	if err != nil {
		return runtime.NetworkInfo{}, err
	}
	return runtime.NetworkInfo{Address: a.Addr.String(), Namespace: a.NetNS}, nil
}

// Publish forwards the node's ports to the deployment.
func (r *Runtime) Publish(ctx context.Context, deployment string, ports []runtime.Port) error {
	var l []netplumb.Port
	for _, p := range ports {
		l = append(l, netplumb.Port{Proto: p.Protocol, NodePort: p.Node, Port: p.Container})
	}
	return r.net.Publish(deployment, l)
}

// DetachNetwork removes the deployment's network.
func (r *Runtime) DetachNetwork(ctx context.Context, deployment string) error {
	return r.net.Detach(deployment)
}

// Create writes the instance's bundle; its root file system is mounted at
// Start (a fresh writable layer each time).
func (r *Runtime) Create(ctx context.Context, s runtime.Spec) (runtime.Instance, error) {
	c, err := r.config(s)
	if err != nil {
		return runtime.Instance{}, err
	}
	for _, v := range s.Volumes {
		if err := own(v.Source, s.IDs.Base); err != nil {
			return runtime.Instance{}, fmt.Errorf("instance %s: volume %s: %w", s.ID, v.Name, err)
		}
	}
	if err := r.c.Create(c); err != nil {
		return runtime.Instance{}, err
	}
	r.mu.Lock()
	r.specs[s.ID] = s
	delete(r.exits, s.ID)
	r.mu.Unlock()
	return runtime.Instance{ID: s.ID, Deployment: s.Deployment}, nil
}

// config turns the contract's spec into the container's.
func (r *Runtime) config(s runtime.Spec) (container.Config, error) {
	att, err := r.net.Attach(s.Deployment) // the namespace, made by AttachNetwork
	if err != nil {
		return container.Config{}, fmt.Errorf("instance %s: %w", s.ID, err)
	}
	// The contract lists layers lowest first; overlay wants the top first.
	layers := make([]string, len(s.RootFS))
	for i, l := range s.RootFS {
		layers[len(s.RootFS)-1-i] = l
	}
	uid, gid, err := user(s.User, s.RootFS)
	if err != nil {
		return container.Config{}, fmt.Errorf("instance %s: %w", s.ID, err)
	}
	c := container.Config{
		ID: s.ID, Hostname: s.Hostname, Args: s.Args, Env: s.Env, Cwd: s.Cwd, UID: uid, GID: gid,
		Layers: layers,
		CPUs:   float64(s.Limits.MilliCPU) / 1000, MemoryBytes: int64(s.Limits.Memory),
		Pids: int64(s.Limits.PIDs), DiskBytes: int64(s.Limits.Disk), IOWeight: s.Limits.IOWeight,
		IDs:   container.Range{HostID: s.IDs.Base, Size: s.IDs.Size},
		NetNS: att.NetNS, ResolvConf: att.ResolvConf, Devices: s.Devices, Cgroup: r.o.Cgroup,
	}
	for _, v := range s.Volumes {
		c.Volumes = append(c.Volumes, container.Volume{Source: v.Source, Target: v.Target})
	}
	return c, nil
}

// own gives a volume's folder to the deployment's root the first time (the
// module makes it owned by the node's root).
func own(dir string, base uint32) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if s, ok := st.Sys().(*syscall.Stat_t); ok && s.Uid == 0 {
		return os.Chown(dir, int(base), int(base))
	}
	return nil
}

// Start runs the instance; its output goes to the spec's Output.
func (r *Runtime) Start(ctx context.Context, id string) error {
	r.mu.Lock()
	s, ok := r.specs[id]
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("instance %s: not created", id)
	}
	pid, err := r.c.Start(ctx, id, s.Output)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.pids[id] = pid
	r.mu.Unlock()
	return nil
}

// Signal sends sig to the instance's init.
func (r *Runtime) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	return r.c.Signal(id, sig)
}

// Wait returns how the instance ended, the same Exit each time.
func (r *Runtime) Wait(ctx context.Context, id string) (runtime.Exit, error) {
	r.mu.Lock()
	ex, ok := r.exits[id]
	r.mu.Unlock()
	if ok {
		return ex, nil
	}
	e, err := r.c.Wait(ctx, id)
	if err != nil {
		return runtime.Exit{}, err
	}
	ex = runtime.Exit{Code: e.Code, OOMKilled: e.OOMKilled, At: e.At}
	if ex.Code > 128 && e.Signal != "" {
		ex.Signal = syscall.Signal(ex.Code - 128)
	}
	r.mu.Lock()
	r.exits[id] = ex
	delete(r.pids, id)
	r.mu.Unlock()
	return ex, nil
}

// Delete kills the instance and removes all it had but its volumes.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	if err := r.c.Delete(id); err != nil {
		return err
	}
	r.mu.Lock()
	delete(r.specs, id)
	delete(r.pids, id)
	r.mu.Unlock()
	return nil
}

// Stats reads the instance's use of its limits.
func (r *Runtime) Stats(ctx context.Context, id string) (runtime.Stats, error) {
	st, err := r.c.Stats(id)
	if err != nil {
		return runtime.Stats{}, err
	}
	return runtime.Stats{CPU: time.Duration(st.CPUNanos), Memory: st.MemoryBytes, PIDs: st.Pids}, nil
}

// List finds every instance and network on the node, also those of a
// previous module process.
func (r *Runtime) List(ctx context.Context) (runtime.Inventory, error) {
	ids, err := r.c.List()
	if err != nil {
		return runtime.Inventory{}, err
	}
	nets, err := r.net.List()
	return runtime.Inventory{Instances: ids, Networks: nets}, err
}
