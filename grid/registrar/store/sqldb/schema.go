package sqldb

// SchemaV1 is the first version of the schema, the same on every database
// but for how a table's generated primary key is declared (pk).
func SchemaV1(pk string) string {
	return `CREATE TABLE accounts (
		twin_id ` + pk + `,
		public_key TEXT NOT NULL UNIQUE,
		relays TEXT NOT NULL,
		rmb_enc_key TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL
	);
	CREATE TABLE farms (
		farm_id ` + pk + `,
		farm_name TEXT NOT NULL UNIQUE,
		twin_id BIGINT NOT NULL REFERENCES accounts (twin_id),
		stellar_address TEXT NOT NULL,
		dedicated BOOLEAN NOT NULL,
		created_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL
	);
	CREATE INDEX farms_twin_id ON farms (twin_id);
	CREATE TABLE nodes (
		node_id ` + pk + `,
		farm_id BIGINT NOT NULL REFERENCES farms (farm_id),
		twin_id BIGINT NOT NULL UNIQUE REFERENCES accounts (twin_id),
		country TEXT NOT NULL, city TEXT NOT NULL, longitude TEXT NOT NULL, latitude TEXT NOT NULL,
		hru BIGINT NOT NULL, sru BIGINT NOT NULL, cru BIGINT NOT NULL, mru BIGINT NOT NULL,
		interfaces TEXT NOT NULL,
		secure_boot BOOLEAN NOT NULL,
		virtualized BOOLEAN NOT NULL,
		serial_number TEXT NOT NULL,
		last_seen BIGINT,
		uptime BIGINT NOT NULL DEFAULT 0,
		approved BOOLEAN NOT NULL,
		created_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL
	);
	CREATE INDEX nodes_farm_id ON nodes (farm_id);
	CREATE INDEX nodes_last_seen ON nodes (last_seen);
	CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
	CREATE TABLE samples (at BIGINT PRIMARY KEY, online BIGINT NOT NULL, total BIGINT NOT NULL);`
}

// SchemaV2 moves what an uptime report writes (last_seen, uptime) out of the
// wide nodes row into a narrow table of its own, keyed by node id (pk: how a
// plain BIGINT primary key is declared) and with no index on last_seen.
// A report then dirties one page of a table that is a tenth of the size of
// nodes and touches no index: for SQLite a batch of reports writes far fewer
// pages to the WAL; for PostgreSQL the update is HOT (no indexed column
// changes, and with room left on each page by with's fillfactor it stays on
// its page). Counting the online nodes becomes a scan of the narrow table.
func SchemaV2(pk, with string) string {
	return `CREATE TABLE uptimes (
		node_id ` + pk + `,
		last_seen BIGINT NOT NULL,
		uptime BIGINT NOT NULL
	)` + with + `;
	INSERT INTO uptimes (node_id, last_seen, uptime) SELECT node_id, last_seen, uptime FROM nodes WHERE last_seen IS NOT NULL;
	DROP INDEX nodes_last_seen;
	ALTER TABLE nodes DROP COLUMN last_seen;
	ALTER TABLE nodes DROP COLUMN uptime;`
}

// SchemaV4 keeps release channels and what nodes report of their release
// (issue 13). Version 3 is left to the migration written beside it on
// another branch (an empty entry in a dialect's Migrations).
//
// A channel is one row: the signed document as sent, and the registrar's
// hold on its rollout; revision grows with each write, so writes of the
// hold compare and set. What a node reports of its release goes into
// uptimes, beside last_seen, so an uptime report stays one row write (and,
// on PostgreSQL, a HOT update: none of these columns is indexed); the node
// record's GPUs go into nodes, written when the node registers or changes.
func SchemaV4() string {
	return `CREATE TABLE channels (
		name TEXT PRIMARY KEY,
		document TEXT NOT NULL,
		sequence BIGINT NOT NULL,
		version TEXT NOT NULL,
		stored_at BIGINT NOT NULL,
		paused BOOLEAN NOT NULL,
		share_cap BIGINT,
		pause_at BIGINT,
		pause_by BIGINT NOT NULL,
		pause_reason TEXT NOT NULL,
		halt_at BIGINT,
		halt_reason TEXT NOT NULL,
		revision BIGINT NOT NULL
	);
	ALTER TABLE uptimes ADD COLUMN os_version TEXT NOT NULL DEFAULT '';
	ALTER TABLE uptimes ADD COLUMN channel TEXT NOT NULL DEFAULT '';
	ALTER TABLE uptimes ADD COLUMN rolled_back_from TEXT NOT NULL DEFAULT '';
	ALTER TABLE uptimes ADD COLUMN version_since BIGINT;
	ALTER TABLE nodes ADD COLUMN gpus TEXT NOT NULL DEFAULT '[]';`
}

// UptimeUpsert is the ON CONFLICT clause of an uptime report's write into
// uptimes, the same for every dialect. A report moves last_seen forward
// only; a report that names no os_version leaves the release columns as
// they are; a rollback stays recorded until the node reports another
// version; version_since is when the reported version last changed.
const UptimeUpsert = ` ON CONFLICT (node_id) DO UPDATE SET last_seen = excluded.last_seen, uptime = excluded.uptime,
	os_version = CASE WHEN excluded.os_version = '' THEN uptimes.os_version ELSE excluded.os_version END,
	channel = CASE WHEN excluded.os_version = '' THEN uptimes.channel ELSE excluded.channel END,
	rolled_back_from = CASE WHEN excluded.os_version = '' THEN uptimes.rolled_back_from
		WHEN excluded.rolled_back_from <> '' OR excluded.os_version <> uptimes.os_version THEN excluded.rolled_back_from
		ELSE uptimes.rolled_back_from END,
	version_since = CASE WHEN excluded.os_version = '' OR excluded.os_version = uptimes.os_version THEN uptimes.version_since
		ELSE excluded.last_seen END
	WHERE uptimes.last_seen <= excluded.last_seen`
