package upgrade

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/gridnode/gridnode/node/fact"
)

// view is what a trial's health is judged on: the facts as they are, and
// how long the trial has run of its deadline.
type view struct {
	modules   fact.Modules    // nil until the supervisor published them
	registrar *fact.Registrar // nil until the registrar module published
	workloads *fact.Workloads // nil without a workloads module
	// ran are the workloads that ran before the jump (workloadKey): each
	// must run again. Nil: every workload the node has.
	ran      []string
	self     string        // this module, ready by being here
	elapsed  time.Duration // since the trial's kernel started
	deadline time.Duration
}

// healthy says whether the release on trial proved healthy, and otherwise
// what it still waits for, in words, and whether it can never pass in
// this boot (hopeless: a module it needs is not even run). Healthy is: every module ready; the
// registrar accepted an uptime report of this boot, or, after half the
// deadline, it is unreachable (down or overloaded: no verdict on the
// release, and a rollout must not stall on a registrar outage); and every
// workload the node runs runs again.
func healthy(v view) (ok, hopeless bool, waiting []string) {
	if v.modules == nil {
		return false, false, []string{"the supervisor's module states"}
	}
	var names []string
	for n := range v.modules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if m := v.modules[n]; n != v.self && m.State != fact.StateReady {
			waiting = append(waiting, fmt.Sprintf("module %s (%s)", n, m.State))
		}
	}
	_, runs := v.modules[fact.NameRegistrar]
	r := v.registrar
	switch {
	case !runs:
		waiting = append(waiting, "the registrar module, which does not run (gridnode.modules)")
		hopeless = true
	case r != nil && r.LastUptime != nil:
	case r != nil && r.Unreachable && v.elapsed >= v.deadline/2:
		// Unreachable for the second half: the modules' readiness decides.
	case r != nil && r.LastError != "":
		waiting = append(waiting, "an uptime report the registrar accepts (last error: "+r.LastError+")")
	default:
		waiting = append(waiting, "an uptime report the registrar accepts")
	}
	if w := v.workloads; w != nil {
		states := map[string]string{}
		for _, s := range w.Workloads {
			states[workloadKey(s)] = s.State
		}
		want := v.ran
		if want == nil {
			want = slices.Sorted(maps.Keys(states))
		}
		for _, k := range want {
			if st := states[k]; st != fact.WorkloadRunning && st != fact.WorkloadExited {
				waiting = append(waiting, fmt.Sprintf("workload %s (%s)", k, cmp.Or(st, "not there")))
			}
		}
	}
	return len(waiting) == 0, hopeless, waiting
}

// workloadKey names a workload across a jump: owner/deployment/workload.
func workloadKey(s fact.WorkloadState) string {
	return fmt.Sprintf("%d/%s/%s", s.Owner, s.Deployment, s.Workload)
}

// running lists the workloads of w that run now (workloadKey), sorted.
func running(w *fact.Workloads) []string {
	l := []string{}
	if w != nil {
		for _, s := range w.Workloads {
			if s.State == fact.WorkloadRunning {
				l = append(l, workloadKey(s))
			}
		}
	}
	sort.Strings(l)
	return l
}
