// Package sqlite is the registrar's embedded store: SQLite through
// modernc.org/sqlite (pure Go, no cgo), in WAL mode with synchronous=FULL (no
// write it acknowledged is lost on a power cut) and a busy timeout, one
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
	"strings"

	"github.com/gridnode/gridnode/grid/registrar/store/sqldb"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Migrations is the schema, one entry per version (append only).
var Migrations = []string{
	sqldb.SchemaV1("INTEGER PRIMARY KEY"),
	sqldb.SchemaV2("INTEGER PRIMARY KEY", ""),
	sqldb.SchemaV3Nonces(" WITHOUT ROWID") + autoincrement,
}

// autoincrement rebuilds the tables with generated ids so that an id is
// never handed out twice. An INTEGER PRIMARY KEY without AUTOINCREMENT is
// one more than the largest id in the table, so once the newest rows are
// gone (an operator's DELETE; a power cut, with synchronous=NORMAL) their
// ids went to the next account, farm or node, while the grid still knew
// them as someone else's. AUTOINCREMENT keeps the largest id ever given in
// sqlite_sequence, in the same transaction as the row. SQLite cannot add it
// to a table, so each is copied into a new one (its ids kept, and with them
// sqlite_sequence's start), dropped and replaced, with foreign keys off
// (Dialect.ForeignKeysOff) and checked before the commit.
const autoincrement = `
	CREATE TABLE accounts_v3 (
		twin_id INTEGER PRIMARY KEY AUTOINCREMENT,
		public_key TEXT NOT NULL UNIQUE,
		relays TEXT NOT NULL,
		rmb_enc_key TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL
	);
	INSERT INTO accounts_v3 (twin_id, public_key, relays, rmb_enc_key, created_at, updated_at)
		SELECT twin_id, public_key, relays, rmb_enc_key, created_at, updated_at FROM accounts;
	DROP TABLE accounts;
	ALTER TABLE accounts_v3 RENAME TO accounts;
	CREATE TABLE farms_v3 (
		farm_id INTEGER PRIMARY KEY AUTOINCREMENT,
		farm_name TEXT NOT NULL UNIQUE,
		twin_id BIGINT NOT NULL REFERENCES accounts (twin_id),
		stellar_address TEXT NOT NULL,
		dedicated BOOLEAN NOT NULL,
		created_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL
	);
	INSERT INTO farms_v3 (farm_id, farm_name, twin_id, stellar_address, dedicated, created_at, updated_at)
		SELECT farm_id, farm_name, twin_id, stellar_address, dedicated, created_at, updated_at FROM farms;
	DROP TABLE farms;
	ALTER TABLE farms_v3 RENAME TO farms;
	CREATE INDEX farms_twin_id ON farms (twin_id);
	CREATE TABLE nodes_v3 (
		node_id INTEGER PRIMARY KEY AUTOINCREMENT,
		farm_id BIGINT NOT NULL REFERENCES farms (farm_id),
		twin_id BIGINT NOT NULL UNIQUE REFERENCES accounts (twin_id),
		country TEXT NOT NULL, city TEXT NOT NULL, longitude TEXT NOT NULL, latitude TEXT NOT NULL,
		hru BIGINT NOT NULL, sru BIGINT NOT NULL, cru BIGINT NOT NULL, mru BIGINT NOT NULL,
		interfaces TEXT NOT NULL,
		secure_boot BOOLEAN NOT NULL,
		virtualized BOOLEAN NOT NULL,
		serial_number TEXT NOT NULL,
		approved BOOLEAN NOT NULL,
		created_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL
	);
	INSERT INTO nodes_v3 (node_id, farm_id, twin_id, country, city, longitude, latitude, hru, sru, cru, mru, interfaces, secure_boot, virtualized, serial_number, approved, created_at, updated_at)
		SELECT node_id, farm_id, twin_id, country, city, longitude, latitude, hru, sru, cru, mru, interfaces, secure_boot, virtualized, serial_number, approved, created_at, updated_at FROM nodes;
	DROP TABLE nodes;
	ALTER TABLE nodes_v3 RENAME TO nodes;
	CREATE INDEX nodes_farm_id ON nodes (farm_id);`

// Dialect is SQLite's part of the shared SQL store.
var Dialect = sqldb.Dialect{
	Name:            "sqlite",
	Migrations:      Migrations,
	ForeignKeysOff:  `PRAGMA foreign_keys = OFF`,
	ForeignKeysOn:   `PRAGMA foreign_keys = ON`,
	ForeignKeyCheck: `PRAGMA foreign_key_check`,
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

// Synchronous settings (SQLite's PRAGMA synchronous, in WAL mode).
const (
	// Full syncs the WAL at every commit: a write the registrar answered is
	// on the disk, whatever happens next (a power cut included). The
	// default; the group commit shares one sync among the writes of a group.
	Full = "FULL"
	// Normal syncs only at checkpoints: the database stays consistent, but
	// a power cut (not a crash of the process alone) loses the writes of
	// the last commits, answered already. For measurement (`make bench`'s
	// peer), or for storage that survives power cuts by itself.
	Normal = "NORMAL"
)

// Open opens (creating if needed) the database file at path and migrates it,
// with synchronous=FULL.
func Open(ctx context.Context, path string) (*sqldb.DB, error) { return OpenSync(ctx, path, Full) }

// OpenSync is Open with the synchronous setting sync (Full or Normal).
func OpenSync(ctx context.Context, path, sync string) (*sqldb.DB, error) {
	switch strings.ToUpper(sync) {
	case Full, Normal:
		sync = strings.ToUpper(sync)
	default:
		return nil, fmt.Errorf("sqlite synchronous %q: want full (no acknowledged write lost on a power cut) or normal", sync)
	}
	dsn := func(extra string) string { return dsn(path, sync, extra) }
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

// dsn is how every connection to the database at path is opened: WAL,
// synchronous sync, foreign keys on, and the pragmas of extra.
func dsn(path, sync, extra string) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(" + sync + ")" +
		"&_pragma=foreign_keys(1)" + extra
}
