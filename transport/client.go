package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// ClientConfig configures a Client. Zero values take the defaults.
type ClientConfig struct {
	DialTimeout        time.Duration // default 3s
	MaxFrameSize       int           // default 16 MiB
	IdleTimeout        time.Duration // close a connection that received nothing for this long; default 120s, < 0 disables
	MaxInFlightPerConn int           // server-initiated requests served at once per connection; default 256
	Handler            Handler       // server-initiated requests; nil answers REQUEST_CODE_NOT_SUPPORTED
	Logger             *slog.Logger  // nil discards
}

// DefaultDialTimeout is ClientConfig.DialTimeout's default.
const DefaultDialTimeout = 3 * time.Second

// DefaultClientConfig returns the defaults.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{
		DialTimeout:        DefaultDialTimeout,
		MaxFrameSize:       DefaultMaxFrameSize,
		IdleTimeout:        DefaultIdleTimeout,
		MaxInFlightPerConn: DefaultMaxInFlightPerConn,
	}
}

// Validate reports the first invalid field.
func (c ClientConfig) Validate() error {
	switch {
	case c.DialTimeout < 0:
		return fmt.Errorf("transport: ClientConfig.DialTimeout %s is negative", c.DialTimeout)
	case c.MaxFrameSize < 0 || c.MaxFrameSize > 1<<31-1:
		return fmt.Errorf("transport: ClientConfig.MaxFrameSize %d is outside [0, %d]", c.MaxFrameSize, 1<<31-1)
	case c.MaxFrameSize > 0 && c.MaxFrameSize < 64:
		return fmt.Errorf("transport: ClientConfig.MaxFrameSize %d is below the minimum 64", c.MaxFrameSize)
	case c.MaxInFlightPerConn < 0 || c.MaxInFlightPerConn > 1<<20:
		return fmt.Errorf("transport: ClientConfig.MaxInFlightPerConn %d is outside [0, %d]", c.MaxInFlightPerConn, 1<<20)
	}
	return nil
}

// Client keeps one connection per address, dialed on first use and shared
// by concurrent callers. A broken connection fails its pending calls at
// once and is redialed by the next call. Safe for concurrent use.
type Client struct {
	cfg  ClientConfig
	ccfg connConfig
	ctx  context.Context // parent of handler contexts; cancelled by Close
	stop context.CancelFunc

	mu     sync.Mutex
	conns  map[string]*clientEntry
	closed bool
	wg     sync.WaitGroup // dials and connection goroutines
}

// clientEntry is a connection being dialed or established.
type clientEntry struct {
	ready chan struct{} // closed when the dial finished
	conn  *Conn
	err   error
}

// NewClient validates cfg and returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.MaxFrameSize == 0 {
		cfg.MaxFrameSize = DefaultMaxFrameSize
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.IdleTimeout < 0 {
		cfg.IdleTimeout = 0
	}
	if cfg.MaxInFlightPerConn == 0 {
		cfg.MaxInFlightPerConn = DefaultMaxInFlightPerConn
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	cl := &Client{cfg: cfg, ctx: ctx, stop: stop, conns: make(map[string]*clientEntry)}
	cl.ccfg = connConfig{
		maxFrame:    cfg.MaxFrameSize,
		maxInFlight: cfg.MaxInFlightPerConn,
		idle:        cfg.IdleTimeout,
		handler:     cfg.Handler,
		logger:      cfg.Logger,
		side:        "client",
		onClose:     cl.connClosed,
		wg:          &cl.wg,
	}
	return cl, nil
}

// Conn returns the connection to addr, dialing it if needed.
func (cl *Client) Conn(ctx context.Context, addr string) (*Conn, error) {
	for {
		cl.mu.Lock()
		if cl.closed {
			cl.mu.Unlock()
			return nil, fmt.Errorf("transport: %s: %w", addr, ErrClosed)
		}
		e := cl.conns[addr]
		if e == nil {
			e = &clientEntry{ready: make(chan struct{})}
			cl.conns[addr] = e
			cl.wg.Add(1)
			cl.mu.Unlock()
			cl.dial(ctx, addr, e)
			if e.err != nil {
				return nil, e.err
			}
			return e.conn, nil
		}
		cl.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("transport: dial %s: %w", addr, ctx.Err())
		}
		if e.err != nil {
			return nil, e.err
		}
		if !e.conn.isClosed() {
			return e.conn, nil
		}
		// Broken: drop the entry (if still there) and dial again.
		cl.mu.Lock()
		if cl.conns[addr] == e {
			delete(cl.conns, addr)
		}
		cl.mu.Unlock()
	}
}

// dial connects e; the caller did cl.wg.Add(1).
func (cl *Client) dial(ctx context.Context, addr string, e *clientEntry) {
	defer cl.wg.Done()
	d := net.Dialer{Timeout: cl.cfg.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if err == nil && cl.closed {
		nc.Close() //nolint:errcheck // client closed meanwhile
		err = ErrClosed
	}
	if err != nil {
		e.err = fmt.Errorf("transport: dial %s: %w", addr, dialCause(err))
		if cl.conns[addr] == e {
			delete(cl.conns, addr)
		}
		close(e.ready)
		cl.cfg.Logger.Debug("transport: dial failed", "addr", addr, "err", err)
		return
	}
	e.conn = newConn(cl.ctx, nc, addr, &cl.ccfg)
	cl.wg.Add(2)
	e.conn.start()
	close(e.ready)
}

// dialCause strips net.OpError and os.SyscallError so that the message
// reads "transport: dial 127.0.0.1:9876: connection refused"; errors.Is
// still matches the underlying errno.
func dialCause(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) && se.Err != nil {
		err = se.Err
	}
	return err
}

func (cl *Client) connClosed(c *Conn) {
	cl.mu.Lock()
	if e := cl.conns[c.addr]; e != nil && e.conn == c {
		delete(cl.conns, c.addr)
	}
	cl.mu.Unlock()
}

// Invoke sends req to addr and waits for the response or ctx.
func (cl *Client) Invoke(ctx context.Context, addr string, req *Command) (*Command, error) {
	c, err := cl.Conn(ctx, addr)
	if err != nil {
		return nil, err
	}
	return c.Invoke(ctx, req)
}

// InvokeAsync sends req to addr; cb gets the response or an error exactly
// once (see Conn.InvokeAsync). When InvokeAsync returns an error, cb is not
// called.
func (cl *Client) InvokeAsync(ctx context.Context, addr string, req *Command, cb func(*Command, error)) error {
	c, err := cl.Conn(ctx, addr)
	if err != nil {
		return err
	}
	return c.InvokeAsync(ctx, req, cb)
}

// InvokeOneway sends req to addr with the oneway flag.
func (cl *Client) InvokeOneway(ctx context.Context, addr string, req *Command) error {
	c, err := cl.Conn(ctx, addr)
	if err != nil {
		return err
	}
	return c.InvokeOneway(ctx, req)
}

// CloseConn closes the connection to addr, if any; pending calls on it fail.
func (cl *Client) CloseConn(addr string) {
	cl.mu.Lock()
	e := cl.conns[addr]
	if e != nil {
		delete(cl.conns, addr)
	}
	cl.mu.Unlock()
	if e == nil {
		return
	}
	<-e.ready
	if e.conn != nil {
		e.conn.Close() //nolint:errcheck // always nil
	}
}

// Close closes every connection (pending calls fail with ErrClosed) and
// waits for the client's goroutines. It is idempotent.
func (cl *Client) Close() error {
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		cl.wg.Wait()
		return nil
	}
	cl.closed = true
	entries := make([]*clientEntry, 0, len(cl.conns))
	for _, e := range cl.conns {
		entries = append(entries, e)
	}
	cl.conns = map[string]*clientEntry{}
	cl.mu.Unlock()
	cl.stop()
	for _, e := range entries {
		<-e.ready
		if e.conn != nil {
			e.conn.Close() //nolint:errcheck // always nil
		}
	}
	cl.wg.Wait()
	return nil
}
