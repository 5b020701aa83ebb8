package restart

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridnode/gridnode/init/supervisor/runner"
	"github.com/gridnode/gridnode/init/supervisor/runner/process"
	"github.com/gridnode/gridnode/internal/backoff"
)

// recorder keeps the backoff delays and the exits of a run.
type recorder struct {
	mu      sync.Mutex
	delays  []time.Duration
	exits   []string
	starts  int
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) note(f func()) {
	r.mu.Lock()
	f()
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) Started(runner.Process) { r.note(func() { r.starts++ }) }
func (r *recorder) Ready()                 {}
func (r *recorder) Exited(s string)        { r.note(func() { r.exits = append(r.exits, s) }) }
func (r *recorder) Logf(string, ...any)    {}
func (r *recorder) Backoff(err error, d time.Duration) {
	r.note(func() { r.delays = append(r.delays, d) })
}

// waitDelays waits until n delays were chosen.
func (r *recorder) waitDelays(t *testing.T, n int) []time.Duration {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		d := append([]time.Duration(nil), r.delays...)
		r.mu.Unlock()
		if len(d) >= n {
			return d
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("%d restarts in 20 s, want %d", len(d), n)
		}
	}
}

func sh(script string) *process.Runner {
	return &process.Runner{Name: "t", Argv: []string{"/bin/sh", "-c", script}, Grace: time.Second}
}

func policy(base, max time.Duration) backoff.Policy { return backoff.Policy{Base: base, Max: max} }

// TestForeverBacksOff: a daemon that keeps failing waits twice as long
// each time, up to the cap.
func TestForeverBacksOff(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	r := New(sh("exit 1"), Options{Backoff: policy(time.Millisecond, 4*time.Millisecond), StableAfter: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, rec) }()
	got := rec.waitDelays(t, 5)
	cancel()
	if err := <-done; !errors.Is(err, ErrStopped) {
		t.Errorf("Run after ctx ended = %v, want ErrStopped", err)
	}
	if want := "[1ms 2ms 4ms 4ms 4ms]"; fmt.Sprint(got[:5]) != want {
		t.Errorf("delays %v, want %s", got[:5], want)
	}
}

// TestStableRunResetsBackoff: runs longer than StableAfter start the
// backoff over: every delay is the first.
func TestStableRunResetsBackoff(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	r := New(sh("sleep 0.05"), Options{Backoff: policy(time.Millisecond, time.Second), StableAfter: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx, rec)
	for i, d := range rec.waitDelays(t, 3) {
		if d != time.Millisecond {
			t.Errorf("delay %d after a stable run: %s, want 1ms", i+1, d)
		}
	}
}

// TestUntilSuccess: a oneshot runs again until it exits with status 0,
// then Run returns nil; a daemon that exits with 0 is restarted.
func TestUntilSuccess(t *testing.T) {
	t.Parallel()
	count := filepath.Join(t.TempDir(), "count")
	// Fails twice, then succeeds.
	script := `n=$(cat ` + count + ` 2>/dev/null || echo 0); echo $((n+1)) > ` + count + `; [ "$n" -ge 2 ]`
	rec := newRecorder()
	err := New(sh(script), Options{Policy: UntilSuccess, Backoff: policy(time.Millisecond, time.Millisecond)}).Run(context.Background(), rec)
	if err != nil {
		t.Fatalf("Run = %v, want nil after a success", err)
	}
	if got := strings.Join(rec.exits, ", "); got != "exit status 1, exit status 1, exit status 0" {
		t.Errorf("exits: %s", got)
	}

	daemon := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go New(sh("exit 0"), Options{Policy: Forever, Backoff: policy(time.Millisecond, time.Millisecond)}).Run(ctx, daemon)
	daemon.waitDelays(t, 2)
}

// TestHaltStopsRestarts: once Halt closes, a runner waiting for its next
// start returns at once instead of starting again.
func TestHaltStopsRestarts(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	halt := make(chan struct{})
	r := New(sh("exit 1"), Options{Backoff: policy(time.Hour, time.Hour), Halt: halt})
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background(), rec) }()
	rec.waitDelays(t, 1) // now in its hour of backoff
	close(halt)
	select {
	case err := <-done:
		if !errors.Is(err, ErrStopped) {
			t.Errorf("Run = %v, want ErrStopped", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run still waiting for its restart 20 s after Halt closed")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.starts != 1 {
		t.Errorf("%d starts, want 1", rec.starts)
	}
}
