package node

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/transport"
)

// errorCodes maps errors to RocketMQ response codes, first match wins (errors.Is). The Go
// client v2.1.2 retries a sync send on 1, 14, 16 and 17; it counts 10, 11 and 12 as stored;
// it returns 2 and 13 to the application without retrying.
var errorCodes = []struct {
	err  error
	code transport.ResponseCode
}{
	// Nothing was stored: safe to retry elsewhere.
	{ErrNotLeader, transport.ServiceNotAvailable},
	{raft.ErrNotLeader, transport.ServiceNotAvailable},
	{ErrNoLeader, transport.ServiceNotAvailable},
	{ErrShuttingDown, transport.ServiceNotAvailable},
	{raft.ErrRaftShutdown, transport.ServiceNotAvailable},
	{ErrFatal, transport.ServiceNotAvailable},
	{commitlog.ErrClosed, transport.ServiceNotAvailable},
	{fsm.ErrClosed, transport.ServiceNotAvailable},
	{fsm.ErrFatal, transport.ServiceNotAvailable},
	// Disk guard: a distinct remark (the wrapped error names usage and ratio).
	{commitlog.ErrDiskFull, transport.ServiceNotAvailable},
	// The message certainly was not proposed: the client must not count it as stored, and
	// RocketMQ answers an overloaded broker with SYSTEM_BUSY.
	{ErrNotStored, transport.SystemBusy},
	{raft.ErrEnqueueTimeout, transport.SystemBusy},
	// Leadership lost while the entry was in flight: the outcome is unknown (the next leader
	// may or may not commit it), so the client retries: at-least-once.
	{raft.ErrLeadershipLost, transport.ServiceNotAvailable},
	{raft.ErrLeadershipTransferInProgress, transport.ServiceNotAvailable},
	{ErrTopicNotExist, transport.TopicNotExist},
	{fsm.ErrTopicNotExist, transport.TopicNotExist},
	{ErrNoPermission, transport.NoPermission},
	{ErrGroupNotExist, transport.SubscriptionGroupNotExist},
	{fsm.ErrGroupNotExist, transport.SubscriptionGroupNotExist},
	// UPDATE_BROKER_CONFIG with a key that cannot change live (RocketMQ 5 answers its
	// blacklisted keys NO_PERMISSION too); the remark names the key.
	{ErrConfigKeyNotLive, transport.NoPermission},
	{ErrQueryNotFound, transport.QueryNotFound},
	{ErrMessageNotFound, transport.SystemError}, // as Java's VIEW_MESSAGE_BY_ID
	{commitlog.ErrOffsetOutOfRange, transport.SystemError},
	{ErrQueueID, transport.SystemError}, // as Java's msgCheck: the client retries another queue
	{commitlog.ErrInvalidTopic, transport.MessageIllegal},
	{commitlog.ErrBodyTooLarge, transport.MessageIllegal},
	{commitlog.ErrEmptyBody, transport.MessageIllegal},
	{commitlog.ErrPropertiesTooLarge, transport.MessageIllegal},
	{commitlog.ErrInvalidProperties, transport.MessageIllegal},
	{commitlog.ErrInvalidQueueID, transport.MessageIllegal},
	{commitlog.ErrMessageTooLarge, transport.MessageIllegal},
	{ErrBadRequest, transport.SystemError},
	{transport.ErrMissingField, transport.SystemError},
	{transport.ErrBadField, transport.SystemError},
}

// codeFor returns the response code for err (SYSTEM_ERROR when no row matches).
func codeFor(err error) transport.ResponseCode {
	for _, row := range errorCodes {
		if errors.Is(err, row.err) {
			return row.code
		}
	}
	return transport.SystemError
}

// errorResponse builds the reply for err: its code and err's text as the remark.
func errorResponse(err error) *transport.Command {
	return transport.NewResponse(codeFor(err), err.Error())
}

// commitTimeoutResponse is the reply when a proposed entry was not acknowledged within the
// send timeout. For a classic SYNC_MASTER the entry is on the master's log and commits as soon
// as the slave is back (there is no failover in that mode), which is RocketMQ's
// FLUSH_SLAVE_TIMEOUT: the Go client counts it as stored with status SendFlushSlaveTimeout.
// Elsewhere (DLedger groups) a leader that cannot reach a quorum may be deposed and its
// uncommitted tail discarded, so the outcome is unknown: SYSTEM_ERROR, which the client
// retries (at-least-once).
//
// "Stored on the master" needs the master's own log write to have finished: while a StoreLogs
// has been running for a second or more (a stalling disk, before raftLogStallTimeout fences the
// node) the entry may be on no disk at all, so the answer is SYSTEM_ERROR.
func (n *Node) commitTimeoutResponse(err error) *transport.Command {
	if !n.cfg.EnableDLegerCommitLog && n.cfg.BrokerRole == RoleSyncMaster && n.IsLeader() &&
		(n.logWatch == nil || !n.logWatch.appendStalled(time.Second)) {
		return transport.NewResponse(transport.FlushSlaveTimeout, "the slave did not acknowledge in time (SYNC_MASTER); stored on the master: "+err.Error())
	}
	return transport.NewResponse(transport.SystemError, "not acknowledged by a quorum in time; outcome unknown: "+err.Error())
}
