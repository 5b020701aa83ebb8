// Package state keeps the deployments a node accepted on its cache disk, so
// that it runs them again after any reboot, with or without a network.
//
// Each deployment is a file deployments/KEY.json (KEY is "tTWIN-NAME"),
// written atomically (temporary file, fsync, rename, fsync of the folder:
// node/fact.WriteFile), mode 0600 (it holds registry credentials). Each
// deployment also has a host id range of its own, allocated once and kept
// in ids.json even after an undeploy, so that a name deployed again finds
// its volumes writable; a purge frees it.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gridnode/gridnode/node/deployment"
	"github.com/gridnode/gridnode/node/fact"
)

// Host id ranges: 65536 ids each, from 1,000,000 up.
const (
	IDBase = 1_000_000
	IDSize = 65536
	maxIDs = (1<<32 - IDBase) / IDSize
)

// Record is one accepted deployment.
type Record struct {
	Owner      uint64                `json:"owner"`
	Deployment deployment.Deployment `json:"deployment"`
	// Generation counts the deployments of this name by this owner: 1,
	// then one more at each redeploy.
	Generation uint64 `json:"generation"`
	// Pinned maps a workload's name to its image pinned to a digest, once
	// known (the CLI pins what it can; the node pins the rest).
	Pinned map[string]string `json:"pinned,omitempty"`
	// IDBase is the first host id of the deployment's range (IDSize ids).
	IDBase  uint32    `json:"id_base"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Key is the deployment's key on the node: "tTWIN-NAME".
func Key(owner uint64, name string) string { return "t" + strconv.FormatUint(owner, 10) + "-" + name }

// Key is the record's key.
func (r Record) Key() string { return Key(r.Owner, r.Deployment.Name) }

// Image is the reference a workload runs: pinned when known.
func (r Record) Image(workload string) string {
	if p, ok := r.Pinned[workload]; ok {
		return p
	}
	for _, w := range r.Deployment.Workloads {
		if w.Name == workload {
			return w.Image
		}
	}
	return ""
}

// Store is the folder of records. It is safe for concurrent use.
type Store struct {
	dir string
	mu  sync.Mutex
}

// Open opens (making it when missing) the store in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "deployments"), 0o700); err != nil {
		return nil, fmt.Errorf("deployment state: %w", err)
	}
	return &Store{dir: dir}, nil
}

func (s *Store) path(key string) string { return filepath.Join(s.dir, "deployments", key+".json") }

// Load reads every record, sorted by key. A file that cannot be read is
// left where it is and reported in errs, naming it: the node runs the
// others.
func (s *Store) Load() (recs []Record, errs []error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ents, err := os.ReadDir(filepath.Join(s.dir, "deployments"))
	if err != nil {
		return nil, []error{fmt.Errorf("deployment state: %w", err)}
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		r, err := s.read(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b Record) int { return strings.Compare(a.Key(), b.Key()) })
	return recs, errs
}

func (s *Store) read(key string) (Record, error) {
	p := s.path(key)
	b, err := os.ReadFile(p)
	if err != nil {
		return Record{}, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("deployment state %s: %w (the file is kept; undeploy the name to replace it)", p, err)
	}
	r.Deployment.Normalize()
	if err := r.Deployment.Validate(); err != nil {
		return Record{}, fmt.Errorf("deployment state %s: %w", p, err)
	}
	if r.Key() != key {
		return Record{}, fmt.Errorf("deployment state %s: holds %s", p, r.Key())
	}
	return r, nil
}

// Get returns the record of key; fs.ErrNotExist when there is none.
func (s *Store) Get(key string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read(key)
}

// Accept stores d, deployed by owner, as a new generation: 1 for a new
// name, one more than the stored one otherwise. The deployment keeps its
// host id range.
func (s *Store) Accept(owner uint64, d deployment.Deployment, now time.Time) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := Record{Owner: owner, Deployment: d, Generation: 1, Created: now, Updated: now}
	prev, err := s.read(r.Key())
	switch {
	case err == nil:
		r.Generation, r.Created = prev.Generation+1, prev.Created
	case !errors.Is(err, fs.ErrNotExist):
		// A damaged record is replaced: the new deployment says what
		// the owner wants now.
	}
	for _, w := range d.Workloads {
		if deployment.Pinned(w.Image) {
			if r.Pinned == nil {
				r.Pinned = map[string]string{}
			}
			r.Pinned[w.Name] = w.Image
		}
	}
	if r.IDBase, err = s.ids(r.Key()); err != nil {
		return Record{}, err
	}
	return r, s.write(r)
}

// Pin records the digest a workload's image was pinned to.
func (s *Store) Pin(key string, generation uint64, workload, pinned string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.read(key)
	if err != nil {
		return Record{}, err
	}
	if r.Generation != generation {
		return r, fmt.Errorf("deployment %s: generation %d was replaced by %d", key, generation, r.Generation)
	}
	if r.Pinned == nil {
		r.Pinned = map[string]string{}
	}
	r.Pinned[workload] = pinned
	return r, s.write(r)
}

func (s *Store) write(r Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := fact.WriteFile(s.path(r.Key()), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("deployment state: storing %s: %w", r.Key(), err)
	}
	return nil
}

// Delete removes the record of key; with purge also its id range. A
// missing record is not an error.
func (s *Store) Delete(key string, purge bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(s.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deployment state: %w", err)
	}
	if !purge {
		return nil
	}
	m, err := s.readIDs()
	if err != nil {
		return err
	}
	delete(m, key)
	return s.writeIDs(m)
}

func (s *Store) readIDs() (map[string]uint32, error) {
	m := map[string]uint32{}
	b, err := os.ReadFile(filepath.Join(s.dir, "ids.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("deployment state: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("deployment state %s: %w (move it aside to start the id ranges afresh; volumes may then need their owners fixed)", filepath.Join(s.dir, "ids.json"), err)
	}
	return m, nil
}

func (s *Store) writeIDs(m map[string]uint32) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return fact.WriteFile(filepath.Join(s.dir, "ids.json"), append(b, '\n'), 0o600)
}

// ids returns key's id range base, allocating the lowest free one.
func (s *Store) ids(key string) (uint32, error) {
	m, err := s.readIDs()
	if err != nil {
		return 0, err
	}
	if b, ok := m[key]; ok {
		return b, nil
	}
	used := map[uint32]bool{}
	for _, b := range m {
		used[b] = true
	}
	for i := range uint32(maxIDs) {
		b := IDBase + i*IDSize
		if !used[b] {
			m[key] = b
			return b, s.writeIDs(m)
		}
	}
	return 0, fmt.Errorf("deployment state: all %d id ranges are taken; undeploy with --purge what is not needed", maxIDs)
}
