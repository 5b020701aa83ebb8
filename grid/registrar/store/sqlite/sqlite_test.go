package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// The store's connections run synchronous=FULL unless told NORMAL (in WAL
// mode, NORMAL loses the last acknowledged commits on a power cut), and
// anything else is refused.
func TestSynchronous(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	st, err := Open(context.Background(), path) // makes the database, in WAL mode
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	for sync, want := range map[string]int{Full: 2, Normal: 1} {
		db, err := sql.Open("sqlite", dsn(path, sync, ""))
		if err != nil {
			t.Fatal(err)
		}
		var got int
		var mode string
		if err := db.QueryRow(`PRAGMA synchronous`).Scan(&got); err != nil || got != want {
			t.Errorf("%s: PRAGMA synchronous = %d, %v; want %d", sync, got, err, want)
		}
		if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("%s: journal_mode %q, %v", sync, mode, err)
		}
		db.Close()
	}
	if _, err := OpenSync(context.Background(), path, "off"); err == nil || !strings.Contains(err.Error(), "want full") {
		t.Fatalf("synchronous off: %v", err)
	}
}
