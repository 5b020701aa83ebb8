package auth

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/workload/auth/authtest"
)

func newAuth(t *testing.T, g *authtest.Grid, dir string, deployers ...string) *Authenticator {
	t.Helper()
	c, err := client.New(g.URL, nil, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Dir: dir, Farm: g.Farm, Deployers: deployers, Registrar: c})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// status is the HTTP status of an Authenticate or MayDeploy error, 200 for
// none.
func status(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return http.StatusOK
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *auth.Error", err)
	}
	return e.Status
}

const deployPath = "/api/v1/deployments"

var body = []byte(`{"name":"web"}`)

// TestSignatures: a signed request passes once; unsigned, tampered,
// expired and replayed ones get 401, and the replay of a write is still
// refused after a restart of the store (a reboot).
func TestSignatures(t *testing.T) {
	g := authtest.Start(t)
	dir := t.TempDir()
	a := newAuth(t, g, dir)

	good := authtest.Request("POST", deployPath, body, g.Alice)
	replay := again(good, body)
	c, err := a.Authenticate(good, true)
	if err != nil || c.Twin != g.Alice.ID || string(c.Body) != string(body) {
		t.Fatalf("Authenticate(good) = %+v, %v", c, err)
	}
	if got := status(t, func() error { _, err := a.Authenticate(replay, true); return err }()); got != 401 {
		t.Fatalf("replay: status %d; want 401", got)
	}

	for name, req := range map[string]*http.Request{
		"unsigned": httptest.NewRequest("POST", deployPath, strings.NewReader(string(body))),
		"body changed": func() *http.Request {
			r := authtest.Request("POST", deployPath, body, g.Alice)
			r.Body = http.NoBody
			return r
		}(),
		"path changed": func() *http.Request {
			r := authtest.Request("POST", deployPath, body, g.Alice)
			r.URL.Path += "/other"
			return r
		}(),
		"expired": func() *http.Request {
			r := httptest.NewRequest("POST", deployPath, strings.NewReader(string(body)))
			authtest.Sign(r, g.Alice, body, time.Now().Add(-2*time.Minute))
			return r
		}(),
		"unknown twin":  authtest.Request("POST", deployPath, body, authtest.Twin{ID: 9999, Key: g.Alice.Key}),
		"another's key": authtest.Request("POST", deployPath, body, authtest.Twin{ID: g.Bob.ID, Key: g.Alice.Key}),
	} {
		_, err := a.Authenticate(req, true)
		if got := status(t, err); got != 401 {
			t.Errorf("%s: status %d (%v); want 401", name, got, err)
		}
	}

	// A reboot: a new store on the same folder, the registrar gone.
	write := authtest.Request("DELETE", deployPath+"/web", nil, g.Alice)
	read := authtest.Request("GET", deployPath+"/web", nil, g.Alice)
	writeAgain := again(write, nil)
	for _, r := range []*http.Request{write, read} {
		if _, err := a.Authenticate(r, r.Method != "GET"); err != nil {
			t.Fatal(err)
		}
	}
	g.Stop()
	b := newAuth(t, g, dir)
	if got := status(t, func() error { _, err := b.Authenticate(writeAgain, true); return err }()); got != 401 {
		t.Fatalf("a write replayed after a restart: status %d; want 401", got)
	}
	// Alice's key is kept on disk: her fresh requests pass without the
	// registrar; Bob's key was never kept: 503, not a wrong 401.
	if _, err := b.Authenticate(authtest.Request("POST", deployPath, body, g.Alice), true); err != nil {
		t.Fatalf("a known twin while the registrar is down: %v", err)
	}
	if got := status(t, func() error {
		_, err := b.Authenticate(authtest.Request("POST", deployPath, body, g.Bob), true)
		return err
	}()); got != 503 {
		t.Fatalf("an unknown twin while the registrar is down: status %d; want 503", got)
	}
}

// again is the same request, headers and body, sent once more.
func again(r *http.Request, body []byte) *http.Request {
	c := httptest.NewRequest(r.Method, r.URL.RequestURI(), bytes.NewReader(body))
	c.Header = r.Header.Clone()
	return c
}

// TestWhoMayDeploy: the farm's owner may, others get 403 unless
// gridnode.deployers names them or says any; the owner stays known
// offline.
func TestWhoMayDeploy(t *testing.T) {
	g := authtest.Start(t)
	ctx := context.Background()
	dir := t.TempDir()
	a := newAuth(t, g, dir)
	if err := a.MayDeploy(ctx, g.Farmer.ID); err != nil {
		t.Fatalf("the farmer: %v", err)
	}
	err := a.MayDeploy(ctx, g.Alice.ID)
	if status(t, err) != 403 || !strings.Contains(err.Error(), "twin "+strconv.FormatUint(g.Farmer.ID, 10)) {
		t.Fatalf("Alice, not allowed: %v; want 403 naming the farm's owner", err)
	}
	if err := newAuth(t, g, t.TempDir(), strconv.FormatUint(g.Alice.ID, 10)).MayDeploy(ctx, g.Alice.ID); err != nil {
		t.Fatalf("Alice in deployers: %v", err)
	}
	if err := newAuth(t, g, t.TempDir(), "any").MayDeploy(ctx, g.Bob.ID); err != nil {
		t.Fatalf("Bob with deployers=any: %v", err)
	}
	if _, err := New(Config{Dir: t.TempDir(), Deployers: []string{"everyone"}}); err == nil {
		t.Fatal("deployers=everyone accepted")
	}
	g.Stop()
	off := newAuth(t, g, dir)
	if err := off.MayDeploy(ctx, g.Farmer.ID); err != nil || !off.IsFarmer(ctx, g.Farmer.ID) {
		t.Fatalf("the farmer while the registrar is down: %v", err)
	}
	if status(t, newAuth(t, g, t.TempDir()).MayDeploy(ctx, g.Farmer.ID)) != 503 {
		t.Fatal("the farm's owner unknown and the registrar down: want 503")
	}
}

// TestNonceStore: the store is bounded (503 past the bound, until old
// nonces expire), and a damaged file makes the node refuse requests signed
// before it started rather than accept replays.
func TestNonceStore(t *testing.T) {
	g := authtest.Start(t)
	now := time.Now()
	c, _ := client.New(g.URL, nil, client.Options{})
	a, err := New(Config{Dir: t.TempDir(), Farm: g.Farm, Registrar: c, MaxNonces: 2, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, err := a.Authenticate(authtest.Request("GET", deployPath, nil, g.Alice), false)
		if want := map[int]int{0: 200, 1: 200, 2: 503}[i]; status(t, err) != want {
			t.Fatalf("request %d: %v; want status %d", i, err, want)
		}
	}
	now = now.Add(2 * time.Minute)
	req := httptest.NewRequest("GET", deployPath, nil)
	authtest.Sign(req, g.Alice, nil, now)
	if _, err := a.Authenticate(req, false); err != nil {
		t.Fatalf("once the old nonces expired: %v", err)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, NoncesFile), []byte("{damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	old := httptest.NewRequest("POST", deployPath, strings.NewReader(string(body)))
	authtest.Sign(old, g.Alice, body, start.Add(-10*time.Second))
	clock := start
	b, err := New(Config{Dir: dir, Farm: g.Farm, Registrar: c, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Warnings) != 1 {
		t.Fatalf("warnings %q; want one about the damaged file", b.Warnings)
	}
	if status(t, func() error { _, err := b.Authenticate(old, true); return err }()) != 401 {
		t.Fatal("a request signed before a start that lost the nonces was accepted")
	}
	clock = start.Add(2 * time.Second)
	fresh := httptest.NewRequest("POST", deployPath, strings.NewReader(string(body)))
	authtest.Sign(fresh, g.Alice, body, clock)
	if _, err := b.Authenticate(fresh, true); err != nil {
		t.Fatalf("a fresh request after that start: %v", err)
	}
}
