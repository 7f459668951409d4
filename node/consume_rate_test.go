package node

import (
	"fmt"
	"math"
	"testing"
	"time"
)

func TestGroupRates(t *testing.T) {
	var r groupRates
	base := time.Unix(1_700_000_000, 0) // a whole multiple of rateBucket
	if got := r.tps("g", "", base); got != 0 {
		t.Fatalf("empty: %v", got)
	}
	// 60 messages a second for a minute, from two topics; another group and a "" group too.
	for s := range 60 {
		now := base.Add(time.Duration(s) * time.Second)
		r.add("g", "A", 40, now)
		r.add("g", "B", 20, now)
		r.add("other", "A", 1000, now)
		r.add("", "A", 1000, now) // no group: not counted
	}
	now := base.Add(60 * time.Second)
	near := func(got, want float64) bool { return math.Abs(got-want) < 0.01*want }
	if got := r.tps("g", "", now); !near(got, 60) {
		t.Errorf("g over all topics: %.2f/s, want 60", got)
	}
	if got := r.tps("g", "A", now); !near(got, 40) {
		t.Errorf("g on A: %.2f/s, want 40", got)
	}
	if got := r.tps("nobody", "", now); got != 0 {
		t.Errorf("unknown group: %v", got)
	}
	// Two minutes of silence: the window has emptied.
	if got := r.tps("g", "", now.Add(2*time.Minute)); got != 0 {
		t.Errorf("after two idle minutes: %.2f/s, want 0", got)
	}
	// Pruning makes room when the key bound is reached.
	for i := range maxRateKeys {
		r.add(fmt.Sprintf("g%d", i), "T", 1, now)
	}
	later := now.Add(5 * time.Minute)
	r.add("fresh", "T", 6, later)
	if got := r.tps("fresh", "T", later); got <= 0 {
		t.Errorf("a new pair after the bound was reached and the old ones went idle: %v", got)
	}
}

func BenchmarkGroupRatesAdd(b *testing.B) {
	var r groupRates
	now := time.Now()
	for b.Loop() {
		r.add("group", "topic", 32, now)
	}
}
