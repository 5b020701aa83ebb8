// Package trial keeps the upgrade module's state on the cache disk: the
// trial in progress (written before the kexec into a new release), the
// versions whose trial failed (not tried again until a channel document of a
// newer sequence names them), and the last channel sequence accepted. Every
// change is one atomic write (node/fact.WriteFile): a power cut leaves the
// old state or the new one.
package trial

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gridnode/gridnode/node/fact"
)

// FileName is the state file in the upgrade module's folder on the cache
// disk.
const FileName = "upgrade.json"

// Record is a trial: the node kexecs into Version, from channel document
// Sequence, at Started.
type Record struct {
	Version  string    `json:"version"`
	Sequence uint64    `json:"sequence"`
	Started  time.Time `json:"started"`
	From     string    `json:"from"` // the version the node ran before
}

// Failure is a version whose trial failed, under the sequence that offered it.
type Failure struct {
	Version  string    `json:"version"`
	Sequence uint64    `json:"sequence"`
	At       time.Time `json:"at"`
}

// State is the whole file.
type State struct {
	Trial        *Record   `json:"trial,omitempty"`
	Failed       []Failure `json:"failed"`
	LastSequence uint64    `json:"last_sequence"` // the last channel document accepted
}

// Store is the state file in a folder.
type Store struct{ path string }

// Open returns the store in dir (the folder need not exist yet).
func Open(dir string) Store { return Store{filepath.Join(dir, FileName)} }

// Load reads the state; a missing file is the empty state. A damaged file
// is an error naming it: the caller must not forget failed versions
// silently.
func (s Store) Load() (State, error) {
	var st State
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("upgrade state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("upgrade state %s: %w (move it away to start afresh; the failed versions in it will be tried again)", s.path, err)
	}
	return st, nil
}

func (s Store) save(st State) error {
	if st.Failed == nil {
		st.Failed = []Failure{}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := fact.WriteFile(s.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("upgrade state: writing %s: %w", s.path, err)
	}
	return nil
}

func (s Store) update(f func(*State) error) (State, error) {
	st, err := s.Load()
	if err != nil {
		return st, err
	}
	if err := f(&st); err != nil {
		return st, err
	}
	return st, s.save(st)
}

// Accepted records the sequence of a channel document the node accepted.
func (s Store) Accepted(seq uint64) error {
	_, err := s.update(func(st *State) error {
		if seq > st.LastSequence {
			st.LastSequence = seq
		}
		return nil
	})
	return err
}

// ShouldTry says whether version, offered under sequence seq, may be tried:
// not if its trial failed under this sequence or a later one.
func (st State) ShouldTry(version string, seq uint64) bool {
	for _, f := range st.Failed {
		if f.Version == version && seq <= f.Sequence {
			return false
		}
	}
	return true
}

// Begin records the trial r before the kexec. A trial already recorded is
// an error: Settle it first.
func (s Store) Begin(r Record) error {
	_, err := s.update(func(st *State) error {
		if st.Trial != nil {
			return fmt.Errorf("upgrade state: a trial of %s is already recorded; settle it first", st.Trial.Version)
		}
		r.Started = r.Started.UTC()
		st.Trial = &r
		return nil
	})
	return err
}

// Outcome is what Settle found.
type Outcome int

// Outcomes of Settle.
const (
	NoTrial    Outcome = iota // nothing was on trial
	OnTrial                   // running the version on trial: health decides (Pass or Fail)
	RolledBack                // running another version: the trial failed and is now recorded so
)

// Settle is called at boot with the running version. Running the version on
// trial leaves the trial open (the health check then calls Pass or Fail);
// running any other version means the trial failed (the watchdog or a
// panic reset the machine into the medium's default): it is recorded as
// failed and the trial closed.
func (s Store) Settle(running string, now time.Time) (Outcome, *Record, error) {
	var out Outcome
	var rec *Record
	_, err := s.update(func(st *State) error {
		if st.Trial == nil {
			out = NoTrial
			return nil
		}
		rec = st.Trial
		if st.Trial.Version == running {
			out = OnTrial
			return nil
		}
		out = RolledBack
		fail(st, now)
		return nil
	})
	return out, rec, err
}

// Pass closes the trial: the release proved healthy.
func (s Store) Pass() error {
	_, err := s.update(func(st *State) error { st.Trial = nil; return nil })
	return err
}

// Cancel closes the trial without a verdict: the jump never happened (the
// kernel did not load, or PID 1 did not take the request), so the version
// was not tried and may be tried again.
func (s Store) Cancel() error {
	_, err := s.update(func(st *State) error { st.Trial = nil; return nil })
	return err
}

// Fail records the trial as failed and closes it (the node found itself
// unhealthy before the watchdog fired).
func (s Store) Fail(now time.Time) error {
	_, err := s.update(func(st *State) error { fail(st, now); return nil })
	return err
}

func fail(st *State, now time.Time) {
	if st.Trial == nil {
		return
	}
	kept := st.Failed[:0]
	for _, f := range st.Failed {
		if f.Version != st.Trial.Version {
			kept = append(kept, f)
		}
	}
	st.Failed = append(kept, Failure{Version: st.Trial.Version, Sequence: st.Trial.Sequence, At: now.UTC()})
	st.Trial = nil
}
