package simulate

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/registrar"
)

// The simulator against the project's registrar (SQLite).
func TestRealRegistrar(t *testing.T) {
	ctx := context.Background()
	st, err := registrar.OpenStore(ctx, filepath.Join(t.TempDir(), "registrar.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv := registrar.New(registrar.Config{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	hs := httptest.NewServer(srv)
	defer func() { hs.Close(); srv.Close(); st.Close() }()

	res, err := Run(ctx, Config{Registrar: hs.URL, Nodes: 200, Concurrency: 32, AssumeNew: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Registered != 200 || res.Failed != 0 || len(res.Errors) != 0 {
		t.Fatalf("storm: %+v", res)
	}
	c, _ := client.New(hs.URL, nil, client.Options{})
	var total int
	for page := 1; ; page++ {
		nodes, err := c.Nodes(ctx, client.NodeFilter{FarmID: res.FarmID, Page: page, Size: 100})
		if err != nil {
			t.Fatal(err)
		}
		total += len(nodes)
		if len(nodes) < 100 {
			break
		}
	}
	if total != 200 {
		t.Fatalf("farm has %d nodes, want 200", total)
	}
	// Steady over the same nodes: found again, then reports at the rate.
	res, err = Run(ctx, Config{Registrar: hs.URL, Nodes: 200, Concurrency: 16, Mode: Steady, Rate: 50, Duration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Registered != 200 || res.Ops[OpNodeCreate].Count != 0 || res.Ops[OpUptime].Count < 25 || res.Ops[OpUptime].Errors != 0 {
		t.Fatalf("steady: %+v", res)
	}
}
