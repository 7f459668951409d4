package raftlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
)

// syncRecorder is a sync hook: it records every fsync's step and can hold the steps in
// block until release is called.
type syncRecorder struct {
	mu      sync.Mutex
	ops     []syncOp
	block   map[syncOp]bool
	release chan struct{}
	once    sync.Once
}

func newSyncRecorder(block ...syncOp) *syncRecorder {
	r := &syncRecorder{block: map[syncOp]bool{}, release: make(chan struct{})}
	for _, op := range block {
		r.block[op] = true
	}
	return r
}

func (r *syncRecorder) hook(op syncOp) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	blocked := r.block[op]
	r.mu.Unlock()
	if blocked {
		<-r.release
	}
}

// take returns the steps recorded since the last take.
func (r *syncRecorder) take() []syncOp {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.ops
	r.ops = nil
	return out
}

func (r *syncRecorder) unblock() { r.once.Do(func() { close(r.release) }) }

// inStoreLogs are the steps that run inside StoreLogs.
var inStoreLogs = []syncOp{opAppend, opRollV1, opRollSpare, opRollSpareDir}

func segCount(s *Store) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.segs)
}

// TestRollDoesNotSync: with the next segment pre-created, a StoreLogs that rolls does no
// fsync of its own with NoSync, and only its append's with NoSync false; the background
// then seals the rolled segment and prepares the next one.
func TestRollDoesNotSync(t *testing.T) {
	for _, noSync := range []bool{true, false} {
		t.Run(fmt.Sprintf("NoSync=%v", noSync), func(t *testing.T) {
			rec := newSyncRecorder()
			dir := t.TempDir()
			s := mustOpen(t, dir, Options{SegmentSize: 4 << 10, NoSync: noSync, syncHook: rec.hook})
			defer s.Close()
			next := uint64(1)
			rolls := 0
			for rolls < 5 {
				waitSpare(t, s)
				waitSealed(t, s)
				rec.take()
				before := segCount(s)
				mustStore(t, s, entries(next, 3, 1, 300))
				during := rec.take() // may include the background's, woken by the roll
				next += 3
				if before == 0 || segCount(s) == before {
					continue // not a roll: no segment yet, or it still fits
				}
				rolls++
				var mine []syncOp
				for _, op := range during {
					if slices.Contains(inStoreLogs, op) {
						mine = append(mine, op)
					}
				}
				want := []syncOp(nil)
				if !noSync {
					want = []syncOp{opAppend}
				}
				if !slices.Equal(mine, want) {
					t.Fatalf("roll %d: StoreLogs synced %v, want %v (all steps: %v)", rolls, mine, want, during)
				}
				// The background seals the rolled segment: data (unless synced already),
				// then the seal block; and prepares the next segment.
				waitSealed(t, s)
				waitSpare(t, s)
				after := append(during, rec.take()...)
				for _, op := range []syncOp{opSeal, opSpare, opSpareDir} {
					if !slices.Contains(after, op) {
						t.Fatalf("roll %d: no %s step after the roll: %v", rolls, op, after)
					}
				}
				if noSync != slices.Contains(after, opSealData) {
					t.Fatalf("roll %d: seal-data step present=%v with NoSync=%v: %v", rolls, !noSync, noSync, after)
				}
			}
			checkRange(t, s, 1, next-1, nil)
			s = reopenWith(t, s, dir, Options{SegmentSize: 4 << 10, NoSync: noSync})
			checkRange(t, s, 1, next-1, nil)
		})
	}
}

func reopenWith(t *testing.T, s *Store, dir string, opts Options) *Store {
	t.Helper()
	mustClose(t, s)
	return mustOpen(t, dir, opts)
}

// TestRollWithoutSpare: when the background has no spare ready (here it is stuck), a
// roll creates its segment itself, without waiting for the background.
func TestRollWithoutSpare(t *testing.T) {
	rec := newSyncRecorder(opSpare) // the background's spare creation never finishes
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{SegmentSize: MinSegmentSize, syncHook: rec.hook})
	all := entries(1, 30, 1, 100)
	for i := 0; i < 30; i += 3 {
		mustStore(t, s, all[i:i+3])
	}
	if ops := rec.take(); !slices.Contains(ops, opRollSpare) || !slices.Contains(ops, opRollSpareDir) {
		t.Fatalf("no segment created during a roll: %v", ops)
	}
	checkRange(t, s, 1, 30, index(all))
	rec.unblock()
	s = reopen(t, s, dir)
	defer s.Close()
	checkRange(t, s, 1, 30, index(all))
}

// TestSyncSyncsRolledSegments: Sync makes segments that rolled but are not sealed yet
// durable too, not only the active one.
func TestSyncSyncsRolledSegments(t *testing.T) {
	rec := newSyncRecorder(opSealData) // keep the background from sealing
	s := mustOpen(t, t.TempDir(), Options{SegmentSize: MinSegmentSize, NoSync: true, syncHook: rec.hook})
	defer func() {
		rec.unblock()
		mustClose(t, s)
	}()
	all := entries(1, 20, 1, 100)
	for i := 0; i < 20; i += 3 {
		mustStore(t, s, all[i:min(i+3, 20)])
	}
	rec.take()
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, op := range rec.take() {
		if op == opSync {
			n++
		}
	}
	s.mu.RLock()
	nseg := len(s.segs)
	for _, g := range s.segs {
		if g.synced != g.size {
			t.Errorf("segment %s: synced to %d of %d after Sync", g.path, g.synced, g.size)
		}
	}
	s.mu.RUnlock()
	// The first rolled segment is held in the background's seal step, which may or may
	// not have marked it synced; every other one is Sync's.
	if n < nseg-1 {
		t.Fatalf("Sync synced %d files, want at least %d of the %d segments", n, nseg-1, nseg)
	}
	// Nothing left to sync: a second Sync does not fsync.
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if ops := rec.take(); len(ops) != 0 {
		t.Fatalf("second Sync: %v", ops)
	}
}

// unsealedImage writes entries 1..20 (100-byte data, batches of 3, 1 KiB segments: 1-6,
// 7-12, 13-18, 19-20) with NoSync while the background cannot seal, and returns a copy of
// the directory taken while the store is open: what a machine crash could leave if every
// write had reached the disk, with no segment sealed and a pre-created next segment.
func unsealedImage(t *testing.T) (string, []*raft.Log) {
	t.Helper()
	rec := newSyncRecorder(opSealData)
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{SegmentSize: MinSegmentSize, NoSync: true, syncHook: rec.hook})
	all := entries(1, 20, 1, 100)
	for i := 0; i < 20; i += 3 {
		mustStore(t, s, all[i:min(i+3, 20)])
	}
	img := copyDir(t, dir)
	rec.unblock()
	mustClose(t, s)
	// The background is held in its first seal, so whether it pre-created a segment
	// after the last roll depends on timing; a crash image has one when it did.
	if _, err := os.Stat(filepath.Join(img, spareName)); errors.Is(err, os.ErrNotExist) {
		h := fileHeader()
		if err := os.WriteFile(filepath.Join(img, spareName), h[:], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files := segmentFiles(t, img)
	if len(files) != 4 || filepath.Base(files[3]) != segmentName(19) {
		t.Fatalf("unexpected layout: %v", files)
	}
	for _, p := range files {
		if sealed(t, p) {
			t.Fatalf("%s is sealed in the image", p)
		}
	}
	if _, err := os.Stat(filepath.Join(img, spareName)); err != nil {
		t.Fatalf("no next segment in the image: %v", err)
	}
	return img, all
}

// sealed reports whether the segment file at path has a valid seal block.
func sealed(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < dataStartV2 {
		return false
	}
	_, state := parseSealBlock(b[fileHeaderSize:dataStartV2])
	return state == sealValid
}

// offsetsIn returns the record offsets of a version-2 segment file holding 100-byte
// entries (146-byte records).
func offsetsIn(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = dataStartV2 + int64(i)*146
	}
	return out
}

// TestCrashTornUnsealedSegment: a segment that rolled but was never sealed may end in a
// torn write, or lack whole entries, after a machine crash with NoSync while later
// segments reached the disk. Recovery cuts the log there and removes every later
// segment (the pre-created next one too): a prefix, never a hole. A later segment that
// is sealed proves the damage is not a crash's: ErrCorrupt.
func TestCrashTornUnsealedSegment(t *testing.T) {
	base, all := unsealedImage(t)
	seg7 := segmentName(7)
	offs := offsetsIn(6)
	for _, tc := range []struct {
		name   string
		damage func(dir string)
		last   uint64 // recovered last index
		cutAt  int64  // offset in 7.wal the warning names
	}{
		{"torn record", func(dir string) {
			truncate(t, filepath.Join(dir, seg7), offs[2]+10)
		}, 8, offs[2]},
		{"flipped byte", func(dir string) {
			flipByte(t, filepath.Join(dir, seg7), offs[3]+40)
		}, 9, offs[3]},
		{"zeros where records were", func(dir string) {
			zeroFrom(t, filepath.Join(dir, seg7), offs[4])
		}, 10, offs[4]},
		{"whole entries lost", func(dir string) {
			truncate(t, filepath.Join(dir, seg7), offs[3])
		}, 9, offs[3]},
		{"no entry left", func(dir string) {
			truncate(t, filepath.Join(dir, seg7), dataStartV2)
		}, 6, dataStartV2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, base)
			tc.damage(dir)
			logs := expectRecovered(t, dir, all, tc.last)
			warned := false
			for _, l := range logs {
				if strings.Contains(l, "cut the log") && strings.Contains(l, "file="+filepath.Join(dir, seg7)) &&
					strings.Contains(l, fmt.Sprintf("offset=%d", tc.cutAt)) {
					warned = true
				}
			}
			if !warned {
				t.Fatalf("no cut warning naming %s at offset %d: %q", seg7, tc.cutAt, logs)
			}
			if !strings.Contains(strings.Join(logs, "\n"), "removed the pre-created next segment") {
				t.Fatalf("the empty next segment was not removed: %q", logs)
			}
			// expectRecovered appended one entry and reopened: the later segments are gone
			// (the append went into the cut segment or a new one after it).
			for _, p := range segmentFiles(t, dir) {
				first, _ := parseSegmentName(filepath.Base(p))
				if first > tc.last+1 {
					t.Fatalf("segment %s survived the cut at %d", p, tc.last)
				}
			}
		})
	}

	t.Run("later segment sealed", func(t *testing.T) {
		dir := copyDir(t, base)
		p := filepath.Join(dir, seg7)
		truncate(t, p, offs[2]+10)
		writeSeal(t, filepath.Join(dir, segmentName(13)), 13, 18, dataStartV2+6*146)
		_, err := Open(dir, Options{Logger: discardLogger()})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) ||
			!strings.Contains(err.Error(), fmt.Sprintf("offset %d", offs[2])) || !strings.Contains(err.Error(), "is sealed") {
			t.Fatalf("Open: %v, want ErrCorrupt naming %s, offset %d and the sealed later segment", err, p, offs[2])
		}
		if n := len(segmentFiles(t, dir)); n != 4 {
			t.Fatalf("a failed Open removed files: %d left", n)
		}
	})
	t.Run("later file foreign", func(t *testing.T) {
		dir := copyDir(t, base)
		truncate(t, filepath.Join(dir, seg7), offs[2]+10)
		if err := os.WriteFile(filepath.Join(dir, segmentName(13)), []byte(strings.Repeat("x", 100)), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, Options{Logger: discardLogger()}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open: %v, want ErrCorrupt", err)
		}
	})
	t.Run("overlap is not a lost tail", func(t *testing.T) {
		dir := copyDir(t, base)
		// 13.wal renamed to 12.wal: it overlaps 7.wal's last entry.
		if err := os.Rename(filepath.Join(dir, segmentName(13)), filepath.Join(dir, segmentName(12))); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, Options{Logger: discardLogger()}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open: %v, want ErrCorrupt", err)
		}
	})
}

// TestSealedSegmentDamageIsCorrupt: the same damage that is cut in a segment that was
// never sealed is an error in one the background sealed, naming file and offset.
func TestSealedSegmentDamageIsCorrupt(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{SegmentSize: MinSegmentSize, NoSync: true})
	all := entries(1, 20, 1, 100)
	for i := 0; i < 20; i += 3 {
		mustStore(t, s, all[i:min(i+3, 20)])
	}
	waitSealed(t, s)
	base := copyDir(t, dir) // a crash image, taken while open
	mustClose(t, s)
	p7 := segmentName(7)
	if !sealed(t, filepath.Join(base, p7)) {
		t.Fatal("7.wal is not sealed")
	}
	offs := offsetsIn(6)
	for _, tc := range []struct {
		name   string
		damage func(path string)
		want   string
	}{
		{"torn record", func(p string) { truncate(t, p, offs[2]+10) }, fmt.Sprintf("offset %d (sealed segment)", offs[2])},
		{"flipped byte", func(p string) { flipByte(t, p, offs[3]+40) }, fmt.Sprintf("offset %d (sealed segment)", offs[3])},
		{"zeros", func(p string) { zeroFrom(t, p, offs[4]) }, "before the sealed end"},
		{"whole entries lost", func(p string) { truncate(t, p, offs[3]) }, "before the sealed end"},
		{"seal names another first index", func(p string) {
			writeSeal(t, p, 8, 12, dataStartV2+6*146)
		}, "seal says first index 8, file name says 7"},
		{"seal ends inside a record", func(p string) {
			writeSeal(t, p, 7, 12, dataStartV2+6*146-1)
		}, "the records disagree"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, base)
			path := filepath.Join(dir, p7)
			tc.damage(path)
			_, err := Open(dir, Options{Logger: discardLogger()})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want ErrCorrupt naming %s and %q", err, path, tc.want)
			}
		})
	}
	// A seal block that is neither zero nor valid (a crash while it was written) only
	// makes the segment unsealed again: damage in the last sealed segment, 13-18, is
	// then cut like a crash's.
	t.Run("torn seal block", func(t *testing.T) {
		p13 := segmentName(13)
		dir := copyDir(t, base)
		flipByte(t, filepath.Join(dir, p13), fileHeaderSize+3)
		expectRecovered(t, dir, all, 20)
		dir = copyDir(t, base)
		path := filepath.Join(dir, p13)
		flipByte(t, path, fileHeaderSize+3)
		truncate(t, path, offs[2]+10)
		expectRecovered(t, dir, all, 14)
		// Not so in 7-12: the sealed 13.wal after it proves it was durable.
		dir = copyDir(t, base)
		path = filepath.Join(dir, p7)
		flipByte(t, path, fileHeaderSize+3)
		truncate(t, path, offs[2]+10)
		if _, err := Open(dir, Options{Logger: discardLogger()}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open: %v, want ErrCorrupt", err)
		}
	})
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// zeroFrom overwrites path with zeros from off to its end.
func zeroFrom(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[off:])
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeSeal writes a valid seal block into the segment file at path.
func writeSeal(t *testing.T, path string, first, last uint64, end int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := sealBlock(seal{first: first, last: last, end: end})
	if _, err := f.WriteAt(b[:], fileHeaderSize); err != nil {
		t.Fatal(err)
	}
}

// TestSpareAcrossCloseAndCrash: Close removes the pre-created next segment; one left by
// a crash is removed by Open, or, when it holds entries (a roll's rename that did not
// reach the disk), taken into the log under its segment name.
func TestSpareAcrossCloseAndCrash(t *testing.T) {
	dir := t.TempDir()
	s, all := fill(t, dir, 20)
	waitSpare(t, s)
	waitSealed(t, s)
	img := copyDir(t, dir)
	mustClose(t, s)
	if _, err := os.Stat(filepath.Join(dir, spareName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("next segment after Close: %v", err)
	}
	s = mustOpen(t, dir, Options{SegmentSize: MinSegmentSize})
	checkRange(t, s, 1, 20, index(all))
	mustClose(t, s)

	t.Run("empty spare", func(t *testing.T) {
		dir := copyDir(t, img)
		logs := expectRecovered(t, dir, all, 20)
		if !strings.Contains(strings.Join(logs, "\n"), "removed the pre-created next segment") {
			t.Fatalf("no removal logged: %q", logs)
		}
	})
	t.Run("interrupted spare creation", func(t *testing.T) {
		for _, n := range []int{0, 5, fileHeaderSize, dataStartV2 - 1} {
			dir := copyDir(t, img)
			h := fileHeader()
			if err := os.WriteFile(filepath.Join(dir, spareName), h[:n], 0o644); err != nil {
				t.Fatal(err)
			}
			expectRecovered(t, dir, all, 20)
		}
	})
	t.Run("spare holding entries", func(t *testing.T) {
		dir := copyDir(t, img)
		// The last segment, 19.wal, as it would be had its rename been lost.
		last := filepath.Join(dir, segmentName(19))
		if err := os.Rename(last, filepath.Join(dir, spareName)); err != nil {
			t.Fatal(err)
		}
		logs := expectRecovered(t, dir, all, 20)
		if !strings.Contains(strings.Join(logs, "\n"), "rename was lost") {
			t.Fatalf("no adoption logged: %q", logs)
		}
		if _, err := os.Stat(last); err != nil {
			t.Fatalf("adopted segment not renamed: %v", err)
		}
		// With a torn tail too.
		dir = copyDir(t, img)
		last = filepath.Join(dir, segmentName(19))
		truncate(t, last, dataStartV2+146+20)
		if err := os.Rename(last, filepath.Join(dir, spareName)); err != nil {
			t.Fatal(err)
		}
		expectRecovered(t, dir, all, 19)
	})
	t.Run("spare holding entries after a torn segment", func(t *testing.T) {
		dir := copyDir(t, img)
		last := filepath.Join(dir, segmentName(19))
		if err := os.Rename(last, filepath.Join(dir, spareName)); err != nil {
			t.Fatal(err)
		}
		// 13.wal is the last sealed one: the seal makes its torn end corruption...
		truncate(t, filepath.Join(dir, segmentName(13)), dataStartV2+3*146+1)
		if _, err := Open(dir, Options{Logger: discardLogger()}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open: %v, want ErrCorrupt", err)
		}
		// ...but without its seal it is a crash's, and the spare goes with the cut.
		clearSeal(t, filepath.Join(dir, segmentName(13)))
		expectRecovered(t, dir, all, 15)
		if _, err := os.Stat(filepath.Join(dir, spareName)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("next segment survived the cut: %v", err)
		}
	})
	t.Run("spare not after the log", func(t *testing.T) {
		dir := copyDir(t, img)
		seg := validSegment(10, 2, 100)
		if err := os.WriteFile(filepath.Join(dir, spareName), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, Options{Logger: discardLogger()}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open: %v, want ErrCorrupt", err)
		}
	})
}

// clearSeal zeroes the seal block of the segment file at path.
func clearSeal(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, sealBlockSize), fileHeaderSize); err != nil {
		t.Fatal(err)
	}
}

// TestDeleteRangeAroundSpare: head compaction, tail truncation (into a sealed segment,
// whose seal is rewritten to what stays) and deleting everything leave the pre-created
// next segment alone; the next rolls use it, and every state reopens and survives a
// crash image.
func TestDeleteRangeAroundSpare(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: MinSegmentSize, NoSync: true}
	s, all := fill(t, dir, 40) // 1-6, 7-12, ..., 37-40
	want := index(all)
	waitSealed(t, s)
	waitSpare(t, s)
	spare := func() *os.File {
		s.spareMu.Lock()
		defer s.spareMu.Unlock()
		return s.spare
	}
	sp := spare()

	// Head compaction: whole segments and part of one.
	if err := s.DeleteRange(1, 15); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 16, 40, want)
	if spare() != sp {
		t.Fatal("head compaction replaced the next segment")
	}

	// Tail truncation into a sealed segment: 26 is the 2nd entry of 25-30.
	if err := s.DeleteRange(26, 40); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 16, 25, want)
	if spare() != sp {
		t.Fatal("tail truncation replaced the next segment")
	}
	p25 := filepath.Join(dir, segmentName(25))
	b, err := os.ReadFile(p25)
	if err != nil {
		t.Fatal(err)
	}
	sl, state := parseSealBlock(b[fileHeaderSize:dataStartV2])
	if state != sealValid || sl.last != 25 || sl.end != dataStartV2+146 || int64(len(b)) != sl.end {
		t.Fatalf("seal of the cut segment: %+v (state %d), file %d bytes; want entries 25..25 ending at %d",
			sl, state, len(b), dataStartV2+146)
	}

	// New entries with a new term fill the cut segment (25-28) and roll into the spare.
	repl := entries(26, 12, 2, 100)
	for i := 0; i < len(repl); i += 3 {
		mustStore(t, s, repl[i:i+3])
	}
	want = index(all[:25], repl)
	checkRange(t, s, 16, 37, want)
	st29, err := os.Stat(filepath.Join(dir, segmentName(29)))
	if err != nil {
		t.Fatalf("no segment at 29: %v", err)
	}
	if spst, err := sp.Stat(); err != nil || !os.SameFile(st29, spst) {
		t.Fatalf("29.wal is not the next segment that was ready before the deletions (%v)", err)
	}
	waitSealed(t, s)
	img := copyDir(t, dir)
	s = reopenWith(t, s, dir, opts)
	checkRange(t, s, 13, 37, want) // the partly compacted segment 13-18 shows again
	// The crash image recovers the same.
	si := mustOpen(t, img, opts)
	checkRange(t, si, 13, 37, want)
	mustClose(t, si)

	// Deleting everything, then a restart at a later index, uses the spare.
	waitSpare(t, s)
	if err := s.DeleteRange(0, 1<<64-1); err != nil {
		t.Fatal(err)
	}
	later := entries(1000, 9, 3, 100)
	for i := 0; i < len(later); i += 3 {
		mustStore(t, s, later[i:i+3])
	}
	checkRange(t, s, 1000, 1008, index(later))
	s = reopenWith(t, s, dir, opts)
	defer s.Close()
	checkRange(t, s, 1000, 1008, index(later))
}

// TestVersion1Segments: a log written by the version-1 code opens, reads back, rolls
// into version-2 segments (syncing the version-1 segment first, which has no seal
// block) and keeps reporting damage in its sealed version-1 segments.
func TestVersion1Segments(t *testing.T) {
	base := t.TempDir()
	for _, r := range [][2]uint64{{1, 6}, {7, 6}, {13, 3}} {
		b := validSegmentV1(r[0], int(r[1]), 100)
		if err := os.WriteFile(filepath.Join(base, segmentName(r[0])), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := index(segmentEntries(1, 6, 100), segmentEntries(7, 6, 100), segmentEntries(13, 3, 100))

	dir := copyDir(t, base)
	rec := newSyncRecorder()
	s := mustOpen(t, dir, Options{SegmentSize: MinSegmentSize, NoSync: true, syncHook: rec.hook})
	checkRange(t, s, 1, 15, want)
	more := entries(16, 12, 2, 100)
	for i := 0; i < len(more); i += 3 {
		mustStore(t, s, more[i:i+3])
	}
	if n := slices.Index(rec.take(), opRollV1); n < 0 {
		t.Fatal("the version-1 segment was not synced at its roll")
	}
	for _, l := range more {
		want[l.Index] = l
	}
	checkRange(t, s, 1, 27, want)
	waitSealed(t, s)
	img := copyDir(t, dir)
	s = reopenWith(t, s, dir, Options{SegmentSize: MinSegmentSize})
	checkRange(t, s, 1, 27, want)
	mustClose(t, s)
	// 13.wal stays version 1, sealed by the old rule (not last); later ones are sealed.
	b, err := os.ReadFile(filepath.Join(dir, segmentName(13)))
	if err != nil {
		t.Fatal(err)
	}
	if v := le.Uint32(b[8:12]); v != formatV1 {
		t.Fatalf("13.wal is version %d", v)
	}

	// Damage in a version-1 segment that is not the last is an error...
	d := copyDir(t, img)
	p := filepath.Join(d, segmentName(7))
	flipByte(t, p, dataStartV1+146*2+30)
	if _, err := Open(d, Options{Logger: discardLogger()}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) {
		t.Fatalf("Open with a damaged version-1 segment: %v", err)
	}
	// ...and a torn last version-1 segment is cut, as before.
	d = copyDir(t, base)
	truncate(t, filepath.Join(d, segmentName(13)), dataStartV1+146*2+9)
	s = mustOpen(t, d, Options{})
	checkRange(t, s, 1, 14, want)
	mustClose(t, s)
}

// TestPreallocatedTail: with NoSync false the next segment is preallocated; its zero
// tail is not a torn write, in the active segment nor in a sealed one, and what follows
// a torn record there is still cut.
func TestPreallocatedTail(t *testing.T) {
	const segSize = 64 << 10
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{SegmentSize: segSize})
	waitSpare(t, s)
	st, err := os.Stat(filepath.Join(dir, spareName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != segSize {
		t.Skipf("the file system under %s does not preallocate (next segment is %d bytes)", dir, st.Size())
	}
	all := entries(1, 200, 1, 1000) // about 3 segments
	for i := 0; i < len(all); i += 4 {
		mustStore(t, s, all[i:i+4])
	}
	waitSealed(t, s)
	img := copyDir(t, dir)
	s = reopen(t, s, dir)
	checkRange(t, s, 1, 200, index(all))
	mustClose(t, s)

	logger, logs := newCapture()
	s, err = Open(copyDir(t, img), Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 1, 200, index(all))
	mustClose(t, s)
	for _, l := range logs() {
		if strings.HasPrefix(l, "WARN") {
			t.Fatalf("warning for a preallocated tail: %s", l)
		}
	}
	files := segmentFiles(t, img)
	last := files[len(files)-1]
	st, err = os.Stat(last)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != segSize {
		t.Fatalf("active segment %s is %d bytes, want the preallocated %d", last, st.Size(), segSize)
	}

	// A torn record in the zeros: the record is cut.
	d := copyDir(t, img)
	p := filepath.Join(d, filepath.Base(last))
	s = mustOpen(t, copyDir(t, img), Options{})
	var size int64
	var lastFirst uint64
	s.mu.RLock()
	g := s.segs[len(s.segs)-1]
	size, lastFirst = g.size, g.first
	s.mu.RUnlock()
	mustClose(t, s)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := entry(201, 1, 1000)
	n, _ := recordSize(l)
	rec := make([]byte, n)
	putRecord(rec, l)
	if _, err := f.WriteAt(rec[:n/2], size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	logger, logs = newCapture()
	s, err = Open(d, Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 1, 200, index(all))
	mustClose(t, s)
	if !strings.Contains(strings.Join(logs(), "\n"), "torn tail") {
		t.Fatalf("no torn tail cut in %s (first index %d): %q", p, lastFirst, logs())
	}
	// Zeros in the sealed part of a preallocated, sealed segment are still an error.
	d = copyDir(t, img)
	p = filepath.Join(d, filepath.Base(files[0]))
	if !sealed(t, p) {
		t.Fatalf("%s not sealed", p)
	}
	zeroFrom(t, p, dataStartV2+3000)
	if _, err := Open(d, Options{Logger: discardLogger()}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v, want ErrCorrupt", err)
	}
}
