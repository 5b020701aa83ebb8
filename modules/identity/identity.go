// Package identity gives the node its ed25519 key: made once from a random
// 32-byte seed, kept on the cache disk, the same after any reboot or power
// cut on the same disks. It publishes the fact "identity"
// (/run/gridnode/identity.json):
//
//	public_key  the ed25519 public key, standard base64
//	ephemeral   true when the key lives for this boot only
//	state_dir   where the key (and the registrar's ids) persist:
//	            /var/cache/gridnode, or "" when ephemeral
//	source      created, loaded, restored-from-mirror or ephemeral
//	node_hint   the first 8 hex digits of sha256(public key), to tell nodes
//	            apart on a console
//	warning     why the key is ephemeral or what was repaired, in words
//
// and writes the raw seed to /run/gridnode/secret/identity.seed (0600) for
// the registrar module.
//
// On disk the key is a small file (see Encode: a magic, the seed, a sha256
// of both) written atomically (temp file, fsync, rename, fsync of the
// folder) as identity.key, with a mirror beside it on every disk the node
// owns (today the cache file system: identity.key.mirror). A missing or
// corrupt main copy is restored from a good mirror, and the repair logged.
// When copies exist but none is good, the module refuses to make a new key
// over them: a farmer's node identity is worth a trip. It runs with a key
// for this boot only, says so on the console, and leaves the files as they
// are for someone to look at.
//
// Without a cache disk (storage fact with cache null) the key is for this
// boot only. If the cache appears later in the boot, the node keeps its key:
// it does not change identity while running.
package identity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/gridnode/gridnode/grid/api"

	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
)

// Name is the module's and its fact's name.
const Name = fact.NameIdentity

// Sources of the key.
const (
	SourceCreated   = "created"
	SourceLoaded    = "loaded"
	SourceRestored  = "restored-from-mirror"
	SourceEphemeral = "ephemeral"
)

// StateSubdir is the folder on the cache file system that holds the key.
const StateSubdir = "gridnode"

// File names in the state folder.
const (
	KeyFile    = "identity.key"
	MirrorFile = "identity.key.mirror"
)

// SeedPath is where the registrar module reads the node's seed.
func SeedPath() string { return filepath.Join(fact.Dir(), "secret", "identity.seed") }

// ReadSeed reads the seed the identity module wrote and returns the key.
func ReadSeed() (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(SeedPath())
	if err != nil {
		return nil, err
	}
	if len(b) != ed25519.SeedSize {
		return nil, fmt.Errorf("identity: %s holds %d bytes, want a %d-byte seed", SeedPath(), len(b), ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(b), nil
}

// Run waits for the storage fact, loads or makes the key, publishes it, and
// stays up (watching for a cache that appears late, to say so).
func Run(ctx context.Context, cfg config.Node, log *slog.Logger) error {
	var st fact.Storage
	if err := fact.Wait(ctx, fact.NameStorage, &st); err != nil {
		return err
	}
	var (
		seed []byte
		f    fact.Identity
	)
	if st.Cache == nil {
		seed = newSeed()
		f = fact.Identity{Ephemeral: true, Source: SourceEphemeral,
			Warning: "no cache disk; this boot's key is ephemeral: the node will register as a new node next boot"}
		log.Warn(f.Warning)
	} else {
		dir := filepath.Join(st.Cache.Mount, StateSubdir)
		s := Store{Main: filepath.Join(dir, KeyFile), Mirrors: []string{filepath.Join(dir, MirrorFile)}}
		r := s.Open(log)
		seed, f = r.Seed, fact.Identity{Source: r.Source, Warning: r.Warning}
		if r.Source == SourceEphemeral {
			f.Ephemeral = true
		} else {
			f.StateDir = dir
		}
	}
	key := ed25519.NewKeyFromSeed(seed)
	f.PublicKey = api.PublicKey(key.Public().(ed25519.PublicKey))
	f.NodeHint = Hint(key.Public().(ed25519.PublicKey))
	if err := writeSeed(seed); err != nil {
		return fmt.Errorf("identity: writing the seed for the registrar: %w", err)
	}
	if err := fact.Write(Name, f); err != nil {
		return fmt.Errorf("identity: publishing the fact: %w", err)
	}
	log.Info("node key", "public_key", f.PublicKey, "hint", f.NodeHint, "source", f.Source, "state_dir", f.StateDir)

	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if f.Ephemeral && st.Cache == nil {
			var now fact.Storage
			if err := fact.Read(fact.NameStorage, &now); err == nil && now.Cache != nil {
				log.Warn("a cache disk appeared after the key was chosen; the node keeps this boot's ephemeral key and gets a persistent one at the next boot", "disk", now.Cache.Disk)
				st = now
			}
		}
	}
}

// Hint is the first 8 hex digits of sha256(pub).
func Hint(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:4])
}

func newSeed() []byte {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		panic("identity: no randomness from the kernel: " + err.Error()) // crypto/rand does not fail on Linux
	}
	return seed
}

// writeSeed hands the seed to the registrar through a file only root reads.
func writeSeed(seed []byte) error {
	dir := filepath.Dir(SeedPath())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	return fact.WriteFile(SeedPath(), seed, 0o600)
}

// magic starts every key file; its last byte is the format's version.
var magic = []byte("gridnode-identity\x00\x01")

// fileSize is the length of a key file: magic, seed, sha256.
var fileSize = len(magic) + ed25519.SeedSize + sha256.Size

// Encode is the key file for seed: magic, the 32-byte seed, and the sha256
// of both, so a torn or rotten copy is told apart from a good one.
func Encode(seed []byte) []byte {
	b := append(append([]byte{}, magic...), seed...)
	h := sha256.Sum256(b)
	return append(b, h[:]...)
}

// Decode checks a key file and returns its seed.
func Decode(b []byte) ([]byte, error) {
	if len(b) != fileSize {
		return nil, fmt.Errorf("%d bytes, want %d", len(b), fileSize)
	}
	if !bytes.Equal(b[:len(magic)], magic) {
		return nil, errors.New("not a gridnode key file (bad magic)")
	}
	body := b[:len(magic)+ed25519.SeedSize]
	h := sha256.Sum256(body)
	if !bytes.Equal(h[:], b[len(body):]) {
		return nil, errors.New("checksum mismatch")
	}
	return append([]byte{}, b[len(magic):len(body)]...), nil
}

// Store is where a node key persists: the main copy and its mirrors.
type Store struct {
	Main    string
	Mirrors []string
}

// Result is what Open decided.
type Result struct {
	Seed    []byte
	Source  string // created, loaded, restored-from-mirror, ephemeral
	Warning string // what was repaired, or why the key is ephemeral
}

// copyState is one copy's content: good (seed set), missing, or bad.
type copyState struct {
	path string
	seed []byte
	err  error // fs.ErrNotExist when missing
}

func (c copyState) missing() bool { return errors.Is(c.err, fs.ErrNotExist) }

func readCopy(path string) copyState {
	b, err := os.ReadFile(path)
	if err != nil {
		return copyState{path: path, err: err}
	}
	seed, err := Decode(b)
	return copyState{path: path, seed: seed, err: err}
}

// Open loads the key, repairing copies from a good one, or makes a new key
// when there is no copy at all. When copies exist and none is good it
// touches nothing and returns an ephemeral key.
func (s Store) Open(log *slog.Logger) Result {
	main := readCopy(s.Main)
	var mirrors []copyState
	var good *copyState
	if main.err == nil {
		good = &main
	}
	for _, m := range s.Mirrors {
		mirrors = append(mirrors, readCopy(m))
	}
	for i := range mirrors {
		if good == nil && mirrors[i].err == nil {
			good = &mirrors[i]
		}
	}

	if good == nil {
		all := append([]copyState{main}, mirrors...)
		var bad []string
		for _, c := range all {
			if !c.missing() {
				bad = append(bad, fmt.Sprintf("%s: %v", c.path, c.err))
			}
		}
		if len(bad) == 0 {
			seed := newSeed()
			if err := s.write(seed, all, log); err != nil {
				w := fmt.Sprintf("could not save the new node key (%v); this boot's key is ephemeral: the node will register as a new node next boot", err)
				log.Error(w)
				return Result{Seed: seed, Source: SourceEphemeral, Warning: w}
			}
			log.Info("created a new node key", "path", s.Main)
			return Result{Seed: seed, Source: SourceCreated}
		}
		w := fmt.Sprintf("THE NODE KEY IS DAMAGED and no good copy is left (%v). The node will NOT make a new key over it: "+
			"it runs with an ephemeral key for this boot and registers as a new node. The files are left untouched; "+
			"restore a good identity.key into %s, or remove the damaged files to start this node as a new one.",
			bad, filepath.Dir(s.Main))
		log.Error(w)
		return Result{Seed: newSeed(), Source: SourceEphemeral, Warning: w}
	}

	src, warn := SourceLoaded, ""
	if good != &main {
		src = SourceRestored
		if main.missing() {
			warn = fmt.Sprintf("the node key %s was missing; restored from the mirror %s", s.Main, good.path)
		} else {
			warn = fmt.Sprintf("the node key %s was damaged (%v); restored from the mirror %s (the damaged copy is kept as %s.damaged)", s.Main, main.err, good.path, s.Main)
			if err := os.Rename(s.Main, s.Main+".damaged"); err != nil {
				log.Warn("keeping the damaged node key aside", "path", s.Main, "err", err)
			}
		}
		log.Warn(warn)
	}
	if err := s.write(good.seed, append([]copyState{main}, mirrors...), log); err != nil {
		log.Error("repairing copies of the node key", "err", err)
		if warn != "" {
			warn += "; "
		}
		warn += "repairing the copies failed: " + err.Error()
	}
	return Result{Seed: good.seed, Source: src, Warning: warn}
}

// write saves seed over every copy that does not already hold it.
func (s Store) write(seed []byte, copies []copyState, log *slog.Logger) error {
	data := Encode(seed)
	var errs []error
	for _, c := range copies {
		if c.err == nil && bytes.Equal(c.seed, seed) {
			continue
		}
		if c.err == nil || (!c.missing() && c.path != s.Main) {
			// A mirror holding another key or a damaged one: say so, as
			// nothing is replaced silently.
			log.Warn("rewriting a copy of the node key", "path", c.path, "was", describe(c))
		}
		if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := fact.WriteFile(c.path, data, 0o600); err != nil {
			errs = append(errs, fmt.Errorf("writing %s: %w", c.path, err))
		}
	}
	return errors.Join(errs...)
}

func describe(c copyState) string {
	if c.err == nil {
		return "another key"
	}
	return c.err.Error()
}
