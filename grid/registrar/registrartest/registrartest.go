// Package registrartest runs the project's registrar in-process for other
// packages' tests: a SQLite store in a temporary folder, an admin twin
// whose key the test holds, and an httptest server on loopback.
package registrartest

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/registrar"
	"github.com/gridnode/gridnode/grid/registrar/store"
)

// Registrar is a running registrar.
type Registrar struct {
	URL   string
	Store store.Store
	// AdminKey and AdminTwin are the registrar's admin twin (Config.AdminTwin);
	// Admin is a client signing as it.
	AdminKey  ed25519.PrivateKey
	AdminTwin uint64
	Admin     *client.Client
}

// Start runs a registrar with cfg (its Store, AdminTwin and, unless set,
// Log are Start's) until the test ends.
func Start(t testing.TB, cfg registrar.Config) *Registrar {
	t.Helper()
	ctx := context.Background()
	st, err := registrar.OpenStore(ctx, filepath.Join(t.TempDir(), "registrar.db"))
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	r := &Registrar{Store: st, AdminKey: key}
	r.AdminTwin = r.Account(t, key.Public().(ed25519.PublicKey))
	cfg.Store, cfg.AdminTwin = st, r.AdminTwin
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	srv := registrar.New(cfg)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close(); st.Close() })
	r.URL = hs.URL
	if r.Admin, err = client.New(hs.URL, key, client.Options{}); err != nil {
		t.Fatal(err)
	}
	r.Admin.SetTwin(r.AdminTwin)
	return r
}

// Account makes the account of pub in the store and returns its twin.
func (r *Registrar) Account(t testing.TB, pub ed25519.PublicKey) uint64 {
	t.Helper()
	now := store.Stamp(time.Now())
	id, err := r.Store.CreateAccount(context.Background(), api.Account{PublicKey: api.PublicKey(pub), CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	return id
}
