package simulate

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// idsHeader is the first line of an ids file: which simulated nodes it is
// about. A file made with another seed or start index names other keys.
type idsHeader struct {
	Format     string `json:"format"`
	Seed       string `json:"seed"`
	StartIndex int    `json:"start_index"`
	Nodes      int    `json:"nodes"`
	Registrar  string `json:"registrar"`
}

const idsFormat = "gridnode-simulate-ids/1"

// SaveIDs writes ids of the nodes of cfg (Seed, StartIndex, Registrar) to
// path, atomically: a JSON header line, then each node's twin and node id as
// two little-endian uint64 (16 bytes a node).
func SaveIDs(path string, cfg Config, ids *IDs) error {
	if ids == nil || len(ids.Twins) != len(ids.Nodes) {
		return errors.New("simulate: no ids to save")
	}
	if cfg.Seed == "" {
		cfg.Seed = "gridnode-simulate"
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ids-*")
	if err != nil {
		return fmt.Errorf("simulate: saving ids: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<16)
	h, _ := json.Marshal(idsHeader{Format: idsFormat, Seed: cfg.Seed, StartIndex: cfg.StartIndex, Nodes: len(ids.Nodes), Registrar: cfg.Registrar})
	w.Write(append(h, '\n'))
	var b [16]byte
	for i := range ids.Nodes {
		binary.LittleEndian.PutUint64(b[:8], ids.Twins[i])
		binary.LittleEndian.PutUint64(b[8:], ids.Nodes[i])
		w.Write(b[:])
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("simulate: saving ids to %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("simulate: saving ids to %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("simulate: saving ids to %s: %w", path, err)
	}
	return nil
}

// LoadIDs reads an ids file written by SaveIDs for the nodes of cfg. It
// fails when the file names another seed, start index or registrar; a file
// about fewer nodes than cfg.Nodes gives the ids it has (the others
// register).
func LoadIDs(path string, cfg Config) (*IDs, error) {
	if cfg.Seed == "" {
		cfg.Seed = "gridnode-simulate"
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	line, err := r.ReadBytes('\n')
	var h idsHeader
	if err != nil || json.Unmarshal(line, &h) != nil || h.Format != idsFormat {
		return nil, fmt.Errorf("simulate: %s is not an ids file written by gridnode simulate --ids", path)
	}
	if h.Seed != cfg.Seed || h.StartIndex != cfg.StartIndex || h.Registrar != cfg.Registrar {
		return nil, fmt.Errorf("simulate: %s holds the ids of seed %q from index %d on %s, not seed %q from index %d on %s; use another --ids file",
			path, h.Seed, h.StartIndex, h.Registrar, cfg.Seed, cfg.StartIndex, cfg.Registrar)
	}
	n := min(h.Nodes, cfg.Nodes)
	ids := &IDs{Twins: make([]uint64, n), Nodes: make([]uint64, n)}
	var b [16]byte
	for i := range n {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("simulate: %s is cut short at node %d of %d: %w", path, i, h.Nodes, err)
		}
		ids.Twins[i] = binary.LittleEndian.Uint64(b[:8])
		ids.Nodes[i] = binary.LittleEndian.Uint64(b[8:])
	}
	return ids, nil
}
