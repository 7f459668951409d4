// Package transport implements RocketMQ's remoting protocol: frames, the
// JSON and binary (ROCKETMQ) header codecs, request and response codes, a
// server that handles the requests of one connection concurrently, and a
// client with one connection per address and opaque correlation.
//
// # Frame format (big-endian)
//
//	int32 length      = 4 + headerLen + bodyLen (everything after this word)
//	int32 headerInfo  = serializeType<<24 | headerLen (low 24 bits)
//	header            headerLen bytes, JSON or ROCKETMQ binary
//	body              the rest
//
// A declared length above MaxFrameSize, a negative length, or a header length
// larger than the frame is rejected before anything of that size is
// allocated, and the connection is closed.
//
// # JSON header
//
//	{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"T1"}}
//
// code and version are int16; every extFields value is a JSON string (the Go
// client drops frames with non-string values). The decoder is lenient:
// numbers and booleans in extFields become strings, null remark/extFields
// are accepted, language may be a name ("GO") or a number (Java), and
// unknown keys (e.g. Java's serializeTypeCurrentRPC) are ignored. The
// encoder writes the keys in the order above, ext keys sorted, and language
// as its RocketMQ name: Go v2.1.2 (internal/remote/codec.go) always sends
// "GO" and reads "GO" as 9 and any other value as unknown without failing;
// Java's fastjson writes the enum name and reads a name or an ordinal.
//
// # ROCKETMQ binary header
//
//	int16 code | byte language | int16 version | int32 opaque | int32 flag |
//	int32 remarkLen + remark | int32 extLen + repeated(int16 keyLen + key, int32 valLen + val)
//
// # Flags
//
// Bit 0 marks a response, bit 1 a oneway request. The Go client never sets
// the oneway bit: requests with flag 0 whose reply it ignores are normal.
// Responses keep the request's opaque and serialize type.
//
// # Server
//
// NewServer listens at once; Start (or a blocking Serve) accepts. Every
// request runs its Handler on its own goroutine, so a long-held PULL never
// blocks a HEART_BEAT on the same connection; at most MaxInFlightPerConn run
// per connection, after which the connection's reader waits (back-pressure:
// nothing is dropped). A Mux routes by code and answers unknown codes
// REQUEST_CODE_NOT_SUPPORTED with a remark naming the code. A handler panic
// is recovered, logged and answered SYSTEM_ERROR. Conn.Invoke and
// InvokeOneway send server-initiated requests (e.g. NOTIFY_CONSUMER_IDS_CHANGED)
// on an accepted connection. Close(ctx) stops accepting, answers new
// requests SERVICE_NOT_AVAILABLE, cancels the handlers' context, writes the
// responses of the handlers still running, then closes; when ctx ends first
// the connections are closed at once.
//
// # Client
//
// A Client keeps one connection per address, dialed lazily and shared by
// concurrent callers; responses are matched by opaque. Invoke (sync),
// InvokeAsync (callback) and InvokeOneway honour the context deadline: a
// reply arriving later is dropped. When a connection breaks, every call
// pending on it fails at once with an error naming the address (wrapping
// ErrConnClosed), and the next call dials again. Requests the server sends
// on a client connection go to ClientConfig.Handler.
//
// # Goroutines and performance
//
// Each connection has one reader goroutine (decoding from a bufio.Reader),
// one writer goroutine (the only writer of the socket: it takes every queued
// frame, encodes it into a bufio.Writer and flushes once the queue is empty,
// so many in-flight requests share one write), and one goroutine per request
// being handled. All are tracked by the owning Server or Client and have
// ended when its Close returns.
package transport
