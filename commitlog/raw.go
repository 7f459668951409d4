package commitlog

// Snapshot support for the FSM: stream raw commitlog bytes out (CopyRange),
// write them in on another replica (InstallRange), cut (Truncate) and start
// over (Reset).
//
// Format of the reset marker (RootDir/reset, present only while a Reset is
// under way): startPhysOffset 8 | appliedIndex 8 | crc 4 (CRC-32C), big-endian.
// Open finishes an interrupted Reset before anything else.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/raftmq/raftmq/message"
)

const copyChunk = 1 << 20

// CopyRange writes the raw commitlog bytes [from, to) to w, straight from the
// mapping in chunks of at most 1 MiB: memory use does not depend on the
// range. from and to must lie in [MinPhysOffset, MaxPhysOffset].
func (l *Log) CopyRange(w io.Writer, from, to int64) error {
	for pos := from; pos < to; {
		l.mu.RLock()
		if l.closed {
			l.mu.RUnlock()
			return ErrClosed
		}
		if from < l.minPhysLocked() || to > l.wpos {
			err := fmt.Errorf("%w: copy [%d, %d) outside [%d, %d)", ErrOffsetOutOfRange, from, to, l.minPhysLocked(), l.wpos)
			l.mu.RUnlock()
			return err
		}
		seg := l.segmentFor(pos)
		if seg == nil || !seg.acquire() {
			l.mu.RUnlock()
			return fmt.Errorf("%w: no segment at %d", ErrOffsetOutOfRange, pos)
		}
		l.mu.RUnlock()
		end := min(to, seg.end(), pos+copyChunk)
		_, err := w.Write(seg.data[pos-seg.start : end-seg.start])
		seg.release()
		if err != nil {
			return fmt.Errorf("commitlog: copy range at %d: %w", pos, err)
		}
		pos = end
	}
	return nil
}

// InstallRange appends n raw commitlog bytes read from r at offset from
// (which must be MaxPhysOffset), as produced by CopyRange on a replica with
// the same segment size. Every record is validated and dispatched to the
// consume queues (at the queue offsets the records carry) and the index.
// The bytes are read straight into the mapping. On error nothing of the
// range remains. AppliedIndex becomes appliedIndex. Readers wait while a
// range is installed.
func (l *Log) InstallRange(from int64, r io.Reader, n int64, appliedIndex uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if from != l.wpos {
		return fmt.Errorf("%w: install at %d, log ends at %d", ErrOffsetOutOfRange, from, l.wpos)
	}
	if n < 0 {
		return fmt.Errorf("commitlog: install range: negative length %d", n)
	}
	if err := l.installLocked(r, from+n); err != nil {
		if terr := l.truncateLocked(from); terr != nil {
			return fmt.Errorf("commitlog: install range: %w (rollback: %v)", err, terr)
		}
		return fmt.Errorf("commitlog: install range: %w", err)
	}
	l.journal.put(appliedIndex, l.wpos)
	l.applied = appliedIndex
	return nil
}

func (l *Log) installLocked(r io.Reader, end int64) error {
	for l.wpos < end {
		seg := l.segments[len(l.segments)-1]
		pos := l.wpos
		room := seg.end() - pos
		if end-pos < BlankSize || room < BlankSize {
			return fmt.Errorf("%w: %d bytes left at %d, no room for a record header", ErrCorrupt, end-pos, pos)
		}
		dst := seg.data[pos-seg.start:]
		if _, err := io.ReadFull(r, dst[:BlankSize]); err != nil {
			clear(dst[:BlankSize])
			return fmt.Errorf("read header at %d: %w", pos, err)
		}
		size := int64(int32(binary.BigEndian.Uint32(dst)))
		magic := binary.BigEndian.Uint32(dst[4:])
		switch {
		case magic == MagicBlank && size == room && pos+size <= end:
		case magic == MagicMessage && size >= RecordFixedSizeV4 && size+BlankSize <= room && pos+size <= end:
		default:
			clear(dst[:BlankSize])
			return fmt.Errorf("%w: record at %d: size %d magic 0x%08X does not fit (segment room %d, range end %d)", ErrCorrupt, pos, size, magic, room, end)
		}
		if _, err := io.ReadFull(r, dst[BlankSize:size]); err != nil {
			clear(dst[:size])
			return fmt.Errorf("read record at %d: %w", pos, err)
		}
		v, err := message.ParseRecordView(dst[:size])
		if errors.Is(err, ErrBlank) {
			clear(dst[BlankSize:size]) // a blank's body is zero on every replica
			l.wpos = seg.end()
			if _, err := l.newSegmentLocked(l.wpos); err != nil {
				return err
			}
			continue
		}
		if err == nil && v.PhysicalOffset != pos {
			err = fmt.Errorf("%w: record at %d says physical offset %d", ErrCorrupt, pos, v.PhysicalOffset)
		}
		if err != nil {
			clear(dst[:size])
			return fmt.Errorf("record at %d: %w", pos, err)
		}
		l.wpos += size
		topic := string(v.Topic)
		d := parseDispatchProps(bytesToString(v.Properties)) // read, never retained
		if dispatchesToQueue(v.SysFlag) {
			cq := l.queueLocked(topic, v.QueueID)
			if err := cq.put(v.QueueOffset, cqEntry{Phys: pos, Size: v.Size, Tag: l.tagsCode(topic, &d, v.StoreTimestamp)}); err != nil {
				return err
			}
		}
		if err := l.indexLocked(topic, &d, v.SysFlag, pos, v.StoreTimestamp); err != nil {
			return err
		}
	}
	return nil
}

// Truncate drops everything at and after physOffset, which must be a record
// boundary in [MinPhysOffset, MaxPhysOffset], with the consume-queue and
// index entries pointing there, and makes the cut durable. AppliedIndex
// becomes the raft index of the last batch ending at or before physOffset as
// far as the journal knows it (0 if it does not).
func (l *Log) Truncate(physOffset int64) error {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if physOffset < l.minPhysLocked() || physOffset > l.wpos {
		return fmt.Errorf("%w: truncate at %d outside [%d, %d]", ErrOffsetOutOfRange, physOffset, l.minPhysLocked(), l.wpos)
	}
	if physOffset == l.wpos {
		return nil
	}
	if seg := l.segmentFor(physOffset); seg.start != physOffset {
		if v, err := message.ParseRecordView(seg.data[physOffset-seg.start:]); err != nil || v.PhysicalOffset != physOffset {
			return fmt.Errorf("%w: truncate at %d: not a record boundary", ErrOffsetOutOfRange, physOffset)
		}
	}
	var idx uint64
	if e, ok := l.journal.lastBoundary(l.minPhysLocked(), physOffset); ok {
		idx = e.RaftIndex
	} else if l.ckpt.LogOffset <= physOffset {
		idx = l.ckpt.AppliedIndex
	}
	if err := l.truncateLocked(physOffset); err != nil {
		return fmt.Errorf("commitlog: truncate at %d: %w", physOffset, err)
	}
	l.applied = idx
	return l.persistLocked()
}

// persistLocked syncs everything and writes the checkpoint; the caller holds
// ckptMu and mu.
func (l *Log) persistLocked() error {
	for _, s := range l.segments {
		if s.end() > l.flushedPhys {
			if err := s.f.Sync(); err != nil {
				return fmt.Errorf("commitlog: sync segment: %w", err)
			}
		}
	}
	l.flushedPhys = l.wpos
	if err := l.journal.sync(); err != nil {
		return fmt.Errorf("commitlog: sync journal: %w", err)
	}
	if err := l.forQueues(func(cq *consumeQueue) error { return cq.sync() }); err != nil {
		return fmt.Errorf("commitlog: sync consume queues: %w", err)
	}
	if err := l.index.Flush(); err != nil {
		return fmt.Errorf("commitlog: flush index: %w", err)
	}
	if err := fsyncDir(l.cfg.CommitLogDir); err != nil {
		return fmt.Errorf("commitlog: sync commitlog dir: %w", err)
	}
	c := l.ckpt
	c.AppliedIndex, c.LogOffset, c.JournalSeq = l.applied, l.wpos, l.journal.seq
	c.CQOffset, c.IndexOffset, c.LogStart = l.wpos, l.wpos, l.minPhysLocked()
	c.Queues = l.queueTableLocked(nil)
	c.clampTombstones(c.LogStart, c.LogOffset)
	if err := writeCheckpoint(l.cfg.CheckpointPath, &c); err != nil {
		return err
	}
	l.ckpt = c
	return nil
}

func (l *Log) resetPath() string { return filepath.Join(l.cfg.RootDir, "reset") }

// Reset discards every record, consume queue and index entry and restarts
// the log empty at startPhysOffset with AppliedIndex appliedIndex, durably.
// A crash during Reset is finished by the next Open.
func (l *Log) Reset(startPhysOffset int64, appliedIndex uint64) error {
	if startPhysOffset < 0 {
		return fmt.Errorf("%w: reset at negative offset %d", ErrOffsetOutOfRange, startPhysOffset)
	}
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	b := binary.BigEndian.AppendUint64(nil, uint64(startPhysOffset))
	b = binary.BigEndian.AppendUint64(b, appliedIndex)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if err := writeFileSync(l.resetPath(), b); err != nil {
		return fmt.Errorf("commitlog: reset: write marker: %w", err)
	}
	if err := l.resetLocked(startPhysOffset, appliedIndex); err != nil {
		return fmt.Errorf("commitlog: reset: %w", err)
	}
	if err := os.Remove(l.resetPath()); err != nil {
		return fmt.Errorf("commitlog: reset: remove marker: %w", err)
	}
	return fsyncDir(l.cfg.RootDir)
}

func (l *Log) resetLocked(start int64, applied uint64) error {
	l.truncGen++
	l.preMu.Lock()
	l.dropSpareLocked()
	l.preMu.Unlock()
	for _, s := range l.segments {
		if err := s.destroy(); err != nil {
			return err
		}
	}
	l.segments = nil
	if err := l.forQueues(func(cq *consumeQueue) error { return cq.destroy() }); err != nil {
		return err
	}
	l.queues = map[string]map[int32]*consumeQueue{}
	if err := removeContents(l.cfg.ConsumeQueueDir); err != nil {
		return err
	}
	if err := removeContents(l.cfg.CommitLogDir); err != nil {
		return err
	}
	if err := l.index.Truncate(0); err != nil {
		return err
	}
	l.journal.reset()
	l.ckpt.Deleted = nil
	l.wpos, l.flushedPhys, l.applied = start, start, applied
	if _, err := l.newSegmentLocked(start); err != nil {
		return err
	}
	return l.persistLocked()
}

// finishReset completes a Reset interrupted by a crash; called by open.
func (l *Log) finishReset() (bool, error) {
	b, err := os.ReadFile(l.resetPath())
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if len(b) != 20 || crc32.Checksum(b[:16], castagnoli) != binary.BigEndian.Uint32(b[16:]) {
		// The marker itself was torn: Reset had not started deleting.
		l.logger.Warn("ignoring torn reset marker")
		return false, os.Remove(l.resetPath())
	}
	start, applied := int64(binary.BigEndian.Uint64(b)), binary.BigEndian.Uint64(b[8:])
	l.logger.Warn("finishing an interrupted reset", "start", start, "applied_index", applied)
	if err := l.resetLocked(start, applied); err != nil {
		return false, err
	}
	if err := os.Remove(l.resetPath()); err != nil {
		return false, err
	}
	return true, fsyncDir(l.cfg.RootDir)
}

func removeContents(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return fsyncDir(dir)
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return fsyncDir(filepath.Dir(path))
}
