package transport

import "errors"

// Sentinel errors; callers branch on them with errors.Is. Errors returned by
// the client wrap them together with the address involved.
var (
	// ErrClosed: the server, client or connection is closed.
	ErrClosed = errors.New("transport: closed")
	// ErrConnClosed: the connection broke while a call was pending on it.
	ErrConnClosed = errors.New("transport: connection closed")
	// ErrFrameTooLarge: a frame's declared length exceeds MaxFrameSize.
	ErrFrameTooLarge = errors.New("transport: frame too large")
	// ErrMalformedFrame: a frame or header that cannot be decoded.
	ErrMalformedFrame = errors.New("transport: malformed frame")
	// ErrTimeout: no response before the context deadline. It also matches
	// context.DeadlineExceeded via errors.Is.
	ErrTimeout = errors.New("transport: timeout")
	// ErrMissingField: a required ext field is absent.
	ErrMissingField = errors.New("transport: missing ext field")
	// ErrBadField: an ext field does not parse as the expected type.
	ErrBadField = errors.New("transport: bad ext field")
)
