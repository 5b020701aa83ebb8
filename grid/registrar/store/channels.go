package store

import (
	"context"
	"time"

	"github.com/gridnode/gridnode/grid/api"
)

// Release channels and rollouts (issue 13): the signed channel documents
// the registrar serves, its hold on each rollout, and the counts it halts
// a rollout on.

// Channel is a release channel as the registrar keeps it.
type Channel struct {
	Name string
	// Document is the signed envelope exactly as the admin sent it; the
	// server checked it (upgrade/doc) before storing it.
	Document []byte
	Sequence uint64
	Version  string
	StoredAt time.Time
	Hold     Hold
	// Revision grows with every write of the channel, its document or its
	// hold: a write of the hold names the revision it was computed from
	// (SetHold), so two replicas cannot lose each other's writes.
	Revision uint64
}

// Hold is the registrar's hold on a channel's rollout: a pause and a cap
// on the share, each with when and why. A new document clears it.
type Hold struct {
	Paused bool
	// ShareCap, when not nil, caps the share of the wave in force (ppm).
	ShareCap    *uint32
	PauseAt     time.Time // zero when not paused
	PauseBy     uint64    // the twin that paused
	PauseReason string
	HaltAt      time.Time // zero when the registrar did not halt it
	HaltReason  string
}

// RolloutQuery selects what RolloutCounts counts: the nodes of Channel
// (those reporting it, and those reporting a version but no channel),
// against its Version.
type RolloutQuery struct {
	Channel, Version string
	// OnlineSince: a node seen at or after it is online.
	OnlineSince time.Time
	// Since: the baseline is the nodes seen at or after it (when the
	// document was stored) that did not take Version.
	Since time.Time
}

// Rollouts is the part of Store that keeps channels and counts rollouts.
type Rollouts interface {
	// PutChannel stores c (its document, sequence, version and StoredAt),
	// replacing a document of a lower sequence and clearing the hold, and
	// returns what is stored. ErrConflict when the stored sequence is
	// c.Sequence or more.
	PutChannel(ctx context.Context, c Channel) (Channel, error)
	// Channel returns one channel (ErrNotFound); Channels all, by name.
	Channel(ctx context.Context, name string) (Channel, error)
	Channels(ctx context.Context) ([]Channel, error)
	// SetHold replaces channel name's hold if its revision is still
	// revision, and returns what is stored; ErrConflict when another
	// write came first (read again and decide again), ErrNotFound when
	// there is no such channel.
	SetHold(ctx context.Context, name string, revision uint64, h Hold) (Channel, error)
	// RolloutCounts counts a channel's nodes by the versions they report
	// (Versions, Upgraded, UpgradedOffline, RolledBack, Baseline,
	// BaselineOffline of api.RolloutNodes; At is the caller's).
	RolloutCounts(ctx context.Context, q RolloutQuery) (api.RolloutNodes, error)
}
