package commitlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftmq/raftmq/message"
)

// Errors callers branch on.
var (
	ErrClosed = errors.New("commitlog: closed")
	// ErrDiskFull refuses appends while the disk holding the commitlog is
	// above DiskMaxUsedSpaceRatio; the wrapping error names usage and ratio.
	ErrDiskFull = errors.New("commitlog: disk full")
	// ErrOffsetOutOfRange is returned for physical offsets outside
	// [MinPhysOffset, MaxPhysOffset] or not at a record.
	ErrOffsetOutOfRange = errors.New("commitlog: offset out of range")
	// ErrMessageTooLarge is returned for a record that cannot fit in a segment.
	ErrMessageTooLarge = errors.New("commitlog: message too large for a segment")
	// ErrStaleIndex is returned by Append for a RaftIndex at or below AppliedIndex.
	ErrStaleIndex = errors.New("commitlog: raft index not above the applied index")
)

// AppendBatch is one unit of atomic appending: after a crash either every
// message of the batch is in the log or none is. Everything that varies is
// passed in, so every replica writes the same bytes.
type AppendBatch struct {
	RaftIndex      uint64 // 0 = not tracked (AppliedIndex unchanged)
	StoreTimestamp int64  // ms, stamped by the leader
	Messages       []*Message
	SkipDiskGuard  bool // for replicas applying what the leader accepted
}

// AppendResult describes one appended message.
type AppendResult struct {
	PhysicalOffset int64
	QueueOffset    int64
	Size           int32
	StoreHost      netip.AddrPort // the record's store host (invalid: none)
}

// MsgID is the offset message id (store host + physical offset), "" without a store host.
// Computed on demand: only the leader's reply needs it, every replica appends.
func (r AppendResult) MsgID() string {
	if !r.StoreHost.IsValid() {
		return ""
	}
	return message.OffsetMsgID(r.StoreHost, r.PhysicalOffset)
}

// Log is the storage engine: commitlog segments, consume queues, index,
// checkpoint. All methods are safe for concurrent use; appends are
// serialised.
type Log struct {
	cfg         Config
	logger      *slog.Logger
	limits      Limits
	deleteHours [24]bool

	// mu guards everything below. Appends, cuts and retention take it for
	// writing; reads, flush snapshots take it for reading.
	mu          sync.RWMutex
	segments    []*mappedFile
	wpos        int64 // next physical offset to write
	flushedPhys int64 // commitlog durable up to here
	queues      map[string]map[int32]*consumeQueue
	applied     uint64
	journal     *journal
	index       *Index
	truncGen    uint64 // bumped by every cut: stale flush snapshots must not advance state
	closed      bool
	// Append encodes records into wbuf and writes them to the segment file
	// with one pwrite per batch (or per MiB, or before a roll): cheaper than
	// faulting fresh pages of the mapping in one by one. Readers see the
	// bytes through the mapping (the page cache is shared) once the batch
	// is complete and the lock released.
	wbuf      []byte
	wbufStart int64

	ckptMu sync.Mutex
	ckpt   checkpoint // last written

	recovery recoveryStats

	diskFull  atomic.Bool
	diskUsage atomic.Uint64 // math.Float64bits of the last usage seen
	diskAt    atomic.Int64  // when checkDisk last read the usage (monotonic ns since start)
	diskKick  chan struct{}

	preMu       sync.Mutex  // guards spare; taken after mu
	spare       *mappedFile // preallocated next segment
	spareWant   int64       // start of the spare wanted now; -1 none
	preallocReq chan int64

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open opens the store under cfg.RootDir, creating it if needed and
// recovering it if the abort file says the last shutdown was unclean.
func Open(cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	hours, _ := parseDeleteWhen(cfg.DeleteWhen)
	l := &Log{
		cfg:         cfg,
		logger:      logger.With("component", "commitlog"),
		limits:      Limits{MaxMessageSize: cfg.MaxMessageSize},
		deleteHours: hours,
		queues:      make(map[string]map[int32]*consumeQueue),
		diskKick:    make(chan struct{}, 1),
		preallocReq: make(chan int64, 1),
		stop:        make(chan struct{}),
	}
	for _, d := range []string{cfg.RootDir, cfg.CommitLogDir, cfg.ConsumeQueueDir, cfg.IndexDir,
		filepath.Dir(cfg.CheckpointPath), filepath.Dir(cfg.AbortPath), filepath.Dir(cfg.JournalPath)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("commitlog: create %s: %w", d, err)
		}
	}
	if err := l.open(); err != nil {
		l.releaseAll()
		return nil, err
	}
	if err := touchAbort(cfg.AbortPath); err != nil {
		l.releaseAll()
		return nil, err
	}
	_ = l.checkDisk()
	l.goFunc(func() {
		l.flushLoop("commitlog", l.cfg.FlushIntervalCommitLog, l.cfg.FlushCommitLogThoroughInterval, l.flushCommitLog)
	})
	l.goFunc(func() {
		l.flushLoop("consume queues", l.cfg.FlushIntervalConsumeQueue, l.cfg.FlushConsumeQueueThoroughInterval, l.flushConsumeQueues)
	})
	l.goFunc(l.retentionLoop)
	l.goFunc(l.diskLoop)
	l.goFunc(l.preallocLoop)
	l.mu.RLock()
	l.requestSpare(l.segments[len(l.segments)-1].end())
	l.mu.RUnlock()
	return l, nil
}

func (l *Log) goFunc(f func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
}

func touchAbort(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("commitlog: create abort file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("commitlog: create abort file: %w", err)
	}
	if err := fsyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("commitlog: sync abort file dir: %w", err)
	}
	return nil
}

func (l *Log) segSize() int64 { return l.cfg.MappedFileSizeCommitLog }

// loadSegments maps the existing commitlog files.
func (l *Log) loadSegments(logStart int64) error {
	starts, err := listFiles(l.cfg.CommitLogDir)
	if err != nil {
		return fmt.Errorf("commitlog: list segments: %w", err)
	}
	for _, s := range starts {
		path := joinName(l.cfg.CommitLogDir, s)
		st, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("commitlog: stat segment %s: %w", path, err)
		}
		size := st.Size()
		if s == starts[len(starts)-1] && size < l.segSize() {
			// The last segment cut short (a torn preallocation, a crash
			// while truncating): give it its full size back; the tail
			// reads as zero.
			size = l.segSize()
		}
		if n := len(l.segments); n > 0 && l.segments[n-1].end() != s {
			if empty, _ := segmentIsEmpty(path); empty {
				// A spare or leftover that never received a record.
				l.logger.Warn("removing empty segment after a gap", "file", fileName(s))
				if err := os.Remove(path); err != nil {
					return fmt.Errorf("commitlog: remove stray segment %s: %w", path, err)
				}
				continue
			}
			return fmt.Errorf("commitlog: segment %s does not follow %s (size %d): gap in the commitlog",
				fileName(s), fileName(l.segments[n-1].start), l.segments[n-1].size)
		}
		if size < minSegmentSize {
			// A segment whose preallocation did not finish: give it full size.
			size = l.segSize()
		}
		mf, err := openMappedFile(path, s, size, false)
		if err != nil {
			return fmt.Errorf("commitlog: open segment %s: %w", fileName(s), err)
		}
		l.segments = append(l.segments, mf)
	}
	if len(l.segments) == 0 {
		if _, err := l.newSegmentLocked(logStart); err != nil {
			return err
		}
	}
	return nil
}

// segmentIsEmpty reports whether the segment file at path starts with a zero
// record header (holds no record).
func segmentIsEmpty(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var h [BlankSize]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return err == io.EOF || err == io.ErrUnexpectedEOF, nil
	}
	return h == [BlankSize]byte{}, nil
}

func (l *Log) newSegmentLocked(start int64) (*mappedFile, error) {
	if mf := l.takeSpare(start); mf != nil {
		l.segments = append(l.segments, mf)
		l.requestSpare(mf.end())
		return mf, nil
	}
	path := joinName(l.cfg.CommitLogDir, start)
	mf, err := openMappedFile(path, start, l.segSize(), true)
	if errors.Is(err, os.ErrExist) {
		// A leftover beyond the end of the log (cut away before): reuse it
		// after making sure it is zero.
		mf, err = openMappedFile(path, start, l.segSize(), false)
		if err == nil {
			err = mf.zero(start, mf.end())
			if err != nil {
				mf.release()
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("commitlog: create segment %s: %w", fileName(start), err)
	}
	if err := fsyncDir(l.cfg.CommitLogDir); err != nil {
		mf.release()
		return nil, fmt.Errorf("commitlog: sync commitlog dir: %w", err)
	}
	l.segments = append(l.segments, mf)
	l.logger.Debug("new segment", "file", fileName(start))
	l.requestSpare(mf.end())
	return mf, nil
}

// loadQueues maps every consume queue. Queues whose files are damaged are
// returned by name for a rebuild.
func (l *Log) loadQueues() (damaged []*consumeQueue, err error) {
	topics, err := os.ReadDir(l.cfg.ConsumeQueueDir)
	if err != nil {
		return nil, fmt.Errorf("commitlog: list consume queues: %w", err)
	}
	for _, t := range topics {
		if !t.IsDir() || message.ValidateTopic(t.Name()) != nil {
			continue
		}
		qdirs, err := os.ReadDir(filepath.Join(l.cfg.ConsumeQueueDir, t.Name()))
		if err != nil {
			return nil, fmt.Errorf("commitlog: list consume queues of %s: %w", t.Name(), err)
		}
		for _, q := range qdirs {
			id, err := strconv.ParseInt(q.Name(), 10, 32)
			if !q.IsDir() || err != nil || id < 0 {
				continue
			}
			cq := newConsumeQueue(l.cfg.ConsumeQueueDir, t.Name(), int32(id), l.cfg.MappedFileSizeConsumeQueue)
			if err := cq.load(); err != nil {
				if !errors.Is(err, errDamagedQueue) {
					cq.close()
					return nil, err
				}
				l.logger.Warn("consume queue damaged, will rebuild", "topic", cq.topic, "queue", cq.queueID, "err", err)
				cq.close()
				damaged = append(damaged, cq)
				continue
			}
			l.putQueue(cq)
		}
	}
	return damaged, nil
}

func (l *Log) putQueue(cq *consumeQueue) {
	m := l.queues[cq.topic]
	if m == nil {
		m = make(map[int32]*consumeQueue)
		l.queues[cq.topic] = m
	}
	m[cq.queueID] = cq
}

func (l *Log) queueLocked(topic string, qid int32) *consumeQueue {
	if cq := l.queues[topic][qid]; cq != nil {
		return cq
	}
	cq := newConsumeQueue(l.cfg.ConsumeQueueDir, topic, qid, l.cfg.MappedFileSizeConsumeQueue)
	l.putQueue(cq)
	return cq
}

func (l *Log) forQueues(f func(cq *consumeQueue) error) error {
	for _, m := range l.queues {
		for _, cq := range m {
			if err := f(cq); err != nil {
				return err
			}
		}
	}
	return nil
}

// segmentFor returns the segment holding physical offset off, or nil.
func (l *Log) segmentFor(off int64) *mappedFile {
	i := findFile(l.segments, off)
	if i < 0 {
		return nil
	}
	return l.segments[i]
}

func (l *Log) minPhysLocked() int64 { return l.segments[0].start }

// dispatchProps are the properties dispatch needs, found in one pass over
// the raw property string (the last value of a key wins, as in GetProperty).
type dispatchProps struct {
	tags, keys, uniq, delay string
	hasDelay                bool
}

func parseDispatchProps(props string) dispatchProps {
	var d dispatchProps
	for props != "" {
		k, v, rest, _, _ := message.NextProperty(props)
		props = rest
		switch k {
		case PropertyTags:
			d.tags = v
		case PropertyKeys:
			d.keys = v
		case PropertyUniqKey:
			d.uniq = v
		case PropertyDelayLevel:
			d.delay, d.hasDelay = v, true
		}
	}
	return d
}

// tagsCode is the consume-queue tag field of a record: the TAGS hash, or for
// SCHEDULE_TOPIC_XXXX the delivery time (store time + delay of the DELAY
// level, clamped to the configured levels; a level <= 0 keeps the tag hash,
// as RocketMQ does).
func (l *Log) tagsCode(topic string, d *dispatchProps, storeTs int64) int64 {
	if topic == ScheduleTopic && d.hasDelay {
		if lvl, err := strconv.Atoi(d.delay); err == nil && lvl > 0 && len(l.cfg.DelayLevels) > 0 {
			lvl = min(lvl, len(l.cfg.DelayLevels))
			return storeTs + l.cfg.DelayLevels[lvl-1].Milliseconds()
		}
	}
	return message.TagsHashCode(d.tags)
}

// ScheduleTopic is RocketMQ's delay topic (RMQ_SYS_SCHEDULE_TOPIC).
const ScheduleTopic = "SCHEDULE_TOPIC_XXXX"

func dispatchesToQueue(sysFlag int32) bool {
	tx := sysFlag & TxTypeMask
	return tx != TxPreparedType && tx != TxRollbackType
}

// indexLocked adds the index entries of one record: each KEYS key and the
// UNIQ_KEY. Rollback records are not indexed.
func (l *Log) indexLocked(topic string, d *dispatchProps, sysFlag int32, phys, storeTs int64) error {
	if sysFlag&TxTypeMask == TxRollbackType {
		return nil
	}
	var err error
	if d.keys != "" {
		message.SplitKeys(d.keys, func(k string) {
			if err == nil {
				err = l.index.Put(topic, k, phys, storeTs)
			}
		})
	}
	if err != nil {
		return fmt.Errorf("commitlog: index keys: %w", err)
	}
	if d.uniq != "" {
		if err := l.index.Put(topic, d.uniq, phys, storeTs); err != nil {
			return fmt.Errorf("commitlog: index uniq key: %w", err)
		}
	}
	return nil
}

// Append writes the batch at the end of the log, dispatches consume-queue
// and index entries, and journals the batch. Every message is validated
// before a byte is written; on any error nothing of the batch remains.
func (l *Log) Append(b AppendBatch) ([]AppendResult, error) {
	for i, m := range b.Messages {
		if m == nil {
			return nil, fmt.Errorf("commitlog: append: message %d is nil", i)
		}
		if err := m.Validate(l.limits); err != nil {
			return nil, fmt.Errorf("commitlog: append: message %d: %w", i, err)
		}
		if sz := int64(m.EncodedSize()); sz+BlankSize > l.segSize() {
			return nil, fmt.Errorf("%w: message %d: record of %d bytes, segment %d bytes (mappedFileSizeCommitLog)", ErrMessageTooLarge, i, sz, l.segSize())
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if !b.SkipDiskGuard {
		if err := l.diskErr(); err != nil {
			return nil, err
		}
	}
	if b.RaftIndex != 0 && b.RaftIndex <= l.applied {
		return nil, fmt.Errorf("%w: %d <= %d", ErrStaleIndex, b.RaftIndex, l.applied)
	}
	start := l.wpos
	res := make([]AppendResult, len(b.Messages))
	l.wbuf, l.wbufStart = l.wbuf[:0], start
	for i, m := range b.Messages {
		r, err := l.appendOneLocked(m, b.StoreTimestamp)
		if err == nil && i == len(b.Messages)-1 {
			err = l.writeBufLocked()
		}
		if err != nil {
			l.wbuf = l.wbuf[:0]
			if terr := l.truncateLocked(start); terr != nil {
				l.logger.Error("append rollback failed", "offset", start, "err", terr)
				return nil, fmt.Errorf("commitlog: append: %w (rollback: %v)", err, terr)
			}
			return nil, fmt.Errorf("commitlog: append: message %d: %w", i, err)
		}
		res[i] = r
	}
	idx := b.RaftIndex
	if idx == 0 {
		idx = l.applied
	}
	l.journal.put(idx, l.wpos)
	l.applied = idx
	return res, nil
}

func (l *Log) appendOneLocked(m *Message, storeTs int64) (AppendResult, error) {
	size := int64(m.EncodedSize())
	seg := l.segments[len(l.segments)-1]
	if l.wpos+size+BlankSize > seg.end() {
		var blank [BlankSize]byte
		message.EncodeBlank(blank[:])
		binary.BigEndian.PutUint32(blank[:], uint32(seg.end()-l.wpos))
		l.wbuf = append(l.wbuf, blank[:]...)
		if err := l.writeBufLocked(); err != nil {
			return AppendResult{}, err
		}
		l.wpos = seg.end()
		l.wbufStart = l.wpos
		var err error
		if seg, err = l.newSegmentLocked(l.wpos); err != nil {
			return AppendResult{}, err
		}
	}
	phys := l.wpos
	var cq *consumeQueue
	var qoff int64
	if dispatchesToQueue(m.SysFlag) {
		cq = l.queueLocked(m.Topic, m.QueueID)
		qoff = cq.max
	}
	if len(l.wbuf) >= writeBufMax {
		if err := l.writeBufLocked(); err != nil {
			return AppendResult{}, err
		}
	}
	at := len(l.wbuf)
	l.wbuf = slices.Grow(l.wbuf, int(size))[:at+int(size)]
	n := message.EncodeRecord(l.wbuf[at:], m, qoff, phys, storeTs)
	l.wpos += int64(n)
	d := parseDispatchProps(m.Properties)
	if cq != nil {
		if err := cq.put(qoff, cqEntry{Phys: phys, Size: int32(n), Tag: l.tagsCode(m.Topic, &d, storeTs)}); err != nil {
			return AppendResult{}, err
		}
	}
	if err := l.indexLocked(m.Topic, &d, m.SysFlag, phys, storeTs); err != nil {
		return AppendResult{}, err
	}
	return AppendResult{PhysicalOffset: phys, QueueOffset: qoff, Size: int32(n), StoreHost: m.StoreHost}, nil
}

// writeBufMax bounds the encode buffer of Append.
const writeBufMax = 1 << 20

// writeBufLocked writes the encoded records in wbuf to the segment holding
// wbufStart.
func (l *Log) writeBufLocked() error {
	if len(l.wbuf) == 0 {
		return nil
	}
	seg := l.segmentFor(l.wbufStart)
	if seg == nil || l.wbufStart+int64(len(l.wbuf)) > seg.end() {
		return fmt.Errorf("commitlog: write %d bytes at %d: outside the active segment", len(l.wbuf), l.wbufStart)
	}
	if _, err := seg.f.WriteAt(l.wbuf, l.wbufStart-seg.start); err != nil {
		return fmt.Errorf("commitlog: write segment %s: %w", fileName(seg.start), err)
	}
	l.wbufStart += int64(len(l.wbuf))
	l.wbuf = l.wbuf[:0]
	return nil
}

// truncateLocked cuts the log at off: commitlog bytes from off are zeroed,
// later segments deleted, consume-queue and index entries at or past off
// removed, journal entries beyond off dropped. It does not sync.
func (l *Log) truncateLocked(off int64) error {
	l.truncGen++
	var first error
	keep := l.segments[:0:0]
	for _, s := range l.segments {
		switch {
		case s.start > off && s != l.segments[0]:
			if err := s.destroy(); err != nil && first == nil {
				first = err
			}
		case s.end() > off:
			if err := s.zero(off, max(off, min(s.end(), l.wpos))); err != nil && first == nil {
				first = err
			}
			keep = append(keep, s)
		default:
			keep = append(keep, s)
		}
	}
	l.segments = keep
	l.preMu.Lock()
	if l.spare != nil && l.spare.start != l.segments[len(l.segments)-1].end() {
		l.dropSpareLocked()
	}
	l.preMu.Unlock()
	if err := l.forQueues(func(cq *consumeQueue) error { return cq.truncateFrom(off) }); err != nil && first == nil {
		first = err
	}
	if err := l.index.Truncate(off); err != nil && first == nil {
		first = fmt.Errorf("commitlog: truncate index: %w", err)
	}
	l.journal.dropAfter(off)
	l.wpos = off
	l.flushedPhys = min(l.flushedPhys, off)
	if last := l.segments[len(l.segments)-1]; last.end() == off {
		if _, err := l.newSegmentLocked(off); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// AppliedIndex is the raft index of the last batch appended (after a
// restart: of the last whole batch in the log).
func (l *Log) AppliedIndex() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.applied
}

// MinPhysOffset is the first physical offset still stored.
func (l *Log) MinPhysOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.minPhysLocked()
}

// MaxPhysOffset is the physical offset the next record will get.
func (l *Log) MaxPhysOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.wpos
}

// Topics returns the topics that have consume queues, sorted.
func (l *Log) Topics() []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]string, 0, len(l.queues))
	for t := range l.queues {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// QueueIDs returns the queue ids of topic, sorted.
func (l *Log) QueueIDs(topic string) []int32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]int32, 0, len(l.queues[topic]))
	for id := range l.queues[topic] {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// DeleteTopic removes the consume queues of topic (the commitlog keeps the
// records until retention removes them).
func (l *Log) DeleteTopic(topic string) error {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	var first error
	for _, cq := range l.queues[topic] {
		if err := cq.destroy(); err != nil && first == nil {
			first = err
		}
	}
	delete(l.queues, topic)
	if err := os.RemoveAll(filepath.Join(l.cfg.ConsumeQueueDir, topic)); err != nil && first == nil {
		first = err
	}
	if first != nil {
		return fmt.Errorf("commitlog: delete topic %s: %w", topic, first)
	}
	// The checkpoint must forget the topic, or recovery would take its
	// missing queues for damage and rebuild them.
	if err := fsyncDir(l.cfg.ConsumeQueueDir); err != nil {
		return fmt.Errorf("commitlog: delete topic %s: sync dir: %w", topic, err)
	}
	c := l.ckpt
	c.Queues = nil
	for _, q := range l.ckpt.Queues {
		if q.Topic != topic {
			c.Queues = append(c.Queues, q)
		}
	}
	c.Deleted = nil
	for _, d := range l.ckpt.Deleted {
		if d.Topic != topic && d.Offset > l.minPhysLocked() {
			c.Deleted = append(c.Deleted, d)
		}
	}
	c.Deleted = append(c.Deleted, tombstone{Topic: topic, Offset: l.wpos})
	if err := writeCheckpoint(l.cfg.CheckpointPath, &c); err != nil {
		return fmt.Errorf("commitlog: delete topic %s: %w", topic, err)
	}
	l.ckpt = c
	return nil
}

// CheckWritable reports whether Append would currently be refused.
func (l *Log) CheckWritable() error {
	l.mu.RLock()
	closed := l.closed
	l.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if time.Duration(time.Since(processStart).Nanoseconds()-l.diskAt.Load()) < diskRecheck {
		return l.diskErr()
	}
	return l.checkDisk()
}

// diskRecheck is how recent a disk reading CheckWritable answers from; an older one is
// read again. Every send calls CheckWritable: a statfs per send was 5 % of the CPU of
// pipelined sends, and a disk does not fill in 50 ms what the guard's margin cannot take.
const diskRecheck = 50 * time.Millisecond

// processStart anchors diskAt to the monotonic clock.
var processStart = time.Now()

// Close stops the background work, flushes everything, writes the
// checkpoint and removes the abort file. It is idempotent.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		close(l.stop)
		l.wg.Wait()
		l.mu.Lock()
		l.closed = true // no more appends: the final flush covers everything
		l.mu.Unlock()
		err := l.flushAll()
		if err == nil {
			if rerr := os.Remove(l.cfg.AbortPath); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = fmt.Errorf("commitlog: remove abort file: %w", rerr)
			} else if serr := fsyncDir(filepath.Dir(l.cfg.AbortPath)); serr != nil {
				err = fmt.Errorf("commitlog: sync abort dir: %w", serr)
			}
		}
		if cerr := l.releaseAll(); err == nil {
			err = cerr
		}
		l.closeErr = err
	})
	return l.closeErr
}

// crash stops the log like a killed process would: no flush, no checkpoint,
// the abort file stays. For tests.
func (l *Log) crash() {
	l.closeOnce.Do(func() {
		close(l.stop)
		l.wg.Wait()
		l.preMu.Lock()
		if l.spare != nil { // a killed process leaves its spare file behind
			l.spare.release()
			l.spare = nil
		}
		l.preMu.Unlock()
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		_ = l.releaseAll()
		l.closeErr = ErrClosed
	})
}

func (l *Log) releaseAll() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.preMu.Lock()
	l.dropSpareLocked()
	l.preMu.Unlock()
	for _, s := range l.segments {
		s.release()
	}
	l.segments = nil
	_ = l.forQueues(func(cq *consumeQueue) error { cq.close(); return nil })
	l.queues = map[string]map[int32]*consumeQueue{}
	if l.journal != nil {
		l.journal.close()
		l.journal = nil
	}
	var err error
	if l.index != nil {
		err = l.index.Close()
		l.index = nil
	}
	return err
}
