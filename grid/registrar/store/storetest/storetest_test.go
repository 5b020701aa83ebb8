package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/grid/registrar/store/sqldb"
)

func TestConformance(t *testing.T) {
	for _, o := range Stores() {
		t.Run(o.Name, func(t *testing.T) { Run(t, o.Open) })
	}
}

// TestMigrationsIdempotent reopens a migrated database: nothing is applied twice.
func TestMigrationsIdempotent(t *testing.T) {
	for _, o := range Stores() {
		t.Run(o.Name, func(t *testing.T) {
			st := o.Open(t)
			st.Close()
			st = o.Reopen(t)
			v, err := st.(*sqldb.DB).SchemaVersion(context.Background())
			if want := len(o.Migrations); err != nil || v != want {
				t.Fatalf("schema version = %d, %v; want %d", v, err, want)
			}
		})
	}
}

// TestMigrateV1 opens a database left at schema version 1 with a node that
// reported: version 2 moves its last_seen to the uptimes table, and the
// node reads as before.
func TestMigrateV1(t *testing.T) {
	for _, o := range Stores() {
		t.Run(o.Name, func(t *testing.T) {
			ctx := context.Background()
			db, err := sql.Open(o.Driver, o.Fresh(t))
			if err != nil {
				t.Fatal(err)
			}
			seen := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
			for _, q := range []string{
				`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`,
				o.Migrations[0],
				`INSERT INTO schema_migrations VALUES (1, 0)`,
				`INSERT INTO accounts (twin_id, public_key, relays, rmb_enc_key, created_at, updated_at) VALUES (1, 'k1', '[]', '', 0, 0), (2, 'k2', '[]', '', 0, 0)`,
				`INSERT INTO farms (farm_id, farm_name, twin_id, stellar_address, dedicated, created_at, updated_at) VALUES (1, 'f', 1, 'G', false, 0, 0)`,
				`INSERT INTO nodes (node_id, farm_id, twin_id, country, city, longitude, latitude, hru, sru, cru, mru, interfaces, secure_boot, virtualized, serial_number, last_seen, uptime, approved, created_at, updated_at)
					VALUES (1, 1, 1, 'c', 'c', '0', '0', 1, 2, 3, 4, '[]', false, false, 's1', ` + strconv.FormatInt(seen.UnixMilli(), 10) + `, 77, false, 0, 0),
					       (2, 1, 2, 'c', 'c', '0', '0', 1, 2, 3, 4, '[]', false, false, 's2', NULL, 0, false, 0, 0)`,
			} {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			db.Close()
			st := o.Reopen(t)
			n1, err := st.Node(ctx, 1)
			if err != nil || n1.LastSeen == nil || !n1.LastSeen.Equal(seen) || n1.Resources.MRU != 4 {
				t.Fatalf("node 1 after migration = %+v, %v; want last seen %v", n1, err, seen)
			}
			if n2, err := st.Node(ctx, 2); err != nil || n2.LastSeen != nil {
				t.Fatalf("node 2 after migration = %+v, %v; want never seen", n2, err)
			}
			s, err := st.Stats(ctx, seen.Add(-time.Minute))
			if err != nil || s.Nodes != 2 || s.Online != 1 {
				t.Fatalf("stats after migration = %+v, %v; want 2 nodes, 1 online", s, err)
			}
			if err := st.ReportUptime(ctx, []store.Uptime{{NodeID: 2, Uptime: 5, At: seen}}); err != nil {
				t.Fatal(err)
			}
			if s, _ := st.Stats(ctx, seen.Add(-time.Minute)); s.Online != 2 {
				t.Fatalf("online after node 2 reported = %d, want 2", s.Online)
			}
		})
	}
}

// TestNoncesShared: a nonce recorded through one store is a replay through
// another on the same database (a second replica) and after a restart;
// of many concurrent uses of one nonce, on either, exactly one is fresh;
// ForgetNonces forgets only what is past its keep.
func TestNoncesShared(t *testing.T) {
	for _, o := range Stores() {
		t.Run(o.Name, func(t *testing.T) {
			ctx := context.Background()
			o.Fresh(t)
			a, b := o.Reopen(t), o.Reopen(t)
			now := time.Now()
			keep := now.Add(2 * time.Minute)
			use := func(st store.Store, twin uint64, nonce string, want bool) {
				t.Helper()
				fresh, err := st.UseNonce(ctx, twin, nonce, keep)
				if err != nil || fresh != want {
					t.Fatalf("UseNonce(%d, %q) = %v, %v; want %v", twin, nonce, fresh, err, want)
				}
			}
			use(a, 1, "n1", true)
			use(b, 1, "n1", false) // the other replica
			use(a, 1, "n1", false)
			use(b, 2, "n1", true) // another twin's nonce
			a.Close()
			a = o.Reopen(t) // a restart
			use(a, 2, "n1", false)

			var wg sync.WaitGroup
			var fresh atomic.Int32
			for i := range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					st := a
					if i%2 == 1 {
						st = b
					}
					ok, err := st.UseNonce(ctx, 3, "race", keep)
					if err != nil {
						t.Errorf("UseNonce: %v", err)
					}
					if ok {
						fresh.Add(1)
					}
				}()
			}
			wg.Wait()
			if fresh.Load() != 1 {
				t.Fatalf("one nonce used 40 times at once on two replicas: %d fresh, want 1", fresh.Load())
			}

			if _, err := a.UseNonce(ctx, 4, "old", now.Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
			if err := b.ForgetNonces(ctx, now); err != nil {
				t.Fatal(err)
			}
			use(a, 4, "old", true) // forgotten: past its keep
			use(a, 1, "n1", false) // kept
		})
	}
}

// TestIDsNeverReused: when the newest records are gone (deleted by hand
// here; lost to a power cut with synchronous=NORMAL before), the next
// records get new ids, never theirs.
func TestIDsNeverReused(t *testing.T) {
	for _, o := range Stores() {
		t.Run(o.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := o.Fresh(t)
			st := o.Reopen(t)
			now := store.Stamp(time.Now())
			var twins []uint64
			for i := range 3 {
				id, err := st.CreateAccount(ctx, api.Account{PublicKey: "k" + strconv.Itoa(i), CreatedAt: now, UpdatedAt: now})
				if err != nil {
					t.Fatal(err)
				}
				twins = append(twins, id)
			}
			f, err := st.CreateFarm(ctx, api.Farm{FarmName: "f", TwinID: twins[0], CreatedAt: now, UpdatedAt: now})
			if err != nil {
				t.Fatal(err)
			}
			n, err := st.CreateNode(ctx, api.Node{FarmID: f, TwinID: twins[1], SerialNumber: "s", CreatedAt: now, UpdatedAt: now})
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			db, err := sql.Open(o.Driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{`DELETE FROM nodes WHERE node_id = ` + strconv.FormatUint(n, 10),
				`DELETE FROM accounts WHERE twin_id = ` + strconv.FormatUint(twins[2], 10)} {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			db.Close()
			st = o.Reopen(t)
			id, err := st.CreateAccount(ctx, api.Account{PublicKey: "k-new", CreatedAt: now, UpdatedAt: now})
			if err != nil || id <= twins[2] {
				t.Fatalf("new account after twin %d was deleted: id %d, %v; want above %d", twins[2], id, err, twins[2])
			}
			nn, err := st.CreateNode(ctx, api.Node{FarmID: f, TwinID: id, SerialNumber: "s", CreatedAt: now, UpdatedAt: now})
			if err != nil || nn <= n {
				t.Fatalf("new node after node %d was deleted: id %d, %v; want above %d", n, nn, err, n)
			}
		})
	}
}

// TestMigrationsConcurrent: replicas starting at once on one empty
// database all start, and the schema is migrated once.
func TestMigrationsConcurrent(t *testing.T) {
	for _, o := range Stores() {
		t.Run(o.Name, func(t *testing.T) {
			o.Fresh(t)
			const replicas = 6
			var wg sync.WaitGroup
			errs := make(chan error, replicas)
			for range replicas {
				wg.Add(1)
				go func() {
					defer wg.Done()
					st, err := o.ReopenErr()
					if err != nil {
						errs <- err
						return
					}
					defer st.Close()
					if v, err := st.(*sqldb.DB).SchemaVersion(context.Background()); err != nil || v != len(o.Migrations) {
						errs <- fmt.Errorf("schema version %d, %v; want %d", v, err, len(o.Migrations))
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("a replica starting with the others: %v", err)
			}
		})
	}
}
