package raftlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// fill20 writes entries 1..20 (100-byte data, batches of 3, 1 KiB segments): segments
// 1-6, 7-12, 13-18 and 19-20. It returns the directory (closed) and the entries.
func fill20(t *testing.T) (string, []*raft.Log) {
	t.Helper()
	dir := t.TempDir()
	s, all := fill(t, dir, 20)
	if n := len(s.segs); n != 4 || s.segs[3].first != 19 {
		t.Fatalf("unexpected layout: %d segments", n)
	}
	mustClose(t, s)
	return dir, all
}

// recordOffsets returns the record offsets and the size of segment file path.
func recordOffsets(t *testing.T, dir, path string) ([]int64, int64) {
	t.Helper()
	s := mustOpen(t, dir, Options{SegmentSize: MinSegmentSize})
	defer mustClose(t, s)
	for _, g := range s.segs {
		if g.path == path {
			return append([]int64(nil), g.offsets...), g.size
		}
	}
	t.Fatalf("no segment %s", path)
	return nil, 0
}

// expectRecovered opens dir, checks it holds 1..last of all, then appends last+1 with a
// new term and checks it survives a reopen.
func expectRecovered(t *testing.T, dir string, all []*raft.Log, last uint64) []string {
	t.Helper()
	logger, logs := newCapture()
	s, err := Open(dir, Options{SegmentSize: MinSegmentSize, Logger: logger})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	want := index(all[:last])
	checkRange(t, s, 1, last, want)
	next := entry(last+1, 9, 50)
	if err := s.StoreLog(next); err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
	want[last+1] = next
	mustClose(t, s)
	s = mustOpen(t, dir, Options{SegmentSize: MinSegmentSize})
	checkRange(t, s, 1, last+1, want)
	mustClose(t, s)
	return logs()
}

func TestTornTailEveryCut(t *testing.T) {
	base, all := fill20(t)
	files := segmentFiles(t, base)
	lastFile := files[len(files)-1]
	offs, size := recordOffsets(t, base, lastFile)
	lastRec := offs[len(offs)-1]

	for cut := lastRec; cut < size; cut++ {
		dir := copyDir(t, base)
		path := filepath.Join(dir, filepath.Base(lastFile))
		if err := os.Truncate(path, cut); err != nil {
			t.Fatal(err)
		}
		logs := expectRecovered(t, dir, all, 19)
		if cut == lastRec {
			continue // a clean end at a record boundary: nothing to cut
		}
		warned := false
		for _, l := range logs {
			if strings.Contains(l, "torn tail") && strings.Contains(l, "file="+path) &&
				strings.Contains(l, fmt.Sprintf("offset=%d", lastRec)) &&
				strings.Contains(l, fmt.Sprintf("cut_bytes=%d", cut-lastRec)) {
				warned = true
			}
		}
		if !warned {
			t.Fatalf("cut at %d: no torn-tail warning naming file, offset and bytes cut in %q", cut, logs)
		}
	}
}

func TestTornTailFlippedBytes(t *testing.T) {
	base, all := fill20(t)
	files := segmentFiles(t, base)
	lastFile := files[len(files)-1]
	offs, size := recordOffsets(t, base, lastFile)
	lastRec := offs[len(offs)-1]
	for pos := lastRec; pos < size; pos++ {
		dir := copyDir(t, base)
		path := filepath.Join(dir, filepath.Base(lastFile))
		flipByte(t, path, pos)
		expectRecovered(t, dir, all, 19)
	}
	// Damage in the first record of the last segment is indistinguishable from a torn
	// write there too: that record and everything after it are cut.
	dir := copyDir(t, base)
	flipByte(t, filepath.Join(dir, filepath.Base(lastFile)), offs[0]+20)
	expectRecovered(t, dir, all, 18)
}

func flipByte(t *testing.T, path string, pos int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[pos] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTornLastSegmentBecomesEmpty(t *testing.T) {
	base, all := fill20(t)
	files := segmentFiles(t, base)
	lastFile := files[len(files)-1]
	offs, _ := recordOffsets(t, base, lastFile)
	// Cut inside the first record of the last segment: it ends up empty and is removed,
	// the previous segment becomes the active one.
	dir := copyDir(t, base)
	path := filepath.Join(dir, filepath.Base(lastFile))
	if err := os.Truncate(path, offs[0]+5); err != nil {
		t.Fatal(err)
	}
	expectRecovered(t, dir, all, 18)
}

func TestLeftoverEmptySegment(t *testing.T) {
	base, all := fill20(t)
	name := segmentName(21)
	h := fileHeader()
	partial := make([]byte, dataStartV2)
	copy(partial, h[:12]) // first sector(s) written, the rest still zero
	h1 := fileHeaderV1(21)
	partial1 := make([]byte, fileHeaderSize)
	copy(partial1, h1[:12])
	for _, tc := range []struct {
		name    string
		content []byte
	}{
		{"zero-length", nil},
		{"partial header", h[:10]},
		{"header with zeros", partial},
		{"all zeros", make([]byte, dataStartV2)},
		{"header without seal block", h[:fileHeaderSize]},
		{"whole header", h[:]},
		{"partial version-1 header", h1[:10]},
		{"version-1 header with zeros", partial1},
		{"whole version-1 header", h1[:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, base)
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			logs := expectRecovered(t, dir, all, 20)
			if !strings.Contains(strings.Join(logs, "\n"), "removed empty last segment") {
				t.Fatalf("no removal logged: %q", logs)
			}
		})
	}
}

func TestCorruptionIsAnError(t *testing.T) {
	base, _ := fill20(t)
	files := segmentFiles(t, base)
	offs, _ := recordOffsets(t, base, files[1])
	_, end3 := recordOffsets(t, base, files[3]) // where the last segment's records end

	for _, tc := range []struct {
		name   string
		damage func(dir string) string // returns the file the error must name
		want   string
	}{
		{"flipped byte in sealed segment", func(dir string) string {
			p := filepath.Join(dir, filepath.Base(files[1]))
			flipByte(t, p, offs[2]+30)
			return p
		}, fmt.Sprintf("offset %d", offs[2])},
		{"torn sealed segment", func(dir string) string {
			p := filepath.Join(dir, filepath.Base(files[1]))
			if err := os.Truncate(p, offs[5]+10); err != nil {
				t.Fatal(err)
			}
			return p
		}, "sealed segment"},
		{"bad header", func(dir string) string {
			p := filepath.Join(dir, filepath.Base(files[0]))
			flipByte(t, p, 17)
			return p
		}, "offset 0"},
		{"foreign file", func(dir string) string {
			p := filepath.Join(dir, filepath.Base(files[0]))
			if err := os.WriteFile(p, []byte(strings.Repeat("not a raft log segment\n", 10)), 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}, "not a raftlog segment"},
		{"foreign short last file", func(dir string) string {
			p := filepath.Join(dir, segmentName(21))
			if err := os.WriteFile(p, []byte("hello"), 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}, "shorter than"},
		{"file name disagrees with header", func(dir string) string {
			p := filepath.Join(dir, filepath.Base(files[0]))
			q := filepath.Join(dir, segmentName(0))
			if err := os.Rename(p, q); err != nil {
				t.Fatal(err)
			}
			return q
		}, "file name says 0"},
		{"missing middle segment", func(dir string) string {
			if err := os.Remove(filepath.Join(dir, filepath.Base(files[1]))); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, filepath.Base(files[2]))
		}, "starts at index 13"},
		{"valid record with a wrong index in the last segment", func(dir string) string {
			p := filepath.Join(dir, filepath.Base(files[3]))
			l := entry(30, 1, 10)
			n, _ := recordSize(l)
			rec := make([]byte, n)
			putRecord(rec, l)
			// At the end of its records: the file may be preallocated beyond.
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(rec, end3); err != nil {
				t.Fatal(err)
			}
			return p
		}, "index 30, expected 21"},
		{"segment name is a directory", func(dir string) string {
			p := filepath.Join(dir, segmentName(21))
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			return p
		}, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, base)
			path := tc.damage(dir)
			_, err := Open(dir, Options{Logger: discardLogger()})
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %s and %q", err, path, tc.want)
			}
			// The failed Open released the lock and left the files alone: a repaired
			// directory opens. (Nothing to check beyond not hanging or panicking.)
		})
	}
}
