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
	"github.com/gridnode/gridnode/grid/registrar/store/sqlite"
)

// Opener opens a fresh, empty store for one test; it is closed at cleanup
// unless the test closes it first (closing twice is harmless for tests).
type Opener struct {
	Name string
	Open func(t testing.TB) store.Store
	// Reopen opens the same database again (after the first was closed).
	Reopen func(t testing.TB) store.Store
}

// Stores returns an Opener per store kind.
func Stores() []Opener {
	return []Opener{SQLite(), Postgres()}
}

// SQLite opens stores in temporary files.
func SQLite() Opener {
	var path string
	o := Opener{Name: "sqlite"}
	o.Open = func(t testing.TB) store.Store {
		path = filepath.Join(t.TempDir(), "registrar.db")
		return o.Reopen(t)
	}
	o.Reopen = func(t testing.TB) store.Store {
		st, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	return o
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
	var url string
	o := Opener{Name: "postgres"}
	o.Open = func(t testing.TB) store.Store {
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
		url = base + sep + "search_path=" + schema
		return o.Reopen(t)
	}
	o.Reopen = func(t testing.TB) store.Store {
		st, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	return o
}
