package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/transport"
)

// extForwarded marks a request a follower forwarded to the leader (never forwarded twice).
const extForwarded = "raftmqForwarded"

// sendHeader is SEND_MESSAGE's request header (long keys for 10, short keys a..m for 310/320).
type sendHeader struct {
	producerGroup  string
	topic          string
	queueID        int32
	sysFlag        int32
	bornTimestamp  int64
	flag           int32
	properties     string
	reconsumeTimes int32
	batch          bool

	defaultTopic          string // the auto-create template named by the producer (TBW102)
	defaultTopicQueueNums int32  // queues the producer asks an auto-created topic to have
	maxReconsumeTimes     int32  // direct sends to %RETRY%: -1 = not given

	replyQueueID int32              // the queue the reply names (the producer's, not SCHEDULE_TOPIC's)
	reply        *transport.Command // set when the send was answered without the group commit
}

func parseSendHeader(req *transport.Command) (sendHeader, error) {
	short := req.RequestCode() == transport.SendMessageV2 || req.RequestCode() == transport.SendBatchMessage
	key := func(long, s string) string {
		if short {
			return s
		}
		return long
	}
	var h sendHeader
	var err error
	h.producerGroup = req.Ext(key("producerGroup", "a"))
	h.topic = req.Ext(key("topic", "b"))
	if h.topic == "" {
		return h, fmt.Errorf("%w: ext field %s (topic) missing", ErrBadRequest, key("topic", "b"))
	}
	if h.queueID, err = req.ExtInt32(key("queueId", "e")); err != nil {
		return h, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	opt32 := func(k string) (int32, error) {
		if req.Ext(k) == "" {
			return 0, nil
		}
		return req.ExtInt32(k)
	}
	if h.sysFlag, err = opt32(key("sysFlag", "f")); err != nil {
		return h, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if req.Ext(key("bornTimestamp", "g")) != "" {
		if h.bornTimestamp, err = req.ExtInt64(key("bornTimestamp", "g")); err != nil {
			return h, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
	}
	if h.flag, err = opt32(key("flag", "h")); err != nil {
		return h, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	h.properties = req.Ext(key("properties", "i"))
	if h.reconsumeTimes, err = opt32(key("reconsumeTimes", "j")); err != nil {
		return h, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	h.batch = req.RequestCode() == transport.SendBatchMessage || strings.EqualFold(req.Ext(key("batch", "m")), "true")
	h.defaultTopic = req.Ext(key("defaultTopic", "c"))
	if h.defaultTopicQueueNums, err = opt32(key("defaultTopicQueueNums", "d")); err != nil {
		return h, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	h.maxReconsumeTimes = -1
	if req.Ext(key("maxReconsumeTimes", "l")) != "" {
		if h.maxReconsumeTimes, err = req.ExtInt32(key("maxReconsumeTimes", "l")); err != nil {
			return h, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
	}
	return h, nil
}

// decodeBatchBody splits a SEND_BATCH_MESSAGE body (§5): repeated TOTALSIZE | MAGIC | BODYCRC |
// FLAG | BODYLEN + body | PROPLEN int16 + properties.
func decodeBatchBody(b []byte) ([]batchItem, error) {
	var out []batchItem
	for len(b) > 0 {
		if len(b) < 20 {
			return nil, fmt.Errorf("%w: batch body: %d trailing bytes", ErrBadRequest, len(b))
		}
		total := int(int32(binary.BigEndian.Uint32(b)))
		if total < 22 || total > len(b) {
			return nil, fmt.Errorf("%w: batch body: record size %d, %d bytes left", ErrBadRequest, total, len(b))
		}
		rec := b[:total]
		flag := int32(binary.BigEndian.Uint32(rec[12:]))
		bodyLen := int(int32(binary.BigEndian.Uint32(rec[16:])))
		if bodyLen < 0 || 20+bodyLen+2 > total {
			return nil, fmt.Errorf("%w: batch body: body length %d in a record of %d", ErrBadRequest, bodyLen, total)
		}
		body := rec[20 : 20+bodyLen]
		pl := int(binary.BigEndian.Uint16(rec[20+bodyLen:]))
		if 20+bodyLen+2+pl != total {
			return nil, fmt.Errorf("%w: batch body: properties length %d does not fill the record of %d", ErrBadRequest, pl, total)
		}
		out = append(out, batchItem{flag: flag, body: body, props: string(rec[22+bodyLen:])})
		b = b[total:]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty batch", ErrBadRequest)
	}
	return out, nil
}

type batchItem struct {
	flag  int32
	body  []byte
	props string
}

func bornHost(conn *transport.Conn) netip.AddrPort {
	if conn == nil || conn.RemoteAddr() == nil {
		return netip.AddrPort{}
	}
	if tcp, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		ap := tcp.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, err := netip.ParseAddrPort(conn.RemoteAddr().String())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// handleSend serves SEND_MESSAGE (10, 310) and SEND_BATCH_MESSAGE (320) and counts the
// outcome (metrics.go): stored messages and latency on success, the code otherwise, unless
// the reply was relayed from the leader (which counted it).
func (n *Node) handleSend(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	start := time.Now()
	resp, stored, relayed := n.send(ctx, conn, req)
	switch {
	case relayed:
	case resp.Code == int16(transport.Success):
		if stored != nil {
			n.countPutTopic(stored.topic, stored.results)
		}
		observeSend(start)
	default:
		countSendFailure(resp.Code)
	}
	return resp
}

// storedSend is what a successful send stored through group commit.
type storedSend struct {
	topic   string // the producer's (a delayed or half message is stored under a system topic)
	results []commitlog.AppendResult
}

// send handles a send: on a follower it forwards it to the leader (relayed reports whether
// the reply came from there); on the leader it queues it for group commit and waits.
func (n *Node) send(ctx context.Context, conn *transport.Conn, req *transport.Command) (resp *transport.Command, stored *storedSend, relayed bool) {
	if err := n.serving(); err != nil {
		return errorResponse(err), nil, false
	}
	if !n.IsLeader() {
		resp, relayed := n.forwardRelayed(ctx, req)
		return resp, nil, relayed
	}
	if !n.leaderReady.Load() {
		// Elected but still applying what earlier leaders committed: the topic table may be
		// stale. The client retries (SERVICE_NOT_AVAILABLE).
		return errorResponse(fmt.Errorf("%w: elected leader still catching up", ErrNoLeader)), nil, false
	}
	// The send slots bound the work of parsing, validating and queueing; a send waiting for
	// its acknowledgement holds no slot (as RocketMQ's asynchronous put), so many senders can
	// share one Raft entry.
	select {
	case n.sendSem <- struct{}{}:
	case <-ctx.Done():
		return errorResponse(ErrShuttingDown), nil, false
	}
	req2, h, errResp := n.prepareSend(ctx, conn, req)
	<-n.sendSem
	if errResp != nil {
		return errResp, nil, false
	}
	results, err := n.waitSend(ctx, req2)
	if errors.Is(err, ErrCommitTimeout) {
		return n.commitTimeoutResponse(err), nil, false
	}
	if err != nil {
		return errorResponse(err), nil, false
	}
	resp = transport.NewResponse(transport.Success, "")
	ids := make([]string, len(results))
	for i, r := range results {
		ids[i] = r.MsgID()
	}
	resp.SetExt("msgId", strings.Join(ids, ","))
	resp.SetExt("queueId", strconv.Itoa(int(h.replyQueueID)))
	resp.SetExt("queueOffset", strconv.FormatInt(results[0].QueueOffset, 10))
	resp.SetExt(commitlog.PropertyMsgRegion, "DefaultRegion")
	resp.SetExt(commitlog.PropertyTraceSwitch, "true")
	return resp, &storedSend{topic: h.topic, results: results}, false
}

// prepareSend parses and validates a send and queues it for group commit.
func (n *Node) prepareSend(ctx context.Context, conn *transport.Conn, req *transport.Command) (*sendRequest, sendHeader, *transport.Command) {
	h, err := parseSendHeader(req)
	if err != nil {
		return nil, h, errorResponse(err)
	}
	tc, err := n.sendTopicConfig(ctx, &h)
	if err != nil {
		return nil, h, errorResponse(err)
	}
	if h.queueID < 0 {
		h.queueID = int32(n.queueRR.Add(1) % uint32(tc.WriteQueueNums))
	}
	if valid := max(tc.WriteQueueNums, tc.ReadQueueNums); h.queueID >= valid { // as Java's msgCheck
		return nil, h, errorResponse(fmt.Errorf("%w: queueId %d, topic %s has %d write and %d read queues", ErrQueueID, h.queueID, h.topic, tc.WriteQueueNums, tc.ReadQueueNums))
	}
	h.replyQueueID = h.queueID
	if strings.HasPrefix(h.topic, retryPrefix) && req.RequestCode() != transport.SendBatchMessage {
		// A consumer whose send-back failed sends the message itself (Java's handleRetryAndDLQ):
		// past the maximum it goes to the dead-letter queue.
		if resp := n.retrySendToDLQ(ctx, &h); resp != nil {
			return nil, h, resp
		}
	}
	born := bornHost(conn)
	var msgs []*commitlog.Message
	if req.RequestCode() == transport.SendBatchMessage {
		items, err := decodeBatchBody(req.Body)
		if err != nil {
			return nil, h, errorResponse(err)
		}
		if len(req.Body) > n.cfg.MaxMessageSize {
			return nil, h, errorResponse(fmt.Errorf("%w: batch of %d bytes exceeds maxMessageSize %d", commitlog.ErrBodyTooLarge, len(req.Body), n.cfg.MaxMessageSize))
		}
		for _, it := range items {
			if _, delayed := message.GetProperty(it.props, commitlog.PropertyDelayLevel); delayed {
				return nil, h, errorResponse(fmt.Errorf("%w: delayed messages cannot be batched", ErrBadRequest))
			}
			if h.sysFlag&commitlog.TxTypeMask == commitlog.TxPreparedType {
				return nil, h, errorResponse(fmt.Errorf("%w: transactional messages cannot be batched", ErrBadRequest))
			}
			msgs = append(msgs, &commitlog.Message{
				Topic: h.topic, QueueID: h.queueID, Flag: it.flag, SysFlag: h.sysFlag &^ commitlog.FlagCompressed,
				BornTimestamp: h.bornTimestamp, BornHost: born, ReconsumeTimes: h.reconsumeTimes,
				Body: it.body, Properties: it.props,
			})
		}
	} else {
		m := &commitlog.Message{
			Topic: h.topic, QueueID: h.queueID, Flag: h.flag, SysFlag: h.sysFlag,
			BornTimestamp: h.bornTimestamp, BornHost: born, ReconsumeTimes: h.reconsumeTimes,
			Body: req.Body, Properties: h.properties,
		}
		// As Java 4.9's SendMessageProcessor: the broker's cluster name rides along.
		if p, err := message.SetProperty(m.Properties, commitlog.PropertyCluster, n.cfg.BrokerClusterName); err == nil {
			m.Properties = p
		}
		if strings.HasPrefix(m.Topic, dlqPrefix) {
			m.Properties = message.DeleteProperty(m.Properties, commitlog.PropertyDelayLevel)
		}
		if isHalf(m) {
			if n.cfg.RejectTransactionMessage {
				return nil, h, errorResponse(fmt.Errorf("%w: the broker[%s] sending transaction message is forbidden (rejectTransactionMessage=true)", ErrNoPermission, n.cfg.BrokerIP1))
			}
			if err := n.toHalf(m, h.producerGroup); err != nil {
				return nil, h, errorResponse(err)
			}
		} else if err := n.toSchedule(m); err != nil {
			return nil, h, errorResponse(err)
		}
		msgs = []*commitlog.Message{m}
	}
	limits := commitlog.Limits{MaxMessageSize: n.cfg.MaxMessageSize}
	for _, m := range msgs {
		m.StoreHost = n.storeHost
		if err := m.Validate(limits); err != nil {
			return nil, h, errorResponse(err)
		}
	}
	if err := n.store.CheckWritable(); err != nil {
		return nil, h, errorResponse(err)
	}
	r, err := n.batcher.submit(msgs)
	if err != nil {
		return nil, h, errorResponse(err)
	}
	return r, h, nil
}

// Append stores msgs (one topic or several) through group commit on the leader and waits for
// the acknowledgement, at most the send timeout: the Go API of the send path for broker-side
// writers (send-back, delayed delivery). StoreHost is set here; topics are not checked.
// Errors map to response codes through codeFor.
func (n *Node) Append(ctx context.Context, msgs []*commitlog.Message) ([]commitlog.AppendResult, error) {
	if err := n.leaderOnly(); err != nil {
		return nil, err
	}
	limits := commitlog.Limits{MaxMessageSize: n.cfg.MaxMessageSize}
	for _, m := range msgs {
		m.StoreHost = n.storeHost
		if err := m.Validate(limits); err != nil {
			return nil, err
		}
	}
	if err := n.store.CheckWritable(); err != nil {
		return nil, err
	}
	r, err := n.batcher.submit(msgs)
	if err != nil {
		return nil, err
	}
	results, err := n.waitSend(ctx, r)
	if err == nil {
		n.countPut(msgs, results) // metrics.go
	}
	return results, err
}

// waitSend waits for a queued send's outcome, at most the send timeout.
func (n *Node) waitSend(ctx context.Context, r *sendRequest) ([]commitlog.AppendResult, error) {
	t := time.NewTimer(n.opts.SendTimeout)
	defer t.Stop()
	select {
	case o := <-r.done:
		return o.results, o.err
	case <-t.C:
	case <-ctx.Done():
	case <-n.shutdownCh:
	}
	if r.cancel() {
		return nil, fmt.Errorf("%w (waited %v for the group commit)", ErrNotStored, n.opts.SendTimeout)
	}
	// Proposed: the entry is on the leader's log but not yet acknowledged by a quorum.
	select {
	case o := <-r.done:
		return o.results, o.err
	default:
	}
	return nil, fmt.Errorf("%w (%v)", ErrCommitTimeout, n.opts.SendTimeout)
}

// sendTopicConfig checks a producer's target topic: its name (reserved names are refused),
// the broker's and the topic's permissions. An unknown topic is created through Raft when
// RocketMQ would: a %RETRY% topic always, any other when autoCreateTopicEnable is on and the
// producer names an inheritable template (TBW102), with min(template queues, asked queues).
func (n *Node) sendTopicConfig(ctx context.Context, h *sendHeader) (fsm.TopicConfig, error) {
	if err := validateSendTopic(h.topic); err != nil {
		return fsm.TopicConfig{}, err
	}
	tc, err := n.checkTopicWritable(h.topic)
	if !errors.Is(err, ErrTopicNotExist) {
		return tc, err
	}
	var create fsm.TopicConfig
	switch {
	case strings.HasPrefix(h.topic, retryPrefix):
		create = fsm.TopicConfig{TopicName: h.topic, ReadQueueNums: 1, WriteQueueNums: 1, Perm: 6}
		if g, ok := n.fsm.Group(strings.TrimPrefix(h.topic, retryPrefix)); ok && g.RetryQueueNums > 0 {
			create.ReadQueueNums, create.WriteQueueNums = g.RetryQueueNums, g.RetryQueueNums
		}
	case n.LiveConfig().AutoCreateTopicEnable && h.defaultTopic != "":
		tmpl, ok := n.fsm.Topic(h.defaultTopic)
		if !ok || tmpl.Perm&permInherit == 0 {
			return tc, fmt.Errorf("%w (autoCreateTopicEnable=true, but the default topic %q is not an inheritable template)", err, h.defaultTopic)
		}
		q := tmpl.WriteQueueNums
		if h.defaultTopicQueueNums > 0 {
			q = min(q, h.defaultTopicQueueNums)
		}
		create = fsm.TopicConfig{TopicName: h.topic, ReadQueueNums: q, WriteQueueNums: q, Perm: tmpl.Perm &^ permInherit}
	case n.LiveConfig().AutoCreateTopicEnable:
		return tc, fmt.Errorf("%w (no default topic named for auto-creation)", err)
	default:
		return tc, fmt.Errorf("%w (autoCreateTopicEnable=false)", err)
	}
	if _, err := n.ensureTopic(ctx, create); err != nil {
		return tc, err
	}
	return n.checkTopicWritable(h.topic)
}

// validateSendTopic refuses names a producer may not send to (Java's msgCheck and
// TopicValidator): the auto-create template and the broker's system topics.
func validateSendTopic(topic string) error {
	if err := message.ValidateTopic(topic); err != nil {
		return err
	}
	switch {
	case topic == autoCreateTopic:
		return fmt.Errorf("%w: topic %s is the auto-create template and cannot be a send target", commitlog.ErrInvalidTopic, topic)
	case topic == commitlog.ScheduleTopic || topic == halfTopic || topic == opHalfTopic:
		return fmt.Errorf("%w: sending message to topic[%s] is forbidden (system topic)", ErrNoPermission, topic)
	}
	return nil
}

// ensureTopic creates tc through Raft unless the topic exists, and returns the topic's config.
func (n *Node) ensureTopic(ctx context.Context, tc fsm.TopicConfig) (fsm.TopicConfig, error) {
	if cur, ok := n.fsm.Topic(tc.TopicName); ok {
		return cur, nil
	}
	if err := n.CreateTopic(ctx, tc); err != nil {
		return tc, err
	}
	cur, _ := n.fsm.Topic(tc.TopicName)
	return cur, nil
}

// checkTopicWritable returns the topic's config if messages may be written to it here.
func (n *Node) checkTopicWritable(topic string) (fsm.TopicConfig, error) {
	if err := message.ValidateTopic(topic); err != nil {
		return fsm.TopicConfig{}, err
	}
	if perm := n.brokerPerm(); perm&2 == 0 {
		return fsm.TopicConfig{}, fmt.Errorf("%w: broker %s is not writable (brokerPermission=%d)", ErrNoPermission, n.cfg.BrokerName, perm)
	}
	tc, ok := n.fsm.Topic(topic)
	if !ok {
		return tc, fmt.Errorf("%w: topic[%s] not exist, apply first please", ErrTopicNotExist, topic)
	}
	if tc.Perm&2 == 0 {
		return tc, fmt.Errorf("%w: topic %s is not writable (perm=%d)", ErrNoPermission, topic, tc.Perm)
	}
	if tc.WriteQueueNums <= 0 {
		return tc, fmt.Errorf("%w: topic %s has no write queues", ErrQueueID, topic)
	}
	return tc, nil
}

// leaderBrokerAddr returns the broker address of the current Raft leader, if known.
func (n *Node) leaderBrokerAddr() (string, raft.ServerID) {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return "", ""
	}
	if id == n.serverID {
		return n.addr, id
	}
	for _, m := range n.fsm.Members() {
		if raft.ServerID(m.ServerID) == id && m.BrokerAddr != "" {
			return m.BrokerAddr, id
		}
	}
	n.peerMu.Lock()
	defer n.peerMu.Unlock()
	return n.peerAddrs[id], id
}

// forward sends a write that reached a follower to the leader, or answers at once with a
// retriable error when there is no leader (or it is unknown, or the request was already
// forwarded once).
func (n *Node) forward(ctx context.Context, req *transport.Command) *transport.Command {
	resp, _ := n.forwardRelayed(ctx, req)
	return resp
}

// forwardRelayed is forward; relayed reports whether the reply is the leader's.
func (n *Node) forwardRelayed(ctx context.Context, req *transport.Command) (*transport.Command, bool) {
	addr, id := n.leaderBrokerAddr()
	if id == "" {
		return errorResponse(ErrNoLeader), false
	}
	if addr == "" || addr == n.addr || req.Ext(extForwarded) != "" {
		return errorResponse(fmt.Errorf("%w; leader is %s", ErrNotLeader, id)), false
	}
	fwd := &transport.Command{
		Code: req.Code, Language: req.Language, Version: req.Version, Flag: req.Flag &^ transport.FlagOneway,
		Remark: req.Remark, Body: req.Body, SerializeType: transport.SerializeJSON,
		ExtFields: make(map[string]string, len(req.ExtFields)+1),
	}
	for k, v := range req.ExtFields {
		fwd.ExtFields[k] = v
	}
	fwd.ExtFields[extForwarded] = string(n.serverID)
	cctx, cancel := context.WithTimeout(ctx, n.opts.SendTimeout+time.Second)
	defer cancel()
	resp, err := n.client.Invoke(cctx, addr, fwd)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, transport.ErrTimeout) {
			return transport.NewResponse(transport.SystemError, fmt.Sprintf("forwarded to leader %s (%s): no answer in time; outcome unknown", id, addr)), false
		}
		// The request may not have left: the leader is unreachable from here.
		return transport.NewResponse(transport.ServiceNotAvailable, fmt.Sprintf("not leader; leader is %s (%s), forwarding failed: %v", id, addr, err)), false
	}
	out := transport.NewResponse(transport.ResponseCode(resp.Code), resp.Remark)
	out.ExtFields = resp.ExtFields
	out.Body = resp.Body
	return out, true
}
