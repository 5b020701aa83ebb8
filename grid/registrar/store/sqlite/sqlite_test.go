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

// Version 3 gives the tables AUTOINCREMENT by copying them as they are: a
// column the schema does not know (an operator's own) keeps its values, and
// every row its id.
func TestAutoincrementKeepsColumns(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "r.db")
	db, err := sql.Open("sqlite", dsn(path, Full, ""))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`,
		Migrations[0], Migrations[1],
		`INSERT INTO schema_migrations VALUES (1, 0), (2, 0)`,
		`ALTER TABLE nodes ADD COLUMN note TEXT NOT NULL DEFAULT ''`, // an operator's own
		`INSERT INTO accounts (twin_id, public_key, relays, rmb_enc_key, created_at, updated_at) VALUES (7, 'k7', '[]', '', 0, 0), (9, 'k9', '[]', '', 0, 0)`,
		`INSERT INTO farms (farm_id, farm_name, twin_id, stellar_address, dedicated, created_at, updated_at) VALUES (3, 'f', 7, 'G', false, 0, 0)`,
		`INSERT INTO nodes (node_id, farm_id, twin_id, country, city, longitude, latitude, hru, sru, cru, mru, interfaces, secure_boot, virtualized, serial_number, approved, created_at, updated_at, note)
			VALUES (5, 3, 9, 'c', 'c', '0', '0', 1, 2, 3, 4, '[]', false, false, 's', true, 0, 0, 'rack 4')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := st.Node(ctx, 5)
	if err != nil || n.TwinID != 9 || n.FarmID != 3 || !n.Approved || n.Resources.MRU != 4 {
		t.Fatalf("node 5 after version 3: %+v, %v", n, err)
	}
	st.Close()
	db, _ = sql.Open("sqlite", dsn(path, Full, ""))
	defer db.Close()
	var note string
	if err := db.QueryRow(`SELECT note FROM nodes WHERE node_id = 5`).Scan(&note); err != nil || note != "rack 4" {
		t.Fatalf("an operator's column after version 3: %q, %v", note, err)
	}
	for table, want := range map[string]int{"accounts": 9, "farms": 3, "nodes": 5} {
		var ddl string
		var seq int
		if err := db.QueryRow(`SELECT sql FROM sqlite_schema WHERE name = $1`, table).Scan(&ddl); err != nil || !strings.Contains(ddl, "AUTOINCREMENT") {
			t.Errorf("%s: %q, %v; want AUTOINCREMENT", table, ddl, err)
		}
		if err := db.QueryRow(`SELECT seq FROM sqlite_sequence WHERE name = $1`, table).Scan(&seq); err != nil || seq != want {
			t.Errorf("%s: sqlite_sequence %d, %v; want %d (its largest id)", table, seq, err, want)
		}
	}
	var idx int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name IN ('farms_twin_id', 'nodes_farm_id')`).Scan(&idx); err != nil || idx != 2 {
		t.Errorf("indexes after the copy: %d, %v; want 2", idx, err)
	}
}
