// Package workloads is the node module that runs what users deploy: OCI
// images as contained workloads, from signed deployments taken on the
// node's API, kept on the cache disk and recreated at every boot.
//
// It waits for the facts storage (the cache disk) and hardware (the
// capacity), and for nothing else: in particular not for the network, so
// that at boot it recreates every stored deployment from the stored state
// and the images already on the cache disk before, and without, any
// network (a farm cut off from the internet keeps its local services).
// What needs the network (pinning a tag, pulling a new image, looking up a
// twin's key the node does not keep) waits and retries with backoff until
// there is one.
//
// On disk (the cache file system, under workloads/):
//
//	state/      the accepted deployments (workload/state)
//	images/     the OCI image layout and unpacked roots (workload/image)
//	auth/       twins' keys and used nonces (workload/auth)
//	volumes/KEY/NAME   each deployment's volumes: kept across reboots and
//	            redeploys, removed by undeploy --purge
//	logs/KEY/WORKLOAD.log  each workload's output, capped (workload/logs)
//	runtime/    the container runtime's own (bundles, writable layers)
//
// The writable layer of a workload is the runtime's, made fresh at each
// start: only volumes persist.
//
// API: /api/v1/deployments (node/deployment) on the unix socket
// /run/gridnode/workloads.sock, which the console module's status server
// forwards to. Every request is signed (workload/auth).
//
// Fact published (/run/gridnode/workloads.json), once the stored
// deployments are started (readiness) and on every change: fact.Workloads —
// capacity (total, reserved, used, free) and each workload's owner,
// deployment, generation, state, restarts and last exit.
package workloads

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/internal/roots"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/workload/admission"
	"github.com/gridnode/gridnode/workload/auth"
	"github.com/gridnode/gridnode/workload/image"
	"github.com/gridnode/gridnode/workload/runtime"
	"github.com/gridnode/gridnode/workload/state"
	"golang.org/x/sys/unix"
)

// Name is the module's and its fact's name.
const Name = fact.NameWorkloads

// SocketName is the API socket's name in the fact folder.
const SocketName = "workloads.sock"

// Module returns the module's entry point, running workloads with the
// runtime newRuntime makes, given a folder of its own on the cache disk
// (workloads/runtime: bundles, writable layers, network state). PID 1
// lists it after storage and hardware.
func Module(newRuntime NewRuntime) func(ctx context.Context, cfg config.Node, log *slog.Logger) error {
	return func(ctx context.Context, cfg config.Node, log *slog.Logger) error {
		return serve(ctx, cfg, log, fact.Default(), newRuntime)
	}
}

// NewRuntime makes the container runtime, keeping what it needs on disk in
// dir.
type NewRuntime func(dir string, log *slog.Logger) (runtime.Runtime, error)

func serve(ctx context.Context, cfg config.Node, log *slog.Logger, facts fact.Folder, newRuntime NewRuntime) error {
	roots.Fallback() // registries and public registrars speak HTTPS
	var st fact.Storage
	if err := facts.Wait(ctx, fact.NameStorage, &st); err != nil {
		return err
	}
	var hw fact.Hardware
	if err := facts.Wait(ctx, fact.NameHardware, &hw); err != nil {
		return err
	}
	socket := filepath.Join(string(facts), SocketName)
	os.Remove(socket) // a previous run's
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return fmt.Errorf("workloads: API socket %s: %w", socket, err)
	}
	os.Chmod(socket, 0o600)
	// The API answers 503 until the module has started what it stores.
	var handler atomic.Pointer[http.Handler]
	serveWith := func(h http.Handler) { handler.Store(&h) }
	serveWith(Unavailable("the workloads module is starting"))
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*handler.Load()).ServeHTTP(w, r)
	})}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("deployments API stopped", "err", err)
		}
	}()
	defer srv.Close()

	if st.Cache == nil {
		why := "no cache disk: this node takes no deployments (give it an empty disk)"
		serveWith(Unavailable(why))
		if err := facts.Write(Name, fact.Workloads{Socket: socket, Error: why, Workloads: []fact.WorkloadState{}}); err != nil {
			return err
		}
		log.Warn(why)
		<-ctx.Done()
		return nil
	}
	dir := filepath.Join(st.Cache.Mount, "workloads")
	m, a, err := open(ctx, cfg, log, dir, hw, newRuntime)
	if err != nil {
		serveWith(Unavailable(err.Error()))
		facts.Write(Name, fact.Workloads{Socket: socket, Error: err.Error(), Workloads: []fact.WorkloadState{}})
		return err
	}
	if err := m.Start(ctx); err != nil {
		return err
	}
	serveWith(m.Handler(a))
	// Ready: the stored deployments are started and the API serves.
	if err := m.PublishTo(facts, socket); err != nil {
		return fmt.Errorf("workloads: publishing the fact: %w", err)
	}
	log.Info("deployments API listening", "socket", socket, "free", m.Fact().Capacity.Free)
	<-ctx.Done()
	srv.Close()
	m.Wait() // every workload stopped
	return nil
}

// passable makes folder dir (and its missing parents) with mode 0711:
// passed through by containers' users, listed by root alone.
func passable(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("workloads: %w", err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		return fmt.Errorf("workloads: %w", err)
	}
	return nil
}

// open makes the module's parts on the cache disk.
func open(ctx context.Context, cfg config.Node, log *slog.Logger, dir string, hw fact.Hardware, newRuntime NewRuntime) (*Manager, *auth.Authenticator, error) {
	// A container's root, an unprivileged uid on the node, reaches its
	// root file system (runtime/) and its volumes (volumes/) through this
	// folder: it may pass, not list. What is private below (state, auth,
	// images, logs) is 0700 itself.
	if err := passable(dir); err != nil {
		return nil, nil, err
	}
	st, err := state.Open(filepath.Join(dir, "state"))
	if err != nil {
		return nil, nil, err
	}
	images, err := image.Open(filepath.Join(dir, "images"), image.Options{Mirror: cfg.RegistryMirror, Log: log})
	if err != nil {
		return nil, nil, err
	}
	var reg auth.Registrar
	if cfg.Registrar != "" {
		c, err := client.New(cfg.RegistrarURL(), nil, client.Options{UserAgent: "gridnode-workloads"})
		if err != nil {
			return nil, nil, err
		}
		reg = c
	}
	a, err := auth.New(auth.Config{Dir: filepath.Join(dir, "auth"), Farm: cfg.Farm, Deployers: cfg.Deployers, Registrar: reg})
	if err != nil {
		return nil, nil, fmt.Errorf("workloads: %w", err)
	}
	for _, w := range a.Warnings {
		log.Warn(w)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return nil, nil, fmt.Errorf("workloads: size of the cache file system: %w", err)
	}
	total := fact.Resources{MilliCPU: hw.CRU * 1000, Memory: hw.MRU, Disk: fs.Blocks * uint64(fs.Bsize), GPUs: len(hw.GPUs)}
	rtDir := filepath.Join(dir, "runtime")
	if err := os.MkdirAll(rtDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("workloads: %w", err)
	}
	rt, err := newRuntime(rtDir, log)
	if err != nil {
		return nil, nil, fmt.Errorf("workloads: container runtime: %w", err)
	}
	c := admission.Capacity(total, fact.Resources{})
	setupAt := time.Now()
	if err := rt.Setup(ctx, runtime.Limits{MilliCPU: c.Free.MilliCPU, Memory: c.Free.Memory, Disk: c.Free.Disk}); err != nil {
		return nil, nil, fmt.Errorf("workloads: preparing the container runtime: %w", err)
	}
	// Kernel modules, the workloads cgroup, the bridge and rules: the
	// module's share of the time to ready.
	log.Info("container runtime set up", "took", time.Since(setupAt).Round(time.Millisecond))
	var nodePorts []string
	if _, p, err := net.SplitHostPort(cfg.Status); err == nil {
		nodePorts = append(nodePorts, p+"/tcp")
	}
	m := NewManager(Config{Dir: dir, Total: total, GPUs: hw.GPUs, NodePorts: nodePorts, Log: log}, rt, images, st)
	return m, a, nil
}
