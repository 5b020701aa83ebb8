package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
)

// Group commit. The writes a booting grid makes by the million — account
// creations, node creations, uptime reports — do not each get a transaction
// of their own: one goroutine takes every such write queued while the
// previous transaction ran and commits them together, then answers each
// caller. Under load a transaction carries hundreds of writes, so the cost of
// a commit (SQLite's WAL frames, PostgreSQL's WAL flush and round trips) is
// shared; when idle, a write is committed at once. A caller is answered only
// after the commit, so nothing acknowledged is lost.
//
// Inserts use ON CONFLICT DO NOTHING, so a duplicate (a taken key, a twin
// with a node) skips its row instead of aborting the transaction: the caller
// gets ErrConflict and the others are committed. Should a batch fail for
// another reason, each of its writes is retried in a transaction of its own,
// so that one bad write fails alone.

// maxGroup is the most writes committed in one transaction.
const maxGroup = 1000

type opKind uint8

const (
	opAccount opKind = iota
	opNode
	opUptime
)

type op struct {
	kind    opKind
	account api.Account
	node    api.Node
	uptime  []store.Uptime
	id      uint64 // assigned twin or node id
	err     error
	done    chan struct{}
}

// errClosed answers writes submitted after Close.
var errClosed = errors.New("store closed")

type group struct {
	mu     sync.RWMutex
	closed bool
	in     chan *op
	done   chan struct{}
	// groups and writes count the transactions and the writes they carried.
	groups, writes atomic.Uint64
}

// GroupStats implements store.GroupStats.
func (db *DB) GroupStats() (groups, writes uint64) {
	return db.g.groups.Load(), db.g.writes.Load()
}

func (db *DB) startGroup() {
	db.g = &group{in: make(chan *op, 4*maxGroup), done: make(chan struct{})}
	go db.groupLoop()
}

// submit queues o and waits until it is committed (or failed). Once queued,
// a write is carried out even when ctx ends meanwhile.
func (db *DB) submit(ctx context.Context, o *op) error {
	g := db.g
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return errClosed
	}
	select {
	case g.in <- o:
	case <-ctx.Done():
		g.mu.RUnlock()
		return ctx.Err()
	}
	g.mu.RUnlock()
	<-o.done
	return o.err
}

// stopGroup commits what is queued and stops the loop.
func (db *DB) stopGroup() {
	g := db.g
	if g == nil {
		return
	}
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.in)
	}
	g.mu.Unlock()
	<-g.done
}

func (db *DB) groupLoop() {
	g := db.g
	defer close(g.done)
	batch := make([]*op, 0, maxGroup)
	for {
		o, ok := <-g.in
		if !ok {
			return
		}
		batch = append(batch[:0], o)
	drain:
		for len(batch) < maxGroup {
			select {
			case o, ok := <-g.in:
				if !ok {
					break drain
				}
				batch = append(batch, o)
			default:
				break drain
			}
		}
		db.commitGroup(batch)
		g.groups.Add(1)
		g.writes.Add(uint64(len(batch)))
		for _, o := range batch {
			o.done <- struct{}{}
		}
	}
}

// commitGroup writes batch in one transaction, setting each op's id and err.
func (db *DB) commitGroup(batch []*op) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := db.tx(ctx, func(tx *sql.Tx) error { return db.writeGroup(ctx, tx, batch) })
	if err == nil {
		return
	}
	if len(batch) == 1 {
		batch[0].err = err
		return
	}
	// Something other than a duplicate failed: find which, alone.
	for _, o := range batch {
		o.id, o.err = 0, nil
		db.commitGroup([]*op{o})
	}
}

// writeGroup does the writes of batch inside tx: accounts first (a node of
// the batch may belong to one of them), then nodes, then uptime reports.
func (db *DB) writeGroup(ctx context.Context, tx *sql.Tx, batch []*op) error {
	var accounts, nodes []*op
	var uptime []store.Uptime
	for _, o := range batch {
		o.id, o.err = 0, nil
		switch o.kind {
		case opAccount:
			accounts = append(accounts, o)
		case opNode:
			nodes = append(nodes, o)
		case opUptime:
			uptime = append(uptime, o.uptime...)
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
	if len(uptime) > 0 {
		uptime = store.Latest(uptime)
		if db.d.WriteUptime != nil {
			return db.d.WriteUptime(ctx, tx, uptime)
		}
		st := tx.StmtContext(ctx, db.updateUptime)
		defer st.Close()
		for _, u := range uptime {
			if _, err := st.ExecContext(ctx, i64(u.NodeID), ms(u.At), i64(u.Uptime)); err != nil {
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

// NodeArgs are the parameters $1..$16 of a node insert: farm, twin, country,
// city, longitude, latitude, hru, sru, cru, mru, interfaces (JSON),
// secure_boot, virtualized, serial_number, approved (false), created_at.
func NodeArgs(n api.Node) [16]any {
	r := n.Resources
	ifaces := n.Interfaces
	if ifaces == nil {
		ifaces = []api.Interface{}
	}
	return [16]any{i64(n.FarmID), i64(n.TwinID), n.Location.Country, n.Location.City, n.Location.Longitude, n.Location.Latitude,
		i64(r.HRU), i64(r.SRU), i64(r.CRU), i64(r.MRU), jsonText(ifaces), n.SecureBoot, n.Virtualized, n.SerialNumber, false, ms(n.CreatedAt)}
}

// JSONText is how lists (relays, interfaces) are stored.
func JSONText(v any) string { return jsonText(v) }
