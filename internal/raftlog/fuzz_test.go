package raftlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

// validSegment returns the bytes of a segment holding entries first..first+n-1.
func validSegment(first uint64, n int, size int) []byte {
	h := fileHeader(first)
	b := append([]byte(nil), h[:]...)
	for i := 0; i < n; i++ {
		l := entry(first+uint64(i), 1, size)
		if i%2 == 1 {
			l.Extensions = []byte("ext")
		}
		rs, _ := recordSize(l)
		rec := make([]byte, rs)
		putRecord(rec, l)
		b = append(b, rec...)
	}
	return b
}

// FuzzOpen uses arbitrary bytes as the only segment file, or as the last one after a
// valid segment holding 1..3. Open must not panic: it either fails with ErrCorrupt or
// recovers a store that reads back its whole range, accepts an append and reopens.
func FuzzOpen(f *testing.F) {
	f.Add([]byte{}, false)
	f.Add(validSegment(1, 3, 20), false)
	f.Add(validSegment(1, 1, 0), false)
	f.Add(validSegment(4, 2, 5), true)
	seg := validSegment(1, 3, 20)
	f.Add(seg[:len(seg)-7], false)
	f.Add(seg[:fileHeaderSize], false)
	f.Add(seg[:fileHeaderSize+5], true)
	f.Add([]byte("RAFTMQLG garbage that is long enough to be a header........"), false)

	f.Fuzz(func(t *testing.T, data []byte, second bool) {
		dir := t.TempDir()
		first := uint64(1)
		if second {
			if err := os.WriteFile(filepath.Join(dir, segmentName(1)), validSegment(1, 3, 7), 0o644); err != nil {
				t.Fatal(err)
			}
			first = 4
		}
		if err := os.WriteFile(filepath.Join(dir, segmentName(first)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, Options{Logger: discardLogger(), NoSync: true})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open failed without ErrCorrupt: %v", err)
			}
			return
		}
		lo, _ := s.FirstIndex()
		hi, _ := s.LastIndex()
		if second && (lo != 1 || hi < 3) {
			t.Fatalf("lost the valid first segment: [%d, %d]", lo, hi)
		}
		if hi != 0 && lo != 1 {
			t.Fatalf("recovered [%d, %d], want to start at 1", lo, hi)
		}
		var l raft.Log
		for i := lo; hi != 0 && i <= hi; i++ {
			if err := s.GetLog(i, &l); err != nil {
				t.Fatalf("GetLog(%d) in recovered [%d, %d]: %v", i, lo, hi, err)
			}
		}
		next := hi + 1
		if err := s.StoreLog(entry(next, 2, 3)); err != nil {
			t.Fatalf("append %d after recovery: %v", next, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = Open(dir, Options{Logger: discardLogger(), NoSync: true})
		if err != nil {
			t.Fatalf("reopen after recovery and append: %v", err)
		}
		defer s.Close()
		if got, _ := s.LastIndex(); got != next {
			t.Fatalf("reopened last index %d, want %d", got, next)
		}
	})
}
