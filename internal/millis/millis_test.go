package millis

import (
	"testing"
	"time"
)

func TestOf(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want float64
	}{
		{0, 0},
		{12345 * time.Microsecond, 12.345},
		{12345*time.Microsecond + 999*time.Nanosecond, 12.345}, // below a microsecond: dropped
		{2 * time.Second, 2000},
		{-1500 * time.Microsecond, -1.5},
	} {
		if got := Of(c.d); got != c.want {
			t.Errorf("Of(%v) = %v, want %v", c.d, got, c.want)
		}
	}
}

func TestTime(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	in := time.Date(2026, 3, 1, 10, 0, 0, 123_987_654, cet)
	got := Time(in)
	if want := time.Date(2026, 3, 1, 9, 0, 0, 123_000_000, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Fatalf("Time(%v) = %v, want %v in UTC", in, got, want)
	}
	// What a store keeps (unix milliseconds) reads back equal.
	if back := time.UnixMilli(got.UnixMilli()).UTC(); back != got {
		t.Fatalf("%v does not survive unix milliseconds: %v", got, back)
	}
}
