package workloads

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gridnode/gridnode/internal/backoff"
	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/workload/admission"
	"github.com/gridnode/gridnode/workload/image"
	"github.com/gridnode/gridnode/workload/runtime"
	"github.com/gridnode/gridnode/workload/state"
)

// Config is what a Manager needs besides its parts.
type Config struct {
	// Dir is the module's folder on the cache disk: volumes/ and logs/
	// live there (state/ and images/ are the stores').
	Dir string
	// Total is the machine's capacity for workloads (CPUs, memory, the
	// cache file system, GPUs), before the reserve.
	Total fact.Resources
	// GPUs are the node's GPUs (the hardware fact's), given out in order.
	GPUs []fact.GPU
	// SysFS is where sysfs is mounted ("/sys"), to find a GPU's devices.
	SysFS string
	// NodePorts are the ports the node serves itself ("9100/tcp").
	NodePorts []string
	// Grace is how long a stopping workload gets between SIGTERM and
	// SIGKILL; 0 means 10 s.
	Grace time.Duration
	// Restart is the backoff between restarts of a workload; the zero
	// value means 1 s doubling to 5 min, without jitter (a node restarts
	// its own workloads: nobody to stampede).
	Restart backoff.Policy
	// StableAfter is how long a run must last for the restart backoff to
	// start again from its base; 0 means 1 min.
	StableAfter time.Duration
	// LogMax caps each workload's log; 0 means 4 MiB.
	LogMax int64
	// StatsEvery is how often CPU and memory in use are read; 0 means 10 s.
	StatsEvery time.Duration
	// Facts is where the fact "workloads" is published; "" means nowhere.
	Facts fact.Folder
	// Socket is the API's socket path, as the fact names it.
	Socket string
	Log    *slog.Logger
	// wait waits d or until ctx is done (tests replace it to see the
	// backoff without waiting).
	wait func(ctx context.Context, d time.Duration) error
}

// Manager runs the accepted deployments: it pulls their images, starts
// their workloads through the runtime, restarts them by policy, and stops
// them when replaced or undeployed.
type Manager struct {
	cfg    Config
	rt     runtime.Runtime
	images *image.Store
	state  *state.Store
	log    *slog.Logger

	ctx     context.Context
	all     sync.WaitGroup // runs and background work
	changed chan struct{}

	mu   sync.Mutex
	runs map[string]*run // by deployment key; a stopping run stays until replaced or gone
}

// NewManager makes a Manager; Start runs it.
func NewManager(cfg Config, rt runtime.Runtime, images *image.Store, st *state.Store) *Manager {
	if cfg.Grace == 0 {
		cfg.Grace = 10 * time.Second
	}
	if cfg.Restart.Base == 0 {
		cfg.Restart = backoff.Policy{Base: time.Second, Max: 5 * time.Minute}
	}
	if cfg.StableAfter == 0 {
		cfg.StableAfter = time.Minute
	}
	if cfg.LogMax == 0 {
		cfg.LogMax = 4 << 20
	}
	if cfg.StatsEvery == 0 {
		cfg.StatsEvery = 10 * time.Second
	}
	if cfg.SysFS == "" {
		cfg.SysFS = "/sys"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.wait == nil {
		cfg.wait = backoff.Sleep
	}
	return &Manager{cfg: cfg, rt: rt, images: images, state: st, log: cfg.Log, runs: map[string]*run{}, changed: make(chan struct{}, 1)}
}

// Start removes what a previous module process left in the runtime, and
// starts every stored deployment from the stored state and the images on
// the cache disk: no network needed for what was pulled before. The runs
// last until ctx is done; Wait waits for them to have stopped.
func (m *Manager) Start(ctx context.Context) error {
	m.ctx = ctx
	inv, err := m.rt.List(ctx)
	if err != nil {
		return fmt.Errorf("workloads: listing what the runtime holds: %w", err)
	}
	for _, id := range inv.Instances {
		if err := m.rt.Delete(ctx, id); err != nil {
			m.log.Warn("removing an instance a previous run left", "instance", id, "err", err)
		}
	}
	for _, n := range inv.Networks {
		if err := m.rt.DetachNetwork(ctx, n); err != nil {
			m.log.Warn("removing a network a previous run left", "deployment", n, "err", err)
		}
	}
	recs, errs := m.state.Load()
	for _, err := range errs {
		m.log.Error("a stored deployment cannot be read; it does not run", "err", err)
	}
	m.mu.Lock()
	for _, rec := range recs {
		r := m.newRunLocked(rec)
		m.runs[rec.Key()] = r
		m.startRun(r, nil)
	}
	m.mu.Unlock()
	m.all.Go(func() { m.publisher(ctx) })
	m.all.Go(func() { m.statsLoop(ctx) })
	m.all.Go(func() { m.gc("boot") })
	m.notify()
	m.log.Info("stored deployments started", "deployments", len(recs))
	return nil
}

// Wait waits until every run has stopped (after Start's ctx is done).
func (m *Manager) Wait() { m.all.Wait() }

func (m *Manager) notify() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// apiError is a refusal the API answers with its status.
type apiError struct {
	status     int
	msg        string
	need, free *fact.Resources
}

func (e *apiError) Error() string { return e.msg }

func refusal(status int, format string, a ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, a...)}
}

// usedLocked is what the runs other than key's ask.
func (m *Manager) usedLocked(except string) (fact.Resources, map[string]string) {
	var used fact.Resources
	ports := map[string]string{}
	for k, r := range m.runs {
		if k == except || r.gone {
			continue
		}
		used = used.Add(r.rec.Deployment.Needs())
		for _, w := range r.rec.Deployment.Workloads {
			for _, p := range w.Ports {
				ports[fmt.Sprintf("%d/%s", p.Node, p.Protocol)] = k
			}
		}
	}
	return used, ports
}

// Capacity is the node's capacity for workloads now.
func (m *Manager) Capacity() fact.Capacity {
	m.mu.Lock()
	defer m.mu.Unlock()
	used, _ := m.usedLocked("")
	return admission.Capacity(m.cfg.Total, used)
}

// Deploy admits d for owner, stores it as the next generation of its name,
// and starts it; the previous generation, if any, is stopped once the new
// one's images are on the node.
func (m *Manager) Deploy(owner uint64, d deployment.Deployment) (deployment.Status, error) {
	key := state.Key(owner, d.Name)
	m.mu.Lock()
	defer m.mu.Unlock()
	used, ports := m.usedLocked(key)
	if err := admission.Admit(admission.Capacity(m.cfg.Total, used), d.Needs()); err != nil {
		var r *admission.Refusal
		errors.As(err, &r)
		return deployment.Status{}, &apiError{status: http.StatusConflict, msg: err.Error(), need: &r.Need, free: &r.Free}
	}
	if err := admission.PortsTaken(d, ports, m.cfg.NodePorts); err != nil {
		return deployment.Status{}, refusal(http.StatusConflict, "%v", err)
	}
	if err := m.gpusFree(key, d); err != nil {
		return deployment.Status{}, refusal(http.StatusConflict, "%v", err)
	}
	rec, err := m.state.Accept(owner, d, time.Now())
	if err != nil {
		return deployment.Status{}, refusal(http.StatusServiceUnavailable, "storing the deployment: %v", err)
	}
	prev := m.runs[key]
	r := m.newRunLocked(rec)
	m.runs[key] = r
	m.startRun(r, prev)
	m.log.Info("deployment accepted", "deployment", key, "generation", rec.Generation)
	m.notify()
	return m.statusLocked(r), nil
}

// Undeploy stops owner's deployment name and forgets it; purge removes
// its volumes too. Its logs go, and images nothing else uses are
// collected.
func (m *Manager) Undeploy(owner uint64, name string, purge bool) (deployment.Status, error) {
	key := state.Key(owner, name)
	m.mu.Lock()
	r, ok := m.runs[key]
	if !ok || r.gone {
		m.mu.Unlock()
		return deployment.Status{}, refusal(http.StatusNotFound, "no deployment %q of twin %d on this node", name, owner)
	}
	r.gone = true
	m.mu.Unlock()
	r.stop()
	<-r.done
	m.mu.Lock()
	st := m.statusLocked(r)
	if m.runs[key] == r { // not deployed again meanwhile
		delete(m.runs, key)
		if err := m.state.Delete(key, purge); err != nil {
			m.mu.Unlock()
			return st, refusal(http.StatusInternalServerError, "%v", err)
		}
		os.RemoveAll(filepath.Join(m.cfg.Dir, "logs", key))
		if purge {
			os.RemoveAll(filepath.Join(m.cfg.Dir, "volumes", key))
		}
	}
	m.mu.Unlock()
	m.log.Info("deployment removed", "deployment", key, "purge", purge)
	m.gc("undeploy " + key)
	m.notify() // after the collection: the fact lists the images left
	return st, nil
}

// gc collects the images no stored deployment names.
func (m *Manager) gc(why string) {
	freed, err := m.images.GC(func() []string {
		m.mu.Lock()
		defer m.mu.Unlock()
		var keep []string
		for _, r := range m.runs {
			for _, w := range r.rec.Deployment.Workloads {
				keep = append(keep, r.rec.Image(w.Name))
			}
		}
		return keep
	})
	if err != nil {
		m.log.Warn("collecting unused images", "after", why, "err", err)
	} else if freed > 0 {
		m.log.Info("unused images collected", "after", why, "freed_bytes", freed)
	}
}
