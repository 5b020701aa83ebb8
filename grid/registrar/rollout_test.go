package registrar

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
	"github.com/gridnode/gridnode/grid/registrar/store/storetest"
	"github.com/gridnode/gridnode/upgrade/doc"
)

func TestHaltReason(t *testing.T) {
	for _, c := range []struct {
		n    api.RolloutNodes
		halt bool
	}{
		{api.RolloutNodes{Upgraded: 4, UpgradedOffline: 4}, false},                                 // below the 5 nodes
		{api.RolloutNodes{Upgraded: 10, UpgradedOffline: 1}, false},                                // 10 %: not more than 10 points
		{api.RolloutNodes{Upgraded: 10, UpgradedOffline: 1, RolledBack: 1}, true},                  // 20 %
		{api.RolloutNodes{Upgraded: 10, RolledBack: 2, Baseline: 100, BaselineOffline: 10}, false}, // 20 % against 10 %
		{api.RolloutNodes{Upgraded: 10, RolledBack: 3, Baseline: 100, BaselineOffline: 10}, true},
		{api.RolloutNodes{Upgraded: 1000, UpgradedOffline: 200, Baseline: 9000, BaselineOffline: 9}, true},
	} {
		r := haltReason("1.1", c.n, 0.1, 5)
		if (r != "") != c.halt {
			t.Errorf("%+v: %q, want halt %v", c.n, r, c.halt)
		}
	}
	r := haltReason("1.1", api.RolloutNodes{Upgraded: 1000, UpgradedOffline: 150, RolledBack: 50, Baseline: 9000, BaselineOffline: 90}, 0.1, 5)
	if want := "200 of the 1000 nodes that took 1.1 went offline (150) or rolled back (50): 20.0 %, against 1.0 % offline among the 9000 nodes that did not"; !strings.HasPrefix(r, want) {
		t.Errorf("reason %q, want it to start %q", r, want)
	}
}

func TestPreviousWaveShare(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &doc.Channel{Waves: doc.Schedule(t0, []uint32{10_000, 100_000, 1_000_000}, time.Hour)}
	for at, want := range map[time.Duration]uint32{-time.Minute: 0, 0: 0, 30 * time.Minute: 0, time.Hour: 10_000, 150 * time.Minute: 100_000} {
		if got := previousWaveShare(c, t0.Add(at)); got != want {
			t.Errorf("at %v: %d, want %d", at, got, want)
		}
	}
}

// TestHalt: the registrar halts a rollout by itself once the nodes that
// took its version go offline or roll back more than the others, over each
// store; the halt caps the rollout at the previous wave's share, says why,
// survives a pause and a resume, and only a new document clears it. The
// registrar's clock is the test's: "two report intervals later" is a step
// of it. (grid/simulate's test has the evaluator halt a rollout by itself.)
func TestHalt(t *testing.T) {
	for _, o := range storetest.Stores() {
		t.Run(o.Name, func(t *testing.T) {
			ctx := context.Background()
			st := o.Open(t)
			var clock atomic.Int64
			clock.Store(time.Now().UnixNano())
			now := func() time.Time { return time.Unix(0, clock.Load()) }
			admin := newEnv(t, st, Config{}).account()
			relKey, _ := doc.GenerateKey()
			const interval = 10 * time.Minute
			e := newEnv(t, st, Config{AdminTwin: admin.id, ReportInterval: interval, Now: now,
				ReleaseKeys: []doc.PublicKey{doc.PublicKey(relKey.Public().(ed25519.PublicKey))}})

			// 10 nodes took 1.1, 10 did not.
			stamp := store.Stamp(now())
			farmer, _ := st.CreateAccount(ctx, api.Account{PublicKey: "farmer", CreatedAt: stamp, UpdatedAt: stamp})
			farm, _ := st.CreateFarm(ctx, api.Farm{FarmName: "halting", TwinID: farmer, CreatedAt: stamp, UpdatedAt: stamp})
			var ids []uint64
			for i := range 20 {
				tw, _ := st.CreateAccount(ctx, api.Account{PublicKey: fmt.Sprint("node-", i), CreatedAt: stamp, UpdatedAt: stamp})
				id, err := st.CreateNode(ctx, api.Node{FarmID: farm, TwinID: tw, SerialNumber: "S", CreatedAt: stamp, UpdatedAt: stamp})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			report := func(skip map[int]bool, rolledBack int) {
				t.Helper()
				var us []store.Uptime
				for i, id := range ids {
					if skip[i] {
						continue
					}
					o := api.OSState{OSVersion: "1.0", Channel: "stable"}
					if i < 10 {
						o.OSVersion = "1.1"
					}
					if i == rolledBack {
						o = api.OSState{OSVersion: "1.0", Channel: "stable", RolledBack: true, RolledBackFrom: "1.1"}
					}
					us = append(us, store.Uptime{NodeID: id, Uptime: 1, At: store.Stamp(now()), OS: o})
				}
				if err := st.ReportUptime(ctx, us); err != nil {
					t.Fatal(err)
				}
			}
			// Waves of 10 %, 50 %, 100 % an hour apart, the second in force.
			start := now().Add(-90 * time.Minute)
			d, _ := doc.SignChannel(doc.Channel{Channel: "stable", Sequence: 1, Expires: now().Add(24 * time.Hour), Version: "1.1",
				Release: "r@sha256:" + strings.Repeat("ab", 32), Waves: doc.Schedule(start, []uint32{100_000, 500_000, 1_000_000}, time.Hour)}, relKey)
			e.expect(200, "PUT", "/api/v1/channels/stable", d, admin, nil)
			report(nil, -1)

			// evaluated runs an evaluation (as the registrar's evaluator
			// does every quarter interval) and reads the status.
			evaluated := func() api.ChannelStatus {
				t.Helper()
				if err := e.srv.evaluateAll(ctx); err != nil {
					t.Fatal(err)
				}
				var s api.ChannelStatus
				e.expect(200, "GET", "/api/v1/channels/stable/status", nil, nil, &s)
				if s.Nodes == nil {
					t.Fatalf("no counts after an evaluation: %+v", s)
				}
				return s
			}
			s := evaluated()
			if s.Halt != nil || s.Nodes.Upgraded != 10 || s.Nodes.Baseline != 10 || s.Nodes.UpgradedOffline != 0 {
				t.Fatalf("healthy rollout: %+v halt %+v", s.Nodes, s.Halt)
			}

			// Two intervals later, 2 upgraded nodes and 1 other stopped
			// reporting: 20 % against 10 %, not more than 10 points worse.
			clock.Add(int64(2 * interval))
			report(map[int]bool{0: true, 1: true, 10: true}, -1)
			s = evaluated()
			if s.Halt != nil || s.Nodes.UpgradedOffline != 2 || s.Nodes.BaselineOffline != 1 {
				t.Fatalf("20 %% against 10 %%: %+v halt %+v", s.Nodes, s.Halt)
			}
			// One more rolls back: 30 % against 10 %.
			report(map[int]bool{0: true, 1: true, 10: true}, 2)
			s = evaluated()
			if s.Halt == nil || !strings.Contains(s.Halt.Reason, "3 of the 10 nodes that took 1.1 went offline (2) or rolled back (1): 30.0 %, against 10.0 %") {
				t.Fatalf("30 %% against 10 %%: %+v halt %+v", s.Nodes, s.Halt)
			}
			if s.Hold.ShareCapPPM == nil || *s.Hold.ShareCapPPM != 100_000 || s.SharePPM != 100_000 || s.Wave != 2 || s.Hold.Paused {
				t.Fatalf("a halt in wave 2 caps at wave 1's share: %+v", s)
			}
			// Nodes poll the hold.
			if _, _, cs := e.channelGet("stable", ""); cs.Hold.ShareCapPPM == nil || *cs.Hold.ShareCapPPM != 100_000 {
				t.Fatalf("nodes get hold %+v", cs.Hold)
			}
			// A pause and a resume keep the halt; the clock moving into
			// wave 3 does not lift it.
			asAdmin := func(method, path string, body any) {
				t.Helper()
				h := http.Header{api.HeaderAuth: {api.AuthHeader(admin.key, admin.id, now())}} // signed on the registrar's clock
				if code, b := e.callH(method, path, body, nil, h, nil); code != 200 {
					t.Fatalf("%s %s: %d %s", method, path, code, b)
				}
			}
			asAdmin("POST", "/api/v1/channels/stable/pause", nil)
			asAdmin("POST", "/api/v1/channels/stable/resume", nil)
			clock.Add(int64(time.Hour))
			s = api.ChannelStatus{}
			e.expect(200, "GET", "/api/v1/channels/stable/status", nil, nil, &s)
			if s.Halt == nil || s.Wave != 3 || s.SharePPM != 100_000 {
				t.Fatalf("after pause, resume and wave 3: %+v", s)
			}
			// Only a newly signed document clears it.
			d2, _ := doc.SignChannel(doc.Channel{Channel: "stable", Sequence: 2, Expires: now().Add(24 * time.Hour), Version: "1.2",
				Release: "r@sha256:" + strings.Repeat("cd", 32), Waves: doc.Schedule(now(), []uint32{100_000}, time.Hour)}, relKey)
			asAdmin("PUT", "/api/v1/channels/stable", d2)
			s = evaluated()
			if s.Halt != nil || s.Hold.ShareCapPPM != nil || s.Nodes.Upgraded != 0 {
				t.Fatalf("after a new document: %+v", s)
			}
		})
	}
}
