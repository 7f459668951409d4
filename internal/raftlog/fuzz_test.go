package raftlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

// validSegment returns the bytes of a version-2 segment holding entries
// first..first+n-1, not sealed.
func validSegment(first uint64, n int, size int) []byte {
	h := fileHeader()
	return append(h[:], records(first, n, size)...)
}

// sealedSegment is validSegment with its seal block set.
func sealedSegment(first uint64, n int, size int) []byte {
	b := validSegment(first, n, size)
	sb := sealBlock(seal{first: first, last: first + uint64(n) - 1, end: int64(len(b))})
	copy(b[fileHeaderSize:], sb[:])
	return b
}

// validSegmentV1 returns the bytes of a version-1 segment holding entries
// first..first+n-1, as the code before version 2 wrote it.
func validSegmentV1(first uint64, n int, size int) []byte {
	h := fileHeaderV1(first)
	return append(h[:], records(first, n, size)...)
}

// segmentEntries are the entries validSegment and its kin hold.
func segmentEntries(first uint64, n int, size int) []*raft.Log {
	out := entries(first, n, 1, size)
	for i, l := range out {
		if i%2 == 1 {
			l.Extensions = []byte("ext")
		}
	}
	return out
}

// records encodes segmentEntries(first, n, size) back to back.
func records(first uint64, n int, size int) []byte {
	var b []byte
	for _, l := range segmentEntries(first, n, size) {
		rs, _ := recordSize(l)
		rec := make([]byte, rs)
		putRecord(rec, l)
		b = append(b, rec...)
	}
	return b
}

// Where FuzzOpen puts its bytes.
const (
	fuzzOnly      = iota // the only segment, 1.wal
	fuzzSecond           // 4.wal, after a sealed segment holding 1..3
	fuzzSpare            // the pre-created next segment, after a sealed segment holding 1..3
	fuzzSpareOnly        // the pre-created next segment, with no segment
	fuzzModes
)

// FuzzOpen uses arbitrary bytes as a segment file or as the pre-created next segment
// (see the modes above). Open must not panic: it either fails with ErrCorrupt or recovers
// a store that reads back its whole range, keeps the valid segment, accepts an append,
// leaves no next segment behind at Close and reopens.
func FuzzOpen(f *testing.F) {
	seg := validSegment(1, 3, 20)
	spare := fileHeader()
	for mode := uint8(0); mode < fuzzModes; mode++ {
		f.Add([]byte{}, mode)
		f.Add(seg[:len(seg)-7], mode)
		f.Add(seg[:fileHeaderSize], mode)
		f.Add(seg[:dataStartV2+5], mode)
		f.Add(spare[:], mode)
	}
	f.Add(validSegment(1, 3, 20), uint8(fuzzOnly))
	f.Add(sealedSegment(1, 3, 20), uint8(fuzzOnly))
	f.Add(validSegmentV1(1, 3, 20), uint8(fuzzOnly))
	f.Add(validSegment(1, 1, 0), uint8(fuzzOnly))
	f.Add(validSegment(4, 2, 5), uint8(fuzzSecond))
	f.Add(sealedSegment(4, 2, 5), uint8(fuzzSecond))
	f.Add(validSegmentV1(4, 2, 5), uint8(fuzzSecond))
	f.Add(validSegment(4, 2, 5), uint8(fuzzSpare))
	f.Add(validSegment(7, 2, 5), uint8(fuzzSpare))
	f.Add(validSegment(100, 2, 5), uint8(fuzzSpareOnly))
	f.Add([]byte("RAFTMQLG garbage that is long enough to be a header........"), uint8(fuzzOnly))

	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		mode %= fuzzModes
		dir := t.TempDir()
		name := segmentName(1)
		switch mode {
		case fuzzSecond:
			name = segmentName(4)
		case fuzzSpare, fuzzSpareOnly:
			name = spareName
		}
		if mode == fuzzSecond || mode == fuzzSpare {
			if err := os.WriteFile(filepath.Join(dir, segmentName(1)), sealedSegment(1, 3, 7), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
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
		if (mode == fuzzSecond || mode == fuzzSpare) && (lo != 1 || hi < 3) {
			t.Fatalf("lost the valid first segment: [%d, %d]", lo, hi)
		}
		if hi != 0 && lo != 1 && mode != fuzzSpareOnly {
			t.Fatalf("recovered [%d, %d], want to start at 1", lo, hi)
		}
		var l raft.Log
		for i := lo; hi != 0 && i <= hi; i++ {
			if err := s.GetLog(i, &l); err != nil {
				t.Fatalf("GetLog(%d) in recovered [%d, %d]: %v", i, lo, hi, err)
			}
		}
		next := hi + 1
		if hi == 0 {
			next = 1
		}
		if err := s.StoreLog(entry(next, 2, 3)); err != nil {
			t.Fatalf("append %d after recovery: %v", next, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, spareName)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the next segment is still there after Close: %v", err)
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
