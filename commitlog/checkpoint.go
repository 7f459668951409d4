package commitlog

// Format of the checkpoint file (storeCheckpoint, default RootDir/checkpoint),
// big-endian, replaced atomically (write checkpoint.tmp, fsync, rename, fsync
// the directory):
//
//	magic        8  "RMQCKPT1"
//	appliedIndex 8  raft index of the last batch wholly below logOffset
//	logOffset    8  durable commitlog end; always a batch boundary
//	journalSeq   8  last journal sequence number at logOffset
//	cqOffset     8  every consume-queue entry of a record below this is durable
//	indexOffset  8  every index entry of a record below this is durable
//	logStart     8  first physical offset of the log (Reset may move it)
//	nQueues      4
//	nQueues times:  topicLen 1 | topic | queueId 4 | minOffset 8 | maxOffset 8
//	                (the durable consume-queue state at cqOffset)
//	nDeleted     4
//	nDeleted times: topicLen 1 | topic | offset 8
//	                (DeleteTopic tombstones: records of the topic below offset
//	                are not dispatched again by recovery)
//	crc          4  CRC-32C of everything before
//
// Format of the batch journal (default RootDir/journal): a preallocated,
// mapped ring of JournalEntries 32-byte slots, entry with sequence number s in
// slot s % JournalEntries, big-endian:
//
//	seq 8 (>= 1; 0 = empty) | raftIndex 8 | batchEnd 8 | crc 4 (CRC-32C of the first 24) | 0 4
//
// Append writes one entry after the records of a batch. Recovery takes, among
// the valid entries, the one with the largest batchEnd not beyond the last
// valid record: that is the last whole batch. Entries describing a cut-off
// future are zeroed whenever the log is cut, so every valid entry describes
// the current history.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sort"

	"github.com/raftmq/raftmq/internal/fsutil"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const checkpointMagic = "RMQCKPT1"

type queueState struct {
	Topic    string
	QueueID  int32
	Min, Max int64
}

type checkpoint struct {
	AppliedIndex uint64
	LogOffset    int64
	JournalSeq   uint64
	CQOffset     int64
	IndexOffset  int64
	LogStart     int64
	Queues       []queueState
	Deleted      []tombstone
}

type tombstone struct {
	Topic  string
	Offset int64
}

// clampTombstones keeps tombstones meaningful after the log was cut at end
// or trimmed to start: offsets never exceed the end, and those at or below
// the start are dropped.
func (c *checkpoint) clampTombstones(start, end int64) {
	var keep []tombstone
	for _, d := range c.Deleted {
		if d.Offset > start {
			d.Offset = min(d.Offset, end)
			keep = append(keep, d)
		}
	}
	c.Deleted = keep
}

func (c *checkpoint) marshal() []byte {
	n := 8 + 6*8 + 4 + 4 + 4
	for _, q := range c.Queues {
		n += 1 + len(q.Topic) + 4 + 16
	}
	for _, d := range c.Deleted {
		n += 1 + len(d.Topic) + 8
	}
	b := make([]byte, 0, n)
	be := binary.BigEndian
	b = append(b, checkpointMagic...)
	b = be.AppendUint64(b, c.AppliedIndex)
	b = be.AppendUint64(b, uint64(c.LogOffset))
	b = be.AppendUint64(b, c.JournalSeq)
	b = be.AppendUint64(b, uint64(c.CQOffset))
	b = be.AppendUint64(b, uint64(c.IndexOffset))
	b = be.AppendUint64(b, uint64(c.LogStart))
	b = be.AppendUint32(b, uint32(len(c.Queues)))
	for _, q := range c.Queues {
		b = append(b, byte(len(q.Topic)))
		b = append(b, q.Topic...)
		b = be.AppendUint32(b, uint32(q.QueueID))
		b = be.AppendUint64(b, uint64(q.Min))
		b = be.AppendUint64(b, uint64(q.Max))
	}
	b = be.AppendUint32(b, uint32(len(c.Deleted)))
	for _, d := range c.Deleted {
		b = append(b, byte(len(d.Topic)))
		b = append(b, d.Topic...)
		b = be.AppendUint64(b, uint64(d.Offset))
	}
	return be.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

var errBadCheckpoint = errors.New("commitlog: invalid checkpoint")

func unmarshalCheckpoint(b []byte) (*checkpoint, error) {
	be := binary.BigEndian
	if len(b) < 8+6*8+4+4+4 || string(b[:8]) != checkpointMagic {
		return nil, fmt.Errorf("%w: bad magic or short (%d bytes)", errBadCheckpoint, len(b))
	}
	body, sum := b[:len(b)-4], be.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: crc mismatch", errBadCheckpoint)
	}
	c := &checkpoint{}
	p := 8
	u64 := func() uint64 { v := be.Uint64(body[p:]); p += 8; return v }
	c.AppliedIndex = u64()
	c.LogOffset = int64(u64())
	c.JournalSeq = u64()
	c.CQOffset = int64(u64())
	c.IndexOffset = int64(u64())
	c.LogStart = int64(u64())
	nq := int(be.Uint32(body[p:]))
	p += 4
	if nq > (len(body)-p)/(1+4+16) {
		return nil, fmt.Errorf("%w: %d queues do not fit", errBadCheckpoint, nq)
	}
	c.Queues = make([]queueState, 0, nq)
	for range nq {
		if p >= len(body) {
			return nil, fmt.Errorf("%w: queue table truncated", errBadCheckpoint)
		}
		tl := int(body[p])
		p++
		if p+tl+4+16 > len(body) {
			return nil, fmt.Errorf("%w: queue table truncated", errBadCheckpoint)
		}
		q := queueState{Topic: string(body[p : p+tl])}
		p += tl
		q.QueueID = int32(be.Uint32(body[p:]))
		p += 4
		q.Min = int64(u64())
		q.Max = int64(u64())
		c.Queues = append(c.Queues, q)
	}
	if p+4 > len(body) {
		return nil, fmt.Errorf("%w: tombstones truncated", errBadCheckpoint)
	}
	nd := int(be.Uint32(body[p:]))
	p += 4
	if nd > (len(body)-p)/(1+8) {
		return nil, fmt.Errorf("%w: %d tombstones do not fit", errBadCheckpoint, nd)
	}
	for range nd {
		tl := int(body[p])
		p++
		if p+tl+8 > len(body) {
			return nil, fmt.Errorf("%w: tombstones truncated", errBadCheckpoint)
		}
		d := tombstone{Topic: string(body[p : p+tl])}
		p += tl
		d.Offset = int64(u64())
		c.Deleted = append(c.Deleted, d)
	}
	if p != len(body) {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBadCheckpoint, len(body)-p)
	}
	return c, nil
}

// readCheckpoint returns nil, nil when there is no checkpoint file.
func readCheckpoint(path string) (*checkpoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("commitlog: read checkpoint: %w", err)
	}
	return unmarshalCheckpoint(b)
}

func writeCheckpoint(path string, c *checkpoint) error {
	sort.Slice(c.Queues, func(i, j int) bool {
		a, b := c.Queues[i], c.Queues[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.QueueID < b.QueueID
	})
	if err := fsutil.WriteFileAtomic(path, c.marshal(), 0o644); err != nil {
		return fmt.Errorf("commitlog: write checkpoint: %w", err)
	}
	return nil
}

const journalEntrySize = 32

type journalEntry struct {
	Seq       uint64
	RaftIndex uint64
	End       int64
}

// journal is the ring of per-batch (raftIndex, batchEnd) records.
type journal struct {
	mf    *mappedFile
	slots int64
	seq   uint64 // last sequence number written
}

func openJournal(path string, slots int) (*journal, error) {
	size := int64(slots) * journalEntrySize
	if st, err := os.Stat(path); err == nil && st.Size() >= journalEntrySize {
		size = st.Size() / journalEntrySize * journalEntrySize
	}
	mf, err := openMappedFile(path, 0, size, false)
	if errors.Is(err, os.ErrNotExist) {
		mf, err = openMappedFile(path, 0, size, true)
	}
	if err != nil {
		return nil, fmt.Errorf("commitlog: open journal: %w", err)
	}
	j := &journal{mf: mf, slots: size / journalEntrySize}
	for _, e := range j.entries() {
		j.seq = max(j.seq, e.Seq)
	}
	return j, nil
}

func (j *journal) slot(seq uint64) []byte {
	off := int64(seq%uint64(j.slots)) * journalEntrySize
	return j.mf.data[off : off+journalEntrySize]
}

// put records that the batch with raftIndex ends at end.
func (j *journal) put(raftIndex uint64, end int64) {
	j.seq++
	b := j.slot(j.seq)
	be := binary.BigEndian
	be.PutUint64(b[0:], j.seq)
	be.PutUint64(b[8:], raftIndex)
	be.PutUint64(b[16:], uint64(end))
	be.PutUint32(b[24:], crc32.Checksum(b[:24], castagnoli))
	be.PutUint32(b[28:], 0)
}

// entries returns the valid entries, in slot order.
func (j *journal) entries() []journalEntry {
	var out []journalEntry
	be := binary.BigEndian
	for s := int64(0); s < j.slots; s++ {
		b := j.mf.data[s*journalEntrySize : (s+1)*journalEntrySize]
		seq := be.Uint64(b)
		if seq == 0 || int64(seq%uint64(j.slots)) != s {
			continue
		}
		if crc32.Checksum(b[:24], castagnoli) != be.Uint32(b[24:]) {
			continue
		}
		out = append(out, journalEntry{Seq: seq, RaftIndex: be.Uint64(b[8:]), End: int64(be.Uint64(b[16:]))})
	}
	return out
}

// lastBoundary returns the entry with the largest End <= limit (and End >=
// floor), if any.
func (j *journal) lastBoundary(floor, limit int64) (journalEntry, bool) {
	var best journalEntry
	found := false
	for _, e := range j.entries() {
		if e.End > limit || e.End < floor {
			continue
		}
		if !found || e.End > best.End || (e.End == best.End && e.Seq > best.Seq) {
			best, found = e, true
		}
	}
	return best, found
}

// dropAfter zeroes every entry whose batch ends beyond end.
func (j *journal) dropAfter(end int64) {
	be := binary.BigEndian
	for s := int64(0); s < j.slots; s++ {
		b := j.mf.data[s*journalEntrySize : (s+1)*journalEntrySize]
		if be.Uint64(b) != 0 && int64(be.Uint64(b[16:])) > end {
			clear(b)
		}
	}
}

func (j *journal) reset() { clear(j.mf.data) }

func (j *journal) sync() error { return j.mf.sync(0, j.mf.size) }

func (j *journal) close() {
	if j.mf != nil {
		j.mf.release()
		j.mf = nil
	}
}
