package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// errTooManyFiles is the accept error worth retrying besides timeouts.
var errTooManyFiles error = syscall.EMFILE

// Mux routes requests by code. An unknown code is answered
// REQUEST_CODE_NOT_SUPPORTED with a remark naming the code. Handlers may be
// added while serving.
type Mux struct {
	mu       sync.Mutex
	handlers atomic.Pointer[map[RequestCode]Handler] // copy on write
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{} }

// Handle registers h for code, replacing any earlier handler.
func (m *Mux) Handle(code RequestCode, h Handler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := make(map[RequestCode]Handler)
	if cur := m.handlers.Load(); cur != nil {
		for k, v := range *cur {
			next[k] = v
		}
	}
	next[code] = h
	m.handlers.Store(&next)
}

// HandleFunc registers f for code.
func (m *Mux) HandleFunc(code RequestCode, f HandlerFunc) { m.Handle(code, f) }

// ServeRemoting dispatches req to the handler of its code.
func (m *Mux) ServeRemoting(ctx context.Context, conn *Conn, req *Command) *Command {
	if cur := m.handlers.Load(); cur != nil {
		if h, ok := (*cur)[RequestCode(req.Code)]; ok && h != nil {
			return h.ServeRemoting(ctx, conn, req)
		}
	}
	return notSupported(req)
}

// ServerConfig configures a Server. Zero values take the defaults.
type ServerConfig struct {
	Addr               string        // listen address, e.g. ":9876"; "127.0.0.1:0" in tests
	MaxFrameSize       int           // largest declared frame length accepted; default 16 MiB
	MaxInFlightPerConn int           // handlers running at once per connection; default 256
	IdleTimeout        time.Duration // close a connection that sent nothing for this long; default 120s, < 0 disables
	OnConnClose        func(*Conn)   // called once per closed connection, on its reader goroutine
	Logger             *slog.Logger  // nil discards
}

// Server defaults.
const (
	DefaultMaxInFlightPerConn = 256
	DefaultIdleTimeout        = 120 * time.Second
)

// DefaultServerConfig returns the defaults, listening on addr.
func DefaultServerConfig(addr string) ServerConfig {
	return ServerConfig{
		Addr:               addr,
		MaxFrameSize:       DefaultMaxFrameSize,
		MaxInFlightPerConn: DefaultMaxInFlightPerConn,
		IdleTimeout:        DefaultIdleTimeout,
	}
}

// Validate reports the first invalid field.
func (c ServerConfig) Validate() error {
	switch {
	case c.Addr == "":
		return errors.New("transport: ServerConfig.Addr is empty")
	case c.MaxFrameSize < 0 || c.MaxFrameSize > 1<<31-1:
		return fmt.Errorf("transport: ServerConfig.MaxFrameSize %d is outside [0, %d]", c.MaxFrameSize, 1<<31-1)
	case c.MaxFrameSize > 0 && c.MaxFrameSize < 64:
		return fmt.Errorf("transport: ServerConfig.MaxFrameSize %d is below the minimum 64", c.MaxFrameSize)
	case c.MaxInFlightPerConn < 0 || c.MaxInFlightPerConn > 1<<20:
		return fmt.Errorf("transport: ServerConfig.MaxInFlightPerConn %d is outside [0, %d]", c.MaxInFlightPerConn, 1<<20)
	}
	return nil
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.MaxInFlightPerConn == 0 {
		c.MaxInFlightPerConn = DefaultMaxInFlightPerConn
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.IdleTimeout < 0 {
		c.IdleTimeout = 0
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Server accepts connections and serves their requests with a Handler.
//
// NewServer listens at once; Serve (blocking) or Start (background) accepts.
// Close stops accepting, lets running handlers finish (their context is
// cancelled), sends their responses, and closes every connection.
type Server struct {
	cfg    ServerConfig
	h      Handler
	ln     net.Listener
	log    *slog.Logger
	ctx    context.Context // parent of every connection's handler context
	cancel context.CancelFunc
	ccfg   connConfig

	mu      sync.Mutex
	conns   map[*Conn]struct{}
	closing bool
	serving bool

	wg        sync.WaitGroup // accept loop and all connection goroutines
	closeOnce sync.Once
	closeErr  error
}

// NewServer validates cfg and listens on cfg.Addr.
func NewServer(cfg ServerConfig, h Handler) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("transport: NewServer: nil Handler")
	}
	cfg = cfg.withDefaults()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen %s: %w", cfg.Addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:    cfg,
		h:      h,
		ln:     ln,
		log:    cfg.Logger,
		ctx:    ctx,
		cancel: cancel,
		conns:  make(map[*Conn]struct{}),
	}
	s.ccfg = connConfig{
		maxFrame:    cfg.MaxFrameSize,
		maxInFlight: cfg.MaxInFlightPerConn,
		idle:        cfg.IdleTimeout,
		handler:     h,
		logger:      cfg.Logger,
		side:        "server",
		onClose:     s.connClosed,
		wg:          &s.wg,
	}
	return s, nil
}

// Addr returns the listening address (with the real port when Addr had :0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Start runs the accept loop in a goroutine owned by the server.
func (s *Server) Start() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.serving {
		s.mu.Unlock()
		return errors.New("transport: server already serving")
	}
	s.serving = true
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		s.acceptLoop() //nolint:errcheck // logged there
	}()
	return nil
}

// Serve accepts connections until Close; it then returns nil. An accept
// error other than a closed listener is returned.
func (s *Server) Serve() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.serving {
		s.mu.Unlock()
		return errors.New("transport: server already serving")
	}
	s.serving = true
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	return s.acceptLoop()
}

func (s *Server) acceptLoop() error {
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("transport: accept failed; retrying", "addr", s.ln.Addr().String(), "err", err, "backoff", backoff)
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-s.ctx.Done():
					t.Stop()
				}
				continue
			}
			s.log.Error("transport: accept failed", "addr", s.ln.Addr().String(), "err", err)
			return fmt.Errorf("transport: accept on %s: %w", s.ln.Addr(), err)
		}
		backoff = 0
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close() //nolint:errcheck // refusing it
			continue
		}
		c := newConn(s.ctx, nc, nc.RemoteAddr().String(), &s.ccfg)
		s.conns[c] = struct{}{}
		s.wg.Add(2)
		s.mu.Unlock()
		s.log.Debug("transport: accepted connection", "peer", c.addr, "id", c.id)
		c.start()
	}
}

func (s *Server) connClosed(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	if s.cfg.OnConnClose != nil {
		s.cfg.OnConnClose(c)
	}
}

// Conns returns the open connections.
func (s *Server) Conns() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// Close stops accepting and shuts the server down: requests arriving from
// now on are answered SERVICE_NOT_AVAILABLE, the handlers' context is
// cancelled, and once the running handlers have returned their responses
// are written and the connections closed. If ctx ends first, the
// connections are closed at once (the peers' pending calls fail), Close
// still waits for the handlers to return, and the error wraps ctx.Err().
// Close is idempotent; later calls return the first result.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *Server) close(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.ln.Close() //nolint:errcheck // stops the accept loop either way
	for _, c := range conns {
		c.startDrain()
	}
	s.cancel()

	var err error
	for _, c := range conns {
		select {
		case <-c.drained:
		case <-c.closed:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			break
		}
		c.closeGraceful()
	}
	if err == nil {
		all := make(chan struct{})
		go func() { // closes once every connection has finished writing
			for _, c := range conns {
				<-c.closed
			}
			close(all)
		}()
		select {
		case <-all:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			for _, c := range conns {
				c.shutdown(fmt.Errorf("transport: %s: %w: server closed", c.addr, ErrClosed))
			}
			<-all
		}
	} else {
		for _, c := range conns {
			c.shutdown(fmt.Errorf("transport: %s: %w: server closed", c.addr, ErrClosed))
		}
	}
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("transport: server close: %w", err)
	}
	return nil
}
