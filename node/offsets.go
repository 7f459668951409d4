package node

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/transport"
)

// DefaultOffsetFlushInterval is how often consumer offsets recorded on the leader are
// proposed (one CmdCommitOffsets entry for all of them): RocketMQ's
// flushConsumerOffsetInterval. Options.OffsetFlushInterval overrides it.
const DefaultOffsetFlushInterval = 5 * time.Second

// handOverRetry is how soon a node that lost leadership tries again to hand its pending
// offsets to the new leader (whose address may not be known at once).
const handOverRetry = 100 * time.Millisecond

type offsetKey struct {
	group, topic string
	queue        int32
}

// offsetCommitter collects consumer offsets on the leader (the commit bit of PULL_MESSAGE and
// UPDATE_CONSUMER_OFFSET) and proposes them in one entry per interval: consumers commit every
// few seconds for every queue, and one Raft entry per commit would cost more than the messages
// themselves. A failover therefore rolls a group back by at most one interval. Offsets still
// pending when this node loses leadership are forwarded to the new leader.
type offsetCommitter struct {
	n       *Node
	mu      sync.Mutex
	pending map[offsetKey]int64
}

func (n *Node) offsetFlushInterval() time.Duration {
	if n.opts.OffsetFlushInterval > 0 {
		return n.opts.OffsetFlushInterval
	}
	if n.cfg.FlushConsumerOffsetInterval > 0 {
		return n.cfg.FlushConsumerOffsetInterval
	}
	return DefaultOffsetFlushInterval
}

// CommitOffset records a consumer offset; it reaches the replicated table within the flush
// interval (leader only; elsewhere it is dropped, as a Java slave ignores the commit bit).
func (n *Node) CommitOffset(group, topic string, queueID int32, offset int64) {
	if group == "" || topic == "" || offset < 0 || !n.IsLeader() {
		return
	}
	c := n.offsets
	c.mu.Lock()
	c.pending[offsetKey{group, topic, queueID}] = offset
	c.mu.Unlock()
}

// ConsumerOffset returns the newest offset of group on topic/queueID this node knows: one
// recorded but not yet proposed (leader), else the replicated one.
func (n *Node) ConsumerOffset(group, topic string, queueID int32) (int64, bool) {
	if c := n.offsets; c != nil {
		c.mu.Lock()
		off, ok := c.pending[offsetKey{group, topic, queueID}]
		c.mu.Unlock()
		if ok {
			return off, true
		}
	}
	return n.fsm.Offset(group, topic, queueID)
}

// FlushOffsets proposes the recorded offsets now and waits for them to be applied.
func (n *Node) FlushOffsets(ctx context.Context) error { return n.offsets.flush(ctx) }

func (c *offsetCommitter) take() []fsm.OffsetEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		return nil
	}
	out := make([]fsm.OffsetEntry, 0, len(c.pending))
	for k, off := range c.pending {
		out = append(out, fsm.OffsetEntry{Group: k.group, Topic: k.topic, QueueID: k.queue, Offset: off})
	}
	clear(c.pending)
	// Deterministic order in the entry (the FSM applies it in order; last write wins).
	slices.SortFunc(out, func(a, b fsm.OffsetEntry) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.QueueID, b.QueueID))
	})
	return out
}

func (c *offsetCommitter) hasPending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending) > 0
}

// putBack returns entries that could not be committed, unless newer ones arrived meanwhile.
func (c *offsetCommitter) putBack(entries []fsm.OffsetEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range entries {
		k := offsetKey{e.Group, e.Topic, e.QueueID}
		if _, ok := c.pending[k]; !ok {
			c.pending[k] = e.Offset
		}
	}
}

func (c *offsetCommitter) flush(ctx context.Context) error {
	if c.n.raft.State() != raft.Leader {
		return nil
	}
	entries := c.take()
	if len(entries) == 0 {
		return nil
	}
	if err := c.n.apply(ctx, fsm.CmdCommitOffsets, &fsm.CommitOffsetsCommand{Entries: entries}); err != nil {
		c.putBack(entries)
		return fmt.Errorf("node: commit %d consumer offsets: %w", len(entries), err)
	}
	return nil
}

// handOver forwards offsets still pending on a node that lost leadership to the new leader
// (UPDATE_CONSUMER_OFFSET), so a leadership change loses no recorded progress.
// It reports whether nothing is left pending.
func (c *offsetCommitter) handOver() bool {
	addr, id := c.n.leaderBrokerAddr()
	if id == "" || addr == "" || addr == c.n.addr {
		return !c.hasPending() // no leader (address) known yet: keep them, try again
	}
	entries := c.take()
	var failed []fsm.OffsetEntry
	for i, e := range entries {
		req := transport.NewRequest(transport.UpdateConsumerOffset, map[string]string{
			"consumerGroup": e.Group, "topic": e.Topic, "queueId": strconv.Itoa(int(e.QueueID)),
			"commitOffset": strconv.FormatInt(e.Offset, 10), extForwarded: string(c.n.serverID),
		}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), c.n.opts.SendTimeout)
		resp, err := c.n.client.Invoke(ctx, addr, req)
		cancel()
		if err != nil || resp.Code != int16(transport.Success) {
			failed = entries[i:]
			break
		}
	}
	if len(failed) > 0 {
		c.putBack(failed)
		return false
	}
	return !c.hasPending()
}

func (c *offsetCommitter) run() {
	t := time.NewTicker(c.n.offsetFlushInterval())
	defer t.Stop()
	// Leader changes: a node that lost leadership hands its pending offsets over at once
	// rather than at the next tick.
	leaderCh := make(chan raft.Observation, 4)
	obs := raft.NewObserver(leaderCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	c.n.raft.RegisterObserver(obs)
	defer c.n.raft.DeregisterObserver(obs)
	var retry <-chan time.Time // armed while a hand-over is unfinished
	handOver := func() {
		retry = nil
		if c.n.raft.State() != raft.Leader && c.hasPending() && !c.handOver() {
			retry = time.After(handOverRetry)
		}
	}
	for {
		select {
		case <-c.n.shutdownCh:
			return
		case <-leaderCh:
			handOver()
		case <-retry:
			handOver()
		case <-t.C:
			if c.n.raft.State() != raft.Leader {
				handOver()
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), c.n.opts.SendTimeout)
			if err := c.flush(ctx); err != nil {
				c.n.log.Warn("committing consumer offsets failed", "err", err)
			}
			cancel()
		}
	}
}

func (n *Node) routesOffsets() {
	n.mux.HandleFunc(transport.QueryConsumerOffset, n.handleQueryConsumerOffset)
	n.mux.HandleFunc(transport.UpdateConsumerOffset, n.handleUpdateConsumerOffset)
	n.mux.HandleFunc(transport.GetMaxOffset, n.handleQueueOffset)
	n.mux.HandleFunc(transport.GetMinOffset, n.handleQueueOffset)
	n.mux.HandleFunc(transport.GetEarliestMsgStoreTime, n.handleQueueOffset)
	n.mux.HandleFunc(transport.SearchOffsetByTimestamp, n.handleQueueOffset)
}

// queueArgs parses the topic and queueId ext fields, naming the bad one.
func queueArgs(req *transport.Command) (string, int32, error) {
	topic := req.Ext("topic")
	if topic == "" {
		return "", 0, fmt.Errorf("%w: ext field topic missing", ErrBadRequest)
	}
	if err := message.ValidateTopic(topic); err != nil {
		return "", 0, fmt.Errorf("%w: ext field topic: %v", ErrBadRequest, err)
	}
	q, err := req.ExtInt32("queueId")
	if err != nil {
		return "", 0, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if q < 0 {
		return "", 0, fmt.Errorf("%w: ext field queueId=%d is negative", ErrBadRequest, q)
	}
	return topic, q, nil
}

// handleQueryConsumerOffset serves QUERY_CONSUMER_OFFSET with Java's rule: the stored offset;
// else 0 when the queue's minOffset is 0 and its first message is still in the commitlog (a
// new group reads a young queue from the start); else QUERY_NOT_FOUND.
func (n *Node) handleQueryConsumerOffset(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	if err := n.serving(); err != nil {
		return errorResponse(err)
	}
	group := req.Ext("consumerGroup")
	if group == "" {
		return errorResponse(fmt.Errorf("%w: ext field consumerGroup missing", ErrBadRequest))
	}
	topic, q, err := queueArgs(req)
	if err != nil {
		return errorResponse(err)
	}
	if resp, ok := n.forwardRead(ctx, req); ok {
		return resp
	}
	off, ok := n.ConsumerOffset(group, topic, q)
	if !ok {
		if n.store.MinOffset(topic, q) > 0 || !n.firstStillStored(topic, q) {
			return transport.NewResponse(transport.QueryNotFound, "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")
		}
		off = 0
	}
	resp := transport.NewResponse(transport.Success, "")
	resp.SetExt("offset", strconv.FormatInt(off, 10))
	return resp
}

// firstStillStored reports whether entry 0 of the queue is absent (empty queue) or its
// message is still in the commitlog.
func (n *Node) firstStillStored(topic string, q int32) bool {
	if n.store.MaxOffset(topic, q) == 0 {
		return true
	}
	res, err := n.store.GetMessages(topic, q, 0, 1, commitlog.DefaultMaxPullBytes, nil)
	if err != nil {
		return false
	}
	defer res.Release()
	return res.Status == commitlog.StatusFound
}

// handleUpdateConsumerOffset serves UPDATE_CONSUMER_OFFSET (oneway from Go). A follower
// forwards it to the leader.
func (n *Node) handleUpdateConsumerOffset(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	if err := n.serving(); err != nil {
		return errorResponse(err)
	}
	group := req.Ext("consumerGroup")
	if group == "" {
		return errorResponse(fmt.Errorf("%w: ext field consumerGroup missing", ErrBadRequest))
	}
	topic, q, err := queueArgs(req)
	if err != nil {
		return errorResponse(err)
	}
	off, err := req.ExtInt64("commitOffset")
	if err != nil {
		return errorResponse(fmt.Errorf("%w: %v", ErrBadRequest, err))
	}
	if off < 0 {
		return errorResponse(fmt.Errorf("%w: ext field commitOffset=%d is negative", ErrBadRequest, off))
	}
	if !n.IsLeader() {
		return n.forward(ctx, req)
	}
	n.CommitOffset(group, topic, q, off)
	return transport.NewResponse(transport.Success, "")
}

// handleQueueOffset serves GET_MAX_OFFSET, GET_MIN_OFFSET, GET_EARLIEST_MSG_STORETIME and
// SEARCH_OFFSET_BY_TIMESTAMP from the commitlog: the leader's answer when it can be had (see
// forwardRead), else this node's, up to what it has applied.
func (n *Node) handleQueueOffset(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	if err := n.serving(); err != nil {
		return errorResponse(err)
	}
	topic, q, err := queueArgs(req)
	if err != nil {
		return errorResponse(err)
	}
	if resp, ok := n.forwardRead(ctx, req); ok {
		return resp
	}
	resp := transport.NewResponse(transport.Success, "")
	switch req.RequestCode() {
	case transport.GetMaxOffset:
		resp.SetExt("offset", strconv.FormatInt(n.store.MaxOffset(topic, q), 10))
	case transport.GetMinOffset:
		resp.SetExt("offset", strconv.FormatInt(n.store.MinOffset(topic, q), 10))
	case transport.GetEarliestMsgStoreTime:
		resp.SetExt("timestamp", strconv.FormatInt(n.store.EarliestStoreTime(topic, q), 10))
	case transport.SearchOffsetByTimestamp:
		ts, err := req.ExtInt64("timestamp")
		if err != nil {
			return errorResponse(fmt.Errorf("%w: %v", ErrBadRequest, err))
		}
		resp.SetExt("offset", strconv.FormatInt(n.store.OffsetByTime(topic, q, ts), 10))
	}
	return resp
}

// forwardRead answers an offset read that reached a follower with the leader's answer: RocketMQ
// clients send these to the master only, and a follower that has not applied the latest
// entries yet would report a smaller max offset, an older consumer offset, or miss the
// offsets the leader has recorded but not yet proposed. ok is false on the leader, for an
// already forwarded request, or when the leader cannot be asked: then the node answers from
// its own state, which is still better than no answer while there is no leader.
func (n *Node) forwardRead(ctx context.Context, req *transport.Command) (*transport.Command, bool) {
	if n.IsLeader() || req.Ext(extForwarded) != "" {
		return nil, false
	}
	addr, id := n.leaderBrokerAddr()
	if id == "" || addr == "" || addr == n.addr {
		return nil, false
	}
	fwd := transport.NewRequest(req.RequestCode(), make(map[string]string, len(req.ExtFields)+1), nil)
	for k, v := range req.ExtFields {
		fwd.ExtFields[k] = v
	}
	fwd.ExtFields[extForwarded] = string(n.serverID)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := n.client.Invoke(cctx, addr, fwd)
	if err != nil || resp.Code == int16(transport.ServiceNotAvailable) {
		return nil, false
	}
	out := transport.NewResponse(transport.ResponseCode(resp.Code), resp.Remark)
	out.ExtFields = resp.ExtFields
	return out, true
}
