// Package testutil holds the small helpers many packages' tests share.
package testutil

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gridnode/gridnode/internal/filehash"
)

// SyncBuffer is a bytes.Buffer safe for a writer and a reader in different
// goroutines: a log a test reads while the code under test writes it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// SHA256File returns the hex sha256 of the file at path, failing t on error.
func SHA256File(t testing.TB, path string) string {
	t.Helper()
	sum, err := filehash.SHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// Eventually waits until cond holds and fails t when timeout passes first,
// with the message format and args say (formatted then: a pointer argument
// shows the state at the deadline). cond is checked at once, then at short
// intervals that grow to 50 ms: for states nothing announces; a console line
// or a channel is better waited on directly.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if cond() {
		return
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	every := time.Millisecond
	tick := time.NewTimer(every)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			if cond() {
				return
			}
			t.Fatalf("timed out after %s waiting for %s", timeout, fmt.Sprintf(format, args...))
		case <-tick.C:
			if cond() {
				return
			}
			every = min(2*every, 50*time.Millisecond)
			tick.Reset(every)
		}
	}
}
