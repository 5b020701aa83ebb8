package client_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/registrar"
)

// startReal serves the project's registrar (SQLite in a temp folder) on
// loopback.
func startReal(t *testing.T) string { return startRealWith(t, registrar.Config{}) }

// startRealWith is startReal with cfg (its Store and Log are set here),
// its handler wrapped by the wraps given.
func startRealWith(t *testing.T, cfg registrar.Config, wraps ...func(http.Handler) http.Handler) string {
	t.Helper()
	ctx := context.Background()
	st, err := registrar.OpenStore(ctx, filepath.Join(t.TempDir(), "registrar.db"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Log = st, slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := registrar.New(cfg)
	var h http.Handler = srv
	for _, w := range wraps {
		h = w(h)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(func() { hs.Close(); srv.Close(); st.Close() })
	return hs.URL
}

// The whole client against the project's registrar.
func TestRealRegistrar(t *testing.T) {
	ctx := context.Background()
	url := startReal(t)
	farmID := farm(t, ctx, url)

	// A node with a clock two minutes fast.
	clock := client.NewClock(func() time.Time { return time.Now().Add(2 * time.Minute) })
	c := newClient(t, url, key(1), client.Options{Clock: clock})
	a, err := c.EnsureAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := c.EnsureAccount(ctx); err != nil || b.TwinID != a.TwinID {
		t.Fatalf("second EnsureAccount: %+v, %v", b, err)
	}
	if byTwin, err := c.Account(ctx, a.TwinID); err != nil || byTwin.PublicKey != c.PublicKey() {
		t.Fatalf("Account: %+v, %v", byTwin, err)
	}
	if _, err := c.NodeByTwin(ctx, a.TwinID); err != client.ErrNoNode {
		t.Fatalf("NodeByTwin before registration: %v, want ErrNoNode", err)
	}
	id, err := c.CreateNode(ctx, node(farmID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateNode(ctx, node(farmID)); client.StatusOf(err) != http.StatusConflict {
		t.Fatalf("second CreateNode: %v, want 409", err)
	}
	n, err := c.NodeByTwin(ctx, a.TwinID)
	if err != nil {
		t.Fatal(err)
	}
	if n.NodeID != id || n.FarmID != farmID || len(n.Interfaces) != 1 || len(n.Interfaces[0].IPs) != 2 || n.Approved {
		t.Fatalf("node %+v", n)
	}
	n = updateAndReport(t, ctx, c, farmID, id)
	online := true
	if l, err := c.Nodes(ctx, client.NodeFilter{FarmID: farmID, Online: &online}); err != nil || len(l) != 1 {
		t.Fatalf("online nodes of farm: %v, %v", l, err)
	}
	if err := c.ApproveNode(ctx, id); client.StatusOf(err) != http.StatusForbidden {
		t.Fatalf("approve by the node: %v, want 403", err)
	}
	f := newClient(t, url, key(200), client.Options{})
	if _, err := f.EnsureAccount(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.ApproveNode(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Node(ctx, id); !n.Approved {
		t.Fatal("node not approved")
	}
	if farms, err := f.Farms(ctx, client.FarmFilter{TwinID: f.Twin()}); err != nil || len(farms) != 1 || farms[0].FarmID != farmID {
		t.Fatalf("farms %+v, %v", farms, err)
	}
	if got, err := f.Farm(ctx, farmID); err != nil || got.FarmName != "farm1" {
		t.Fatalf("farm %+v, %v", got, err)
	}
	if _, err := f.Node(ctx, 9999); !client.IsNotFound(err) {
		t.Fatalf("missing node: %v", err)
	}
	if _, err := c.ZOSVersion(ctx); err != nil && client.StatusOf(err) == 0 {
		t.Fatalf("zos version: %v", err)
	}
	if st, err := client.ServerTime(ctx, url); err != nil || time.Until(st) > 2*time.Second || time.Until(st) < -2*time.Second {
		t.Fatalf("server time %v, %v", st, err)
	}
}
