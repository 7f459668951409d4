package commitlog

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	"github.com/raftmq/raftmq/message"
)

// GetStatus is the outcome of GetMessages, named after RocketMQ's
// GetMessageStatus.
type GetStatus int

const (
	StatusFound GetStatus = iota
	StatusNoMatchedMessage
	StatusMessageWasRemoving
	StatusOffsetFoundNull
	StatusOffsetOverflowBadly
	StatusOffsetOverflowOne
	StatusOffsetTooSmall
	StatusNoMatchedLogicQueue
	StatusNoMessageInQueue
)

var statusNames = [...]string{"FOUND", "NO_MATCHED_MESSAGE", "MESSAGE_WAS_REMOVING", "OFFSET_FOUND_NULL",
	"OFFSET_OVERFLOW_BADLY", "OFFSET_OVERFLOW_ONE", "OFFSET_TOO_SMALL", "NO_MATCHED_LOGIC_QUEUE", "NO_MESSAGE_IN_QUEUE"}

func (s GetStatus) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("GetStatus(%d)", int(s))
}

// Pull limits RocketMQ applies by default (maxTransferCountOnMessageInMemory,
// maxTransferBytesOnMessageInMemory, maxFilterMessageSize).
const (
	DefaultMaxPullMsgs  = 32
	DefaultMaxPullBytes = 256 << 10
	maxFilterBytes      = 16000
)

// GetResult is a batch of stored records for one queue. Buffers reference
// mapped memory: call Release once the bytes are written out.
type GetResult struct {
	Status          GetStatus
	NextBeginOffset int64
	MinOffset       int64
	MaxOffset       int64
	Buffers         [][]byte // one stored record each, as it lies on disk
	QueueOffsets    []int64  // queue offset of each buffer
	TotalBytes      int
	held            []*mappedFile
}

// Release gives back the references that keep Buffers mapped. Idempotent.
func (r *GetResult) Release() {
	if r == nil {
		return
	}
	for _, f := range r.held {
		f.release()
	}
	r.held = nil
	r.Buffers = nil
}

// GetMessages reads up to maxMsgs records (and maxBytes, but always at least
// one) of topic/queueID from offset, skipping entries whose tag hash filter
// rejects (nil = all). NextBeginOffset always moves past filtered entries.
// Statuses follow RocketMQ's DefaultMessageStore.getMessage.
func (l *Log) GetMessages(topic string, queueID int32, offset int64, maxMsgs, maxBytes int, filter func(tagsCode int64) bool) (*GetResult, error) {
	if maxMsgs <= 0 {
		maxMsgs = DefaultMaxPullMsgs
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxPullBytes
	}
	r := &GetResult{NextBeginOffset: offset}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	cq := l.queues[topic][queueID]
	if cq == nil {
		r.Status, r.NextBeginOffset = StatusNoMatchedLogicQueue, 0
		return r, nil
	}
	r.MinOffset, r.MaxOffset = cq.min, cq.max
	switch {
	case cq.max == 0:
		r.Status, r.NextBeginOffset = StatusNoMessageInQueue, 0
		return r, nil
	case offset < cq.min:
		r.Status, r.NextBeginOffset = StatusOffsetTooSmall, cq.min
		return r, nil
	case offset == cq.max:
		r.Status = StatusOffsetOverflowOne
		return r, nil
	case offset > cq.max:
		r.Status, r.NextBeginOffset = StatusOffsetOverflowBadly, cq.max
		return r, nil
	}
	r.Status = StatusNoMatchedMessage
	scanLimit := max(maxFilterBytes, int64(maxMsgs)*CQEntrySize) / CQEntrySize
	minPhys := l.minPhysLocked()
	var seg *mappedFile
	var f *mappedFile // current consume-queue file
	be := binary.BigEndian
	q := offset
	for ; q < cq.max && q-offset < scanLimit; q++ {
		pos := q * CQEntrySize
		if f == nil || pos >= f.end() {
			i := findFile(cq.files, pos)
			if i < 0 {
				if len(r.Buffers) == 0 {
					r.Status = StatusOffsetFoundNull
				}
				break
			}
			f = cq.files[i]
		}
		e := f.data[pos-f.start : pos-f.start+CQEntrySize]
		phys := int64(be.Uint64(e))
		size := int64(int32(be.Uint32(e[8:])))
		if len(r.Buffers) > 0 && (len(r.Buffers) >= maxMsgs || r.TotalBytes+int(size) > maxBytes) {
			break
		}
		if filter != nil && !filter(int64(be.Uint64(e[12:]))) {
			continue
		}
		if phys < minPhys || size <= 0 || phys+size > l.wpos {
			if len(r.Buffers) == 0 {
				r.Status = StatusMessageWasRemoving
			}
			continue
		}
		if seg == nil || phys < seg.start || phys+size > seg.end() {
			seg = l.segmentFor(phys)
			if seg == nil || phys+size > seg.end() {
				if len(r.Buffers) == 0 {
					r.Status = StatusMessageWasRemoving
				}
				seg = nil
				continue
			}
			if !seg.acquire() {
				seg = nil
				continue
			}
			r.held = append(r.held, seg)
		}
		r.Buffers = append(r.Buffers, seg.data[phys-seg.start:phys-seg.start+size:phys-seg.start+size])
		r.QueueOffsets = append(r.QueueOffsets, q)
		r.TotalBytes += int(size)
		r.Status = StatusFound
	}
	r.NextBeginOffset = q
	return r, nil
}

// ReadAt returns a copy of the size bytes at physOffset.
func (l *Log) ReadAt(physOffset int64, size int32) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	b, err := l.sliceLocked(physOffset, int64(size))
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

func (l *Log) sliceLocked(off, size int64) ([]byte, error) {
	if size < 0 || off < l.minPhysLocked() || off+size > l.wpos {
		return nil, fmt.Errorf("%w: [%d, %d) outside [%d, %d)", ErrOffsetOutOfRange, off, off+size, l.minPhysLocked(), l.wpos)
	}
	seg := l.segmentFor(off)
	if seg == nil || off+size > seg.end() {
		return nil, fmt.Errorf("%w: [%d, %d) crosses a segment end", ErrOffsetOutOfRange, off, off+size)
	}
	return seg.data[off-seg.start : off-seg.start+size], nil
}

// ReadMessage decodes the record at physOffset (the address in an offset
// message id).
func (l *Log) ReadMessage(physOffset int64) (*MessageExt, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	return l.readMessageLocked(physOffset)
}

func (l *Log) readMessageLocked(physOffset int64) (*MessageExt, error) {
	if _, err := l.sliceLocked(physOffset, 0); err != nil {
		return nil, err
	}
	seg := l.segmentFor(physOffset)
	m, _, err := message.DecodeRecord(seg.data[physOffset-seg.start : min(seg.size, l.wpos-seg.start)])
	if err != nil {
		return nil, fmt.Errorf("commitlog: read message at %d: %w", physOffset, err)
	}
	return m, nil
}

// MinOffset is the first available queue offset of topic/queueID.
func (l *Log) MinOffset(topic string, queueID int32) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if cq := l.queues[topic][queueID]; cq != nil {
		return cq.min
	}
	return 0
}

// MaxOffset is the queue offset the next message of topic/queueID gets.
func (l *Log) MaxOffset(topic string, queueID int32) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if cq := l.queues[topic][queueID]; cq != nil {
		return cq.max
	}
	return 0
}

// storeTimeLocked reads the STORETIMESTAMP of the record at phys, or false.
func (l *Log) storeTimeLocked(phys int64) (int64, bool) {
	seg := l.segmentFor(phys)
	if seg == nil || phys < l.minPhysLocked() || phys+RecordFixedSizeV4 > l.wpos {
		return 0, false
	}
	return message.StoreTimestampOf(seg.data[phys-seg.start:])
}

// OffsetByTime returns the queue offset of the first message stored at or
// after ts (ms); the max offset when none is.
func (l *Log) OffsetByTime(topic string, queueID int32, ts int64) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	cq := l.queues[topic][queueID]
	if cq == nil {
		return 0
	}
	lo, n := cq.min, cq.max-cq.min
	return lo + int64(sort.Search(int(n), func(i int) bool {
		e, ok := cq.entry(lo + int64(i))
		if !ok || e.Size == 0 {
			return false
		}
		st, ok := l.storeTimeLocked(e.Phys)
		return !ok || st >= ts
	}))
}

// EarliestStoreTime is the store time of the first available message of
// topic/queueID, or -1 when there is none.
func (l *Log) EarliestStoreTime(topic string, queueID int32) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	cq := l.queues[topic][queueID]
	if cq == nil || cq.max <= cq.min {
		return -1
	}
	e, ok := cq.entry(cq.min)
	if !ok {
		return -1
	}
	if st, ok := l.storeTimeLocked(e.Phys); ok {
		return st
	}
	return -1
}

// QueryByKey returns the messages of topic whose KEYS contain key or whose
// UNIQ_KEY is key, stored in [begin, end] ms, newest first, at most max.
func (l *Log) QueryByKey(topic, key string, max int, begin, end int64) ([]*MessageExt, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	offs, err := l.index.Query(topic, key, max, begin, end)
	if err != nil {
		return nil, fmt.Errorf("commitlog: query index: %w", err)
	}
	var out []*MessageExt
	for _, off := range offs {
		m, err := l.readMessageLocked(off)
		if err != nil {
			continue // removed by retention, or a stale entry
		}
		if m.Topic != topic || !hasKey(m.Properties, key) {
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

func hasKey(props, key string) bool {
	if u, ok := message.GetProperty(props, PropertyUniqKey); ok && strings.EqualFold(u, key) {
		return true
	}
	found := false
	if keys, ok := message.GetProperty(props, PropertyKeys); ok {
		message.SplitKeys(keys, func(k string) { found = found || k == key })
	}
	return found
}
