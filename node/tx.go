package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/transport"
)

// Transactions (design): a half message is stored as RocketMQ stores it, in
// RMQ_SYS_TRANS_HALF_TOPIC queue 0 with REAL_TOPIC/REAL_QID and the prepared bit cleared, so it
// is an ordinary, replicated record that is not visible in its real topic. Its state lives in
// the fsm: END_TRANSACTION proposes CmdEndTx, which marks the half resolved and (on commit)
// appends the real message in the same entry; a second END_TRANSACTION, from a retry, a
// back-check answer or another leader, finds the half resolved and changes nothing. The
// leader's back-check pass walks the half queue from the replicated progress, sends
// CHECK_TRANSACTION_STATE for halves older than transactionTimeOut and records the check
// counts (CmdTxCheck); after transactionCheckMax checks a half is rolled back.

// txScan is the most half messages one back-check pass reads.
const txScan = 256

// isHalf reports a transactional half (prepared) message.
func isHalf(m *commitlog.Message) bool {
	if m.SysFlag&commitlog.TxTypeMask == commitlog.TxPreparedType {
		return true
	}
	v, _ := message.GetProperty(m.Properties, commitlog.PropertyTransactionPrepared)
	return v == "true"
}

// toHalf rewrites a prepared message into its RMQ_SYS_TRANS_HALF_TOPIC form.
func (n *Node) toHalf(m *commitlog.Message, producerGroup string) error {
	props := m.Properties
	var err error
	if _, ok := message.GetProperty(props, commitlog.PropertyProducerGroup); !ok && producerGroup != "" {
		if props, err = message.SetProperty(props, commitlog.PropertyProducerGroup, producerGroup); err != nil {
			return err
		}
	}
	if props, err = message.SetProperty(props, commitlog.PropertyTransactionPrepared, "true"); err != nil {
		return err
	}
	if props, err = message.SetProperty(props, commitlog.PropertyRealTopic, m.Topic); err != nil {
		return err
	}
	if props, err = message.SetProperty(props, commitlog.PropertyRealQueueID, strconv.Itoa(int(m.QueueID))); err != nil {
		return err
	}
	m.Properties = props
	m.Topic = halfTopic
	m.QueueID = 0
	m.SysFlag &^= commitlog.TxTypeMask
	return nil
}

// handleEndTransaction serves END_TRANSACTION (ext producerGroup, tranStateTableOffset,
// commitLogOffset, commitOrRollback 8/12 (0 = unknown: nothing to do), fromTransactionCheck,
// msgId, transactionId).
func (n *Node) handleEndTransaction(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	if err := n.serving(); err != nil {
		return errorResponse(err)
	}
	if !n.IsLeader() {
		return n.forward(ctx, req)
	}
	kind, err := req.ExtInt32("commitOrRollback")
	if err != nil {
		return errorResponse(fmt.Errorf("%w: %v", ErrBadRequest, err))
	}
	off, err := req.ExtInt64("commitLogOffset")
	if err != nil {
		return errorResponse(fmt.Errorf("%w: %v", ErrBadRequest, err))
	}
	switch kind {
	case commitlog.TxNotType:
		return transport.NewResponse(transport.Success, "state unknown: the half stays pending")
	case commitlog.TxCommitType, commitlog.TxRollbackType:
	default:
		return errorResponse(fmt.Errorf("%w: ext field commitOrRollback %d is not 0, 8 or 12", ErrBadRequest, kind))
	}
	if err := n.endTransaction(ctx, off, kind == commitlog.TxCommitType); err != nil {
		if errors.Is(err, fsm.ErrStale) {
			return transport.NewResponse(transport.Success, "transaction already resolved")
		}
		return errorResponse(err)
	}
	return transport.NewResponse(transport.Success, "")
}

// endTransaction resolves the half at physical offset off through Raft.
func (n *Node) endTransaction(ctx context.Context, off int64, commit bool) error {
	half, err := n.store.ReadMessage(off)
	if err != nil {
		return fmt.Errorf("%w: no half message at commitLogOffset %d: %v", ErrBadRequest, off, err)
	}
	if half.Topic != halfTopic {
		return fmt.Errorf("%w: the message at commitLogOffset %d is not a half message (topic %s)", ErrBadRequest, off, half.Topic)
	}
	if n.fsm.TxResolved(off) || half.QueueOffset < n.fsm.TxProgress() {
		return fsm.ErrStale
	}
	cmd := &fsm.EndTxCommand{HalfOffset: off, HalfQueueOffset: half.QueueOffset, Commit: commit}
	if commit {
		m := half.Message
		m.Body = append([]byte(nil), half.Body...)
		topic, _ := message.GetProperty(m.Properties, commitlog.PropertyRealTopic)
		q, err := strconv.Atoi(func() string { v, _ := message.GetProperty(m.Properties, commitlog.PropertyRealQueueID); return v }())
		if err != nil || message.ValidateTopic(topic) != nil {
			return fmt.Errorf("%w: half message at %d has no valid REAL_TOPIC/REAL_QID", ErrBadRequest, off)
		}
		m.Topic, m.QueueID = topic, int32(q)
		for _, k := range []string{commitlog.PropertyRealTopic, commitlog.PropertyRealQueueID, commitlog.PropertyTransactionPrepared} {
			m.Properties = message.DeleteProperty(m.Properties, k)
		}
		m.SysFlag = m.SysFlag&^commitlog.TxTypeMask | commitlog.TxCommitType
		m.PreparedTxOffset = off
		m.StoreHost = n.storeHost
		if err := n.toSchedule(&m); err != nil {
			return err
		}
		if err := m.Validate(commitlog.Limits{MaxMessageSize: n.cfg.MaxMessageSize}); err != nil {
			return err
		}
		if cmd.Append, err = fsm.EncodeFlowAppend(time.Now().UnixMilli(), []*commitlog.Message{&m}); err != nil {
			return err
		}
	}
	_, err = n.applyFlow(ctx, fsm.CmdEndTx, cmd)
	return err
}

// checkTransactions is one back-check pass (leader): halves older than transactionTimeOut
// that are still pending get CHECK_TRANSACTION_STATE on a channel of their producer group;
// after transactionCheckMax checks they are rolled back. The pass also moves the replicated
// half-queue progress over the resolved prefix.
func (n *Node) checkTransactions() {
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.SendTimeout)
	defer cancel()
	prog := n.fsm.TxProgress()
	res, err := n.store.GetMessages(halfTopic, 0, prog, txScan, 8<<20, nil)
	if err != nil {
		n.log.Warn("transaction check: read half queue failed", "err", err)
		return
	}
	type pending struct {
		me *commitlog.MessageExt
	}
	var todo []pending
	newProg, prune := prog, int64(0)
	contiguous := true
	now := time.Now()
	for i, b := range res.Buffers {
		me, _, err := message.DecodeRecord(b)
		if err != nil {
			break
		}
		qo := res.QueueOffsets[i]
		if n.fsm.TxResolved(me.PhysicalOffset) {
			if contiguous {
				newProg, prune = qo+1, me.PhysicalOffset+1
			}
			continue
		}
		if now.Sub(time.UnixMilli(me.StoreTimestamp)) < n.cfg.TransactionTimeout {
			break // younger halves follow
		}
		contiguous = false
		me.Body = append([]byte(nil), me.Body...)
		todo = append(todo, pending{me})
	}
	if len(res.Buffers) == 0 && res.NextBeginOffset > prog {
		newProg = res.NextBeginOffset
	}
	res.Release()
	var checked []int64
	for _, p := range todo {
		off := p.me.PhysicalOffset
		if int(n.fsm.TxChecks(off)) >= n.cfg.TransactionCheckMax {
			n.log.Warn("transaction unresolved after transactionCheckMax back-checks; rolled back",
				"commitLogOffset", off, "checks", n.cfg.TransactionCheckMax)
			if err := n.endTransaction(ctx, off, false); err != nil && !errors.Is(err, fsm.ErrStale) {
				n.log.Warn("transaction check: roll back failed", "err", err)
			}
			continue
		}
		if n.sendCheck(ctx, p.me) {
			checked = append(checked, off)
		}
	}
	if newProg > prog || len(checked) > 0 {
		if _, err := n.applyFlow(ctx, fsm.CmdTxCheck, &fsm.TxCheckCommand{Checked: checked, Progress: newProg, PruneBelow: prune}); err != nil {
			n.log.Warn("transaction check: recording progress failed", "err", err)
		}
	}
}

// sendCheck sends CHECK_TRANSACTION_STATE (oneway) for half me to one channel of its producer
// group; it reports whether a channel was found and the request written.
func (n *Node) sendCheck(ctx context.Context, me *commitlog.MessageExt) bool {
	group, _ := message.GetProperty(me.Properties, commitlog.PropertyProducerGroup)
	conns := n.producerConns(group)
	if len(conns) == 0 {
		n.log.Debug("transaction check: no producer channel", "group", group, "commitLogOffset", me.PhysicalOffset)
		return false
	}
	// The body is the half as the producer sent it: real topic and queue.
	m := me.Message
	if t, ok := message.GetProperty(m.Properties, commitlog.PropertyRealTopic); ok {
		m.Topic = t
	}
	if v, ok := message.GetProperty(m.Properties, commitlog.PropertyRealQueueID); ok {
		if q, err := strconv.Atoi(v); err == nil {
			m.QueueID = int32(q)
		}
	}
	body := make([]byte, m.EncodedSize())
	body = body[:message.EncodeRecord(body, &m, me.QueueOffset, me.PhysicalOffset, me.StoreTimestamp)]
	uniq, _ := message.GetProperty(m.Properties, commitlog.PropertyUniqKey)
	txID := uniq
	if v, ok := message.GetProperty(m.Properties, "__transactionId__"); ok {
		txID = v
	}
	req := transport.NewRequest(transport.CheckTransactionState, map[string]string{
		"tranStateTableOffset": strconv.FormatInt(me.QueueOffset, 10),
		"commitLogOffset":      strconv.FormatInt(me.PhysicalOffset, 10),
		"msgId":                uniq,
		"transactionId":        txID,
		"offsetMsgId":          message.OffsetMsgID(me.StoreHost, me.PhysicalOffset),
	}, body)
	start := int(n.fsm.TxChecks(me.PhysicalOffset))
	for i := range conns {
		c := conns[(start+i)%len(conns)]
		if err := c.InvokeOneway(ctx, req); err == nil {
			return true
		}
	}
	return false
}

// producerConns returns the channels of a producer group that heartbeat to this node
// (tracked by the heartbeat handling in client_manager.go), sorted by connection id.
func (n *Node) producerConns(group string) []*transport.Conn {
	cs := n.consumers
	if cs == nil || group == "" {
		return nil
	}
	cs.mu.Lock()
	var out []*transport.Conn
	for _, ch := range cs.prods[group] {
		out = append(out, ch.conn)
	}
	cs.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID() < out[j].ID() })
	return out
}
