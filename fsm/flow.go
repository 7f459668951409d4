package fsm

import (
	"errors"
	"fmt"
	"sort"

	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/commitlog"
)

// Message-flow commands (delayed delivery, transactions). Each one that
// writes messages carries them as an EncodeAppend payload and applies the
// append and its progress update in the same raft entry, so a leader change
// can neither lose nor repeat a delivery: a command whose guard no longer
// holds (another leader already delivered that range, the transaction was
// already resolved) applies nothing and returns an error wrapping ErrStale.

// ErrStale is the result of a flow command whose guard did not hold: it
// changed nothing.
var ErrStale = errors.New("fsm: stale flow command")

// DeliverScheduledCommand (CmdDeliverScheduled) appends the delayed messages
// of one delay level that fell due and moves the level's delivery progress
// (the next SCHEDULE_TOPIC_XXXX queue offset, queue Level-1) from From to To.
// It applies only when the recorded progress equals From.
type DeliverScheduledCommand struct {
	Level  int32  `msgpack:"l"`
	From   int64  `msgpack:"f"`
	To     int64  `msgpack:"t"`
	Append []byte `msgpack:"a"` // EncodeAppend output without the type byte; empty = nothing to write
}

// EndTxCommand (CmdEndTx) resolves the half message at physical offset
// HalfOffset (queue offset HalfQueueOffset in the half queue): with Commit,
// Append holds the real message to write. It applies only when the half is not
// resolved yet and lies at or above the half-queue progress.
type EndTxCommand struct {
	HalfOffset      int64  `msgpack:"h"`
	HalfQueueOffset int64  `msgpack:"q"` // below the half-queue progress = already resolved (pruned)
	Commit          bool   `msgpack:"c"`
	Append          []byte `msgpack:"a"`
}

// TxCheckCommand (CmdTxCheck) records back-checks sent for pending halves
// (their check counts go up by one) and moves the half-queue progress: every
// half below queue offset Progress is resolved or abandoned, and resolution
// records of halves below physical offset PruneBelow are dropped.
type TxCheckCommand struct {
	Checked    []int64 `msgpack:"k"`
	Progress   int64   `msgpack:"p"`
	PruneBelow int64   `msgpack:"b"`
}

// FlowResponse is what Apply returns for a flow command that applied.
type FlowResponse struct {
	Results []commitlog.AppendResult
}

// ScheduleProgress is the next SCHEDULE_TOPIC_XXXX queue offset to deliver
// for delay level (1-based).
func (f *FSM) ScheduleProgress(level int32) int64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.t.sched[level]
}

// TxResolved reports whether the half message at physical offset off was
// committed or rolled back.
func (f *FSM) TxResolved(off int64) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.t.txDone[off]
}

// TxChecks is the number of back-checks recorded for the half at off.
func (f *FSM) TxChecks(off int64) int32 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.t.txChecks[off]
}

// TxProgress is the half-queue offset below which every half is resolved.
func (f *FSM) TxProgress() int64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.t.txProgress
}

// applyFlow applies a flow command: guard (under the table lock), then the
// append (skipped when the commitlog already holds this index), then the
// state change.
func (f *FSM) applyFlow(l *raft.Log, cmd any) any {
	if l.Index <= f.applied.Load() {
		return &FlowResponse{} // the metadata file (and so the log) already has it
	}
	var data []byte
	var guard func() bool
	var mutate func()
	switch c := cmd.(type) {
	case *DeliverScheduledCommand:
		data = c.Append
		guard = func() bool { return f.t.sched[c.Level] == c.From && c.To >= c.From }
		mutate = func() { f.t.sched[c.Level] = c.To }
	case *EndTxCommand:
		data = c.Append
		guard = func() bool { return !f.t.txDone[c.HalfOffset] && c.HalfQueueOffset >= f.t.txProgress }
		mutate = func() {
			f.t.txDone[c.HalfOffset] = true
			delete(f.t.txChecks, c.HalfOffset)
		}
	case *TxCheckCommand:
		guard = func() bool { return true }
		mutate = func() {
			for _, off := range c.Checked {
				if !f.t.txDone[off] {
					f.t.txChecks[off]++
				}
			}
			if c.Progress > f.t.txProgress {
				f.t.txProgress = c.Progress
			}
			for off := range f.t.txDone {
				if off < c.PruneBelow {
					delete(f.t.txDone, off)
				}
			}
			for off := range f.t.txChecks {
				if off < c.PruneBelow {
					delete(f.t.txChecks, off)
				}
			}
		}
	default:
		return f.fail(l, fmt.Errorf("%w: %T has no flow handler", ErrUnknownCommand, cmd))
	}
	f.mu.RLock()
	ok := guard()
	f.mu.RUnlock()
	if !ok {
		return fmt.Errorf("fsm: index %d: %w", l.Index, ErrStale)
	}
	resp := &FlowResponse{}
	if len(data) > 0 && l.Index > f.log.AppliedIndex() {
		ac, err := DecodeAppend(data)
		if err != nil {
			return f.fail(l, err)
		}
		res, err := f.log.Append(commitlog.AppendBatch{
			RaftIndex: l.Index, StoreTimestamp: ac.StoreTimestamp, Messages: ac.Messages, SkipDiskGuard: true,
		})
		if err != nil && !isRejected(err) {
			return f.fail(l, fmt.Errorf("flow append: %w", err))
		}
		if err != nil {
			// Refused by validation on every replica alike. The state still
			// changes (the messages could never be stored; retrying would
			// loop), so that a replay that skips the append, because a later
			// entry is on disk, reaches the same state.
			f.mu.Lock()
			mutate()
			f.mu.Unlock()
			return fmt.Errorf("fsm: flow append at index %d: %w", l.Index, err)
		}
		f.notify(ac.Messages)
		resp.Results = res
	}
	f.mu.Lock()
	mutate()
	f.mu.Unlock()
	return resp
}

// EncodeFlowAppend encodes messages for the Append field of a flow command.
func EncodeFlowAppend(storeTimestamp int64, msgs []*commitlog.Message) ([]byte, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	b, err := EncodeAppend(&AppendCommand{StoreTimestamp: storeTimestamp, Messages: msgs})
	if err != nil {
		return nil, err
	}
	return b[1:], nil
}

// flowState is the flow part of the metadata file.
type flowState struct {
	Sched      []levelProgress `msgpack:"s,omitempty"`
	TxDone     []int64         `msgpack:"d,omitempty"`
	TxChecks   []txCheck       `msgpack:"c,omitempty"`
	TxProgress int64           `msgpack:"p,omitempty"`
}

type levelProgress struct {
	Level int32 `msgpack:"l"`
	Next  int64 `msgpack:"n"`
}

type txCheck struct {
	Offset int64 `msgpack:"o"`
	Checks int32 `msgpack:"c"`
}

func (t *tables) exportFlow() *flowState {
	if len(t.sched) == 0 && len(t.txDone) == 0 && len(t.txChecks) == 0 && t.txProgress == 0 {
		return nil
	}
	fs := &flowState{TxProgress: t.txProgress}
	for l, n := range t.sched {
		fs.Sched = append(fs.Sched, levelProgress{l, n})
	}
	sort.Slice(fs.Sched, func(i, j int) bool { return fs.Sched[i].Level < fs.Sched[j].Level })
	for off := range t.txDone {
		fs.TxDone = append(fs.TxDone, off)
	}
	sort.Slice(fs.TxDone, func(i, j int) bool { return fs.TxDone[i] < fs.TxDone[j] })
	for off, c := range t.txChecks {
		fs.TxChecks = append(fs.TxChecks, txCheck{off, c})
	}
	sort.Slice(fs.TxChecks, func(i, j int) bool { return fs.TxChecks[i].Offset < fs.TxChecks[j].Offset })
	return fs
}

func (t *tables) importFlow(fs *flowState) {
	if fs == nil {
		return
	}
	for _, p := range fs.Sched {
		t.sched[p.Level] = p.Next
	}
	for _, off := range fs.TxDone {
		t.txDone[off] = true
	}
	for _, c := range fs.TxChecks {
		t.txChecks[c.Offset] = c.Checks
	}
	t.txProgress = fs.TxProgress
}
