package registrar

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a set of token buckets (golang.org/x/time/rate), one per key
// (client address or twin), forgotten once full again so that memory stays
// flat however many clients come and go. A nil limiter allows everything.
type limiter struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	b     map[string]*rate.Limiter
	sweep time.Time
	now   func() time.Time // time.Now; tests move it
}

func newLimiter(perSecond float64, burst int) *limiter {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(2*perSecond))
	}
	return &limiter{rate: rate.Limit(perSecond), burst: burst, b: map[string]*rate.Limiter{}, now: time.Now}
}

// allow takes a token for key, or answers 429 with Retry-After and returns false.
func (l *limiter) allow(key string, w http.ResponseWriter) bool {
	if l == nil {
		return true
	}
	now := l.now()
	l.mu.Lock()
	if now.Sub(l.sweep) > time.Minute {
		// A full bucket holds no state worth keeping.
		for k, b := range l.b {
			if b.TokensAt(now) >= float64(l.burst) {
				delete(l.b, k)
			}
		}
		l.sweep = now
	}
	b := l.b[key]
	if b == nil {
		b = rate.NewLimiter(l.rate, l.burst)
		l.b[key] = b
	}
	r := b.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	if wait > 0 {
		r.CancelAt(now) // refused: the token is not spent
	}
	l.mu.Unlock()
	if wait <= 0 {
		return true
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	fail(w, http.StatusTooManyRequests, "rate limit exceeded; retry after the number of seconds in Retry-After")
	return false
}
