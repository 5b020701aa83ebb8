package slot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "t.json")
	tb := Open(path, 2)
	a, err := tb.Get("a")
	if err != nil || a != 0 {
		t.Fatalf("a: %d %v", a, err)
	}
	if b, _ := tb.Get("b"); b != 1 {
		t.Errorf("b: %d", b)
	}
	if again, _ := tb.Get("a"); again != 0 {
		t.Errorf("a again: %d", again)
	}
	if _, err := tb.Get("c"); !errors.Is(err, ErrFull) {
		t.Errorf("third name in a table of 2: %v", err)
	}
	if err := tb.Release("a"); err != nil {
		t.Fatal(err)
	}
	if err := tb.Release("never"); err != nil {
		t.Errorf("releasing a name without a number: %v", err)
	}
	if c, _ := Open(path, 2).Get("c"); c != 0 {
		t.Errorf("c after a was freed, in a reopened table: %d", c)
	}
}

// A damaged table is an error naming the file, and is left as it is: its
// numbers own files on disk.
func TestDamagedTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.json")
	os.WriteFile(path, []byte("{not json"), 0o600)
	_, err := Open(path, 10).Get("a")
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("damaged table: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "{not json" {
		t.Errorf("the damaged table was rewritten: %q", b)
	}
}
