package registrar

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store/storetest"
)

// BenchmarkRegister measures what a node does at first boot (account, node,
// first uptime report) over loopback HTTP, 16 at a time, on each store.
// b.N nodes; ns/op is the time per registered node (1 ms/op = 1,000,000 in
// about 17 minutes on one core's worth of client+server).
func BenchmarkRegister(b *testing.B) {
	for _, o := range storetest.Stores() {
		b.Run(o.Name, func(b *testing.B) {
			st := o.Open(b)
			srv := New(Config{Store: st})
			hs := httptest.NewServer(srv)
			defer hs.Close()
			defer srv.Close()
			e := &env{t: b, url: hs.URL}
			farmer := e.account()
			farm := e.farm(farmer, "benchfarm")
			keys := make([]ed25519.PrivateKey, b.N)
			for i := range keys {
				keys[i] = newKey()
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			post := func(path string, v any, tw *twin, out any) int {
				body, _ := json.Marshal(v)
				req, _ := http.NewRequest("POST", hs.URL+path, bytes.NewReader(body))
				if tw != nil {
					req.Header.Set(api.HeaderAuth, api.AuthHeader(tw.key, tw.id, time.Now()))
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return 0
				}
				defer resp.Body.Close()
				if out != nil {
					json.NewDecoder(resp.Body).Decode(out)
				}
				io.Copy(io.Discard, resp.Body) // drained, so the connection is reused
				return resp.StatusCode
			}
			b.ResetTimer()
			parallel(b, 16, func(i int) bool {
				var a api.Account
				if c := post("/api/v1/accounts", api.NewAccount(keys[i], time.Now()), nil, &a); c != 201 {
					b.Errorf("account: %d", c)
					return false
				}
				tw := &twin{key: keys[i], id: a.TwinID}
				var n api.NodeID
				if c := post("/api/v1/nodes", nodeBody(tw, farm), tw, &n); c != 201 {
					b.Errorf("node: %d", c)
					return false
				}
				if c := post(fmt.Sprintf("/api/v1/nodes/%d/uptime", n.NodeID), api.Uptime{Uptime: 1, Timestamp: time.Now().Unix()}, tw, nil); c != 201 {
					b.Errorf("uptime: %d", c)
					return false
				}
				return true
			})
		})
	}
}

// BenchmarkUptime measures uptime reports from 2,000 registered nodes, 64 in
// flight, over loopback HTTP; ns/op is per report (200 µs/op = 5,000/s).
func BenchmarkUptime(b *testing.B) {
	for _, o := range storetest.Stores() {
		b.Run(o.Name, func(b *testing.B) {
			st := o.Open(b)
			fill(b, st, 2000)
			srv := New(Config{Store: st})
			hs := httptest.NewServer(srv)
			defer hs.Close()
			defer srv.Close()
			// fill gives twins fake keys; give each node a real one.
			keys := make([]ed25519.PrivateKey, 2000)
			for i := range keys {
				keys[i] = newKey()
				srv.keys.put(uint64(11+i), [ed25519.PublicKeySize]byte(keys[i].Public().(ed25519.PublicKey)))
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
			b.ResetTimer()
			parallel(b, 64, func(i int) bool {
				k := i % 2000
				body := fmt.Appendf(nil, `{"uptime":%d,"timestamp":%d}`, i, time.Now().Unix())
				req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/nodes/%d/uptime", hs.URL, k+1), bytes.NewReader(body))
				req.Header.Set(api.HeaderAuth, api.AuthHeader(keys[k], uint64(11+k), time.Now()))
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return false
				}
				io.Copy(io.Discard, resp.Body) // drained, so the connection is reused
				resp.Body.Close()
				if resp.StatusCode != 201 {
					b.Errorf("uptime: %d", resp.StatusCode)
					return false
				}
				return true
			})
		})
	}
}

// parallel runs do(0) ... do(b.N-1) on workers goroutines; a worker stops
// at the first do that returns false.
func parallel(b *testing.B, workers int, do func(i int) bool) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N || !do(i) {
					return
				}
			}
		}()
	}
	wg.Wait()
}
