package condition

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor runs c.Wait with a deadline and returns its error.
func waitFor(t *testing.T, c Condition, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.Wait(ctx)
}

func TestNone(t *testing.T) {
	t.Parallel()
	if err := waitFor(t, None(), time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	ch := make(chan struct{})
	c := Closed(ch, "notified")
	if err := waitFor(t, c, 20*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("before the close: %v, want the context's deadline", err)
	}
	close(ch)
	if err := waitFor(t, c, 10*time.Second); err != nil {
		t.Fatalf("after the close: %v", err)
	}
	if c.String() != "notified" {
		t.Errorf("String %q", c.String())
	}
}

// TestPoll: asked until it says yes; a panic is a no, not a crash.
func TestPoll(t *testing.T) {
	t.Parallel()
	var asked atomic.Int32
	c := Poll("third time", func() bool {
		n := asked.Add(1)
		if n == 1 {
			panic("a bug in a readiness check")
		}
		return n >= 3
	}, time.Millisecond)
	if err := waitFor(t, c, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := asked.Load(); n != 3 {
		t.Errorf("asked %d times, want 3", n)
	}
	never := Poll("never", func() bool { return false }, time.Millisecond)
	if err := waitFor(t, never, 20*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a condition that never holds: %v", err)
	}
}

// TestAll: holds only once every part holds; nils are left out and nested
// lists flattened.
func TestAll(t *testing.T) {
	t.Parallel()
	a, b := make(chan struct{}), make(chan struct{})
	c := All(Closed(a, "a"), nil, All(Closed(b, "b"), None()))
	if got := c.String(); got != "a and b and nothing" {
		t.Errorf("String %q", got)
	}
	close(a)
	if err := waitFor(t, c, 20*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with b open: %v, want the context's deadline", err)
	}
	close(b)
	if err := waitFor(t, c, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(t, All(), time.Second); err != nil {
		t.Errorf("All of nothing: %v", err)
	}
}
