// Package backoff is the one retry schedule of gridnode: exponential, with
// full jitter where many peers retry against one server, reset once things
// went well, and honouring a server's Retry-After.
//
// A million nodes that lost the registrar at the same moment must not come
// back at the same moment: Policy.Jitter spreads each wait uniformly over
// [Min, ceiling] ("full jitter", AWS architecture blog, 2015). A supervisor
// restarting a local process wants no jitter: the same schedule every boot.
package backoff

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Policy is a retry schedule. The ceiling of attempt n (from 1) is
// Base·2^(n-1), capped at Max.
type Policy struct {
	Base time.Duration // ceiling of the first wait
	Max  time.Duration // largest ceiling
	// Min is the shortest wait, also with jitter: a server that answers at
	// once is not hammered.
	Min time.Duration
	// Jitter draws each wait uniformly in [Min, ceiling]; without it the
	// wait is the ceiling.
	Jitter bool
	// Rand returns a number in [0, 1) for the jitter [math/rand/v2.Float64].
	Rand func() float64
}

// Delay is the wait before retry number attempt (from 1).
func (p Policy) Delay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	ceil := p.Max
	if ceil <= 0 {
		ceil = p.Base
	}
	// Shifting by 40 or more overflows any duration worth waiting.
	if attempt < 40 {
		if c := p.Base << (attempt - 1); c > 0 && c < ceil {
			ceil = c
		}
	}
	d := ceil
	if p.Jitter {
		r := p.Rand
		if r == nil {
			r = rand.Float64
		}
		d = time.Duration(r() * float64(ceil))
	}
	return max(d, p.Min)
}

// Counter is a Policy with its count of consecutive failures.
type Counter struct {
	Policy
	failures int
}

// Next counts one more failure and returns the wait before the next try.
func (c *Counter) Next() time.Duration {
	c.failures++
	return c.Delay(c.failures)
}

// After counts a failure like Next, but waits at least what the server
// asked for in its Retry-After header (seconds or an HTTP date), capped at
// Max: a registrar shedding load says when to come back.
func (c *Counter) After(h http.Header, now time.Time) time.Duration {
	d := c.Next()
	if ra, ok := RetryAfter(h, now); ok && ra > d {
		d = ra
		if c.Max > 0 && d > c.Max {
			d = c.Max
		}
	}
	return d
}

// Reset forgets the failures, after a success or a stable run.
func (c *Counter) Reset() { c.failures = 0 }

// Failures is the number of consecutive failures counted.
func (c *Counter) Failures() int { return c.failures }

// RetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// Sleep waits d, or until ctx is done, whichever comes first; it returns
// ctx.Err() in the second case. A retry loop waits with it so that a
// module asked to stop does so at once, not after its backoff.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
