package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
)

// channels checks release channels, their holds, what nodes report of
// their release, GPUs in node records, and the rollout counts (issue 13).
func channels(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := store.Stamp(time.Now())

	// Documents: a sequence only grows; a new one clears the hold.
	doc1 := []byte(`{"type":"gridnode.channel.v1","payload":"e30=","signatures":[]}` + "\n")
	c, err := st.PutChannel(ctx, store.Channel{Name: "stable", Document: doc1, Sequence: 3, Version: "1.0", StoredAt: now})
	if err != nil || c.Revision == 0 || c.Sequence != 3 || string(c.Document) != string(doc1) || c.Hold.Paused || c.Hold.ShareCap != nil {
		t.Fatalf("PutChannel = %+v, %v", c, err)
	}
	for _, seq := range []uint64{3, 2} {
		if _, err := st.PutChannel(ctx, store.Channel{Name: "stable", Document: []byte("{}"), Sequence: seq, Version: "0.9", StoredAt: now}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("PutChannel sequence %d over 3: %v, want ErrConflict", seq, err)
		}
	}
	if got, err := st.Channel(ctx, "stable"); err != nil || string(got.Document) != string(doc1) || got.Version != "1.0" || !got.StoredAt.Equal(now) || got.Revision != c.Revision {
		t.Fatalf("Channel after refused writes = %+v, %v", got, err)
	}
	if _, err := st.Channel(ctx, "beta"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Channel(beta): %v, want ErrNotFound", err)
	}
	capPPM := uint32(10_000)
	hold := store.Hold{Paused: true, ShareCap: &capPPM, PauseAt: now, PauseBy: 7, PauseReason: "looking", HaltAt: now, HaltReason: "too many offline"}
	held, err := st.SetHold(ctx, "stable", c.Revision, hold)
	if err != nil || held.Revision <= c.Revision || !held.Hold.Paused || *held.Hold.ShareCap != capPPM || held.Hold.PauseBy != 7 ||
		!held.Hold.PauseAt.Equal(now) || held.Hold.HaltReason != "too many offline" || !held.Hold.HaltAt.Equal(now) {
		t.Fatalf("SetHold = %+v, %v", held, err)
	}
	if _, err := st.SetHold(ctx, "stable", c.Revision, store.Hold{}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("SetHold on a stale revision: %v, want ErrConflict", err)
	}
	if _, err := st.SetHold(ctx, "beta", 1, store.Hold{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetHold(beta): %v, want ErrNotFound", err)
	}
	c2, err := st.PutChannel(ctx, store.Channel{Name: "stable", Document: []byte(`{"x":2}`), Sequence: 4, Version: "1.1", StoredAt: now})
	if err != nil || c2.Revision <= held.Revision || c2.Hold.Paused || c2.Hold.ShareCap != nil || !c2.Hold.HaltAt.IsZero() || c2.Hold.HaltReason != "" || c2.Hold.PauseBy != 0 {
		t.Fatalf("a new document must clear the hold: %+v, %v", c2, err)
	}
	st.PutChannel(ctx, store.Channel{Name: "beta", Document: []byte("{}"), Sequence: 1, Version: "2.0", StoredAt: now})
	if all, err := st.Channels(ctx); err != nil || len(all) != 2 || all[0].Name != "beta" || all[1].Name != "stable" {
		t.Fatalf("Channels = %+v, %v", all, err)
	}

	// Nodes of their own, with GPUs.
	farmer, _ := st.CreateAccount(ctx, api.Account{PublicKey: "rollout-farmer", CreatedAt: now, UpdatedAt: now})
	farm, err := st.CreateFarm(ctx, api.Farm{FarmName: "rollouts", TwinID: farmer, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	gpu := api.GPU{Address: "0000:01:00.0", Vendor: "NVIDIA Corporation", Model: "T4", VendorID: "10de", DeviceID: "1eb8", Class: "030200", IOMMUGroup: "3"}
	node := func(i int, gpus []api.GPU) uint64 {
		tw, err := st.CreateAccount(ctx, api.Account{PublicKey: fmt.Sprintf("rollout-%d", i), CreatedAt: now, UpdatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		id, err := st.CreateNode(ctx, api.Node{FarmID: farm, TwinID: tw, SerialNumber: "R", CreatedAt: now, UpdatedAt: now, GPUs: gpus,
			Interfaces: []api.Interface{{Name: "eth0", Mac: fmt.Sprintf("02:00:00:00:00:%02x", i)}}})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	ids := make([]uint64, 8)
	for i := range ids {
		var g []api.GPU
		if i == 0 {
			g = []api.GPU{gpu}
		}
		ids[i] = node(i, g)
	}
	if n, err := st.Node(ctx, ids[0]); err != nil || len(n.GPUs) != 1 || n.GPUs[0] != gpu || n.OSVersion != "" || n.OSVersionSince != nil {
		t.Fatalf("node with a GPU = %+v, %v", n, err)
	}
	if n, _ := st.Node(ctx, ids[1]); n.GPUs != nil {
		t.Fatalf("node without GPUs has %+v", n.GPUs)
	}
	if err := st.UpdateNode(ctx, ids[1], api.UpdateNode{FarmID: farm, SerialNumber: "R", GPUs: []api.GPU{gpu, gpu}}, now); err != nil {
		t.Fatal(err)
	}
	if ns, _ := st.Nodes(ctx, store.NodeFilter{NodeID: ids[1]}); len(ns) != 1 || len(ns[0].GPUs) != 2 {
		t.Fatalf("Nodes after a PATCH with two GPUs = %+v", ns)
	}

	// What nodes report of their release: version_since moves only when
	// the version changes, a report without a version changes nothing of
	// it, and a rollback stays until another version is reported.
	report := func(id uint64, at time.Time, o api.OSState) {
		t.Helper()
		if err := st.ReportUptime(ctx, []store.Uptime{{NodeID: id, Uptime: 1, At: at, OS: o}}); err != nil {
			t.Fatal(err)
		}
	}
	t0 := now.Add(-time.Hour)
	report(ids[0], t0, api.OSState{OSVersion: "1.0", Channel: "stable"})
	report(ids[0], t0.Add(time.Minute), api.OSState{OSVersion: "1.0", Channel: "stable"})
	if n, _ := st.Node(ctx, ids[0]); n.OSVersion != "1.0" || n.Channel != "stable" || n.OSVersionSince == nil || !n.OSVersionSince.Equal(t0) || n.RolledBack {
		t.Fatalf("after two reports of 1.0: %+v since %v", n.OSState, n.OSVersionSince)
	}
	report(ids[0], t0.Add(2*time.Minute), api.OSState{})
	if n, _ := st.Node(ctx, ids[0]); n.OSVersion != "1.0" || n.Channel != "stable" || !n.LastSeen.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("a report without os_version changed the release: %+v", n)
	}
	report(ids[0], t0.Add(3*time.Minute), api.OSState{OSVersion: "1.1", Channel: "stable"})
	report(ids[0], t0.Add(4*time.Minute), api.OSState{OSVersion: "1.0", Channel: "stable", RolledBack: true, RolledBackFrom: "1.1"})
	report(ids[0], t0.Add(5*time.Minute), api.OSState{OSVersion: "1.0", Channel: "stable"})
	if n, _ := st.Node(ctx, ids[0]); n.OSVersion != "1.0" || !n.RolledBack || n.RolledBackFrom != "1.1" || !n.OSVersionSince.Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("after a rollback from 1.1: %+v since %v", n.OSState, n.OSVersionSince)
	}
	report(ids[0], t0.Add(-time.Minute), api.OSState{OSVersion: "0.1"}) // older: ignored whole
	report(ids[0], t0.Add(6*time.Minute), api.OSState{OSVersion: "1.2", Channel: "stable"})
	if n, _ := st.Node(ctx, ids[0]); n.OSVersion != "1.2" || n.RolledBack || !n.OSVersionSince.Equal(t0.Add(6*time.Minute)) {
		t.Fatalf("a new version must clear the rollback: %+v", n.OSState)
	}

	// Rollout counts for stable at version 1.1, online since now-10m,
	// baseline since now-1h.
	recent, stale := now.Add(-time.Minute), now.Add(-30*time.Minute)
	report(ids[0], recent, api.OSState{OSVersion: "1.1", Channel: "stable"})                                          // upgraded, online
	report(ids[1], stale, api.OSState{OSVersion: "1.1", Channel: "stable"})                                           // upgraded, offline
	report(ids[2], recent, api.OSState{OSVersion: "1.0", Channel: "stable", RolledBack: true, RolledBackFrom: "1.1"}) // rolled back
	report(ids[3], recent, api.OSState{OSVersion: "1.0"})                                                             // no channel: counted
	report(ids[4], stale, api.OSState{OSVersion: "1.0", Channel: "stable"})                                           // baseline, offline
	report(ids[5], now.Add(-2*time.Hour), api.OSState{OSVersion: "1.0", Channel: "stable"})                           // not seen since
	report(ids[6], recent, api.OSState{OSVersion: "2.0", Channel: "beta"})                                            // another channel
	report(ids[7], recent, api.OSState{})                                                                             // no version
	got, err := st.RolloutCounts(ctx, store.RolloutQuery{Channel: "stable", Version: "1.1", OnlineSince: now.Add(-10 * time.Minute), Since: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want := api.RolloutNodes{Versions: []api.VersionCount{{Version: "1.0", Nodes: 4, Online: 2}, {Version: "1.1", Nodes: 2, Online: 1}},
		Upgraded: 3, UpgradedOffline: 1, RolledBack: 1, Baseline: 2, BaselineOffline: 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("RolloutCounts =\n%+v, want\n%+v", got, want)
	}
}
