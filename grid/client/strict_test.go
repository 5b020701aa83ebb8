package client_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/client/regtest"
	"github.com/gridnode/gridnode/grid/registrar"
)

// Against a registrar that requires strict signatures, the client needs no
// setting: it learns it from the first answer and signs every authenticated
// request strictly, and a node registers, changes and reports; a client
// whose first request is a signed one is refused once, then signs strictly.
func TestStrictRegistrar(t *testing.T) {
	ctx := context.Background()
	rec := &regtest.Recorder{}
	url := startRealWith(t, registrar.Config{StrictAuth: true}, rec.Wrap)
	farmID := farm(t, ctx, url)
	c := newClient(t, url, key(1), client.Options{})
	a, err := c.EnsureAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Extension(api.ExtStrictAuth) {
		t.Fatal("the client did not learn that the registrar requires strict signatures")
	}
	id, err := c.CreateNode(ctx, node(farmID))
	if err != nil {
		t.Fatalf("registering in strict mode: %v", err)
	}
	updateAndReport(t, ctx, c, farmID, id)
	for _, r := range rec.Requests() {
		if r.Auth && !r.Strict {
			t.Errorf("%s %s: signed with plain X-Auth only (%d)", r.Method, r.URI, r.Status)
		}
	}

	// A rebooted node knows its twin and reports first: one 401, then
	// strictly signed.
	before := len(rec.Requests())
	c2 := newClient(t, url, key(1), client.Options{})
	c2.SetTwin(a.TwinID)
	if err := c2.ReportUptime(ctx, id, 0); err != nil {
		t.Fatalf("a first request that is signed: %v", err)
	}
	got := rec.Requests()[before:]
	if len(got) != 2 || got[0].Strict || got[0].Status != 401 || !got[1].Strict || got[1].Status != 201 {
		t.Fatalf("first signed request: %+v; want a plain one refused 401, then a strict one 201", got)
	}
}

// The reference-shaped registrar names no extension: the client signs with
// plain X-Auth and never sends X-Auth-Strict.
func TestReferenceGetsPlainAuth(t *testing.T) {
	ctx := context.Background()
	rec := &regtest.Recorder{}
	srv := httptest.NewServer(rec.Wrap(regtest.New().Handler()))
	defer srv.Close()
	farmID := farm(t, ctx, srv.URL)
	c := newClient(t, srv.URL, key(1), client.Options{})
	if _, err := c.EnsureAccount(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := c.CreateNode(ctx, node(farmID))
	if err != nil {
		t.Fatal(err)
	}
	updateAndReport(t, ctx, c, farmID, id)
	if c.Extension(api.ExtStrictAuth) || c.Extension(api.ExtAfter) {
		t.Fatal("the client believes the reference speaks gridnode's extensions")
	}
	signed := 0
	for _, r := range rec.Requests() {
		if r.Strict {
			t.Errorf("%s %s carried X-Auth-Strict to the reference registrar", r.Method, r.URI)
		}
		if r.Auth {
			signed++
		}
		if strings.Contains(r.URI, "after=") {
			t.Errorf("%s: after= sent to a registrar that does not speak it", r.URI)
		}
	}
	if signed < 4 {
		t.Fatalf("%d signed requests recorded: the recorder saw nothing", signed)
	}
}
