// Package authtest starts the project's registrar on loopback with a farm
// and a few twins, and signs deployments API requests, for the tests of the
// node's deployments API and of the CLI that talks to it.
package authtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/farm"
	"github.com/gridnode/gridnode/grid/registrar"
)

// Twin is an account on the registrar.
type Twin struct {
	ID  uint64
	Key ed25519.PrivateKey
}

// Grid is a registrar with one farm, its owner and two other twins.
type Grid struct {
	URL    string
	Farm   uint64
	Farmer Twin
	Alice  Twin
	Bob    Twin
	// Stop stops the registrar (it is also stopped at the test's end).
	Stop func()
}

// Start runs grid/registrar with an SQLite store in a temporary folder.
func Start(t testing.TB) *Grid {
	t.Helper()
	ctx := context.Background()
	st, err := registrar.OpenStore(ctx, filepath.Join(t.TempDir(), "registrar.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv := registrar.New(registrar.Config{Store: st})
	hs := httptest.NewServer(srv)
	stopped := false
	g := &Grid{URL: hs.URL}
	g.Stop = func() {
		if !stopped {
			stopped = true
			hs.Close()
			srv.Close()
			st.Close()
		}
	}
	t.Cleanup(g.Stop)
	g.Farmer, g.Alice, g.Bob = g.account(t), g.account(t), g.account(t)
	c, err := client.New(hs.URL, g.Farmer.Key, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.SetTwin(g.Farmer.ID)
	if g.Farm, err = farm.CreateFarm(ctx, c, "testfarm", "GA7QYNF7SOWQ3GLR2BGMZEHXAVIRZA4KVWLTJJFC7MGXUA74P7UJVSGZ", false); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *Grid) account(t testing.TB) Twin {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	c, err := client.New(g.URL, key, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.EnsureAccount(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return Twin{ID: a.TwinID, Key: key}
}

// Sign signs req (whose body is body) as tw at now, with a fresh nonce.
func Sign(req *http.Request, tw Twin, body []byte, now time.Time) {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	xa, xs := api.StrictAuthHeaders(tw.Key, tw.ID, now, nonce, req.Method, req.URL.RequestURI(), body)
	req.Header.Set(api.HeaderAuth, xa)
	req.Header.Set(api.HeaderAuthStrict, xs)
}

// Request is a signed request to target (a path, or a URL) as tw, now.
func Request(method, target string, body []byte, tw Twin) *http.Request {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	Sign(req, tw, body, time.Now())
	return req
}
