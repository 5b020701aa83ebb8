// Package storetest is the conformance suite every store.Store passes, and
// the helpers that open each store for tests: SQLite in a temporary file and
// PostgreSQL in a fresh schema of the database named by
// $GRIDNODE_TEST_POSTGRES (run .ci/postgres.sh to get one). Without that
// variable the PostgreSQL cases skip, unless $CI is set, where they fail.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/grid/registrar/store/postgres"
	"github.com/gridnode/gridnode/grid/registrar/store/sqldb"
	"github.com/gridnode/gridnode/grid/registrar/store/sqlite"
)

// Opener opens a fresh, empty store for one test; it is closed at cleanup
// unless the test closes it first (closing twice is harmless for tests).
type Opener struct {
	Name string
	Open func(t testing.TB) store.Store
	// Reopen opens the same database again (after the first was closed,
	// or beside it: another replica). ReopenErr is Reopen for a goroutine:
	// it returns the error, and the caller closes the store.
	Reopen    func(t testing.TB) store.Store
	ReopenErr func() (store.Store, error)
	// Fresh makes a new, empty database, which Reopen then opens, and
	// returns how database/sql reaches it (Driver, DSN), for tests that
	// prepare a database by hand (an old schema version).
	Fresh  func(t testing.TB) (dsn string)
	Driver string
	// Migrations is the store's schema, by version.
	Migrations []string
}

// Stores returns an Opener per store kind.
func Stores() []Opener {
	return []Opener{SQLite(), Postgres()}
}

// opener completes o from its Fresh and open (of a DSN).
func opener(o Opener, open func(ctx context.Context, dsn string) (*sqldb.DB, error)) Opener {
	var dsn string
	fresh := o.Fresh
	o.Fresh = func(t testing.TB) string { dsn = fresh(t); return dsn }
	o.ReopenErr = func() (store.Store, error) {
		st, err := open(context.Background(), dsn)
		if err != nil {
			return nil, err // not a nil *sqldb.DB in an interface
		}
		return st, nil
	}
	o.Reopen = func(t testing.TB) store.Store {
		st, err := open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	o.Open = func(t testing.TB) store.Store {
		o.Fresh(t)
		return o.Reopen(t)
	}
	return o
}

// SQLite opens stores in temporary files.
func SQLite() Opener {
	return opener(Opener{
		Name: "sqlite", Driver: "sqlite", Migrations: sqlite.Migrations,
		Fresh: func(t testing.TB) string { return filepath.Join(t.TempDir(), "registrar.db") },
	}, sqlite.Open)
}

// PostgresURL returns $GRIDNODE_TEST_POSTGRES, skipping t when it is unset
// (failing it when $CI is set).
func PostgresURL(t testing.TB) string {
	u := os.Getenv("GRIDNODE_TEST_POSTGRES")
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("GRIDNODE_TEST_POSTGRES is not set but CI is: run `export GRIDNODE_TEST_POSTGRES=$(.ci/postgres.sh)` first")
		}
		t.Skip("GRIDNODE_TEST_POSTGRES not set; run `export GRIDNODE_TEST_POSTGRES=$(.ci/postgres.sh)` to test PostgreSQL")
	}
	return u
}

// Postgres opens stores in fresh schemas, dropped at cleanup.
func Postgres() Opener {
	return opener(Opener{
		Name: "postgres", Driver: "pgx", Migrations: postgres.Migrations,
		Fresh: func(t testing.TB) string {
			base := PostgresURL(t)
			b := make([]byte, 6)
			rand.Read(b)
			schema := "t_" + hex.EncodeToString(b)
			admin, err := sql.Open("pgx", base)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
				admin.Close()
				t.Fatalf("creating schema in %s: %v", base, err)
			}
			t.Cleanup(func() {
				admin.Exec("DROP SCHEMA " + schema + " CASCADE")
				admin.Close()
			})
			sep := "?"
			if strings.Contains(base, "?") {
				sep = "&"
			}
			return base + sep + "search_path=" + schema
		},
	}, postgres.Open)
}
