package client

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gridnode/gridnode/grid/api"
)

// Clock is the local clock corrected by an offset to a server's clock. The
// zero value has no offset.
type Clock struct {
	offset atomic.Int64 // nanoseconds to add to time.Now
	// now, when set, replaces time.Now (tests).
	now func() time.Time
}

// NewClock returns a Clock that reads local time from now (nil: time.Now);
// tests use it to play a node whose clock is wrong.
func NewClock(now func() time.Time) *Clock { return &Clock{now: now} }

func (c *Clock) local() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// Now is the local time plus the offset.
func (c *Clock) Now() time.Time { return c.local().Add(c.Offset()) }

// Offset is what the client adds to the local clock to get the server's.
func (c *Clock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// SetOffset sets the offset.
func (c *Clock) SetOffset(d time.Duration) { c.offset.Store(int64(d)) }

// dateSlack is how far the corrected clock may be from a Date header before
// the offset is changed: a Date header has a resolution of one second, so
// smaller differences are noise.
const dateSlack = time.Second

// observeDate takes an HTTP Date header into account.
func (c *Clock) observeDate(h string) {
	if h == "" {
		return
	}
	t, err := http.ParseTime(h)
	if err != nil {
		return
	}
	// The server's time lies within [t, t+1s): take the middle.
	c.observe(t.Add(500 * time.Millisecond))
}

// observe moves the offset when server time st is further than dateSlack
// from the corrected clock.
func (c *Clock) observe(st time.Time) {
	local := c.local()
	if d := st.Sub(local.Add(c.Offset())); d > dateSlack || d < -dateSlack {
		c.SetOffset(st.Sub(local))
	}
}

// ServerTime asks the registrar at baseURL for its time, from the Date header
// of an answer to GET /api/v1/zos/version (any answer will do, even an
// error). The network module uses it to set the clock when no NTP server
// answers. The result is accurate to about a second.
func ServerTime(ctx context.Context, baseURL string) (time.Time, error) {
	base := strings.TrimSuffix(strings.TrimRight(strings.TrimSpace(baseURL), "/"), api.Prefix)
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, base+api.Prefix+"/zos/version", nil)
	if err != nil {
		return time.Time{}, fmt.Errorf("registrar time from %q: %w", baseURL, err)
	}
	start := time.Now()
	resp, err := defaultHTTP.Do(req)
	if err != nil {
		return time.Time{}, fmt.Errorf("registrar time from %s: %w", baseURL, err)
	}
	resp.Body.Close()
	h := resp.Header.Get("Date")
	if h == "" {
		return time.Time{}, fmt.Errorf("registrar time from %s: the answer has no Date header", baseURL)
	}
	t, err := http.ParseTime(h)
	if err != nil {
		return time.Time{}, fmt.Errorf("registrar time from %s: bad Date header %q", baseURL, h)
	}
	// Middle of the one-second resolution, plus the time since the answer
	// was sent (about half the round trip).
	return t.Add(500*time.Millisecond + time.Since(start)/2), nil
}
