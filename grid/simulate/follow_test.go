package simulate

import (
	"context"
	"crypto/ed25519"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar"
	"github.com/gridnode/gridnode/grid/registrar/registrartest"
	"github.com/gridnode/gridnode/internal/testutil"
	"github.com/gridnode/gridnode/upgrade/doc"
)

// TestFollowRollout: 10,000 simulated nodes in 20 farms follow a channel
// on the project's registrar (in-process, SQLite). The document's first
// wave is 10 % and two farms are canary farms: 10 % ± 2 % of the other
// nodes take the version, and every canary farm's node does. A fifth of
// the nodes that take it stop reporting: the registrar halts the rollout
// by itself (caps it at the previous wave's share, 0) within two report
// intervals of the last of them stopping, and the nodes see the hold.
func TestFollowRollout(t *testing.T) {
	const (
		nodes  = 10_000
		farms  = 20
		report = 10 * time.Second // the nodes' uptime interval
		poll   = 10 * time.Second
	)
	ctx := context.Background()
	relKey, _ := doc.GenerateKey()
	pub := doc.PublicKey(relKey.Public().(ed25519.PublicKey))
	r := registrartest.Start(t, registrar.Config{ReleaseKeys: []doc.PublicKey{pub}, ReportInterval: report, HaltShare: 0.1})
	admin := r.Admin

	start := time.Now()
	reg, err := Run(ctx, Config{Registrar: r.URL, Nodes: nodes, Farms: farms, Concurrency: 64, AssumeNew: true, KeepIDs: true, KeepKeys: true,
		Mode: Storm, Retries: 5})
	if err != nil || reg.Registered != nodes {
		t.Fatalf("registering %d nodes: %d registered, %v %v", nodes, reg.Registered, err, reg.Errors)
	}
	t.Logf("%d nodes registered in %.1fs", nodes, time.Since(start).Seconds())

	canary := []uint64{reg.FarmIDs[3], reg.FarmIDs[11]}
	d, err := doc.SignChannel(doc.Channel{Channel: "stable", Sequence: 1, Expires: time.Now().Add(time.Hour), Version: "2.0",
		Release: "registry.example/gridnode/release@sha256:" + strings.Repeat("ab", 32),
		Waves:   doc.Schedule(time.Now().Add(-time.Minute), []uint32{100_000, 1_000_000}, time.Hour), CanaryFarms: canary}, relKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.PutChannel(ctx, "stable", d); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var lastStop time.Time
	var stopping int
	var held *doc.Hold // the last hold a node saw
	followCtx, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing()
	done := make(chan *Result, 1)
	go func() {
		res, err := Run(followCtx, Config{Registrar: r.URL, Nodes: nodes, Farms: farms, Concurrency: 64, Known: reg.IDs, Mode: Follow,
			Duration: 5 * time.Minute, UptimeInterval: report, Retries: 5,
			FollowChannel: &FollowConfig{Channel: "stable", Keys: []doc.PublicKey{pub}, From: "1.0", Poll: poll, StopShare: 0.2,
				OnUpgrade: func(u Upgrade) {
					if u.Stopping {
						mu.Lock()
						lastStop, stopping = u.At, stopping+1
						mu.Unlock()
					}
				},
				OnHold: func(h doc.Hold) { mu.Lock(); held = &h; mu.Unlock() }}})
		if err != nil && err != context.Canceled {
			t.Errorf("follow: %v", err)
		}
		done <- res
	}()

	var status api.ChannelStatus
	testutil.Eventually(t, 2*time.Minute, func() bool {
		status, err = admin.ChannelStatus(ctx, "stable")
		return err == nil && status.Halt != nil
	}, "the registrar did not halt the rollout: %+v", &status)
	// The nodes see it at their next poll.
	testutil.Eventually(t, time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return held != nil && held.ShareCapPPM != nil
	}, "no node saw the halt's hold")
	stopFollowing()
	res := <-done

	mu.Lock()
	defer mu.Unlock()
	t.Logf("halted %v after the last of %d nodes stopped: %s", status.Halt.At.Sub(lastStop).Round(time.Millisecond), stopping, status.Halt.Reason)
	if lag := status.Halt.At.Sub(lastStop); lag > 2*report {
		t.Errorf("halted %v after the last stop, more than two report intervals (%v)", lag, 2*report)
	}
	if status.Hold.ShareCapPPM == nil || *status.Hold.ShareCapPPM != 0 || status.SharePPM != 0 {
		t.Errorf("a halt in the first wave caps the share at 0: %+v", status.Hold)
	}
	f := res.Follow
	var buf strings.Builder
	res.WriteText(&buf)
	t.Logf("\n%s\nerrors by status (not counting the requests cut off at the end): %v", buf.String(), res.Errors)
	if res.Ops[OpUptime].Errors > res.Ops[OpUptime].Count/100 {
		t.Errorf("uptime reports failed: %v", res.Errors)
	}
	perFarm := nodes / farms
	others := nodes - len(canary)*perFarm
	if f.Canary != uint64(len(canary)*perFarm) {
		t.Errorf("%d canary farms' nodes upgraded, want all %d", f.Canary, len(canary)*perFarm)
	}
	if got := f.Upgraded - f.Canary; got < uint64(others)*8/100 || got > uint64(others)*12/100 {
		t.Errorf("%d of the %d other nodes upgraded, want 10 %% ± 2 %%", got, others)
	}
	if s := float64(f.Stopped) / float64(f.Upgraded); s < 0.15 || s > 0.25 {
		t.Errorf("%d of %d upgraded nodes stopped: want about a fifth", f.Stopped, f.Upgraded)
	}
	if f.Hold.ShareCapPPM == nil || *f.Hold.ShareCapPPM != 0 {
		t.Errorf("the nodes last saw hold %+v, want the halt's cap", f.Hold)
	}
	if f.NotModified == 0 || f.Refused != 0 {
		t.Errorf("polls: %d not modified (want some), %d refused", f.NotModified, f.Refused)
	}
}
