package commitlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftmq/raftmq/message"
)

// TestRecoveryBounded: after a clean close nothing is rescanned; after an
// unclean stop the scan covers one segment plus what came after the
// checkpoint, not the whole log.
func TestRecoveryBounded(t *testing.T) {
	l := openLog(t, testConfig(t, t.TempDir()))
	cfg := l.cfg
	var idx uint64
	for l.MaxPhysOffset() < 5*l.segSize() {
		idx++
		mustAppend(t, l, idx, tBaseTS, tmsg("Bnd", 0, strings.Repeat("b", 1000)))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, cfg)
	if l.recovery.scanned != 0 || l.recovery.redispatched != 0 {
		t.Fatalf("clean reopen scanned %d bytes, redispatched %d", l.recovery.scanned, l.recovery.redispatched)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	ck := l.MaxPhysOffset()
	for range 10 {
		idx++
		mustAppend(t, l, idx, tBaseTS, tmsg("Bnd", 0, strings.Repeat("b", 1000)))
	}
	end := l.MaxPhysOffset()
	l.crash()
	l = openLog(t, cfg)
	segStart := (ck - 1) / l.segSize() * l.segSize()
	if l.recovery.scanned != end-segStart {
		t.Fatalf("unclean reopen scanned %d bytes, want %d (from the segment of the checkpoint)", l.recovery.scanned, end-segStart)
	}
	if l.recovery.redispatchFrom != segStart || l.MaxOffset("Bnd", 0) != int64(idx) || l.AppliedIndex() != idx {
		t.Fatalf("redispatch from %d, max %d applied %d", l.recovery.redispatchFrom, l.MaxOffset("Bnd", 0), l.AppliedIndex())
	}
}

// TestFlushLeastPages drives the flush decisions directly (the background
// flushers are parked by a long interval).
func TestFlushLeastPages(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.FlushIntervalCommitLog = time.Hour
	cfg.FlushIntervalConsumeQueue = time.Hour
	cfg.FlushCommitLogLeastPages = 4
	cfg.FlushConsumeQueueLeastPages = 1
	l := openLog(t, cfg)
	ckpt := func() *checkpoint {
		c, err := readCheckpoint(l.cfg.CheckpointPath)
		if err != nil || c == nil {
			t.Fatalf("checkpoint: %v", err)
		}
		return c
	}
	mustAppend(t, l, 1, tBaseTS, tmsg("LP", 0, strings.Repeat("x", 2000)))
	if err := l.flushCommitLog(false); err != nil {
		t.Fatal(err)
	}
	if c := ckpt(); c.LogOffset != 0 {
		t.Fatalf("flushed with fewer than 4 dirty pages: %d", c.LogOffset)
	}
	idx := uint64(1)
	for l.MaxPhysOffset() < 4*pageSize {
		idx++
		mustAppend(t, l, idx, tBaseTS, tmsg("LP", 0, strings.Repeat("x", 2000)))
	}
	if err := l.flushCommitLog(false); err != nil {
		t.Fatal(err)
	}
	if c := ckpt(); c.LogOffset != l.MaxPhysOffset() || c.AppliedIndex != idx {
		t.Fatalf("4 dirty pages not flushed: %+v", c)
	}
	// A thorough flush takes whatever is dirty.
	idx++
	mustAppend(t, l, idx, tBaseTS, tmsg("LP", 0, "small"))
	if err := l.flushCommitLog(false); err != nil {
		t.Fatal(err)
	}
	if c := ckpt(); c.LogOffset == l.MaxPhysOffset() {
		t.Fatal("flushed a single dirty page without force")
	}
	if err := l.flushCommitLog(true); err != nil {
		t.Fatal(err)
	}
	if c := ckpt(); c.LogOffset != l.MaxPhysOffset() {
		t.Fatal("thorough flush left dirty data")
	}
	// Consume queues: 1 page = 204 entries.
	if err := l.flushConsumeQueues(false); err != nil {
		t.Fatal(err)
	}
	if c := ckpt(); c.CQOffset != 0 || len(c.Queues) != 1 || c.Queues[0].Max != 0 {
		t.Fatalf("consume queue flushed below one dirty page: %+v", c)
	}
	if err := l.flushConsumeQueues(true); err != nil {
		t.Fatal(err)
	}
	if c := ckpt(); c.CQOffset != l.MaxPhysOffset() || c.Queues[0].Max != l.MaxOffset("LP", 0) {
		t.Fatalf("thorough consume-queue flush: %+v", c)
	}
}

// TestInterruptedReset: a crash after the reset marker was written is
// finished by the next Open.
func TestInterruptedReset(t *testing.T) {
	l := openLog(t, testConfig(t, t.TempDir()))
	cfg := l.cfg
	for i := range 100 {
		mustAppend(t, l, uint64(i+1), tBaseTS, tmsg("IR", 0, strings.Repeat("i", 900)))
	}
	l.crash()
	b := binary.BigEndian.AppendUint64(nil, 12345)
	b = binary.BigEndian.AppendUint64(b, 77)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if err := os.WriteFile(filepath.Join(cfg.RootDir, "reset"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	// Half of the deletion had happened.
	if err := os.Remove(filepath.Join(cfg.CommitLogDir, fileName(0))); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, cfg)
	if l.MinPhysOffset() != 12345 || l.MaxPhysOffset() != 12345 || l.AppliedIndex() != 77 || len(l.Topics()) != 0 {
		t.Fatalf("after finishing the reset: min %d max %d applied %d topics %v", l.MinPhysOffset(), l.MaxPhysOffset(), l.AppliedIndex(), l.Topics())
	}
	if _, err := os.Stat(filepath.Join(cfg.RootDir, "reset")); !os.IsNotExist(err) {
		t.Fatalf("reset marker left: %v", err)
	}
	res := mustAppend(t, l, 78, tBaseTS, tmsg("IR", 0, "fresh"))
	if res[0].PhysicalOffset != 12345 || res[0].QueueOffset != 0 {
		t.Fatalf("first append after reset: %+v", res[0])
	}
}

// TestConcurrentReadersAndRetention reads while appending and deleting
// segments: buffers handed out stay valid until released.
func TestConcurrentReadersAndRetention(t *testing.T) {
	var clock fakeClock
	clock.set(time.Date(2026, 3, 10, 4, 0, 0, 0, time.Local))
	cfg := testConfig(t, t.TempDir())
	cfg.Now = clock.now
	cfg.FileReservedTime = time.Millisecond
	cfg.FlushIntervalCommitLog = time.Millisecond
	cfg.FlushIntervalConsumeQueue = time.Millisecond
	l := openLog(t, cfg)
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := int64(0)
			for !stop.Load() {
				res, err := l.GetMessages("CR", 0, off, 16, 0, nil)
				if err != nil {
					errs <- err
					return
				}
				for i, b := range res.Buffers {
					m, _, err := message.DecodeRecord(b)
					if err != nil || !bytes.HasPrefix(m.Body, []byte(fmt.Sprint("m", res.QueueOffsets[i], "-"))) {
						errs <- fmt.Errorf("reader %d: offset %d: %v", r, res.QueueOffsets[i], err)
						res.Release()
						return
					}
				}
				off = res.NextBeginOffset
				res.Release()
			}
		}()
	}
	for i := range 600 {
		mustAppend(t, l, uint64(i+1), tBaseTS, tmsg("CR", 0, fmt.Sprintf("m%d-%s", i, strings.Repeat("c", 700))))
		if i%50 == 0 {
			if _, err := l.runRetention(false); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if l.MinPhysOffset() == 0 {
		t.Fatal("retention never ran")
	}
}

// TestStraySegmentAfterGap: an empty segment file that does not follow the
// log (a spare left by a crash after a cut) is removed at Open; one holding
// records is an error.
func TestStraySegmentAfterGap(t *testing.T) {
	l := openLog(t, testConfig(t, t.TempDir()))
	cfg := l.cfg
	mustAppend(t, l, 1, tBaseTS, tmsg("S", 0, "x"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(cfg.CommitLogDir, fileName(10*cfg.MappedFileSizeCommitLog))
	if err := os.WriteFile(stray, make([]byte, cfg.MappedFileSizeCommitLog), 0o644); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, cfg)
	if _, err := os.Stat(stray); !os.IsNotExist(err) || l.MaxOffset("S", 0) != 1 {
		t.Fatalf("stray empty segment: %v, max %d", err, l.MaxOffset("S", 0))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rec := encodeFor(t, tmsg("S", 0, "y"), 0, 10*cfg.MappedFileSizeCommitLog, tBaseTS)
	if err := os.WriteFile(stray, rec, 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err := Open(cfg); err == nil {
		l.Close()
		t.Fatal("a gap before a segment with records was accepted")
	} else {
		t.Logf("refused: %v", err)
	}
}

// TestAppendRollbackOnFailedRoll: when the next segment cannot be created
// mid-batch, nothing of the batch remains (not even the blank filler).
func TestAppendRollbackOnFailedRoll(t *testing.T) {
	l := openLog(t, testConfig(t, t.TempDir()))
	cfg := l.cfg
	var idx uint64
	for l.MaxPhysOffset() < l.segSize()-3000 {
		idx++
		mustAppend(t, l, idx, tBaseTS, tmsg("RB", 0, strings.Repeat("r", 1000), PropertyKeys, fmt.Sprint("rk", idx)))
	}
	l.preMu.Lock()
	l.dropSpareLocked()
	l.preMu.Unlock()
	blocker := filepath.Join(cfg.CommitLogDir, fileName(l.segSize()))
	if err := os.Mkdir(blocker, 0o755); err != nil {
		t.Fatal(err)
	}
	before := snapshotFiles(t, cfg.CommitLogDir)
	end, maxQ := l.MaxPhysOffset(), l.MaxOffset("RB", 0)
	_, err := l.Append(AppendBatch{RaftIndex: idx + 1, StoreTimestamp: tBaseTS, Messages: []*Message{
		tmsg("RB", 0, strings.Repeat("a", 1000), PropertyKeys, "newkey"),
		tmsg("RB", 0, strings.Repeat("b", 2000), PropertyKeys, "newkey"),
	}})
	if err == nil {
		t.Fatal("append with an impossible roll succeeded")
	}
	t.Logf("refused: %v", err)
	if l.MaxPhysOffset() != end || l.MaxOffset("RB", 0) != maxQ || l.AppliedIndex() != idx {
		t.Fatalf("rollback incomplete: end %d/%d max %d/%d applied %d", l.MaxPhysOffset(), end, l.MaxOffset("RB", 0), maxQ, l.AppliedIndex())
	}
	if got, _ := l.QueryByKey("RB", "newkey", 10, 0, 1<<62); len(got) != 0 {
		t.Fatalf("index kept %d entries of the failed batch", len(got))
	}
	if d := diffFiles(before, snapshotFiles(t, cfg.CommitLogDir), nil); len(d) != 0 {
		t.Fatalf("failed batch changed the commitlog: %v", d)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	res := mustAppend(t, l, idx+1, tBaseTS, tmsg("RB", 0, strings.Repeat("a", 1000)), tmsg("RB", 0, strings.Repeat("b", 2000)))
	if res[0].PhysicalOffset != end || res[1].PhysicalOffset != l.segSize() || res[1].QueueOffset != maxQ+1 {
		t.Fatalf("after the blocker went: %+v", res)
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	c := &checkpoint{AppliedIndex: 9, LogOffset: 100, JournalSeq: 4, CQOffset: 90, IndexOffset: 80, LogStart: 0,
		Queues:  []queueState{{Topic: "B", QueueID: 1, Min: 2, Max: 3}, {Topic: "A", QueueID: 7, Min: 0, Max: 5}},
		Deleted: []tombstone{{Topic: "Gone", Offset: 50}}}
	path := filepath.Join(t.TempDir(), "ck")
	if err := writeCheckpoint(path, c); err != nil {
		t.Fatal(err)
	}
	got, err := readCheckpoint(path)
	if err != nil || fmt.Sprint(*got) != fmt.Sprint(*c) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if got.Queues[0].Topic != "A" {
		t.Fatal("queue table not sorted")
	}
	b, _ := os.ReadFile(path)
	for i := range b {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x40
		if _, err := unmarshalCheckpoint(bad); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	for n := range len(b) {
		if _, err := unmarshalCheckpoint(b[:n]); err == nil {
			t.Fatalf("checkpoint cut at %d accepted", n)
		}
	}
}

func TestStatfsUsageAndStatusNames(t *testing.T) {
	u, err := statfsUsage(t.TempDir())
	if err != nil || u <= 0 || u >= 1 {
		t.Fatalf("statfsUsage = %v, %v", u, err)
	}
	if StatusOffsetTooSmall.String() != "OFFSET_TOO_SMALL" || GetStatus(99).String() != "GetStatus(99)" {
		t.Fatal("status names")
	}
}
