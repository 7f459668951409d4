package node

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/raftmq/raftmq/transport"
	"github.com/raftmq/raftmq/transport/body"
)

type lockEntry struct {
	clientID string
	last     time.Time
}

// lockManager holds the orderly consumers' queue locks on the leader (in memory, as
// RocketMQ's RebalanceLockManager: a new leader starts empty and clients re-lock within 20 s).
// A lock is granted when the queue is free, already held by the same client, or its holder
// has not renewed it for expiry.
type lockManager struct {
	expiry time.Duration
	mu     sync.Mutex
	groups map[string]map[body.MessageQueue]*lockEntry
}

func newLockManager(expiry time.Duration) *lockManager {
	return &lockManager{expiry: expiry, groups: map[string]map[body.MessageQueue]*lockEntry{}}
}

// tryLock locks what it can of mqs for clientID and returns the queues now held by it.
func (lm *lockManager) tryLock(group, clientID string, mqs []body.MessageQueue, now time.Time) []body.MessageQueue {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	m := lm.groups[group]
	if m == nil {
		m = map[body.MessageQueue]*lockEntry{}
		lm.groups[group] = m
	}
	out := make([]body.MessageQueue, 0, len(mqs))
	for _, mq := range mqs {
		e := m[mq]
		switch {
		case e == nil:
			m[mq] = &lockEntry{clientID: clientID, last: now}
		case e.clientID == clientID:
			e.last = now
		case now.Sub(e.last) > lm.expiry:
			e.clientID, e.last = clientID, now
		default:
			continue
		}
		out = append(out, mq)
	}
	return out
}

// unlock releases the queues of mqs that clientID holds; others' locks are left alone.
func (lm *lockManager) unlock(group, clientID string, mqs []body.MessageQueue) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	m := lm.groups[group]
	for _, mq := range mqs {
		if e := m[mq]; e != nil && e.clientID == clientID {
			delete(m, mq)
		}
	}
	if len(m) == 0 {
		delete(lm.groups, group)
	}
}

// holder returns the client holding mq's lock, "" when free or lapsed.
func (lm *lockManager) holder(group string, mq body.MessageQueue, now time.Time) string {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	if e := lm.groups[group][mq]; e != nil && now.Sub(e.last) <= lm.expiry {
		return e.clientID
	}
	return ""
}

// expire forgets locks lapsed long ago (they would be granted to anyone anyway).
func (lm *lockManager) expire(now time.Time) {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	for g, m := range lm.groups {
		for mq, e := range m {
			if now.Sub(e.last) > 2*lm.expiry {
				delete(m, mq)
			}
		}
		if len(m) == 0 {
			delete(lm.groups, g)
		}
	}
}

// parseLockBody reads and checks the body of LOCK_BATCH_MQ and UNLOCK_BATCH_MQ (protocol §3.3).
func parseLockBody(req *transport.Command) (body.LockBatchRequest, error) {
	var b body.LockBatchRequest
	if err := json.Unmarshal(req.Body, &b); err != nil {
		return b, fmt.Errorf("%w: lock body: %v", ErrBadRequest, err)
	}
	if b.ConsumerGroup == "" {
		return b, fmt.Errorf("%w: lock body: consumerGroup missing", ErrBadRequest)
	}
	if b.ClientID == "" {
		return b, fmt.Errorf("%w: lock body: clientId missing", ErrBadRequest)
	}
	for i, mq := range b.MQSet {
		if mq.Topic == "" {
			return b, fmt.Errorf("%w: lock body: mqSet[%d].topic missing", ErrBadRequest, i)
		}
		if mq.QueueID < 0 {
			return b, fmt.Errorf("%w: lock body: mqSet[%d].queueId %d is negative", ErrBadRequest, i, mq.QueueID)
		}
		if mq.QueueID > math.MaxInt32 {
			return b, fmt.Errorf("%w: lock body: mqSet[%d].queueId %d is out of range", ErrBadRequest, i, mq.QueueID)
		}
	}
	return b, nil
}

// lockRequest serves a LOCK_BATCH_MQ or UNLOCK_BATCH_MQ request: do runs on the leader, a
// follower forwards the request.
func (n *Node) lockRequest(ctx context.Context, req *transport.Command, do func(b body.LockBatchRequest) *transport.Command) *transport.Command {
	if err := n.serving(); err != nil {
		return errorResponse(err)
	}
	b, err := parseLockBody(req)
	if err != nil {
		return errorResponse(err)
	}
	if !n.IsLeader() {
		return n.forward(ctx, req)
	}
	return do(b)
}

// handleLockBatch serves LOCK_BATCH_MQ (leader only; a follower forwards).
func (n *Node) handleLockBatch(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	return n.lockRequest(ctx, req, func(b body.LockBatchRequest) *transport.Command {
		locked := n.consumers.locks.tryLock(b.ConsumerGroup, b.ClientID, b.MQSet, time.Now())
		sort.Slice(locked, func(i, j int) bool {
			if locked[i].Topic != locked[j].Topic {
				return locked[i].Topic < locked[j].Topic
			}
			return locked[i].QueueID < locked[j].QueueID
		})
		resp := transport.NewResponse(transport.Success, "")
		resp.Body, _ = json.Marshal(body.LockBatchResponse{LockOKMQSet: locked})
		return resp
	})
}

// handleUnlockBatch serves UNLOCK_BATCH_MQ (leader only; only the holder's locks go).
func (n *Node) handleUnlockBatch(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	return n.lockRequest(ctx, req, func(b body.LockBatchRequest) *transport.Command {
		n.consumers.locks.unlock(b.ConsumerGroup, b.ClientID, b.MQSet)
		return transport.NewResponse(transport.Success, "")
	})
}
