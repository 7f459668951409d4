package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/raftmq/raftmq/transport"
)

// MaxQueryMessages caps QUERY_MESSAGE's maxNum (RocketMQ's maxMsgsNumBatch); a unique-key
// query (_UNIQUE_KEY_QUERY=true) returns at most DefaultQueryMaxNum, as Java.
const (
	MaxQueryMessages   = 64
	DefaultQueryMaxNum = 32
)

// Query errors (errors.Is).
var (
	// ErrQueryNotFound: no message matched a query by key (QUERY_NOT_FOUND).
	ErrQueryNotFound = errors.New("node: can not find message, maybe time range not correct")
	// ErrMessageNotFound: no record starts at the physical offset of VIEW_MESSAGE_BY_ID.
	ErrMessageNotFound = errors.New("node: can not find message by the offset")
)

// QueryMessages returns the stored records (as they lie in the commitlog) of topic whose
// KEYS contain key or whose UNIQ_KEY is key, stored in [begin, end] ms, newest first, at most
// max (capped at MaxQueryMessages).
func (n *Node) QueryMessages(topic, key string, max int, begin, end int64) ([][]byte, error) {
	if err := n.serving(); err != nil {
		return nil, err
	}
	max = min(max, MaxQueryMessages)
	msgs, err := n.store.QueryByKey(topic, key, max, begin, end)
	if err != nil {
		return nil, fmt.Errorf("node: query %s key %q: %w", topic, key, err)
	}
	out := make([][]byte, 0, len(msgs))
	for _, m := range msgs {
		b, err := n.store.ReadAt(m.PhysicalOffset, m.StoreSize)
		if err != nil {
			continue // removed by retention meanwhile
		}
		out = append(out, b)
	}
	return out, nil
}

// ViewMessage returns the stored record that starts at physical offset off.
func (n *Node) ViewMessage(off int64) ([]byte, error) {
	if err := n.serving(); err != nil {
		return nil, err
	}
	m, err := n.store.ReadMessage(off)
	if err != nil {
		return nil, fmt.Errorf("%w, %d: %v", ErrMessageNotFound, off, err)
	}
	if m.PhysicalOffset != off || m.StoreSize <= 0 || m.Topic == "" {
		return nil, fmt.Errorf("%w, %d: no record starts there", ErrMessageNotFound, off)
	}
	b, err := n.store.ReadAt(off, m.StoreSize)
	if err != nil {
		return nil, fmt.Errorf("%w, %d: %v", ErrMessageNotFound, off, err)
	}
	return b, nil
}

// handleQueryMessage serves QUERY_MESSAGE (12): ext topic, key, maxNum, beginTimestamp,
// endTimestamp (all required); body = the matching stored records, concatenated; reply ext
// indexLastUpdateTimestamp and indexLastUpdatePhyoffset (the index covers everything this node
// has applied). No match: QUERY_NOT_FOUND.
func (n *Node) handleQueryMessage(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	topic, key := req.Ext("topic"), req.Ext("key")
	if err := validateTopicName("topic", topic); err != nil {
		return errorResponse(err)
	}
	if key == "" {
		return errorResponse(fmt.Errorf("%w: key", transport.ErrMissingField))
	}
	maxNum, err := req.ExtInt32("maxNum")
	if err != nil {
		return errorResponse(err)
	}
	if maxNum < 1 {
		return errorResponse(fmt.Errorf("%w: maxNum=%d is below 1", ErrBadRequest, maxNum))
	}
	begin, err := req.ExtInt64("beginTimestamp")
	if err != nil {
		return errorResponse(err)
	}
	end, err := req.ExtInt64("endTimestamp")
	if err != nil {
		return errorResponse(err)
	}
	if begin > end {
		return errorResponse(fmt.Errorf("%w: beginTimestamp=%d is after endTimestamp=%d", ErrBadRequest, begin, end))
	}
	if req.Ext("_UNIQUE_KEY_QUERY") == "true" {
		maxNum = min(maxNum, DefaultQueryMaxNum)
	}
	phys := n.store.MaxPhysOffset()
	recs, err := n.QueryMessages(topic, key, int(maxNum), begin, end)
	if err != nil {
		return errorResponse(err)
	}
	if len(recs) == 0 {
		return errorResponse(ErrQueryNotFound)
	}
	resp := transport.NewResponse(transport.Success, "")
	resp.SetExt("indexLastUpdateTimestamp", strconv.FormatInt(time.Now().UnixMilli(), 10))
	resp.SetExt("indexLastUpdatePhyoffset", strconv.FormatInt(phys, 10))
	size := 0
	for _, r := range recs {
		size += len(r)
	}
	resp.Body = make([]byte, 0, size)
	for _, r := range recs {
		resp.Body = append(resp.Body, r...)
	}
	return resp
}

// handleViewMessage serves VIEW_MESSAGE_BY_ID (33): ext offset = the physical offset (from an
// offset message id); body = the stored record.
func (n *Node) handleViewMessage(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	off, err := req.ExtInt64("offset")
	if err != nil {
		return errorResponse(err)
	}
	if off < 0 {
		return errorResponse(fmt.Errorf("%w: offset=%d is negative", ErrBadRequest, off))
	}
	b, err := n.ViewMessage(off)
	if err != nil {
		return errorResponse(err)
	}
	resp := transport.NewResponse(transport.Success, "")
	resp.Body = b
	return resp
}
