package identity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/internal/testutil"

	"github.com/gridnode/gridnode/modules/storage"
	"github.com/gridnode/gridnode/node/config"
	"github.com/gridnode/gridnode/node/fact"
)

// logs collects what the module says, to assert the console message.
type logs struct{ bytes.Buffer }

func (l *logs) logger() *slog.Logger { return slog.New(slog.NewTextHandler(&l.Buffer, nil)) }

func store(t *testing.T) Store {
	dir := filepath.Join(t.TempDir(), "gridnode")
	return Store{Main: filepath.Join(dir, KeyFile), Mirrors: []string{filepath.Join(dir, MirrorFile)}}
}

func open(t *testing.T, s Store) (Result, string) {
	t.Helper()
	var l logs
	r := s.Open(l.logger())
	return r, l.String()
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestCreateThenLoad(t *testing.T) {
	s := store(t)
	r, _ := open(t, s)
	if r.Source != SourceCreated || len(r.Seed) != ed25519.SeedSize {
		t.Fatalf("first open: %+v, want a created key", r)
	}
	for _, p := range append([]string{s.Main}, s.Mirrors...) {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("copy %s not written: %v", p, err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, st.Mode().Perm())
		}
	}
	r2, _ := open(t, s)
	if r2.Source != SourceLoaded || !bytes.Equal(r2.Seed, r.Seed) {
		t.Errorf("second open: %+v, want the same key loaded", r2)
	}
}

func TestCorruptMainRestoredFromMirror(t *testing.T) {
	s := store(t)
	r, _ := open(t, s)
	b, _ := os.ReadFile(s.Main)
	b[len(magic)+3] ^= 0xff // one rotten bit in the seed
	if err := os.WriteFile(s.Main, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r2, log := open(t, s)
	if r2.Source != SourceRestored || !bytes.Equal(r2.Seed, r.Seed) {
		t.Fatalf("open after corruption: %+v, want the key restored from the mirror", r2)
	}
	if !strings.Contains(r2.Warning, "checksum mismatch") || !strings.Contains(log, "restored from the mirror") {
		t.Errorf("repair not reported: warning %q, log %q", r2.Warning, log)
	}
	if d, err := os.ReadFile(s.Main + ".damaged"); err != nil || !bytes.Equal(d, b) {
		t.Errorf("damaged copy not kept aside: %v", err)
	}
	if r3, _ := open(t, s); r3.Source != SourceLoaded || !bytes.Equal(r3.Seed, r.Seed) {
		t.Errorf("after the repair: %+v, want the main copy good again", r3)
	}
}

func TestMissingMainRestored(t *testing.T) {
	s := store(t)
	r, _ := open(t, s)
	if err := os.Remove(s.Main); err != nil {
		t.Fatal(err)
	}
	r2, _ := open(t, s)
	if r2.Source != SourceRestored || !bytes.Equal(r2.Seed, r.Seed) || !strings.Contains(r2.Warning, "missing") {
		t.Fatalf("open without main: %+v", r2)
	}
	if _, err := os.Stat(s.Main); err != nil {
		t.Errorf("main copy not restored: %v", err)
	}
}

func TestDamagedMirrorRepairedFromMain(t *testing.T) {
	s := store(t)
	r, _ := open(t, s)
	if err := os.WriteFile(s.Mirrors[0], []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	r2, log := open(t, s)
	if r2.Source != SourceLoaded || !bytes.Equal(r2.Seed, r.Seed) {
		t.Fatalf("open: %+v", r2)
	}
	if !strings.Contains(log, "rewriting a copy of the node key") {
		t.Errorf("mirror repair not logged: %q", log)
	}
	if b, _ := os.ReadFile(s.Mirrors[0]); !bytes.Equal(b, Encode(r.Seed)) {
		t.Error("mirror not repaired")
	}
}

func TestAllCorruptGivesEphemeralAndTouchesNothing(t *testing.T) {
	s := store(t)
	r, _ := open(t, s)
	for _, p := range append([]string{s.Main}, s.Mirrors...) {
		b, _ := os.ReadFile(p)
		b[len(b)-1] ^= 1
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before := map[string][32]byte{s.Main: fileSum(t, s.Main), s.Mirrors[0]: fileSum(t, s.Mirrors[0])}
	entries, _ := os.ReadDir(filepath.Dir(s.Main))
	r2, log := open(t, s)
	if r2.Source != SourceEphemeral || bytes.Equal(r2.Seed, r.Seed) || len(r2.Seed) != ed25519.SeedSize {
		t.Fatalf("open with every copy damaged: %+v, want a fresh ephemeral key", r2)
	}
	if !strings.Contains(log, "THE NODE KEY IS DAMAGED") {
		t.Errorf("not said loudly: %q", log)
	}
	for p, sum := range before {
		if fileSum(t, p) != sum {
			t.Errorf("%s changed", p)
		}
	}
	if after, _ := os.ReadDir(filepath.Dir(s.Main)); len(after) != len(entries) {
		t.Errorf("files in the state folder: %d before, %d after", len(entries), len(after))
	}
	// And again: still refuses, still untouched.
	if r3, _ := open(t, s); r3.Source != SourceEphemeral {
		t.Errorf("second open: %+v", r3)
	}
}

func TestMissingMainAndDamagedMirrorIsNotANewNode(t *testing.T) {
	s := store(t)
	open(t, s)
	os.Remove(s.Main)
	if err := os.WriteFile(s.Mirrors[0], []byte("rotten"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, _ := open(t, s); r.Source != SourceEphemeral {
		t.Fatalf("open: %+v, want ephemeral: a damaged mirror means this node had a key", r)
	}
	if _, err := os.Stat(s.Main); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("main copy written over a damaged identity: %v", err)
	}
}

func TestTornWriteIsDetectedAndLeavesNoPartialFile(t *testing.T) {
	// A copy cut short (what a non-atomic write leaves after a power cut)
	// fails its check.
	full := Encode(make([]byte, ed25519.SeedSize))
	for _, n := range []int{0, 10, len(full) - 1} {
		if _, err := Decode(full[:n]); err == nil {
			t.Errorf("a key file cut at %d bytes decodes", n)
		}
	}
	// A write that fails (here the rename: the target is a folder) leaves
	// no temporary file behind and the old content as it was.
	s := store(t)
	if err := os.MkdirAll(filepath.Join(s.Main, "in-the-way"), 0o700); err != nil {
		t.Fatal(err)
	}
	r, _ := open(t, s)
	if r.Source != SourceEphemeral {
		t.Fatalf("open with the main copy unreadable: %+v", r)
	}
	ents, _ := os.ReadDir(filepath.Dir(s.Main))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	// A successful save leaves exactly the two copies.
	s = store(t)
	open(t, s)
	ents, _ = os.ReadDir(filepath.Dir(s.Main))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != KeyFile+" "+MirrorFile {
		t.Errorf("state folder holds %v, want only %s and %s", names, KeyFile, MirrorFile)
	}
}

// runModule runs the module with a storage fact and returns its fact.
func runModule(t *testing.T, st fact.Storage) (fact.Identity, string) {
	t.Helper()
	t.Setenv("GRIDNODE_RUN", t.TempDir())
	if err := fact.Write(storage.Name, st); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var l testutil.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- Run(ctx, config.Default(), slog.New(slog.NewTextHandler(&l, nil))) }()
	var f fact.Identity
	if err := fact.Wait(ctx, Name, &f); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	key, err := ReadSeed()
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(SeedPath()); st.Mode().Perm() != 0o600 {
		t.Errorf("seed file mode %v, want 0600", st.Mode().Perm())
	}
	if pub := key.Public().(ed25519.PublicKey); Hint(pub) != f.NodeHint {
		t.Errorf("seed file and fact disagree: %s vs %s", Hint(pub), f.NodeHint)
	}
	return f, l.String()
}

func TestModuleWithoutCacheIsEphemeral(t *testing.T) {
	f, log := runModule(t, fact.Storage{})
	if !f.Ephemeral || f.StateDir != "" || f.Source != SourceEphemeral {
		t.Errorf("fact %+v, want ephemeral with no state dir", f)
	}
	if !strings.Contains(log, "no cache disk; this boot's key is ephemeral: the node will register as a new node next boot") {
		t.Errorf("console message missing: %q", log)
	}
}

func TestModuleWithCacheKeepsTheKey(t *testing.T) {
	mnt := t.TempDir()
	st := fact.Storage{Cache: &fact.Cache{Disk: "sda", Partition: "sda1", Mount: mnt, Label: storage.Label}}
	f1, _ := runModule(t, st)
	if f1.Ephemeral || f1.Source != SourceCreated || f1.StateDir != filepath.Join(mnt, StateSubdir) {
		t.Fatalf("first boot: %+v", f1)
	}
	f2, _ := runModule(t, st)
	if f2.Source != SourceLoaded || f2.PublicKey != f1.PublicKey {
		t.Errorf("second boot: %+v, want the first boot's key %s", f2, f1.PublicKey)
	}
}
