package node

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/transport"
	"github.com/raftmq/raftmq/transport/body"
)

func (n *Node) routesConsumerAdmin() {
	n.mux.HandleFunc(transport.GetConsumeStats, n.handleConsumeStats)
	n.mux.HandleFunc(transport.GetConsumerConnectionList, n.handleConsumerConnections)
	n.mux.HandleFunc(transport.GetProducerConnectionList, n.handleProducerConnections)
	n.mux.HandleFunc(transport.InvokeBrokerToResetOffset, n.handleResetOffset)
}

// queue names queue q of topic on this broker group.
func (n *Node) queue(topic string, q int32) body.MessageQueue {
	return body.MessageQueue{Topic: topic, BrokerName: n.cfg.BrokerName, QueueID: int(q)}
}

// GroupQueueStat is one queue's line of a group's consume stats.
type GroupQueueStat struct {
	Topic          string
	QueueID        int32
	BrokerOffset   int64 // the queue's max offset (next to be written)
	ConsumerOffset int64 // the group's committed offset (0 when none)
	LastTimestamp  int64 // store time of the last consumed message, ms (0 when none)
}

// ConsumeStats returns per-queue broker offset, consumer offset and last consume time of
// group on topic ("" = every topic the group has offsets for), sorted by topic and queue.
func (n *Node) ConsumeStats(group, topic string) []GroupQueueStat {
	var topics []string
	if topic != "" {
		topics = []string{topic}
	} else {
		seen := map[string]struct{}{}
		for _, e := range n.fsm.Offsets(group) {
			if _, ok := seen[e.Topic]; !ok {
				seen[e.Topic] = struct{}{}
				topics = append(topics, e.Topic)
			}
		}
		n.offsets.mu.Lock()
		for k := range n.offsets.pending {
			if _, ok := seen[k.topic]; !ok && k.group == group {
				seen[k.topic] = struct{}{}
				topics = append(topics, k.topic)
			}
		}
		n.offsets.mu.Unlock()
		sort.Strings(topics)
	}
	var out []GroupQueueStat
	for _, t := range topics {
		tc, ok := n.fsm.Topic(t)
		if !ok {
			continue
		}
		for q := int32(0); q < tc.ReadQueueNums; q++ {
			st := GroupQueueStat{Topic: t, QueueID: q, BrokerOffset: n.store.MaxOffset(t, q)}
			if off, ok := n.ConsumerOffset(group, t, q); ok && off > 0 {
				st.ConsumerOffset = off
				st.LastTimestamp = n.lastConsumedTime(t, q, off-1)
			}
			out = append(out, st)
		}
	}
	return out
}

// lastConsumedTime is the store time of the message at queue offset off, 0 when unknown.
func (n *Node) lastConsumedTime(topic string, q int32, off int64) int64 {
	res, err := n.store.GetMessages(topic, q, off, 1, commitlog.DefaultMaxPullBytes, nil)
	if err != nil {
		return 0
	}
	defer res.Release()
	if res.Status != commitlog.StatusFound || len(res.Buffers) == 0 {
		return 0
	}
	m, _, err := message.DecodeRecord(res.Buffers[0])
	if err != nil {
		return 0
	}
	return m.StoreTimestamp
}

// handleConsumeStats serves GET_CONSUME_STATS (ext consumerGroup, topic optional): Java's
// ConsumeStats body (body.ConsumeStats), offsetTable keyed by MessageQueue objects.
func (n *Node) handleConsumeStats(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	if err := n.serving(); err != nil {
		return errorResponse(err)
	}
	group := req.Ext("consumerGroup")
	if group == "" {
		return errorResponse(fmt.Errorf("%w: ext field consumerGroup missing", ErrBadRequest))
	}
	topic := req.Ext("topic")
	if topic != "" {
		if _, ok := n.fsm.Topic(topic); !ok {
			return transport.NewResponse(transport.TopicNotExist, fmt.Sprintf("topic[%s] not exist", topic))
		}
	}
	stats := body.ConsumeStats{OffsetTable: map[body.MessageQueue]body.OffsetWrapper{},
		ConsumeTps: n.adminInit().stats.groups.tps(group, topic, time.Now())}
	for _, st := range n.ConsumeStats(group, topic) {
		stats.OffsetTable[n.queue(st.Topic, st.QueueID)] = body.OffsetWrapper{
			BrokerOffset: st.BrokerOffset, ConsumerOffset: st.ConsumerOffset, LastTimestamp: st.LastTimestamp}
	}
	resp := transport.NewResponse(transport.Success, "")
	resp.Body = stats.Encode()
	return resp
}

func connJSON(ch *channelInfo) body.Connection {
	addr := ""
	if ch.conn != nil && ch.conn.RemoteAddr() != nil {
		addr = ch.conn.RemoteAddr().String()
	}
	return body.Connection{ClientID: ch.clientID, ClientAddr: addr, Language: strings.ToUpper(ch.language.String()), Version: int(ch.version)}
}

func sortConns(cs []body.Connection) {
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].ClientID != cs[j].ClientID {
			return cs[i].ClientID < cs[j].ClientID
		}
		return cs[i].ClientAddr < cs[j].ClientAddr
	})
}

// handleConsumerConnections serves GET_CONSUMER_CONNECTION_LIST (ext consumerGroup).
func (n *Node) handleConsumerConnections(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	group := req.Ext("consumerGroup")
	if group == "" {
		return errorResponse(fmt.Errorf("%w: ext field consumerGroup missing", ErrBadRequest))
	}
	cs := n.consumers
	cs.mu.Lock()
	g := cs.cons[group]
	if g == nil || len(g.channels) == 0 {
		cs.mu.Unlock()
		return transport.NewResponse(transport.ConsumerNotOnline, fmt.Sprintf("the consumer group[%s] not online", group))
	}
	cc := body.ConsumerConnection{SubscriptionTable: map[string]body.SubscriptionData{},
		ConsumeType: g.consumeType, MessageModel: g.messageModel, ConsumeFromWhere: g.consumeFromWhere}
	for _, ch := range g.channels {
		cc.ConnectionSet = append(cc.ConnectionSet, connJSON(ch))
	}
	for t, s := range g.subs {
		// As Java's broker writes it: the codes as numbers (a Go client sent strings), never null.
		sj := body.SubscriptionData(s)
		sj.CodeSet = body.CodeSet{Codes: s.CodeSet.Codes}
		if sj.TagsSet == nil {
			sj.TagsSet = []string{}
		}
		cc.SubscriptionTable[t] = sj
	}
	cs.mu.Unlock()
	sortConns(cc.ConnectionSet)
	resp := transport.NewResponse(transport.Success, "")
	resp.Body, _ = json.Marshal(cc)
	return resp
}

// handleProducerConnections serves GET_PRODUCER_CONNECTION_LIST (ext producerGroup).
func (n *Node) handleProducerConnections(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	group := req.Ext("producerGroup")
	if group == "" {
		return errorResponse(fmt.Errorf("%w: ext field producerGroup missing", ErrBadRequest))
	}
	cs := n.consumers
	cs.mu.Lock()
	var conns []body.Connection
	for _, ch := range cs.prods[group] {
		conns = append(conns, connJSON(ch))
	}
	cs.mu.Unlock()
	if len(conns) == 0 {
		return transport.NewResponse(transport.SystemError, fmt.Sprintf("the producer group[%s] not exist", group))
	}
	sortConns(conns)
	resp := transport.NewResponse(transport.Success, "")
	resp.Body, _ = json.Marshal(body.ProducerConnection{ConnectionSet: conns})
	return resp
}

// ResetOffset moves group's offsets on topic to the first message stored at or after
// timestamp (ms; -1 = the end of each queue), through Raft, and tells the group's online
// clients on this node (RESET_CONSUMER_CLIENT_OFFSET). Without force only queues whose
// committed offset is ahead of the target move back (the others keep theirs). Java's broker
// only tells the clients; raftmq also commits the new offsets, so a group with no member
// online is reset too. Leader only. It returns every queue's offset by queue id and the
// number of clients told.
func (n *Node) ResetOffset(ctx context.Context, group, topic string, timestamp int64, force bool) (map[int32]int64, int, error) {
	if err := n.leaderOnly(); err != nil {
		return nil, 0, err
	}
	tc, ok := n.fsm.Topic(topic)
	if !ok {
		return nil, 0, fmt.Errorf("%w: %s", ErrTopicNotExist, topic)
	}
	table := map[int32]int64{}
	for q := int32(0); q < tc.ReadQueueNums; q++ {
		var off int64
		if timestamp == -1 {
			off = n.store.MaxOffset(topic, q)
		} else {
			off = n.store.OffsetByTime(topic, q, timestamp)
		}
		cur, _ := n.ConsumerOffset(group, topic, q)
		if force || off < cur {
			table[q] = off
			n.CommitOffset(group, topic, q, off)
		} else {
			table[q] = cur // as Java: the client is told every queue's offset
		}
	}
	if err := n.FlushOffsets(ctx); err != nil {
		return nil, 0, fmt.Errorf("node: reset offsets of %s on %s: %w", group, topic, err)
	}
	reset := n.resetOffsetBody(topic, table)
	told := 0
	for _, c := range n.consumers.groupConns(group) {
		req := transport.NewRequest(transport.ResetConsumerClientOffset, map[string]string{
			"topic": topic, "group": group, "timestamp": strconv.FormatInt(timestamp, 10), "isForce": strconv.FormatBool(force),
		}, reset)
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		if err := c.InvokeOneway(cctx, req); err == nil {
			told++
		} else {
			n.log.Warn("telling a consumer to reset its offsets failed", "group", group, "conn", c.RemoteAddr(), "err", err)
		}
		cancel()
	}
	n.log.Info("consumer offsets reset", "group", group, "topic", topic, "timestamp", timestamp, "queues", len(table), "clients", told)
	return table, told, nil
}

// resetOffsetBody is the body telling a client (RESET_CONSUMER_CLIENT_OFFSET) or the admin
// (INVOKE_BROKER_TO_RESET_OFFSET's reply) the new offsets of topic's queues.
func (n *Node) resetOffsetBody(topic string, table map[int32]int64) []byte {
	r := body.ResetOffsetBody{OffsetTable: make(map[body.MessageQueue]int64, len(table))}
	for q, off := range table {
		r.OffsetTable[n.queue(topic, q)] = off
	}
	return r.Encode()
}

// handleResetOffset serves INVOKE_BROKER_TO_RESET_OFFSET (ext topic, group, timestamp,
// isForce). A follower forwards it to the leader.
func (n *Node) handleResetOffset(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	if err := n.serving(); err != nil {
		return errorResponse(err)
	}
	topic, group := req.Ext("topic"), req.Ext("group")
	if topic == "" {
		return errorResponse(fmt.Errorf("%w: ext field topic missing", ErrBadRequest))
	}
	if group == "" {
		return errorResponse(fmt.Errorf("%w: ext field group missing", ErrBadRequest))
	}
	ts, err := req.ExtInt64("timestamp")
	if err != nil {
		return errorResponse(fmt.Errorf("%w: %v", ErrBadRequest, err))
	}
	force := true
	if req.Ext("isForce") != "" {
		if force, err = req.ExtBool("isForce"); err != nil {
			return errorResponse(fmt.Errorf("%w: %v", ErrBadRequest, err))
		}
	}
	if !n.IsLeader() {
		return n.forward(ctx, req)
	}
	table, told, err := n.ResetOffset(ctx, group, topic, ts, force)
	if err != nil {
		return errorResponse(err)
	}
	if told == 0 {
		// As Java: the offsets are reset, but no online consumer was told.
		return transport.NewResponse(transport.ConsumerNotOnline, fmt.Sprintf("Consumer not online, so can not reset offset, Group: %s Topic: %s Timestamp: %d", group, topic, ts))
	}
	resp := transport.NewResponse(transport.Success, "")
	resp.Body = n.resetOffsetBody(topic, table)
	return resp
}
