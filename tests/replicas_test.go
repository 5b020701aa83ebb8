package tests

// Replicas of the registrar (issue 14): several `gridnode registrar`
// processes on one PostgreSQL database serve the grid as one, behind any
// load balancer, and losing one loses nothing it acknowledged.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store/storetest"
	"github.com/gridnode/gridnode/grid/simulate"
)

// TestRegistrarReplicas: two registrars started at once on an empty
// database (both migrate it), a round-robin load balancer in front, the
// simulator's storm spread over both, one replica killed (SIGKILL) halfway
// through: every account and node a client saw acknowledged is in the
// database, every node finishes registering against the other replica, and
// then reports its uptime there. CI runs 20,000 nodes
// (GRIDNODE_REPLICA_NODES); `make bench` runs 100,000
// (TestBenchRegistrarReplicas).
func TestRegistrarReplicas(t *testing.T) {
	n := 20_000
	if v := os.Getenv("GRIDNODE_REPLICA_NODES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			t.Fatalf("GRIDNODE_REPLICA_NODES=%q: want a number of nodes, at least 100", v)
		}
	}
	replicaStorm(t, n)
}

// replicaRun is what replicaStorm saw.
type replicaRun struct {
	nodes, killedAt       int
	storm, after          *simulate.Result
	ackedTwins, ackedNode int
	served                [2]int64 // requests each replica answered before the kill
	took                  time.Duration
}

func replicaStorm(t *testing.T, nodes int) *replicaRun {
	start := time.Now()
	base := storetest.PostgresURL(t)
	db, _, _ := regFreshPostgres(t, base)
	bin := buildGridnode(t)
	// Started at once: both migrate the empty database (the advisory lock
	// makes it once). The simulator's nodes all come from 127.0.0.1, so
	// the per-address and per-twin limits are off.
	procs := make([]*registrarProc, 2)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			procs[i] = startRegistrar(t, bin, db, "--rate-per-ip", "0", "--rate-per-twin", "0")
		}()
	}
	wg.Wait()
	for _, p := range procs {
		if p == nil {
			t.FailNow() // startRegistrar said why
		}
		defer p.kill()
	}
	lb := newBalancer(t, "http://"+procs[0].addr, "http://"+procs[1].addr)
	front := httptest.NewServer(lb)
	defer front.Close()

	run := &replicaRun{nodes: nodes, killedAt: nodes / 2}
	storm, err := simulate.Run(context.Background(), simulate.Config{
		Registrar: front.URL, Nodes: nodes, Mode: simulate.Storm, AssumeNew: true, KeepIDs: true,
		Concurrency: 64, Retries: 8, Timeout: 20 * time.Second, FarmName: "replicas",
		Checkpoints: []int{run.killedAt},
		OnCheckpoint: func(registered int, el time.Duration) {
			run.served = [2]int64{lb.backends[0].served.Load(), lb.backends[1].served.Load()}
			procs[0].cmd.Process.Signal(syscall.SIGKILL)
			t.Logf("killed replica 1 (pid %d) with SIGKILL at %d nodes registered, %.1f s into the storm", procs[0].cmd.Process.Pid, registered, el.Seconds())
		},
	})
	if err != nil {
		t.Fatalf("storm: %v\nreplica 2's log:\n%s", err, procs[1].tail())
	}
	run.storm = storm
	t.Logf("storm: %d registered, %d failed in %.1f s (%.0f/s); failed requests, retried: %v", storm.Registered, storm.Failed, storm.RegisterS, storm.NodesPerS, storm.Errors)
	select {
	case <-procs[0].done:
	case <-time.After(10 * time.Second):
		t.Fatal("replica 1 still runs 10 s after SIGKILL")
	}
	if run.served[0] == 0 || run.served[1] == 0 {
		t.Errorf("before the kill the replicas answered %v requests: the storm was not spread over both", run.served)
	}
	if storm.Failed != 0 || int(storm.Registered) != nodes {
		t.Errorf("%d of %d nodes registered, %d gave up: the nodes did not carry on against the surviving replica (errors %v)", storm.Registered, nodes, storm.Failed, storm.Errors)
	}

	// Everything a client saw acknowledged is in the database, and each
	// node of the simulator is there with its twin.
	twins, nodeIDs := lb.acknowledged()
	run.ackedTwins, run.ackedNode = len(twins), len(nodeIDs)
	// A request the killed replica committed but whose answer the kill cut
	// off is acknowledged to no one: the client's retry finds the account
	// or node already there. Each acknowledgement missing must be such a
	// lost answer (a 502 the client retried), never more.
	lost := func(op string) int {
		var n int
		for k, v := range storm.Errors {
			if strings.HasPrefix(k, op+" 5") {
				n += int(v)
			}
		}
		return n
	}
	if nodes-len(twins) > lost(simulate.OpAccount) || nodes-len(nodeIDs) > lost(simulate.OpNodeCreate) {
		t.Errorf("the load balancer saw %d accounts and %d nodes acknowledged for %d nodes, more missing than answers lost at the kill (%d accounts, %d nodes)", len(twins), len(nodeIDs), nodes, lost(simulate.OpAccount), lost(simulate.OpNodeCreate))
	}
	pg, err := sql.Open("pgx", db)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := pg.QueryRow(q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	if got := count(`SELECT count(*) FROM accounts WHERE twin_id = ANY($1)`, twins); got != len(twins) {
		t.Errorf("%d of the %d accounts acknowledged are in the database", got, len(twins))
	}
	if got := count(`SELECT count(*) FROM nodes WHERE node_id = ANY($1)`, nodeIDs); got != len(nodeIDs) {
		t.Errorf("%d of the %d nodes acknowledged are in the database", got, len(nodeIDs))
	}
	var simTwins, simNodes []int64
	for i := range storm.IDs.Nodes {
		if storm.IDs.Nodes[i] != 0 {
			simTwins, simNodes = append(simTwins, int64(storm.IDs.Twins[i])), append(simNodes, int64(storm.IDs.Nodes[i]))
		}
	}
	if got := count(`SELECT count(*) FROM nodes n JOIN unnest($1::bigint[], $2::bigint[]) AS v(node, twin) ON n.node_id = v.node AND n.twin_id = v.twin`, simNodes, simTwins); got != len(simNodes) {
		t.Errorf("%d of the simulator's %d nodes are in the database with their twin", got, len(simNodes))
	}
	if got := count(`SELECT count(*) FROM nodes`); got != nodes {
		t.Errorf("%d nodes in the database for %d simulated: a node registered twice, or was lost", got, nodes)
	}

	// The nodes carry on: uptime reports, all to the surviving replica.
	killed := time.Now()
	after, err := simulate.Run(context.Background(), simulate.Config{
		Registrar: front.URL, Nodes: nodes, Mode: simulate.Steady, Known: storm.IDs, FarmName: "replicas",
		Rate: -1, Duration: 5 * time.Second, Concurrency: 32, Retries: 3,
	})
	if err != nil {
		t.Fatalf("uptime after the kill: %v", err)
	}
	run.after = after
	up := after.Ops[simulate.OpUptime]
	if up.Count == 0 || up.Errors != 0 {
		t.Errorf("uptime after the kill: %d reports, %d failed (%v)", up.Count, up.Errors, after.Errors)
	}
	if got := count(`SELECT count(*) FROM uptimes WHERE last_seen >= $1`, killed.UnixMilli()); got == 0 || uint64(got) > up.Count {
		t.Errorf("%d nodes seen since the kill for %d reports accepted", got, up.Count)
	}
	if err := procs[1].stop(time.Minute); err != nil {
		t.Errorf("stopping replica 2: %v\n%s", err, procs[1].tail())
	}
	run.took = time.Since(start)
	t.Logf("%d nodes over two replicas, one killed: %d accounts and %d nodes acknowledged, all in the database; %d uptime reports after the kill; %.0f s in all",
		nodes, len(twins), len(nodeIDs), up.Count, run.took.Seconds())
	return run
}

// balancer is a round-robin load balancer of the kind that sits in front of
// registrar replicas: a backend that refuses connections is skipped for a
// while and the request, not sent, goes to the next one; a request lost in
// flight (its backend died while it ran) is answered 502, for the client to
// retry. It keeps the account and node ids of the registrations it saw
// acknowledged (201).
type balancer struct {
	*httputil.ReverseProxy
	backends []*lbBackend
	next     atomic.Uint64
	mu       sync.Mutex
	twins    map[uint64]bool
	nodes    map[uint64]bool
}

type lbBackend struct {
	url       *url.URL
	downUntil atomic.Int64 // unix nanoseconds
	served    atomic.Int64
}

func newBalancer(t *testing.T, urls ...string) *balancer {
	b := &balancer{twins: map[uint64]bool{}, nodes: map[uint64]bool{}}
	for _, u := range urls {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		b.backends = append(b.backends, &lbBackend{url: pu})
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 128, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	b.ReverseProxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(b.backends[0].url) // the transport picks the backend
			pr.SetXForwarded()
		},
		Transport:      failover{b, tr},
		ModifyResponse: b.record,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	return b
}

// failover sends a request to the backends in turn, skipping those down,
// and to the next one when a connection is refused (nothing was sent).
type failover struct {
	b  *balancer
	tr *http.Transport
}

func (f failover) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	var last error
	for range len(f.b.backends) * 2 {
		be := f.b.backends[f.b.next.Add(1)%uint64(len(f.b.backends))]
		if time.Now().UnixNano() < be.downUntil.Load() {
			continue
		}
		out := req.Clone(req.Context())
		out.URL.Scheme, out.URL.Host, out.Host = be.url.Scheme, be.url.Host, be.url.Host
		if req.Body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
		}
		resp, err := f.tr.RoundTrip(out)
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			be.downUntil.Store(time.Now().Add(10 * time.Second).UnixNano())
			last = err
			continue
		}
		if err == nil {
			be.served.Add(1)
		}
		return resp, err
	}
	return nil, fmt.Errorf("no backend up: %w", last)
}

// record keeps the id of an account or node creation answered 201.
func (b *balancer) record(resp *http.Response) error {
	if resp.StatusCode != http.StatusCreated || resp.Request.Method != http.MethodPost {
		return nil
	}
	path := resp.Request.URL.Path
	if path != api.Prefix+"/accounts" && path != api.Prefix+"/nodes" {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return err
	}
	var ids struct {
		TwinID uint64 `json:"twin_id"`
		NodeID uint64 `json:"node_id"`
	}
	if err := json.Unmarshal(body, &ids); err != nil {
		return fmt.Errorf("a 201 of %s that is not its JSON: %q", path, body)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if path == api.Prefix+"/accounts" {
		b.twins[ids.TwinID] = true
	} else {
		b.nodes[ids.NodeID] = true
	}
	return nil
}

func (b *balancer) acknowledged() (twins, nodes []int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id := range b.twins {
		twins = append(twins, int64(id))
	}
	for id := range b.nodes {
		nodes = append(nodes, int64(id))
	}
	return twins, nodes
}
