package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBucketsContiguous(t *testing.T) {
	prevHi := int64(-1)
	for i := 0; i < numBuckets; i++ {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if hi < lo {
			t.Fatalf("bucket %d: hi %d < lo %d", i, hi, lo)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d [%d,%d] maps back to %d,%d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		prevHi = hi
		if hi == 1<<63-1 {
			if i != numBuckets-1 {
				t.Fatalf("max int64 in bucket %d of %d", i, numBuckets)
			}
			return
		}
	}
	t.Fatalf("buckets end at %d, not at max int64", prevHi)
}

func TestQuantileAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]int64, 100000)
	for i := range vals {
		// Log-normal-ish latencies from 10 µs to 1 s.
		v := int64(10_000 * (1 + r.ExpFloat64()*r.ExpFloat64()*50))
		vals[i] = v
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals))+0.999999999)-1]
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/subCount+1 {
			t.Errorf("q%.3f = %d, exact %d (allowed [exact, exact*(1+1/128)])", q, got, exact)
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
		t.Errorf("min/max %d/%d, want %d/%d", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
	}
	if h.Count() != uint64(len(vals)) {
		t.Errorf("count %d", h.Count())
	}
}

func TestMergeAndEmpty(t *testing.T) {
	var a, b, e Histogram
	if e.Quantile(0.5) != 0 || e.Mean() != 0 || e.Max() != 0 {
		t.Fatal("empty histogram not zero")
	}
	for i := int64(1); i <= 100; i++ {
		a.Record(i)
		b.Record(i + 100)
	}
	a.Merge(&b)
	a.Merge(&e)
	if a.Count() != 200 || a.Min() != 1 || a.Max() != 200 || a.Mean() != 100.5 {
		t.Fatalf("merged: n %d min %d max %d mean %v", a.Count(), a.Min(), a.Max(), a.Mean())
	}
	if q := a.Quantile(0.5); q != 100 {
		t.Fatalf("median %d, want 100", q)
	}
	a.Record(-5)
	if a.Min() != 0 {
		t.Fatalf("negative not clamped: min %d", a.Min())
	}
	a.Reset()
	if a.Count() != 0 {
		t.Fatal("reset")
	}
}
