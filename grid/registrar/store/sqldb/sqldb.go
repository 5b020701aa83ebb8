// Package sqldb is the SQL implementation of store.Store shared by the SQLite
// and PostgreSQL stores. The SQL is written once, in the subset both speak
// ($N placeholders, RETURNING, FILTER, CAST); what differs (schema DDL, how a
// unique violation looks, how a batch of uptime reports is written) comes in
// a Dialect.
//
// Times are kept as BIGINT unix milliseconds, lists (relays, interfaces) as
// JSON text, so both databases store the same thing the same way.
package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/grid/registrar/store/groupcommit"
)

// Dialect is what differs between databases.
type Dialect struct {
	Name string
	// Migrations is the versioned schema: Migrations[i] brings the schema
	// to version i+1. Append only; never edit a released entry. An empty
	// entry reserves its number for a migration another branch adds: it is
	// skipped and not recorded, so the real one is applied once it lands.
	Migrations []string
	// MigrationLock, if set, runs first in each migration transaction so
	// that concurrent starts migrate once (PostgreSQL advisory lock).
	MigrationLock string
	// IsUnique tells a unique-constraint violation.
	IsUnique func(error) bool
	// Transient tells a failure worth trying the same transaction again
	// (a lost connection, a serialisation failure, a busy database).
	Transient func(error) bool
	// WriteUptime writes a batch of reports in one statement, inside a
	// transaction or on its own; nil uses one prepared UPDATE per report
	// inside a transaction (cheap in-process, as with SQLite).
	WriteUptime func(ctx context.Context, e Execer, reports []store.Uptime) error
	// InsertAccounts inserts accounts (distinct keys) inside tx, skipping
	// those whose key is taken, and records each new twin id in ids by
	// public key; nil uses one prepared INSERT per account. Likewise
	// InsertNodes (distinct twins; skipping twins that have a node and
	// unknown farms), recording node ids by twin.
	InsertAccounts func(ctx context.Context, tx *sql.Tx, rows []api.Account, ids map[string]uint64) error
	InsertNodes    func(ctx context.Context, tx *sql.Tx, rows []api.Node, ids map[uint64]uint64) error
}

// Execer runs a statement: a *sql.Tx, or a *sql.DB for a statement that is
// a transaction of its own.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// DB implements store.Store over database/sql handles: w for writes, r for
// reads (the same pool for PostgreSQL; for SQLite one writer connection and
// several readers, as SQLite has a single writer anyway).
type DB struct {
	w, r      *sql.DB
	d         Dialect
	q         *groupcommit.Queue[*op]
	observe   atomic.Pointer[func(store.Group)]
	closeOnce sync.Once
	closeErr  error

	accountByTwin, accountByKey, nodeByID, nodeOwner, farmByID *sql.Stmt
	insertAccount, insertFarm, insertNode, updateUptime        *sql.Stmt
}

// Open migrates the schema with w and prepares the statements used on every
// request. The DB takes ownership of w and r (Close closes them).
func Open(ctx context.Context, w, r *sql.DB, d Dialect) (*DB, error) {
	db := &DB{w: w, r: r, d: d}
	if err := db.migrate(ctx); err != nil {
		return nil, err
	}
	prep := []struct {
		h   *sql.DB
		dst **sql.Stmt
		sql string
	}{
		{r, &db.accountByTwin, `SELECT ` + accountCols + ` FROM accounts WHERE twin_id = $1`},
		{r, &db.accountByKey, `SELECT ` + accountCols + ` FROM accounts WHERE public_key = $1`},
		{r, &db.nodeByID, `SELECT ` + nodeCols + ` FROM ` + nodeFrom + ` WHERE n.node_id = $1`},
		{r, &db.nodeOwner, `SELECT n.twin_id, a.public_key FROM nodes n JOIN accounts a ON a.twin_id = n.twin_id WHERE n.node_id = $1`},
		{r, &db.farmByID, `SELECT ` + farmCols + ` FROM farms WHERE farm_id = $1`},
		{w, &db.insertAccount, `INSERT INTO accounts (public_key, relays, rmb_enc_key, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING twin_id`},
		{w, &db.insertFarm, `INSERT INTO farms (farm_name, twin_id, stellar_address, dedicated, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING farm_id`},
		{w, &db.insertNode, `INSERT INTO nodes (farm_id, twin_id, country, city, longitude, latitude, hru, sru, cru, mru, interfaces, secure_boot, virtualized, serial_number, approved, created_at, gpus, updated_at)
			SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $16 WHERE EXISTS (SELECT 1 FROM farms WHERE farm_id = $1)
			ON CONFLICT DO NOTHING RETURNING node_id`},
		{w, &db.updateUptime, `INSERT INTO uptimes (node_id, last_seen, uptime, os_version, channel, rolled_back_from, version_since)
			SELECT $1, CAST($2 AS BIGINT), $3, CAST($4 AS TEXT), $5, $6, CASE WHEN CAST($4 AS TEXT) <> '' THEN CAST($2 AS BIGINT) END WHERE EXISTS (SELECT 1 FROM nodes WHERE node_id = $1)` + UptimeUpsert},
	}
	for _, p := range prep {
		s, err := p.h.PrepareContext(ctx, p.sql)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("%s store: preparing %q: %w", d.Name, firstLine(p.sql), err)
		}
		*p.dst = s
	}
	db.startGroup()
	return db, nil
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// Close commits the writes under way, then closes the statements and the
// database handles.
func (db *DB) Close() error {
	db.closeOnce.Do(func() { db.closeErr = db.close() })
	return db.closeErr
}

func (db *DB) close() error {
	db.stopGroup()
	for _, s := range []*sql.Stmt{db.accountByTwin, db.accountByKey, db.nodeByID, db.nodeOwner, db.farmByID, db.insertAccount, db.insertFarm, db.insertNode, db.updateUptime} {
		if s != nil {
			s.Close()
		}
	}
	err := db.w.Close()
	if db.r != db.w {
		if e := db.r.Close(); err == nil {
			err = e
		}
	}
	return err
}

// SchemaVersion returns the number of migrations applied.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := db.r.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v)
	return int(v.Int64), err
}

func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("%s store: creating schema_migrations: %w", db.d.Name, err)
	}
	for i, m := range db.d.Migrations {
		version := i + 1
		if m == "" {
			continue
		}
		if err := db.tx(ctx, func(tx *sql.Tx) error {
			if db.d.MigrationLock != "" {
				if _, err := tx.ExecContext(ctx, db.d.MigrationLock); err != nil {
					return err
				}
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, version, ms(time.Now()))
			return err
		}); err != nil {
			return fmt.Errorf("%s store: applying schema migration %d: %w", db.d.Name, version, err)
		}
	}
	return nil
}

// tx runs f in a write transaction, committed when f returns nil.
func (db *DB) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func (db *DB) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	case db.d.IsUnique(err):
		return fmt.Errorf("%s: %w", op, store.ErrConflict)
	}
	return fmt.Errorf("%s store: %s: %w", db.d.Name, op, err)
}

// wrapGroup is wrap for what a grouped write returns: ErrConflict and
// ErrNoFarm come said already.
func (db *DB) wrapGroup(op string, err error) error {
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNoFarm) {
		return err
	}
	return db.wrap(op, err)
}

// int64 checks a count fits the BIGINT columns; the server validates first.
func i64(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}

// ---- accounts

const accountCols = `twin_id, public_key, relays, rmb_enc_key, created_at, updated_at`

type scanner interface{ Scan(...any) error }

func scanAccount(s scanner) (api.Account, error) {
	var a api.Account
	var relays string
	var c, u int64
	if err := s.Scan(&a.TwinID, &a.PublicKey, &relays, &a.RMBEncKey, &c, &u); err != nil {
		return a, err
	}
	a.CreatedAt, a.UpdatedAt = fromMS(c), fromMS(u)
	a.Relays = []string{}
	if relays != "" {
		if err := json.Unmarshal([]byte(relays), &a.Relays); err != nil {
			return a, fmt.Errorf("decoding relays of twin %d: %w", a.TwinID, err)
		}
	}
	return a, nil
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// CreateAccount is committed with the other writes under way (group.go).
func (db *DB) CreateAccount(ctx context.Context, a api.Account) (uint64, error) {
	if a.Relays == nil {
		a.Relays = []string{}
	}
	o := &op{kind: opAccount, account: a}
	if err := db.submit(ctx, o); err != nil {
		return 0, db.wrapGroup("creating account", err)
	}
	return o.id, nil
}

func (db *DB) Account(ctx context.Context, twin uint64) (api.Account, error) {
	a, err := scanAccount(db.accountByTwin.QueryRowContext(ctx, i64(twin)))
	return a, db.wrap("reading account", err)
}

func (db *DB) AccountByKey(ctx context.Context, key string) (api.Account, error) {
	a, err := scanAccount(db.accountByKey.QueryRowContext(ctx, key))
	return a, db.wrap("reading account", err)
}

func (db *DB) UpdateAccount(ctx context.Context, twin uint64, u api.UpdateAccount, now time.Time) error {
	if u.Relays == nil {
		u.Relays = []string{}
	}
	return db.update(ctx, "updating account", `UPDATE accounts SET relays = $2, rmb_enc_key = $3, updated_at = $4 WHERE twin_id = $1`,
		i64(twin), jsonText(u.Relays), u.RMBEncKey, ms(now))
}

// update runs one UPDATE in a transaction; ErrNotFound when no row matched.
func (db *DB) update(ctx context.Context, op, q string, args ...any) error {
	res, err := db.w.ExecContext(ctx, q, args...)
	if err != nil {
		return db.wrap(op, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return nil
}

// ---- farms

const farmCols = `farm_id, farm_name, twin_id, stellar_address, dedicated, created_at, updated_at`

func scanFarm(s scanner) (api.Farm, error) {
	var f api.Farm
	var c, u int64
	err := s.Scan(&f.FarmID, &f.FarmName, &f.TwinID, &f.StellarAddress, &f.Dedicated, &c, &u)
	f.CreatedAt, f.UpdatedAt = fromMS(c), fromMS(u)
	return f, err
}

func (db *DB) CreateFarm(ctx context.Context, f api.Farm) (uint64, error) {
	var id uint64
	err := db.insertFarm.QueryRowContext(ctx, f.FarmName, i64(f.TwinID), f.StellarAddress, f.Dedicated, ms(f.CreatedAt), ms(f.UpdatedAt)).Scan(&id)
	return id, db.wrap("creating farm", err)
}

func (db *DB) Farm(ctx context.Context, id uint64) (api.Farm, error) {
	f, err := scanFarm(db.farmByID.QueryRowContext(ctx, i64(id)))
	return f, db.wrap("reading farm", err)
}

// where builds a WHERE clause with numbered placeholders.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(w.args))))
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

func (db *DB) Farms(ctx context.Context, f store.FarmFilter) ([]api.Farm, error) {
	var w where
	if f.FarmName != "" {
		w.add("farm_name = ?", f.FarmName)
	}
	if f.FarmID != 0 {
		w.add("farm_id = ?", i64(f.FarmID))
	}
	if f.TwinID != 0 {
		w.add("twin_id = ?", i64(f.TwinID))
	}
	q := `SELECT ` + farmCols + ` FROM farms` + w.String() + ` ORDER BY farm_id` + db.page(&w, f.Limit, f.Offset)
	rows, err := db.r.QueryContext(ctx, q, w.args...)
	if err != nil {
		return nil, db.wrap("listing farms", err)
	}
	defer rows.Close()
	out := []api.Farm{}
	for rows.Next() {
		f, err := scanFarm(rows)
		if err != nil {
			return nil, db.wrap("listing farms", err)
		}
		out = append(out, f)
	}
	return out, db.wrap("listing farms", rows.Err())
}

// page adds LIMIT/OFFSET. PostgreSQL takes "LIMIT ALL" but not -1, SQLite
// the reverse, so an offset without a limit uses a huge limit.
func (db *DB) page(w *where, limit, offset int) string {
	s := ""
	if limit <= 0 && offset > 0 {
		limit = 1<<62 - 1
	}
	if limit > 0 {
		w.args = append(w.args, limit)
		s += " LIMIT $" + strconv.Itoa(len(w.args))
	}
	if offset > 0 {
		w.args = append(w.args, offset)
		s += " OFFSET $" + strconv.Itoa(len(w.args))
	}
	return s
}

func (db *DB) UpdateFarm(ctx context.Context, id uint64, u api.UpdateFarm, now time.Time) error {
	return db.update(ctx, "updating farm", `UPDATE farms SET farm_name = $2, stellar_address = $3, updated_at = $4 WHERE farm_id = $1`,
		i64(id), u.FarmName, u.StellarAddress, ms(now))
}

// ---- nodes

// A node's columns, and the tables they come from: its last_seen is in
// uptimes (schema version 2), where a node has a row once it reported.
const (
	nodeCols = `n.node_id, n.farm_id, n.twin_id, n.country, n.city, n.longitude, n.latitude, n.hru, n.sru, n.cru, n.mru, n.interfaces, n.secure_boot, n.virtualized, n.serial_number, u.last_seen, n.approved, n.created_at, n.updated_at,
		n.gpus, u.os_version, u.channel, u.rolled_back_from, u.version_since`
	nodeFrom = `nodes n LEFT JOIN uptimes u ON u.node_id = n.node_id`
)

func scanNode(s scanner) (api.Node, error) {
	var n api.Node
	var ifaces, gpus string
	var seen, since sql.NullInt64
	var osVersion, channel, rolledBackFrom sql.NullString // NULL: the node never reported
	var hru, sru, cru, mru, c, u int64
	if err := s.Scan(&n.NodeID, &n.FarmID, &n.TwinID, &n.Location.Country, &n.Location.City, &n.Location.Longitude, &n.Location.Latitude,
		&hru, &sru, &cru, &mru, &ifaces, &n.SecureBoot, &n.Virtualized, &n.SerialNumber, &seen, &n.Approved, &c, &u,
		&gpus, &osVersion, &channel, &rolledBackFrom, &since); err != nil {
		return n, err
	}
	n.OSVersion, n.Channel, n.RolledBackFrom = osVersion.String, channel.String, rolledBackFrom.String
	n.RolledBack = n.RolledBackFrom != ""
	if since.Valid {
		t := fromMS(since.Int64)
		n.OSVersionSince = &t
	}
	if gpus != "" && gpus != "[]" {
		if err := json.Unmarshal([]byte(gpus), &n.GPUs); err != nil {
			return n, fmt.Errorf("decoding gpus of node %d: %w", n.NodeID, err)
		}
	}
	n.Resources = api.Resources{HRU: uint64(hru), SRU: uint64(sru), CRU: uint64(cru), MRU: uint64(mru)}
	n.CreatedAt, n.UpdatedAt = fromMS(c), fromMS(u)
	if seen.Valid {
		t := fromMS(seen.Int64)
		n.LastSeen = &t
	}
	n.Interfaces = []api.Interface{}
	if ifaces != "" {
		if err := json.Unmarshal([]byte(ifaces), &n.Interfaces); err != nil {
			return n, fmt.Errorf("decoding interfaces of node %d: %w", n.NodeID, err)
		}
	}
	return n, nil
}

// CreateNode is committed with the other writes under way (group.go).
func (db *DB) CreateNode(ctx context.Context, n api.Node) (uint64, error) {
	o := &op{kind: opNode, node: n}
	if err := db.submit(ctx, o); err != nil {
		return 0, db.wrapGroup("creating node", err)
	}
	return o.id, nil
}

func (db *DB) Node(ctx context.Context, id uint64) (api.Node, error) {
	n, err := scanNode(db.nodeByID.QueryRowContext(ctx, i64(id)))
	return n, db.wrap("reading node", err)
}

func (db *DB) NodeOwner(ctx context.Context, id uint64) (uint64, string, error) {
	var twin uint64
	var key string
	err := db.nodeOwner.QueryRowContext(ctx, i64(id)).Scan(&twin, &key)
	return twin, key, db.wrap("reading node", err)
}

func (db *DB) Nodes(ctx context.Context, f store.NodeFilter) ([]api.Node, error) {
	var w where
	if f.NodeID != 0 {
		w.add("n.node_id = ?", i64(f.NodeID))
	}
	if f.FarmID != 0 {
		w.add("n.farm_id = ?", i64(f.FarmID))
	}
	if f.TwinID != 0 {
		w.add("n.twin_id = ?", i64(f.TwinID))
	}
	if f.Online != nil {
		if *f.Online {
			w.add("u.last_seen >= ?", ms(f.OnlineSince))
		} else {
			w.add("(u.last_seen IS NULL OR u.last_seen < ?)", ms(f.OnlineSince))
		}
	}
	if !f.SeenSince.IsZero() {
		w.add("u.last_seen >= ?", ms(f.SeenSince))
	}
	q := `SELECT ` + nodeCols + ` FROM ` + nodeFrom + w.String() + ` ORDER BY n.node_id` + db.page(&w, f.Limit, f.Offset)
	rows, err := db.r.QueryContext(ctx, q, w.args...)
	if err != nil {
		return nil, db.wrap("listing nodes", err)
	}
	defer rows.Close()
	out := []api.Node{}
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, db.wrap("listing nodes", err)
		}
		out = append(out, n)
	}
	return out, db.wrap("listing nodes", rows.Err())
}

func (db *DB) UpdateNode(ctx context.Context, id uint64, u api.UpdateNode, now time.Time) error {
	if u.Interfaces == nil {
		u.Interfaces = []api.Interface{}
	}
	if u.GPUs == nil {
		u.GPUs = []api.GPU{}
	}
	r := u.Resources
	return db.tx(ctx, func(tx *sql.Tx) error {
		var farm int64
		if err := tx.QueryRowContext(ctx, `SELECT farm_id FROM nodes WHERE node_id = $1`, i64(id)).Scan(&farm); err != nil {
			return db.wrap("updating node", err)
		}
		if uint64(farm) != u.FarmID {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM farms WHERE farm_id = $1`, i64(u.FarmID)).Scan(&n); err != nil {
				return db.wrap("updating node", err)
			}
			if n == 0 {
				return fmt.Errorf("updating node: farm %d: %w", u.FarmID, store.ErrNoFarm)
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE nodes SET farm_id = $2, country = $3, city = $4, longitude = $5, latitude = $6,
			hru = $7, sru = $8, cru = $9, mru = $10, interfaces = $11, secure_boot = $12, virtualized = $13, serial_number = $14,
			approved = CASE WHEN farm_id = $2 THEN approved ELSE $15 END, updated_at = $16, gpus = $17 WHERE node_id = $1`,
			i64(id), i64(u.FarmID), u.Location.Country, u.Location.City, u.Location.Longitude, u.Location.Latitude,
			i64(r.HRU), i64(r.SRU), i64(r.CRU), i64(r.MRU), jsonText(u.Interfaces), u.SecureBoot, u.Virtualized, u.SerialNumber, false, ms(now),
			jsonText(u.GPUs))
		return db.wrap("updating node", err)
	})
}

func (db *DB) ApproveNode(ctx context.Context, id uint64, now time.Time) error {
	return db.update(ctx, "approving node", `UPDATE nodes SET approved = $2, updated_at = $3 WHERE node_id = $1`, i64(id), true, ms(now))
}

// ReportUptime is committed with the other writes under way (group.go).
func (db *DB) ReportUptime(ctx context.Context, reports []store.Uptime) error {
	if len(reports) == 0 {
		return nil
	}
	o := &op{kind: opUptime, uptime: reports}
	return db.wrap("recording uptime", db.submit(ctx, o))
}

// MS converts a time to the stored representation (for dialects).
func MS(t time.Time) int64 { return ms(t) }

// I64 converts an id or count to the stored representation (for dialects).
func I64(v uint64) int64 { return i64(v) }

// ---- settings, stats, samples

func (db *DB) ZOSVersion(ctx context.Context) (string, error) {
	var v string
	err := db.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = 'zos_version'`).Scan(&v)
	return v, db.wrap("reading zos version", err)
}

func (db *DB) SetZOSVersion(ctx context.Context, v string) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES ('zos_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, v)
	return db.wrap("setting zos version", err)
}

func (db *DB) Stats(ctx context.Context, onlineSince time.Time) (store.Stats, error) {
	var s store.Stats
	var hru, sru, cru, mru int64
	err := db.r.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM accounts),
		(SELECT count(*) FROM farms),
		(SELECT count(*) FROM nodes),
		(SELECT count(*) FROM uptimes WHERE last_seen >= $1),
		CAST(COALESCE(sum(hru), 0) AS BIGINT), CAST(COALESCE(sum(sru), 0) AS BIGINT),
		CAST(COALESCE(sum(cru), 0) AS BIGINT), CAST(COALESCE(sum(mru), 0) AS BIGINT)
		FROM nodes`, ms(onlineSince)).Scan(&s.Accounts, &s.Farms, &s.Nodes, &s.Online, &hru, &sru, &cru, &mru)
	s.Capacity = api.Resources{HRU: uint64(hru), SRU: uint64(sru), CRU: uint64(cru), MRU: uint64(mru)}
	return s, db.wrap("computing stats", err)
}

func (db *DB) AddSample(ctx context.Context, s store.Sample) error {
	return db.wrap("adding sample", db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO samples (at, online, total) VALUES ($1, $2, $3) ON CONFLICT (at) DO UPDATE SET online = excluded.online, total = excluded.total`,
			ms(s.At), s.Online, s.Total); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM samples WHERE at < $1`, ms(s.At.Add(-store.SampleRetention)))
		return err
	}))
}

func (db *DB) Samples(ctx context.Context, since time.Time) ([]store.Sample, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT at, online, total FROM samples WHERE at >= $1 ORDER BY at`, ms(since))
	if err != nil {
		return nil, db.wrap("reading samples", err)
	}
	defer rows.Close()
	out := []store.Sample{}
	for rows.Next() {
		var s store.Sample
		var at int64
		if err := rows.Scan(&at, &s.Online, &s.Total); err != nil {
			return nil, db.wrap("reading samples", err)
		}
		s.At = fromMS(at)
		out = append(out, s)
	}
	return out, db.wrap("reading samples", rows.Err())
}

var _ store.Store = (*DB)(nil)
