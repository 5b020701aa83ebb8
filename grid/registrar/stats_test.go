package registrar

import (
	"context"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/registrar/store"
)

// slowStats is a store whose totals take cost to compute.
type slowStats struct {
	store.Store
	cost  time.Duration
	calls int
}

func (s *slowStats) Stats(context.Context, time.Time) (store.Stats, error) {
	s.calls++
	time.Sleep(s.cost) // stands for a scan of every node, not for synchronisation
	return store.Stats{Nodes: int64(s.calls)}, nil
}

// Totals that are quick to compute are always fresh; slow ones are reused
// for a while, by every caller.
func TestStatsCache(t *testing.T) {
	ctx := context.Background()
	fast := &slowStats{}
	c := &statsCache{Store: fast}
	for i := 1; i <= 3; i++ {
		if v, _ := c.Stats(ctx, time.Now()); v.Nodes != int64(i) {
			t.Fatalf("quick totals reused: call %d gave %d", i, v.Nodes)
		}
	}
	slow := &slowStats{cost: 2 * statsCacheAbove}
	c = &statsCache{Store: slow}
	since := time.Now()
	c.Stats(ctx, since)
	if v, _ := c.Stats(ctx, since.Add(time.Millisecond)); v.Nodes != 1 || slow.calls != 1 {
		t.Fatalf("slow totals computed again at once: %d calls", slow.calls)
	}
	// Asked for another window far off: computed again.
	if v, _ := c.Stats(ctx, since.Add(time.Hour)); v.Nodes != 2 {
		t.Fatalf("totals for another window reused: %d", v.Nodes)
	}
}
