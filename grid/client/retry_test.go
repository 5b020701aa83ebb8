package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gridnode/gridnode/grid/client"
	"github.com/gridnode/gridnode/grid/registrar"
	"github.com/gridnode/gridnode/internal/backoff"
)

// A registrar shedding load answers 429 with Retry-After; Retry waits that
// long although its own schedule would try again within milliseconds, and
// the request then goes through.
func TestRetryHonoursRetryAfter(t *testing.T) {
	ctx := context.Background()
	url := startRealWith(t, registrar.Config{RatePerIP: 1, BurstPerIP: 1})
	c := newClient(t, url, nil, client.Options{})
	if _, err := c.Farms(ctx, client.FarmFilter{}); err != nil {
		t.Fatal(err) // takes the one token
	}
	var errs []error
	start := time.Now()
	err := client.Retry(ctx, backoff.Policy{Base: time.Millisecond, Max: 5 * time.Second}, 5, func() error {
		_, err := c.Farms(ctx, client.FarmFilter{})
		errs = append(errs, err)
		return err
	})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Retry: %v after %d tries (%v)", err, len(errs), errs)
	}
	var e *client.Error
	if len(errs) != 2 || !errors.As(errs[0], &e) || e.Status != http.StatusTooManyRequests || e.Header.Get("Retry-After") != "1" {
		t.Fatalf("tries %v: want a 429 with Retry-After: 1, then success", errs)
	}
	if took < time.Second {
		t.Fatalf("retried after %v, before the registrar's Retry-After of 1 s", took)
	}
}

// Retry-After longer than the schedule's Max waits Max: a registrar cannot
// park a node for longer than the node's own cap.
func TestWaitCapsRetryAfter(t *testing.T) {
	c := backoff.Counter{Policy: backoff.Policy{Base: time.Millisecond, Max: 10 * time.Second}}
	err := fmt.Errorf("reporting: %w", &client.Error{Status: 503, Header: http.Header{"Retry-After": {"120"}}})
	if d := client.Wait(&c, err); d != 10*time.Second {
		t.Fatalf("Wait with Retry-After 120 s and Max 10 s = %v", d)
	}
	// The failures go on counting: the second and third waits are the
	// schedule's 2 and 4 ms.
	if d := client.Wait(&c, &client.Error{Status: 503}); d != 2*time.Millisecond {
		t.Fatalf("second wait, without Retry-After = %v, want the schedule's 2ms", d)
	}
	if d := client.Wait(&c, &client.NetError{Err: errors.New("connection refused")}); d != 4*time.Millisecond {
		t.Fatalf("third wait, after a network error = %v, want the schedule's 4ms", d)
	}
}

// What is worth another try, and what is not.
func TestRetryable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&client.NetError{Err: errors.New("connection refused")}, true},
		{&client.Error{Status: 429}, true},
		{&client.Error{Status: 503}, true},
		{&client.Error{Status: 500}, true},
		{&client.Error{Status: 400, Message: "timestamp outside acceptable window"}, true},
		{&client.Error{Status: 400, Message: "invalid JSON body"}, false},
		{&client.Error{Status: 401}, false},
		{&client.Error{Status: 404}, false},
		{&client.Error{Status: 409}, false},
		{context.Canceled, false},
		{errors.New("encoding request"), false},
		{nil, false},
	} {
		if got := client.Retryable(c.err); got != c.want {
			t.Errorf("Retryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// A failure that is not worth another try is returned at once.
func TestRetryStopsOnFinalError(t *testing.T) {
	ctx := context.Background()
	url := startReal(t)
	c := newClient(t, url, nil, client.Options{})
	tries := 0
	err := client.Retry(ctx, backoff.Policy{Base: time.Millisecond}, 5, func() error {
		tries++
		_, err := c.Node(ctx, 4242)
		return err
	})
	if !client.IsNotFound(err) || tries != 1 {
		t.Fatalf("Retry on a 404: %v after %d tries, want the 404 after one", err, tries)
	}
}
