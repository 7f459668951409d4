package fsm

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/commitlog"
)

// snapshot is the FSMSnapshot: the metadata file's bytes.
type snapshot struct{ data []byte }

// Persist writes the snapshot to sink.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		sink.Cancel()
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("fsm: persist snapshot: close sink: %w", err)
	}
	return nil
}

// Release does nothing: the snapshot holds no resources.
func (s *snapshot) Release() {}

// Snapshot captures the metadata and the commitlog's position at the applied
// index S. Before returning it flushes the commitlog and writes the metadata
// file at S, so both are durable at >= S: this is what lets a restart skip
// restoring the snapshot (DiskCovers). It holds no commitlog bytes; a replica
// that restores it fetches what it lacks (Restore).
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.opMu.Lock()
	defer f.opMu.Unlock()
	if f.fatal != nil {
		return nil, fmt.Errorf("%w: no snapshot: %w", ErrFatal, f.fatal)
	}
	if f.closed {
		return nil, ErrClosed
	}
	b, err := f.persistLocked()
	if err != nil {
		return nil, fmt.Errorf("fsm: snapshot: %w", err)
	}
	f.logger.Debug("snapshot", "applied_index", f.applied.Load(), "bytes", len(b))
	return &snapshot{data: b}, nil
}

// Restore replaces the metadata with the snapshot's and brings the commitlog
// to (at least) the snapshot's position:
//
//   - a local log that already holds the snapshot's applied index is kept (it
//     may be ahead: replay skips what it has);
//   - a local log that ends before the snapshot's first offset (the leader's
//     retention removed what lies between) or that does not fit the snapshot
//     is Reset at the snapshot's first offset;
//   - then the missing bytes are fetched through Config.Fetcher in chunks of
//     at most Config.FetchBytes and installed with Log.InstallRange, up to the
//     snapshot's end offset (the peer may have written more since).
//
// On a fetch or install error what this Restore installed is cut again, so a
// failed Restore leaves the log as a prefix of the group's history.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxMetaSize+metaHeaderSize+1))
	if err != nil {
		return fmt.Errorf("fsm: restore: read snapshot: %w", err)
	}
	st, err := decodeMeta(b)
	if err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	f.opMu.Lock()
	defer f.opMu.Unlock()
	if f.closed {
		return ErrClosed
	}
	if f.fatal != nil {
		return fmt.Errorf("%w: no restore: %w", ErrFatal, f.fatal)
	}
	logCovers := f.log.AppliedIndex() >= st.LogApplied && f.log.MaxPhysOffset() >= st.LogMaxPhys
	if logCovers && f.applied.Load() >= st.Applied {
		// This replica is at or past the snapshot on the same history (a
		// restart restoring its own snapshot): keep everything; raft's replay
		// skips what is here.
		f.logger.Info("snapshot already covered locally", "snapshot_applied_index", st.Applied,
			"applied_index", f.applied.Load(), "log_applied_index", f.log.AppliedIndex())
		return nil
	}
	if err := f.restoreLogLocked(st); err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	f.mu.Lock()
	f.t = tablesFrom(st)
	f.mu.Unlock()
	f.applied.Store(st.Applied)
	f.waitMu.Lock()
	f.notifyAllLocked()
	f.waitMu.Unlock()
	if _, err := f.persistLocked(); err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	f.logger.Info("restored snapshot", "applied_index", st.Applied, "log_applied_index", f.log.AppliedIndex(),
		"log_min", f.log.MinPhysOffset(), "log_max", f.log.MaxPhysOffset())
	return nil
}

func (f *FSM) restoreLogLocked(st *metaState) error {
	lg := f.log
	if lg.AppliedIndex() >= st.LogApplied && lg.MaxPhysOffset() >= st.LogMaxPhys {
		return nil // the local commitlog has everything the snapshot has
	}
	start := lg.MaxPhysOffset()
	if start < st.LogMinPhys || start > st.LogMaxPhys || lg.MinPhysOffset() > start {
		f.logger.Info("resetting the commitlog to the snapshot's start", "local_max", start,
			"snapshot_min", st.LogMinPhys, "snapshot_max", st.LogMaxPhys)
		applied := uint64(0)
		if st.LogMinPhys == st.LogMaxPhys {
			applied = st.LogApplied
		}
		if err := lg.Reset(st.LogMinPhys, applied); err != nil {
			return fmt.Errorf("reset commitlog at %d: %w", st.LogMinPhys, err)
		}
		start = st.LogMinPhys
	}
	if start == st.LogMaxPhys {
		if lg.AppliedIndex() < st.LogApplied {
			// Every byte is here (an earlier Restore was interrupted after
			// its last install): record the applied index.
			return lg.InstallRange(start, bytes.NewReader(nil), 0, st.LogApplied)
		}
		return nil
	}
	if f.cfg.Fetcher == nil {
		return fmt.Errorf("commitlog bytes [%d, %d) missing and no Fetcher configured", start, st.LogMaxPhys)
	}
	ctx := f.cfg.RestoreContext
	if ctx == nil {
		ctx = context.Background()
	}
	// Topic deletions inside the range are replayed at their point in the
	// log, so that the consume queues end as the peer's did.
	var tombs []tombstone
	for _, d := range st.Deleted {
		if d.PhysOffset >= start {
			tombs = append(tombs, d)
		}
	}
	// safe is where a failed Restore cuts back to: the start, or the last
	// deletion replayed (whose queues cannot be brought back). The log there
	// is the peer's log as of that deletion's raft index, which is recorded
	// as the applied index, so a raft replay after a failure skips exactly
	// what is installed.
	safe := start
	pos := start
	deleteUpTo := func(off int64) error {
		for len(tombs) > 0 && tombs[0].PhysOffset <= off {
			d := tombs[0]
			if err := lg.DeleteTopic(d.Topic); err != nil {
				return fmt.Errorf("delete topic %s at %d: %w", d.Topic, d.PhysOffset, err)
			}
			if d.Index > lg.AppliedIndex() {
				if err := lg.InstallRange(off, bytes.NewReader(nil), 0, d.Index); err != nil {
					return fmt.Errorf("record applied index %d: %w", d.Index, err)
				}
			}
			safe = off
			tombs = tombs[1:]
		}
		return nil
	}
	undo := func(err error) error { return f.undoInstall(safe, err) }
	if err := deleteUpTo(pos); err != nil {
		return undo(err)
	}
	for pos < st.LogMaxPhys {
		want := int64(f.cfg.FetchBytes)
		if rem := st.LogMaxPhys - pos; rem < want {
			want = rem
		}
		chunk, err := f.cfg.Fetcher.FetchCommitLog(ctx, pos, int(want))
		if err != nil {
			return undo(fmt.Errorf("fetch commitlog at %d: %w", pos, err))
		}
		if len(chunk) == 0 {
			return undo(fmt.Errorf("fetch commitlog at %d: peer returned nothing before %d", pos, st.LogMaxPhys))
		}
		if rem := st.LogMaxPhys - pos; int64(len(chunk)) > rem {
			chunk = chunk[:rem] // the peer wrote more since the snapshot; InstallRange checks the boundary
		}
		for len(chunk) > 0 {
			piece := chunk
			if len(tombs) > 0 && tombs[0].PhysOffset < pos+int64(len(chunk)) {
				piece = chunk[:tombs[0].PhysOffset-pos]
			}
			if err := lg.InstallRange(pos, bytes.NewReader(piece), int64(len(piece)), lg.AppliedIndex()); err != nil {
				return undo(fmt.Errorf("install commitlog at %d: %w", pos, err))
			}
			pos += int64(len(piece))
			chunk = chunk[len(piece):]
			if err := deleteUpTo(pos); err != nil {
				return undo(err)
			}
		}
	}
	if err := lg.InstallRange(pos, bytes.NewReader(nil), 0, max(st.LogApplied, lg.AppliedIndex())); err != nil {
		return undo(fmt.Errorf("record applied index %d: %w", st.LogApplied, err))
	}
	if err := lg.Flush(); err != nil {
		return fmt.Errorf("flush commitlog: %w", err)
	}
	return nil
}

func (f *FSM) undoInstall(start int64, err error) error {
	if f.log.MaxPhysOffset() > start {
		if terr := f.log.Truncate(start); terr != nil {
			return fmt.Errorf("%w (cutting back to %d: %v)", err, start, terr)
		}
	}
	return err
}

// ReadCommitLog serves Fetchers: raw commitlog bytes from the record at from,
// whole records only (a blank filler counts as one and runs to its segment's
// end), at most maxBytes unless the first record alone is larger. At the end
// of the log it returns no bytes; offsets outside the log return an error
// wrapping commitlog.ErrOffsetOutOfRange.
func (f *FSM) ReadCommitLog(from int64, maxBytes int) ([]byte, error) {
	end := f.log.MaxPhysOffset()
	if from == end {
		return nil, nil
	}
	if from < f.log.MinPhysOffset() || from > end {
		return nil, fmt.Errorf("fsm: read commitlog at %d: %w: log holds [%d, %d)",
			from, commitlog.ErrOffsetOutOfRange, f.log.MinPhysOffset(), end)
	}
	pos := from
	for pos < end {
		hdr, err := f.log.ReadAt(pos, commitlog.BlankSize)
		if err != nil {
			return nil, fmt.Errorf("fsm: read commitlog: record header at %d: %w", pos, err)
		}
		size := int64(int32(binary.BigEndian.Uint32(hdr)))
		magic := binary.BigEndian.Uint32(hdr[4:])
		if (magic != commitlog.MagicMessage && magic != commitlog.MagicBlank) || size < commitlog.BlankSize {
			return nil, fmt.Errorf("fsm: read commitlog: record at %d: %w: size %d magic 0x%08X", pos, commitlog.ErrCorrupt, size, magic)
		}
		if pos > from && pos+size-from > int64(maxBytes) {
			break
		}
		pos += size
		if pos-from >= int64(maxBytes) {
			break
		}
	}
	if pos > end {
		return nil, fmt.Errorf("fsm: read commitlog: record at %d runs past the log end %d: %w", from, end, commitlog.ErrCorrupt)
	}
	var buf bytes.Buffer
	buf.Grow(int(pos - from))
	if err := f.log.CopyRange(&buf, from, pos); err != nil {
		return nil, fmt.Errorf("fsm: read commitlog [%d, %d): %w", from, pos, err)
	}
	return buf.Bytes(), nil
}
