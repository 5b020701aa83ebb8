// Package slot hands out small numbers to names, persistently: the same
// deployment gets the same number after a restart or a reboot, a freed
// number goes to the next newcomer, and the table is a JSON file written
// atomically. The container runtime numbers uid ranges with it, the
// network its addresses.
package slot

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/gridnode/gridnode/node/fact"
)

// Table is a persistent name → number table with numbers in [0, Max).
type Table struct {
	path string
	max  int
	mu   sync.Mutex
}

// ErrFull is returned when every number is taken.
var ErrFull = errors.New("slot: every number is taken")

// Open returns the table kept in the file path (created on first use).
func Open(path string, max int) *Table { return &Table{path: path, max: max} }

func (t *Table) read() (map[string]int, error) {
	m := map[string]int{}
	b, err := os.ReadFile(t.path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("slot: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("slot: %s is damaged (%v); it must be repaired by hand, since numbers handed out own files on disk", t.path, err)
	}
	return m, nil
}

func (t *Table) write(m map[string]int) error {
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(t.path), 0o700); err != nil {
		return fmt.Errorf("slot: %w", err)
	}
	if err := fact.WriteFile(t.path, b, 0o600); err != nil {
		return fmt.Errorf("slot: writing %s: %w", t.path, err)
	}
	return nil
}

// Get returns name's number, giving it the lowest free one if it has none.
func (t *Table) Get(name string) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, err := t.read()
	if err != nil {
		return 0, err
	}
	if n, ok := m[name]; ok {
		return n, nil
	}
	used := make(map[int]bool, len(m))
	for _, n := range m {
		used[n] = true
	}
	for n := 0; n < t.max; n++ {
		if !used[n] {
			m[name] = n
			return n, t.write(m)
		}
	}
	return 0, fmt.Errorf("%w (%d in %s)", ErrFull, t.max, t.path)
}

// Release frees name's number; a name without one is no error.
func (t *Table) Release(name string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, err := t.read()
	if err != nil {
		return err
	}
	if _, ok := m[name]; !ok {
		return nil
	}
	delete(m, name)
	return t.write(m)
}
