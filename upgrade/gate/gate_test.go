package gate

import (
	"crypto/rand"
	"encoding/base64"
	"testing"
	"time"

	"github.com/gridnode/gridnode/upgrade/doc"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func channel() *doc.Channel {
	return &doc.Channel{
		Channel: "stable", Sequence: 1, Expires: t0.Add(720 * time.Hour), Version: "0.2.0",
		Waves: []doc.Wave{
			{At: t0, SharePPM: 10_000}, {At: t0.Add(24 * time.Hour), SharePPM: 100_000},
			{At: t0.Add(48 * time.Hour), SharePPM: 500_000}, {At: t0.Add(72 * time.Hour), SharePPM: doc.PPM},
		},
		CanaryFarms: []uint64{7},
	}
}

func nodes(n int) []Node {
	out := make([]Node, n)
	for i := range out {
		k := make([]byte, 32)
		rand.Read(k)
		out[i] = Node{ID: base64.StdEncoding.EncodeToString(k), Farm: uint64(1 + i%50)}
	}
	return out
}

func count(c *doc.Channel, h Hold, ns []Node, now time.Time, farmsToo bool) (in int) {
	for _, n := range ns {
		d := Allowed(c, h, n, now)
		if d.In && (farmsToo || !d.Canary) {
			in++
		}
	}
	return in
}

// Each wave's share of 10,000 random node ids is in the rollout, ± 2 %.
func TestWaveShares(t *testing.T) {
	c := channel()
	ns := nodes(10_000)
	for _, w := range []struct {
		at   time.Time
		want float64
	}{
		{t0.Add(-time.Second), 0}, {t0, 0.01}, {t0.Add(25 * time.Hour), 0.10},
		{t0.Add(49 * time.Hour), 0.50}, {t0.Add(100 * time.Hour), 1},
	} {
		var in, nonCanary int
		for _, n := range ns {
			if n.Farm == 7 {
				continue
			}
			nonCanary++
			if Allowed(c, Hold{}, n, w.at).In {
				in++
			}
		}
		got := float64(in) / float64(nonCanary)
		if got < w.want-0.02 || got > w.want+0.02 {
			t.Errorf("at %s: %.2f%% of the nodes in the rollout, want %.0f%% ± 2%%", w.at, 100*got, 100*w.want)
		}
	}
	// Monotonic: a node in an earlier wave stays in every later one.
	for _, n := range ns {
		if Allowed(c, Hold{}, n, t0).In && !Allowed(c, Hold{}, n, t0.Add(25*time.Hour)).In {
			t.Fatalf("node %s left the rollout when the next wave opened", n.ID)
		}
	}
	// Another version picks other nodes first.
	c2 := channel()
	c2.Version = "0.3.0"
	same := 0
	for _, n := range ns {
		if n.Farm != 7 && Allowed(c, Hold{}, n, t0).In && Allowed(c2, Hold{}, n, t0).In {
			same++
		}
	}
	if same > 10 {
		t.Errorf("%d nodes are in the first 1%% of both versions; the version must reshuffle the order", same)
	}
}

func TestCanaryFarms(t *testing.T) {
	c := channel()
	for _, n := range nodes(500) {
		d := Allowed(c, Hold{}, n, t0)
		if n.Farm == 7 && (!d.In || !d.Canary) {
			t.Fatalf("a canary farm's node is not in the first wave: %+v", d)
		}
		if n.Farm != 7 && d.Canary {
			t.Fatalf("farm %d's node counted as canary", n.Farm)
		}
		if Allowed(c, Hold{}, n, t0.Add(-time.Minute)).In {
			t.Fatal("a node is in a rollout before its first wave")
		}
	}
}

// The registrar's hold caps the signed share and never raises it.
func TestHoldIsACap(t *testing.T) {
	c := channel()
	ns := nodes(10_000)
	late := t0.Add(49 * time.Hour) // 50 % wave
	cap10 := uint32(100_000)
	cap90 := uint32(900_000)
	if got := Share(c, Hold{ShareCapPPM: &cap10}, late); got != 100_000 {
		t.Errorf("capped at 10%%: share %d", got)
	}
	if got := Share(c, Hold{ShareCapPPM: &cap90}, late); got != 500_000 {
		t.Errorf("a cap above the wave moved the rollout forward: share %d", got)
	}
	if got := Share(c, Hold{ShareCapPPM: &cap90}, t0.Add(-time.Hour)); got != 0 {
		t.Errorf("a cap opened a rollout before its first wave: share %d", got)
	}
	capped := count(c, Hold{ShareCapPPM: &cap10}, ns, late, true)
	free := count(c, Hold{}, ns, late, true)
	if capped >= free {
		t.Errorf("capped at 10%%: %d nodes, uncapped %d", capped, free)
	}
	if n := count(c, Hold{Paused: true}, ns, late, true); n != 0 {
		t.Errorf("paused: %d nodes in the rollout, canaries included, want 0", n)
	}
}

// Point is fixed by its inputs (a golden value), so the node, the simulator
// and netboot of any build agree on who is in a wave.
func TestPointIsStable(t *testing.T) {
	if got := Point("node-a", "1.0"); got != 667249 {
		t.Fatalf("Point(node-a, 1.0) = %d, want 667249: changing the hash reshuffles every rollout in flight", got)
	}
}
