package client

import (
	"errors"
	"fmt"
	"net"

	"github.com/raftmq/raftmq/transport"
)

// Sentinel errors; branch on them with errors.Is.
var (
	// ErrClosed: the producer, consumer or admin client is closed.
	ErrClosed = errors.New("client: closed")
	// ErrTopicNotExist: no name server knows the topic.
	ErrTopicNotExist = errors.New("client: topic does not exist")
	// ErrNoRoute: the topic's route lists no usable queue or broker right now.
	ErrNoRoute = errors.New("client: no route")
	// ErrNameServer: no name server could be reached; the error lists every address tried.
	ErrNameServer = errors.New("client: no name server reachable")
	// ErrInvalidConfig: a config field is out of range; the error names it and the limit.
	ErrInvalidConfig = errors.New("client: invalid config")
	// ErrInvalidMessage: a message fails validation before it is sent.
	ErrInvalidMessage = errors.New("client: invalid message")
	// ErrNotStarted: the consumer was used before Start.
	ErrNotStarted = errors.New("client: not started")
)

// Error is a broker or name server reply with a non-success code. Code and Remark are
// exactly what the server sent; Addr is the server and Op the request that failed.
type Error struct {
	Op     string                 // the request, e.g. "SEND_MESSAGE_V2"
	Addr   string                 // the server that replied
	Code   transport.ResponseCode // the reply code
	Remark string                 // the reply's remark
}

func (e *Error) Error() string {
	if e.Remark == "" {
		return fmt.Sprintf("client: %s to %s: %s", e.Op, e.Addr, e.Code)
	}
	return fmt.Sprintf("client: %s to %s: %s: %s", e.Op, e.Addr, e.Code, e.Remark)
}

// Retryable reports whether the request may succeed when sent again, possibly to another
// queue or broker after a route refresh: SYSTEM_ERROR, SYSTEM_BUSY, SERVICE_NOT_AVAILABLE
// (e.g. "not leader"), NO_PERMISSION (a queue turned read-only), TOPIC_NOT_EXIST (the route
// is stale) and FLOW_CONTROL. MESSAGE_ILLEGAL and the other codes are not.
func (e *Error) Retryable() bool {
	switch e.Code {
	case transport.SystemError, transport.SystemBusy, transport.ServiceNotAvailable,
		transport.NoPermission, transport.TopicNotExist, transport.FlowControl:
		return true
	}
	return false
}

// Is lets errors.Is(err, ErrTopicNotExist) match a TOPIC_NOT_EXIST reply.
func (e *Error) Is(target error) bool {
	return target == ErrTopicNotExist && e.Code == transport.TopicNotExist
}

// refreshesRoute reports whether the reply means the route is stale: refresh it now.
func (e *Error) refreshesRoute() bool {
	switch e.Code {
	case transport.ServiceNotAvailable, transport.TopicNotExist, transport.NoPermission:
		return true
	}
	return false
}

// Retryable reports whether err is worth retrying: a retryable *Error, a transport failure
// (connection refused or broken, timeout of one attempt) or ErrNoRoute. Context
// cancellation, ErrClosed and validation errors are not.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Retryable()
	}
	if errors.Is(err, ErrClosed) || errors.Is(err, ErrInvalidMessage) || errors.Is(err, ErrInvalidConfig) ||
		errors.Is(err, ErrTopicNotExist) {
		return false
	}
	if errors.Is(err, ErrNoRoute) || errors.Is(err, ErrNameServer) {
		return true
	}
	return isTransportErr(err)
}

func isTransportErr(err error) bool {
	if errors.Is(err, transport.ErrClosed) {
		return false // our own client was closed
	}
	var ne interface{ Timeout() bool }
	return errors.Is(err, transport.ErrConnClosed) || errors.Is(err, transport.ErrTimeout) ||
		errors.As(err, &ne) || errors.Is(err, transport.ErrMalformedFrame)
}

func replyError(op, addr string, resp *transport.Command) *Error {
	return &Error{Op: op, Addr: addr, Code: resp.ResponseCode(), Remark: resp.Remark}
}

func asError(err error, target **Error) bool { return errors.As(err, target) }

// isConnErr reports a connection-level failure (refused, reset, broken while pending), as
// opposed to a reply or a timeout of one request.
func isConnErr(err error) bool {
	if errors.Is(err, transport.ErrConnClosed) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op)
}
