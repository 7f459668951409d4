package raftlog

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Run with, for example:
//
//	go test -run '^$' -bench . -benchtime 2s ./internal/raftlog
//
// BenchmarkStoreLogs/store=bolt runs the same workload against raft-boltdb/v2, the store
// this package replaces.

type benchStore interface {
	raft.LogStore
	Close() error
}

func openBench(b *testing.B, kind string, noSync bool) benchStore {
	b.Helper()
	dir := b.TempDir()
	switch kind {
	case "raftlog":
		s, err := Open(dir, Options{NoSync: noSync, Logger: discardLogger()})
		if err != nil {
			b.Fatal(err)
		}
		return s
	case "bolt":
		s, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), NoSync: noSync})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	b.Fatalf("unknown store %q", kind)
	return nil
}

func BenchmarkStoreLogs(b *testing.B) {
	for _, kind := range []string{"raftlog", "bolt"} {
		for _, noSync := range []bool{true, false} {
			for _, batch := range []int{1, 16} {
				for _, size := range []int{1 << 10, 46 << 10} {
					name := fmt.Sprintf("store=%s/nosync=%v/batch=%d/size=%dKiB", kind, noSync, batch, size>>10)
					b.Run(name, func(b *testing.B) { benchStoreLogs(b, kind, noSync, batch, size) })
				}
			}
		}
	}
}

func benchStoreLogs(b *testing.B, kind string, noSync bool, batch, size int) {
	s := openBench(b, kind, noSync)
	defer s.Close()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	logs := make([]*raft.Log, batch)
	for i := range logs {
		logs[i] = &raft.Log{Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()}
	}
	const keep = 1000              // entries kept by the periodic compaction
	const compactEvery = 256 << 20 // bytes written between compactions, to bound disk use
	next, written := uint64(1), 0
	b.SetBytes(int64(batch * size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, l := range logs {
			l.Index = next
			next++
		}
		if err := s.StoreLogs(logs); err != nil {
			b.Fatal(err)
		}
		if written += batch * size; written >= compactEvery {
			b.StopTimer()
			first, _ := s.FirstIndex()
			if err := s.DeleteRange(first, next-1-keep); err != nil {
				b.Fatal(err)
			}
			written = 0
			b.StartTimer()
		}
	}
}

func BenchmarkGetLog(b *testing.B) {
	for _, kind := range []string{"raftlog", "bolt"} {
		for _, size := range []int{1 << 10, 46 << 10} {
			b.Run(fmt.Sprintf("store=%s/size=%dKiB", kind, size>>10), func(b *testing.B) {
				s := openBench(b, kind, true)
				defer s.Close()
				const n = 4096
				data := make([]byte, size)
				for i := 0; i < n; i += 64 {
					logs := make([]*raft.Log, 64)
					for j := range logs {
						logs[j] = &raft.Log{Index: uint64(i + j + 1), Term: 1, Data: data}
					}
					if err := s.StoreLogs(logs); err != nil {
						b.Fatal(err)
					}
				}
				rng := rand.New(rand.NewPCG(1, 1))
				var l raft.Log
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := s.GetLog(1+rng.Uint64N(n), &l); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkGetLogParallel reads from several goroutines while nothing writes.
func BenchmarkGetLogParallel(b *testing.B) {
	s := openBench(b, "raftlog", true)
	defer s.Close()
	const n = 4096
	data := make([]byte, 1<<10)
	for i := 0; i < n; i += 64 {
		logs := make([]*raft.Log, 64)
		for j := range logs {
			logs[j] = &raft.Log{Index: uint64(i + j + 1), Term: 1, Data: data}
		}
		if err := s.StoreLogs(logs); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
		var l raft.Log
		for pb.Next() {
			if err := s.GetLog(1+rng.Uint64N(n), &l); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
