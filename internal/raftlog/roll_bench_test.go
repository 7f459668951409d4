package raftlog

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// BenchmarkStoreLogsRoll measures what raft's main loop sees: the latency of every
// StoreLogs call, segment rolls included, as percentiles and the maximum. Batches of 16
// 1 KiB entries (the broker's shape) go into small segments so that many rolls happen
// within the run; with NoSync a background loop calls Sync every 500 ms, as node's
// raftLogSyncLoop does. Run with, for example:
//
//	go test -run '^$' -bench StoreLogsRoll -benchtime 60000x ./internal/raftlog
//
// rolls/op-batch is how many calls rolled the segment, as a fraction of the calls;
// p99-ns then covers the rolls when it is above 0.01.
func BenchmarkStoreLogsRoll(b *testing.B) {
	for _, noSync := range []bool{true, false} {
		for _, seg := range []int64{1 << 20, 16 << 20, 64 << 20} {
			name := fmt.Sprintf("nosync=%v/segment=%dMiB", noSync, seg>>20)
			b.Run(name, func(b *testing.B) { benchStoreLogsRoll(b, noSync, seg) })
		}
	}
}

func benchStoreLogsRoll(b *testing.B, noSync bool, segmentSize int64) {
	const batch, size = 16, 1 << 10
	s, err := Open(b.TempDir(), Options{NoSync: noSync, SegmentSize: segmentSize, Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	if noSync {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if err := s.Sync(); err != nil {
						b.Error(err)
						return
					}
				}
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()

	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	logs := make([]*raft.Log, batch)
	for i := range logs {
		logs[i] = &raft.Log{Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()}
	}
	const keep = 1000             // entries kept by the periodic compaction
	const compactEvery = 64 << 20 // bytes written between compactions, to bound disk use
	lat := make([]time.Duration, 0, b.N)
	next, written, total := uint64(1), 0, 0
	b.SetBytes(int64(batch * size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, l := range logs {
			l.Index = next
			next++
		}
		t0 := time.Now()
		if err := s.StoreLogs(logs); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		written += batch * size
		total += batch * size
		if written >= compactEvery {
			first, _ := s.FirstIndex()
			if err := s.DeleteRange(first, next-1-keep); err != nil {
				b.Fatal(err)
			}
			written = 0
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
	b.ReportMetric(pct(0.999), "p99.9-ns")
	b.ReportMetric(float64(lat[len(lat)-1]), "max-ns")
	// Every record is 8+38+1 KiB: about segmentSize/that entries per segment.
	rolls := float64(total) / float64(segmentSize)
	b.ReportMetric(rolls/float64(b.N), "rolls/op")
	// The mean of the slowest calls, as many as there were rolls: what a roll costs when,
	// as before this store pre-created segments, the rolls are the slowest calls.
	if r := int(rolls); r > 0 {
		var sum time.Duration
		for _, d := range lat[len(lat)-r:] {
			sum += d
		}
		b.ReportMetric(float64(sum)/float64(r), "slowest-mean-ns")
	}
}
