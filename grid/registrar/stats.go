package registrar

import (
	"context"
	"sync"
	"time"

	"github.com/gridnode/gridnode/grid/api"
	"github.com/gridnode/gridnode/grid/registrar/store"
)

// Reuse of the grid's totals (see statsCache).
const (
	// statsCacheAbove: totals that took less than this to compute are
	// never reused, so a small grid's pages are always exact.
	statsCacheAbove = 50 * time.Millisecond
	// statsReuse: totals are reused for this many times as long as they
	// took to compute...
	statsReuse = 10
	// statsMaxAge: ...but never longer than this.
	statsMaxAge = 30 * time.Second
)

// statsCache is the store as the dashboard, /metrics and the online sampler
// see it: its Stats (counts and capacity: aggregates over every node, a few
// milliseconds for ten thousand nodes, near a second for a million) are
// computed by one caller at a time and, when they took long, reused for ten
// times as long. However often pages and scrapes come, totals then cost at
// most a tenth of the time, and a request never waits for more than one
// computation.
type statsCache struct {
	store.Store
	mu    sync.Mutex
	at    time.Time // when v was computed, on the local clock
	took  time.Duration
	since time.Time // the onlineSince v was computed for
	v     store.Stats
}

func (c *statsCache) Stats(ctx context.Context, onlineSince time.Time) (store.Stats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.took >= statsCacheAbove {
		valid := min(statsReuse*c.took, statsMaxAge)
		if d := onlineSince.Sub(c.since); time.Since(c.at) < valid && d < valid && d > -valid {
			return c.v, nil
		}
	}
	start := time.Now()
	v, err := c.Store.Stats(ctx, onlineSince)
	if err != nil {
		return v, err
	}
	c.at, c.took, c.since, c.v = start, time.Since(start), onlineSince, v
	return v, nil
}

// lastTook is how long the totals last took to compute (for /metrics).
func (c *statsCache) lastTook() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.took
}

// sampler records the nodes-online series for the dashboard, and forgets
// the strict-mode nonces past their keep.
func (s *Server) sampler() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.SampleEvery)
	defer t.Stop()
	for {
		now := s.now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		st, err := s.stats.Stats(ctx, now.Add(-api.OnlineWindow))
		if err == nil {
			err = s.st.AddSample(ctx, store.Sample{At: now.Truncate(time.Minute), Online: st.Online, Total: st.Nodes})
		}
		if err != nil {
			s.log.Warn("sampling nodes online", "err", err)
		}
		if err := s.st.ForgetNonces(ctx, now); err != nil {
			s.log.Warn("forgetting expired nonces", "err", err)
		}
		cancel()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}
