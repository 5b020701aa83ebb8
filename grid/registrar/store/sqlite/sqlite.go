// Package sqlite is the registrar's embedded store: SQLite through
// modernc.org/sqlite (pure Go, no cgo), in WAL mode with a busy timeout, one
// writer connection (SQLite serialises writers anyway; one connection avoids
// lock retries) and a few reader connections that run beside it.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"

	"github.com/gridnode/gridnode/grid/registrar/store/sqldb"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Migrations is the schema, one entry per version (append only).
var Migrations = []string{
	sqldb.SchemaV1("INTEGER PRIMARY KEY"),
	sqldb.SchemaV2("INTEGER PRIMARY KEY", ""),
	"", // 3: reserved for the registrar hardening's migration (issue 14)
	sqldb.SchemaV4(),
}

// Dialect is SQLite's part of the shared SQL store.
var Dialect = sqldb.Dialect{
	Name:       "sqlite",
	Migrations: Migrations,
	IsUnique: func(err error) bool {
		var e *sqlite.Error
		return errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
	},
	// Busy or locked: another process (a backup, sqlite3 at a prompt)
	// held the database past the busy timeout.
	Transient: func(err error) bool {
		var e *sqlite.Error
		return errors.As(err, &e) && (e.Code()&0xff == sqlite3.SQLITE_BUSY || e.Code()&0xff == sqlite3.SQLITE_LOCKED)
	},
}

// Open opens (creating if needed) the database file at path and migrates it.
func Open(ctx context.Context, path string) (*sqldb.DB, error) {
	dsn := func(extra string) string {
		return "file:" + (&url.URL{Path: path}).EscapedPath() +
			"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)" +
			"&_pragma=foreign_keys(1)" + extra
	}
	// The writer keeps a 32 MiB page cache: its pages stay valid from one
	// transaction to the next, as no other connection writes. A reader's
	// cache is dropped whenever the database changed since its last read
	// (WAL mode), which under a grid's steady writes is every read, so
	// readers keep small ones: memory stays flat however big the database.
	// The writer checkpoints as SQLite does by default (after a commit that
	// takes the WAL past 1000 pages). A checkpointer of its own beside it
	// was tried: under continuous writes its checkpoints never catch up
	// with the last frame, so the WAL never restarts and grows without
	// bound (200 MB for a 14 MB database after 40,000 registrations).
	w, err := sql.Open("sqlite", dsn("&_pragma=cache_size(-32768)&_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("opening sqlite database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("opening sqlite database %s: %w (is the folder writable?)", path, err)
	}
	r, err := sql.Open("sqlite", dsn("&_pragma=cache_size(-2048)&_pragma=query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("opening sqlite database %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0)*2)
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxIdleTime(0)
	db, err := sqldb.Open(ctx, w, r, Dialect)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("opening sqlite database %s: %w", path, err)
	}
	return db, nil
}
