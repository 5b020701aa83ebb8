package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
)

// Run is the conformance suite: every store must pass it.
func Run(t *testing.T, open func(t testing.TB) store.Store) {
	ctx := context.Background()
	st := open(t)
	now := store.Stamp(time.Now())

	// Accounts.
	t1, err := st.CreateAccount(ctx, api.Account{PublicKey: "key1", Relays: []string{"r1"}, RMBEncKey: "enc", CreatedAt: now, UpdatedAt: now})
	if err != nil || t1 == 0 {
		t.Fatalf("CreateAccount: %d, %v", t1, err)
	}
	if _, err := st.CreateAccount(ctx, api.Account{PublicKey: "key1", CreatedAt: now, UpdatedAt: now}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate key: got %v, want ErrConflict", err)
	}
	t2, _ := st.CreateAccount(ctx, api.Account{PublicKey: "key2", CreatedAt: now, UpdatedAt: now})
	a, err := st.AccountByKey(ctx, "key1")
	if err != nil || a.TwinID != t1 || a.RMBEncKey != "enc" || len(a.Relays) != 1 || !a.CreatedAt.Equal(now) {
		t.Fatalf("AccountByKey = %+v, %v", a, err)
	}
	if a, err := st.Account(ctx, t2); err != nil || a.PublicKey != "key2" || a.Relays == nil {
		t.Fatalf("Account(t2) = %+v, %v (relays must be [] not null)", a, err)
	}
	if _, err := st.Account(ctx, 999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Account(999): %v, want ErrNotFound", err)
	}
	if err := st.UpdateAccount(ctx, t1, api.UpdateAccount{Relays: []string{"a", "b"}, RMBEncKey: "x"}, now); err != nil {
		t.Fatal(err)
	}
	if a, _ := st.Account(ctx, t1); len(a.Relays) != 2 || a.RMBEncKey != "x" {
		t.Fatalf("after UpdateAccount: %+v", a)
	}
	if err := st.UpdateAccount(ctx, 999, api.UpdateAccount{}, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateAccount(999): %v", err)
	}

	// Farms.
	f1, err := st.CreateFarm(ctx, api.Farm{FarmName: "farmone", TwinID: t1, StellarAddress: "G1", Dedicated: true, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateFarm(ctx, api.Farm{FarmName: "farmone", TwinID: t2, CreatedAt: now, UpdatedAt: now}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate farm name: %v", err)
	}
	f2, _ := st.CreateFarm(ctx, api.Farm{FarmName: "farmtwo", TwinID: t2, CreatedAt: now, UpdatedAt: now})
	if f, err := st.Farm(ctx, f1); err != nil || f.FarmName != "farmone" || !f.Dedicated || f.TwinID != t1 {
		t.Fatalf("Farm = %+v, %v", f, err)
	}
	if fs, _ := st.Farms(ctx, store.FarmFilter{TwinID: t2}); len(fs) != 1 || fs[0].FarmID != f2 {
		t.Fatalf("Farms(twin t2) = %+v", fs)
	}
	if fs, _ := st.Farms(ctx, store.FarmFilter{FarmName: "farmone"}); len(fs) != 1 || fs[0].FarmID != f1 {
		t.Fatalf("Farms(name) = %+v", fs)
	}
	if fs, _ := st.Farms(ctx, store.FarmFilter{Limit: 1, Offset: 1}); len(fs) != 1 || fs[0].FarmID != f2 {
		t.Fatalf("Farms(page 2 of size 1) = %+v", fs)
	}
	if err := st.UpdateFarm(ctx, f2, api.UpdateFarm{FarmName: "farmone", StellarAddress: "G"}, now); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("renaming to a taken name: %v", err)
	}

	// Nodes.
	n := api.Node{FarmID: f1, TwinID: t1, Location: api.Location{Country: "BE", City: "Gent", Longitude: "3.7", Latitude: "51"},
		Resources: api.Resources{CRU: 4, MRU: 8 << 30, SRU: 1 << 40, HRU: 2 << 40}, SerialNumber: "S1",
		Interfaces: []api.Interface{{Name: "eth0", Mac: "00:11", IPs: api.IPs{"10.0.0.2/24"}}}, CreatedAt: now, UpdatedAt: now}
	n1, err := st.CreateNode(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateNode(ctx, n); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second node for a twin: %v", err)
	}
	bad := n
	bad.TwinID, bad.FarmID = t2, 999
	if _, err := st.CreateNode(ctx, bad); !errors.Is(err, store.ErrNoFarm) {
		t.Fatalf("node on unknown farm: %v", err)
	}
	n.TwinID, n.FarmID = t2, f2
	n2, err := st.CreateNode(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Node(ctx, n1)
	if err != nil || got.Resources.MRU != 8<<30 || got.Location.City != "Gent" || len(got.Interfaces) != 1 || got.Interfaces[0].IPs[0] != "10.0.0.2/24" || got.LastSeen != nil || got.Approved {
		t.Fatalf("Node = %+v, %v", got, err)
	}
	if tw, key, err := st.NodeOwner(ctx, n2); err != nil || tw != t2 || key != "key2" {
		t.Fatalf("NodeOwner = %d, %q, %v", tw, key, err)
	}
	if _, _, err := st.NodeOwner(ctx, 999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("NodeOwner(999): %v", err)
	}
	if _, err := st.Node(ctx, 999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Node(999): %v", err)
	}
	if err := st.ApproveNode(ctx, n1, now); err != nil {
		t.Fatal(err)
	}
	up := api.UpdateNode{FarmID: f1, Resources: api.Resources{CRU: 8}, SerialNumber: "S1", Interfaces: n.Interfaces}
	if err := st.UpdateNode(ctx, n1, up, now); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Node(ctx, n1); !got.Approved || got.Resources.CRU != 8 {
		t.Fatalf("same farm must keep approved: %+v", got)
	}
	up.FarmID = f2
	if err := st.UpdateNode(ctx, n1, up, now); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Node(ctx, n1); got.Approved || got.FarmID != f2 {
		t.Fatalf("farm change must reset approved: %+v", got)
	}
	up.FarmID = 999
	if err := st.UpdateNode(ctx, n1, up, now); !errors.Is(err, store.ErrNoFarm) {
		t.Fatalf("update to unknown farm: %v", err)
	}

	// Uptime and online filters.
	old := now.Add(-2 * time.Hour)
	if err := st.ReportUptime(ctx, []store.Uptime{{NodeID: n1, Uptime: 10, At: now}, {NodeID: n2, Uptime: 5, At: old}, {NodeID: 999, At: now}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Node(ctx, n1); got.LastSeen == nil || !got.LastSeen.Equal(now) {
		t.Fatalf("last_seen after uptime = %v, want %v", got.LastSeen, now)
	}
	yes, no := true, false
	since := now.Add(-api.OnlineWindow)
	if ns, _ := st.Nodes(ctx, store.NodeFilter{Online: &yes, OnlineSince: since}); len(ns) != 1 || ns[0].NodeID != n1 {
		t.Fatalf("online nodes = %+v", ns)
	}
	if ns, _ := st.Nodes(ctx, store.NodeFilter{Online: &no, OnlineSince: since}); len(ns) != 1 || ns[0].NodeID != n2 {
		t.Fatalf("offline nodes = %+v", ns)
	}
	if ns, _ := st.Nodes(ctx, store.NodeFilter{SeenSince: now.Add(-3 * time.Hour)}); len(ns) != 2 {
		t.Fatalf("seen in 3 h = %d nodes, want 2", len(ns))
	}
	if ns, _ := st.Nodes(ctx, store.NodeFilter{TwinID: t2}); len(ns) != 1 || ns[0].NodeID != n2 {
		t.Fatalf("nodes of twin t2 = %+v", ns)
	}
	if ns, _ := st.Nodes(ctx, store.NodeFilter{FarmID: f2, Limit: 1, Offset: 1}); len(ns) != 1 || ns[0].NodeID != n2 {
		t.Fatalf("page 2 of farm f2 = %+v", ns)
	}
	// An older report does not move last_seen back.
	st.ReportUptime(ctx, []store.Uptime{{NodeID: n1, At: old}})
	if got, _ := st.Node(ctx, n1); !got.LastSeen.Equal(now) {
		t.Fatalf("older report moved last_seen to %v", got.LastSeen)
	}

	// Stats and samples.
	s, err := st.Stats(ctx, since)
	if err != nil || s.Nodes != 2 || s.Online != 1 || s.Farms != 2 || s.Accounts != 2 || s.Capacity.CRU != 12 {
		t.Fatalf("Stats = %+v, %v", s, err)
	}
	for i := range 3 {
		if err := st.AddSample(ctx, store.Sample{At: now.Add(time.Duration(i-2) * time.Minute), Online: int64(i), Total: 2}); err != nil {
			t.Fatal(err)
		}
	}
	st.AddSample(ctx, store.Sample{At: now, Online: 7, Total: 2}) // replaces
	if ss, _ := st.Samples(ctx, now.Add(-90*time.Second)); len(ss) != 2 || ss[1].Online != 7 {
		t.Fatalf("Samples = %+v", ss)
	}

	concurrent(t, st, f1)

	// Settings.
	if _, err := st.ZOSVersion(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unset version: %v", err)
	}
	st.SetZOSVersion(ctx, "v1")
	st.SetZOSVersion(ctx, "v2")
	if v, err := st.ZOSVersion(ctx); err != nil || v != "v2" {
		t.Fatalf("ZOSVersion = %q, %v", v, err)
	}

	channels(t, st)
}

// concurrent makes the writes a booting grid makes, many at once, so that
// they are committed in groups: each key gets one account and each twin one
// node however many ask at once, a duplicate or a node of an unknown farm
// fails alone, and the others are all written.
func concurrent(t *testing.T, st store.Store, farm uint64) {
	ctx := context.Background()
	now := store.Stamp(time.Now())
	const keys, tries = 60, 4
	var mu sync.Mutex
	twins := map[string][]uint64{}
	var wg sync.WaitGroup
	for i := range keys * tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("concurrent-%d", i%keys)
			id, err := st.CreateAccount(ctx, api.Account{PublicKey: key, CreatedAt: now, UpdatedAt: now})
			if err != nil && !errors.Is(err, store.ErrConflict) {
				t.Errorf("CreateAccount(%s): %v", key, err)
				return
			}
			if err == nil {
				mu.Lock()
				twins[key] = append(twins[key], id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var all []uint64
	for k := range keys {
		key := fmt.Sprintf("concurrent-%d", k)
		ids := twins[key]
		if len(ids) != 1 {
			t.Fatalf("%d concurrent creations of %s: %d succeeded, want 1", tries, key, len(ids))
		}
		if a, err := st.AccountByKey(ctx, key); err != nil || a.TwinID != ids[0] {
			t.Fatalf("AccountByKey(%s) = %+v, %v; want twin %d", key, a, err, ids[0])
		}
		all = append(all, ids[0])
	}
	// Twins whose only node names an unknown farm, among the others.
	var strays []uint64
	for i := range 10 {
		id, err := st.CreateAccount(ctx, api.Account{PublicKey: fmt.Sprintf("stray-%d", i), CreatedAt: now, UpdatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		strays = append(strays, id)
	}
	nodes := map[uint64][]uint64{}
	var noFarm, conflicts int
	// A write that fails for another reason (here a twin without an
	// account, which the server never lets through) fails alone too.
	var orphanErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, orphanErr = st.CreateNode(ctx, api.Node{FarmID: farm, TwinID: 987654, SerialNumber: "C", CreatedAt: now, UpdatedAt: now, Interfaces: []api.Interface{{Name: "eth0"}}})
	}()
	for i := range len(all)*tries + len(strays) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tw, f := uint64(0), farm
			if i < len(all)*tries {
				tw = all[i%len(all)]
			} else {
				tw, f = strays[i-len(all)*tries], 999
			}
			id, err := st.CreateNode(ctx, api.Node{FarmID: f, TwinID: tw, SerialNumber: "C", CreatedAt: now, UpdatedAt: now,
				Interfaces: []api.Interface{{Name: "eth0"}}, Resources: api.Resources{CRU: 1}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && f == farm:
				nodes[tw] = append(nodes[tw], id)
			case errors.Is(err, store.ErrNoFarm) && f == 999:
				noFarm++
			case errors.Is(err, store.ErrConflict) && f == farm:
				conflicts++
			default:
				t.Errorf("CreateNode(twin %d, farm %d) = %d, %v", tw, f, id, err)
			}
		}()
	}
	wg.Wait()
	if orphanErr == nil {
		t.Error("a node of a twin without an account was created")
	}
	if noFarm != len(strays) {
		t.Errorf("%d of %d nodes of an unknown farm refused with ErrNoFarm", noFarm, len(strays))
	}
	for _, tw := range all {
		if len(nodes[tw]) != 1 {
			t.Fatalf("twin %d: %d nodes created, want 1", tw, len(nodes[tw]))
		}
		if owner, key, err := st.NodeOwner(ctx, nodes[tw][0]); err != nil || owner != tw || !strings.HasPrefix(key, "concurrent-") {
			t.Fatalf("NodeOwner(%d) = %d, %q, %v; want twin %d", nodes[tw][0], owner, key, err, tw)
		}
	}
	if conflicts != len(all)*(tries-1) {
		t.Fatalf("%d conflicts, want %d", conflicts, len(all)*(tries-1))
	}
	for _, tw := range strays {
		if ns, err := st.Nodes(ctx, store.NodeFilter{TwinID: tw}); err != nil || len(ns) != 0 {
			t.Fatalf("twin %d of a refused node has nodes %+v, %v", tw, ns, err)
		}
	}
	// Uptime reports in many small groups at once.
	for _, tw := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.ReportUptime(ctx, []store.Uptime{{NodeID: nodes[tw][0], Uptime: 7, At: now}}); err != nil {
				t.Errorf("ReportUptime: %v", err)
			}
		}()
	}
	wg.Wait()
	for _, tw := range all {
		if n, err := st.Node(ctx, nodes[tw][0]); err != nil || n.LastSeen == nil || !n.LastSeen.Equal(now) {
			t.Fatalf("node %d after uptime: %+v, %v", nodes[tw][0], n, err)
		}
	}
}
