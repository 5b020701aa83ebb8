package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
)

// Release channels and rollout counts (schema version 4).

const channelCols = `name, document, sequence, version, stored_at, paused, share_cap, pause_at, pause_by, pause_reason, halt_at, halt_reason, revision`

func scanChannel(s scanner) (store.Channel, error) {
	var c store.Channel
	var doc string
	var seq, stored, by, rev int64
	var capPPM, pauseAt, haltAt sql.NullInt64
	if err := s.Scan(&c.Name, &doc, &seq, &c.Version, &stored, &c.Hold.Paused, &capPPM, &pauseAt, &by, &c.Hold.PauseReason,
		&haltAt, &c.Hold.HaltReason, &rev); err != nil {
		return c, err
	}
	c.Document, c.Sequence, c.StoredAt, c.Hold.PauseBy, c.Revision = []byte(doc), uint64(seq), fromMS(stored), uint64(by), uint64(rev)
	if capPPM.Valid {
		v := uint32(capPPM.Int64)
		c.Hold.ShareCap = &v
	}
	if pauseAt.Valid {
		c.Hold.PauseAt = fromMS(pauseAt.Int64)
	}
	if haltAt.Valid {
		c.Hold.HaltAt = fromMS(haltAt.Int64)
	}
	return c, nil
}

// nullMS is t as a nullable column: NULL for the zero time.
func nullMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ms(t)
}

func (db *DB) PutChannel(ctx context.Context, c store.Channel) (store.Channel, error) {
	got, err := scanChannel(db.w.QueryRowContext(ctx, `INSERT INTO channels (`+channelCols+`)
		VALUES ($1, $2, $3, $4, $5, FALSE, NULL, NULL, 0, '', NULL, '', 1)
		ON CONFLICT (name) DO UPDATE SET document = excluded.document, sequence = excluded.sequence, version = excluded.version,
			stored_at = excluded.stored_at, paused = FALSE, share_cap = NULL, pause_at = NULL, pause_by = 0, pause_reason = '',
			halt_at = NULL, halt_reason = '', revision = channels.revision + 1
		WHERE channels.sequence < excluded.sequence
		RETURNING `+channelCols, c.Name, string(c.Document), i64(c.Sequence), c.Version, ms(c.StoredAt)))
	if errors.Is(err, sql.ErrNoRows) {
		return got, fmt.Errorf("storing channel %s sequence %d: a sequence as high is stored: %w", c.Name, c.Sequence, store.ErrConflict)
	}
	return got, db.wrap("storing channel", err)
}

func (db *DB) Channel(ctx context.Context, name string) (store.Channel, error) {
	c, err := scanChannel(db.r.QueryRowContext(ctx, `SELECT `+channelCols+` FROM channels WHERE name = $1`, name))
	return c, db.wrap("reading channel "+name, err)
}

func (db *DB) Channels(ctx context.Context) ([]store.Channel, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+channelCols+` FROM channels ORDER BY name`)
	if err != nil {
		return nil, db.wrap("listing channels", err)
	}
	defer rows.Close()
	var out []store.Channel
	for rows.Next() {
		c, err := scanChannel(rows)
		if err != nil {
			return nil, db.wrap("listing channels", err)
		}
		out = append(out, c)
	}
	return out, db.wrap("listing channels", rows.Err())
}

func (db *DB) SetHold(ctx context.Context, name string, revision uint64, h store.Hold) (store.Channel, error) {
	var capPPM any
	if h.ShareCap != nil {
		capPPM = int64(*h.ShareCap)
	}
	got, err := scanChannel(db.w.QueryRowContext(ctx, `UPDATE channels SET paused = $3, share_cap = $4, pause_at = $5, pause_by = $6,
			pause_reason = $7, halt_at = $8, halt_reason = $9, revision = revision + 1
		WHERE name = $1 AND revision = $2 RETURNING `+channelCols,
		name, i64(revision), h.Paused, capPPM, nullMS(h.PauseAt), i64(h.PauseBy), h.PauseReason, nullMS(h.HaltAt), h.HaltReason))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := db.Channel(ctx, name); err != nil {
			return got, err
		}
		return got, fmt.Errorf("holding channel %s: revision %d was replaced by another write: %w", name, revision, store.ErrConflict)
	}
	return got, db.wrap("holding channel "+name, err)
}

// RolloutCounts is one scan of uptimes, grouped by the version nodes
// report: the registrar runs it once per channel and evaluation, not per
// request.
func (db *DB) RolloutCounts(ctx context.Context, q store.RolloutQuery) (api.RolloutNodes, error) {
	out := api.RolloutNodes{Versions: []api.VersionCount{}}
	rows, err := db.r.QueryContext(ctx, `SELECT os_version, count(*),
			count(*) FILTER (WHERE last_seen >= $1),
			count(*) FILTER (WHERE rolled_back_from = $2),
			count(*) FILTER (WHERE rolled_back_from <> $2 AND last_seen >= $3),
			count(*) FILTER (WHERE rolled_back_from <> $2 AND last_seen >= $3 AND last_seen < $1)
		FROM uptimes WHERE os_version <> '' AND (channel = $4 OR channel = '')
		GROUP BY os_version ORDER BY os_version`, ms(q.OnlineSince), q.Version, ms(q.Since), q.Channel)
	if err != nil {
		return out, db.wrap("counting rollout", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v api.VersionCount
		var rolledBack, seen, seenOffline int64
		if err := rows.Scan(&v.Version, &v.Nodes, &v.Online, &rolledBack, &seen, &seenOffline); err != nil {
			return out, db.wrap("counting rollout", err)
		}
		out.Versions = append(out.Versions, v)
		if v.Version == q.Version {
			out.Upgraded += v.Nodes
			out.UpgradedOffline += v.Nodes - v.Online
			continue
		}
		// A node that rolled back from the version took it, and failed.
		out.Upgraded += rolledBack
		out.RolledBack += rolledBack
		out.Baseline += seen
		out.BaselineOffline += seenOffline
	}
	return out, db.wrap("counting rollout", rows.Err())
}
