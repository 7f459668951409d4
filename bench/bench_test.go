package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/node"
)

func checkLatency(t *testing.T, what string, l Latency) {
	t.Helper()
	if l.Count == 0 {
		t.Errorf("%s: no latency samples", what)
		return
	}
	if !(l.Avg > 0 && l.P50 > 0 && l.P50 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("%s: latency not ordered or not positive: %+v", what, l)
	}
	if l.Avg > l.Max {
		t.Errorf("%s: avg %v above max %v", what, l.Avg, l.Max)
	}
	if l.Max > 60_000 {
		t.Errorf("%s: max latency %v ms is longer than the run", what, l.Max)
	}
}

// TestRunEmbeddedE2E runs the tool as CI's smoke run does: embedded, about 2 s, and checks the
// summary has successes on both sides and sane numbers.
func TestRunEmbeddedE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	var out bytes.Buffer
	cfg := DefaultConfig()
	cfg.Mode = ModeE2E
	cfg.Embedded = true
	cfg.Workers = 4
	cfg.Size = 1024
	cfg.Keys = true
	cfg.Duration = 2 * time.Second
	cfg.ReportInterval = 500 * time.Millisecond
	cfg.Out = &out
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if sum.Send == nil || sum.Consume == nil || sum.Cluster == nil {
		t.Fatalf("summary misses a part: %+v", sum)
	}
	if sum.Send.OK == 0 || sum.Send.MsgsPerSec <= 0 || sum.Send.MBPerSec <= 0 {
		t.Errorf("no successful sends: %+v", sum.Send)
	}
	if sum.Send.Failed > sum.Send.OK/10 {
		t.Errorf("too many failures: %+v", sum.Send)
	}
	// MB/s follows from msgs/s and the size.
	if got, want := sum.Send.MBPerSec, sum.Send.MsgsPerSec*1024/(1<<20); got < want*0.999 || got > want*1.001 {
		t.Errorf("send MB/s %v, want %v from msgs/s", got, want)
	}
	if sum.Consume.OK < sum.Send.OK {
		t.Errorf("consumed %d of %d sent", sum.Consume.OK, sum.Send.OK)
	}
	if sum.Elapsed < 1.9 || sum.Elapsed > 10 {
		t.Errorf("elapsed %v s for a 2 s run", sum.Elapsed)
	}
	checkLatency(t, "send", sum.Send.Latency)
	checkLatency(t, "consume", sum.Consume.Latency)
	if sum.Send.Latency.Count != sum.Send.OK {
		t.Errorf("%d latency samples for %d sends", sum.Send.Latency.Count, sum.Send.OK)
	}
	c := sum.Cluster
	if c.Nodes != 3 || c.TermBefore == 0 || c.TermAfter < c.TermBefore || c.LeaderBefore == "" || c.HeapInuseMax == 0 {
		t.Errorf("cluster stats: %+v", c)
	}
	if !strings.Contains(sum.Durability, "ASYNC_FLUSH") {
		t.Errorf("durability %q", sum.Durability)
	}
	lines := out.String()
	if n := strings.Count(lines, "] send "); n < 2 {
		t.Errorf("%d send interval lines in:\n%s", n, lines)
	}
	if n := strings.Count(lines, "] recv "); n < 2 {
		t.Errorf("%d recv interval lines in:\n%s", n, lines)
	}
	b, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"send", "consume", "cluster", "durability", "elapsed_s"} {
		if _, ok := back[k]; !ok {
			t.Errorf("JSON summary lacks %q: %s", k, b)
		}
	}
	var text bytes.Buffer
	sum.WriteText(&text)
	if !strings.Contains(text.String(), "send:") || !strings.Contains(text.String(), "consume:") {
		t.Errorf("text summary:\n%s", text.String())
	}
	t.Logf("interval lines:\n%s", lines)
	t.Logf("summary:\n%s", text.String())
}

// TestRunEmbeddedConsumerTotal checks consumer mode: a preloaded backlog consumed up to -q, and
// batch sends in producer mode stopping at -q exactly.
func TestRunEmbeddedCounts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := DefaultConfig()
	cfg.Mode = ModeConsumer
	cfg.Embedded = true
	cfg.Total = 3000
	cfg.Size = 100
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("consumer Run: %v", err)
	}
	if sum.Preloaded != 3000 || sum.Send != nil || sum.Consume == nil || sum.Consume.OK < 3000 {
		t.Fatalf("consumer summary: preloaded %d send %+v consume %+v", sum.Preloaded, sum.Send, sum.Consume)
	}
	checkLatency(t, "consume", sum.Consume.Latency)

	cfg = DefaultConfig()
	cfg.Embedded = true
	cfg.Batch = 16
	cfg.Workers = 2
	cfg.Total = 1600
	cfg.RaftLogStore = node.RaftLogWAL
	cfg.Warmup = 500 * time.Millisecond // its messages must not count towards Total or the summary
	sum, err = Run(ctx, cfg)
	if err != nil {
		t.Fatalf("producer Run: %v", err)
	}
	if !strings.Contains(sum.Durability, "Raft log in wal") {
		t.Errorf("durability %q does not name the wal log store", sum.Durability)
	}
	if sum.Send == nil || sum.Send.OK+sum.Send.Failed != 1600 || sum.Send.OK == 0 || sum.Consume != nil {
		t.Fatalf("producer summary: %+v", sum.Send)
	}
	if sum.Send.Latency.Count != sum.Send.OK/16 {
		t.Errorf("%d latency samples for %d batches", sum.Send.Latency.Count, sum.Send.OK/16)
	}
	if sum.WarmupSecs < 0.5 {
		t.Errorf("warm-up of %.2f s, want the 0.5 s asked for", sum.WarmupSecs)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Mode = "x" }, "Mode"},
		{func(c *Config) { c.Embedded = false; c.NameServers = nil }, "NameServers"},
		{func(c *Config) { c.Workers = -1 }, "Workers"},
		{func(c *Config) { c.Size = 5 << 20 }, "Size"},
		{func(c *Config) { c.Batch = 4; c.Async = true }, "Batch"},
		{func(c *Config) { c.ReportInterval = time.Millisecond }, "ReportInterval"},
		{func(c *Config) { c.FlushDiskType = "SOMETIMES" }, "FlushDiskType"},
		{func(c *Config) { c.Total = -1 }, "Total"},
		{func(c *Config) { c.RaftLogStore = "leveldb" }, "RaftLogStore"},
		{func(c *Config) { c.Warmup = -time.Second }, "Warmup"},
		{func(c *Config) { c.Mode = ModeConsumer; c.Warmup = time.Second }, "Warmup"},
	} {
		cfg := DefaultConfig()
		cfg.Embedded = true
		tc.edit(&cfg)
		err := cfg.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error naming %s, got %v", tc.want, err)
		}
	}
	cfg := DefaultConfig()
	cfg.NameServers = []string{"127.0.0.1:9876"}
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if _, err := Run(context.Background(), Config{Mode: "nope"}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Run with a bad config: %v", err)
	}
}
