package farm

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/client/regtest"
	"github.com/gridnode/gridnode/grid/registrar"
)

// matching lists the requests rec saw whose method and URI contain s, and
// were strictly signed when strict.
func matching(rec *regtest.Recorder, s string, strict bool) []string {
	var out []string
	for _, r := range rec.Requests() {
		if u := r.Method + " " + r.URI; strings.Contains(u, s) && (r.Strict || !strict) {
			out = append(out, u)
		}
	}
	return out
}

// The farmer's commands against the project's registrar in strict mode
// (they sign strictly without being told) and against the reference-shaped
// one; a farm's nodes are listed whole, page after page: by key where the
// registrar speaks after=, by page number where it does not.
func TestFarmAgainstRegistrars(t *testing.T) {
	const nodes = 2*pageSize + 30
	for _, c := range []struct {
		name    string
		handler func(t *testing.T) http.Handler
		paging  string
	}{
		{"strict", func(t *testing.T) http.Handler {
			st, err := registrar.OpenStore(context.Background(), filepath.Join(t.TempDir(), "r.db"))
			if err != nil {
				t.Fatal(err)
			}
			srv := registrar.New(registrar.Config{Store: st, StrictAuth: true, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			t.Cleanup(func() { srv.Close(); st.Close() })
			return srv
		}, "after="},
		{"reference", func(*testing.T) http.Handler { return regtest.New().Handler() }, "page="},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			rec := &regtest.Recorder{}
			hs := httptest.NewServer(rec.Wrap(c.handler(t)))
			defer hs.Close()
			farmer, err := client.New(hs.URL, ed25519.NewKeyFromSeed(make([]byte, 32)), client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			farmID, err := CreateFarm(ctx, farmer, "pagedfarm", "G"+strings.Repeat("A", 55), false)
			if err != nil {
				t.Fatalf("farm create: %v", err)
			}
			for i := range nodes {
				seed := make([]byte, 32)
				seed[0], seed[1], seed[2] = 1, byte(i), byte(i>>8)
				n := farmer.WithKey(ed25519.NewKeyFromSeed(seed))
				if _, err := n.EnsureAccount(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := n.CreateNode(ctx, api.CreateNode{FarmID: farmID, SerialNumber: fmt.Sprint("s", i),
					Interfaces: []api.Interface{{Name: "eth0"}}, Location: api.Location{Country: "unknown", City: "unknown", Longitude: "unknown", Latitude: "unknown"}}); err != nil {
					t.Fatal(err)
				}
			}
			farms, err := MyFarms(ctx, farmer)
			if err != nil || len(farms) != 1 || farms[0].FarmID != farmID {
				t.Fatalf("my farms: %+v, %v", farms, err)
			}
			got, err := Nodes(ctx, farmer, farmID)
			if err != nil || len(got) != nodes {
				t.Fatalf("farm nodes: %d, %v; want %d", len(got), err, nodes)
			}
			for i := 1; i < len(got); i++ {
				if got[i].NodeID <= got[i-1].NodeID {
					t.Fatalf("nodes out of order or twice: %d after %d", got[i].NodeID, got[i-1].NodeID)
				}
			}
			lists := matching(rec, "GET /api/v1/nodes?", false)
			if len(lists) != 3 || len(matching(rec, c.paging, false)) < 2 {
				t.Fatalf("listed the farm's nodes with %q; want 3 pages, the later ones by %s", lists, c.paging)
			}
			if c.name == "strict" && len(matching(rec, "POST /api/v1/farms", true)) != 1 {
				t.Fatalf("the farm was not created with a strict signature: %q", matching(rec, "POST /api/v1/farms", false))
			}
		})
	}
}
