package postgres

import (
	"context"
	"database/sql"

	"github.com/gridnode/gridnode/grid/registrar/store/sqldb"
)

// insertNonces writes a group's strict-mode nonces in one statement; a
// nonce another transaction (another replica) holds makes this one wait for
// it, then skip it: a replay, whichever replica it went to.
func insertNonces(ctx context.Context, tx *sql.Tx, rows []sqldb.NonceRow, fresh map[sqldb.Nonce]bool) error {
	twins, nonces, keep := make([]int64, len(rows)), make([]string, len(rows)), make([]int64, len(rows))
	for i, r := range rows {
		twins[i], nonces[i], keep[i] = sqldb.I64(r.Twin), r.Nonce.Nonce, sqldb.MS(r.Keep)
	}
	res, err := tx.QueryContext(ctx, `INSERT INTO nonces (twin_id, nonce, keep_until)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])
		ON CONFLICT DO NOTHING RETURNING twin_id, nonce`, twins, nonces, keep)
	if err != nil {
		return err
	}
	defer res.Close()
	for res.Next() {
		var n sqldb.Nonce
		if err := res.Scan(&n.Twin, &n.Nonce); err != nil {
			return err
		}
		fresh[n] = true
	}
	return res.Err()
}
