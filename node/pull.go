package node

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/transport"
)

// PULL_MESSAGE sysFlag bits (RocketMQ PullSysFlag).
const (
	pullFlagCommitOffset = 1 << 0
	pullFlagSuspend      = 1 << 1
	pullFlagSubscription = 1 << 2
)

// maxSuspend bounds suspendTimeoutMillis (the client's pull RPC timeout is 30 s).
const maxSuspend = 30 * time.Second

type pullHeader struct {
	group        string
	topic        string
	queueID      int32
	offset       int64
	maxMsgs      int32
	sysFlag      int32
	suspend      time.Duration
	subscription string
	exprType     string
	commitOffset int64
}

func parsePullHeader(req *transport.Command) (pullHeader, error) {
	var h pullHeader
	var err error
	h.group = req.Ext("consumerGroup")
	h.topic = req.Ext("topic")
	if h.topic == "" {
		return h, fmt.Errorf("%w: ext field topic missing", ErrBadRequest)
	}
	if h.queueID, err = req.ExtInt32("queueId"); err != nil {
		return h, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if h.offset, err = req.ExtInt64("queueOffset"); err != nil {
		return h, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if h.maxMsgs, err = req.ExtInt32("maxMsgNums"); err != nil {
		return h, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if req.Ext("sysFlag") != "" {
		if h.sysFlag, err = req.ExtInt32("sysFlag"); err != nil {
			return h, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
	}
	if req.Ext("suspendTimeoutMillis") != "" {
		ms, err := req.ExtInt64("suspendTimeoutMillis")
		if err != nil {
			return h, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
		h.suspend = min(time.Duration(max(ms, 0))*time.Millisecond, maxSuspend)
	}
	h.commitOffset = -1
	if req.Ext("commitOffset") != "" {
		if h.commitOffset, err = req.ExtInt64("commitOffset"); err != nil {
			return h, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
	}
	h.subscription = req.Ext("subscription")
	h.exprType = req.Ext("expressionType")
	return h, nil
}

// tagFilter builds the consume-queue filter of a TAG expression: nil for "", "*"; otherwise
// the set of the hash codes of "A || B".
func tagFilter(expr string) func(int64) bool {
	expr = strings.TrimSpace(expr)
	if expr == "" || expr == "*" {
		return nil
	}
	set := map[int64]struct{}{}
	for _, t := range strings.Split(expr, "||") {
		if t = strings.TrimSpace(t); t != "" {
			set[message.TagsHashCode(t)] = struct{}{}
		}
	}
	if len(set) == 0 {
		return nil
	}
	return func(code int64) bool { _, ok := set[code]; return ok }
}

// handlePull serves PULL_MESSAGE. Every reply, errors included, carries nextBeginOffset,
// minOffset, maxOffset and suggestWhichBrokerId: a client that reads a missing
// nextBeginOffset as 0 would rewind; on an error the consumer is told to stay where it is.
func (n *Node) handlePull(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	var held time.Duration
	start := time.Now()
	resp := n.pull(ctx, conn, req, &held)
	observePull(resp.Code, time.Since(start)-held) // metrics.go
	if resp.Ext("nextBeginOffset") == "" {
		topic := req.Ext("topic")
		q, qerr := req.ExtInt32("queueId")
		off, oerr := req.ExtInt64("queueOffset")
		if oerr != nil {
			off = 0
		}
		var minOff, maxOff int64
		if qerr == nil && topic != "" && n.serving() == nil {
			minOff, maxOff = n.store.MinOffset(topic, q), n.store.MaxOffset(topic, q)
		}
		resp.SetExt("nextBeginOffset", strconv.FormatInt(off, 10))
		resp.SetExt("minOffset", strconv.FormatInt(minOff, 10))
		resp.SetExt("maxOffset", strconv.FormatInt(maxOff, 10))
		resp.SetExt("suggestWhichBrokerId", "0")
	}
	return resp
}

// pull serves a pull; *held accumulates the time it was held as a long poll.
func (n *Node) pull(ctx context.Context, conn *transport.Conn, req *transport.Command, held *time.Duration) *transport.Command {
	if err := n.serving(); err != nil {
		return errorResponse(err)
	}
	h, err := parsePullHeader(req)
	if err != nil {
		return errorResponse(err)
	}
	if perm := n.brokerPerm(); perm&4 == 0 {
		return transport.NewResponse(transport.NoPermission, fmt.Sprintf("the broker[%s] pulling message is forbidden (brokerPermission=%d)", n.cfg.BrokerName, perm))
	}
	tc, ok := n.fsm.Topic(h.topic)
	if !ok {
		return transport.NewResponse(transport.TopicNotExist, fmt.Sprintf("topic[%s] not exist, apply first please", h.topic))
	}
	if tc.Perm&4 == 0 {
		return transport.NewResponse(transport.NoPermission, fmt.Sprintf("the topic[%s] pulling message is forbidden", h.topic))
	}
	if h.queueID < 0 || h.queueID >= tc.ReadQueueNums {
		return transport.NewResponse(transport.SystemError, fmt.Sprintf("queueId[%d] is illegal, topic:[%s] topicConfig.readQueueNums:[%d]", h.queueID, h.topic, tc.ReadQueueNums))
	}
	if h.group == "" {
		return errorResponse(fmt.Errorf("%w: ext field consumerGroup missing", ErrBadRequest))
	}
	if !n.ensureGroup(h.group) {
		return transport.NewResponse(transport.SubscriptionGroupNotExist, fmt.Sprintf("subscription group [%s] does not exist", h.group))
	}
	if gc, ok := n.fsm.Group(h.group); ok && !gc.ConsumeEnable {
		return transport.NewResponse(transport.NoPermission, fmt.Sprintf("subscription group [%s] no permission", h.group))
	}
	var filter func(int64) bool
	if h.sysFlag&pullFlagSubscription != 0 || h.subscription != "" {
		// A pull consumer sends its expression.
		if h.exprType != "" && !strings.EqualFold(h.exprType, "TAG") {
			return transport.NewResponse(transport.SubscriptionParseFailed, fmt.Sprintf("expression type %q is not supported (only TAG)", h.exprType))
		}
		filter = tagFilter(h.subscription)
	} else {
		// A push consumer (subscription="") is filtered by what it declared in its heartbeat.
		sub, ok := n.consumers.subscription(h.group, h.topic, conn)
		if !ok {
			return transport.NewResponse(transport.SubscriptionNotExist, fmt.Sprintf("the consumer's subscription not exist: group %s topic %s (no heartbeat declared it to this broker)", h.group, h.topic))
		}
		if sub.ExpressionType != "" && !strings.EqualFold(sub.ExpressionType, "TAG") {
			return transport.NewResponse(transport.SubscriptionParseFailed, fmt.Sprintf("expression type %q is not supported (only TAG)", sub.ExpressionType))
		}
		filter = sub.filter()
	}
	if h.sysFlag&pullFlagCommitOffset != 0 && h.commitOffset >= 0 {
		// A push consumer's progress rides on its pulls (sysFlag 3); the leader records it.
		n.CommitOffset(h.group, h.topic, h.queueID, h.commitOffset)
	}
	maxMsgs := int(h.maxMsgs)
	if maxMsgs <= 0 || maxMsgs > commitlog.DefaultMaxPullMsgs {
		maxMsgs = commitlog.DefaultMaxPullMsgs
	}
	var deadline time.Time
	if h.sysFlag&pullFlagSuspend != 0 && h.suspend > 0 {
		deadline = time.Now().Add(h.suspend)
	}
	for {
		// Take the wait channel before reading so an append in between is not missed.
		wait := n.fsm.WaitQueue(h.topic, h.queueID)
		select {
		case n.pullSem <- struct{}{}:
		case <-ctx.Done():
			return transport.NewResponse(transport.ServiceNotAvailable, "connection closing")
		case <-n.shutdownCh:
			return errorResponse(ErrShuttingDown)
		}
		res, err := n.store.GetMessages(h.topic, h.queueID, h.offset, maxMsgs, commitlog.DefaultMaxPullBytes, filter)
		if err != nil {
			<-n.pullSem
			return errorResponse(fmt.Errorf("pull %s/%d at %d: %w", h.topic, h.queueID, h.offset, err))
		}
		code, next := n.pullStatus(res, h.offset)
		if code == transport.PullRetryImmediately && res.Status == commitlog.StatusNoMatchedMessage && !deadline.IsZero() {
			// Only messages the filter rejects: a held pull skips them and keeps waiting for
			// a matching one (it is not woken by others).
			h.offset = next
			code = transport.PullNotFound
		}
		if code == transport.PullNotFound && !deadline.IsZero() && time.Now().Before(deadline) {
			res.Release()
			<-n.pullSem // a held pull occupies no slot
			t := time.NewTimer(time.Until(deadline))
			n.consumers.heldPulls.Add(1)
			holdStart := time.Now()
			unhold := func() { n.consumers.heldPulls.Add(-1); *held += time.Since(holdStart) }
			select {
			case <-wait:
				t.Stop()
				unhold()
				continue
			case <-t.C:
				unhold()
				deadline = time.Time{} // one last look, then answer
				continue
			case <-ctx.Done():
				t.Stop()
				unhold()
				return transport.NewResponse(transport.ServiceNotAvailable, "connection closing")
			case <-n.shutdownCh:
				t.Stop()
				unhold()
				return errorResponse(ErrShuttingDown)
			}
		}
		resp := transport.NewResponse(code, "")
		if code == transport.Success {
			body := make([]byte, 0, res.TotalBytes)
			for _, b := range res.Buffers {
				body = append(body, b...)
			}
			resp.Body = body
			n.countGet(h.group, h.topic, len(res.Buffers), res.TotalBytes) // runtime stats and metrics (stats.go)
		} else {
			resp.Remark = res.Status.String()
		}
		res.Release()
		<-n.pullSem
		resp.SetExt("nextBeginOffset", strconv.FormatInt(next, 10))
		resp.SetExt("minOffset", strconv.FormatInt(res.MinOffset, 10))
		resp.SetExt("maxOffset", strconv.FormatInt(res.MaxOffset, 10))
		resp.SetExt("suggestWhichBrokerId", "0")
		return resp
	}
}

// pullStatus maps a GetResult to the reply code and nextBeginOffset (Java PullMessageProcessor).
// A follower that has not applied up to the requested offset yet answers NOT_FOUND (the
// consumer asks again) rather than OFFSET_MOVED, which would make it drop the queue.
func (n *Node) pullStatus(res *commitlog.GetResult, offset int64) (transport.ResponseCode, int64) {
	switch res.Status {
	case commitlog.StatusFound:
		return transport.Success, res.NextBeginOffset
	case commitlog.StatusNoMatchedMessage, commitlog.StatusMessageWasRemoving:
		return transport.PullRetryImmediately, res.NextBeginOffset
	case commitlog.StatusNoMatchedLogicQueue, commitlog.StatusNoMessageInQueue:
		if offset != 0 {
			if !n.IsLeader() {
				return transport.PullNotFound, offset
			}
			return transport.PullOffsetMoved, res.NextBeginOffset
		}
		return transport.PullNotFound, res.NextBeginOffset
	case commitlog.StatusOffsetFoundNull, commitlog.StatusOffsetOverflowOne:
		return transport.PullNotFound, res.NextBeginOffset
	case commitlog.StatusOffsetOverflowBadly:
		if !n.IsLeader() {
			return transport.PullNotFound, offset
		}
		return transport.PullOffsetMoved, res.NextBeginOffset
	case commitlog.StatusOffsetTooSmall:
		return transport.PullOffsetMoved, res.NextBeginOffset
	}
	return transport.PullRetryImmediately, res.NextBeginOffset
}
