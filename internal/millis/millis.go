// Package millis rounds durations and times to the millisecond: the unit
// gridnode reports latencies in (the simulator, the benches) and the
// registrar's stores keep times in.
package millis

import "time"

// Of is d in milliseconds, to the microsecond (12.345 for 12,345 µs).
func Of(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Time is t in UTC, truncated to the millisecond: what a store keeps of a
// time, so that a record answered when it is made equals the record read
// back later.
func Time(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }
