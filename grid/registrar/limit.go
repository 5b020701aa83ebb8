package registrar

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// limiter is a set of token buckets, one per key (client address or twin).
// A nil limiter allows everything.
type limiter struct {
	rate  float64
	burst float64
	mu    sync.Mutex
	b     map[string]*bucket
	sweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	if rate <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(2*rate))
	}
	return &limiter{rate: rate, burst: float64(burst), b: map[string]*bucket{}}
}

// allow takes a token for key, or answers 429 with Retry-After and returns false.
func (l *limiter) allow(key string, w http.ResponseWriter) bool {
	if l == nil {
		return true
	}
	now := time.Now()
	l.mu.Lock()
	if now.Sub(l.sweep) > time.Minute {
		// Forget buckets that have refilled: they hold no state worth keeping.
		for k, b := range l.b {
			if now.Sub(b.last).Seconds()*l.rate >= l.burst {
				delete(l.b, k)
			}
		}
		l.sweep = now
	}
	b := l.b[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.b[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		l.mu.Unlock()
		return true
	}
	wait := (1 - b.tokens) / l.rate
	l.mu.Unlock()
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait))))
	fail(w, http.StatusTooManyRequests, "rate limit exceeded; retry after the number of seconds in Retry-After")
	return false
}
