// Package testutil holds the small helpers many packages' tests share.
package testutil

import (
	"bytes"
	"sync"
	"testing"

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
