package commitlog

// Recovery (see DESIGN.md). Open always runs the same steps; after a clean
// shutdown they find nothing to do.
//
//  1. Read the checkpoint: durable commitlog end D (a batch boundary) with its
//     applied raft index, the consume-queue and index durable offsets, and
//     the durable state of every queue.
//  2. Scan records from D (after an unclean shutdown: from the start of the
//     segment holding D-1, to re-verify the last durable records as well),
//     validating length, magic and CRC, up to the first invalid record: R.
//  3. Cut back to the last whole batch B <= R: the larger of D (if D <= R)
//     and the journal entry with the largest end <= R.
//  4. Zero the commitlog from B (hole punch + re-allocate for whole pages),
//     delete later segments, drop consume-queue and index entries at or past
//     B and journal entries beyond B; fsync.
//  5. Queues whose files are missing, short or shorter than the checkpoint
//     says are deleted and rebuilt from the whole commitlog (logged); the
//     others get the entries missing since the checkpoint re-dispatched.
//  6. Sync consume queues, index and journal, and write a new checkpoint.
//
// Every step is idempotent: a crash during recovery leaves a state from
// which the same steps reach the same result.

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/raftmq/raftmq/message"
)

const progressEvery = 256 << 20

func (l *Log) open() error {
	unclean := false
	if _, err := os.Stat(l.cfg.AbortPath); err == nil {
		unclean = true
	}
	ck, err := readCheckpoint(l.cfg.CheckpointPath)
	if err != nil {
		l.logger.Warn("checkpoint unreadable, recovering from the first segment", "err", err)
		ck, unclean = nil, true
	}
	var logStart int64
	if ck != nil {
		logStart = ck.LogStart
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.journal, err = openJournal(l.cfg.JournalPath, l.cfg.JournalEntries); err != nil {
		return err
	}
	if l.index, err = OpenIndex(l.cfg.Index); err != nil {
		return fmt.Errorf("commitlog: open index: %w", err)
	}
	if ck != nil {
		l.ckpt = *ck
	}
	done, err := l.finishReset()
	if err != nil {
		return fmt.Errorf("commitlog: finish interrupted reset: %w", err)
	}
	if done {
		c := l.ckpt
		ck, unclean, logStart = &c, false, c.LogStart
		for _, s := range l.segments {
			s.release()
		}
		l.segments = nil
	}
	if err := l.loadSegments(logStart); err != nil {
		return err
	}
	damaged, err := l.loadQueues()
	if err != nil {
		return err
	}
	return l.recoverLocked(unclean, ck, damaged)
}

// walkLocked visits the valid message records from `from` (a record
// boundary) up to `to` or the first invalid record, following blank fillers
// into the next segment. It returns where the valid records end.
func (l *Log) walkLocked(from, to int64, fn func(pos int64, v *RecordView) error) (int64, error) {
	pos := from
	nextReport := from + progressEvery
	for pos < to {
		seg := l.segmentFor(pos)
		if seg == nil {
			break
		}
		v, err := message.ParseRecordView(seg.data[pos-seg.start:])
		if errors.Is(err, ErrBlank) {
			if pos+int64(v.Size) != seg.end() {
				break // a blank must cover exactly the rest of its segment
			}
			pos = seg.end()
			continue
		}
		if err != nil || v.PhysicalOffset != pos {
			break
		}
		if fn != nil {
			if err := fn(pos, &v); err != nil {
				return pos, err
			}
		}
		pos += int64(v.Size)
		if pos >= nextReport {
			l.logger.Info("recovery scan progress", "offset", pos, "scanned_bytes", pos-from)
			nextReport += progressEvery
		}
	}
	return pos, nil
}

func clamp(v, lo, hi int64) int64 { return max(lo, min(v, hi)) }

func (l *Log) recoverLocked(unclean bool, ck *checkpoint, damaged []*consumeQueue) error {
	began := time.Now()
	start := l.minPhysLocked()
	end := l.segments[len(l.segments)-1].end()
	d, cqOff, ixOff := start, start, start
	var applied uint64
	if ck != nil {
		d = clamp(ck.LogOffset, start, end)
		cqOff = clamp(ck.CQOffset, start, d)
		ixOff = clamp(ck.IndexOffset, start, d)
		applied = ck.AppliedIndex
		l.ckpt = *ck
	}
	scanFrom := d
	if unclean && d > start {
		scanFrom = l.segmentFor(d - 1).start
	}
	if ck == nil {
		scanFrom = start
	}
	l.logger.Info("recovering commitlog", "unclean", unclean, "checkpoint_offset", d, "scan_from", scanFrom, "applied_index", applied)
	r, _ := l.walkLocked(scanFrom, end, nil)
	l.recovery.scanned = r - scanFrom

	// The last whole batch.
	b, idx, known := r, uint64(0), false
	if ck != nil && d <= r {
		b, idx, known = d, applied, true
	}
	if e, ok := l.journal.lastBoundary(start, r); ok && (!known || e.End >= b) {
		b, idx, known = e.End, e.RaftIndex, true
	}
	if !known {
		if r > start {
			l.logger.Warn("no batch boundary known; keeping every valid record", "end", r)
		}
		b, idx = r, 0
	}
	if ck != nil && b < d {
		l.logger.Error("commitlog data below the checkpoint is invalid; cutting back", "checkpoint_offset", d, "valid_end", r, "cut", b)
	}

	// Damage against the checkpoint, judged before the cut.
	damagedKeys := map[queueKey]bool{}
	for _, cq := range damaged {
		damagedKeys[queueKey{cq.topic, cq.queueID}] = true
	}
	if ck != nil {
		for _, qs := range ck.Queues {
			if qs.Max <= qs.Min {
				continue
			}
			k := queueKey{qs.Topic, qs.QueueID}
			cq := l.queues[qs.Topic][qs.QueueID]
			why := ""
			switch {
			case damagedKeys[k]:
				continue
			case cq == nil:
				why = "missing"
			case cq.max < qs.Max:
				why = fmt.Sprintf("has %d entries, checkpoint says %d", cq.max, qs.Max)
			default:
				if e, ok := cq.entry(qs.Max - 1); !ok || e.Size == 0 {
					why = "last durable entry missing"
				} else if e, ok := cq.entry(max(qs.Min, cq.files0Start())); !ok || e.Size == 0 {
					why = "first durable entry missing"
				}
			}
			if why != "" {
				l.logger.Warn("consume queue damaged, will rebuild", "topic", qs.Topic, "queue", qs.QueueID, "why", why)
				damagedKeys[k] = true
				if cq != nil {
					cq.close()
					delete(l.queues[qs.Topic], qs.QueueID)
				}
			}
		}
	}
	for k := range damagedKeys {
		if err := os.RemoveAll(cqDir(l.cfg.ConsumeQueueDir, k.topic, k.qid)); err != nil {
			return fmt.Errorf("commitlog: remove damaged consume queue: %w", err)
		}
	}

	// The cut.
	cutTail := unclean || r > b
	if cutTail {
		l.wpos = end
	} else {
		l.wpos = b
	}
	if err := l.truncateLocked(b); err != nil {
		return fmt.Errorf("commitlog: recovery cut at %d: %w", b, err)
	}
	if cutTail {
		if seg := l.segmentFor(b); seg != nil {
			if err := seg.f.Sync(); err != nil {
				return fmt.Errorf("commitlog: sync cut segment: %w", err)
			}
		}
		if err := fsyncDir(l.cfg.CommitLogDir); err != nil {
			return fmt.Errorf("commitlog: sync commitlog dir: %w", err)
		}
		if r > b || b < end {
			l.logger.Info("commitlog cut", "offset", b, "valid_end", r, "applied_index", idx)
		}
	}
	l.applied = idx
	if err := l.journal.sync(); err != nil {
		return fmt.Errorf("commitlog: sync journal: %w", err)
	}

	// Re-dispatch what the consume queues and index lack.
	from := min(cqOff, ixOff, scanFrom)
	if len(damagedKeys) > 0 {
		from = start
		l.logger.Warn("rebuilding damaged consume queues from the whole commitlog", "queues", len(damagedKeys), "from", start, "to", b)
	}
	ixEnd := l.index.EndPhysOffset()
	if ixEnd >= from && ixEnd < b {
		// A crash may have fallen between the keys of the last indexed message:
		// cut its entries exactly and index it again whole. Truncate is exact, so
		// doing this on every recovery leaves the same bytes.
		if err := l.index.Truncate(ixEnd); err != nil {
			return fmt.Errorf("commitlog: recovery truncate index: %w", err)
		}
		ixEnd = l.index.EndPhysOffset()
	}
	var redispatched int
	deletedBelow := map[string]int64{}
	if ck != nil {
		for _, d := range ck.Deleted {
			deletedBelow[d.Topic] = d.Offset
		}
	}
	l.recovery.redispatchFrom = from
	_, err := l.walkLocked(from, b, func(pos int64, v *RecordView) error {
		// A view of mapped memory: only read here and hashed by Index.Put,
		// never retained.
		d := parseDispatchProps(bytesToString(v.Properties))
		topic := string(v.Topic)
		if dispatchesToQueue(v.SysFlag) && pos >= deletedBelow[topic] {
			cq := l.queueLocked(topic, v.QueueID)
			if !(cq.max > cq.min && v.QueueOffset < cq.min) {
				e, ok := cq.entry(v.QueueOffset)
				if !(v.QueueOffset < cq.max && ok && e.Phys == pos && e.Size == v.Size) {
					if cq.max > cq.min && v.QueueOffset > cq.max {
						// A gap: this queue is damaged after all; rebuild it
						// from the records that follow (best effort).
						l.logger.Warn("consume queue gap during recovery", "topic", topic, "queue", v.QueueID, "offset", v.QueueOffset, "max", cq.max)
						cq.close()
						_ = os.RemoveAll(cq.dir)
						cq = newConsumeQueue(l.cfg.ConsumeQueueDir, cq.topic, cq.queueID, cq.fileSize)
						l.putQueue(cq)
					}
					if err := cq.put(v.QueueOffset, cqEntry{Phys: pos, Size: v.Size, Tag: l.tagsCode(topic, &d, v.StoreTimestamp)}); err != nil {
						return err
					}
					redispatched++
				}
			}
		}
		if pos > ixEnd || ixEnd < 0 {
			if err := l.indexLocked(topic, &d, v.SysFlag, pos, v.StoreTimestamp); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commitlog: recovery dispatch: %w", err)
	}
	// Queue minimums follow the first segment.
	if err := l.forQueues(func(cq *consumeQueue) error {
		_, err := cq.deleteBefore(start)
		return err
	}); err != nil {
		return err
	}
	if err := l.forQueues(func(cq *consumeQueue) error { return cq.sync() }); err != nil {
		return fmt.Errorf("commitlog: recovery sync consume queues: %w", err)
	}
	if err := l.index.Flush(); err != nil {
		return fmt.Errorf("commitlog: recovery flush index: %w", err)
	}
	l.flushedPhys = b
	c := l.ckpt
	c.AppliedIndex, c.LogOffset, c.JournalSeq = idx, b, l.journal.seq
	c.CQOffset, c.IndexOffset, c.LogStart = b, b, start
	c.Queues = l.queueTableLocked(nil)
	c.clampTombstones(start, b)
	if err := writeCheckpoint(l.cfg.CheckpointPath, &c); err != nil {
		return err
	}
	l.ckpt = c
	l.recovery.redispatched, l.recovery.rebuilt = redispatched, len(damagedKeys)
	l.logger.Info("recovery done", "end", b, "applied_index", idx, "redispatched", redispatched,
		"rebuilt_queues", len(damagedKeys), "took", time.Since(began))
	return nil
}

// recoveryStats describes the last recovery, for tests and logs.
type recoveryStats struct {
	scanned        int64 // bytes validated from the scan start
	redispatchFrom int64
	redispatched   int
	rebuilt        int
}

type queueKey struct {
	topic string
	qid   int32
}

// queueTableLocked is the durable state of every queue; override gives the
// max to record for queues being flushed now.
func (l *Log) queueTableLocked(override map[*consumeQueue]int64) []queueState {
	var out []queueState
	_ = l.forQueues(func(cq *consumeQueue) error {
		m := cq.flushed / CQEntrySize
		if v, ok := override[cq]; ok {
			m = v
		}
		out = append(out, queueState{Topic: cq.topic, QueueID: cq.queueID, Min: cq.min, Max: max(m, cq.min)})
		return nil
	})
	return out
}
