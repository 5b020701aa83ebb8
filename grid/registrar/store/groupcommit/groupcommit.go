// Package groupcommit commits writes in groups, the one way the registrar's
// stores write what a grid sends by the million (accounts, nodes, uptime
// reports). One goroutine takes every write queued while the previous group
// was being committed (up to Policy.Max) and commits them in one
// transaction, then answers each writer. Under load a group carries hundreds
// of writes and the cost of a commit is shared; when idle, a write is
// committed at once. A writer is answered only after the commit, so nothing
// acknowledged is lost.
//
// There is one queue, one retry policy and one deadline per group:
//
//   - A group whose transaction fails transiently (Policy.Transient: a lost
//     connection, a serialisation failure, a busy database) is tried again,
//     whole, after the waits of Policy.Retry: each write is tried once per
//     try of its group, never by two layers on top of each other.
//   - A group that fails for another reason (one bad write) is split: each
//     of its writes is tried alone, so that the bad one fails alone.
//   - All of it happens within Policy.Deadline from when the group's first
//     try starts: past it, every write not committed yet fails with
//     ErrDeadline, which says how many tries were made and the last failure.
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridnode/gridnode/internal/backoff"
)

// Policy is how a Queue commits.
type Policy struct {
	// Max is the most writes in one group (default 1000).
	Max int
	// Deadline bounds the commit of a group, retries included (default 30 s).
	Deadline time.Duration
	// Retry is the schedule of waits before a group that failed transiently
	// is tried again (default: 10 ms doubling to 1 s, full jitter, at least
	// 1 ms: replicas writing to one database do not retry in step).
	Retry backoff.Policy
	// Transient says whether a failure of a group's transaction is worth
	// another try of the same group; nil: none is.
	Transient func(error) bool
	// Linger is how long a group waits for more writes, after taking those
	// queued, when the queue is busy (the last group carried more than one
	// write) and the group has room: each write then waits up to Linger
	// longer, and a grid's commits carry several times more writes each,
	// at a fraction of the database's cost per write. An idle queue
	// commits a lone write at once. 0: the default; negative: no wait.
	Linger time.Duration
}

// DefaultPolicy is the policy of a Queue given the zero Policy. Its Linger
// of 1 ms doubles the writes per group of a registrar taking uptime reports
// as fast as it can (about 10 to about 20 on 2 cores with PostgreSQL, where
// a statement costs the server some 200 µs and a report some 5 µs more),
// for a millisecond more per write under load.
func DefaultPolicy() Policy {
	return Policy{Max: 1000, Deadline: 30 * time.Second, Linger: time.Millisecond,
		Retry: backoff.Policy{Base: 10 * time.Millisecond, Max: time.Second, Min: time.Millisecond, Jitter: true}}
}

// withDefaults fills p's zero fields from DefaultPolicy.
func (p Policy) withDefaults() Policy {
	d := DefaultPolicy()
	if p.Max <= 0 {
		p.Max = d.Max
	}
	if p.Deadline <= 0 {
		p.Deadline = d.Deadline
	}
	if p.Retry.Base <= 0 {
		p.Retry = d.Retry
	}
	if p.Linger == 0 {
		p.Linger = d.Linger
	}
	return p
}

// Errors a writer gets from Submit, wrapped; test with errors.Is.
var (
	// ErrDeadline: the write's group was not committed within Policy.Deadline.
	ErrDeadline = errors.New("not committed within the deadline")
	// ErrClosed: the queue was closed before the write was queued.
	ErrClosed = errors.New("closed: shutting down")
)

// Result is what one group's commit came to, for metrics.
type Result struct {
	Writes   int           // writes in the group
	Tries    int           // tries of the whole group (1 when all went well)
	Split    bool          // the group failed for a reason of its own and was split
	Took     time.Duration // from the first try to the answers
	Err      error         // the group's last failure; nil when committed whole
	Deadline bool          // some writes failed with ErrDeadline
}

// Queue commits the writes submitted to it in groups. W is the write, as the
// commit function takes it (a pointer, in which that function sets each
// write's own outcome, such as an assigned id or a duplicate key).
type Queue[W any] struct {
	commit  func(ctx context.Context, group []W) error
	done    func(group []W, r Result)
	policy  atomic.Pointer[Policy]
	mu      sync.RWMutex
	closed  bool
	in      chan *pending[W]
	stopped chan struct{}
}

type pending[W any] struct {
	w    W
	err  error
	done chan struct{}
}

// New starts a queue. commit writes a group in one transaction and returns
// the transaction's failure; done, if not nil, is called after each group,
// before its writers are answered.
func New[W any](p Policy, commit func(ctx context.Context, group []W) error, done func(group []W, r Result)) *Queue[W] {
	p = p.withDefaults()
	q := &Queue[W]{commit: commit, done: done, in: make(chan *pending[W], 4*p.Max), stopped: make(chan struct{})}
	q.policy.Store(&p)
	go q.loop()
	return q
}

// Policy returns the queue's policy.
func (q *Queue[W]) Policy() Policy { return *q.policy.Load() }

// SetPolicy replaces the policy from the next group on (zero fields take
// their defaults). The queue's capacity stays what New made it.
func (q *Queue[W]) SetPolicy(p Policy) {
	p = p.withDefaults()
	q.policy.Store(&p)
}

// Submit queues w and waits until its group is committed or has failed. It
// returns the failure that w shares with its group (ErrDeadline, or the
// failure of w tried alone); w's own outcome is in w. Once queued, a write
// is carried out even when ctx ends meanwhile.
func (q *Queue[W]) Submit(ctx context.Context, w W) error {
	p := &pending[W]{w: w, done: make(chan struct{})}
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return ErrClosed
	}
	select {
	case q.in <- p:
	case <-ctx.Done():
		q.mu.RUnlock()
		return ctx.Err()
	}
	q.mu.RUnlock()
	<-p.done
	return p.err
}

// Close commits what is queued, stops the queue and returns; later Submits
// fail with ErrClosed.
func (q *Queue[W]) Close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.in)
	}
	q.mu.Unlock()
	<-q.stopped
}

func (q *Queue[W]) loop() {
	defer close(q.stopped)
	var group []*pending[W]
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	busy := false // the last group carried more than one write
	for {
		p, ok := <-q.in
		if !ok {
			return
		}
		pol := q.Policy()
		group = append(group[:0], p)
		var wait <-chan time.Time // nil: take what is queued, then commit
		if busy && pol.Linger > 0 {
			linger.Reset(pol.Linger)
			wait = linger.C
		}
	take:
		for len(group) < pol.Max {
			select {
			case p, ok := <-q.in:
				if !ok {
					break take
				}
				group = append(group, p)
				continue
			default:
			}
			if wait == nil {
				break
			}
			select {
			case p, ok := <-q.in:
				if !ok {
					break take
				}
				group = append(group, p)
			case <-wait:
				wait = nil
				break take
			}
		}
		if wait != nil {
			linger.Stop()
		}
		busy = len(group) > 1
		q.run(pol, group)
		for i, p := range group {
			close(p.done)
			group[i] = nil
		}
	}
}

// run commits group within pol.Deadline and reports it to done.
func (q *Queue[W]) run(pol Policy, group []*pending[W]) {
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(pol.Deadline))
	defer cancel()
	r := Result{Writes: len(group)}
	ws := make([]W, len(group))
	for i, p := range group {
		ws[i] = p.w
	}
	r.Tries, r.Err = q.try(ctx, pol, ws, start)
	switch {
	case r.Err == nil:
	case errors.Is(r.Err, ErrDeadline):
		r.Deadline = true
		for _, p := range group {
			p.err = r.Err
		}
	case len(group) == 1:
		group[0].err = r.Err
	default:
		// Something other than a passing trouble failed: find which write,
		// each alone, within what is left of the deadline.
		r.Split = true
		for _, p := range group {
			if _, err := q.try(ctx, pol, []W{p.w}, start); err != nil {
				p.err = err
				r.Deadline = r.Deadline || errors.Is(err, ErrDeadline)
			}
		}
	}
	r.Took = time.Since(start)
	if q.done != nil {
		q.done(ws, r)
	}
}

// try commits ws, trying again after transient failures while the deadline
// allows. It returns the number of tries and the last failure: ErrDeadline
// (wrapping the failure before it) when time ran out.
func (q *Queue[W]) try(ctx context.Context, pol Policy, ws []W, start time.Time) (tries int, err error) {
	retry := backoff.Counter{Policy: pol.Retry}
	for {
		tries++
		err = q.commit(ctx, ws)
		if err == nil {
			return tries, nil
		}
		if ctx.Err() != nil {
			return tries, late(pol, tries, start, err)
		}
		if pol.Transient == nil || !pol.Transient(err) {
			return tries, err
		}
		wait := retry.Next()
		if dl, _ := ctx.Deadline(); time.Until(dl) < wait {
			return tries, late(pol, tries, start, err)
		}
		backoff.Sleep(ctx, wait) // the deadline is after the wait: checked above
	}
}

// DeadlineError is the failure of the writes of a group that was not
// committed within its deadline. errors.Is(err, ErrDeadline) holds for it.
type DeadlineError struct {
	Deadline time.Duration // the policy's
	Tries    int           // of the group, or of the write alone
	Took     time.Duration
	Last     error // the failure of the last try
}

func (e *DeadlineError) Error() string {
	return fmt.Sprintf("%v of %s (%s in %s; the last failed with: %v)",
		ErrDeadline, e.Deadline, e.TriesText(), e.Took.Round(time.Millisecond), e.Last)
}

// TriesText is "1 try" or "N tries".
func (e *DeadlineError) TriesText() string {
	if e.Tries == 1 {
		return "1 try"
	}
	return fmt.Sprintf("%d tries", e.Tries)
}

func (e *DeadlineError) Is(target error) bool { return target == ErrDeadline }

func (e *DeadlineError) Unwrap() error { return e.Last }

// late is the failure of writes whose deadline passed.
func late(pol Policy, tries int, start time.Time, last error) error {
	return &DeadlineError{Deadline: pol.Deadline, Tries: tries, Took: time.Since(start), Last: last}
}
