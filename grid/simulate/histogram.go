package simulate

import (
	"math"
	"sync/atomic"
	"time"
)

// histogram counts latencies in logarithmic buckets (about 2% wide, from
// 1 µs to about 10 minutes), so a million samples cost no more memory than
// ten, and workers record without a lock.
type histogram struct {
	buckets [nBuckets]atomic.Uint64
	count   atomic.Uint64
	errors  atomic.Uint64
	max     atomic.Int64 // nanoseconds
}

const (
	bucketGrowth = 1.02
	nBuckets     = 1400 // 1.02^1400 µs ≈ 10^12 µs: more than enough
)

var logGrowth = math.Log(bucketGrowth)

func bucketOf(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 {
		return 0
	}
	b := int(math.Log(us) / logGrowth)
	return min(b, nBuckets-1)
}

// upper is the latency a bucket stands for (its upper bound).
func upper(b int) time.Duration {
	return time.Duration(math.Pow(bucketGrowth, float64(b+1)) * float64(time.Microsecond))
}

func (h *histogram) record(d time.Duration, failed bool) {
	h.buckets[bucketOf(d)].Add(1)
	h.count.Add(1)
	if failed {
		h.errors.Add(1)
	}
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// quantiles returns the latencies under which the fractions qs of the
// samples lie.
func (h *histogram) quantiles(qs ...float64) []time.Duration {
	out := make([]time.Duration, len(qs))
	n := h.count.Load()
	if n == 0 {
		return out
	}
	var seen uint64
	qi := 0
	for b := 0; b < nBuckets && qi < len(qs); b++ {
		seen += h.buckets[b].Load()
		for qi < len(qs) && float64(seen) >= qs[qi]*float64(n) {
			out[qi] = min(upper(b), time.Duration(h.max.Load()))
			qi++
		}
	}
	for ; qi < len(qs); qi++ {
		out[qi] = time.Duration(h.max.Load())
	}
	return out
}
