package workloads

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gridnode/gridnode/internal/backoff"
	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/workload/image"
	"github.com/gridnode/gridnode/workload/logs"
	"github.com/gridnode/gridnode/workload/runtime"
	"github.com/gridnode/gridnode/workload/state"
)

// run is one generation of a deployment, from its pull to its stop.
type run struct {
	rec       state.Record
	key       string
	workloads []*workloadRun
	cancel    context.CancelFunc
	done      chan struct{}
	stopOnce  sync.Once

	// Guarded by the Manager's mu:
	address string
	reason  string
	// gone is set when the run is undeployed: it no longer counts.
	gone bool
}

// workloadRun is one workload of a run.
type workloadRun struct {
	spec deployment.Workload
	// gpus are the PCI addresses of the GPUs given to it.
	gpus []string

	// Guarded by the Manager's mu:
	status   deployment.WorkloadStatus
	log      *logs.File
	instance string
	lastCPU  time.Duration
	lastAt   time.Time
}

func (r *run) stop() { r.stopOnce.Do(r.cancel) }

func (m *Manager) newRunLocked(rec state.Record) *run {
	r := &run{rec: rec, key: rec.Key(), done: make(chan struct{})}
	given := m.gpusInUseLocked(r.key)
	for _, w := range rec.Deployment.Workloads {
		wr := &workloadRun{spec: w, status: deployment.WorkloadStatus{State: fact.WorkloadPending, Since: time.Now()}}
		for _, g := range m.cfg.GPUs {
			if len(wr.gpus) < w.GPUs && !given[g.Address] {
				given[g.Address] = true
				wr.gpus = append(wr.gpus, g.Address)
			}
		}
		r.workloads = append(r.workloads, wr)
	}
	return r
}

// startRun runs r in the background; prev, the generation it replaces, is
// stopped once r's images are ready (or r ends before).
func (m *Manager) startRun(r *run, prev *run) {
	ctx, cancel := context.WithCancel(m.ctx)
	r.cancel = cancel
	m.all.Add(1)
	go func() {
		defer m.all.Done()
		defer close(r.done)
		stopPrev := func() {
			if prev != nil {
				prev.stop()
				<-prev.done
				prev = nil
			}
		}
		defer stopPrev()
		m.execute(ctx, r, stopPrev)
	}()
}

// set changes a workload's status under the lock and tells the publisher.
func (m *Manager) set(w *workloadRun, f func(s *deployment.WorkloadStatus)) {
	m.mu.Lock()
	old := w.status.State
	f(&w.status)
	if w.status.State != old {
		w.status.Since = time.Now()
	}
	m.mu.Unlock()
	m.notify()
}

// execute is a run's life: images, then the previous generation's stop,
// the network, the workloads until ctx is done, and the teardown.
func (m *Manager) execute(ctx context.Context, r *run, stopPrev func()) {
	imgs := make([]image.Image, len(r.workloads))
	for i, w := range r.workloads {
		img, err := m.prepare(ctx, r, w)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Error("deployment cannot run", "deployment", r.key, "workload", w.spec.Name, "err", err)
				m.set(w, func(s *deployment.WorkloadStatus) { s.State, s.Reason, s.Pull = fact.WorkloadFailed, err.Error(), nil })
				for _, o := range r.workloads[i+1:] {
					m.set(o, func(s *deployment.WorkloadStatus) {
						s.State, s.Reason = fact.WorkloadFailed, "not started: workload "+w.spec.Name+" failed"
					})
				}
				stopPrev() // this generation replaced it, failed or not
				<-ctx.Done()
			}
			return
		}
		imgs[i] = img
	}
	stopPrev()
	if !m.attach(ctx, r) {
		return
	}
	defer func() {
		if err := m.rt.DetachNetwork(context.WithoutCancel(ctx), r.key); err != nil {
			m.log.Error("removing a deployment's network", "deployment", r.key, "err", err)
		}
	}()
	var wg sync.WaitGroup
	for i, w := range r.workloads {
		wg.Go(func() { m.supervise(ctx, r, w, imgs[i]) })
	}
	wg.Wait()
}

// retry runs f until it succeeds, ctx ends, or it fails for good; between
// tries the workload shows why and when it tries again.
func (m *Manager) retry(ctx context.Context, w *workloadRun, state string, f func() error) error {
	c := backoff.Counter{Policy: backoff.Policy{Base: 2 * time.Second, Max: 2 * time.Minute, Min: time.Second, Jitter: true}}
	for {
		err := f()
		if err == nil || ctx.Err() != nil || image.Permanent(err) {
			return err
		}
		d := c.Next()
		m.set(w, func(s *deployment.WorkloadStatus) {
			s.State, s.Reason = state, fmt.Sprintf("%v; trying again in %s", err, d.Round(time.Second))
		})
		if err := m.cfg.wait(ctx, d); err != nil {
			return err
		}
	}
}

// prepare pins the workload's image (when the file named a tag the CLI
// could not pin), pulls it and unpacks its root.
func (m *Manager) prepare(ctx context.Context, r *run, w *workloadRun) (image.Image, error) {
	m.set(w, func(s *deployment.WorkloadStatus) { s.State = fact.WorkloadPulling })
	creds := r.rec.Deployment.Credentials
	m.mu.Lock()
	ref := r.rec.Image(w.spec.Name)
	m.mu.Unlock()
	if !deployment.Pinned(ref) {
		var pinned string
		err := m.retry(ctx, w, fact.WorkloadPulling, func() (err error) {
			pinned, err = m.images.Pin(ctx, ref, creds)
			return err
		})
		if err != nil {
			return image.Image{}, err
		}
		rec, err := m.state.Pin(r.key, r.rec.Generation, w.spec.Name, pinned)
		if err != nil {
			return image.Image{}, err
		}
		m.mu.Lock()
		r.rec = rec
		m.mu.Unlock()
		ref = pinned
		m.log.Info("image pinned", "deployment", r.key, "workload", w.spec.Name, "image", pinned)
	}
	var img image.Image
	err := m.retry(ctx, w, fact.WorkloadPulling, func() (err error) {
		img, err = m.images.Pull(ctx, ref, creds, func(done, total int64) {
			m.mu.Lock()
			w.status.Pull = &deployment.Progress{Done: done, Total: total}
			m.mu.Unlock()
		})
		return err
	})
	if err != nil {
		return image.Image{}, err
	}
	if _, err := m.images.RootFS(ctx, img); err != nil {
		return image.Image{}, err
	}
	m.set(w, func(s *deployment.WorkloadStatus) { s.State, s.Reason, s.Pull = fact.WorkloadStarting, "", nil })
	return img, nil
}

// attach makes the deployment's network and publishes its ports, trying
// again with backoff; false when ctx ended first.
func (m *Manager) attach(ctx context.Context, r *run) bool {
	var ports []runtime.Port
	for _, w := range r.rec.Deployment.Workloads {
		for _, p := range w.Ports {
			ports = append(ports, runtime.Port{Node: p.Node, Container: p.Container, Protocol: p.Protocol})
		}
	}
	err := m.retry(ctx, r.workloads[0], fact.WorkloadStarting, func() error {
		info, err := m.rt.AttachNetwork(ctx, runtime.Network{Deployment: r.key, Owner: r.rec.Owner})
		if err != nil {
			return fmt.Errorf("network: %w", err)
		}
		m.mu.Lock()
		r.address = info.Address
		m.mu.Unlock()
		if err := m.rt.Publish(ctx, r.key, ports); err != nil {
			m.rt.DetachNetwork(context.WithoutCancel(ctx), r.key)
			return fmt.Errorf("publishing ports: %w", err)
		}
		return nil
	})
	return err == nil
}
