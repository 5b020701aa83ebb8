package testutil

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestEventuallyReturnsOnceTheStateHolds(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	start := time.Now()
	Eventually(t, 10*time.Second, func() bool { return n.Load() == 3 }, "n to reach 3")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

// fatalT records the failure; Fatalf ends its goroutine, as testing's does.
type fatalT struct {
	testing.TB
	msg string
}

func (f *fatalT) Helper() {}
func (f *fatalT) Fatalf(format string, a ...any) {
	f.msg = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

// At the deadline the test fails, and the message shows the state then.
func TestEventuallyFailsAtTheDeadline(t *testing.T) {
	type state struct{ Count int }
	s := &state{}
	f := &fatalT{TB: t}
	checks := 0
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		Eventually(f, 100*time.Millisecond, func() bool { checks++; s.Count = checks; return false }, "a state that never comes; last %+v", s)
	}()
	<-done
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("gave up after %s, before the deadline", d)
	}
	if !strings.HasPrefix(f.msg, "timed out after 100ms waiting for a state that never comes; last &{Count:") || checks < 3 {
		t.Errorf("message %q after %d checks", f.msg, checks)
	}
	if !strings.Contains(f.msg, fmt.Sprintf("Count:%d}", checks)) {
		t.Errorf("message %q does not show the last state (%d checks)", f.msg, checks)
	}
}
