package node

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftmq/raftmq/namesrv"
)

// The Raft log stall watchdog (raftLogStallTimeout).
//
// hashicorp/raft has no answer to a disk that hangs (raft#503): a leader whose StoreLogs (or
// its fsync) never returns is stuck inside dispatchLogs, but its replication goroutines keep
// heartbeating, so the followers never time out and the group stays down until someone
// restarts the leader. raftmq watches its own log store instead:
//
//   - watchedLogStore wraps the node's Raft log store (under the LogCache) and records, with
//     atomics only, when each write call (StoreLogs, StoreLog, DeleteRange, Sync) started;
//   - logStallWatchdog checks every second (a quarter of the timeout when that is shorter):
//     a write in progress for longer than raftLogStallTimeout, seen on two consecutive checks,
//     fences the node (fenceLogStall).
//
// Fencing is one-way: the node stays up, unready and out of the group until it is restarted
// (a disk that hung is not to be trusted again without someone looking at it). It does not exit:
// it keeps answering with its reason (/readyz, Fenced, every request's remark), /livez stays up,
// and a restart is left to the operator or an orchestrator acting on /readyz and the ERROR line,
// rather than a crash loop on a dead disk. It
//   - fails every outgoing Raft RPC (fencingTransport; after fencedRPCDelay, so that raft's
//     retry loops do not spin) and closes the Raft transport, so the heartbeats stop and the
//     followers elect another leader within an election timeout; closing the NetworkTransport
//     alone would not do: raft v1.7.3 dials a fresh connection for every RPC after Close;
//   - makes serving() fail with ErrFenced (every request is answered SERVICE_NOT_AVAILABLE, the
//     clients go elsewhere), IsLeader and LeaderReady false, and Fenced (what /readyz asks)
//     name the stalled operation;
//   - stops registering with the name servers and unregisters (bounded, 3 s per attempt) the
//     registration they accepted last, again whenever a registration that was already on its way
//     lands after the fence.
//
// Both leaders and followers fence themselves. A follower whose disk hangs harms no one (the
// leader commits with the others), but it can no longer acknowledge anything, serves ever older
// data and would still look ready: fencing it says so, takes it out of the routes and gives one
// rule for every node ("a Raft log write stuck for raftLogStallTimeout needs a restart").
//
// Close of a fenced node still waits for Raft to shut down, i.e. for the stalled write to return:
// if the disk never comes back, the process has to be killed (nothing is lost that was not lost
// already: the node is out of the group).

// ErrFenced: the node fenced itself after a Raft log write stalled; it serves nothing until it is
// restarted. Errors from a fenced node match it and ErrShuttingDown (so replies are
// SERVICE_NOT_AVAILABLE: nothing was stored, the client retries elsewhere).
var ErrFenced = errors.New("node: fenced after a stalled Raft log write")

// errTransportFenced is what every outgoing Raft RPC of a fenced node returns.
var errTransportFenced = errors.New("node: raft transport fenced after a stalled Raft log write")

// fenceError is the reason a fenced node gives: it names the stalled operation.
type fenceError struct{ msg string }

func (e *fenceError) Error() string   { return e.msg }
func (e *fenceError) Unwrap() []error { return []error{ErrFenced, ErrShuttingDown} }

// logOp is a tracked write operation of the Raft log store.
type logOp int64

const (
	opStoreLogs logOp = iota + 1
	opStoreLog
	opDeleteRange
	opSync
	opBits = 3 // logOp values fit in the low bits of a slot
)

func (o logOp) String() string {
	switch o {
	case opStoreLogs:
		return "StoreLogs"
	case opStoreLog:
		return "StoreLog"
	case opDeleteRange:
		return "DeleteRange"
	case opSync:
		return "Sync"
	}
	return "unknown"
}

// watchSlots bounds the calls tracked at once. Raft writes from its main goroutine (StoreLogs,
// conflict DeleteRange) and its snapshot goroutine (compaction DeleteRange); the node adds Sync:
// three at most. A call finding every slot taken is passed through untracked.
const watchSlots = 8

// watchSlot holds one call in progress: (start+1)<<opBits | op, start in nanoseconds since the
// store's base (monotonic clock); 0 = free. Padded to a cache line so concurrent calls in
// different slots do not share one.
type watchSlot struct {
	v atomic.Int64
	_ [56]byte
}

// watchedLogStore is the node's Raft log store with its write calls timed for the stall
// watchdog. Everything passes through unchanged; a write costs one time.Since, one CAS and one
// store (BenchmarkWatchedLogStore). It implements raftLogStore and raft.MonotonicLogStore (the
// LogCache passes IsMonotonic through to it).
type watchedLogStore struct {
	logs  raft.LogStore // the LogStore methods: the store, or Options.WrapRaftLogStore's wrapper of it
	store raftLogStore  // the real store: Sync, Close, IsMonotonic
	base  time.Time
	slots [watchSlots]watchSlot
}

// newWatchedLogStore wraps store; wrap (Options.WrapRaftLogStore, nil in production) goes
// between the watchdog and the store's LogStore methods, so the watchdog sees what it injects.
func newWatchedLogStore(store raftLogStore, wrap func(raft.LogStore) raft.LogStore) *watchedLogStore {
	w := &watchedLogStore{logs: store, store: store, base: time.Now()}
	if wrap != nil {
		w.logs = wrap(store)
	}
	return w
}

// begin records the start of op and returns its slot (-1: untracked).
func (w *watchedLogStore) begin(op logOp) int {
	v := (int64(time.Since(w.base))+1)<<opBits | int64(op)
	for i := range w.slots {
		if w.slots[i].v.CompareAndSwap(0, v) {
			return i
		}
	}
	return -1
}

func (w *watchedLogStore) end(i int) {
	if i >= 0 {
		w.slots[i].v.Store(0)
	}
}

// oldest returns the slot value of the oldest write in progress (ok false when idle).
func (w *watchedLogStore) oldest() (v int64, ok bool) {
	for i := range w.slots {
		s := w.slots[i].v.Load()
		if s != 0 && (!ok || s>>opBits < v>>opBits) {
			v, ok = s, true
		}
	}
	return v, ok
}

// inProgress reports whether the call recorded as slot value v has not returned yet.
func (w *watchedLogStore) inProgress(v int64) bool {
	for i := range w.slots {
		if w.slots[i].v.Load() == v {
			return true
		}
	}
	return false
}

// appendStalled reports whether a StoreLogs/StoreLog call has been in progress for at least d:
// entries proposed since are not on this node's log yet.
func (w *watchedLogStore) appendStalled(d time.Duration) bool {
	now := time.Since(w.base)
	for i := range w.slots {
		v := w.slots[i].v.Load()
		if op := logOp(v & (1<<opBits - 1)); v != 0 && (op == opStoreLogs || op == opStoreLog) && now-time.Duration(v>>opBits-1) >= d {
			return true
		}
	}
	return false
}

// describe decodes a slot value: the operation and how long it has been in progress.
func (w *watchedLogStore) describe(v int64) (logOp, time.Duration) {
	start := time.Duration(v>>opBits - 1)
	return logOp(v & (1<<opBits - 1)), time.Since(w.base) - start
}

func (w *watchedLogStore) FirstIndex() (uint64, error)              { return w.logs.FirstIndex() }
func (w *watchedLogStore) LastIndex() (uint64, error)               { return w.logs.LastIndex() }
func (w *watchedLogStore) GetLog(index uint64, log *raft.Log) error { return w.logs.GetLog(index, log) }

func (w *watchedLogStore) StoreLog(log *raft.Log) error {
	i := w.begin(opStoreLog)
	defer w.end(i)
	return w.logs.StoreLog(log)
}

func (w *watchedLogStore) StoreLogs(logs []*raft.Log) error {
	i := w.begin(opStoreLogs)
	defer w.end(i)
	return w.logs.StoreLogs(logs)
}

func (w *watchedLogStore) DeleteRange(min, max uint64) error {
	i := w.begin(opDeleteRange)
	defer w.end(i)
	return w.logs.DeleteRange(min, max)
}

func (w *watchedLogStore) Sync() error {
	i := w.begin(opSync)
	defer w.end(i)
	return w.store.Sync()
}

// Close is not tracked: the watchdog has stopped by then.
func (w *watchedLogStore) Close() error { return w.store.Close() }

// IsMonotonic reports the real store's answer (the WAL's true; bolt's none, false).
func (w *watchedLogStore) IsMonotonic() bool {
	m, ok := w.store.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// stallDetector decides when a write has stalled: the same call seen in progress for longer than
// limit on two consecutive checks. The second look keeps a pause of the whole process (a stop,
// a VM freeze) from fencing a node whose write completes as soon as it runs again.
type stallDetector struct {
	limit   time.Duration
	suspect int64 // slot value seen beyond the limit at the previous check
}

// check is one look at the oldest write in progress (v, ok from oldest; age its duration).
func (d *stallDetector) check(v int64, ok bool, age time.Duration) bool {
	if !ok || age <= d.limit {
		d.suspect = 0
		return false
	}
	if d.suspect == v {
		return true
	}
	d.suspect = v
	return false
}

// logStallWatchdog runs while raftLogStallTimeout > 0: it fences the node when a Raft log write
// stalls, then keeps undoing late registrations and reports when the stalled write returns.
func (n *Node) logStallWatchdog() {
	limit := n.cfg.RaftLogStallTimeout
	t := time.NewTicker(max(min(time.Second, limit/4), 10*time.Millisecond))
	defer t.Stop()
	d := stallDetector{limit: limit}
	var stalled int64 // slot value of the write that fenced the node
	for {
		select {
		case <-n.shutdownCh:
			return
		case <-t.C:
		}
		if stalled == 0 {
			v, ok := n.logWatch.oldest()
			var op logOp
			var age time.Duration
			if ok {
				op, age = n.logWatch.describe(v)
			}
			if d.check(v, ok, age) {
				stalled = v
				n.fenceLogStall(op, age)
			}
			continue
		}
		// Fenced. A registration that was already on its way when the node fenced itself may
		// have landed since: undo it.
		if reg := n.registered.Swap(0); reg != 0 {
			n.unregisterFenced(reg)
		}
		if stalled > 0 && !n.logWatch.inProgress(stalled) {
			op, age := n.logWatch.describe(stalled)
			n.log.Warn("the stalled Raft log write returned; the node stays fenced until it is restarted",
				"op", op.String(), "after", age.Round(time.Millisecond))
			stalled = -1
		}
	}
}

// fenceLogStall takes the node out of its group for good (see the top of this file).
func (n *Node) fenceLogStall(op logOp, age time.Duration) {
	limit := n.cfg.RaftLogStallTimeout
	err := error(&fenceError{msg: fmt.Sprintf("node: fenced: a Raft log %s has been in progress for %v (raftLogStallTimeout %v): "+
		"the disk write stalled; restart the node", op, age.Round(time.Millisecond), limit)})
	// Registered() turns false with Fenced() turning non-nil (a registration landing in between
	// is undone by the watchdog's next look).
	reg := n.registered.Swap(0)
	if !n.fenced.CompareAndSwap(nil, &err) {
		return // cannot happen: only the watchdog fences, once
	}
	// From here serving() fails: new sends are refused before they are queued, the batcher
	// proposes nothing more, the registration loop stops registering and IsLeader/LeaderReady
	// report false. Sends already proposed never get SEND_OK: their entry is in (or behind)
	// the stalled StoreLogs, and raft hands an entry to the replicators only after its own
	// StoreLogs returned; with the transport fenced it can reach no follower either, so it can
	// never commit from here, and the next leader (a higher term) overwrites it when this node
	// rejoins. Their senders get the send timeout's answer (SYSTEM_ERROR, outcome unknown: this
	// node no longer counts as leader) or ErrRaftShutdown at Close.
	state := "unknown"
	if n.raft != nil {
		state = n.raft.State().String()
	}
	n.log.Error("Raft log write stalled: this node fences itself so that its group can elect another leader; "+
		"it stays fenced (no Raft traffic, unregistered, not ready) until restarted: check the disk and restart it",
		"op", op.String(), "inProgress", age.Round(time.Millisecond), "raftLogStallTimeout", limit, "raftState", state)
	if n.raftTrans != nil {
		n.raftTrans.fence()
	}
	// Inbound too: the next leader's RPCs fail at once instead of queueing behind the stuck
	// raft loop. Close does the same again later (both idempotent).
	if nt, ok := n.trans.(*raft.NetworkTransport); ok {
		nt.CloseStreams()
		_ = nt.Close()
	} else if c, ok := n.trans.(raft.WithClose); ok {
		_ = c.Close()
	}
	n.unregisterFenced(reg)
}

// unregisterFenced drops the registration the name servers accepted last (reg: the value of
// n.registered, 1 + its brokerId), under the brokerId it was made with (registrationID has
// moved on: a fenced node is no leader). Bounded: 3 s, or until Close.
func (n *Node) unregisterFenced(reg int64) {
	if reg == 0 || len(n.cfg.NamesrvAddr) == 0 || n.client == nil {
		return
	}
	ctx, cancel := n.boundedContext(3 * time.Second)
	defer cancel()
	errs := namesrv.UnregisterAll(ctx, n.client, n.cfg.NamesrvAddr, namesrv.UnregisterBrokerRequest{
		ClusterName: n.cfg.BrokerClusterName, BrokerName: n.cfg.BrokerName, BrokerAddr: n.addr, BrokerID: reg - 1,
	})
	for i, err := range errs {
		if err != nil {
			n.log.Warn("fenced node: unregister from name server failed (it expires the registration itself)",
				"namesrv", n.cfg.NamesrvAddr[i], "brokerId", reg-1, "err", err)
		}
	}
}

// Fenced returns nil, or why the node fenced itself (a Raft log write stalled beyond
// raftLogStallTimeout). A fenced node is not ready and stays so until it is restarted.
func (n *Node) Fenced() error {
	if p := n.fenced.Load(); p != nil {
		return *p
	}
	return nil
}

// fencedRPCDelay is how long an outgoing RPC of a fenced node waits before it fails: raft's
// replication and election loops retry failed RPCs within milliseconds, each time with an ERROR
// line, for as long as the node stays fenced; the wait throttles them (Close cuts it short).
const fencedRPCDelay = 5 * time.Second

// fencingTransport is the Raft transport raft sees: the node's transport, whose outgoing RPCs
// all fail once the node is fenced (a stuck leader's replication goroutines would otherwise go
// on heartbeating). One atomic load per RPC.
type fencingTransport struct {
	raft.Transport
	fenced atomic.Bool
	delay  time.Duration   // fencedRPCDelay
	done   <-chan struct{} // the node's shutdownCh: fenced RPCs fail at once
}

// fencingPreVoteTransport is a fencingTransport over a transport with pre-vote (raft enables
// pre-vote by asserting raft.WithPreVote on the transport it is given).
type fencingPreVoteTransport struct {
	*fencingTransport
	pv raft.WithPreVote
}

// newFencingTransport wraps t; the first result is what raft gets. done is the node's shutdown.
func newFencingTransport(t raft.Transport, done <-chan struct{}) (raft.Transport, *fencingTransport) {
	f := &fencingTransport{Transport: t, delay: fencedRPCDelay, done: done}
	if pv, ok := t.(raft.WithPreVote); ok {
		return &fencingPreVoteTransport{fencingTransport: f, pv: pv}, f
	}
	return f, f
}

func (t *fencingTransport) fence() { t.fenced.Store(true) }

func (t *fencingTransport) check() error {
	if !t.fenced.Load() {
		return nil
	}
	if t.delay > 0 {
		timer := time.NewTimer(t.delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-t.done:
		}
	}
	return errTransportFenced
}

func (t *fencingTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	p, err := t.Transport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	return &fencingPipeline{AppendPipeline: p, t: t}, nil
}

func (t *fencingTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if err := t.check(); err != nil {
		return err
	}
	return t.Transport.AppendEntries(id, target, args, resp)
}

func (t *fencingTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	if err := t.check(); err != nil {
		return err
	}
	return t.Transport.RequestVote(id, target, args, resp)
}

func (t *fencingTransport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	if err := t.check(); err != nil {
		return err
	}
	return t.Transport.InstallSnapshot(id, target, args, resp, data)
}

func (t *fencingTransport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	if err := t.check(); err != nil {
		return err
	}
	return t.Transport.TimeoutNow(id, target, args, resp)
}

// Close closes the node's transport when it has a Close (raft calls it at shutdown, as it did
// on the unwrapped transport).
func (t *fencingTransport) Close() error {
	if c, ok := t.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

func (t *fencingPreVoteTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	if err := t.check(); err != nil {
		return err
	}
	return t.pv.RequestPreVote(id, target, args, resp)
}

// fencingPipeline fails appends on a pipeline opened before the fence.
type fencingPipeline struct {
	raft.AppendPipeline
	t *fencingTransport
}

func (p *fencingPipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	if err := p.t.check(); err != nil {
		return nil, err
	}
	return p.AppendPipeline.AppendEntries(args, resp)
}
