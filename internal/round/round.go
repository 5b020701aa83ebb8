// Package round writes numbers for people, rounded to what a reader needs:
// byte counts in binary units (the node's console, the farmer's node list,
// the registrar's dashboard, the builder's progress) and latencies in
// milliseconds (the simulator, the benchmarks).
package round

import (
	"fmt"
	"math"
	"time"
)

var units = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// scale returns n in the largest binary unit that keeps it at least 1, and
// that unit: after rounding to one decimal it stays below 1024 (1023.96 KiB
// is 1.0 MiB, not 1024.0 KiB).
func scale(n uint64) (float64, string) {
	v, i := float64(n), 0
	for i < len(units)-1 && math.Round(v*10)/10 >= 1024 {
		v /= 1024
		i++
	}
	return v, units[i]
}

// Bytes writes n bytes with one decimal, the way a farmer reads disk
// labels: "512 B", "958.5 MiB", "16.0 GiB".
func Bytes(n uint64) string {
	v, u := scale(n)
	if u == "B" {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", v, u)
}

// BytesShort is Bytes without the decimal when the size is a whole number
// of its unit: "16 GiB", "1.5 GiB", "0 B".
func BytesShort(n uint64) string {
	v, u := scale(n)
	if v == math.Trunc(v) {
		return fmt.Sprintf("%d %s", int64(v), u)
	}
	return fmt.Sprintf("%.1f %s", v, u)
}

// Millis is d in milliseconds, to the microsecond: 12.345.
func Millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
