package registrar

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/grid/registrar/store/sqlite"
	"github.com/gridnode/gridnode/grid/registrar/store/storetest"
)

func TestRateLimitPerIP(t *testing.T) {
	e := newEnv(t, storetest.SQLite().Open(t), Config{RatePerIP: 0.5, BurstPerIP: 3})
	for i := range 3 {
		e.expect(200, "GET", "/api/v1/farms", nil, nil, nil)
		_ = i
	}
	req, _ := http.NewRequest("GET", e.url+"/api/v1/farms", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 {
		t.Fatalf("4th request in a burst of 3: %d, want 429", resp.StatusCode)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After = %q, want 1..2 s at 0.5 req/s", resp.Header.Get("Retry-After"))
	}
}

func TestRateLimitPerTwin(t *testing.T) {
	e := newEnv(t, storetest.SQLite().Open(t), Config{RatePerTwin: 1, BurstPerTwin: 1})
	a, b := e.account(), e.account()
	upd := api.UpdateAccount{Relays: []string{}}
	e.expect(200, "PATCH", fmt.Sprintf("/api/v1/accounts/%d", a.id), upd, a, nil)
	e.expect(429, "PATCH", fmt.Sprintf("/api/v1/accounts/%d", a.id), upd, a, nil)
	// Another twin has its own bucket.
	e.expect(200, "PATCH", fmt.Sprintf("/api/v1/accounts/%d", b.id), upd, b, nil)
}

func TestStrictAuth(t *testing.T) {
	e := newEnv(t, storetest.SQLite().Open(t), Config{StrictAuth: true})
	tw := e.account() // account creation is self-signed, not X-Auth
	path := fmt.Sprintf("/api/v1/accounts/%d", tw.id)
	body := []byte(`{"relays":["r"],"rmb_enc_key":"k"}`)
	nonce := make([]byte, 16)
	rand.Read(nonce)
	xa, xs := api.StrictAuthHeaders(tw.key, tw.id, time.Now(), nonce, "PATCH", path, body)
	send := func(b []byte, xa, xs string) int {
		req, _ := http.NewRequest("PATCH", e.url+path, bytes.NewReader(b))
		req.Header.Set(api.HeaderAuth, xa)
		if xs != "" {
			req.Header.Set(api.HeaderAuthStrict, xs)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send(body, api.AuthHeader(tw.key, tw.id, time.Now()), ""); got != 401 {
		t.Fatalf("plain X-Auth in strict mode: %d, want 401", got)
	}
	if got := send([]byte(`{"relays":["evil"]}`), xa, xs); got != 401 {
		t.Fatalf("altered body: %d, want 401", got)
	}
	if got := send(body, xa, "bad"); got != 400 {
		t.Fatalf("malformed X-Auth-Strict: %d, want 400", got)
	}
	if got := send(body, xa, xs); got != 200 {
		t.Fatalf("strict request: %d, want 200", got)
	}
	if got := send(body, xa, xs); got != 401 {
		t.Fatalf("replay: %d, want 401", got)
	}
	rand.Read(nonce)
	xa, xs = api.StrictAuthHeaders(tw.key, tw.id, time.Now(), nonce, "PATCH", path, body)
	if got := send(body, xa, xs); got != 200 {
		t.Fatalf("fresh nonce: %d, want 200", got)
	}
}

// TestUptimeDurableAcrossShutdown: every uptime report answered 201 before a
// shutdown is in the database after it.
func TestUptimeDurableAcrossShutdown(t *testing.T) {
	for _, o := range storetest.Stores() {
		t.Run(o.Name, func(t *testing.T) {
			st := o.Open(t)
			e := newEnv(t, st, Config{})
			farmer := e.account()
			farm := e.farm(farmer, "durable")
			const n = 40
			type nd struct {
				tw *twin
				id uint64
			}
			nodes := make([]nd, n)
			for i := range nodes {
				tw := e.account()
				nodes[i] = nd{tw, e.node(tw, farm)}
			}
			// A second server over the same store, run and shut down by Run's logic.
			srv := New(Config{Store: st, UptimeBatch: 7})
			hs := httptest.NewServer(srv)
			var wg sync.WaitGroup
			var mu sync.Mutex
			accepted := map[uint64]bool{}
			for _, x := range nodes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 5 {
						b := fmt.Appendf(nil, `{"uptime":10,"timestamp":%d}`, time.Now().Unix())
						req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/nodes/%d/uptime", hs.URL, x.id), bytes.NewReader(b))
						req.Header.Set(api.HeaderAuth, api.AuthHeader(x.tw.key, x.tw.id, time.Now()))
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							return
						}
						resp.Body.Close()
						if resp.StatusCode == 201 {
							mu.Lock()
							accepted[x.id] = true
							mu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			hs.Config.Shutdown(context.Background())
			hs.Close()
			srv.Close()
			if len(accepted) != n {
				t.Fatalf("%d of %d nodes had a report accepted", len(accepted), n)
			}
			st.Close()
			st2 := o.Reopen(t)
			yes := true
			online, err := st2.Nodes(context.Background(), store.NodeFilter{FarmID: farm, Online: &yes, OnlineSince: time.Now().Add(-api.OnlineWindow)})
			if err != nil {
				t.Fatal(err)
			}
			if len(online) != n {
				t.Fatalf("after shutdown and reopen %d nodes online, want %d", len(online), n)
			}
		})
	}
}

// TestRunGracefulShutdown runs the registrar as the command does and stops
// it with its context (as SIGTERM does).
func TestRunGracefulShutdown(t *testing.T) {
	db := filepath.Join(t.TempDir(), "r.db")
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{Listen: "127.0.0.1:0", DB: db, Ready: func(a string) { addr <- a }}) }()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatal("registrar did not start within 20 s")
	}
	e := &env{t: t, url: base}
	farmer := e.account()
	farm := e.farm(farmer, "runfarm")
	tw := e.account()
	id := e.node(tw, farm)
	e.expect(201, "POST", fmt.Sprintf("/api/v1/nodes/%d/uptime", id), api.Uptime{Uptime: 1, Timestamp: time.Now().Unix()}, tw, nil)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("registrar did not stop within 30 s")
	}
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := st.Node(context.Background(), id)
	if err != nil || n.LastSeen == nil {
		t.Fatalf("after shutdown node = %+v, %v; want last_seen set", n, err)
	}
}
