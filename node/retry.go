package node

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/transport"
)

// routesFlows registers the message-flow handlers: send-back (retry/DLQ) and END_TRANSACTION.
func (n *Node) routesFlows() {
	n.mux.HandleFunc(transport.ConsumerSendMsgBack, n.handleSendBack)
	n.mux.HandleFunc(transport.EndTransaction, n.handleEndTransaction)
}

// dlqPerm is the permission of an auto-created %DLQ% topic: write only, as RocketMQ 4.9
// (an operator grants read to drain it).
const dlqPerm = 2

// defaultMaxReconsumeTimes is a subscription group's retryMaxTimes default.
const defaultMaxReconsumeTimes = 16

// handleSendBack serves CONSUMER_SEND_MSG_BACK (ext offset, group, delayLevel, originMsgId,
// originTopic, maxReconsumeTimes): the message at physical offset `offset` goes to
// %RETRY%<group> with delay level 3+reconsumeTimes (or the one asked), or to %DLQ%<group>
// once reconsumeTimes reaches the maximum or when the asked level is negative.
func (n *Node) handleSendBack(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	if err := n.serving(); err != nil {
		return errorResponse(err)
	}
	if !n.IsLeader() {
		return n.forward(ctx, req)
	}
	if !n.leaderReady.Load() {
		return errorResponse(fmt.Errorf("%w: elected leader still catching up", ErrNoLeader))
	}
	group := req.Ext("group")
	if group == "" {
		return errorResponse(fmt.Errorf("%w: ext field group missing", ErrBadRequest))
	}
	offset, err := req.ExtInt64("offset")
	if err != nil {
		return errorResponse(fmt.Errorf("%w: %v", ErrBadRequest, err))
	}
	var delayLevel int32
	if req.Ext("delayLevel") != "" {
		if delayLevel, err = req.ExtInt32("delayLevel"); err != nil {
			return errorResponse(fmt.Errorf("%w: %v", ErrBadRequest, err))
		}
	}
	gc, ok := n.fsm.Group(group)
	if !ok {
		if !n.LiveConfig().AutoCreateSubscriptionGroup {
			return transport.NewResponse(transport.SubscriptionGroupNotExist, fmt.Sprintf("subscription group %s does not exist (autoCreateSubscriptionGroup=false)", group))
		}
		gc = fsm.GroupConfig{GroupName: group, RetryQueueNums: 1, RetryMaxTimes: defaultMaxReconsumeTimes}
	}
	maxTimes := gc.RetryMaxTimes
	if req.Ext("maxReconsumeTimes") != "" {
		if v, err := req.ExtInt32("maxReconsumeTimes"); err == nil && v >= 0 {
			maxTimes = v
		}
	}
	orig, err := n.store.ReadMessage(offset)
	if err != nil {
		return transport.NewResponse(transport.SystemError, fmt.Sprintf("look message by offset %d failed: %v", offset, err))
	}
	m := orig.Message
	m.Body = append([]byte(nil), orig.Body...)
	props := m.Properties
	if _, ok := message.GetProperty(props, commitlog.PropertyRetryTopic); !ok {
		props, _ = message.SetProperty(props, commitlog.PropertyRetryTopic, orig.Topic)
	}
	originID := req.Ext("originMsgId")
	if originID == "" {
		if id, ok := message.GetProperty(props, commitlog.PropertyUniqKey); ok {
			originID = id
		} else {
			originID = message.OffsetMsgID(orig.StoreHost, orig.PhysicalOffset)
		}
	}
	props, _ = message.SetProperty(props, commitlog.PropertyOriginMessageID, originID)
	props = message.DeleteProperty(props, commitlog.PropertyDelayLevel)
	props = message.DeleteProperty(props, commitlog.PropertyRealTopic)
	props = message.DeleteProperty(props, commitlog.PropertyRealQueueID)
	m.ReconsumeTimes = orig.ReconsumeTimes + 1
	m.QueueID = 0
	if orig.ReconsumeTimes >= maxTimes || delayLevel < 0 {
		m.Topic = dlqPrefix + group
		if _, err := n.ensureTopic(ctx, fsm.TopicConfig{TopicName: m.Topic, ReadQueueNums: 1, WriteQueueNums: 1, Perm: dlqPerm}); err != nil {
			return transport.NewResponse(transport.SystemError, fmt.Sprintf("topic[%s] not exist: %v", m.Topic, err))
		}
	} else {
		m.Topic = retryPrefix + group
		q := max(gc.RetryQueueNums, 1)
		tc, err := n.ensureTopic(ctx, fsm.TopicConfig{TopicName: m.Topic, ReadQueueNums: q, WriteQueueNums: q, Perm: 6})
		if err != nil {
			return transport.NewResponse(transport.SystemError, fmt.Sprintf("topic[%s] not exist: %v", m.Topic, err))
		}
		if tc.WriteQueueNums > 0 {
			m.QueueID = int32(n.queueRR.Add(1) % uint32(tc.WriteQueueNums))
		}
		if delayLevel == 0 {
			delayLevel = 3 + orig.ReconsumeTimes
		}
		props, _ = message.SetProperty(props, commitlog.PropertyDelayLevel, strconv.Itoa(int(delayLevel)))
	}
	m.Properties = props
	if err := n.toSchedule(&m); err != nil {
		return errorResponse(err)
	}
	if _, err := n.Append(ctx, []*commitlog.Message{&m}); err != nil {
		return errorResponse(err)
	}
	return transport.NewResponse(transport.Success, "")
}

// retrySendToDLQ handles a direct send to %RETRY%<group> (Java's handleRetryAndDLQ): once the
// message's reconsumeTimes reaches the maximum (the request's maxReconsumeTimes, else the
// group's retryMaxTimes) it is stored in %DLQ%<group> instead and answered here.
// A non-nil reply means the send failed there.
func (n *Node) retrySendToDLQ(ctx context.Context, h *sendHeader) *transport.Command {
	group := strings.TrimPrefix(h.topic, retryPrefix)
	maxTimes := int32(defaultMaxReconsumeTimes)
	if g, ok := n.fsm.Group(group); ok {
		maxTimes = g.RetryMaxTimes
	}
	if h.maxReconsumeTimes >= 0 {
		maxTimes = h.maxReconsumeTimes
	}
	if h.reconsumeTimes < maxTimes {
		return nil
	}
	dlq := dlqPrefix + group
	if _, err := n.ensureTopic(ctx, fsm.TopicConfig{TopicName: dlq, ReadQueueNums: 1, WriteQueueNums: 1, Perm: dlqPerm}); err != nil {
		return transport.NewResponse(transport.SystemError, fmt.Sprintf("topic[%s] not exist: %v", dlq, err))
	}
	h.topic, h.queueID, h.replyQueueID = dlq, 0, 0
	return nil
}
