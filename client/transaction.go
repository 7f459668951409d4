package client

import (
	"context"
	"fmt"
	"strconv"

	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/transport"
)

// TransactionState is the outcome of a local transaction.
type TransactionState int

// Transaction states. Unknown leaves the half message to a later check by the broker.
const (
	TxUnknown TransactionState = iota
	TxCommit
	TxRollback
)

func (s TransactionState) String() string {
	switch s {
	case TxCommit:
		return "COMMIT"
	case TxRollback:
		return "ROLLBACK"
	}
	return "UNKNOWN"
}

// commitOrRollback is END_TRANSACTION's commitOrRollback value (the tx sysFlag).
func (s TransactionState) wire() int {
	switch s {
	case TxCommit:
		return message.TxCommitType
	case TxRollback:
		return message.TxRollbackType
	}
	return message.TxNotType
}

// TransactionListener runs a producer's local transactions and answers the broker's
// checks of half messages whose outcome it never learnt.
type TransactionListener interface {
	// ExecuteLocal runs the local transaction for a half message the broker stored.
	ExecuteLocal(ctx context.Context, msg *Message, arg any) TransactionState
	// Check reports the outcome of the local transaction of msg (msg.MsgID is the
	// transaction id). It runs on the goroutine serving the broker's request.
	Check(ctx context.Context, msg *MessageExt) TransactionState
}

// TransactionResult is what SendInTransaction did.
type TransactionResult struct {
	SendResult
	State TransactionState // the local transaction's answer
}

// SendInTransaction stores msg as a half message (invisible to consumers), runs the
// listener's ExecuteLocal with arg, then tells the broker to commit or roll back
// (END_TRANSACTION, oneway). When that last step is lost, or the state is TxUnknown, the
// broker later asks the listener's Check.
func (p *Producer) SendInTransaction(ctx context.Context, msg *Message, arg any) (*TransactionResult, error) {
	l := p.cfg.TransactionListener
	if l == nil {
		return nil, fmt.Errorf("%w: SendInTransaction needs ProducerConfig.TransactionListener", ErrInvalidConfig)
	}
	if msg != nil && msg.DelayLevel != 0 {
		return nil, fmt.Errorf("%w: a transactional message cannot be delayed", ErrInvalidMessage)
	}
	r, err := p.prepare(msg, message.PropertyTransactionPrepared, "true", message.PropertyProducerGroup, p.cfg.Group)
	if err != nil {
		return nil, err
	}
	r.sysFlag |= message.TxPreparedType
	if err := p.register(ctx, msg.Topic); err != nil {
		return nil, fmt.Errorf("client: register transactional producer: %w", err)
	}
	res, err := p.sendSync(ctx, r, p.cfg.MaxAttempts, "")
	if err != nil {
		return nil, fmt.Errorf("client: send half message: %w", err)
	}
	state := l.ExecuteLocal(ctx, msg, arg)
	out := &TransactionResult{SendResult: *res, State: state}
	if err := p.endTransaction(ctx, nil, res.broker, res.OffsetMsgID, res.QueueOffset, res.MsgID, state, false); err != nil {
		// The broker will check later; the half message is stored either way.
		p.c.log.Warn("END_TRANSACTION not sent; the broker will check", "msgId", res.MsgID, "err", err)
	}
	return out, nil
}

func (p *Producer) endTransaction(ctx context.Context, conn *transport.Conn, addr, offsetMsgID string, queueOffset int64, uniq string, state TransactionState, fromCheck bool) error {
	_, phys, err := message.ParseOffsetMsgID(offsetMsgID)
	if err != nil {
		return fmt.Errorf("client: end transaction: %w", err)
	}
	req := transport.NewRequest(transport.EndTransaction, map[string]string{
		"producerGroup":        p.cfg.Group,
		"tranStateTableOffset": strconv.FormatInt(queueOffset, 10),
		"commitLogOffset":      strconv.FormatInt(phys, 10),
		"commitOrRollback":     strconv.Itoa(state.wire()),
		"fromTransactionCheck": strconv.FormatBool(fromCheck),
		"msgId":                uniq,
		"transactionId":        uniq,
	}, nil)
	ctx, cancel := context.WithTimeout(ctx, p.c.cfg.RequestTimeout)
	defer cancel()
	if conn != nil {
		return conn.InvokeOneway(ctx, req)
	}
	return p.c.tc.InvokeOneway(ctx, addr, req)
}

// serve handles the broker's requests on the producer's connections.
func (p *Producer) serve(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	if req.RequestCode() != transport.CheckTransactionState || p.cfg.TransactionListener == nil {
		return nil
	}
	rec, _, err := message.DecodeRecord(req.Body)
	if err != nil {
		p.c.log.Warn("CHECK_TRANSACTION_STATE with an undecodable message", "err", err)
		return nil
	}
	m, err := fromRecord(rec)
	if err != nil {
		p.c.log.Warn("CHECK_TRANSACTION_STATE", "err", err)
		return nil
	}
	if g := m.Properties[message.PropertyProducerGroup]; g != "" && g != p.cfg.Group {
		return nil
	}
	if id := req.Ext("transactionId"); id != "" {
		m.MsgID = id
	}
	state := p.cfg.TransactionListener.Check(ctx, m)
	offID := req.Ext("offsetMsgId")
	if offID == "" {
		offID = m.OffsetMsgID
	}
	qoff, err := req.ExtInt64("tranStateTableOffset")
	if err != nil {
		qoff = m.QueueOffset
	}
	if err := p.endTransaction(ctx, conn, "", offID, qoff, m.MsgID, state, true); err != nil {
		p.c.log.Warn("END_TRANSACTION after a check", "msgId", m.MsgID, "err", err)
	}
	return nil
}
