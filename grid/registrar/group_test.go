package registrar

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/grid/registrar/store/storetest"
)

// Uptime reports take one path to the database: the store's group commit,
// with one retry policy and one deadline (store/groupcommit). These tests
// make a real database fail, and check what the nodes get.

// pgFaults makes PostgreSQL refuse uptime writes with a serialisation
// failure (SQLSTATE 40001, what a conflicting transaction gets) as often as
// told, and counts the tries of each node's report. Sequences count, as
// they are not rolled back with the failed transaction.
type pgFaults struct {
	t  *testing.T
	db *sql.DB
}

func newPGFaults(t *testing.T, dsn string) *pgFaults {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &pgFaults{t: t, db: db}
	f.exec(`CREATE SEQUENCE test_failures`)
	f.exec(`CREATE TABLE test_fail_limit (n BIGINT NOT NULL)`)
	f.exec(`INSERT INTO test_fail_limit VALUES (0)`)
	f.exec(`CREATE FUNCTION test_uptime_fault() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM nextval(format('test_tries_%s', NEW.node_id));
			IF nextval('test_failures') <= (SELECT n FROM test_fail_limit) THEN
				RAISE EXCEPTION 'injected conflict' USING ERRCODE = 'serialization_failure';
			END IF;
			RETURN NEW;
		END $$`)
	f.exec(`CREATE TRIGGER test_uptime_fault BEFORE INSERT ON uptimes FOR EACH ROW EXECUTE FUNCTION test_uptime_fault()`)
	return f
}

func (f *pgFaults) exec(q string) {
	f.t.Helper()
	if _, err := f.db.Exec(q); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
}

// watch counts the tries of node id's reports from now on.
func (f *pgFaults) watch(id uint64) { f.exec(fmt.Sprintf(`CREATE SEQUENCE test_tries_%d`, id)) }

// failNext makes the next n tries of an uptime write fail.
func (f *pgFaults) failNext(n int64) {
	f.exec(`ALTER SEQUENCE test_failures RESTART WITH 1`)
	f.exec(fmt.Sprintf(`UPDATE test_fail_limit SET n = %d`, n))
}

// tries is how often node id's reports reached the database.
func (f *pgFaults) tries(id uint64) int64 {
	f.t.Helper()
	var n int64
	var called bool
	if err := f.db.QueryRow(fmt.Sprintf(`SELECT last_value, is_called FROM test_tries_%d`, id)).Scan(&n, &called); err != nil {
		f.t.Fatal(err)
	}
	if !called {
		return 0
	}
	return n
}

// grid makes a farm with n nodes and returns their owners and ids.
func (e *env) grid(n int, farmName string) ([]*twin, []uint64) {
	e.t.Helper()
	farm := e.farm(e.account(), farmName)
	tws, ids := make([]*twin, n), make([]uint64, n)
	for i := range n {
		tws[i] = e.account()
		ids[i] = e.node(tws[i], farm)
	}
	return tws, ids
}

// report sends node id's uptime report, signed by its owner tw.
func (e *env) report(tw *twin, id uint64) (int, string, http.Header) {
	b := fmt.Appendf(nil, `{"uptime":60,"timestamp":%d}`, time.Now().Unix())
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/nodes/%d/uptime", e.url, id), bytes.NewReader(b))
	req.Header.Set(api.HeaderAuth, api.AuthHeader(tw.key, tw.id, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Errorf("POST uptime of node %d: %v", id, err)
		return 0, "", nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func TestUptimeGroupRetriedOnPostgres(t *testing.T) {
	o := storetest.Postgres()
	dsn := o.Fresh(t)
	st := o.Reopen(t)
	e := newEnv(t, st, Config{})
	f := newPGFaults(t, dsn)
	tws, ids := e.grid(5, "retryfarm")
	for _, id := range ids {
		f.watch(id)
	}

	// Two serialisation failures, then the database takes it: the node
	// gets one 201, its report reached the database three times (once per
	// try of its group), and it is recorded.
	f.failNext(2)
	if code, body, _ := e.report(tws[0], ids[0]); code != 201 {
		t.Fatalf("report through two transient failures: %d %s, want 201", code, body)
	}
	if n := f.tries(ids[0]); n != 3 {
		t.Errorf("report tried %d times, want 3: one try per try of its group, no retry on top", n)
	}
	if m := get(t, e.url+"/metrics"); !strings.Contains(m, "\nregistrar_store_group_retries_total 2\n") {
		t.Errorf("metrics do not count the 2 retries:\n%s", grep(m, "registrar_store_group"))
	}
	if n, err := st.Node(context.Background(), ids[0]); err != nil || n.LastSeen == nil {
		t.Fatalf("node after its report: %+v, %v; want last_seen set", n, err)
	}

	// Without failures, reports sent together are each tried once and
	// answered once.
	f.failNext(0)
	codes := make([]int, len(ids))
	var wg sync.WaitGroup
	for i := 1; i < len(ids); i++ {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i], _, _ = e.report(tws[i], ids[i]) }()
	}
	wg.Wait()
	for i := 1; i < len(ids); i++ {
		if codes[i] != 201 || f.tries(ids[i]) != 1 {
			t.Errorf("node %d: %d, tried %d times; want 201, once", ids[i], codes[i], f.tries(ids[i]))
		}
	}

	// A database that keeps failing: the node is answered 503 with
	// Retry-After once the group's deadline has passed, in words that say
	// so, and its report reached the database as often as the answer says.
	g := st.(store.Grouped)
	p := g.GroupPolicy()
	p.Deadline = time.Second
	g.SetGroupPolicy(p)
	f.failNext(1 << 40)
	before := f.tries(ids[1])
	start := time.Now()
	code, body, h := e.report(tws[1], ids[1])
	took := time.Since(start)
	if code != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("report to a failing database: %d %s (Retry-After %q), want 503 with Retry-After", code, body, h.Get("Retry-After"))
	}
	tries := f.tries(ids[1]) - before
	want := fmt.Sprintf("uptime report not recorded: the database did not commit it within 1s (%d tries); retry after the seconds in Retry-After", tries)
	if !strings.Contains(body, want) || tries < 2 {
		t.Errorf("answer %s, want %q (at least 2 tries)", body, want)
	}
	if took > 5*time.Second {
		t.Errorf("answered after %v; the deadline is 1s", took)
	}
	f.failNext(0)
	if code, body, _ := e.report(tws[1], ids[1]); code != 201 {
		t.Fatalf("report once the database is back: %d %s", code, body)
	}
}

// On SQLite, a database locked by another process (a backup, sqlite3 at a
// prompt) past the group's deadline gets the node a 503, not a wait as long
// as SQLite's busy timeout; once unlocked, reports are recorded again.
func TestUptimeDeadlineOnLockedSQLite(t *testing.T) {
	o := storetest.SQLite()
	path := o.Fresh(t)
	st := o.Reopen(t)
	e := newEnv(t, st, Config{})
	tws, ids := e.grid(1, "lockedfarm")
	g := st.(store.Grouped)
	p := g.GroupPolicy()
	p.Deadline = time.Second
	g.SetGroupPolicy(p)

	other, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	// A write takes the lock (database/sql's BEGIN is deferred).
	if _, err := lock.Exec(`UPDATE settings SET value = value`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, body, h := e.report(tws[0], ids[0])
	took := time.Since(start)
	want := "uptime report not recorded: the database did not commit it within 1s (1 try)"
	if code != 503 || !strings.Contains(body, want) || h.Get("Retry-After") == "" {
		t.Fatalf("report to a locked database: %d %s (Retry-After %q), want 503 %q", code, body, h.Get("Retry-After"), want)
	}
	if took > 5*time.Second {
		t.Errorf("answered after %v; the deadline is 1s (SQLite's busy timeout is 10 s)", took)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := e.report(tws[0], ids[0]); code != 201 {
		t.Fatalf("report once unlocked: %d %s", code, body)
	}
}

// grep keeps the lines of s that contain sub.
func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
