package backoff

import (
	"net/http"
	"testing"
	"time"
)

func TestDelayDoublesToMax(t *testing.T) {
	p := Policy{Base: time.Second, Max: 60 * time.Second}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i, w := range want {
		if got := p.Delay(i + 1); got != w*time.Second {
			t.Errorf("Delay(%d) = %s, want %s", i+1, got, w*time.Second)
		}
	}
	if got := p.Delay(1000); got != 60*time.Second {
		t.Errorf("Delay(1000) = %s, want the cap", got)
	}
}

func TestJitterStaysInBounds(t *testing.T) {
	for _, r := range []float64{0, 0.25, 0.999999} {
		p := Policy{Base: 2 * time.Second, Max: 2 * time.Minute, Min: time.Second, Jitter: true, Rand: func() float64 { return r }}
		for a := 1; a < 50; a++ {
			d := p.Delay(a)
			ceil := min(2*time.Second<<min(a-1, 30), 2*time.Minute)
			if d < time.Second || d > ceil {
				t.Fatalf("r=%v Delay(%d) = %s, want in [1s, %s]", r, a, d, ceil)
			}
		}
	}
}

func TestCounterResets(t *testing.T) {
	c := Counter{Policy: Policy{Base: time.Second, Max: time.Minute}}
	c.Next()
	c.Next()
	if d := c.Next(); d != 4*time.Second {
		t.Fatalf("third Next = %s, want 4s", d)
	}
	c.Reset()
	if d := c.Next(); d != time.Second {
		t.Fatalf("Next after Reset = %s, want 1s", d)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{"-1", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"soon", 0, false},
	} {
		h := http.Header{}
		if tc.v != "" {
			h.Set("Retry-After", tc.v)
		}
		got, ok := RetryAfter(h, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("RetryAfter(%q) = %s, %t; want %s, %t", tc.v, got, ok, tc.want, tc.ok)
		}
	}
	c := Counter{Policy: Policy{Base: time.Second, Max: 30 * time.Second}}
	h := http.Header{"Retry-After": {"3600"}}
	if d := c.After(h, now); d != 30*time.Second {
		t.Errorf("After with Retry-After 3600 = %s, want the 30s cap", d)
	}
}
