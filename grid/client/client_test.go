package client_test

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/client/regtest"
)

const stellar = "GBZ6VHJ4KQ5Q7J4Y5G2N3X6TZ3V5W6Q7R2S3T4U5V6W7X8Y9Z2A3B4C5"

func key(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = b
	return ed25519.NewKeyFromSeed(seed)
}

func newClient(t *testing.T, url string, k ed25519.PrivateKey, opts client.Options) *client.Client {
	t.Helper()
	c, err := client.New(url, k, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func node(farm uint64) api.CreateNode {
	return api.CreateNode{
		FarmID:       farm,
		Resources:    api.Resources{CRU: 2, MRU: 1 << 30, SRU: 8 << 30, HRU: 16 << 30},
		Location:     api.Location{Country: "unknown", City: "unknown", Latitude: "unknown", Longitude: "unknown"},
		Interfaces:   []api.Interface{{Name: "eth0", Mac: "52:54:00:12:34:56", IPs: api.IPs{"10.0.2.15", "fec0::1"}}},
		SerialNumber: "gn-0011223344556677",
	}
}

// farm makes a farmer with a farm and returns the farm id.
func farm(t *testing.T, ctx context.Context, url string) uint64 {
	t.Helper()
	f := newClient(t, url, key(200), client.Options{})
	if _, err := f.EnsureAccount(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := f.CreateFarm(ctx, api.CreateFarm{FarmName: "farm1", StellarAddress: stellar})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRegisterFlow(t *testing.T) {
	for _, slash := range []bool{false, true} {
		name := "interfaces"
		if slash {
			name = "Interfaces-slash-ips"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			reg := regtest.New()
			reg.SlashIPs = slash
			srv := reg.Start()
			defer srv.Close()
			farmID := farm(t, ctx, srv.URL)

			c := newClient(t, srv.URL, key(1), client.Options{})
			a, err := c.EnsureAccount(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if a.TwinID == 0 || c.Twin() != a.TwinID || a.PublicKey != c.PublicKey() {
				t.Fatalf("account %+v, client twin %d", a, c.Twin())
			}
			// A second call finds the same account.
			if b, err := c.EnsureAccount(ctx); err != nil || b.TwinID != a.TwinID {
				t.Fatalf("second EnsureAccount: %+v, %v", b, err)
			}
			if _, err := c.NodeByTwin(ctx, a.TwinID); err != client.ErrNoNode {
				t.Fatalf("NodeByTwin before registration: %v, want ErrNoNode", err)
			}
			id, err := c.CreateNode(ctx, node(farmID))
			if err != nil {
				t.Fatal(err)
			}
			n, err := c.NodeByTwin(ctx, a.TwinID)
			if err != nil {
				t.Fatal(err)
			}
			if n.NodeID != id || n.FarmID != farmID || len(n.Interfaces) != 1 || len(n.Interfaces[0].IPs) != 2 || n.Interfaces[0].IPs[1] != "fec0::1" {
				t.Fatalf("node %+v", n)
			}
			if n.Approved || n.Online {
				t.Fatalf("new node approved=%v online=%v, want false/false", n.Approved, n.Online)
			}
			if _, err := c.CreateNode(ctx, node(farmID)); client.StatusOf(err) != http.StatusConflict {
				t.Fatalf("second CreateNode: %v, want 409", err)
			}
			n = updateAndReport(t, ctx, c, farmID, id)
			if up := reg.Uptimes(id); len(up) != 1 || up[0].Uptime != 90 {
				t.Fatalf("uptimes %+v", up)
			}
			online := true
			if l, err := c.Nodes(ctx, client.NodeFilter{FarmID: farmID, Online: &online}); err != nil || len(l) != 1 {
				t.Fatalf("online nodes of farm: %v, %v", l, err)
			}
			// Only the farm's owner approves.
			if err := c.ApproveNode(ctx, id); client.StatusOf(err) != http.StatusForbidden {
				t.Fatalf("approve by the node: %v, want 403", err)
			}
			f := newClient(t, srv.URL, key(200), client.Options{})
			if _, err := f.EnsureAccount(ctx); err != nil {
				t.Fatal(err)
			}
			if err := f.ApproveNode(ctx, id); err != nil {
				t.Fatal(err)
			}
			if n, _ := c.Node(ctx, id); !n.Approved {
				t.Fatal("node not approved")
			}
			farms, err := f.Farms(ctx, client.FarmFilter{TwinID: f.Twin()})
			if err != nil || len(farms) != 1 || farms[0].FarmName != "farm1" {
				t.Fatalf("farms %+v, %v", farms, err)
			}
			v, err := c.ZOSVersion(ctx)
			if err != nil || v.Version != "v0.0.0-test" || !v.SafeToUpgrade {
				t.Fatalf("zos version %+v, %v", v, err)
			}
		})
	}
}

// A node whose clock is an hour slow still creates its account and reports
// uptime: the client learns the server's time.
func TestWrongClock(t *testing.T) {
	for _, skew := range []time.Duration{-time.Hour, 3 * time.Minute, 5 * time.Second} {
		t.Run(skew.String(), func(t *testing.T) {
			ctx := context.Background()
			reg := regtest.New()
			srv := reg.Start()
			defer srv.Close()
			farmID := farm(t, ctx, srv.URL)
			clock := client.NewClock(func() time.Time { return time.Now().Add(skew) })
			c := newClient(t, srv.URL, key(2), client.Options{Clock: clock})
			if _, err := c.EnsureAccount(ctx); err != nil {
				t.Fatal(err)
			}
			id, err := c.CreateNode(ctx, node(farmID))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.ReportUptime(ctx, id, time.Minute); err != nil {
				t.Fatal(err)
			}
			if d := time.Until(c.Now()); d > 2*time.Second || d < -2*time.Second {
				t.Fatalf("corrected clock is %v off", d)
			}
		})
	}
}

// Without a Date header, the client retries the account creation once with
// the server_time of the 400 answer.
func TestAccountWindowRetry(t *testing.T) {
	ctx := context.Background()
	reg := regtest.New()
	h := reg.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil // net/http then sends none
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	clock := client.NewClock(func() time.Time { return time.Now().Add(-10 * time.Minute) })
	c := newClient(t, srv.URL, key(3), client.Options{Clock: clock})
	if _, err := c.EnsureAccount(ctx); err != nil {
		t.Fatal(err)
	}
	if got := reg.Calls("POST /accounts"); got != 2 {
		t.Fatalf("POST /accounts %d times, want 2 (one refused, one retried)", got)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	reg := regtest.New()
	srv := reg.Start()
	defer srv.Close()
	c := newClient(t, srv.URL, key(4), client.Options{})
	_, err := c.Node(ctx, 42)
	if !client.IsNotFound(err) || !strings.Contains(err.Error(), "404 node not found") {
		t.Fatalf("missing node: %v", err)
	}
	// Signed route without an account.
	if err := c.ReportUptime(ctx, 1, time.Second); err == nil || client.StatusOf(err) != 0 {
		t.Fatalf("uptime without account: %v", err)
	}
	// The server's message travels in the error.
	reg.Fail = func(r *http.Request) (int, string) {
		if r.Method == http.MethodGet {
			return http.StatusServiceUnavailable, "maintenance"
		}
		return 0, ""
	}
	_, err = c.Farms(ctx, client.FarmFilter{})
	if client.StatusOf(err) != 503 || !strings.Contains(err.Error(), "maintenance") {
		t.Fatalf("503: %v", err)
	}
	// Unreachable registrar: not an *Error.
	srv.Close()
	if _, err := c.Farms(ctx, client.FarmFilter{}); err == nil || client.StatusOf(err) != 0 {
		t.Fatalf("closed server: %v", err)
	}
	if _, err := client.New("registrar.example", nil, client.Options{}); err == nil {
		t.Fatal("URL without scheme accepted")
	}
}

func TestBaseURL(t *testing.T) {
	for _, in := range []string{"http://127.0.0.1:8080", "http://127.0.0.1:8080/", "http://127.0.0.1:8080/api/v1", " http://127.0.0.1:8080/api/v1/ "} {
		c, err := client.New(in, nil, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if c.BaseURL() != "http://127.0.0.1:8080/api/v1" {
			t.Errorf("%q → %q", in, c.BaseURL())
		}
	}
}

func TestServerTime(t *testing.T) {
	srv := regtest.New().Start()
	defer srv.Close()
	st, err := client.ServerTime(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(st); d > 2*time.Second || d < -2*time.Second {
		t.Fatalf("server time %v is %v from now", st, d)
	}
}

// updateAndReport changes node id's HRU, reports 90 s of uptime and checks
// that the registrar shows both.
func updateAndReport(t *testing.T, ctx context.Context, c *client.Client, farmID, id uint64) api.Node {
	t.Helper()
	cn := node(farmID)
	u := api.UpdateNode{FarmID: cn.FarmID, Resources: cn.Resources, Location: cn.Location, Interfaces: cn.Interfaces, SerialNumber: cn.SerialNumber}
	u.Resources.HRU = 32 << 30
	if err := c.UpdateNode(ctx, id, u); err != nil {
		t.Fatal(err)
	}
	if err := c.ReportUptime(ctx, id, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	n, err := c.Node(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if n.Resources.HRU != 32<<30 || !n.Online || n.LastSeen == nil {
		t.Fatalf("after update and uptime: %+v", n)
	}
	return n
}

// An answer that never ends (a hostile or broken server in the registrar's
// place) is refused once it passes client.MaxAnswer; the client reads no
// more than that.
func TestAnswerSizeLimit(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		chunk := []byte(strings.Repeat(`{"node_id":1},`, 1000))
		w.Write([]byte("["))
		for {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil || sent.Load() > 64*client.MaxAnswer {
				return
			}
		}
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, nil, client.Options{})
	_, err := c.Nodes(context.Background(), client.NodeFilter{FarmID: 1})
	if err == nil || !strings.Contains(err.Error(), "answer is over 8 MiB") {
		t.Fatalf("endless answer: %v; want it refused for its size", err)
	}
	srv.CloseClientConnections()
	if s := sent.Load(); s > 2*client.MaxAnswer {
		t.Errorf("the server got %d MiB out before the client stopped reading; want about %d MiB", s>>20, client.MaxAnswer>>20)
	}
	// An answer at the limit is still read.
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"node_id":7}` + strings.Repeat(" ", client.MaxAnswer-len(`[{"node_id":7}]`)) + `]`))
	}))
	defer ok.Close()
	nodes, err := newClient(t, ok.URL, nil, client.Options{}).Nodes(context.Background(), client.NodeFilter{})
	if err != nil || len(nodes) != 1 || nodes[0].NodeID != 7 {
		t.Fatalf("answer of exactly %d bytes: %+v, %v", client.MaxAnswer, nodes, err)
	}
}
