package fsm

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/internal/fsutil"
)

// FSM is the raft FSM of one broker group. Apply, ApplyBatch, Snapshot and
// Restore must be called from one goroutine at a time (raft's FSM goroutine);
// every other method is safe for concurrent use.
type FSM struct {
	cfg    Config
	log    *commitlog.Log
	logger *slog.Logger

	// opMu serialises the state-changing entry points (apply, snapshot,
	// restore, close). Lock order: opMu, then mu, then waitMu.
	opMu    sync.Mutex
	closed  bool
	fatal   error         // sticky: set by the first entry that could not be applied
	applied atomic.Uint64 // last raft index applied (metadata level)
	disk    metaState     // the tables-less header of the last metadata file written or read

	mu sync.RWMutex // guards t
	t  tables

	waitMu     sync.Mutex
	waiters    map[queueKey]chan struct{}
	waitClosed bool
}

type queueKey struct {
	topic string
	queue int32
}

var (
	_ raft.BatchingFSM = (*FSM)(nil)

	closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
)

// New builds an FSM over cfg.Log and loads the metadata file if present.
func New(cfg Config) (*FSM, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.FetchBytes == 0 {
		cfg.FetchBytes = DefaultFetchBytes
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	st, err := readMetaFile(cfg.MetaPath)
	if err != nil {
		return nil, err
	}
	f := &FSM{
		cfg:     cfg,
		log:     cfg.Log,
		logger:  logger,
		t:       tablesFrom(st),
		waiters: map[queueKey]chan struct{}{},
	}
	if st != nil {
		f.applied.Store(st.Applied)
		f.disk = metaState{Applied: st.Applied, LogApplied: st.LogApplied, LogMinPhys: st.LogMinPhys, LogMaxPhys: st.LogMaxPhys}
		logger.Info("loaded metadata", "path", cfg.MetaPath, "applied_index", st.Applied,
			"topics", len(st.Topics), "groups", len(st.Groups), "log_applied_index", cfg.Log.AppliedIndex())
	}
	return f, nil
}

// AppliedIndex is the last raft index applied (any command; appends skipped
// on replay count as applied).
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// DiskCovers says whether local files already hold everything up to a
// snapshot's index: the metadata file was written at or after snapshotIndex
// and the commitlog still holds at least what it held then. When true, node
// may set raft.Config.NoSnapshotRestoreOnStart. Raft's snapshot index may
// exceed the last index this FSM saw (no-op entries are not passed to the
// FSM); then DiskCovers says false and raft restores the (small) snapshot,
// which keeps the local commitlog.
func (f *FSM) DiskCovers(snapshotIndex uint64) bool {
	f.opMu.Lock()
	d := f.disk
	f.opMu.Unlock()
	if d.Applied == 0 || d.Applied < snapshotIndex {
		return false
	}
	return f.log.AppliedIndex() >= d.LogApplied && f.log.MaxPhysOffset() >= d.LogMaxPhys
}

// Apply applies one committed entry. It returns *AppendResponse for CmdAppend,
// nil for a successful metadata command, or an error. Entries already on disk
// (replay) are skipped: an append then returns an empty *AppendResponse.
func (f *FSM) Apply(l *raft.Log) any {
	f.opMu.Lock()
	defer f.opMu.Unlock()
	return f.applyLocked(l)
}

// ApplyBatch applies committed entries in order (raft.BatchingFSM); the
// result is what Apply would have returned for each.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	f.opMu.Lock()
	defer f.opMu.Unlock()
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = f.applyLocked(l)
	}
	return out
}

func (f *FSM) applyLocked(l *raft.Log) any {
	if f.fatal != nil {
		return fmt.Errorf("%w: index %d refused: %w", ErrFatal, l.Index, f.fatal)
	}
	if f.closed {
		return ErrClosed
	}
	if l.Type != raft.LogCommand {
		f.advance(l.Index)
		return nil
	}
	t, cmd, err := Decode(l.Data)
	if err != nil {
		return f.fail(l, err)
	}
	var resp any
	switch c := cmd.(type) {
	case *AppendCommand:
		resp = f.applyAppend(l, c)
	case *DeliverScheduledCommand, *EndTxCommand, *TxCheckCommand:
		resp = f.applyFlow(l, c)
	default:
		if l.Index <= f.applied.Load() {
			break // the metadata file already has it
		}
		resp = f.applyMeta(l, t, cmd)
	}
	if f.fatal == nil {
		f.advance(l.Index)
	}
	return resp
}

func (f *FSM) advance(idx uint64) {
	if idx > f.applied.Load() {
		f.applied.Store(idx)
	}
}

// fail makes err fatal for this replica.
func (f *FSM) fail(l *raft.Log, err error) error {
	err = fmt.Errorf("fsm: apply index %d: %w", l.Index, err)
	f.fatal = err
	f.logger.Error("cannot apply entry; this replica stops applying", "index", l.Index, "term", l.Term, "err", err)
	if f.cfg.OnFatal != nil {
		f.cfg.OnFatal(err)
	}
	return fmt.Errorf("%w: %w", ErrFatal, err)
}

// isRejected reports a deterministic refusal of a batch by the commitlog's
// validation: every replica refuses it the same way, so it is the entry's
// result, not a failure of this replica.
func isRejected(err error) bool {
	for _, s := range []error{
		commitlog.ErrInvalidTopic, commitlog.ErrBodyTooLarge, commitlog.ErrEmptyBody,
		commitlog.ErrPropertiesTooLarge, commitlog.ErrInvalidProperties,
		commitlog.ErrInvalidQueueID, commitlog.ErrMessageTooLarge,
	} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func (f *FSM) applyAppend(l *raft.Log, c *AppendCommand) any {
	if l.Index <= f.log.AppliedIndex() {
		return &AppendResponse{}
	}
	res, err := f.log.Append(commitlog.AppendBatch{
		RaftIndex:      l.Index,
		StoreTimestamp: c.StoreTimestamp,
		Messages:       c.Messages,
		SkipDiskGuard:  true,
	})
	if err != nil {
		if isRejected(err) {
			return fmt.Errorf("fsm: append at index %d: %w", l.Index, err)
		}
		return f.fail(l, fmt.Errorf("append: %w", err))
	}
	f.notify(c.Messages)
	return &AppendResponse{Results: res}
}

func (f *FSM) applyMeta(l *raft.Log, t CommandType, cmd any) any {
	switch c := cmd.(type) {
	case *PutTopicCommand:
		f.mu.Lock()
		f.t.topics[c.Topic.TopicName] = c.Topic
		f.bumpLocked(c.Timestamp)
		f.mu.Unlock()
	case *DeleteTopicCommand:
		// The consume queues: the commitlog records the deletion durably when
		// it happens, so a log that already holds a later batch has done it.
		end := f.log.MaxPhysOffset()
		if l.Index > f.log.AppliedIndex() {
			if err := f.log.DeleteTopic(c.Topic); err != nil {
				return f.fail(l, fmt.Errorf("delete topic %s: %w", c.Topic, err))
			}
		} else {
			// Only when the metadata file was lost: it is written at every
			// deletion the log performs (below), so replay normally skips
			// this entry before getting here.
			f.logger.Warn("replayed topic deletion behind the commitlog; its tombstone offset is approximate",
				"index", l.Index, "topic", c.Topic)
		}
		f.mu.Lock()
		f.t.deleted = append(f.t.deleted, tombstone{Topic: c.Topic, PhysOffset: end, Index: l.Index})
		_, ok := f.t.topics[c.Topic]
		delete(f.t.topics, c.Topic)
		for k := range f.t.offsets {
			if k.topic == c.Topic {
				delete(f.t.offsets, k)
			}
		}
		if ok {
			f.bumpLocked(c.Timestamp)
		}
		f.mu.Unlock()
		f.notifyTopic(c.Topic)
		// Record the deletion's point in the log durably now: a replay over
		// a commitlog that is already past it could not learn it again.
		f.advance(l.Index)
		if _, err := f.persistLocked(); err != nil {
			return f.fail(l, fmt.Errorf("delete topic %s: %w", c.Topic, err))
		}
		if !ok {
			return fmt.Errorf("fsm: delete topic %s: %w", c.Topic, ErrTopicNotExist)
		}
	case *PutGroupCommand:
		f.mu.Lock()
		f.t.groups[c.Group.GroupName] = c.Group
		f.mu.Unlock()
	case *DeleteGroupCommand:
		f.mu.Lock()
		_, ok := f.t.groups[c.Group]
		delete(f.t.groups, c.Group)
		for k := range f.t.offsets {
			if k.group == c.Group {
				delete(f.t.offsets, k)
			}
		}
		f.mu.Unlock()
		if !ok {
			return fmt.Errorf("fsm: delete group %s: %w", c.Group, ErrGroupNotExist)
		}
	case *CommitOffsetsCommand:
		f.mu.Lock()
		for _, e := range c.Entries {
			f.t.offsets[offsetKey{e.Group, e.Topic, e.QueueID}] = e.Offset
		}
		f.mu.Unlock()
	case *SetMemberCommand:
		f.mu.Lock()
		f.t.members[c.Member.ServerID] = c.Member
		f.mu.Unlock()
	default:
		return f.fail(l, fmt.Errorf("%w: %v has no handler", ErrUnknownCommand, t))
	}
	return nil
}

func (f *FSM) bumpLocked(ts int64) {
	f.t.dv.Counter++
	f.t.dv.Timestamp = ts
}

// notify wakes the waiters of every queue the batch appended to.
func (f *FSM) notify(msgs []*commitlog.Message) {
	f.waitMu.Lock()
	defer f.waitMu.Unlock()
	if len(f.waiters) == 0 {
		return
	}
	for _, m := range msgs {
		k := queueKey{m.Topic, m.QueueID}
		if ch, ok := f.waiters[k]; ok {
			close(ch)
			delete(f.waiters, k)
		}
	}
}

func (f *FSM) notifyTopic(topic string) {
	f.waitMu.Lock()
	defer f.waitMu.Unlock()
	for k, ch := range f.waiters {
		if k.topic == topic {
			close(ch)
			delete(f.waiters, k)
		}
	}
}

func (f *FSM) notifyAllLocked() {
	for k, ch := range f.waiters {
		close(ch)
		delete(f.waiters, k)
	}
}

// WaitQueue returns a channel closed when something is appended to the queue
// after this call, when the topic is deleted, after a Restore, or at Close.
// Waiters share one channel per queue, created on demand; nothing runs per
// waiter.
func (f *FSM) WaitQueue(topic string, queueID int32) <-chan struct{} {
	f.waitMu.Lock()
	defer f.waitMu.Unlock()
	if f.waitClosed {
		return closedChan
	}
	k := queueKey{topic, queueID}
	ch, ok := f.waiters[k]
	if !ok {
		ch = make(chan struct{})
		f.waiters[k] = ch
	}
	return ch
}

// Topic returns the topic's config.
func (f *FSM) Topic(name string) (TopicConfig, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, ok := f.t.topics[name]
	return t, ok
}

// Topics returns every topic config, sorted by name.
func (f *FSM) Topics() []TopicConfig {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return sortedTopics(f.t.topics)
}

// DataVersion is the topic table's version.
func (f *FSM) DataVersion() DataVersion {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.t.dv
}

// Group returns the subscription group's config.
func (f *FSM) Group(name string) (GroupConfig, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	g, ok := f.t.groups[name]
	return g, ok
}

// Groups returns every subscription group config, sorted by name.
func (f *FSM) Groups() []GroupConfig {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return sortedGroups(f.t.groups)
}

// Offset returns the committed consumer offset of group on topic/queueID.
func (f *FSM) Offset(group, topic string, queueID int32) (int64, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	o, ok := f.t.offsets[offsetKey{group, topic, queueID}]
	return o, ok
}

// Offsets returns every committed offset of group, sorted by topic and queue.
func (f *FSM) Offsets(group string) []OffsetEntry {
	f.mu.RLock()
	var st metaState
	t := tables{offsets: map[offsetKey]int64{}}
	for k, v := range f.t.offsets {
		if k.group == group {
			t.offsets[k] = v
		}
	}
	f.mu.RUnlock()
	t.export(&st)
	return st.Offsets
}

// Members returns the group members, sorted by server ID.
func (f *FSM) Members() []Member {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return sortedMembers(f.t.members)
}

// Member returns the member with raft server ID id.
func (f *FSM) Member(id string) (Member, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m, ok := f.t.members[id]
	return m, ok
}

// Close wakes every waiter and, unless an entry failed, flushes the commitlog
// and writes the metadata file at the applied index, so that a restart
// replays little. It does not close the commitlog (the caller owns it).
// Call it after raft has shut down. Close is idempotent.
func (f *FSM) Close() error {
	f.opMu.Lock()
	defer f.opMu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	f.waitMu.Lock()
	f.waitClosed = true
	f.notifyAllLocked()
	f.waitMu.Unlock()
	if f.fatal != nil {
		return nil
	}
	if _, err := f.persistLocked(); err != nil {
		if errors.Is(err, commitlog.ErrClosed) {
			return nil // the log was closed first: it flushed itself, but its position is unknown here
		}
		return err
	}
	return nil
}

// persistLocked flushes the commitlog and writes the metadata file at the
// applied index; it returns the bytes written (also a snapshot). The caller
// holds opMu.
func (f *FSM) persistLocked() ([]byte, error) {
	if err := f.log.Flush(); err != nil {
		return nil, fmt.Errorf("fsm: flush commitlog: %w", err)
	}
	st := metaState{
		Applied:    f.applied.Load(),
		LogApplied: f.log.AppliedIndex(),
		LogMinPhys: f.log.MinPhysOffset(),
		LogMaxPhys: f.log.MaxPhysOffset(),
	}
	f.mu.Lock()
	// Deletions before the log's first offset no longer matter to anyone
	// installing from this log.
	keep := f.t.deleted[:0]
	for _, d := range f.t.deleted {
		if d.PhysOffset >= st.LogMinPhys {
			keep = append(keep, d)
		}
	}
	clear(f.t.deleted[len(keep):])
	f.t.deleted = keep
	f.t.export(&st)
	f.mu.Unlock()
	b, err := encodeMeta(&st)
	if err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(f.cfg.MetaPath, b, 0o644); err != nil {
		return nil, fmt.Errorf("fsm: write metadata %s: %w", f.cfg.MetaPath, err)
	}
	f.disk = metaState{Applied: st.Applied, LogApplied: st.LogApplied, LogMinPhys: st.LogMinPhys, LogMaxPhys: st.LogMaxPhys}
	return b, nil
}
