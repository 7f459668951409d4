//go:build !race

package promsink

import (
	"testing"

	metrics "github.com/armon/go-metrics"
)

// Under -race the instrumentation allocates; this test runs without it.
func TestUpdatesDoNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("allocation counts are off under -cover")
	}
	s := New(Options{})
	key := []string{"raftmq", "broker", "put", "messages", "total"}
	labels := []metrics.Label{{Name: "topic", Value: "TopicTest"}}
	s.IncrCounterWithLabels(key, 1, labels)
	s.AddSample(key, 1)
	s.SetGauge(key, 1)
	if n := testing.AllocsPerRun(1000, func() {
		s.IncrCounterWithLabels(key, 1, labels)
		s.AddSample(key, 1)
		s.SetGauge(key, 1)
	}); n != 0 {
		t.Errorf("%v allocations per update", n)
	}
}
