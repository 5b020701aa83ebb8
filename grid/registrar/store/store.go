// Package store defines what the grid registrar keeps and how it asks for it:
// the Store interface, implemented over SQLite (package store/sqlite) and
// PostgreSQL (package store/postgres), both by the shared SQL code in
// store/sqldb, and checked by one conformance suite (store/storetest).
//
// The store knows nothing about HTTP, signatures or clocks beyond the times it
// is handed: the server validates and authenticates, the store keeps records
// consistent (every write is transactional; the writes a grid makes by the
// million — accounts, nodes, uptime — are committed in groups) and answers lists with
// paginated, indexed queries and totals with SQL aggregates.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store/groupcommit"
)

// Errors a Store returns, wrapped; test with errors.Is.
var (
	// ErrNotFound: the record asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique key (account key, farm name, a twin's node) is taken.
	ErrConflict = errors.New("already exists")
	// ErrNoFarm: a node names a farm that does not exist.
	ErrNoFarm = errors.New("farm does not exist")
	// ErrUnavailable: the database did not take a write in time (it is
	// down, locked or overloaded); the write may be tried again later.
	ErrUnavailable = errors.New("database unavailable")
)

// FarmFilter selects farms; zero fields select all.
type FarmFilter struct {
	FarmName string
	FarmID   uint64
	TwinID   uint64
	Limit    int // 0: no limit
	Offset   int
}

// NodeFilter selects nodes; zero fields select all.
type NodeFilter struct {
	NodeID uint64
	FarmID uint64
	TwinID uint64
	// Online, when set, keeps nodes seen since OnlineSince (true) or not
	// (false, including never seen).
	Online      *bool
	OnlineSince time.Time
	// SeenSince, when not zero, keeps nodes seen at or after it.
	SeenSince time.Time
	Limit     int // 0: no limit
	Offset    int
}

// Stamp is t as a store keeps a time: in UTC, to the millisecond. A record
// answered when it is made then equals the record read back.
func Stamp(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// Uptime is one accepted uptime report.
type Uptime struct {
	NodeID uint64
	Uptime uint64    // seconds since the node booted
	At     time.Time // becomes the node's last_seen
	// OS is what the node said of its release (extension); without
	// OSVersion, what is stored of it is left as it is.
	OS api.OSState
}

// Latest keeps the latest report of each node, in the order nodes first
// appear: one row write per node, and what an upsert of a batch needs (a
// row may be changed once per statement).
func Latest(reports []Uptime) []Uptime {
	at := make(map[uint64]int, len(reports))
	out := make([]Uptime, 0, len(reports))
	for _, u := range reports {
		if i, ok := at[u.NodeID]; ok {
			if !u.At.Before(out[i].At) {
				out[i] = u
			}
			continue
		}
		at[u.NodeID] = len(out)
		out = append(out, u)
	}
	return out
}

// Stats are the grid's totals, computed with aggregates.
type Stats struct {
	Accounts int64
	Farms    int64
	Nodes    int64
	Online   int64 // nodes seen since the OnlineSince given to Stats
	Capacity api.Resources
}

// Sample is one point of the nodes-online time series.
type Sample struct {
	At     time.Time
	Online int64
	Total  int64
}

// SampleRetention is how long the nodes-online series is kept.
const SampleRetention = 30 * 24 * time.Hour

// Store keeps accounts, farms, nodes and settings. It is safe for concurrent
// use. Returned records have Online false: whether a node is online depends
// on the caller's clock, which the server applies.
type Store interface {
	// CreateAccount stores a; its TwinID is assigned and returned.
	// ErrConflict when the public key has an account.
	CreateAccount(ctx context.Context, a api.Account) (uint64, error)
	Account(ctx context.Context, twin uint64) (api.Account, error)
	AccountByKey(ctx context.Context, publicKey string) (api.Account, error)
	UpdateAccount(ctx context.Context, twin uint64, u api.UpdateAccount, now time.Time) error

	// CreateFarm stores f and returns its id. ErrConflict on a taken name.
	CreateFarm(ctx context.Context, f api.Farm) (uint64, error)
	Farm(ctx context.Context, id uint64) (api.Farm, error)
	Farms(ctx context.Context, f FarmFilter) ([]api.Farm, error)
	UpdateFarm(ctx context.Context, id uint64, u api.UpdateFarm, now time.Time) error

	// CreateNode stores n (approved false, never seen) and returns its id.
	// ErrConflict when the twin has a node, ErrNoFarm for an unknown farm.
	CreateNode(ctx context.Context, n api.Node) (uint64, error)
	Node(ctx context.Context, id uint64) (api.Node, error)
	// NodeOwner returns the twin owning node id and that twin's public key,
	// for authorisation, in one read.
	NodeOwner(ctx context.Context, id uint64) (twin uint64, publicKey string, err error)
	Nodes(ctx context.Context, f NodeFilter) ([]api.Node, error)
	// UpdateNode replaces what a node reports; a change of farm resets
	// approved. ErrNoFarm for an unknown farm.
	UpdateNode(ctx context.Context, id uint64, u api.UpdateNode, now time.Time) error
	// ApproveNode sets approved (gridnode extension).
	ApproveNode(ctx context.Context, id uint64, now time.Time) error
	// ReportUptime records many reports in one transaction; reports for
	// unknown nodes are ignored (the server has checked ownership).
	ReportUptime(ctx context.Context, reports []Uptime) error

	// ZOSVersion returns the stored version document (ErrNotFound if unset).
	ZOSVersion(ctx context.Context) (string, error)
	SetZOSVersion(ctx context.Context, v string) error

	Stats(ctx context.Context, onlineSince time.Time) (Stats, error)
	// AddSample records s and forgets samples older than SampleRetention
	// before it, so the series stays small.
	AddSample(ctx context.Context, s Sample) error
	// Samples returns the samples taken at or after since, oldest first.
	Samples(ctx context.Context, since time.Time) ([]Sample, error)

	Rollouts

	Close() error
}

// Grouped is implemented by the stores that commit writes in groups (the
// SQL stores, through store/groupcommit): accounts, nodes and uptime
// reports. A write whose group is not committed within the policy's
// deadline fails with ErrUnavailable.
type Grouped interface {
	GroupPolicy() groupcommit.Policy
	// SetGroupPolicy replaces the policy from the next group on; a nil
	// Transient keeps the database's own.
	SetGroupPolicy(groupcommit.Policy)
	// ObserveGroups has f called after each group, before its writers are
	// answered (for /metrics); the last f set is the one called.
	ObserveGroups(f func(Group))
}

// Group is what one group commit carried and came to.
type Group struct {
	groupcommit.Result
	Uptime int // uptime reports among the writes
}
