package state

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/node/deployment"
)

func dep(name, image string) deployment.Deployment {
	d := deployment.Deployment{Name: name, Workloads: []deployment.Workload{{Name: "w", Image: image}}}
	d.Normalize()
	return d
}

// TestReload: what was accepted is there again after a reopen (a reboot),
// with its generation, pins and id range; a redeploy is the next
// generation with the same ids; another deployment gets other ids.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0).UTC()
	a1, err := s.Accept(7, dep("web", "r.example/web:1"), now)
	if err != nil {
		t.Fatal(err)
	}
	const pin = "r.example/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if _, err := s.Pin(a1.Key(), 1, "w", pin); err != nil {
		t.Fatal(err)
	}
	b, err := s.Accept(8, dep("web", pin), now)
	if err != nil {
		t.Fatal(err)
	}
	if a1.Key() != "t7-web" || a1.Generation != 1 || a1.IDBase != IDBase || b.IDBase != IDBase+IDSize || b.Image("w") != pin {
		t.Fatalf("accepted %+v and %+v", a1, b)
	}

	s2, _ := Open(dir)
	recs, errs := s2.Load()
	if len(errs) != 0 || len(recs) != 2 {
		t.Fatalf("Load after reopen = %d records, %v", len(recs), errs)
	}
	if r := recs[0]; r.Key() != "t7-web" || r.Image("w") != pin || r.Generation != 1 || !r.Created.Equal(now) {
		t.Fatalf("reloaded %+v", r)
	}
	a2, err := s2.Accept(7, dep("web", "r.example/web:2"), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if a2.Generation != 2 || a2.IDBase != a1.IDBase || !a2.Created.Equal(now) || a2.Image("w") != "r.example/web:2" {
		t.Fatalf("redeploy = %+v; want generation 2, same ids, new image unpinned", a2)
	}
	if _, err := s2.Pin(a2.Key(), 1, "w", pin); err == nil {
		t.Fatal("a pin for a replaced generation was accepted")
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "deployments")); len(ents) != 2 {
		t.Fatalf("deployments/ holds %d files (temporary files left?)", len(ents))
	}
	if fi, _ := os.Stat(filepath.Join(dir, "deployments", "t7-web.json")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("a record is mode %v; want 0600 (credentials)", fi.Mode())
	}

	// Undeploy keeps the id range; a purge frees it for the next name.
	if err := s2.Delete("t7-web", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get("t7-web"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Get after Delete: %v", err)
	}
	again, _ := s2.Accept(7, dep("web", "r.example/web:3"), now)
	if again.IDBase != a1.IDBase || again.Generation != 1 {
		t.Fatalf("deployed again after undeploy: %+v; want the same ids, generation 1", again)
	}
	s2.Delete("t7-web", true)
	c, _ := s2.Accept(9, dep("other", "r.example/o:1"), now)
	if c.IDBase != IDBase {
		t.Fatalf("after a purge the next deployment got ids %d; want the freed %d", c.IDBase, IDBase)
	}
}

// TestDamaged: a damaged record is reported by name and kept; the others
// load.
func TestDamaged(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	if _, err := s.Accept(1, dep("good", "r.example/x:1"), time.Now()); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "deployments", "t1-bad.json")
	os.WriteFile(bad, []byte(`{"owner": 1, "deployment": {"name": "bad"`), 0o600)
	recs, errs := s.Load()
	if len(recs) != 1 || len(errs) != 1 || !strings.Contains(errs[0].Error(), bad) {
		t.Fatalf("Load = %d records, errors %v; want the good one and an error naming %s", len(recs), errs, bad)
	}
	if _, err := os.Stat(bad); err != nil {
		t.Fatalf("the damaged file was not kept: %v", err)
	}
}
