package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridnode/gridnode/internal/backoff"
	"github.com/gridnode/gridnode/internal/testutil"
)

// write is a test write: its tries are counted, and commit may fail it.
type write struct {
	id    int
	tries int
	bad   bool // fails whenever it is in the group tried
}

var errBusy = errors.New("database is busy")

// db is a commit function over in-memory "rows", failing as told.
type db struct {
	mu        sync.Mutex
	transient int // the next this many tries fail with errBusy (but the gate write's)
	always    bool
	gate      chan struct{} // when set, the first try waits for it
	groups    [][]int
	committed map[int]int // write id → times committed
}

func (d *db) commit(ctx context.Context, group []*write) error {
	d.mu.Lock()
	g := d.gate
	d.gate = nil
	d.mu.Unlock()
	if g != nil {
		<-g
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := make([]int, len(group))
	for i, w := range group {
		w.tries++
		ids[i] = w.id
	}
	d.groups = append(d.groups, slices.Sorted(slices.Values(ids)))
	if d.always || (d.transient > 0 && ids[0] != gateID) {
		d.transient--
		return errBusy
	}
	for _, w := range group {
		if w.bad {
			return fmt.Errorf("write %d: value out of range", w.id)
		}
	}
	if d.committed == nil {
		d.committed = map[int]int{}
	}
	for _, w := range group {
		d.committed[w.id]++
	}
	return nil
}

func isBusy(err error) bool { return errors.Is(err, errBusy) }

// fast retries after a millisecond or two, so tests need not wait.
var fast = backoff.Policy{Base: time.Millisecond, Max: 2 * time.Millisecond}

// gateID is the write grouped holds its first group with.
const gateID = -1

// grouped submits ws while the queue is busy with a first write held at
// the gate, so that they land in the groups after it; it returns each
// Submit's error, by write.
func grouped(t *testing.T, q *Queue[*write], d *db, ws []*write) []error {
	t.Helper()
	gate := make(chan struct{})
	d.mu.Lock()
	d.gate = gate
	d.mu.Unlock()
	first := make(chan error, 1)
	go func() { first <- q.Submit(context.Background(), &write{id: gateID}) }()
	// Wait until the first write is being committed (its group is taken).
	testutil.Eventually(t, 10*time.Second, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(q.in) == 0 && d.gate == nil
	}, "the first group to start")
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = q.Submit(context.Background(), w) }()
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return len(q.in) == len(ws) }, "every write to be queued")
	close(gate)
	if err := <-first; err != nil {
		t.Fatalf("first write: %v", err)
	}
	wg.Wait()
	return errs
}

// A group that fails twice transiently is tried three times, whole: each
// write is tried once per try, committed once, and its writer answered once
// with success.
func TestTransientFailuresRetryTheGroup(t *testing.T) {
	d := &db{}
	var results []Result
	q := New(Policy{Retry: fast, Transient: isBusy}, d.commit, func(_ []*write, r Result) { results = append(results, r) })
	defer q.Close()
	ws := []*write{{id: 1}, {id: 2}, {id: 3}}
	d.transient = 2
	errs := grouped(t, q, d, ws)
	for i, w := range ws {
		if errs[i] != nil {
			t.Errorf("write %d: %v, want committed", w.id, errs[i])
		}
		if w.tries != 3 {
			t.Errorf("write %d tried %d times, want 3 (once per try of its group)", w.id, w.tries)
		}
		if d.committed[w.id] != 1 {
			t.Errorf("write %d committed %d times, want once", w.id, d.committed[w.id])
		}
	}
	if len(d.groups) != 4 || fmt.Sprint(d.groups[1:]) != "[[1 2 3] [1 2 3] [1 2 3]]" {
		t.Errorf("groups tried: %v, want the first alone, then [1 2 3] three times", d.groups)
	}
	if r := results[len(results)-1]; r.Tries != 3 || r.Writes != 3 || r.Err != nil || r.Split || r.Deadline {
		t.Errorf("result of the retried group: %+v", r)
	}
}

// A group that fails for a reason of one write is split: the bad write
// fails alone, the others are committed.
func TestBadWriteFailsAlone(t *testing.T) {
	d := &db{}
	q := New(Policy{Retry: fast, Transient: isBusy}, d.commit, nil)
	defer q.Close()
	ws := []*write{{id: 1}, {id: 2, bad: true}, {id: 3}}
	errs := grouped(t, q, d, ws)
	if errs[0] != nil || errs[2] != nil {
		t.Errorf("good writes: %v, %v; want committed", errs[0], errs[2])
	}
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "value out of range") {
		t.Errorf("bad write: %v, want its own failure", errs[1])
	}
	for _, w := range ws {
		if w.tries != 2 {
			t.Errorf("write %d tried %d times, want 2 (in its group, then alone)", w.id, w.tries)
		}
	}
}

// A group that keeps failing is given up at its deadline: every writer is
// answered, once, with ErrDeadline saying how many tries were made and the
// last failure.
func TestDeadline(t *testing.T) {
	d := &db{always: true}
	var results []Result
	q := New(Policy{Deadline: 300 * time.Millisecond, Retry: backoff.Policy{Base: 20 * time.Millisecond, Max: 50 * time.Millisecond}, Transient: isBusy},
		d.commit, func(_ []*write, r Result) { results = append(results, r) })
	defer q.Close()
	start := time.Now()
	w := &write{id: 1}
	err := q.Submit(context.Background(), w)
	took := time.Since(start)
	if !errors.Is(err, ErrDeadline) || !errors.Is(err, errBusy) {
		t.Fatalf("Submit: %v, want ErrDeadline wrapping the last failure", err)
	}
	if took > 300*time.Millisecond+time.Second {
		t.Errorf("answered after %v, past the deadline of 300ms", took)
	}
	want := fmt.Sprintf("%d tries in", w.tries)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "300ms") || w.tries < 3 {
		t.Errorf("error %q: want the deadline and %q (at least 3 tries at 20-50 ms apart)", err, want)
	}
	if len(results) != 1 || !results[0].Deadline || results[0].Tries != w.tries {
		t.Errorf("results %+v", results)
	}
}

// A failure that is not transient is not retried.
func TestNotTransientNotRetried(t *testing.T) {
	d := &db{always: true}
	q := New(Policy{Retry: fast, Transient: func(error) bool { return false }}, d.commit, nil)
	defer q.Close()
	w := &write{id: 1}
	if err := q.Submit(context.Background(), w); !errors.Is(err, errBusy) || errors.Is(err, ErrDeadline) {
		t.Fatalf("Submit: %v, want the failure itself", err)
	}
	if w.tries != 1 {
		t.Fatalf("tried %d times, want once", w.tries)
	}
}

// Close commits what is queued; a write after Close fails with ErrClosed.
func TestClose(t *testing.T) {
	d := &db{}
	q := New(Policy{}, d.commit, nil)
	ws := []*write{{id: 1}, {id: 2}}
	errs := grouped(t, q, d, ws)
	q.Close()
	for i, err := range errs {
		if err != nil || d.committed[ws[i].id] != 1 {
			t.Errorf("write %d: %v, committed %d times", ws[i].id, err, d.committed[ws[i].id])
		}
	}
	if err := q.Submit(context.Background(), &write{id: 3}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}

// A group holds at most Policy.Max writes.
func TestMax(t *testing.T) {
	d := &db{}
	q := New(Policy{Max: 2}, d.commit, nil)
	defer q.Close()
	grouped(t, q, d, []*write{{id: 1}, {id: 2}, {id: 3}, {id: 4}, {id: 5}})
	n := 0
	for _, g := range d.groups[1:] {
		if len(g) > 2 {
			t.Fatalf("group %v holds more than Max=2 writes", g)
		}
		n += len(g)
	}
	if n != 5 || len(d.groups) != 4 {
		t.Fatalf("groups %v, want the 5 writes queued together in 3 groups", d.groups)
	}
}

// A busy queue's group waits up to Linger for more writes; an idle queue
// commits a lone write at once.
func TestLinger(t *testing.T) {
	d := &db{}
	q := New(Policy{Max: 3, Linger: time.Hour}, d.commit, nil)
	defer q.Close()
	submit := func(w *write) <-chan error {
		c := make(chan error, 1)
		go func() { c <- q.Submit(context.Background(), w) }()
		return c
	}
	// Idle: the write is committed without waiting an hour.
	select {
	case err := <-submit(&write{id: 1}):
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a lone write on an idle queue waited for company")
	}
	// Busy (the last group carried two writes): a write waits for more, up
	// to Max, although it had the queue to itself when taken.
	grouped(t, q, d, []*write{{id: 2}, {id: 3}})
	a := submit(&write{id: 4})
	testutil.Eventually(t, 10*time.Second, func() bool { return len(q.in) == 0 }, "the write to be taken")
	b, c := submit(&write{id: 5}), submit(&write{id: 6})
	for _, done := range []<-chan error{a, b, c} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(d.groups[len(d.groups)-1]); got != "[4 5 6]" {
		t.Fatalf("groups %v: want the lingering write committed with the two after it", d.groups)
	}
}
