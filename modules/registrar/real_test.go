package registrar

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/registrar"
	"github.com/gridnode/gridnode/node/fact"
)

// realRegistrar runs the project's registrar in-process on a SQLite store.
func realRegistrar(t *testing.T, strict bool) *httptest.Server {
	t.Helper()
	st, err := registrar.OpenStore(context.Background(), filepath.Join(t.TempDir(), "registrar.db"))
	must(t, err)
	srv := registrar.New(registrar.Config{Store: st, StrictAuth: strict, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close(); st.Close() })
	return hs
}

// The module against the project's registrar: registers, reports, is the
// same node after a reboot, and PATCHes a change; in strict mode too (the
// registrar says so on every answer, and the node signs strictly without
// being told: issue 14).
func TestRealRegistrar(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "strict"}[strict], func(t *testing.T) { testRealRegistrar(t, strict) })
	}
}

func testRealRegistrar(t *testing.T, strict bool) {
	n := newNode(t, false)
	ctx := context.Background()
	hs := realRegistrar(t, strict)
	farmID := farm(t, hs.URL)

	s := &sleeper{step: make(chan struct{})}
	r := start(t, hs.URL, farmID, s)
	f1 := waitFact(t, "registered", func(f fact.Registrar) bool { return f.State == fact.RegRegistered && f.UptimeSent == 1 })
	c, err := client.New(hs.URL, nil, client.Options{})
	must(t, err)
	got, err := c.Node(ctx, f1.NodeID)
	must(t, err)
	if got.TwinID != f1.TwinID || got.FarmID != farmID || got.Resources.HRU != 16<<30 || !got.Online || got.Interfaces[0].IPs[0] != "10.0.2.15" {
		t.Fatalf("node on the registrar: %+v", got)
	}

	// Reboot: same twin and node, one node in the farm.
	r.cancel()
	<-r.done
	r.done <- nil
	must(t, os.Remove(fact.Path(Name)))
	n.setHardware(t, 32<<30, "PF2ABCDE")
	start(t, hs.URL, farmID, s)
	f2 := waitFact(t, "registered again", func(f fact.Registrar) bool { return f.State == fact.RegRegistered && f.UptimeSent == 1 })
	if f2.TwinID != f1.TwinID || f2.NodeID != f1.NodeID {
		t.Fatalf("after reboot %d/%d, before %d/%d", f2.TwinID, f2.NodeID, f1.TwinID, f1.NodeID)
	}
	nodes, err := c.Nodes(ctx, client.NodeFilter{FarmID: farmID})
	must(t, err)
	if len(nodes) != 1 || nodes[0].Resources.HRU != 32<<30 || nodes[0].SerialNumber != "PF2ABCDE" {
		t.Fatalf("farm nodes after reboot with a new disk: %+v", nodes)
	}
}
