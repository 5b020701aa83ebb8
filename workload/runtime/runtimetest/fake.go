// Package runtimetest is an in-memory runtime.Runtime for the unit tests of
// the workloads module: instances are records, processes are channels a
// test ends with Exit. It keeps the contract's rules (idempotent Delete,
// Wait after the exit, Delete ends a Wait) so a module that passes against it
// behaves the same against the real runtime. Not for use outside tests.
package runtimetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/gridnode/gridnode/workload/runtime"
)

// Fake is an in-memory runtime.
type Fake struct {
	mu        sync.Mutex
	instances map[string]*instance
	networks  map[string]runtime.Network
	ports     map[string][]runtime.Port
	total     *runtime.Limits
	pid       int
	// started receives the id of every instance started (buffered; a test
	// that does not read it loses nothing but the signal).
	started chan string
	// events logs each call, "create ID", "start ID", "delete ID", ...
	events []string

	// FailCreate, when set, is returned by Create for its ids.
	FailCreate map[string]error
	// IgnoreTerm makes instances ignore SIGTERM.
	IgnoreTerm bool
}

type instance struct {
	spec    runtime.Spec
	pid     int
	running bool
	exited  chan struct{}
	exit    runtime.Exit
}

// New returns an empty Fake.
func New() *Fake {
	return &Fake{
		instances:  map[string]*instance{},
		networks:   map[string]runtime.Network{},
		ports:      map[string][]runtime.Port{},
		started:    make(chan string, 1024),
		FailCreate: map[string]error{},
	}
}

var _ runtime.Runtime = (*Fake)(nil)

func (f *Fake) log(format string, a ...any) { f.events = append(f.events, fmt.Sprintf(format, a...)) }

// Setup records total.
func (f *Fake) Setup(ctx context.Context, total runtime.Limits) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.total = &total
	f.log("setup")
	return nil
}

// AttachNetwork records the network.
func (f *Fake) AttachNetwork(ctx context.Context, n runtime.Network) (runtime.NetworkInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.networks[n.Deployment] = n
	f.log("attach %s", n.Deployment)
	return runtime.NetworkInfo{Address: "10.90.0.2", Namespace: "/run/netns/" + n.Deployment}, nil
}

// Publish records the ports; the deployment's network must exist.
func (f *Fake) Publish(ctx context.Context, deployment string, ports []runtime.Port) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.networks[deployment]; !ok {
		return fmt.Errorf("publish: no network for %s", deployment)
	}
	f.ports[deployment] = slices.Clone(ports)
	f.log("publish %s %v", deployment, ports)
	return nil
}

// DetachNetwork forgets the network and its ports.
func (f *Fake) DetachNetwork(ctx context.Context, deployment string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.networks, deployment)
	delete(f.ports, deployment)
	f.log("detach %s", deployment)
	return nil
}

// Create records spec; the network of spec.Deployment must be attached.
func (f *Fake) Create(ctx context.Context, spec runtime.Spec) (runtime.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.FailCreate[spec.ID]; err != nil {
		return runtime.Instance{}, err
	}
	if _, ok := f.instances[spec.ID]; ok {
		return runtime.Instance{}, fmt.Errorf("create %s: exists already", spec.ID)
	}
	if _, ok := f.networks[spec.Deployment]; !ok {
		return runtime.Instance{}, fmt.Errorf("create %s: network %s not attached", spec.ID, spec.Deployment)
	}
	if len(spec.Args) == 0 || len(spec.RootFS) == 0 {
		return runtime.Instance{}, fmt.Errorf("create %s: no args or no root", spec.ID)
	}
	f.instances[spec.ID] = &instance{spec: spec, exited: make(chan struct{})}
	f.log("create %s", spec.ID)
	return runtime.Instance{ID: spec.ID, Deployment: spec.Deployment}, nil
}

// Start marks the instance running and writes a line to its Output.
func (f *Fake) Start(ctx context.Context, id string) error {
	f.mu.Lock()
	in, ok := f.instances[id]
	if !ok {
		f.mu.Unlock()
		return fmt.Errorf("start %s: no such instance", id)
	}
	if in.running {
		f.mu.Unlock()
		return fmt.Errorf("start %s: started already", id)
	}
	f.pid++
	in.pid, in.running = 1000+f.pid, true
	f.log("start %s", id)
	out := in.spec.Output
	f.mu.Unlock()
	if out != nil {
		fmt.Fprintf(out, "started %s\n", id)
	}
	select {
	case f.started <- id:
	default:
	}
	return nil
}

// Signal ends the instance as if its process died of sig; with IgnoreTerm
// a SIGTERM is recorded and ignored, as a process that does not stop would.
func (f *Fake) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.instances[id]
	if !ok {
		return fmt.Errorf("signal %s: no such instance", id)
	}
	f.log("signal %s %d", id, sig)
	if in.running && !(f.IgnoreTerm && sig == syscall.SIGTERM) {
		f.exitLocked(in, runtime.Exit{Code: 128 + int(sig), Signal: sig})
	}
	return nil
}

// Wait waits for the exit.
func (f *Fake) Wait(ctx context.Context, id string) (runtime.Exit, error) {
	f.mu.Lock()
	in, ok := f.instances[id]
	f.mu.Unlock()
	if !ok {
		return runtime.Exit{}, fmt.Errorf("wait %s: no such instance", id)
	}
	select {
	case <-in.exited:
		f.mu.Lock()
		defer f.mu.Unlock()
		return in.exit, nil
	case <-ctx.Done():
		return runtime.Exit{}, ctx.Err()
	}
}

// Delete kills and forgets the instance.
func (f *Fake) Delete(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.instances[id]
	if !ok {
		return nil
	}
	if in.running {
		f.exitLocked(in, runtime.Exit{Code: 137, Signal: syscall.SIGKILL})
	}
	delete(f.instances, id)
	f.log("delete %s", id)
	return nil
}

// Stats returns fixed numbers for a running instance.
func (f *Fake) Stats(ctx context.Context, id string) (runtime.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.instances[id]
	if !ok {
		return runtime.Stats{}, fmt.Errorf("stats %s: no such instance", id)
	}
	if !in.running {
		return runtime.Stats{}, nil
	}
	return runtime.Stats{CPU: time.Second, Memory: 8 << 20, PIDs: 1}, nil
}

// List returns every instance and network.
func (f *Fake) List(ctx context.Context) (runtime.Inventory, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var inv runtime.Inventory
	for id := range f.instances {
		inv.Instances = append(inv.Instances, id)
	}
	for d := range f.networks {
		inv.Networks = append(inv.Networks, d)
	}
	slices.Sort(inv.Instances)
	slices.Sort(inv.Networks)
	return inv, nil
}

func (f *Fake) exitLocked(in *instance, e runtime.Exit) {
	e.At = time.Now()
	in.exit, in.running, in.pid = e, false, 0
	close(in.exited)
}

// Exit ends a running instance's process with e (a crash, an OOM kill); it
// reports whether the instance was running.
func (f *Fake) Exit(id string, e runtime.Exit) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.instances[id]
	if !ok || !in.running {
		return false
	}
	f.exitLocked(in, e)
	return true
}

// Started returns the channel that receives the id of each instance
// started.
func (f *Fake) Started() <-chan string { return f.started }

// Running lists the ids of running instances, sorted.
func (f *Fake) Running() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var l []string
	for id, in := range f.instances {
		if in.running {
			l = append(l, id)
		}
	}
	slices.Sort(l)
	return l
}

// Spec returns the Spec an instance was created with.
func (f *Fake) Spec(id string) (runtime.Spec, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.instances[id]
	if !ok {
		return runtime.Spec{}, false
	}
	return in.spec, true
}

// Ports returns the ports published for deployment.
func (f *Fake) Ports(deployment string) []runtime.Port {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ports[deployment])
}

// Total is what Setup was given, nil before.
func (f *Fake) Total() *runtime.Limits {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.total
}

// Events returns the calls made so far, in order.
func (f *Fake) Events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.events)
}

// Add puts an instance and its network in the inventory as if a previous
// module process had left them behind.
func (f *Fake) Add(spec runtime.Spec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.networks[spec.Deployment] = runtime.Network{Deployment: spec.Deployment, Owner: spec.Owner}
	f.instances[spec.ID] = &instance{spec: spec, exited: make(chan struct{}), running: true, pid: 99}
}
