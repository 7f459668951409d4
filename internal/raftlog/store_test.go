package raftlog

import (
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		ok   bool
	}{
		{Options{}, true},
		{Options{SegmentSize: MinSegmentSize}, true},
		{Options{SegmentSize: 1 << 30, NoSync: true}, true},
		{Options{SegmentSize: -1}, false},
		{Options{SegmentSize: MinSegmentSize - 1}, false},
	} {
		if err := tc.opts.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tc.opts, err, tc.ok)
		}
	}
	if _, err := Open(t.TempDir(), Options{SegmentSize: 10}); err == nil {
		t.Fatal("Open accepted an invalid SegmentSize")
	}
	d := Options{}.withDefaults()
	if d.SegmentSize != DefaultSegmentSize || d.Logger == nil || d.NoSync {
		t.Fatalf("defaults: %+v", d)
	}
}

func TestRoundTripAllFields(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i * 31)
	}
	logs := []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogCommand}, // nil data, nil extensions, zero time
		{Index: 2, Term: 1, Type: raft.LogNoop, Data: []byte{}, Extensions: []byte{}},
		{Index: 3, Term: 2, Type: raft.LogConfiguration, Data: []byte("cfg"), Extensions: []byte("ext"),
			AppendedAt: time.Now()},
		{Index: 4, Term: 2, Type: raft.LogBarrier, Data: nil, Extensions: []byte{0, 1, 2},
			AppendedAt: time.Date(3000, 1, 2, 3, 4, 5, 6, time.UTC)}, // beyond the UnixNano range
		{Index: 5, Term: 1<<64 - 1, Type: raft.LogType(255), Data: big, Extensions: nil,
			AppendedAt: time.Date(1600, 6, 7, 8, 9, 10, 999_999_999, time.FixedZone("x", 3600))},
		{Index: 6, Term: 7, Type: raft.LogCommand, Data: []byte{}, Extensions: nil,
			AppendedAt: time.Unix(-1, 5)},
	}
	mustStore(t, s, logs[:2])
	mustStore(t, s, logs[2:3])
	if err := s.StoreLog(logs[3]); err != nil {
		t.Fatal(err)
	}
	mustStore(t, s, logs[4:])
	want := index(logs)
	checkRange(t, s, 1, 6, want)

	// The returned slices are the caller's: appending to Data must not clobber Extensions.
	var l raft.Log
	if err := s.GetLog(3, &l); err != nil {
		t.Fatal(err)
	}
	l.Data = append(l.Data, "XYZ"...)
	if string(l.Extensions) != "ext" {
		t.Fatalf("extensions clobbered: %q", l.Extensions)
	}
	// GetLog overwrites every field of out.
	l = raft.Log{Data: []byte("junk"), Extensions: []byte("junk"), AppendedAt: time.Now()}
	if err := s.GetLog(1, &l); err != nil {
		t.Fatal(err)
	}
	sameLog(t, &l, logs[0])

	mustClose(t, s)
	s = mustOpen(t, dir, Options{})
	defer s.Close()
	checkRange(t, s, 1, 6, want)
}

// An append past the end restarts the log there (Raft does that only when a snapshot
// covers the gap: a crash between a snapshot install and removeOldLogs), durably.
func TestAppendPastEndRestartsLog(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{SegmentSize: 1024})
	mustStore(t, s, entries(1, 40, 1, 100)) // several segments
	// A gap inside the batch is refused before anything is deleted.
	bad := []*raft.Log{entry(60, 2, 10), entry(62, 2, 10)}
	if err := s.StoreLogs(bad); !errors.Is(err, ErrNonContiguous) {
		t.Fatalf("gap in a past-the-end batch: %v", err)
	}
	checkRange(t, s, 1, 40, nil)
	mustStore(t, s, entries(60, 5, 2, 10))
	checkRange(t, s, 60, 64, nil)
	if err := s.GetLog(40, new(raft.Log)); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(40) after the restart at 60: %v", err)
	}
	s.Close()
	s = mustOpen(t, dir, Options{SegmentSize: 1024})
	defer s.Close()
	checkRange(t, s, 60, 64, nil)
}

func TestContiguity(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	defer s.Close()

	if err := s.StoreLogs(nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	if err := s.StoreLog(&raft.Log{Index: 0}); !errors.Is(err, ErrNonContiguous) {
		t.Fatalf("index 0: %v", err)
	}
	// An empty store accepts any start index (e.g. after a snapshot install).
	mustStore(t, s, entries(1000, 3, 1, 10))
	if err := s.StoreLog(entry(1002, 1, 10)); !errors.Is(err, ErrNonContiguous) || !strings.Contains(err.Error(), "1003") {
		t.Fatalf("rewrite of an existing index: %v", err)
	}
	// A gap inside the batch rejects the whole batch.
	bad := []*raft.Log{entry(1003, 1, 10), entry(1004, 1, 10), entry(1006, 1, 10)}
	if err := s.StoreLogs(bad); !errors.Is(err, ErrNonContiguous) || !strings.Contains(err.Error(), "1006") {
		t.Fatalf("gap in batch: %v", err)
	}
	if err := s.StoreLogs([]*raft.Log{entry(1003, 1, 1), nil}); err == nil {
		t.Fatal("nil entry accepted")
	}
	checkRange(t, s, 1000, 1002, nil)
	mustStore(t, s, entries(1003, 2, 2, 10))
	checkRange(t, s, 1000, 1004, nil)
}

func TestRollingAndReopen(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: MinSegmentSize}
	s := mustOpen(t, dir, opts)
	rng := rand.New(rand.NewPCG(1, 2))
	var all []*raft.Log
	next := uint64(1)
	for len(all) < 1500 {
		n := 1 + rng.IntN(8)
		batch := make([]*raft.Log, n)
		for i := range batch {
			batch[i] = entry(next, 3, rng.IntN(200))
			next++
		}
		mustStore(t, s, batch)
		all = append(all, batch...)
	}
	// One batch bigger than a segment goes whole into one segment.
	huge := entries(next, 4, 3, 2000)
	mustStore(t, s, huge)
	all = append(all, huge...)
	last := huge[len(huge)-1].Index
	want := index(all)
	checkRange(t, s, 1, last, want)
	files := segmentFiles(t, dir)
	if len(files) < 50 {
		t.Fatalf("only %d segments", len(files))
	}
	mustClose(t, s)

	for _, noSync := range []bool{false, true} {
		s = mustOpen(t, dir, Options{SegmentSize: MinSegmentSize, NoSync: noSync})
		checkRange(t, s, 1, last, want)
		if len(s.segs) != len(files) {
			t.Fatalf("reopened %d segments, want %d", len(s.segs), len(files))
		}
		more := entries(last+1, 5, 4, 300)
		mustStore(t, s, more)
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		all = append(all, more...)
		last += 5
		want = index(all)
		mustClose(t, s)
		files = segmentFiles(t, dir)
	}
	s = mustOpen(t, dir, opts)
	defer s.Close()
	checkRange(t, s, 1, last, want)
}

// fill stores entries 1..n in batches of 3 with 100-byte data into small segments.
func fill(t *testing.T, dir string, n int) (*Store, []*raft.Log) {
	t.Helper()
	s := mustOpen(t, dir, Options{SegmentSize: MinSegmentSize})
	all := entries(1, n, 1, 100)
	for i := 0; i < n; i += 3 {
		mustStore(t, s, all[i:min(i+3, n)])
	}
	return s, all
}

func reopen(t *testing.T, s *Store, dir string) *Store {
	t.Helper()
	mustClose(t, s)
	return mustOpen(t, dir, Options{SegmentSize: MinSegmentSize})
}

func TestDeleteRangeHead(t *testing.T) {
	dir := t.TempDir()
	s, all := fill(t, dir, 100)
	want := index(all)
	// Entries are 146 bytes, 3 per batch, so a 1 KiB segment holds 6 entries: 1-6, 7-12, ...
	if s.segs[0].lastIndex() != 6 || s.segs[1].first != 7 {
		t.Fatalf("unexpected layout: first segment ends at %d", s.segs[0].lastIndex())
	}
	nseg := len(segmentFiles(t, dir))

	// Whole segments: 1..12 are exactly two segments.
	if err := s.DeleteRange(1, 12); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 13, 100, want)
	if got := len(segmentFiles(t, dir)); got != nseg-2 {
		t.Fatalf("%d segment files, want %d", got, nseg-2)
	}
	s = reopen(t, s, dir)
	checkRange(t, s, 13, 100, want)

	// Partial: 13..15 is half a segment: FirstIndex moves, the file stays.
	if err := s.DeleteRange(13, 15); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 16, 100, want)
	if got := len(segmentFiles(t, dir)); got != nseg-2 {
		t.Fatalf("%d segment files, want %d", got, nseg-2)
	}
	// A range already deleted, or below the first index, is a no-op or is clipped.
	if err := s.DeleteRange(1, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(5, 20); err != nil { // min below First: still head compaction
		t.Fatal(err)
	}
	checkRange(t, s, 21, 100, want)
	// After a restart the rest of the partly compacted segment (19, 20) is visible again.
	s = reopen(t, s, dir)
	checkRange(t, s, 19, 100, want)
	// Appends continue after a head compaction.
	more := entries(101, 3, 1, 100)
	mustStore(t, s, more)
	want = index(all, more)
	checkRange(t, s, 19, 103, want)
	s = reopen(t, s, dir)
	defer s.Close()
	checkRange(t, s, 19, 103, want)
}

func TestDeleteRangeTail(t *testing.T) {
	dir := t.TempDir()
	s, all := fill(t, dir, 100) // segments of 6: ..., 91-96, 97-100
	want := index(all)

	// Within the last segment.
	if err := s.DeleteRange(99, 100); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 1, 98, want)
	s = reopen(t, s, dir)
	checkRange(t, s, 1, 98, want)

	// Across segments, cutting in the middle of one: 50 is the 2nd entry of 49-54.
	nseg := len(segmentFiles(t, dir))
	if err := s.DeleteRange(50, 98); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 1, 49, want)
	if got := len(segmentFiles(t, dir)); got != 9 {
		t.Fatalf("%d segment files after cutting at 50 (had %d), want 9", got, nseg)
	}
	s = reopen(t, s, dir)
	checkRange(t, s, 1, 49, want)

	// At a segment boundary: 43 starts a segment, which goes away whole. max beyond the
	// last index is fine.
	if err := s.DeleteRange(43, 1000); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 1, 42, want)
	if got := len(segmentFiles(t, dir)); got != 7 {
		t.Fatalf("%d segment files after cutting at 43, want 7", got)
	}

	// New entries with another term replace the truncated ones, in the (full) last
	// segment's successor and beyond; reading and reopening see the new ones.
	repl := entries(43, 20, 2, 100)
	mustStore(t, s, repl[:10])
	mustStore(t, s, repl[10:])
	want = index(all[:42], repl)
	checkRange(t, s, 1, 62, want)
	s = reopen(t, s, dir)
	checkRange(t, s, 1, 62, want)

	// Truncate inside the segment that a head compaction left partly hidden.
	if err := s.DeleteRange(1, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(5, 62); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 4, 4, want)
	s = reopen(t, s, dir)
	defer s.Close()
	checkRange(t, s, 1, 4, want)
}

func TestDeleteRangeAllAndHole(t *testing.T) {
	dir := t.TempDir()
	s, all := fill(t, dir, 40)
	want := index(all)

	err := s.DeleteRange(10, 20)
	if !errors.Is(err, ErrUnsupportedRange) || !strings.Contains(err.Error(), "[10, 20]") {
		t.Fatalf("hole: %v", err)
	}
	checkRange(t, s, 1, 40, want)
	// Outside the log and empty ranges are no-ops.
	for _, r := range [][2]uint64{{41, 50}, {0, 0}, {20, 10}} {
		if err := s.DeleteRange(r[0], r[1]); err != nil {
			t.Fatalf("DeleteRange(%d, %d): %v", r[0], r[1], err)
		}
	}
	checkRange(t, s, 1, 40, want)

	// Everything, the way raft's removeOldLogs does it (after a head compaction moved
	// FirstIndex into a segment).
	if err := s.DeleteRange(1, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(4, 40); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 0, 0, nil)
	if n := len(segmentFiles(t, dir)); n != 0 {
		t.Fatalf("%d segment files left", n)
	}
	if err := s.DeleteRange(1, 100); err != nil {
		t.Fatalf("delete on empty log: %v", err)
	}
	s = reopen(t, s, dir)
	checkRange(t, s, 0, 0, nil)

	// The next append may start anywhere (a snapshot index + 1).
	after := entries(5000, 10, 3, 100)
	mustStore(t, s, after)
	checkRange(t, s, 5000, 5009, index(after))
	s = reopen(t, s, dir)
	checkRange(t, s, 5000, 5009, index(after))
	if err := s.DeleteRange(0, 1<<64-1); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 0, 0, nil)
	mustClose(t, s)
}

func TestCloseAndLock(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{NoSync: true})
	mustStore(t, s, entries(1, 3, 1, 10))
	if _, err := Open(dir, Options{Logger: discardLogger()}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open of a locked dir: %v", err)
	}
	mustClose(t, s)
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	var l raft.Log
	if _, err := s.FirstIndex(); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if _, err := s.LastIndex(); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if err := s.GetLog(1, &l); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if err := s.StoreLog(entry(4, 1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 1); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if err := s.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	// Close released the lock, and (NoSync) synced the data.
	s = mustOpen(t, dir, Options{})
	defer s.Close()
	checkRange(t, s, 1, 3, nil)
	// Unrelated files in the directory are left alone.
	if err := os.WriteFile(dir+"/notes.txt", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEmptyAndMissingDir(t *testing.T) {
	dir := t.TempDir() + "/a/b"
	s := mustOpen(t, dir, Options{})
	checkRange(t, s, 0, 0, nil)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)
}

// TestConcurrentReaders runs one writer that appends, compacts the head and truncates the
// tail while readers fetch random indexes and a syncer calls Sync. Every read must either
// find a consistent entry or report ErrLogNotFound (the entry was deleted meanwhile).
func TestConcurrentReaders(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{SegmentSize: 4 << 10, NoSync: true})
	defer s.Close()

	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads, found atomic.Int64
	errc := make(chan error, 8)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 7))
			var l raft.Log
			for !stop.Load() {
				first, _ := s.FirstIndex()
				last, _ := s.LastIndex()
				if last == 0 {
					continue
				}
				idx := first + rng.Uint64N(last-first+1)
				reads.Add(1)
				err := s.GetLog(idx, &l)
				if errors.Is(err, raft.ErrLogNotFound) {
					continue
				}
				if err != nil {
					errc <- err
					return
				}
				found.Add(1)
				if l.Index != idx || string(l.Data) != string(payload(idx, l.Term, len(l.Data))) {
					errc <- errors.New("inconsistent entry")
					return
				}
			}
		}(uint64(r))
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if err := s.Sync(); err != nil {
				errc <- err
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()

	rng := rand.New(rand.NewPCG(3, 4))
	next, term := uint64(1), uint64(1)
	deadline := time.Now().Add(1500 * time.Millisecond)
	for op := 0; time.Now().Before(deadline) || op < 300; op++ {
		switch k := rng.IntN(20); {
		case k == 0: // head compaction
			first, _ := s.FirstIndex()
			last, _ := s.LastIndex()
			if last > first+50 {
				if err := s.DeleteRange(first, first+rng.Uint64N(last-first-20)); err != nil {
					t.Fatal(err)
				}
			}
		case k == 1: // tail truncation, then a new term
			first, _ := s.FirstIndex()
			last, _ := s.LastIndex()
			if last > first+10 {
				from := last - rng.Uint64N(10)
				if err := s.DeleteRange(from, last); err != nil {
					t.Fatal(err)
				}
				next = from
				term++
			}
		case k == 2 && rng.IntN(10) == 0: // everything, then restart at a later index
			if err := s.DeleteRange(0, next); err != nil {
				t.Fatal(err)
			}
			next += 100
		default:
			n := 1 + rng.IntN(16)
			mustStore(t, s, entries(next, n, term, rng.IntN(512)))
			next += uint64(n)
		}
		select {
		case err := <-errc:
			t.Fatal(err)
		default:
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if found.Load() == 0 {
		t.Fatalf("readers found nothing in %d reads", reads.Load())
	}
	t.Logf("%d reads, %d found", reads.Load(), found.Load())
}

// TestFailedWriteStopsWrites breaks the active segment's file handle: the failing
// StoreLogs reports the write error, later mutations report ErrFailed, and reopening the
// directory recovers what was stored.
func TestFailedWriteStopsWrites(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{SegmentSize: MinSegmentSize})
	all := entries(1, 12, 1, 100)
	mustStore(t, s, all[:6])
	mustStore(t, s, all[6:9]) // starts a second segment
	s.segs[len(s.segs)-1].f.Close()

	err := s.StoreLogs(all[9:])
	if err == nil || !strings.Contains(err.Error(), "write segment") {
		t.Fatalf("StoreLogs on a broken file: %v", err)
	}
	if err := s.StoreLogs(all[9:]); !errors.Is(err, ErrFailed) {
		t.Fatalf("StoreLogs after a failure: %v", err)
	}
	if err := s.DeleteRange(1, 3); !errors.Is(err, ErrFailed) {
		t.Fatalf("DeleteRange after a failure: %v", err)
	}
	if err := s.Sync(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Sync after a failure: %v", err)
	}
	// Reads from intact segments still work.
	var l raft.Log
	if err := s.GetLog(2, &l); err != nil {
		t.Fatalf("GetLog after a failure: %v", err)
	}
	s.Close() // reports the already-closed file; the lock is released either way
	s = mustOpen(t, dir, Options{SegmentSize: MinSegmentSize})
	defer s.Close()
	checkRange(t, s, 1, 9, index(all))
	mustStore(t, s, all[9:])
	checkRange(t, s, 1, 12, index(all))
}
