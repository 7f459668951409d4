package fsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/message"
)

type memSink struct {
	bytes.Buffer
	cancelled, closed bool
}

func (s *memSink) ID() string            { return "mem" }
func (s *memSink) Cancel() error         { s.cancelled = true; return nil }
func (s *memSink) Close() error          { s.closed = true; return nil }
func (s *memSink) Reader() io.ReadCloser { return io.NopCloser(bytes.NewReader(s.Bytes())) }

func takeSnapshot(t testing.TB, f *FSM) *memSink {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	defer snap.Release()
	var s memSink
	if err := snap.Persist(&s); err != nil || !s.closed {
		t.Fatalf("Persist: %v", err)
	}
	return &s
}

// fetcherOf serves fetches from src's FSM and counts them.
func fetcherOf(src *replica, calls *atomic.Int32) Fetcher {
	return FetcherFunc(func(ctx context.Context, from int64, maxBytes int) ([]byte, error) {
		if calls != nil {
			calls.Add(1)
		}
		if maxBytes > DefaultFetchBytes {
			return nil, fmt.Errorf("asked for %d bytes", maxBytes)
		}
		return src.fsm.ReadCommitLog(from, maxBytes)
	})
}

// commitlogBytes is the raw commitlog in [from, to).
func commitlogBytes(t testing.TB, l *commitlog.Log, from, to int64) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := l.CopyRange(&b, from, to); err != nil {
		t.Fatalf("CopyRange: %v", err)
	}
	return b.Bytes()
}

func requireSameLog(t testing.TB, a, b *replica) {
	t.Helper()
	requireSameLogFn(t, a, b, queueState)
}

// requireSameLogFn compares the logs over the range both hold, the queues as
// rendered by qs, and the metadata.
func requireSameLogFn(t testing.TB, a, b *replica, qs func(*commitlog.Log) string) {
	t.Helper()
	if a.log.MaxPhysOffset() != b.log.MaxPhysOffset() || a.log.AppliedIndex() != b.log.AppliedIndex() {
		t.Fatalf("logs end at %d (index %d) and %d (index %d)", a.log.MaxPhysOffset(), a.log.AppliedIndex(), b.log.MaxPhysOffset(), b.log.AppliedIndex())
	}
	from := max(a.log.MinPhysOffset(), b.log.MinPhysOffset())
	if !bytes.Equal(commitlogBytes(t, a.log, from, a.log.MaxPhysOffset()), commitlogBytes(t, b.log, from, b.log.MaxPhysOffset())) {
		t.Fatal("commitlog bytes differ")
	}
	if qa, qb := qs(a.log), qs(b.log); qa != qb {
		t.Fatalf("queues differ:\n%s\n%s", qa, qb)
	}
	if ma, mb := metaDump(a.fsm), metaDump(b.fsm); ma != mb {
		t.Fatalf("metadata differs:\n%s\n%s", ma, mb)
	}
}

func TestSnapshot_WritesMetaFileAndPersists(t *testing.T) {
	r := newReplica(t, t.TempDir(), nil)
	applyAll(t, r.fsm, workload(t, 50))
	s := takeSnapshot(t, r.fsm)
	disk, err := readFileT(r.fcfg.MetaPath)
	if err != nil || !bytes.Equal(disk, s.Bytes()) {
		t.Fatalf("meta file and snapshot differ (%v)", err)
	}
	st, err := decodeMeta(s.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if st.Applied != 50 || st.LogApplied != r.log.AppliedIndex() || st.LogMaxPhys != r.log.MaxPhysOffset() || len(st.Topics) == 0 {
		t.Fatalf("snapshot state %+v", st)
	}
}

func TestRestore_IntoEmpty_FetchesWholeLog(t *testing.T) {
	logs := workload(t, 400)
	src := newReplica(t, t.TempDir(), nil)
	applyAll(t, src.fsm, logs[:300])
	s := takeSnapshot(t, src.fsm)
	applyAll(t, src.fsm, logs[300:]) // the leader keeps writing

	var calls atomic.Int32
	dst := newReplica(t, t.TempDir(), func(c *Config) { c.Fetcher = fetcherOf(src, &calls); c.FetchBytes = 64 << 10 })
	w := dst.fsm.WaitQueue("TopicA", 0)
	if err := dst.fsm.Restore(s.Reader()); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	<-w
	if dst.fsm.AppliedIndex() != 300 || dst.log.AppliedIndex() > 300 || dst.log.AppliedIndex() < 290 {
		t.Fatalf("applied %d, log %d", dst.fsm.AppliedIndex(), dst.log.AppliedIndex())
	}
	if n := calls.Load(); n < 4 {
		t.Fatalf("only %d fetches for %d bytes in 64 KiB chunks", n, dst.log.MaxPhysOffset())
	}
	// Raft then replays what follows the snapshot.
	applyAll(t, dst.fsm, logs[300:])
	requireSameLog(t, src, dst)
	src.close()
	dst.close()
	requireSameFiles(t, files(t, src.dir, true), files(t, dst.dir, true))
}

func TestRestore_IntoBehind(t *testing.T) {
	logs := workload(t, 400)
	src := newReplica(t, t.TempDir(), nil)
	dst := newReplica(t, t.TempDir(), func(c *Config) { c.Fetcher = fetcherOf(src, nil) })
	applyAll(t, src.fsm, logs[:350])
	applyAll(t, dst.fsm, logs[:120])
	s := takeSnapshot(t, src.fsm)
	before := commitlogBytes(t, dst.log, 0, dst.log.MaxPhysOffset())
	if err := dst.fsm.Restore(s.Reader()); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if !bytes.Equal(before, commitlogBytes(t, dst.log, 0, int64(len(before)))) {
		t.Fatal("restore rewrote the bytes the replica had")
	}
	applyAll(t, src.fsm, logs[350:])
	applyAll(t, dst.fsm, logs[350:])
	requireSameLog(t, src, dst)
	src.close()
	dst.close()
	requireSameFiles(t, files(t, src.dir, true), files(t, dst.dir, true))
}

func TestRestore_IntoAhead_KeepsLog(t *testing.T) {
	logs := workload(t, 300)
	src := newReplica(t, t.TempDir(), nil)
	applyAll(t, src.fsm, logs[:30])
	s30 := takeSnapshot(t, src.fsm)
	applyAll(t, src.fsm, logs[30:100])
	s100 := takeSnapshot(t, src.fsm)
	var calls atomic.Int32

	t.Run("log and metadata ahead", func(t *testing.T) {
		dst := newReplica(t, t.TempDir(), func(c *Config) { c.Fetcher = fetcherOf(src, &calls) })
		applyAll(t, dst.fsm, logs[:250])
		before := commitlogBytes(t, dst.log, 0, dst.log.MaxPhysOffset())
		logApplied, meta := dst.log.AppliedIndex(), metaDump(dst.fsm)
		if err := dst.fsm.Restore(s100.Reader()); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		if calls.Load() != 0 {
			t.Fatalf("%d fetches for a replica that is ahead", calls.Load())
		}
		if dst.log.AppliedIndex() != logApplied || !bytes.Equal(before, commitlogBytes(t, dst.log, 0, dst.log.MaxPhysOffset())) {
			t.Fatal("the local commitlog changed")
		}
		if dst.fsm.AppliedIndex() != 250 || metaDump(dst.fsm) != meta {
			t.Fatalf("metadata changed (applied %d)", dst.fsm.AppliedIndex())
		}
		// Raft replays from the snapshot: everything is skipped.
		applyAll(t, dst.fsm, logs[100:])
		dst2 := newReplica(t, t.TempDir(), nil)
		applyAll(t, dst2.fsm, logs)
		requireSameLog(t, dst2, dst)
	})

	t.Run("log ahead, metadata behind", func(t *testing.T) {
		dst := newReplica(t, t.TempDir(), func(c *Config) { c.Fetcher = fetcherOf(src, &calls) })
		applyAll(t, dst.fsm, logs[:52])
		dst.crash() // no meta file: the metadata restarts empty, the log keeps 52
		dst.reopen(func(c *Config) { c.Fetcher = fetcherOf(src, &calls) })
		t.Cleanup(dst.close)
		before := commitlogBytes(t, dst.log, 0, dst.log.MaxPhysOffset())
		if err := dst.fsm.Restore(s30.Reader()); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		if calls.Load() != 0 || !bytes.Equal(before, commitlogBytes(t, dst.log, 0, dst.log.MaxPhysOffset())) {
			t.Fatal("the local commitlog changed")
		}
		if dst.fsm.AppliedIndex() != 30 {
			t.Fatalf("metadata not adopted: applied %d", dst.fsm.AppliedIndex())
		}
		applyAll(t, dst.fsm, logs[30:100])
		requireSameLog(t, src, dst)
	})
}

func TestRestore_LeaderRetentionGap_Resets(t *testing.T) {
	logs := workload(t, 400)
	// The leader's clock is years after the store times: sealed segments
	// expire, and retention runs at its current hour.
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.Local)
	cfg := logConfig(t, t.TempDir())
	cfg.Now = func() time.Time { return now }
	cfg.DeleteWhen = fmt.Sprintf("%02d", now.Hour())
	cfg.FileReservedTime = time.Hour
	cfg.RetentionInterval = 10 * time.Millisecond
	src := newReplicaCfg(t, cfg, nil)
	dst := newReplica(t, t.TempDir(), func(c *Config) { c.Fetcher = fetcherOf(src, nil) })
	applyAll(t, dst.fsm, logs[:20])
	applyAll(t, src.fsm, logs[:350])
	seg := cfg.MappedFileSizeCommitLog
	waitFor(t, 10*time.Second, "retention on the leader", func() bool {
		return src.log.MinPhysOffset() == src.log.MaxPhysOffset()/seg*seg // only the active segment is left
	})
	if src.log.MinPhysOffset() <= dst.log.MaxPhysOffset() {
		t.Fatalf("no gap: leader starts at %d, follower ends at %d", src.log.MinPhysOffset(), dst.log.MaxPhysOffset())
	}
	s := takeSnapshot(t, src.fsm)
	if err := dst.fsm.Restore(s.Reader()); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if dst.log.MinPhysOffset() != src.log.MinPhysOffset() {
		t.Fatalf("restored log starts at %d, leader's at %d", dst.log.MinPhysOffset(), src.log.MinPhysOffset())
	}
	applyAll(t, src.fsm, logs[350:])
	applyAll(t, dst.fsm, logs[350:])
	// The leader's retention goes on deleting the segments just sealed; with
	// no more writes it settles on the active segment. Compare only then,
	// or a deletion between reading the bounds and the bytes races the
	// comparison. Then compare the bytes both hold and the queues' ends.
	waitFor(t, 10*time.Second, "retention on the leader to settle", func() bool {
		return src.log.MinPhysOffset() == src.log.MaxPhysOffset()/seg*seg
	})
	requireSameLogFn(t, src, dst, queueEnds)
}

func queueEnds(l *commitlog.Log) string {
	var sb strings.Builder
	for _, topic := range l.Topics() {
		for _, q := range l.QueueIDs(topic) {
			fmt.Fprintf(&sb, "%s/%d:%d ", topic, q, l.MaxOffset(topic, q))
		}
	}
	return sb.String()
}

func TestRestore_FetchErrorLeavesPrefix(t *testing.T) {
	logs := workload(t, 300)
	src := newReplica(t, t.TempDir(), nil)
	applyAll(t, src.fsm, logs)
	s := takeSnapshot(t, src.fsm)
	boom := errors.New("peer went away")
	failing := func(c *Config) {
		var n atomic.Int32
		c.FetchBytes = 64 << 10
		c.Fetcher = FetcherFunc(func(ctx context.Context, from int64, maxBytes int) ([]byte, error) {
			if n.Add(1) == 3 {
				return nil, boom
			}
			return src.fsm.ReadCommitLog(from, maxBytes)
		})
	}
	for _, then := range []string{"raft replays the entries", "restore again"} {
		t.Run(then, func(t *testing.T) {
			dst := newReplica(t, t.TempDir(), failing)
			applyAll(t, dst.fsm, logs[:40])
			start := dst.log.MaxPhysOffset()
			if err := dst.fsm.Restore(s.Reader()); !errors.Is(err, boom) {
				t.Fatalf("Restore: %v", err)
			}
			// The log is a prefix of the peer's: cut at the start or at a
			// replayed deletion, with a matching applied index.
			end := dst.log.MaxPhysOffset()
			if end < start || !bytes.Equal(commitlogBytes(t, dst.log, 0, end), commitlogBytes(t, src.log, 0, end)) {
				t.Fatalf("failed restore left %d bytes that are not a prefix of the peer's", end)
			}
			if dst.fsm.AppliedIndex() != 40 {
				t.Fatalf("metadata applied index %d", dst.fsm.AppliedIndex())
			}
			if then == "raft replays the entries" {
				applyAll(t, dst.fsm, logs[40:])
			} else if err := dst.fsm.Restore(s.Reader()); err != nil {
				t.Fatalf("second Restore: %v", err)
			}
			requireSameLog(t, src, dst)
		})
	}
	// No fetcher: a restore that needs bytes fails.
	empty := newReplica(t, t.TempDir(), nil)
	if err := empty.fsm.Restore(s.Reader()); err == nil || !strings.Contains(err.Error(), "Fetcher") {
		t.Fatalf("restore without fetcher: %v", err)
	}
	if err := empty.fsm.Restore(io.NopCloser(strings.NewReader("garbage"))); !errors.Is(err, ErrCorruptMeta) {
		t.Fatalf("garbage snapshot: %v", err)
	}
}

func TestReadCommitLog_WholeRecords(t *testing.T) {
	r := newReplica(t, t.TempDir(), nil)
	applyAll(t, r.fsm, workload(t, 200))
	end := r.log.MaxPhysOffset()
	if end < 3*(64<<10) {
		t.Fatalf("too little data: %d", end)
	}
	var all []byte
	blanks := 0
	for pos := int64(0); pos < end; {
		b, err := r.fsm.ReadCommitLog(pos, 3000)
		if err != nil {
			t.Fatalf("ReadCommitLog(%d): %v", pos, err)
		}
		if len(b) == 0 {
			t.Fatalf("nothing at %d before %d", pos, end)
		}
		// Every chunk is a run of whole records.
		for off := 0; off < len(b); {
			info, err := message.ParseRecordInfo(b[off:])
			switch {
			case errors.Is(err, commitlog.ErrBlank):
				blanks++
				if (pos+int64(off)+int64(info.Size))%(64<<10) != 0 {
					t.Fatalf("blank at %d does not end its segment", pos+int64(off))
				}
			case err != nil:
				t.Fatalf("record at %d: %v", pos+int64(off), err)
			case info.PhysicalOffset != pos+int64(off):
				t.Fatalf("record at %d says %d", pos+int64(off), info.PhysicalOffset)
			}
			off += int(info.Size)
			if off > len(b) {
				t.Fatalf("chunk at %d ends inside a record", pos)
			}
		}
		if len(b) > 3000 && bytes.Count(b, nil) > 0 {
			if _, err := message.ParseRecordInfo(b); err == nil {
				if info, _ := message.ParseRecordInfo(b); int(info.Size) != len(b) {
					t.Fatalf("chunk of %d bytes over the limit holds more than one record", len(b))
				}
			}
		}
		all = append(all, b...)
		pos += int64(len(b))
	}
	if blanks < 2 {
		t.Fatalf("only %d blanks crossed", blanks)
	}
	if !bytes.Equal(all, commitlogBytes(t, r.log, 0, end)) {
		t.Fatal("chunks do not add up to the log")
	}
	if b, err := r.fsm.ReadCommitLog(end, 1<<20); err != nil || len(b) != 0 {
		t.Fatalf("at the end: %d bytes, %v", len(b), err)
	}
	if _, err := r.fsm.ReadCommitLog(end+1, 1<<20); !errors.Is(err, commitlog.ErrOffsetOutOfRange) {
		t.Fatalf("past the end: %v", err)
	}
	if _, err := r.fsm.ReadCommitLog(5, 1<<20); !errors.Is(err, commitlog.ErrCorrupt) {
		t.Fatalf("inside a record: %v", err)
	}
}

var _ raft.SnapshotSink = (*memSink)(nil)
