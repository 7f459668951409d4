package bench

import (
	"math/bits"
	"time"
)

const (
	subBits  = 7
	subCount = 1 << subBits // linear sub-buckets per power of two
	// numBuckets covers every non-negative int64: values below 2*subCount map to themselves,
	// larger ones to shift*subCount + (v >> shift) with shift ≤ 62-subBits.
	numBuckets = (63-subBits-1)*subCount + 2*subCount
)

// Histogram records non-negative int64 values (nanoseconds here) in log-linear buckets: exact
// below 256, then 128 buckets per power of two (relative error < 1/128). The zero value is
// empty and ready; it is not safe for concurrent use (Recorder is).
type Histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

func bucketOf(v int64) int {
	if v < 2*subCount {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - (subBits + 1)
	return shift*subCount + int(uint64(v)>>uint(shift))
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < 2*subCount {
		return int64(i), int64(i)
	}
	shift := i/subCount - 1
	m := int64(i%subCount + subCount)
	lo = m << uint(shift)
	return lo, lo + (int64(1) << uint(shift)) - 1
}

// Record adds v (negative values count as 0).
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds every value of o.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest value recorded (exact); 0 when empty.
func (h *Histogram) Max() int64 { return h.max }

// Min is the smallest value recorded (exact); 0 when empty.
func (h *Histogram) Min() int64 { return h.min }

// Mean is the exact mean; 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// Quantile returns the value at quantile q (0..1): the largest value of the bucket holding the
// ceil(q*n)-th smallest value, capped at Max, so it is never below the true quantile and at
// most 1/128 above it. 0 when empty.
func (h *Histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(q*float64(h.n) + 0.999999999)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketRange(i)
			return max(min(hi, h.max), h.min)
		}
	}
	return h.max
}

// Latency is a latency distribution in milliseconds, as printed and as JSON.
type Latency struct {
	Count uint64  `json:"count"`
	Avg   float64 `json:"avg_ms"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

func ms(ns int64) float64 { return float64(ns) / float64(time.Millisecond) }

// Latency summarises h (values in nanoseconds) in milliseconds.
func (h *Histogram) Latency() Latency {
	return Latency{
		Count: h.n,
		Avg:   h.Mean() / float64(time.Millisecond),
		P50:   ms(h.Quantile(0.50)),
		P99:   ms(h.Quantile(0.99)),
		P999:  ms(h.Quantile(0.999)),
		Max:   ms(h.max),
	}
}
