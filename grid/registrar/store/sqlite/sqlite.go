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
	sqldb.SchemaV3Nonces(" WITHOUT ROWID"), // and migrated: accounts, farms and nodes with AUTOINCREMENT
	sqldb.SchemaV4(),
}

// migrated does what SQL alone cannot in a migration's transaction:
// version 3 gives the tables' generated ids AUTOINCREMENT, so that an id is
// never handed out twice. An INTEGER PRIMARY KEY alone is one more than the
// largest id in the table, so once the newest rows are gone (an operator's
// DELETE; a power cut, with synchronous=NORMAL) their ids went to the next
// account, farm or node while the grid still knew them as someone else's.
// AUTOINCREMENT keeps the largest id ever given in sqlite_sequence, in the
// same transaction as the row.
func migrated(ctx context.Context, tx *sql.Tx, version int) error {
	if version != 3 {
		return nil
	}
	for _, t := range []struct{ table, pk string }{{"accounts", "twin_id"}, {"farms", "farm_id"}, {"nodes", "node_id"}} {
		if err := autoincrement(ctx, tx, t.table, t.pk); err != nil {
			return fmt.Errorf("giving %s.%s AUTOINCREMENT: %w", t.table, t.pk, err)
		}
	}
	return nil
}

// autoincrement rebuilds table with AUTOINCREMENT on its key pk. SQLite
// cannot add it to a table, so the table is copied, as it is (its
// statement is read from sqlite_schema: whatever columns later versions
// added come along, on a database that got them first), into a new one with
// its ids (which start sqlite_sequence), dropped and replaced, and its
// indexes made again. Foreign keys are off meanwhile (Dialect.ForeignKeysOff)
// and checked before the commit.
func autoincrement(ctx context.Context, tx *sql.Tx, table, pk string) error {
	var ddl string
	if err := tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = $1`, table).Scan(&ddl); err != nil {
		return err
	}
	if strings.Contains(ddl, "AUTOINCREMENT") {
		return nil
	}
	key := pk + " INTEGER PRIMARY KEY"
	_, rest, ok := strings.Cut(ddl, "(")
	if !ok || strings.Count(rest, key) != 1 {
		return fmt.Errorf("unexpected schema %q: want one %q", ddl, key)
	}
	tmp := table + "_v3"
	rows, err := tx.QueryContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL`, table)
	if err != nil {
		return err
	}
	var indexes []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return err
		}
		indexes = append(indexes, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, q := range append([]string{
		`CREATE TABLE ` + tmp + ` (` + strings.Replace(rest, key, key+" AUTOINCREMENT", 1),
		`INSERT INTO ` + tmp + ` SELECT * FROM ` + table,
		`DROP TABLE ` + table,
		`ALTER TABLE ` + tmp + ` RENAME TO ` + table,
	}, indexes...) {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// Dialect is SQLite's part of the shared SQL store.
var Dialect = sqldb.Dialect{
	Name:            "sqlite",
	Migrations:      Migrations,
	ForeignKeysOff:  `PRAGMA foreign_keys = OFF`,
	ForeignKeysOn:   `PRAGMA foreign_keys = ON`,
	ForeignKeyCheck: `PRAGMA foreign_key_check`,
	Migrated:        migrated,
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
