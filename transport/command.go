package transport

import (
	"fmt"
	"strconv"
	"sync/atomic"
)

// Flag bits of Command.Flag.
const (
	FlagResponse int32 = 1 << 0 // the frame is a response
	FlagOneway   int32 = 1 << 1 // the sender expects no response (Go clients never set it)
)

// DefaultVersion is the version stamped on commands built by NewRequest and
// NewResponse: about what a Java 4.9 broker announces (V4_9_x = 401+), and
// well inside int16 as the Go client requires.
const DefaultVersion int16 = 401

// Command is one remoting frame (request or response).
//
// A Command is not safe for concurrent mutation; once handed to Invoke or
// returned from a handler it must not be modified.
type Command struct {
	Code          int16             // a RequestCode in requests, a ResponseCode in responses
	Language      LanguageCode      // the sender's language
	Version       int16             // the sender's RocketMQ version number
	Opaque        int32             // correlates a response with its request
	Flag          int32             // bit0 response, bit1 oneway
	Remark        string            // free text, usually an error message in responses
	ExtFields     map[string]string // every value a string on the wire
	Body          []byte            // opaque payload
	SerializeType SerializeType     // the header encoding this frame arrived in / will be sent in
}

var opaqueSeq atomic.Int32

// nextOpaque returns a fresh request id; ids are process-wide so that logs
// of different connections do not repeat them.
func nextOpaque() int32 { return opaqueSeq.Add(1) }

// NewRequest builds a request with a fresh opaque, LanguageGo, DefaultVersion
// and a JSON header. ext and body are used as given, not copied.
func NewRequest(code RequestCode, ext map[string]string, body []byte) *Command {
	return &Command{
		Code:      int16(code),
		Language:  LanguageGo,
		Version:   DefaultVersion,
		Opaque:    nextOpaque(),
		ExtFields: ext,
		Body:      body,
	}
}

// NewResponse builds a response with the given code and remark. The server
// fills in Opaque, the response flag and the serialize type from the request
// it answers.
func NewResponse(code ResponseCode, remark string) *Command {
	return &Command{
		Code:     int16(code),
		Language: LanguageGo,
		Version:  DefaultVersion,
		Flag:     FlagResponse,
		Remark:   remark,
	}
}

// IsResponse reports whether flag bit0 is set.
func (c *Command) IsResponse() bool { return c.Flag&FlagResponse != 0 }

// IsOneway reports whether flag bit1 is set. Go clients never set it for
// their oneway calls: a request without the bit may still have its reply
// ignored.
func (c *Command) IsOneway() bool { return c.Flag&FlagOneway != 0 }

// RequestCode returns Code as a RequestCode.
func (c *Command) RequestCode() RequestCode { return RequestCode(c.Code) }

// ResponseCode returns Code as a ResponseCode.
func (c *Command) ResponseCode() ResponseCode { return ResponseCode(c.Code) }

// Ext returns the ext field key, or "" if missing.
func (c *Command) Ext(key string) string { return c.ExtFields[key] }

// SetExt sets the ext field key, creating the map when needed, and returns c.
func (c *Command) SetExt(key, value string) *Command {
	if c.ExtFields == nil {
		c.ExtFields = make(map[string]string, 8)
	}
	c.ExtFields[key] = value
	return c
}

// ExtInt32 parses the ext field key as a decimal int32. The error names the
// field when it is missing or not a number.
func (c *Command) ExtInt32(key string) (int32, error) {
	s, ok := c.ExtFields[key]
	if !ok {
		return 0, fmt.Errorf("%w: %s", ErrMissingField, key)
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q is not an int32", ErrBadField, key, s)
	}
	return int32(v), nil
}

// ExtInt64 parses the ext field key as a decimal int64. The error names the
// field when it is missing or not a number.
func (c *Command) ExtInt64(key string) (int64, error) {
	s, ok := c.ExtFields[key]
	if !ok {
		return 0, fmt.Errorf("%w: %s", ErrMissingField, key)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q is not an int64", ErrBadField, key, s)
	}
	return v, nil
}

// ExtBool parses the ext field key as "true" or "false" (case-insensitive,
// as Java's Boolean.parseBoolean; "1"/"0" are accepted too). The error names
// the field when it is missing or not a boolean.
func (c *Command) ExtBool(key string) (bool, error) {
	s, ok := c.ExtFields[key]
	if !ok {
		return false, fmt.Errorf("%w: %s", ErrMissingField, key)
	}
	switch s {
	case "true", "TRUE", "True", "1":
		return true, nil
	case "false", "FALSE", "False", "0":
		return false, nil
	}
	return false, fmt.Errorf("%w: %s=%q is not a bool", ErrBadField, key, s)
}

// String formats the command for logs (without the body).
func (c *Command) String() string {
	kind := "request"
	code := RequestCode(c.Code).String()
	if c.IsResponse() {
		kind = "response"
		code = ResponseCode(c.Code).String()
	}
	return fmt.Sprintf("%s{code=%s opaque=%d flag=%d lang=%s version=%d remark=%q ext=%v body=%dB}",
		kind, code, c.Opaque, c.Flag, c.Language, c.Version, c.Remark, c.ExtFields, len(c.Body))
}
