package trial

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// A trial that ends on another version (the watchdog reset the machine into
// the medium's default) is recorded as failed; the version is not tried
// again under that sequence, and is under a newer one.
func TestRolledBack(t *testing.T) {
	s := Open(t.TempDir())
	if err := s.Begin(Record{Version: "0.3.0", Sequence: 5, Started: t0, From: "0.2.0"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Begin(Record{Version: "0.4.0", Sequence: 6}); err == nil {
		t.Fatal("a second trial began over an open one")
	}
	out, rec, err := s.Settle("0.2.0", t0.Add(time.Minute))
	if err != nil || out != RolledBack || rec.Version != "0.3.0" {
		t.Fatalf("Settle = %v, %+v, %v; want RolledBack of 0.3.0", out, rec, err)
	}
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if st.Trial != nil {
		t.Fatal("the trial is still open after a rollback")
	}
	if st.ShouldTry("0.3.0", 5) || st.ShouldTry("0.3.0", 4) {
		t.Fatal("a failed version would be tried again under the same or an older sequence")
	}
	if !st.ShouldTry("0.3.0", 6) || !st.ShouldTry("0.4.0", 5) {
		t.Fatal("a newer sequence, or another version, would not be tried")
	}
	if out, _, _ := s.Settle("0.2.0", t0); out != NoTrial {
		t.Fatalf("Settle after the rollback was recorded: %v, want NoTrial", out)
	}
}

func TestPassAndFail(t *testing.T) {
	s := Open(t.TempDir())
	s.Begin(Record{Version: "0.3.0", Sequence: 5, Started: t0})
	if out, _, _ := s.Settle("0.3.0", t0); out != OnTrial {
		t.Fatalf("booted into the trial version: %v, want OnTrial", out)
	}
	if err := s.Pass(); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Load()
	if st.Trial != nil || len(st.Failed) != 0 {
		t.Fatalf("after Pass: %+v", st)
	}
	s.Begin(Record{Version: "0.4.0", Sequence: 7, Started: t0})
	s.Fail(t0)
	s.Begin(Record{Version: "0.4.0", Sequence: 8, Started: t0})
	s.Fail(t0)
	st, _ = s.Load()
	if len(st.Failed) != 1 || st.Failed[0].Sequence != 8 {
		t.Fatalf("a version failed twice is listed %+v, want once under its latest sequence", st.Failed)
	}
}

func TestAcceptedOnlyGrows(t *testing.T) {
	s := Open(t.TempDir())
	s.Accepted(9)
	s.Accepted(3)
	if st, _ := s.Load(); st.LastSequence != 9 {
		t.Fatalf("last sequence %d, want 9", st.LastSequence)
	}
}

// A damaged file is an error that names it, never an empty state that
// would forget the failed versions.
func TestDamaged(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FileName), []byte("{\"failed\": [tr"), 0o600)
	_, err := Open(dir).Load()
	if err == nil || !strings.Contains(err.Error(), FileName) {
		t.Fatalf("Load of a damaged file: %v", err)
	}
	if err := Open(dir).Begin(Record{Version: "1"}); err == nil {
		t.Fatal("Begin overwrote a damaged state file")
	}
}

// A trial called off before the jump leaves no verdict: the version may be
// tried again under the same sequence.
func TestCancel(t *testing.T) {
	s := Open(t.TempDir())
	s.Begin(Record{Version: "0.3.0", Sequence: 5, Started: t0})
	if err := s.Cancel(); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Load()
	if st.Trial != nil || len(st.Failed) != 0 || !st.ShouldTry("0.3.0", 5) {
		t.Fatalf("after Cancel: %+v", st)
	}
	if out, _, _ := s.Settle("0.2.0", t0); out != NoTrial {
		t.Fatalf("Settle after Cancel: %v, want NoTrial", out)
	}
}
