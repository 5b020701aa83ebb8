package workloads

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/gridnode/gridnode/internal/backoff"
	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/workload/image"
	"github.com/gridnode/gridnode/workload/logs"
	"github.com/gridnode/gridnode/workload/runtime"
	"golang.org/x/sys/unix"
)

// supervise runs one workload until ctx is done: create, start, wait,
// restart by its policy with backoff, stop gracefully at the end.
func (m *Manager) supervise(ctx context.Context, r *run, w *workloadRun, img image.Image) {
	id := fmt.Sprintf("%s.%s.g%d", r.key, w.spec.Name, r.rec.Generation)
	bg := context.WithoutCancel(ctx)
	lf, err := m.openLog(r, w)
	if err != nil {
		m.set(w, func(s *deployment.WorkloadStatus) { s.State, s.Reason = fact.WorkloadFailed, err.Error() })
		<-ctx.Done()
		return
	}
	defer lf.Close()
	c := backoff.Counter{Policy: m.cfg.Restart}
	for {
		spec, err := m.spec(r, w, img, id, lf)
		if err != nil {
			m.set(w, func(s *deployment.WorkloadStatus) { s.State, s.Reason = fact.WorkloadFailed, err.Error() })
			<-ctx.Done()
			return
		}
		m.rt.Delete(bg, id) // whatever an earlier try left
		if _, err = m.rt.Create(ctx, spec); err == nil {
			err = m.rt.Start(ctx, id)
		}
		if ctx.Err() != nil {
			m.rt.Delete(bg, id)
			return
		}
		started := time.Now()
		var exit runtime.Exit
		if err == nil {
			m.set(w, func(s *deployment.WorkloadStatus) { s.State, s.Reason = fact.WorkloadRunning, "" })
			m.mu.Lock()
			w.instance, w.lastCPU, w.lastAt = id, 0, started
			m.mu.Unlock()
			var stopped bool
			exit, stopped = m.waitOrStop(ctx, w, id)
			m.mu.Lock()
			w.instance = ""
			w.status.MilliCPU, w.status.Memory = 0, 0
			m.mu.Unlock()
			if err := m.rt.Delete(bg, id); err != nil {
				m.log.Warn("removing a workload's instance", "instance", id, "err", err)
			}
			if stopped {
				m.set(w, func(s *deployment.WorkloadStatus) { s.State = fact.WorkloadStopping })
				return
			}
			fmt.Fprintf(lf, "gridnode: %s: %s\n", id, describe(exit, w.spec.Memory))
			m.set(w, func(s *deployment.WorkloadStatus) { s.LastExit = describe(exit, w.spec.Memory) })
			if !restarts(w.spec.Restart, exit) {
				m.set(w, func(s *deployment.WorkloadStatus) { s.State = fact.WorkloadExited })
				<-ctx.Done()
				return
			}
		} else {
			m.rt.Delete(bg, id)
			fmt.Fprintf(lf, "gridnode: %s: cannot start: %v\n", id, err)
			m.set(w, func(s *deployment.WorkloadStatus) { s.LastExit = "cannot start: " + err.Error() })
		}
		if time.Since(started) >= m.cfg.StableAfter {
			c.Reset()
		}
		d := c.Next()
		m.set(w, func(s *deployment.WorkloadStatus) {
			s.State, s.Restarts = fact.WorkloadRestarting, s.Restarts+1
			s.Reason = fmt.Sprintf("%s; restarting in %s", s.LastExit, d)
		})
		m.log.Info("workload restarts", "instance", id, "last_exit", w.status.LastExit, "in", d)
		if m.cfg.wait(ctx, d) != nil {
			m.set(w, func(s *deployment.WorkloadStatus) { s.State = fact.WorkloadStopping })
			return
		}
	}
}

// waitOrStop waits for the instance's exit; when ctx ends first it stops
// the instance (SIGTERM, then SIGKILL after the grace period) and reports
// stopped.
func (m *Manager) waitOrStop(ctx context.Context, w *workloadRun, id string) (runtime.Exit, bool) {
	bg := context.WithoutCancel(ctx)
	exited := make(chan runtime.Exit, 1)
	go func() {
		e, err := m.rt.Wait(bg, id)
		if err != nil {
			e = runtime.Exit{Code: -1, At: time.Now()}
			m.log.Warn("waiting for a workload", "instance", id, "err", err)
		}
		exited <- e
	}()
	select {
	case e := <-exited:
		return e, false
	case <-ctx.Done():
	}
	m.set(w, func(s *deployment.WorkloadStatus) { s.State = fact.WorkloadStopping })
	m.rt.Signal(bg, id, syscall.SIGTERM)
	t := time.NewTimer(m.cfg.Grace)
	defer t.Stop()
	select {
	case e := <-exited:
		m.log.Info("workload stopped", "instance", id, "exit", describe(e, w.spec.Memory))
	case <-t.C:
		m.log.Warn("workload ignored SIGTERM; killing it", "instance", id, "grace", m.cfg.Grace)
		m.rt.Signal(bg, id, syscall.SIGKILL)
		m.rt.Delete(bg, id) // ends a Wait whatever the process does
		<-exited
	}
	return runtime.Exit{}, true
}

// restarts says whether policy restarts a workload that ended with e.
func restarts(policy string, e runtime.Exit) bool {
	switch policy {
	case deployment.RestartNever:
		return false
	case deployment.RestartOnFailure:
		return e.Code != 0 || e.Signal != 0 || e.OOMKilled
	}
	return true
}

// describe says how a run ended, in words.
func describe(e runtime.Exit, limit deployment.Size) string {
	switch {
	case e.OOMKilled:
		return fmt.Sprintf("out of memory (limit %s)", limit)
	case e.Signal != 0:
		return "killed by " + unix.SignalName(e.Signal)
	}
	return fmt.Sprintf("exit %d", e.Code)
}

// openLog opens the workload's log under logs/KEY/, kept across its
// restarts and generations.
func (m *Manager) openLog(r *run, w *workloadRun) (*logs.File, error) {
	dir := filepath.Join(m.cfg.Dir, "logs", r.key)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("log folder: %w", err)
	}
	lf, err := logs.Open(filepath.Join(dir, w.spec.Name+".log"), m.cfg.LogMax)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	w.log = lf
	m.mu.Unlock()
	return lf, nil
}

// statsLoop reads the CPU and memory each running workload uses.
func (m *Manager) statsLoop(ctx context.Context) {
	t := time.NewTicker(m.cfg.StatsEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.mu.Lock()
		var running []*workloadRun
		for _, r := range m.runs {
			for _, w := range r.workloads {
				if w.instance != "" {
					running = append(running, w)
				}
			}
		}
		m.mu.Unlock()
		for _, w := range running {
			m.mu.Lock()
			id := w.instance
			m.mu.Unlock()
			if id == "" {
				continue
			}
			st, err := m.rt.Stats(ctx, id)
			if err != nil {
				continue
			}
			now := time.Now()
			m.mu.Lock()
			if w.instance == id {
				if dt := now.Sub(w.lastAt); dt > 0 && st.CPU >= w.lastCPU {
					w.status.MilliCPU = uint64((st.CPU - w.lastCPU) * 1000 / dt)
				}
				w.lastCPU, w.lastAt, w.status.Memory = st.CPU, now, st.Memory
			}
			m.mu.Unlock()
		}
	}
}
