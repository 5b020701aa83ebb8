// Package restart wraps a runner in a restart policy, after Talos's
// runner/restart: the wrapped runner runs again after each end, with an
// exponential backoff (internal/backoff, without jitter: a local process,
// the same schedule on every boot) that starts over once a run lasted a
// stable period.
package restart

import (
	"context"
	"errors"
	"time"

	"github.com/gridnode/gridnode/init/supervisor/runner"
	"github.com/gridnode/gridnode/internal/backoff"
)

// Policy says when a run is the last.
type Policy int

const (
	// Forever restarts the program whenever it ends (a daemon).
	Forever Policy = iota
	// UntilSuccess restarts it until it exits with status 0 (a oneshot).
	UntilSuccess
)

// ErrStopped is returned by Run when it was stopped rather than done.
var ErrStopped = errors.New("stopped")

// Options of a restarting runner.
type Options struct {
	Policy Policy
	// Backoff is the schedule of delays before each restart.
	Backoff backoff.Policy
	// StableAfter: a run that lasted this long starts the backoff over.
	StableAfter time.Duration
	// Halt, once closed, lets no new run start: Run returns ErrStopped
	// instead, from its backoff or before a start. A run under way goes
	// on until Run's context ends. The supervisor closes it when it shuts
	// down, before it stops services one after the other.
	Halt <-chan struct{}
}

type restarter struct {
	inner runner.Runner
	opts  Options
}

// New wraps r in the restart policy of opts.
func New(r runner.Runner, opts Options) runner.Runner {
	return &restarter{inner: r, opts: opts}
}

// Run implements runner.Runner. It returns nil once the program succeeded
// under UntilSuccess, and ErrStopped when ctx ended or Halt closed.
func (r *restarter) Run(ctx context.Context, ev runner.Events) error {
	c := backoff.Counter{Policy: r.opts.Backoff}
	for {
		if r.halted(ctx) {
			return ErrStopped
		}
		t0 := time.Now() // monotonic: a clock step does not count
		err := r.inner.Run(ctx, ev)
		if r.halted(ctx) {
			return ErrStopped
		}
		if err == nil && r.opts.Policy == UntilSuccess {
			return nil
		}
		if time.Since(t0) >= r.opts.StableAfter {
			c.Reset()
		}
		delay := c.Next()
		ev.Backoff(err, delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
		case <-r.opts.Halt:
		case <-t.C:
		}
		t.Stop()
	}
}

func (r *restarter) halted(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	case <-r.opts.Halt:
		return true
	default:
		return false
	}
}
