package registrar

import (
	"net/http/httptest"
	"testing"
	"time"
)

// A key's bucket is forgotten once it is full again (memory stays flat
// however many clients come and go); a bucket still short of tokens is
// kept, so forgetting never hands out a fresh burst early.
func TestLimiterSweep(t *testing.T) {
	now := time.Now()
	l := newLimiter(1, 1) // refills in a second
	l.now = func() time.Time { return now }
	allow := func(key string) bool { return l.allow(key, httptest.NewRecorder()) }
	if !allow("a") || allow("a") {
		t.Fatal("want the first request allowed and the second, within the burst of 1, refused")
	}
	now = now.Add(2 * time.Minute) // past the sweep interval
	if !allow("b") {
		t.Fatal("a new key refused")
	}
	if _, ok := l.b["a"]; ok {
		t.Fatal("a refilled bucket was kept after a sweep")
	}
	// b took its token just now: the next sweep keeps it, and it is still
	// refused until it refills.
	now = now.Add(time.Minute + 100*time.Millisecond)
	l.b["b"].ReserveN(now, 1) // b spent a token again just now
	if allow("c"); l.b["b"] == nil {
		t.Fatal("a bucket short of tokens was forgotten: its client would get a fresh burst")
	}
	if allow("b") {
		t.Fatal("b allowed before it refilled")
	}
}
