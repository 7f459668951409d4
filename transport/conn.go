package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Handler serves requests. ServeRemoting runs on its own goroutine, so the
// requests of one connection are served concurrently; ctx is cancelled when
// the connection closes or the server shuts down, and long-held requests
// (long polling) must return promptly then. The returned Command is the
// response (the transport sets its opaque, response flag and header
// encoding from the request without modifying it); nil means no reply.
// Replies to oneway requests (flag bit1) are dropped.
//
// While a connection has MaxInFlightPerConn handlers running its reader
// waits, so it also reads no responses: a handler that calls Invoke on its
// own connection must use a deadline.
type Handler interface {
	ServeRemoting(ctx context.Context, conn *Conn, req *Command) *Command
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, conn *Conn, req *Command) *Command

// ServeRemoting calls f.
func (f HandlerFunc) ServeRemoting(ctx context.Context, conn *Conn, req *Command) *Command {
	return f(ctx, conn, req)
}

// notSupported answers every request REQUEST_CODE_NOT_SUPPORTED.
func notSupported(req *Command) *Command {
	return NewResponse(RequestCodeNotSupported, fmt.Sprintf("request code %d not supported", req.Code))
}

var connIDs atomic.Uint64

// connConfig is what a Conn needs from its owner (Server or Client).
type connConfig struct {
	maxFrame    int
	maxInFlight int
	idle        time.Duration
	handler     Handler // nil: answer REQUEST_CODE_NOT_SUPPORTED
	logger      *slog.Logger
	side        string          // "server" or "client", for logs
	onClose     func(c *Conn)   // called once, after the reader exits
	wg          *sync.WaitGroup // owner's; tracks every goroutine of the conn
}

// outFrame is a queued frame; opaque, flag and st override the Command's
// own fields so that a Command shared between calls is never mutated.
type outFrame struct {
	cmd    *Command
	opaque int32
	flag   int32
	st     SerializeType
}

type result struct {
	cmd *Command
	err error
}

// call is a request waiting for its response. Exactly one of ch and cb is set.
type call struct {
	ch   chan result
	cb   func(*Command, error)
	stop func() bool // stops the async deadline watcher
	code int16
}

// Conn is one connection, accepted by a Server or dialed by a Client. Both
// sides may send requests on it (Invoke) and serve the peer's requests.
// Its methods are safe for concurrent use.
type Conn struct {
	id     uint64
	nc     net.Conn
	addr   string // the peer, as used in errors and logs
	cfg    *connConfig
	ctx    context.Context // handlers' context
	cancel context.CancelFunc
	sem    chan struct{}  // in-flight handler slots
	work   chan *Command  // requests handed to an idle handler goroutine (unbuffered)
	serveF func(*Command) // c.serve, made once: a method value per dispatch would allocate
	cbwork chan delivery  // async responses handed to an idle callback goroutine (unbuffered)

	wmu     sync.Mutex
	wqueue  []outFrame
	wspare  []outFrame
	wdrain  bool // writer closes the conn once the queue is empty
	wsignal chan struct{}

	pmu     sync.Mutex
	pending map[int32]*call
	pclosed bool

	hmu      sync.Mutex
	inflight int
	draining bool
	drained  chan struct{} // closed when draining and no handler is running

	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error // why the conn closed; set before closed is closed
}

func newConn(parent context.Context, nc net.Conn, addr string, cfg *connConfig) *Conn {
	ctx, cancel := context.WithCancel(parent)
	c := &Conn{
		id:      connIDs.Add(1),
		nc:      nc,
		addr:    addr,
		cfg:     cfg,
		ctx:     ctx,
		cancel:  cancel,
		sem:     make(chan struct{}, cfg.maxInFlight),
		work:    make(chan *Command),
		cbwork:  make(chan delivery),
		wsignal: make(chan struct{}, 1),
		pending: make(map[int32]*call),
		drained: make(chan struct{}),
		closed:  make(chan struct{}),
	}
	c.serveF = c.serve
	return c
}

// start launches the reader and writer; the owner has done cfg.wg.Add(2).
func (c *Conn) start() {
	go c.readLoop()
	go c.writeLoop()
}

// ID returns a process-unique id of the connection.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr returns the local address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Done is closed when the connection has closed.
func (c *Conn) Done() <-chan struct{} { return c.closed }

// Err returns why the connection closed, or nil while it is open.
func (c *Conn) Err() error {
	select {
	case <-c.closed:
		return c.closeErr
	default:
		return nil
	}
}

// Close closes the connection at once; pending calls fail and handlers'
// contexts are cancelled. It is idempotent.
func (c *Conn) Close() error {
	c.shutdown(fmt.Errorf("transport: %s: %w", c.addr, ErrClosed))
	return nil
}

// isClosed reports whether shutdown has run.
func (c *Conn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// shutdown closes the connection once, recording why, and fails every
// pending call. Async callbacks of failed calls run on this goroutine.
func (c *Conn) shutdown(err error) {
	c.closeOnce.Do(func() {
		c.closeErr = err
		close(c.closed)
		c.cancel()
		c.nc.Close() //nolint:errcheck // nothing to do about it
		c.pmu.Lock()
		c.pclosed = true
		pending := c.pending
		c.pending = nil
		c.pmu.Unlock()
		callErr := err
		if !errors.Is(err, ErrClosed) && !errors.Is(err, ErrConnClosed) {
			callErr = fmt.Errorf("transport: %s: %w: %w", c.addr, ErrConnClosed, err)
		}
		for _, cl := range pending {
			cl.finish(nil, callErr)
		}
	})
}

func (cl *call) finish(cmd *Command, err error) {
	if cl.ch != nil {
		cl.ch <- result{cmd, err}
		return
	}
	if cl.stop != nil {
		cl.stop()
	}
	cl.cb(cmd, err)
}

// Invoke sends req and waits for its response, until ctx is done or the
// connection breaks. The transport assigns the opaque; req is not modified.
func (c *Conn) Invoke(ctx context.Context, req *Command) (*Command, error) {
	if err := ctx.Err(); err != nil {
		return nil, c.ctxError(ctx, req, 0)
	}
	cl := &call{ch: make(chan result, 1), code: req.Code}
	opaque, err := c.send(req, cl, 0)
	if err != nil {
		return nil, err
	}
	select {
	case r := <-cl.ch:
		return r.cmd, r.err
	case <-ctx.Done():
		if c.takeCall(opaque) != nil {
			return nil, c.ctxError(ctx, req, opaque)
		}
		// The response is being delivered right now.
		r := <-cl.ch
		return r.cmd, r.err
	}
}

// InvokeAsync sends req and calls cb exactly once with the response or an
// error (ctx done, connection broken). A response is delivered on a new
// goroutine; errors may be delivered on the caller's goroutine or the one
// that detected them, so cb must not block. An error returned by
// InvokeAsync itself means cb will not be called.
func (c *Conn) InvokeAsync(ctx context.Context, req *Command, cb func(*Command, error)) error {
	if err := ctx.Err(); err != nil {
		return c.ctxError(ctx, req, 0)
	}
	cl := &call{cb: cb, code: req.Code}
	// The deadline watcher needs the opaque, known only after send: guard it.
	var opaqueReady = make(chan int32, 1)
	cl.stop = context.AfterFunc(ctx, func() {
		opaque := <-opaqueReady
		if opaque != 0 && c.takeCall(opaque) != nil {
			cb(nil, c.ctxError(ctx, req, opaque))
		}
	})
	opaque, err := c.send(req, cl, 0)
	if err != nil {
		opaqueReady <- 0
		cl.stop()
		return err
	}
	opaqueReady <- opaque
	return nil
}

// InvokeOneway sends req with the oneway flag and does not wait for a
// reply. It fails only if the connection is closed.
func (c *Conn) InvokeOneway(ctx context.Context, req *Command) error {
	if err := ctx.Err(); err != nil {
		return c.ctxError(ctx, req, 0)
	}
	_, err := c.send(req, nil, FlagOneway)
	return err
}

// send registers cl (if any) under a fresh opaque and queues req.
func (c *Conn) send(req *Command, cl *call, extraFlag int32) (int32, error) {
	opaque := nextOpaque()
	if opaque == 0 {
		opaque = nextOpaque()
	}
	if cl != nil {
		c.pmu.Lock()
		if c.pclosed {
			c.pmu.Unlock()
			return 0, c.closedError()
		}
		c.pending[opaque] = cl
		c.pmu.Unlock()
	}
	f := outFrame{cmd: req, opaque: opaque, flag: (req.Flag &^ FlagResponse) | extraFlag, st: req.SerializeType}
	if err := c.enqueue(f); err != nil {
		if cl != nil && c.takeCall(opaque) == nil {
			// shutdown got there first and has finished the call with its
			// error; report nothing more so that cb runs exactly once.
			return opaque, nil
		}
		return 0, err
	}
	return opaque, nil
}

// takeCall removes and returns the pending call, or nil if it is gone.
func (c *Conn) takeCall(opaque int32) *call {
	c.pmu.Lock()
	cl := c.pending[opaque]
	if cl != nil {
		delete(c.pending, opaque)
	}
	c.pmu.Unlock()
	return cl
}

func (c *Conn) closedError() error {
	<-c.closed // pclosed and wdrain are set only after or during shutdown/drain
	return c.closeErr
}

func (c *Conn) ctxError(ctx context.Context, req *Command, opaque int32) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("transport: %s: %s opaque %d: %w (%w)", c.addr, RequestCode(req.Code), opaque, ErrTimeout, err)
	}
	return fmt.Errorf("transport: %s: %s opaque %d: %w", c.addr, RequestCode(req.Code), opaque, err)
}

// enqueue hands a frame to the writer.
func (c *Conn) enqueue(f outFrame) error {
	c.wmu.Lock()
	if c.wdrain || c.isClosed() {
		c.wmu.Unlock()
		return fmt.Errorf("transport: %s: %w", c.addr, ErrClosed)
	}
	wake := len(c.wqueue) == 0
	c.wqueue = append(c.wqueue, f)
	c.wmu.Unlock()
	if wake {
		select {
		case c.wsignal <- struct{}{}:
		default:
		}
	}
	return nil
}

// closeGraceful makes the writer send everything queued, then close.
func (c *Conn) closeGraceful() {
	c.wmu.Lock()
	c.wdrain = true
	c.wmu.Unlock()
	select {
	case c.wsignal <- struct{}{}:
	default:
	}
}

// writeLoop is the only writer of the socket: it takes everything queued,
// encodes it into a bufio.Writer and flushes when the queue is empty.
func (c *Conn) writeLoop() {
	defer c.cfg.wg.Done()
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	var head []byte
	for {
		c.wmu.Lock()
		for len(c.wqueue) == 0 && !c.wdrain {
			c.wmu.Unlock()
			select {
			case <-c.wsignal:
			case <-c.closed:
				return
			}
			c.wmu.Lock()
		}
		q := c.wqueue
		c.wqueue = c.wspare[:0]
		drain := c.wdrain
		c.wmu.Unlock()
		if len(q) == 0 && drain {
			if err := bw.Flush(); err != nil {
				c.shutdown(fmt.Errorf("transport: write to %s: %w", c.addr, err))
				return
			}
			c.shutdown(fmt.Errorf("transport: %s: %w", c.addr, ErrClosed))
			return
		}
		if c.cfg.idle > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(c.cfg.idle)) //nolint:errcheck // a failed write reports it
		}
		for i := range q {
			var err error
			head, err = c.encodeHead(head[:0], &q[i])
			if err == nil {
				if _, err = bw.Write(head); err == nil {
					_, err = bw.Write(q[i].cmd.Body)
				}
				if err != nil {
					c.shutdown(fmt.Errorf("transport: write to %s: %w", c.addr, err))
					return
				}
			}
		}
		clear(q)
		c.wmu.Lock()
		c.wspare = q[:0]
		more := len(c.wqueue) > 0
		c.wmu.Unlock()
		if !more && len(q) < 64 {
			// Let runnable handlers and callers queue their frames too, so
			// that one write carries many (a large win with many in flight).
			runtime.Gosched()
			c.wmu.Lock()
			more = len(c.wqueue) > 0
			c.wmu.Unlock()
		}
		if !more {
			if err := bw.Flush(); err != nil {
				c.shutdown(fmt.Errorf("transport: write to %s: %w", c.addr, err))
				return
			}
		}
		if cap(head) > scratchKeep {
			head = nil
		}
	}
}

// encodeHead encodes the length words and header of f (not the body). On an
// encode error it fails the pending call of a request, or substitutes a
// SYSTEM_ERROR response for a response.
func (c *Conn) encodeHead(dst []byte, f *outFrame) ([]byte, error) {
	out, err := appendFrameHead(dst, f.cmd, f.opaque, f.flag, f.st)
	if err == nil {
		if total := len(out) - len(dst) - 4 + len(f.cmd.Body); total > c.cfg.maxFrame {
			err = fmt.Errorf("%w: %s of %d bytes exceeds the limit %d", ErrFrameTooLarge, frameCodeString(f), total, c.cfg.maxFrame)
		} else {
			return out, nil
		}
	}
	c.cfg.logger.Error("transport: cannot encode frame", "peer", c.addr, "code", frameCodeString(f), "err", err)
	if f.flag&FlagResponse == 0 {
		if cl := c.takeCall(f.opaque); cl != nil {
			cl.finish(nil, fmt.Errorf("transport: %s: %w", c.addr, err))
		}
		return dst, err
	}
	*f = outFrame{cmd: NewResponse(SystemError, err.Error()), opaque: f.opaque, flag: FlagResponse, st: f.st}
	return appendFrameHead(dst, f.cmd, f.opaque, f.flag, f.st)
}

// frameCodeString names the code of a queued frame for errors and logs.
func frameCodeString(f *outFrame) string {
	if f.flag&FlagResponse != 0 {
		return ResponseCode(f.cmd.Code).String()
	}
	return RequestCode(f.cmd.Code).String()
}

// readLoop reads frames until the connection fails, delivering responses to
// their calls and dispatching requests to handler goroutines.
func (c *Conn) readLoop() {
	defer c.cfg.wg.Done()
	fr := NewFrameReader(c.nc, c.cfg.maxFrame)
	var err error
	for {
		if c.cfg.idle > 0 {
			c.nc.SetReadDeadline(time.Now().Add(c.cfg.idle)) //nolint:errcheck // a failed read reports it
		}
		var cmd *Command
		cmd, err = fr.Read()
		if err != nil {
			break
		}
		if cmd.IsResponse() {
			c.deliver(cmd)
			continue
		}
		if !c.dispatch(cmd) {
			break
		}
	}
	c.readFailed(err)
	if c.cfg.onClose != nil {
		c.cfg.onClose(c)
	}
}

// readFailed logs why reading stopped and shuts the connection down.
func (c *Conn) readFailed(err error) {
	log := c.cfg.logger
	var ne net.Error
	switch {
	case err == nil || c.isClosed():
		// Closed by us; shutdown already recorded why.
		err = fmt.Errorf("transport: %s: %w", c.addr, ErrClosed)
	case errors.Is(err, io.EOF):
		log.Debug("transport: connection closed by peer", "side", c.cfg.side, "peer", c.addr)
		err = fmt.Errorf("transport: %s: %w: closed by peer", c.addr, ErrConnClosed)
	case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrMalformedFrame):
		log.Warn("transport: closing connection: bad frame", "side", c.cfg.side, "peer", c.addr, "err", err)
		err = fmt.Errorf("transport: read from %s: %w", c.addr, err)
	case errors.As(err, &ne) && ne.Timeout():
		log.Info("transport: closing idle connection", "side", c.cfg.side, "peer", c.addr, "idle", c.cfg.idle)
		err = fmt.Errorf("transport: %s: %w: idle for %s", c.addr, ErrConnClosed, c.cfg.idle)
	default:
		log.Info("transport: connection read failed", "side", c.cfg.side, "peer", c.addr, "err", err)
		err = fmt.Errorf("transport: read from %s: %w", c.addr, err)
	}
	c.shutdown(err)
}

// deliver hands a response to its pending call; late or unknown responses
// are dropped.
func (c *Conn) deliver(resp *Command) {
	cl := c.takeCall(resp.Opaque)
	if cl == nil {
		c.cfg.logger.Debug("transport: dropping response without a pending call", "peer", c.addr, "opaque", resp.Opaque, "code", resp.Code)
		return
	}
	if cl.ch != nil {
		cl.ch <- result{cmd: resp}
		return
	}
	handOff(c, c.cbwork, delivery{cl, resp}, func(d delivery) { d.cl.finish(d.resp, nil) })
}

// delivery is an async call's response on its way to the callback.
type delivery struct {
	cl   *call
	resp *Command
}

// handOff gives v to a goroutine idle in reuseLoop on ch, or starts one that runs do(v)
// and then waits there. Reusing goroutines keeps their grown stacks: a fresh goroutine per
// request or per async response grew its stack from 8 KiB every time (5 % of the CPU of
// pipelined sends).
func handOff[T any](c *Conn, ch chan T, v T, do func(T)) {
	select {
	case ch <- v: // an idle goroutine takes it
	default:
		c.cfg.wg.Add(1) // the reader holds a count, so this cannot race with Wait
		go reuseLoop(c, ch, v, do)
	}
}

// reuseLoop runs do(v), then do on what handOff sends on ch while it waits, until it has
// been idle for handlerIdle or the connection closes.
func reuseLoop[T any](c *Conn, ch chan T, v T, do func(T)) {
	defer c.cfg.wg.Done()
	idle := time.NewTimer(handlerIdle)
	defer idle.Stop()
	for {
		do(v)
		idle.Reset(handlerIdle)
		select {
		case v = <-ch:
		case <-idle.C:
			return
		case <-c.closed:
			return
		}
	}
}

// dispatch starts a handler goroutine for req, waiting for a free in-flight
// slot (back-pressure). It returns false when the connection closed.
func (c *Conn) dispatch(req *Command) bool {
	c.hmu.Lock()
	if c.draining {
		c.hmu.Unlock()
		if !req.IsOneway() {
			resp := NewResponse(ServiceNotAvailable, "transport: server is shutting down")
			c.enqueue(outFrame{cmd: resp, opaque: req.Opaque, flag: FlagResponse, st: req.SerializeType}) //nolint:errcheck // closing anyway
		}
		return true
	}
	c.inflight++
	c.hmu.Unlock()
	select {
	case c.sem <- struct{}{}:
	case <-c.closed:
		c.handlerDone()
		return false
	}
	handOff(c, c.work, req, c.serveF)
	return true
}

// handlerIdle is how long a reused handler or callback goroutine waits for more work.
const handlerIdle = 5 * time.Second

func (c *Conn) handlerDone() {
	c.hmu.Lock()
	c.inflight--
	if c.draining && c.inflight == 0 {
		close(c.drained)
	}
	c.hmu.Unlock()
}

// startDrain stops dispatching new requests (they are answered
// SERVICE_NOT_AVAILABLE); drained closes when the running handlers finish.
func (c *Conn) startDrain() {
	c.hmu.Lock()
	if !c.draining {
		c.draining = true
		if c.inflight == 0 {
			close(c.drained)
		}
	}
	c.hmu.Unlock()
}

func (c *Conn) serve(req *Command) {
	defer c.handlerDone()
	defer func() { <-c.sem }()
	resp := c.callHandler(req)
	if resp == nil || req.IsOneway() {
		return
	}
	err := c.enqueue(outFrame{cmd: resp, opaque: req.Opaque, flag: resp.Flag | FlagResponse, st: req.SerializeType})
	if err != nil {
		c.cfg.logger.Debug("transport: response not sent", "peer", c.addr, "code", req.Code, "opaque", req.Opaque, "err", err)
	}
}

func (c *Conn) callHandler(req *Command) (resp *Command) {
	defer func() {
		if r := recover(); r != nil {
			c.cfg.logger.Error("transport: handler panic", "side", c.cfg.side, "peer", c.addr,
				"code", RequestCode(req.Code).String(), "panic", r, "stack", string(debug.Stack()))
			resp = NewResponse(SystemError, fmt.Sprintf("transport: handler panic: %v", r))
		}
	}()
	if c.cfg.handler == nil {
		return notSupported(req)
	}
	return c.cfg.handler.ServeRemoting(c.ctx, c, req)
}

// appendFrameHead encodes the 8-byte prefix and the header; the body follows
// separately.
func appendFrameHead(dst []byte, c *Command, opaque, flag int32, st SerializeType) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	var err error
	dst, err = appendHeader(dst, c, opaque, flag, st)
	if err != nil {
		return dst[:start], err
	}
	hlen := len(dst) - start - 8
	if hlen > maxHeaderLen {
		return dst[:start], fmt.Errorf("transport: encode %s: header of %d bytes exceeds %d", RequestCode(c.Code), hlen, maxHeaderLen)
	}
	total := int64(4 + hlen + len(c.Body))
	if total > 1<<31-1 {
		return dst[:start], fmt.Errorf("transport: encode %s: frame of %d bytes too large", RequestCode(c.Code), total)
	}
	putPrefix(dst[start:], int(total), hlen, st)
	return dst, nil
}
