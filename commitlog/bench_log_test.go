package commitlog

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/raftmq/raftmq/message"
)

const benchBody = 1024

func benchConfig(b *testing.B) Config {
	cfg := DefaultConfig(b.TempDir())
	cfg.MappedFileSizeCommitLog = 256 << 20
	cfg.Index = IndexConfig{MaxHashSlots: 1 << 20, MaxIndexCount: 4 << 20}
	cfg.DiskUsage = func(string) (float64, error) { return 0.1, nil }
	return cfg
}

func benchMessages(n int) []*Message {
	body := make([]byte, benchBody)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	out := make([]*Message, n)
	for i := range out {
		m := tmsg("BenchTopic", int32(i%4), "", PropertyTags, "TagA", PropertyUniqKey, fmt.Sprintf("C0A8000100002A9F0000%012X", i))
		m.Body = body
		out[i] = m
	}
	return out
}

// BenchmarkAppend appends 1 KiB messages (with TAGS and UNIQ_KEY, so each
// also gets a consume-queue entry and an index entry), in raft batches of
// 1 and 32 messages. One op is one message.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			l, err := Open(benchConfig(b))
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			msgs := benchMessages(batch)
			b.SetBytes(benchBody)
			b.ReportAllocs()
			b.ResetTimer()
			idx := uint64(0)
			for i := 0; i < b.N; i += batch {
				idx++
				n := min(batch, b.N-i)
				if _, err := l.Append(AppendBatch{RaftIndex: idx, StoreTimestamp: tBaseTS, Messages: msgs[:n]}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkPlainFileWrite writes the same record bytes with sequential
// os.File.Write calls (one per message, or one per 32), the baseline for
// BenchmarkAppend.
func BenchmarkPlainFileWrite(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "plain"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			msgs := benchMessages(batch)
			var buf []byte
			for _, m := range msgs {
				rec := make([]byte, m.EncodedSize())
				message.EncodeRecord(rec, m, 0, 0, tBaseTS)
				buf = append(buf, rec...)
			}
			recSize := len(buf) / batch
			b.SetBytes(benchBody)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				n := min(batch, b.N-i)
				if _, err := f.Write(buf[:n*recSize]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkGetMessages reads 1 KiB messages of one queue from the page
// cache, 32 per call, zero copy. One op is one message.
func BenchmarkGetMessages(b *testing.B) {
	cfg := benchConfig(b)
	l, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	const n = 100_000
	msgs := benchMessages(64)
	for i := range msgs {
		msgs[i].QueueID = 0
	}
	for i := 0; i < n; i += len(msgs) {
		if _, err := l.Append(AppendBatch{StoreTimestamp: tBaseTS, Messages: msgs}); err != nil {
			b.Fatal(err)
		}
	}
	total := l.MaxOffset("BenchTopic", 0)
	b.SetBytes(benchBody)
	b.ReportAllocs()
	b.ResetTimer()
	var off int64
	got := 0
	for got < b.N {
		r, err := l.GetMessages("BenchTopic", 0, off, 32, 0, nil)
		if err != nil || r.Status != StatusFound {
			b.Fatalf("get at %d: %v %v", off, r.Status, err)
		}
		got += len(r.Buffers)
		off = r.NextBeginOffset
		if off >= total {
			off = 0
		}
		r.Release()
	}
	b.StopTimer()
	b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkAppendFlushed appends 1 KiB messages in batches of 32 and flushes every 4 MiB,
// as the background flusher does under load, with the drop-behind on (PageCacheKeep
// 64 MiB) and off (-1): what the page cache's growth costs the writer. One op is one
// message. Run it long enough for the cache to matter (-benchtime 3000000x, 3.5 GB): on a
// VM that returns free memory to its host the difference is large (293k against 171k
// msgs/s on the 2-core benchmark VM); on bare metal it is small, and the drop is the cost.
func BenchmarkAppendFlushed(b *testing.B) {
	for _, keep := range []int64{64 << 20, -1} {
		b.Run(fmt.Sprintf("keep=%d", keep), func(b *testing.B) {
			cfg := benchConfig(b)
			cfg.PageCacheKeep = keep
			cfg.FlushIntervalCommitLog = time.Hour // flushed by the loop below only
			l, err := Open(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			msgs := benchMessages(32)
			b.SetBytes(benchBody)
			b.ResetTimer()
			idx, last := uint64(0), int64(0)
			for i := 0; i < b.N; i += 32 {
				idx++
				if _, err := l.Append(AppendBatch{RaftIndex: idx, StoreTimestamp: tBaseTS, Messages: msgs[:min(32, b.N-i)]}); err != nil {
					b.Fatal(err)
				}
				if end := l.MaxPhysOffset(); end-last >= 4<<20 {
					if err := l.Flush(); err != nil {
						b.Fatal(err)
					}
					last = end
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
