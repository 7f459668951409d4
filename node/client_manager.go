package node

// The consumer side of the broker (client_manager.go, consumer_admin.go, offsets.go, lock.go,
// pull.go):
//
//   - Client channels are local to each node: every node records the connections that send it
//     HEART_BEAT (Go heartbeats to every address of a broker group when it has consumers), so
//     GET_CONSUMER_LIST_BY_GROUP is right on any node. A channel leaves its groups when its
//     connection closes (transport OnConnClose), on UNREGISTER_CLIENT, or after
//     Options.ClientExpiry (120 s) without a heartbeat; the group's remaining channels then get
//     NOTIFY_CONSUMER_IDS_CHANGED (oneway), as they do when a member joins or the group's
//     subscribed topics change.
//   - Subscriptions come from heartbeats; a push consumer's pull (subscription "") is filtered
//     by its own channel's subscription, else the group's latest. Members of one group that
//     subscribe differently are logged as a warning.
//   - Subscription groups (autoCreateSubscriptionGroup) and %RETRY%<group> topics are created
//     through Raft by a background loop on the leader.
//   - Consumer offsets are recorded on the leader and proposed as one CmdCommitOffsets entry per
//     Options.OffsetFlushInterval (flushConsumerOffsetInterval, 5 s), at graceful shutdown, and
//     handed to the new leader when leadership moves; a crash of the leader loses at most one
//     interval. Offset reads and updates reaching a follower are answered by the leader.
//   - Queue locks (orderly consumers) live in the leader's memory, as in RocketMQ; a new leader
//     starts empty and clients re-lock within their 20 s period.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/transport"
	"github.com/raftmq/raftmq/transport/body"
)

// Defaults of the consumer-side Options.
const (
	DefaultClientExpiry = 120 * time.Second
	DefaultLockExpiry   = 60 * time.Second
)

// retryTopicPrefix names a group's retry topic (%RETRY%<group>).
const retryTopicPrefix = "%RETRY%"

// consumerSide is the node's view of the clients that talk to it: the channels (connections)
// that heartbeat to this node, per consumer and producer group, with their subscriptions,
// and the orderly consumers' queue locks. It is local state, as in RocketMQ: every node
// tracks its own channels (Go heartbeats to every address when it has consumers), so the
// consumer list is right on every node of a group.
type consumerSide struct {
	n     *Node
	mu    sync.Mutex
	cons  map[string]*consumerGroupInfo // group → info
	prods map[string]map[uint64]*channelInfo
	warns map[string]string // group → last inconsistency reported (log once per change)

	creating  sync.Map       // createJob keys queued or being created → struct{}
	createCh  chan createJob // to createLoop
	heldPulls atomic.Int64   // long polls waiting right now (tests)
	locks     *lockManager
}

type channelInfo struct {
	conn       *transport.Conn
	clientID   string
	language   transport.LanguageCode
	version    int16
	lastUpdate time.Time
	subs       map[string]subscriptionData // consumer channels: topic → subscription
}

type consumerGroupInfo struct {
	channels         map[uint64]*channelInfo
	consumeType      string
	messageModel     string
	consumeFromWhere string
	subs             map[string]subscriptionData // the latest heartbeat's, by topic
	lastUpdate       time.Time
}

// subscriptionData is one topic's subscription as a consumer's heartbeat (body.HeartbeatData,
// protocol §3.2) declared it, with the broker's reading of it.
type subscriptionData body.SubscriptionData

// filter returns the consume-queue filter of the subscription (nil: everything).
func (s subscriptionData) filter() func(int64) bool {
	if s.SubString == "" || strings.TrimSpace(s.SubString) == "*" {
		return nil
	}
	if codes := s.CodeSet.Codes; len(codes) > 0 {
		set := make(map[int64]struct{}, len(codes))
		for _, c := range codes {
			set[c] = struct{}{}
		}
		return func(code int64) bool { _, ok := set[code]; return ok }
	}
	if len(s.TagsSet) > 0 {
		return tagFilter(strings.Join(s.TagsSet, "||"))
	}
	return tagFilter(s.SubString)
}

func (s subscriptionData) same(o subscriptionData) bool {
	return s.Topic == o.Topic && strings.TrimSpace(s.SubString) == strings.TrimSpace(o.SubString) &&
		strings.EqualFold(orDefault(s.ExpressionType, "TAG"), orDefault(o.ExpressionType, "TAG"))
}

func (n *Node) routesConsumer() {
	cs := &consumerSide{
		n:     n,
		cons:  map[string]*consumerGroupInfo{},
		prods: map[string]map[uint64]*channelInfo{},
		warns: map[string]string{},
	}
	cs.locks = newLockManager(n.lockExpiry())
	cs.createCh = make(chan createJob, 256)
	n.consumers = cs
	n.mux.HandleFunc(transport.HeartBeat, n.handleHeartbeat)
	n.mux.HandleFunc(transport.UnregisterClient, n.handleUnregisterClient)
	n.mux.HandleFunc(transport.GetConsumerListByGroup, n.handleConsumerList)
	n.mux.HandleFunc(transport.LockBatchMQ, n.handleLockBatch)
	n.mux.HandleFunc(transport.UnlockBatchMQ, n.handleUnlockBatch)
	n.routesOffsets()
	n.routesConsumerAdmin()
	n.goFunc(cs.expiryLoop)
	n.goFunc(cs.createLoop)
}

func (n *Node) clientExpiry() time.Duration {
	if n.opts.ClientExpiry > 0 {
		return n.opts.ClientExpiry
	}
	return DefaultClientExpiry
}

func (n *Node) lockExpiry() time.Duration {
	if n.opts.LockExpiry > 0 {
		return n.opts.LockExpiry
	}
	return DefaultLockExpiry
}

// handleHeartbeat serves HEART_BEAT: records the channel under each producer and consumer
// group, the consumers' subscriptions, auto-creates subscription groups and retry topics on
// the leader, and notifies a consumer group whose membership changed.
func (n *Node) handleHeartbeat(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	if err := n.serving(); err != nil {
		return errorResponse(err)
	}
	var hb body.HeartbeatData
	if err := json.Unmarshal(req.Body, &hb); err != nil {
		return errorResponse(fmt.Errorf("%w: heartbeat body: %v", ErrBadRequest, err))
	}
	if hb.ClientID == "" {
		return errorResponse(fmt.Errorf("%w: heartbeat body: clientID missing", ErrBadRequest))
	}
	for i, c := range hb.ConsumerDataSet {
		if c.GroupName == "" {
			return errorResponse(fmt.Errorf("%w: heartbeat body: consumerDataSet[%d].groupName missing", ErrBadRequest, i))
		}
		for j, s := range c.SubscriptionDataSet {
			if s.Topic == "" {
				return errorResponse(fmt.Errorf("%w: heartbeat body: consumerDataSet[%d].subscriptionDataSet[%d].topic missing", ErrBadRequest, i, j))
			}
		}
	}
	cs := n.consumers
	now := time.Now()
	for _, c := range hb.ConsumerDataSet {
		if n.IsLeader() {
			n.ensureGroup(c.GroupName)
			if !strings.EqualFold(c.MessageModel, "BROADCASTING") {
				n.ensureRetryTopic(c.GroupName)
			}
		}
		if cs.registerConsumer(conn, req, hb.ClientID, c, now) {
			n.log.Info("consumer group members changed", "group", c.GroupName, "clientID", hb.ClientID, "cause", "heartbeat")
			cs.notifyChanged(c.GroupName)
		}
	}
	for _, p := range hb.ProducerDataSet {
		if p.GroupName != "" {
			cs.registerProducer(conn, req, hb.ClientID, p.GroupName, now)
		}
	}
	resp := transport.NewResponse(transport.Success, "")
	return resp
}

func newChannel(conn *transport.Conn, req *transport.Command, clientID string, now time.Time) *channelInfo {
	return &channelInfo{conn: conn, clientID: clientID, language: req.Language, version: req.Version, lastUpdate: now}
}

// registerConsumer records a consumer heartbeat; it reports whether the group's channel set
// or its subscribed topics changed.
func (cs *consumerSide) registerConsumer(conn *transport.Conn, req *transport.Command, clientID string, c body.ConsumerData, now time.Time) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	g := cs.cons[c.GroupName]
	if g == nil {
		g = &consumerGroupInfo{channels: map[uint64]*channelInfo{}}
		cs.cons[c.GroupName] = g
	}
	g.consumeType, g.messageModel, g.consumeFromWhere, g.lastUpdate = c.ConsumeType, c.MessageModel, c.ConsumeFromWhere, now
	subs := make(map[string]subscriptionData, len(c.SubscriptionDataSet))
	for _, s := range c.SubscriptionDataSet {
		subs[s.Topic] = subscriptionData(s)
	}
	// As RocketMQ: a group whose subscribed topics change is told to rebalance too.
	topicsChanged := len(subs) != len(g.subs)
	for t := range subs {
		if _, ok := g.subs[t]; !ok {
			topicsChanged = true
		}
	}
	g.subs = subs
	ch, ok := g.channels[conn.ID()]
	if !ok || ch.clientID != clientID {
		ch = newChannel(conn, req, clientID, now)
		g.channels[conn.ID()] = ch
	}
	ch.lastUpdate = now
	ch.subs = subs
	cs.checkConsistency(c.GroupName, g)
	return !ok || topicsChanged
}

// checkConsistency warns (once per distinct difference) when members of one group subscribe
// differently: RocketMQ keeps only the latest heartbeat's subscriptions, so such a group
// loses or mis-filters messages (USERS.md §3 item 27).
func (cs *consumerSide) checkConsistency(group string, g *consumerGroupInfo) {
	if len(g.channels) < 2 {
		return
	}
	ids := make([]uint64, 0, len(g.channels))
	for id := range g.channels {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	first := g.channels[ids[0]]
	for _, id := range ids[1:] {
		ch := g.channels[id]
		if diff := subsDiff(first.subs, ch.subs); diff != "" {
			key := first.clientID + "|" + ch.clientID + "|" + diff
			if cs.warns[group] != key {
				cs.warns[group] = key
				cs.n.log.Warn("consumer group members subscribe differently; messages may be lost or filtered wrongly",
					"group", group, "client", first.clientID, "otherClient", ch.clientID, "difference", diff)
			}
			return
		}
	}
	delete(cs.warns, group)
}

func subsDiff(a, b map[string]subscriptionData) string {
	topics := map[string]struct{}{}
	for t := range a {
		topics[t] = struct{}{}
	}
	for t := range b {
		topics[t] = struct{}{}
	}
	keys := make([]string, 0, len(topics))
	for t := range topics {
		keys = append(keys, t)
	}
	sort.Strings(keys)
	for _, t := range keys {
		sa, oka := a[t]
		sb, okb := b[t]
		switch {
		case !oka || !okb:
			return "topic " + t + " subscribed by one member only"
		case !sa.same(sb):
			return fmt.Sprintf("topic %s: %q vs %q", t, sa.SubString, sb.SubString)
		}
	}
	return ""
}

func (cs *consumerSide) registerProducer(conn *transport.Conn, req *transport.Command, clientID, group string, now time.Time) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	m := cs.prods[group]
	if m == nil {
		m = map[uint64]*channelInfo{}
		cs.prods[group] = m
	}
	ch, ok := m[conn.ID()]
	if !ok || ch.clientID != clientID {
		ch = newChannel(conn, req, clientID, now)
		m[conn.ID()] = ch
	}
	ch.lastUpdate = now
}

// subscription returns the subscription of group on topic: the pulling channel's own if it
// heartbeats here, else the group's latest.
func (cs *consumerSide) subscription(group, topic string, conn *transport.Conn) (subscriptionData, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	g := cs.cons[group]
	if g == nil {
		return subscriptionData{}, false
	}
	if conn != nil {
		if ch := g.channels[conn.ID()]; ch != nil {
			if s, ok := ch.subs[topic]; ok {
				return s, true
			}
		}
	}
	s, ok := g.subs[topic]
	return s, ok
}

// consumerIDs returns the sorted, distinct client ids of group's channels on this node.
func (cs *consumerSide) consumerIDs(group string) []string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	g := cs.cons[group]
	if g == nil {
		return nil
	}
	seen := map[string]struct{}{}
	var ids []string
	for _, ch := range g.channels {
		if _, ok := seen[ch.clientID]; !ok {
			seen[ch.clientID] = struct{}{}
			ids = append(ids, ch.clientID)
		}
	}
	sort.Strings(ids)
	return ids
}

// groupConns returns the connections of group's channels.
func (cs *consumerSide) groupConns(group string) []*transport.Conn {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	g := cs.cons[group]
	if g == nil {
		return nil
	}
	out := make([]*transport.Conn, 0, len(g.channels))
	for _, ch := range g.channels {
		out = append(out, ch.conn)
	}
	return out
}

// producerConns returns the connections of producer group's channels on this node (e.g. for
// CHECK_TRANSACTION_STATE), most recently heartbeating first.
func (cs *consumerSide) producerConns(group string) []*transport.Conn {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	chs := make([]*channelInfo, 0, len(cs.prods[group]))
	for _, ch := range cs.prods[group] {
		chs = append(chs, ch)
	}
	sort.Slice(chs, func(i, j int) bool { return chs[i].lastUpdate.After(chs[j].lastUpdate) })
	out := make([]*transport.Conn, len(chs))
	for i, ch := range chs {
		out[i] = ch.conn
	}
	return out
}

// ProducerConns returns the open connections of producer group's clients that heartbeat to
// this node, most recently heard first (the transaction checker asks one of them).
func (n *Node) ProducerConns(group string) []*transport.Conn { return n.consumers.producerConns(group) }

// removeChannel drops a channel from every group (connection closed); it returns the
// consumer groups whose membership changed.
func (cs *consumerSide) removeChannel(id uint64) []string {
	return cs.removeChannelFrom(id, nil, nil)
}

// removeChannelFrom drops a channel from the consumer groups cons accepts and the producer
// groups prods accepts (nil accepts every group).
func (cs *consumerSide) removeChannelFrom(id uint64, cons, prods func(string) bool) []string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var changed []string
	for name, g := range cs.cons {
		if cons != nil && !cons(name) {
			continue
		}
		if _, ok := g.channels[id]; ok {
			delete(g.channels, id)
			changed = append(changed, name)
			if len(g.channels) == 0 {
				delete(cs.cons, name)
				delete(cs.warns, name)
			}
		}
	}
	for name, m := range cs.prods {
		if prods != nil && !prods(name) {
			continue
		}
		delete(m, id)
		if len(m) == 0 {
			delete(cs.prods, name)
		}
	}
	sort.Strings(changed)
	return changed
}

// notifyChanged sends NOTIFY_CONSUMER_IDS_CHANGED (oneway) to every channel of group, unless
// the group's config turned notifications off.
func (cs *consumerSide) notifyChanged(group string) {
	if gc, ok := cs.n.fsm.Group(group); ok && !gc.NotifyConsumerIDsChangedEnable {
		return
	}
	for _, c := range cs.groupConns(group) {
		req := transport.NewRequest(transport.NotifyConsumerIDsChanged, map[string]string{"consumerGroup": group}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := c.InvokeOneway(ctx, req); err != nil {
			cs.n.log.Debug("notify consumer ids changed failed", "group", group, "conn", c.RemoteAddr(), "err", err)
		}
		cancel()
	}
}

// onConnClose is the remoting server's hook: a closed connection leaves its groups at once.
func (n *Node) onConnClose(c *transport.Conn) {
	cs := n.consumers
	if cs == nil {
		return
	}
	for _, g := range cs.removeChannel(c.ID()) {
		n.log.Info("consumer group members changed", "group", g, "cause", "connection closed", "remote", c.RemoteAddr())
		cs.notifyChanged(g)
	}
}

// expiryLoop drops channels that have not heartbeated within ClientExpiry.
func (cs *consumerSide) expiryLoop() {
	exp := cs.n.clientExpiry()
	t := time.NewTicker(max(min(exp/4, 10*time.Second), 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-cs.n.shutdownCh:
			return
		case now := <-t.C:
			cs.expire(now.Add(-exp))
			cs.locks.expire(now)
		}
	}
}

func (cs *consumerSide) expire(before time.Time) {
	type gone struct {
		id     uint64
		group  string
		client string
	}
	var out []gone
	cs.mu.Lock()
	for name, g := range cs.cons {
		for id, ch := range g.channels {
			if ch.lastUpdate.Before(before) {
				out = append(out, gone{id, name, ch.clientID})
			}
		}
	}
	for name, m := range cs.prods {
		for id, ch := range m {
			if ch.lastUpdate.Before(before) {
				delete(m, id)
			}
		}
		if len(m) == 0 {
			delete(cs.prods, name)
		}
	}
	cs.mu.Unlock()
	for _, g := range out {
		if len(cs.removeChannelFrom(g.id, func(s string) bool { return s == g.group }, func(string) bool { return false })) > 0 {
			cs.n.log.Info("consumer group members changed", "group", g.group, "clientID", g.client, "cause", "heartbeat expired")
			cs.notifyChanged(g.group)
		}
	}
}

// handleUnregisterClient serves UNREGISTER_CLIENT (ext clientID, producerGroup, consumerGroup).
func (n *Node) handleUnregisterClient(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	clientID := req.Ext("clientID")
	if clientID == "" {
		return errorResponse(fmt.Errorf("%w: ext field clientID missing", ErrBadRequest))
	}
	pg, cg := req.Ext("producerGroup"), req.Ext("consumerGroup")
	cs := n.consumers
	none := func(string) bool { return false }
	consF, prodF := none, none
	if cg != "" {
		consF = func(s string) bool { return s == cg }
	}
	if pg != "" {
		prodF = func(s string) bool { return s == pg }
	}
	for _, g := range cs.removeChannelFrom(conn.ID(), consF, prodF) {
		n.log.Info("consumer group members changed", "group", g, "clientID", clientID, "cause", "unregistered")
		cs.notifyChanged(g)
	}
	return transport.NewResponse(transport.Success, "")
}

// handleConsumerList serves GET_CONSUMER_LIST_BY_GROUP.
func (n *Node) handleConsumerList(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	group := req.Ext("consumerGroup")
	if group == "" {
		return errorResponse(fmt.Errorf("%w: ext field consumerGroup missing", ErrBadRequest))
	}
	ids := n.consumers.consumerIDs(group)
	if len(ids) == 0 {
		return transport.NewResponse(transport.SystemError, "no consumer for this group, "+group)
	}
	resp := transport.NewResponse(transport.Success, "")
	resp.Body, _ = json.Marshal(body.ConsumerList{ConsumerIDList: ids})
	return resp
}

// ensureGroup reports whether group may be used: it exists, or autoCreateSubscriptionGroup
// is on, in which case the leader creates it through Raft in the background (a heartbeat or
// pull is not held up by a Raft round trip).
func (n *Node) ensureGroup(group string) bool {
	if _, ok := n.fsm.Group(group); ok {
		return true
	}
	if !n.LiveConfig().AutoCreateSubscriptionGroup {
		return false
	}
	if n.IsLeader() {
		n.consumers.create(createJob{group: group})
	}
	return true // followers serve reads meanwhile; the leader creates it
}

func defaultGroupConfig(group string) fsm.GroupConfig {
	return fsm.GroupConfig{
		GroupName: group, ConsumeEnable: true, ConsumeFromMinEnable: true, ConsumeBroadcastEnable: true,
		RetryQueueNums: 1, RetryMaxTimes: 16, BrokerID: 0, WhichBrokerWhenConsumeSlowly: 1,
		NotifyConsumerIDsChangedEnable: true,
	}
}

// ensureRetryTopic has the leader create %RETRY%<group> (1 queue, perm 6) through Raft in the
// background and register it with the name servers.
func (n *Node) ensureRetryTopic(group string) {
	topic := retryTopicPrefix + group
	if _, ok := n.fsm.Topic(topic); ok || message.ValidateTopic(topic) != nil || !n.IsLeader() {
		return
	}
	n.consumers.create(createJob{topic: topic})
}

// createJob is a subscription group or retry topic to create through Raft.
type createJob struct{ group, topic string }

func (j createJob) key() string {
	if j.group != "" {
		return "g:" + j.group
	}
	return "t:" + j.topic
}

// create queues a job for createLoop unless the same job is already queued; a full queue
// drops it (the next heartbeat or pull asks again).
func (cs *consumerSide) create(j createJob) {
	if _, busy := cs.creating.LoadOrStore(j.key(), struct{}{}); busy {
		return
	}
	select {
	case cs.createCh <- j:
	default:
		cs.creating.Delete(j.key())
	}
}

// createLoop creates auto-created groups and retry topics on the leader, one at a time.
func (cs *consumerSide) createLoop() {
	n := cs.n
	for {
		var j createJob
		select {
		case <-n.shutdownCh:
			return
		case j = <-cs.createCh:
		}
		if n.IsLeader() {
			ctx, cancel := context.WithTimeout(context.Background(), n.opts.SendTimeout)
			if j.group != "" {
				if _, ok := n.fsm.Group(j.group); !ok {
					if err := n.apply(ctx, fsm.CmdPutGroup, &fsm.PutGroupCommand{Group: defaultGroupConfig(j.group)}); err != nil {
						n.log.Warn("auto-creating subscription group failed", "group", j.group, "err", err)
					} else {
						n.log.Info("subscription group auto-created", "group", j.group)
					}
				}
			} else if _, ok := n.fsm.Topic(j.topic); !ok {
				tc := fsm.TopicConfig{TopicName: j.topic, ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6, TopicFilterType: "SINGLE_TAG"}
				if err := n.apply(ctx, fsm.CmdPutTopic, &fsm.PutTopicCommand{Topic: tc, Timestamp: time.Now().UnixMilli()}); err != nil {
					n.log.Warn("creating retry topic failed", "topic", j.topic, "err", err)
				} else {
					n.log.Info("retry topic created", "topic", j.topic)
					n.kickRegister() // the name servers learn it
				}
			}
			cancel()
		}
		cs.creating.Delete(j.key())
	}
}
