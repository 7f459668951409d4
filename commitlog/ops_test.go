package commitlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) now() time.Time  { return time.Unix(0, c.ns.Load()).In(time.Local) }

// fillSegments appends 1000-byte messages stamped ts until n segments are
// sealed beyond the current one.
func fillSegment(t *testing.T, l *Log, idx *uint64, ts int64, key string) {
	t.Helper()
	startSeg := l.MaxPhysOffset() / l.segSize()
	for l.MaxPhysOffset()/l.segSize() == startSeg {
		*idx++
		mustAppend(t, l, *idx, ts, tmsg("Ret", 0, strings.Repeat("r", 1000), PropertyKeys, key))
	}
}

func TestRetention(t *testing.T) {
	var clock fakeClock
	day := time.Date(2026, 3, 10, 0, 0, 0, 0, time.Local)
	clock.set(day.Add(3 * time.Hour))
	cfg := testConfig(t, t.TempDir())
	cfg.Now = clock.now
	cfg.FileReservedTime = time.Hour
	cfg.DeleteWhen = "04;05"
	l := openLog(t, cfg)
	cfg = l.cfg
	old := day.Add(-48 * time.Hour).UnixMilli()
	recent := day.Add(3*time.Hour + 30*time.Minute).UnixMilli()
	var idx uint64
	fillSegment(t, l, &idx, old, "old0")    // segment 0, sealed by a record stamped `old`
	fillSegment(t, l, &idx, old, "old1")    // segment 1, sealed by `old`
	fillSegment(t, l, &idx, recent, "new2") // segment 2, sealed by `recent`
	mustAppend(t, l, idx+1, recent, tmsg("Ret", 0, "tail", PropertyKeys, "new3"))
	segs := func() int { // segment files in use (not the preallocated spare)
		starts, _ := listFiles(cfg.CommitLogDir)
		n := 0
		for _, s := range starts {
			if s <= l.MaxPhysOffset() {
				n++
			}
		}
		return n
	}
	if segs() != 4 {
		t.Fatalf("%d segments, want 4", segs())
	}
	maxBefore := l.MaxOffset("Ret", 0)

	// 03:00 is not a deleteWhen hour.
	if n, err := l.runRetention(false); n != 0 || err != nil {
		t.Fatalf("retention at 03:00 deleted %d (%v)", n, err)
	}
	// 04:10: segment 0 is sealed by the first record of segment 1 and
	// segment 1 by the first of segment 2, both stamped two days ago;
	// segment 2 by a record of 03:30; segment 3 is active.
	clock.set(day.Add(4*time.Hour + 10*time.Minute))
	n, err := l.runRetention(false)
	if err != nil || n != 2 {
		t.Fatalf("retention at 04:10 deleted %d (%v), want 2", n, err)
	}
	if segs() != 2 || l.MinPhysOffset() != 2*l.segSize() {
		t.Fatalf("segments %d min phys %d", segs(), l.MinPhysOffset())
	}
	minQ := l.MinOffset("Ret", 0)
	r := mustGet(t, l, "Ret", 0, 0, 1, 0, nil)
	if r.Status != StatusOffsetTooSmall || r.NextBeginOffset != minQ || minQ == 0 {
		t.Fatalf("pull below min: %v next %d min %d", r.Status, r.NextBeginOffset, minQ)
	}
	r = mustGet(t, l, "Ret", 0, minQ, 1, 0, nil)
	if ms := decodeAll(t, r); len(ms) != 1 || ms[0].PhysicalOffset < l.segSize() {
		t.Fatalf("first message after retention: %+v", ms)
	}
	if got, _ := l.QueryByKey("Ret", "old0", 100, 0, math.MaxInt64); len(got) != 0 {
		t.Fatalf("deleted messages still found by key: %d", len(got))
	}
	// At 05:40 segment 2 (sealed 03:30) has expired too; never the active one.
	clock.set(day.Add(5*time.Hour + 40*time.Minute))
	if n, err := l.runRetention(false); err != nil || n != 1 {
		t.Fatalf("retention at 05:40 deleted %d (%v), want 1", n, err)
	}
	if segs() != 1 || l.MaxOffset("Ret", 0) != maxBefore {
		t.Fatalf("segments %d, max offset %d (want %d kept)", segs(), l.MaxOffset("Ret", 0), maxBefore)
	}
	// Segment 3 holds the message that rolled over to it and "tail".
	if l.MinOffset("Ret", 0) != maxBefore-2 {
		t.Fatalf("min offset %d, want %d", l.MinOffset("Ret", 0), maxBefore-2)
	}
	cqFiles, _ := os.ReadDir(filepath.Join(cfg.ConsumeQueueDir, "Ret", "0"))
	if len(cqFiles) != 1 {
		t.Fatalf("%d consume queue files left, want 1", len(cqFiles))
	}
	// Reopen: same view.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, cfg)
	if l2.MinOffset("Ret", 0) != maxBefore-2 || l2.MaxOffset("Ret", 0) != maxBefore || l2.MinPhysOffset() != 3*l2.segSize() {
		t.Fatalf("after reopen: min %d max %d minPhys %d", l2.MinOffset("Ret", 0), l2.MaxOffset("Ret", 0), l2.MinPhysOffset())
	}
}

func TestDiskGuard(t *testing.T) {
	var clock fakeClock
	day := time.Date(2026, 3, 10, 12, 0, 0, 0, time.Local) // not a deleteWhen hour
	clock.set(day)
	cfg := testConfig(t, t.TempDir())
	cfg.Now = clock.now
	cfg.FileReservedTime = time.Hour
	cfg.DiskMaxUsedSpaceRatio = 88
	cfg.DiskCheckInterval = 10 * time.Millisecond
	var extra atomic.Int64 // per mille added to the usage
	var lp atomic.Pointer[Log]
	cfg.DiskUsage = func(dir string) (float64, error) {
		// 3% per segment in use, plus extra.
		segs := int64(1)
		if l := lp.Load(); l != nil {
			segs = l.MaxPhysOffset()/l.segSize() - l.MinPhysOffset()/l.segSize() + 1
		}
		return 0.80 + 0.03*float64(segs) + float64(extra.Load())/1000, nil
	}
	l := openLog(t, cfg)
	lp.Store(l)
	var idx uint64
	old := day.Add(-10 * time.Hour).UnixMilli()
	fillSegment(t, l, &idx, old, "a")
	fillSegment(t, l, &idx, old, "b")
	fillSegment(t, l, &idx, day.UnixMilli(), "c")
	// 4 segments: 0.92 > 0.88. The guard deletes the two expired segments
	// at once although 12:00 is not a deleteWhen hour: 2 left, 0.86.
	waitFor(t, "forced retention to free space", func() bool {
		return l.CheckWritable() == nil && l.MinPhysOffset() == 2*l.segSize()
	})
	if l.MinPhysOffset() != 2*l.segSize() {
		t.Fatalf("forced retention: min phys %d, want %d", l.MinPhysOffset(), 2*l.segSize())
	}
	// Now the disk stays full (nothing expired): appends refused, reads go on.
	extra.Store(50)
	var err error
	waitFor(t, "the disk to read as full", func() bool { err = l.CheckWritable(); return err != nil })
	if !errors.Is(err, ErrDiskFull) || err.Error() != "commitlog: disk full: usage 91.0% above diskMaxUsedSpaceRatio 88%" {
		t.Fatalf("CheckWritable = %v", err)
	}
	end := l.MaxPhysOffset()
	if _, err := l.Append(AppendBatch{RaftIndex: idx + 1, Messages: []*Message{tmsg("Ret", 0, "refused")}}); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Append on a full disk: %v", err)
	}
	if l.MaxPhysOffset() != end {
		t.Fatal("refused append wrote")
	}
	if r := mustGet(t, l, "Ret", 0, l.MinOffset("Ret", 0), 4, 0, nil); r.Status != StatusFound || len(r.Buffers) != 4 {
		t.Fatalf("read on a full disk: %v", r.Status)
	}
	// A replica applying what the leader accepted is not refused.
	idx++
	if _, err := l.Append(AppendBatch{RaftIndex: idx, SkipDiskGuard: true, Messages: []*Message{tmsg("Ret", 0, "replicated")}}); err != nil {
		t.Fatalf("SkipDiskGuard append: %v", err)
	}
	// Space comes back: the background check lets appends resume.
	extra.Store(0)
	waitFor(t, "appends to resume", func() bool {
		_, err := l.Append(AppendBatch{RaftIndex: idx + 1, Messages: []*Message{tmsg("Ret", 0, "resumed")}})
		return err == nil
	})
}

func TestDeterminism(t *testing.T) {
	a := openLog(t, testConfig(t, t.TempDir()))
	b := openLog(t, testConfig(t, t.TempDir()))
	for i := range 150 {
		var msgs []*Message
		for j := range 1 + i%4 {
			m := tmsg(fmt.Sprintf("Det%d", j%3), int32(i%5), strings.Repeat(fmt.Sprint(i), 50+i*7%400),
				PropertyTags, fmt.Sprint("t", i%3), PropertyKeys, fmt.Sprintf("k%d k%d", i, j), PropertyUniqKey, fmt.Sprintf("U%04d%d", i, j))
			if i%11 == 0 {
				m.SysFlag = TxPreparedType
			}
			msgs = append(msgs, m)
		}
		ra := mustAppend(t, a, uint64(i+1), tBaseTS+int64(i), msgs...)
		rb := mustAppend(t, b, uint64(i+1), tBaseTS+int64(i), msgs...)
		if fmt.Sprint(ra) != fmt.Sprint(rb) {
			t.Fatalf("batch %d: results differ", i)
		}
		if i == 60 { // flush timing must not matter
			if err := a.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if a.MaxPhysOffset() < 3*a.segSize() {
		t.Fatalf("test did not roll segments: %d", a.MaxPhysOffset())
	}
	da, db := a.cfg.RootDir, b.cfg.RootDir
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	fa, fb := snapshotFiles(t, da), snapshotFiles(t, db)
	if d := diffFiles(fa, fb, nil); len(d) > 0 {
		t.Fatalf("replicas differ: %v", d)
	}
	n := 0
	for k := range fa {
		if strings.HasPrefix(k, "commitlog") || strings.HasPrefix(k, "consumequeue") {
			n++
		}
	}
	if n < 10 {
		t.Fatalf("only %d commitlog/consumequeue files compared", n)
	}
}

func TestSnapshotCopyInstall(t *testing.T) {
	src := openLog(t, testConfig(t, t.TempDir()))
	for i := range 120 {
		mustAppend(t, src, uint64(i+1), tBaseTS+int64(i),
			tmsg("Snap", int32(i%3), strings.Repeat("s", 900), PropertyKeys, fmt.Sprint("sk", i)))
	}
	// Full copy into an empty store.
	dst := openLog(t, testConfig(t, t.TempDir()))
	var buf bytes.Buffer
	if err := src.CopyRange(&buf, 0, src.MaxPhysOffset()); err != nil {
		t.Fatal(err)
	}
	if err := dst.InstallRange(0, &buf, src.MaxPhysOffset(), src.AppliedIndex()); err != nil {
		t.Fatal(err)
	}
	if dst.AppliedIndex() != 120 || dst.MaxPhysOffset() != src.MaxPhysOffset() {
		t.Fatalf("installed: applied %d end %d", dst.AppliedIndex(), dst.MaxPhysOffset())
	}
	for q := int32(0); q < 3; q++ {
		if dst.MaxOffset("Snap", q) != 40 {
			t.Fatalf("queue %d max %d", q, dst.MaxOffset("Snap", q))
		}
	}
	if got, _ := dst.QueryByKey("Snap", "sk77", 5, 0, math.MaxInt64); len(got) != 1 {
		t.Fatalf("index after install: %d", len(got))
	}
	// A corrupt stream is refused and leaves nothing.
	mustAppend(t, src, 121, tBaseTS, tmsg("Snap", 0, "one more"))
	buf.Reset()
	from := dst.MaxPhysOffset()
	if err := src.CopyRange(&buf, from, src.MaxPhysOffset()); err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), buf.Bytes()...)
	bad[len(bad)-8] ^= 0xff // the last body byte (covered by BODYCRC)
	n := int64(len(bad))
	if err := dst.InstallRange(from, bytes.NewReader(bad), n, 121); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt install: %v", err)
	}
	if dst.MaxPhysOffset() != from || dst.AppliedIndex() != 120 || dst.MaxOffset("Snap", 0) != 40 {
		t.Fatalf("corrupt install left something: end %d", dst.MaxPhysOffset())
	}
	if err := dst.InstallRange(from, io.LimitReader(&buf, n-5), n, 121); err == nil {
		t.Fatal("short stream accepted")
	}
	if err := dst.InstallRange(from, &buf, n, 121); err == nil {
		t.Fatal("stream after a short read accepted") // buf was consumed by the short read
	}
	buf.Reset()
	_ = src.CopyRange(&buf, from, src.MaxPhysOffset())
	if err := dst.InstallRange(from, &buf, n, 121); err != nil {
		t.Fatal(err)
	}
	srcDir, dstDir := src.cfg.RootDir, dst.cfg.RootDir
	src.Close()
	dst.Close()
	only := func(k string) bool { return strings.HasPrefix(k, "commitlog") || strings.HasPrefix(k, "consumequeue") }
	if d := diffFiles(snapshotFiles(t, srcDir), snapshotFiles(t, dstDir), only); len(d) > 0 {
		t.Fatalf("installed copy differs: %v", d)
	}
}

func TestResetAndPartialInstall(t *testing.T) {
	src := openLog(t, testConfig(t, t.TempDir()))
	for i := range 200 {
		mustAppend(t, src, uint64(i+1), tBaseTS, tmsg("P", 0, strings.Repeat("p", 900)))
	}
	// Install only from the third segment on, into a store reset there.
	from := 2 * src.segSize()
	dst := openLog(t, testConfig(t, t.TempDir()))
	mustAppend(t, dst, 1, tBaseTS, tmsg("Junk", 0, "to be discarded"))
	if err := dst.Reset(from, 0); err != nil {
		t.Fatal(err)
	}
	if dst.MinPhysOffset() != from || dst.MaxPhysOffset() != from || len(dst.Topics()) != 0 {
		t.Fatalf("after reset: min %d max %d topics %v", dst.MinPhysOffset(), dst.MaxPhysOffset(), dst.Topics())
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(src.CopyRange(pw, from, src.MaxPhysOffset())) }()
	if err := dst.InstallRange(from, pr, src.MaxPhysOffset()-from, 200); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	minQ := dst.MinOffset("P", 0)
	if minQ == 0 || dst.MaxOffset("P", 0) != 200 {
		t.Fatalf("min %d max %d", minQ, dst.MaxOffset("P", 0))
	}
	r := mustGet(t, dst, "P", 0, minQ, 1, 0, nil)
	if ms := decodeAll(t, r); len(ms) != 1 || ms[0].QueueOffset != minQ || ms[0].PhysicalOffset != from {
		t.Fatalf("first installed message: %+v", ms)
	}
	if r := mustGet(t, dst, "P", 0, 0, 1, 0, nil); r.Status != StatusOffsetTooSmall || r.NextBeginOffset != minQ {
		t.Fatalf("below min: %v %d", r.Status, r.NextBeginOffset)
	}
	// Survives a reopen, including an unclean one.
	cfg := dst.cfg
	dst.crash()
	dst2 := openLog(t, cfg)
	if dst2.MinOffset("P", 0) != minQ || dst2.MaxOffset("P", 0) != 200 || dst2.AppliedIndex() != 200 || dst2.MinPhysOffset() != from {
		t.Fatalf("after reopen: min %d max %d applied %d", dst2.MinOffset("P", 0), dst2.MaxOffset("P", 0), dst2.AppliedIndex())
	}
}

func TestTruncate(t *testing.T) {
	l := openLog(t, testConfig(t, t.TempDir()))
	var res []AppendResult
	for i := range 100 {
		res = append(res, mustAppend(t, l, uint64(i+1), tBaseTS, tmsg("Tr", 0, strings.Repeat("t", 900), PropertyKeys, fmt.Sprint("tk", i)))...)
	}
	cut := res[50].PhysicalOffset
	if err := l.Truncate(cut + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("truncate inside a record: %v", err)
	}
	if err := l.Truncate(cut); err != nil {
		t.Fatal(err)
	}
	if l.MaxPhysOffset() != cut || l.MaxOffset("Tr", 0) != 50 || l.AppliedIndex() != 50 {
		t.Fatalf("after truncate: end %d max %d applied %d", l.MaxPhysOffset(), l.MaxOffset("Tr", 0), l.AppliedIndex())
	}
	if got, _ := l.QueryByKey("Tr", "tk60", 5, 0, math.MaxInt64); len(got) != 0 {
		t.Fatal("index entry past the cut")
	}
	r := mustAppend(t, l, 51, tBaseTS, tmsg("Tr", 0, "again"))
	if r[0].PhysicalOffset != cut || r[0].QueueOffset != 50 {
		t.Fatalf("append after truncate: %+v", r[0])
	}
	cfg := l.cfg
	l.crash()
	l2 := openLog(t, cfg)
	if l2.MaxOffset("Tr", 0) != 51 || l2.AppliedIndex() != 51 {
		t.Fatalf("after reopen: max %d applied %d", l2.MaxOffset("Tr", 0), l2.AppliedIndex())
	}
}

func TestFlushUpdatesCheckpoint(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.FlushIntervalCommitLog = 5 * time.Millisecond
	cfg.FlushIntervalConsumeQueue = 5 * time.Millisecond
	cfg.FlushCommitLogLeastPages = 2
	l := openLog(t, cfg)
	cfg = l.cfg
	ckpt := func() *checkpoint {
		c, err := readCheckpoint(cfg.CheckpointPath)
		if err != nil || c == nil {
			t.Fatalf("checkpoint: %v", err)
		}
		return c
	}
	// Less than 2 pages dirty: the background flusher waits.
	mustAppend(t, l, 1, tBaseTS, tmsg("F", 0, "small"))
	// More than 2 pages: it flushes by itself.
	var idx uint64 = 1
	for l.MaxPhysOffset() < 3*pageSize {
		idx++
		mustAppend(t, l, idx, tBaseTS, tmsg("F", 0, strings.Repeat("f", 1000)))
	}
	end := l.MaxPhysOffset()
	waitFor(t, "background flush", func() bool { c := ckpt(); return c.LogOffset == end && c.AppliedIndex == idx })
	mustAppend(t, l, idx+1, tBaseTS, tmsg("F", 0, "tiny"))
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	c := ckpt()
	if c.LogOffset != l.MaxPhysOffset() || c.CQOffset != l.MaxPhysOffset() || c.AppliedIndex != idx+1 || len(c.Queues) != 1 || c.Queues[0].Max != int64(idx+1) {
		t.Fatalf("checkpoint after Flush: %+v", c)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}
	if _, err := l.Append(AppendBatch{Messages: []*Message{tmsg("F", 0, "x")}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
}

func TestDeleteTopic(t *testing.T) {
	l := openLog(t, testConfig(t, t.TempDir()))
	mustAppend(t, l, 1, tBaseTS, tmsg("Gone", 0, "x"), tmsg("Kept", 0, "y"))
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteTopic("Gone"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(l.Topics()) != "[Kept]" {
		t.Fatalf("topics %v", l.Topics())
	}
	cfg := l.cfg
	l.crash()
	// An unclean reopen must not resurrect the deleted topic's queue.
	l2 := openLog(t, cfg)
	if fmt.Sprint(l2.Topics()) != "[Kept]" {
		t.Fatalf("after reopen: topics %v", l2.Topics())
	}
}
