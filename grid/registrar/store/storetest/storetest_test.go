package storetest

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/grid/registrar/store/sqldb"
	"github.com/gridnode/gridnode/grid/registrar/store/sqlite"
)

func TestConformance(t *testing.T) {
	for _, o := range Stores() {
		t.Run(o.Name, func(t *testing.T) { Run(t, o.Open) })
	}
}

// TestMigrationsIdempotent reopens a migrated database: nothing is applied twice.
func TestMigrationsIdempotent(t *testing.T) {
	for _, o := range Stores() {
		t.Run(o.Name, func(t *testing.T) {
			st := o.Open(t)
			st.Close()
			st = o.Reopen(t)
			v, err := st.(*sqldb.DB).SchemaVersion(context.Background())
			if want := len(o.Migrations); err != nil || v != want {
				t.Fatalf("schema version = %d, %v; want %d", v, err, want)
			}
		})
	}
}

// TestMigrateV1 opens a database left at schema version 1 with a node that
// reported: version 2 moves its last_seen to the uptimes table, and the
// node reads as before.
func TestMigrateV1(t *testing.T) {
	for _, o := range Stores() {
		t.Run(o.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := sql.Open(o.Driver, o.Fresh(t))
			if err != nil {
				t.Fatal(err)
			}
			seen := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
			for _, q := range []string{
				`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`,
				o.Migrations[0],
				`INSERT INTO schema_migrations VALUES (1, 0)`,
				`INSERT INTO accounts (twin_id, public_key, relays, rmb_enc_key, created_at, updated_at) VALUES (1, 'k1', '[]', '', 0, 0), (2, 'k2', '[]', '', 0, 0)`,
				`INSERT INTO farms (farm_id, farm_name, twin_id, stellar_address, dedicated, created_at, updated_at) VALUES (1, 'f', 1, 'G', false, 0, 0)`,
				`INSERT INTO nodes (node_id, farm_id, twin_id, country, city, longitude, latitude, hru, sru, cru, mru, interfaces, secure_boot, virtualized, serial_number, last_seen, uptime, approved, created_at, updated_at)
					VALUES (1, 1, 1, 'c', 'c', '0', '0', 1, 2, 3, 4, '[]', false, false, 's1', ` + strconv.FormatInt(seen.UnixMilli(), 10) + `, 77, false, 0, 0),
					       (2, 1, 2, 'c', 'c', '0', '0', 1, 2, 3, 4, '[]', false, false, 's2', NULL, 0, false, 0, 0)`,
			} {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			db.Close()
			st := o.Reopen(t)
			n1, err := st.Node(ctx, 1)
			if err != nil || n1.LastSeen == nil || !n1.LastSeen.Equal(seen) || n1.Resources.MRU != 4 {
				t.Fatalf("node 1 after migration = %+v, %v; want last seen %v", n1, err, seen)
			}
			if n2, err := st.Node(ctx, 2); err != nil || n2.LastSeen != nil {
				t.Fatalf("node 2 after migration = %+v, %v; want never seen", n2, err)
			}
			s, err := st.Stats(ctx, seen.Add(-time.Minute))
			if err != nil || s.Nodes != 2 || s.Online != 1 {
				t.Fatalf("stats after migration = %+v, %v; want 2 nodes, 1 online", s, err)
			}
			if err := st.ReportUptime(ctx, []store.Uptime{{NodeID: 2, Uptime: 5, At: seen}}); err != nil {
				t.Fatal(err)
			}
			if s, _ := st.Stats(ctx, seen.Add(-time.Minute)); s.Online != 2 {
				t.Fatalf("online after node 2 reported = %d, want 2", s.Online)
			}
		})
	}
}

// TestReservedMigration: an empty entry of Migrations reserves its number
// for a migration another branch adds. It is not recorded, so a database
// migrated without it takes the real one once it lands.
func TestReservedMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "r.db")
	migrate := func(d sqldb.Dialect) {
		t.Helper()
		w, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		db, err := sqldb.Open(ctx, w, w, d)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	count := func(q string) int {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	d := sqlite.Dialect
	reserved := slices.Index(d.Migrations, "")
	if reserved < 0 {
		t.Skip("no reserved migration number")
	}
	migrate(d)
	if n := count(`SELECT count(*) FROM schema_migrations WHERE version = ` + strconv.Itoa(reserved+1)); n != 0 {
		t.Fatalf("reserved version %d recorded", reserved+1)
	}
	d.Migrations = slices.Clone(d.Migrations)
	d.Migrations[reserved] = `CREATE TABLE landed (x INTEGER)`
	migrate(d)
	if n := count(`SELECT count(*) FROM schema_migrations`); n != len(d.Migrations) {
		t.Fatalf("%d versions recorded, want %d", n, len(d.Migrations))
	}
	if n := count(`SELECT count(*) FROM landed`); n != 0 {
		t.Fatalf("landed holds %d rows", n)
	}
}
