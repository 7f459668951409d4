package fsm

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/commitlog"
)

func TestFlowCommands(t *testing.T) {
	dir := t.TempDir()
	r := newReplica(t, dir, nil)
	app := func(ts int64, msgs ...*commitlog.Message) []byte {
		b, err := EncodeFlowAppend(ts, msgs)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	logs := []*raft.Log{
		entry(t, 1, CmdDeliverScheduled, &DeliverScheduledCommand{Level: 3, From: 0, To: 2, Append: app(tBaseTS, tmsg("T", 0, "a"), tmsg("T", 0, "b"))}),
		entry(t, 2, CmdDeliverScheduled, &DeliverScheduledCommand{Level: 3, From: 0, To: 2, Append: app(tBaseTS, tmsg("T", 0, "dup"))}), // a second leader's proposal of the same range
		entry(t, 3, CmdEndTx, &EndTxCommand{HalfOffset: 100, Commit: true, Append: app(tBaseTS+1, tmsg("T", 1, "tx"))}),
		entry(t, 4, CmdEndTx, &EndTxCommand{HalfOffset: 100, Commit: true, Append: app(tBaseTS+1, tmsg("T", 1, "tx"))}),
		entry(t, 5, CmdTxCheck, &TxCheckCommand{Checked: []int64{200, 200, 100}, Progress: 3}),
	}
	res := applyAll(t, r.fsm, logs)
	if fr, ok := res[0].(*FlowResponse); !ok || len(fr.Results) != 2 {
		t.Fatalf("deliver: %#v", res[0])
	}
	for _, i := range []int{1, 3} {
		if err, ok := res[i].(error); !ok || !errors.Is(err, ErrStale) {
			t.Fatalf("entry %d: want ErrStale, got %#v", i+1, res[i])
		}
	}
	if got := r.log.MaxOffset("T", 0); got != 2 {
		t.Fatalf("T/0 max offset %d, want 2 (no duplicate)", got)
	}
	if got := r.log.MaxOffset("T", 1); got != 1 {
		t.Fatalf("T/1 max offset %d, want 1", got)
	}
	check := func(f *FSM) {
		t.Helper()
		if p := f.ScheduleProgress(3); p != 2 {
			t.Fatalf("progress %d", p)
		}
		if !f.TxResolved(100) || f.TxResolved(200) {
			t.Fatal("tx resolution")
		}
		if c := f.TxChecks(200); c != 2 {
			t.Fatalf("checks %d", c)
		}
		if f.TxChecks(100) != 0 || f.TxProgress() != 3 {
			t.Fatal("resolved half counted or progress lost")
		}
	}
	check(r.fsm)
	// Survives the metadata file (close + reopen) and replay (skipped entries).
	r.close()
	r.reopen(nil)
	check(r.fsm)
	applyAll(t, r.fsm, logs)
	check(r.fsm)
	if got := r.log.MaxOffset("T", 0); got != 2 {
		t.Fatalf("after replay T/0 max offset %d", got)
	}
	// Crash before any metadata write: replay over a log that already has the appends.
	dir2 := t.TempDir()
	r2 := newReplica(t, dir2, nil)
	applyAll(t, r2.fsm, logs)
	r2.crash()
	r2.reopen(nil)
	applyAll(t, r2.fsm, logs)
	check(r2.fsm)
	if got := r2.log.MaxOffset("T", 0); got != 2 {
		t.Fatalf("after crash replay T/0 max offset %d", got)
	}
	// Pruning.
	r2.fsm.Apply(entry(t, 6, CmdTxCheck, &TxCheckCommand{PruneBelow: 1000}))
	if r2.fsm.TxResolved(100) || r2.fsm.TxChecks(200) != 0 {
		t.Fatal("not pruned")
	}
}

// A flow append refused by the commitlog's validation still moves the state, so a replay that
// skips the append (a later entry is on disk) reaches the same state.
func TestFlowRejectedAppendMovesState(t *testing.T) {
	r := newReplica(t, t.TempDir(), nil)
	bad := tmsg("bad topic!", 0, "x")
	data, err := EncodeFlowAppend(tBaseTS, []*commitlog.Message{bad})
	if err != nil {
		t.Fatal(err)
	}
	res := r.fsm.Apply(entry(t, 1, CmdDeliverScheduled, &DeliverScheduledCommand{Level: 1, From: 0, To: 1, Append: data}))
	if err, ok := res.(error); !ok || !errors.Is(err, commitlog.ErrInvalidTopic) {
		t.Fatalf("want ErrInvalidTopic, got %#v", res)
	}
	if p := r.fsm.ScheduleProgress(1); p != 1 {
		t.Fatalf("progress %d, want 1", p)
	}
	if err, ok := r.fsm.Apply(entry(t, 2, CmdDeliverScheduled, &DeliverScheduledCommand{Level: 1, From: 0, To: 1})).(error); !ok || !errors.Is(err, ErrStale) {
		t.Fatalf("second proposal: %v", err)
	}
}

// BenchmarkApplyDeliverScheduled measures one CmdDeliverScheduled entry of 32 delivered
// messages of 1 KiB: decode, guard, commitlog append, progress update.
func BenchmarkApplyDeliverScheduled(b *testing.B) {
	cfg := commitlog.DefaultConfig(b.TempDir()) // as BenchmarkApplyAppend: large segments
	cfg.MappedFileSizeCommitLog = 256 << 20
	cfg.Now = func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.Local) }
	cfg.DiskUsage = func(string) (float64, error) { return 0.10, nil }
	r := newReplicaCfg(b, cfg, nil)
	body := strings.Repeat("x", 1024)
	msgs := make([]*commitlog.Message, 32)
	for i := range msgs {
		msgs[i] = tmsg("Topic", int32(i%4), body, commitlog.PropertyUniqKey, fmt.Sprintf("U%02d", i), commitlog.PropertyWaitStoreMsgOK, "false")
	}
	data, err := EncodeFlowAppend(tBaseTS, msgs)
	if err != nil {
		b.Fatal(err)
	}
	logs := make([]*raft.Log, b.N)
	for i := range logs {
		from := int64(i) * 32
		logs[i] = entry(b, uint64(i+1), CmdDeliverScheduled, &DeliverScheduledCommand{Level: 1, From: from, To: from + 32, Append: data})
	}
	b.SetBytes(int64(len(msgs) * len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for _, l := range logs {
		if err, ok := r.fsm.Apply(l).(error); ok {
			b.Fatal(err)
		}
	}
}
