package store

import (
	"testing"
	"time"
)

// A stamped time is in UTC, to the millisecond, and survives the unix
// milliseconds the SQL stores keep.
func TestStamp(t *testing.T) {
	in := time.Date(2026, 3, 1, 10, 0, 0, 123_987_654, time.FixedZone("CET", 3600))
	got := Stamp(in)
	if want := time.Date(2026, 3, 1, 9, 0, 0, 123_000_000, time.UTC); got != want {
		t.Fatalf("Stamp(%v) = %v, want %v", in, got, want)
	}
	if back := time.UnixMilli(got.UnixMilli()).UTC(); back != got {
		t.Fatalf("%v read back from unix milliseconds is %v", got, back)
	}
}
