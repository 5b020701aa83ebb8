package tests

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Two builds of the same inputs with the same SOURCE_DATE_EPOCH are
// byte-identical, file by file.
func TestReproducibleBuild(t *testing.T) {
	a := buildTo(t, "node", filepath.Join(t.TempDir(), "a"))
	b := buildTo(t, "node", filepath.Join(t.TempDir(), "b"))
	if len(a.Manifest.Outputs) < 3 {
		t.Fatalf("manifest lists %d outputs", len(a.Manifest.Outputs))
	}
	for _, o := range a.Manifest.Outputs {
		x, err := os.ReadFile(filepath.Join(a.Dir, o.Name))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b.Dir, o.Name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two builds", o.Name)
		}
	}
	ma, _ := os.ReadFile(filepath.Join(a.Dir, "manifest.json"))
	mb, _ := os.ReadFile(filepath.Join(b.Dir, "manifest.json"))
	if !bytes.Equal(ma, mb) {
		t.Error("manifest.json differs between two builds")
	}
}
