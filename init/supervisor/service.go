package supervisor

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/gridnode/gridnode/init/supervisor/condition"
	"github.com/gridnode/gridnode/init/supervisor/logs"
	"github.com/gridnode/gridnode/init/supervisor/runner"
	"github.com/gridnode/gridnode/init/supervisor/runner/process"
	"github.com/gridnode/gridnode/init/supervisor/runner/restart"
	"github.com/gridnode/gridnode/internal/backoff"
	"github.com/gridnode/gridnode/node/fact"
)

// service is a Service with its state.
type service struct {
	Service
	sup        *Supervisor
	ring       *logs.Ring
	dependants []string
	done       chan struct{} // closed when its goroutine has returned

	// Guarded by sup.mu.
	status    fact.Module
	everReady bool
	proc      runner.Process // the current process, nil between processes
}

// supervise runs one service: it waits for its dependencies, then runs its
// program under its restart policy until ctx ends or shutdown halts it.
func (s *Supervisor) supervise(ctx context.Context, sv *service) {
	defer close(sv.done)
	defer func() {
		// A bug here must not take PID 1 (and with it the kernel) down.
		if v := recover(); v != nil {
			s.Logf("internal error while supervising %s: %v", sv.Name, v)
			s.set(sv, fact.StateStopped, nil)
		}
	}()
	if !s.waitDeps(ctx, sv) {
		s.set(sv, fact.StateStopped, nil)
		return
	}
	err := s.runner(sv).Run(ctx, (*events)(sv))
	if err == nil { // a oneshot that succeeded
		s.set(sv, fact.StateStopped, func() { sv.everReady = true })
		return
	}
	s.set(sv, fact.StateStopped, nil)
}

// runner is what runs the service: its process, restarted by policy.
func (s *Supervisor) runner(sv *service) runner.Runner {
	env := sv.Env
	if env == nil {
		env = os.Environ()
	}
	env = append(env[:len(env):len(env)], fact.DirEnv+"="+string(s.opts.Facts))
	p := &process.Runner{
		Name:          sv.Name,
		Argv:          sv.Argv,
		Env:           env,
		TTY:           sv.TTY,
		Output:        func(line string) { s.output(sv, line) },
		Grace:         s.opts.Grace,
		StopsChildren: sv.StopsChildren,
	}
	if sv.Grace > 0 {
		p.Grace = sv.Grace
	}
	switch {
	case sv.Oneshot: // ready when it succeeds
	case sv.Ready != nil:
		p.Ready = condition.Poll(sv.Name+" ready", sv.Ready, s.opts.Poll)
	case sv.TTY != "":
		p.Ready = condition.None()
	default:
		p.Notify = true
	}
	policy := restart.Forever
	if sv.Oneshot {
		policy = restart.UntilSuccess
	}
	return restart.New(p, restart.Options{
		Policy:      policy,
		Backoff:     backoff.Policy{Base: s.opts.BackoffMin, Max: s.opts.BackoffMax},
		StableAfter: s.opts.StableAfter,
		Halt:        s.halt,
	})
}

// waitDeps waits until every dependency has been ready once; false when
// the service is to stop first.
func (s *Supervisor) waitDeps(ctx context.Context, sv *service) bool {
	for {
		s.mu.Lock()
		ok, changed := true, s.changed
		for _, d := range sv.Deps {
			ok = ok && s.svcs[d].everReady
		}
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		case <-s.halt:
			return false
		}
	}
}

// set changes a service's state, applying change first (under the lock),
// publishes the fact, and wakes whoever waits for a first readiness.
func (s *Supervisor) set(sv *service, state string, change func()) {
	s.mu.Lock()
	wasReady := sv.everReady
	if change != nil {
		change()
	}
	if sv.status.State != state {
		sv.status.State = state
		sv.status.Since = time.Now().UTC().Truncate(time.Millisecond)
		s.publishLocked()
	}
	all := false
	if sv.everReady && !wasReady {
		close(s.changed)
		s.changed = make(chan struct{})
		all = s.allReadyLocked()
	}
	s.mu.Unlock()
	if all && s.opts.AllReady != nil {
		s.opts.AllReady()
	}
}

// allReadyLocked says whether every service has now been ready, the first
// time it is so.
func (s *Supervisor) allReadyLocked() bool {
	if s.allReady {
		return false
	}
	for _, sv := range s.svcs {
		if !sv.everReady && sv.TTY == "" {
			return false
		}
	}
	s.allReady = true
	return true
}

// output tags a line of the service's output onto the console and keeps it.
func (s *Supervisor) output(sv *service, line string) {
	defer func() {
		if v := recover(); v != nil {
			s.Logf("output of %s: internal error: %v", sv.Name, v)
		}
	}()
	sv.ring.Add(line)
	s.console.Line(sv.Name, line)
}

// events receives a service's runner's events (runner.Events): the
// service's state follows them.
type events service

// Started implements runner.Events.
func (sv *events) Started(p runner.Process) {
	sv.sup.set((*service)(sv), fact.StateStarting, func() {
		sv.proc = p
		sv.status.PID = p.PID()
	})
}

// Ready implements runner.Events.
func (sv *events) Ready() {
	sv.sup.set((*service)(sv), fact.StateReady, func() { sv.everReady = true })
}

// Exited implements runner.Events.
func (sv *events) Exited(status string) {
	s := sv.sup
	s.mu.Lock()
	defer s.mu.Unlock()
	sv.proc = nil
	sv.status.PID = 0
	sv.status.LastExit = status
}

// Backoff implements runner.Events.
func (sv *events) Backoff(err error, delay time.Duration) {
	s := sv.sup
	if se := (*runner.StartError)(nil); errors.As(err, &se) {
		s.Logf("%s could not start: %v — retry in %s", sv.Name, se.Err, delay)
		s.set((*service)(sv), fact.StateFailed, func() {
			sv.status.LastExit = se.Error()
			sv.status.PID = 0
		})
		return
	}
	s.set((*service)(sv), fact.StateRestarting, func() {
		sv.status.Restarts++
		s.Logf("%s exited (%s) — restart %d in %s", sv.Name, sv.status.LastExit, sv.status.Restarts, delay)
	})
}

// Logf implements runner.Events.
func (sv *events) Logf(format string, args ...any) { sv.sup.Logf(format, args...) }
