package commitlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/raftmq/raftmq/message"
)

// repairFixture is a closed store of 6 batches of 2 messages (queues 0 and
// 1 of topic R) with an abort file present, as after a crash.
type repairFixture struct {
	cfg     Config
	results [][]AppendResult // per batch
	ends    []int64          // ends[i] = log end after batch i+1; ends[-1] is 0
}

func (f *repairFixture) segPath(off int64) string {
	start := off - off%f.cfg.MappedFileSizeCommitLog
	return filepath.Join(f.cfg.CommitLogDir, fmt.Sprintf("%020d", start))
}

func (f *repairFixture) lastRecord() AppendResult {
	b := f.results[len(f.results)-1]
	return b[len(b)-1]
}

// patch overwrites bytes of the commitlog at physical offset off.
func (f *repairFixture) patch(t *testing.T, off int64, b []byte) {
	t.Helper()
	fh, err := os.OpenFile(f.segPath(off), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteAt(b, off%f.cfg.MappedFileSizeCommitLog); err != nil {
		t.Fatal(err)
	}
}

const repairBatches = 6

func newRepairFixture(t *testing.T, crash bool) *repairFixture {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &repairFixture{cfg: l.cfg}
	for i := range repairBatches {
		res := mustAppend(t, l, uint64(i+1), tBaseTS+int64(i),
			tmsg("R", 0, fmt.Sprintf("zero-%d-%s", i, strings.Repeat("z", 200)), PropertyKeys, fmt.Sprintf("key%d", i)),
			tmsg("R", 1, fmt.Sprintf("one-%d-%s", i, strings.Repeat("o", 200)), PropertyKeys, fmt.Sprintf("key%d", i)))
		f.results = append(f.results, res)
		f.ends = append(f.ends, l.MaxPhysOffset())
		if i == 2 {
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if crash {
		l.crash()
	} else {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.cfg.AbortPath, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

type repairCase struct {
	name    string
	crash   bool // stop without a final flush/checkpoint instead of a clean close
	corrupt func(t *testing.T, f *repairFixture)
	batches int // whole batches expected to survive
}

func TestRepair(t *testing.T) {
	cases := []repairCase{
		{"nothing", false, func(*testing.T, *repairFixture) {}, 6},
		{"crash without checkpoint", true, func(*testing.T, *repairFixture) {}, 6},
		{"cut mid-record", false, func(t *testing.T, f *repairFixture) {
			last := f.lastRecord()
			if err := os.Truncate(f.segPath(last.PhysicalOffset), last.PhysicalOffset%f.cfg.MappedFileSizeCommitLog+int64(last.Size)/2); err != nil {
				t.Fatal(err)
			}
		}, 5},
		{"cut mid-record after crash", true, func(t *testing.T, f *repairFixture) {
			last := f.lastRecord()
			if err := os.Truncate(f.segPath(last.PhysicalOffset), last.PhysicalOffset%f.cfg.MappedFileSizeCommitLog+int64(last.Size)/2); err != nil {
				t.Fatal(err)
			}
		}, 5},
		{"flip a byte in the last body", false, func(t *testing.T, f *repairFixture) {
			last := f.lastRecord()
			f.patch(t, last.PhysicalOffset+int64(last.Size)-20, []byte{'#'})
		}, 5},
		{"flip a byte in the first message of the last batch", false, func(t *testing.T, f *repairFixture) {
			first := f.results[len(f.results)-1][0]
			f.patch(t, first.PhysicalOffset+int64(first.Size)-30, []byte{'#'})
		}, 5},
		{"zero-filled tail", false, func(t *testing.T, f *repairFixture) {
			from := f.ends[3] // batches 5 and 6 never reached the disk
			f.patch(t, from, make([]byte, f.ends[5]-from))
		}, 4},
		{"garbage after the end", false, func(t *testing.T, f *repairFixture) {
			f.patch(t, f.ends[5], []byte(strings.Repeat("\xde\xad\xbe\xef", 100)))
		}, 6},
		{"first record torn", false, func(t *testing.T, f *repairFixture) {
			f.patch(t, 10, []byte{0xff, 0xff})
		}, 0},
		{"missing consume queue file", false, func(t *testing.T, f *repairFixture) {
			if err := os.Remove(filepath.Join(f.cfg.ConsumeQueueDir, "R", "0", fmt.Sprintf("%020d", 0))); err != nil {
				t.Fatal(err)
			}
		}, 6},
		{"missing consume queue dir", false, func(t *testing.T, f *repairFixture) {
			if err := os.RemoveAll(filepath.Join(f.cfg.ConsumeQueueDir, "R")); err != nil {
				t.Fatal(err)
			}
		}, 6},
		{"short consume queue file", false, func(t *testing.T, f *repairFixture) {
			if err := os.Truncate(filepath.Join(f.cfg.ConsumeQueueDir, "R", "1", fmt.Sprintf("%020d", 0)), 3*CQEntrySize); err != nil {
				t.Fatal(err)
			}
		}, 6},
		{"missing checkpoint", false, func(t *testing.T, f *repairFixture) {
			if err := os.Remove(f.cfg.CheckpointPath); err != nil {
				t.Fatal(err)
			}
		}, 6},
		{"missing journal", false, func(t *testing.T, f *repairFixture) {
			if err := os.Remove(f.cfg.JournalPath); err != nil {
				t.Fatal(err)
			}
		}, 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { testRepair(t, c) })
	}
}

func testRepair(t *testing.T, c repairCase) {
	f := newRepairFixture(t, c.crash)
	c.corrupt(t, f)

	l, err := Open(f.cfg)
	if err != nil {
		t.Fatalf("recovery: %v", err)
	}
	wantEnd := int64(0)
	if c.batches > 0 {
		wantEnd = f.ends[c.batches-1]
	}
	if got := l.MaxPhysOffset(); got != wantEnd {
		t.Errorf("log end %d, want %d (end of batch %d)", got, wantEnd, c.batches)
	}
	if got := l.AppliedIndex(); got != uint64(c.batches) {
		t.Errorf("AppliedIndex %d, want %d", got, c.batches)
	}
	for q := int32(0); q < 2; q++ {
		if got := l.MaxOffset("R", q); got != int64(c.batches) {
			t.Errorf("queue %d max %d, want %d", q, got, c.batches)
		}
		r, err := l.GetMessages("R", q, 0, 100, 1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Buffers) != c.batches {
			t.Errorf("queue %d: %d messages readable, want %d", q, len(r.Buffers), c.batches)
		}
		for i, b := range r.Buffers {
			m, _, err := message.DecodeRecord(b)
			if err != nil || m.PhysicalOffset != f.results[i][q].PhysicalOffset {
				t.Errorf("queue %d entry %d: %v", q, i, err)
			}
		}
		r.Release()
	}
	for i := range repairBatches {
		got, err := l.QueryByKey("R", fmt.Sprintf("key%d", i), 10, 0, 1<<62)
		want := 0
		if i < c.batches {
			want = 2
		}
		if err != nil || len(got) != want {
			t.Errorf("key%d: %d found, want %d (%v)", i, len(got), want, err)
		}
	}
	// The store goes on: the next batch lands right after the cut.
	res, err := l.Append(AppendBatch{RaftIndex: uint64(c.batches + 1), StoreTimestamp: tBaseTS + 100, Messages: []*Message{tmsg("R", 0, "after")}})
	if err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
	if res[0].PhysicalOffset != wantEnd || res[0].QueueOffset != int64(c.batches) {
		t.Errorf("append after recovery at %d/q%d, want %d/q%d", res[0].PhysicalOffset, res[0].QueueOffset, wantEnd, c.batches)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	first := snapshotFiles(t, f.cfg.RootDir)

	// A second unclean recovery changes nothing.
	if err := os.WriteFile(f.cfg.AbortPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err = Open(f.cfg)
	if err != nil {
		t.Fatalf("second recovery: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if d := diffFiles(first, snapshotFiles(t, f.cfg.RootDir), nil); len(d) > 0 {
		t.Errorf("second recovery changed files: %v", d)
	}
}

// TestCrashMidBatchIsAtomic cuts a multi-message batch in the middle: the
// whole batch goes, AppliedIndex names the batch before.
func TestCrashMidBatchIsAtomic(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	l := openLog(t, cfg)
	cfg = l.cfg
	mustAppend(t, l, 7, tBaseTS, tmsg("B", 0, "a"), tmsg("B", 0, "b"))
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	end := l.MaxPhysOffset()
	res := mustAppend(t, l, 9, tBaseTS, tmsg("B", 0, "c"), tmsg("B", 0, "d"), tmsg("B", 0, "e"))
	l.crash()
	// The third record of batch 9 never made it.
	last := res[2]
	fh, err := os.OpenFile(filepath.Join(cfg.CommitLogDir, fmt.Sprintf("%020d", 0)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt(make([]byte, last.Size), last.PhysicalOffset); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	l2 := openLog(t, cfg)
	if l2.MaxPhysOffset() != end || l2.AppliedIndex() != 7 || l2.MaxOffset("B", 0) != 2 {
		t.Fatalf("end %d applied %d max %d; want %d 7 2", l2.MaxPhysOffset(), l2.AppliedIndex(), l2.MaxOffset("B", 0), end)
	}
}

// FuzzRecover writes arbitrary bytes after the last good record of a
// crashed store and reopens it: no panic, bounded allocation, and the log
// ends at the last whole batch.
func FuzzRecover(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0x5b, 0xda, 0xa3, 0x20, 0xa7})
	f.Add([]byte{0, 0, 0x10, 0, 0xcb, 0xd4, 0x31, 0x94})
	f.Add([]byte(strings.Repeat("\xff", 300)))
	good := encodeFor(f, tmsg("F", 0, "fuzz"), 0, 0, tBaseTS)
	f.Add(good)
	f.Fuzz(func(t *testing.T, tail []byte) {
		if len(tail) > 1<<16 {
			tail = tail[:1<<16]
		}
		cfg := testConfig(t, t.TempDir())
		cfg.Logger = nil
		l, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg = l.cfg
		for i := range 3 {
			mustAppend(t, l, uint64(i+1), tBaseTS, tmsg("F", 0, fmt.Sprint("good", i)))
		}
		end := l.MaxPhysOffset()
		l.crash()
		room := cfg.MappedFileSizeCommitLog - end
		if int64(len(tail)) > room {
			tail = tail[:room]
		}
		fh, err := os.OpenFile(filepath.Join(cfg.CommitLogDir, fmt.Sprintf("%020d", 0)), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fh.WriteAt(tail, end); err != nil {
			t.Fatal(err)
		}
		fh.Close()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		l, err = Open(cfg)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l.Close()
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
			t.Fatalf("recovery allocated %d bytes", alloc)
		}
		if l.MaxPhysOffset() != end || l.AppliedIndex() != 3 || l.MaxOffset("F", 0) != 3 {
			t.Fatalf("end %d applied %d max %d, want %d 3 3", l.MaxPhysOffset(), l.AppliedIndex(), l.MaxOffset("F", 0), end)
		}
		b, err := l.ReadAt(0, int32(end))
		if err != nil {
			t.Fatal(err)
		}
		_ = b
		res, err := l.Append(AppendBatch{RaftIndex: 4, StoreTimestamp: tBaseTS, Messages: []*Message{tmsg("F", 0, "next")}})
		if err != nil || res[0].PhysicalOffset != end {
			t.Fatalf("append after recovery: %v %+v", err, res)
		}
		r, err := l.GetMessages("F", 0, 3, 1, 0, nil)
		if err != nil || len(r.Buffers) != 1 {
			t.Fatalf("read after recovery: %v", err)
		}
		if m, _, err := message.DecodeRecord(r.Buffers[0]); err != nil || string(m.Body) != "next" {
			t.Fatalf("decode after recovery: %v", err)
		}
		r.Release()
		if err := l.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Fatal(err)
		}
	})
}

func encodeFor(tb testing.TB, m *Message, qo, po, st int64) []byte {
	b := make([]byte, m.EncodedSize())
	message.EncodeRecord(b, m, qo, po, st)
	return b
}
