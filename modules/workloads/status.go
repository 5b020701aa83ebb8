package workloads

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/node/fact"
	"github.com/gridnode/gridnode/workload/admission"
	"github.com/gridnode/gridnode/workload/logs"
	"github.com/gridnode/gridnode/workload/runtime"
	"github.com/gridnode/gridnode/workload/state"
)

// Status is owner's deployment name.
func (m *Manager) Status(owner uint64, name string) (deployment.Status, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[state.Key(owner, name)]
	if !ok || r.gone {
		return deployment.Status{}, false
	}
	return m.statusLocked(r), true
}

// List is owner's deployments, or everyone's when all.
func (m *Manager) List(owner uint64, all bool) []deployment.Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := []deployment.Status{}
	for _, r := range m.runs {
		if !r.gone && (all || r.rec.Owner == owner) {
			l = append(l, m.statusLocked(r))
		}
	}
	slices.SortFunc(l, func(a, b deployment.Status) int {
		if a.Owner != b.Owner {
			return int(a.Owner) - int(b.Owner)
		}
		return strings.Compare(a.Name, b.Name)
	})
	return l
}

// Log returns the log of a workload of owner's deployment name.
func (m *Manager) Log(owner uint64, name, workload string) (*logs.File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[state.Key(owner, name)]
	if !ok || r.gone {
		return nil, refusal(http.StatusNotFound, "no deployment %q of twin %d on this node", name, owner)
	}
	for _, w := range r.workloads {
		if w.spec.Name == workload {
			if w.log == nil {
				return nil, refusal(http.StatusNotFound, "workload %s/%s has not started yet: no log", name, workload)
			}
			return w.log, nil
		}
	}
	return nil, refusal(http.StatusNotFound, "deployment %q has no workload %q", name, workload)
}

// statusLocked is the deployment's status as the API shows it.
func (m *Manager) statusLocked(r *run) deployment.Status {
	st := deployment.Status{
		Owner: r.rec.Owner, Name: r.rec.Deployment.Name, Generation: r.rec.Generation,
		Address: r.address, Created: r.rec.Created, Updated: r.rec.Updated, Reason: r.reason,
	}
	counts := map[string]int{}
	for _, w := range r.workloads {
		ws := w.status
		ws.Name, ws.Image, ws.Ports = w.spec.Name, w.spec.Image, w.spec.Ports
		if p := r.rec.Image(w.spec.Name); deployment.Pinned(p) {
			ws.Digest = p[strings.LastIndexByte(p, '@')+1:]
		}
		if ws.Pull != nil {
			p := *ws.Pull
			ws.Pull = &p
		}
		st.Workloads = append(st.Workloads, ws)
		counts[ws.State]++
	}
	n := len(r.workloads)
	switch {
	case r.gone || counts[fact.WorkloadStopping] > 0:
		st.State = deployment.StateStopping
	case counts[fact.WorkloadFailed] == n:
		st.State = deployment.StateFailed
	case counts[fact.WorkloadFailed] > 0 || counts[fact.WorkloadRestarting] > 0:
		st.State = deployment.StateDegraded
	case counts[fact.WorkloadPulling] > 0:
		st.State = deployment.StatePulling
	case counts[fact.WorkloadRunning]+counts[fact.WorkloadExited] == n:
		st.State = deployment.StateRunning
	default:
		st.State = deployment.StatePending
	}
	return st
}

// publisher writes the fact "workloads" whenever something changed.
func (m *Manager) publisher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.changed:
		}
		m.mu.Lock()
		folder := m.cfg.Facts
		m.mu.Unlock()
		if folder == "" {
			continue
		}
		f := m.Fact()
		f.Found = m.found(ctx)
		if err := folder.Write(fact.NameWorkloads, f); err != nil {
			m.log.Warn("publishing the workloads fact", "err", err)
		}
	}
}

// found is what the runtime finds on the node, with the volumes and images
// on the cache disk; nil when the runtime cannot look.
func (m *Manager) found(ctx context.Context) *fact.WorkloadsFound {
	fi, ok := m.rt.(runtime.Finder)
	if !ok {
		return nil
	}
	f, err := fi.Find(ctx)
	if err != nil {
		m.log.Warn("looking at what workloads hold on the node", "err", err)
	}
	keys, _ := os.ReadDir(filepath.Join(m.cfg.Dir, "volumes"))
	for _, k := range keys {
		vols, _ := os.ReadDir(filepath.Join(m.cfg.Dir, "volumes", k.Name()))
		for _, v := range vols {
			f.Volumes = append(f.Volumes, k.Name()+"/"+v.Name())
		}
	}
	if m.images != nil {
		f.Images, err = m.images.Refs()
		if err != nil {
			m.log.Warn("listing the image store", "err", err)
		}
	}
	return &f
}

// PublishTo publishes the fact "workloads" in folder from now on, naming
// socket as the API's: the module calls it once the API serves, since the
// fact's first publication is the module's readiness.
func (m *Manager) PublishTo(folder fact.Folder, socket string) error {
	m.mu.Lock()
	m.cfg.Facts, m.cfg.Socket = folder, socket
	m.mu.Unlock()
	f := m.Fact()
	f.Found = m.found(m.ctx)
	return folder.Write(fact.NameWorkloads, f)
}

// Fact is the public summary of what runs (fact "workloads").
func (m *Manager) Fact() fact.Workloads {
	m.mu.Lock()
	defer m.mu.Unlock()
	used, _ := m.usedLocked("")
	f := fact.Workloads{Socket: m.cfg.Socket, Capacity: admission.Capacity(m.cfg.Total, used), Workloads: []fact.WorkloadState{}}
	keys := make([]string, 0, len(m.runs))
	for k := range m.runs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		r := m.runs[k]
		for _, w := range r.workloads {
			f.Workloads = append(f.Workloads, fact.WorkloadState{
				Owner: r.rec.Owner, Deployment: r.rec.Deployment.Name, Workload: w.spec.Name,
				Generation: r.rec.Generation, State: w.status.State, Restarts: w.status.Restarts,
				LastExit: w.status.LastExit, Since: w.status.Since,
			})
		}
	}
	return f
}
