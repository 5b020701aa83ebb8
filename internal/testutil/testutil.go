// Package testutil holds the small helpers many packages' tests share.
package testutil

import (
	"bytes"
	"os"
	"os/exec"
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

// RequireRoot skips t unless it runs as root; in CI, which runs as root, a
// test that would skip fails instead. what says what needs root.
func RequireRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("this test needs root (%s); CI runs as root, so something is wrong", what)
	}
	t.Skipf("skipping: needs root for %s (run as root, as CI does)", what)
}

// RequireTool returns the path of program name; outside CI a missing one
// skips t, in CI it fails t (make test installs every oracle).
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed; .ci/deps.sh installs it (run make deps)", name)
	}
	t.Skipf("skipping: %s is not installed (run make deps)", name)
	return ""
}
