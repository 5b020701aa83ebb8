package client

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gridnode/gridnode/internal/backoff"
)

// Retryable says whether err is worth sending the same request again: the
// registrar did not answer, shed load (429), failed on its side (5xx), or
// refused a signed timestamp as out of its window (the client has taken
// the registrar's clock from that answer, so the next one is signed right).
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne *NetError
	if errors.As(err, &ne) {
		return true
	}
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 ||
		(e.Status == http.StatusBadRequest && strings.Contains(e.Message, windowError))
}

// Wait counts the failure err in c and returns how long to wait before the
// next try: c's next wait, or what the registrar asked for in Retry-After
// when that is longer (capped at c.Max).
func Wait(c *backoff.Counter, err error) time.Duration {
	var e *Error
	if errors.As(err, &e) && e.Header != nil {
		return c.After(e.Header, time.Now())
	}
	return c.Next()
}

// Retry calls f until it succeeds, fails for good (not Retryable), has been
// called attempts times, or ctx ends, waiting between tries as Wait says on
// p's schedule. It returns f's last error (or ctx's).
func Retry(ctx context.Context, p backoff.Policy, attempts int, f func() error) error {
	c := backoff.Counter{Policy: p}
	for n := 1; ; n++ {
		err := f()
		if err == nil || n >= attempts || !Retryable(err) || ctx.Err() != nil {
			return err
		}
		if err := backoff.Sleep(ctx, Wait(&c, err)); err != nil {
			return err
		}
	}
}
