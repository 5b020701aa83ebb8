package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/grid/registrar/store/groupcommit"
)

// Group commit (store/groupcommit): the writes a booting grid makes by the
// million — account creations, node creations, uptime reports — are queued
// and committed together, one transaction per group, with one retry policy
// and one deadline per group; a write past the deadline fails with
// store.ErrUnavailable.
//
// Inserts use ON CONFLICT DO NOTHING, so a duplicate (a taken key, a twin
// with a node) skips its row instead of aborting the transaction: the caller
// gets ErrConflict and the others are committed. A group that fails for
// another reason is split by the queue, so that one bad write fails alone.

type opKind uint8

const (
	opAccount opKind = iota
	opNode
	opUptime
)

// op is one write, with its own outcome (set by writeGroup at each try).
type op struct {
	kind    opKind
	account api.Account
	node    api.Node
	uptime  []store.Uptime
	id      uint64 // assigned twin or node id
	err     error  // the write's own failure (a duplicate, an unknown farm)
}

func (db *DB) startGroup() {
	p := groupcommit.DefaultPolicy()
	p.Transient = db.d.Transient
	db.q = groupcommit.New(p, db.commitGroup, db.groupDone)
}

// submit queues o and waits until its group is committed (or failed), then
// returns o's outcome.
func (db *DB) submit(ctx context.Context, o *op) error {
	if err := db.q.Submit(ctx, o); err != nil {
		if errors.Is(err, groupcommit.ErrDeadline) || errors.Is(err, groupcommit.ErrClosed) {
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return err
	}
	return o.err
}

// GroupPolicy implements store.Grouped.
func (db *DB) GroupPolicy() groupcommit.Policy { return db.q.Policy() }

// SetGroupPolicy implements store.Grouped.
func (db *DB) SetGroupPolicy(p groupcommit.Policy) {
	if p.Transient == nil {
		p.Transient = db.d.Transient
	}
	db.q.SetPolicy(p)
}

// ObserveGroups implements store.Grouped.
func (db *DB) ObserveGroups(f func(store.Group)) { db.observe.Store(&f) }

func (db *DB) groupDone(group []*op, r groupcommit.Result) {
	f := db.observe.Load()
	if f == nil || *f == nil {
		return
	}
	g := store.Group{Result: r}
	for _, o := range group {
		if o.kind == opUptime {
			g.Uptime += len(o.uptime)
		}
	}
	(*f)(g)
}

// stopGroup commits what is queued and stops the queue.
func (db *DB) stopGroup() {
	if db.q != nil {
		db.q.Close()
	}
}

// commitGroup writes group in one transaction, setting each op's id and
// err. A group of uptime reports alone, on a database that writes them in
// one statement, needs no transaction of its own: one round trip, not three.
func (db *DB) commitGroup(ctx context.Context, group []*op) error {
	if db.d.WriteUptime != nil && onlyUptime(group) {
		return db.d.WriteUptime(ctx, db.w, store.Latest(uptimeOf(group)))
	}
	return db.tx(ctx, func(tx *sql.Tx) error { return db.writeGroup(ctx, tx, group) })
}

func onlyUptime(group []*op) bool {
	for _, o := range group {
		if o.kind != opUptime {
			return false
		}
	}
	return true
}

func uptimeOf(group []*op) []store.Uptime {
	var u []store.Uptime
	for _, o := range group {
		if o.kind == opUptime {
			u = append(u, o.uptime...)
		}
	}
	return u
}

// writeGroup does the writes of batch inside tx: accounts first (a node of
// the batch may belong to one of them), then nodes, then uptime reports.
func (db *DB) writeGroup(ctx context.Context, tx *sql.Tx, batch []*op) error {
	var accounts, nodes []*op
	for _, o := range batch {
		o.id, o.err = 0, nil
		switch o.kind {
		case opAccount:
			accounts = append(accounts, o)
		case opNode:
			nodes = append(nodes, o)
		}
	}
	if len(accounts) > 0 {
		rows := firstWins(accounts, "creating account",
			func(o *op) string { return o.account.PublicKey }, func(o *op) api.Account { return o.account })
		ids, err := db.insertAccounts(ctx, tx, rows)
		if err != nil {
			return err
		}
		for _, o := range accounts {
			if o.err != nil {
				continue
			}
			if id, ok := ids[o.account.PublicKey]; ok {
				o.id = id
			} else {
				o.err = fmt.Errorf("creating account: %w", store.ErrConflict)
			}
		}
	}
	if len(nodes) > 0 {
		rows := firstWins(nodes, "creating node",
			func(o *op) uint64 { return o.node.TwinID }, func(o *op) api.Node { return o.node })
		ids, err := db.insertNodes(ctx, tx, rows)
		if err != nil {
			return err
		}
		for _, o := range nodes {
			if o.err != nil {
				continue
			}
			if id, ok := ids[o.node.TwinID]; ok {
				o.id = id
				continue
			}
			// Skipped: the twin has a node, or the farm does not exist.
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM farms WHERE farm_id = $1`, i64(o.node.FarmID)).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				o.err = fmt.Errorf("creating node: farm %d: %w", o.node.FarmID, store.ErrNoFarm)
			} else {
				o.err = fmt.Errorf("creating node: %w", store.ErrConflict)
			}
		}
	}
	if uptime := uptimeOf(batch); len(uptime) > 0 {
		uptime = store.Latest(uptime)
		if db.d.WriteUptime != nil {
			return db.d.WriteUptime(ctx, tx, uptime)
		}
		st := tx.StmtContext(ctx, db.updateUptime)
		defer st.Close()
		for _, u := range uptime {
			if _, err := st.ExecContext(ctx, i64(u.NodeID), ms(u.At), i64(u.Uptime), u.OS.OSVersion, u.OS.Channel, u.OS.RolledBackFrom); err != nil {
				return err
			}
		}
	}
	return nil
}

// firstWins returns the rows of ops to insert: one per key, the first op's
// (the same key twice in one group). The later ops fail with ErrConflict,
// as they would one after the other.
func firstWins[K comparable, R any](ops []*op, what string, key func(*op) K, row func(*op) R) []R {
	seen := make(map[K]bool, len(ops))
	rows := make([]R, 0, len(ops))
	for _, o := range ops {
		k := key(o)
		if seen[k] {
			o.err = fmt.Errorf("%s: %w", what, store.ErrConflict)
			continue
		}
		seen[k] = true
		rows = append(rows, row(o))
	}
	return rows
}

// insertAccounts inserts rows (distinct keys), skipping taken keys, and
// returns the new twin ids by public key.
func (db *DB) insertAccounts(ctx context.Context, tx *sql.Tx, rows []api.Account) (map[string]uint64, error) {
	ids := make(map[string]uint64, len(rows))
	if len(rows) == 0 {
		return ids, nil
	}
	if db.d.InsertAccounts != nil {
		return ids, db.d.InsertAccounts(ctx, tx, rows, ids)
	}
	st := tx.StmtContext(ctx, db.insertAccount)
	defer st.Close()
	for _, a := range rows {
		var id uint64
		err := st.QueryRowContext(ctx, a.PublicKey, jsonText(a.Relays), a.RMBEncKey, ms(a.CreatedAt), ms(a.UpdatedAt)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			continue // taken
		}
		if err != nil {
			return nil, err
		}
		ids[a.PublicKey] = id
	}
	return ids, nil
}

// insertNodes inserts rows (distinct twins), skipping twins that have a node
// and nodes of farms that do not exist, and returns the new node ids by twin.
func (db *DB) insertNodes(ctx context.Context, tx *sql.Tx, rows []api.Node) (map[uint64]uint64, error) {
	ids := make(map[uint64]uint64, len(rows))
	if len(rows) == 0 {
		return ids, nil
	}
	if db.d.InsertNodes != nil {
		return ids, db.d.InsertNodes(ctx, tx, rows, ids)
	}
	st := tx.StmtContext(ctx, db.insertNode)
	defer st.Close()
	for _, n := range rows {
		var id uint64
		args := NodeArgs(n)
		err := st.QueryRowContext(ctx, args[:]...).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ids[n.TwinID] = id
	}
	return ids, nil
}

// NodeArgs are the parameters $1..$17 of a node insert: farm, twin, country,
// city, longitude, latitude, hru, sru, cru, mru, interfaces (JSON),
// secure_boot, virtualized, serial_number, approved (false), created_at,
// gpus (JSON).
func NodeArgs(n api.Node) [17]any {
	r := n.Resources
	ifaces := n.Interfaces
	if ifaces == nil {
		ifaces = []api.Interface{}
	}
	gpus := n.GPUs
	if gpus == nil {
		gpus = []api.GPU{}
	}
	return [17]any{i64(n.FarmID), i64(n.TwinID), n.Location.Country, n.Location.City, n.Location.Longitude, n.Location.Latitude,
		i64(r.HRU), i64(r.SRU), i64(r.CRU), i64(r.MRU), jsonText(ifaces), n.SecureBoot, n.Virtualized, n.SerialNumber, false, ms(n.CreatedAt),
		jsonText(gpus)}
}

// JSONText is how lists (relays, interfaces) are stored.
func JSONText(v any) string { return jsonText(v) }
