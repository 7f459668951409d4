package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// releaser returns a channel that releaseNow closes; it is also closed on
// cleanup, so that a failing test does not leave handlers blocked.
func releaser(t *testing.T) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	f := func() { once.Do(func() { close(ch) }) }
	t.Cleanup(f)
	return ch, f
}

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestServer(t *testing.T, cfg ServerConfig, h Handler) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	srv, err := NewServer(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("server close: %v", err)
		}
	})
	return srv
}

func newTestClient(t *testing.T, cfg ClientConfig) *Client {
	t.Helper()
	cl, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// echoMux answers HEART_BEAT with SUCCESS and the request's ext field "n"
// and body.
func echoMux() *Mux {
	m := NewMux()
	m.HandleFunc(HeartBeat, func(ctx context.Context, c *Conn, req *Command) *Command {
		resp := NewResponse(Success, "")
		resp.SetExt("n", req.Ext("n"))
		resp.Body = req.Body
		return resp
	})
	return m
}

func TestInvokeBothEncodings(t *testing.T) {
	srv := newTestServer(t, ServerConfig{}, echoMux())
	cl := newTestClient(t, ClientConfig{})
	addr := srv.Addr().String()
	for _, st := range []SerializeType{SerializeJSON, SerializeRocketMQ} {
		req := NewRequest(HeartBeat, map[string]string{"n": "7"}, []byte("body"))
		req.SerializeType = st
		resp, err := cl.Invoke(testCtx(t), addr, req)
		if err != nil {
			t.Fatalf("%s: %v", st, err)
		}
		if resp.ResponseCode() != Success || resp.Ext("n") != "7" || string(resp.Body) != "body" {
			t.Fatalf("%s: bad response %s", st, resp)
		}
		if !resp.IsResponse() || resp.SerializeType != st {
			t.Fatalf("%s: response flag %d, encoding %s", st, resp.Flag, resp.SerializeType)
		}
	}
}

// rawConn is a hand-driven client connection for wire-level tests.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	fr *FrameReader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, nc: nc, fr: NewFrameReader(nc, 0)}
}

func (r *rawConn) send(c *Command) {
	r.t.Helper()
	b, err := EncodeFrame(c)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) read() *Command {
	r.t.Helper()
	c, err := r.fr.Read()
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// expectClosed reads until the server closes the connection.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	_, err := io.Copy(io.Discard, r.nc)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			r.t.Fatal("server did not close the connection")
		}
	}
}

// TestResponseKeepsOpaqueAndEncoding checks on the wire that replies carry
// the request's opaque, flag bit0 and header encoding.
func TestResponseKeepsOpaqueAndEncoding(t *testing.T) {
	srv := newTestServer(t, ServerConfig{}, echoMux())
	rc := dialRaw(t, srv.Addr().String())
	for i, st := range []SerializeType{SerializeJSON, SerializeRocketMQ, SerializeJSON} {
		req := &Command{Code: int16(HeartBeat), Language: LanguageGo, Version: 317, Opaque: int32(1000 + i), SerializeType: st}
		rc.send(req)
		resp := rc.read()
		if resp.Opaque != req.Opaque || resp.Flag != FlagResponse || resp.SerializeType != st || resp.Code != 0 {
			t.Fatalf("reply %s (encoding %s) to opaque %d in %s", resp, resp.SerializeType, req.Opaque, st)
		}
	}
}

func TestConcurrentRequestsOnOneConn(t *testing.T) {
	entered := make(chan struct{})
	release, releaseNow := releaser(t)
	m := echoMux()
	m.HandleFunc(PullMessage, func(ctx context.Context, c *Conn, req *Command) *Command {
		close(entered)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return NewResponse(PullNotFound, "")
	})
	srv := newTestServer(t, ServerConfig{}, m)
	cl := newTestClient(t, ClientConfig{})
	addr := srv.Addr().String()
	pullDone := make(chan error, 1)
	go func() {
		resp, err := cl.Invoke(testCtx(t), addr, NewRequest(PullMessage, nil, nil))
		if err == nil && resp.ResponseCode() != PullNotFound {
			err = fmt.Errorf("pull answered %s", resp)
		}
		pullDone <- err
	}()
	<-entered
	// The pull is held; a heartbeat and a send on the same connection still go through.
	for i := range 10 {
		resp, err := cl.Invoke(testCtx(t), addr, NewRequest(HeartBeat, map[string]string{"n": strconv.Itoa(i)}, nil))
		if err != nil || resp.Ext("n") != strconv.Itoa(i) {
			t.Fatalf("heartbeat %d while a pull is held: %v %v", i, resp, err)
		}
	}
	if got := len(srv.Conns()); got != 1 {
		t.Fatalf("%d server connections, want 1 shared", got)
	}
	releaseNow()
	if err := <-pullDone; err != nil {
		t.Fatal(err)
	}
}

func TestManyConcurrentCallers(t *testing.T) {
	srv := newTestServer(t, ServerConfig{}, echoMux())
	cl := newTestClient(t, ClientConfig{})
	addr := srv.Addr().String()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				n := fmt.Sprintf("%d-%d", g, i)
				req := NewRequest(HeartBeat, map[string]string{"n": n}, []byte(n))
				req.SerializeType = SerializeType(i % 2)
				resp, err := cl.Invoke(context.Background(), addr, req)
				if err != nil {
					errs <- err
					return
				}
				if resp.Ext("n") != n || string(resp.Body) != n {
					errs <- fmt.Errorf("request %s got reply %s", n, resp)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestInFlightBound(t *testing.T) {
	const bound = 2
	var running, maxRunning, served atomic.Int32
	release, releaseNow := releaser(t)
	m := NewMux()
	m.HandleFunc(PullMessage, func(ctx context.Context, c *Conn, req *Command) *Command {
		n := running.Add(1)
		for {
			old := maxRunning.Load()
			if n <= old || maxRunning.CompareAndSwap(old, n) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		running.Add(-1)
		served.Add(1)
		return NewResponse(Success, "")
	})
	srv := newTestServer(t, ServerConfig{MaxInFlightPerConn: bound}, m)
	cl := newTestClient(t, ClientConfig{})
	const total = 6
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for range total {
		wg.Add(1)
		err := cl.InvokeAsync(testCtx(t), srv.Addr().String(), NewRequest(PullMessage, nil, nil), func(resp *Command, err error) {
			defer wg.Done()
			if err != nil {
				errs <- err
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the first handlers to start", func() bool { return running.Load() >= bound })
	// A broken bound lets the other requests in at once; give them a moment to
	// show up. (This can only produce a false pass, never a false failure.)
	time.Sleep(50 * time.Millisecond)
	if n := running.Load(); n != bound {
		t.Fatalf("%d handlers running, bound is %d", n, bound)
	}
	releaseNow()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if served.Load() != total || maxRunning.Load() != bound {
		t.Fatalf("served %d (want %d), max running %d (want %d)", served.Load(), total, maxRunning.Load(), bound)
	}
}

func TestUnknownCode(t *testing.T) {
	srv := newTestServer(t, ServerConfig{}, NewMux())
	cl := newTestClient(t, ClientConfig{})
	resp, err := cl.Invoke(testCtx(t), srv.Addr().String(), &Command{Code: 999, SerializeType: SerializeRocketMQ})
	if err != nil {
		t.Fatal(err)
	}
	if resp.ResponseCode() != RequestCodeNotSupported || !strings.Contains(resp.Remark, "999") {
		t.Fatalf("unknown code answered %s", resp)
	}
}

func TestHandlerPanic(t *testing.T) {
	logs := &logBuffer{}
	m := NewMux()
	m.HandleFunc(HeartBeat, func(ctx context.Context, c *Conn, req *Command) *Command { panic("boom") })
	srv := newTestServer(t, ServerConfig{Logger: slog.New(slog.NewTextHandler(logs, nil))}, m)
	cl := newTestClient(t, ClientConfig{})
	resp, err := cl.Invoke(testCtx(t), srv.Addr().String(), NewRequest(HeartBeat, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.ResponseCode() != SystemError || !strings.Contains(resp.Remark, "boom") {
		t.Fatalf("panicking handler answered %s", resp)
	}
	if !strings.Contains(logs.String(), "handler panic") {
		t.Fatalf("panic not logged: %s", logs)
	}
}

// TestOneway: the oneway flag gets no reply, and a flag-0 request whose
// reply the client ignores (as Go sends its oneway calls) is harmless.
func TestOneway(t *testing.T) {
	got := make(chan *Command, 4)
	m := echoMux()
	m.HandleFunc(UpdateConsumerOffset, func(ctx context.Context, c *Conn, req *Command) *Command {
		got <- req
		return NewResponse(Success, "ignored")
	})
	srv := newTestServer(t, ServerConfig{}, m)

	cl := newTestClient(t, ClientConfig{})
	if err := cl.InvokeOneway(testCtx(t), srv.Addr().String(), NewRequest(UpdateConsumerOffset, map[string]string{"commitOffset": "5"}, nil)); err != nil {
		t.Fatal(err)
	}
	if req := <-got; !req.IsOneway() || req.Ext("commitOffset") != "5" {
		t.Fatalf("handler got %s", req)
	}

	rc := dialRaw(t, srv.Addr().String())
	rc.send(&Command{Code: int16(UpdateConsumerOffset), Opaque: 1, Flag: FlagOneway})
	<-got
	rc.send(&Command{Code: int16(HeartBeat), Opaque: 2})
	if resp := rc.read(); resp.Opaque != 2 {
		t.Fatalf("reply to opaque %d, want 2 (oneway must not be answered)", resp.Opaque)
	}
	// Close writes every queued response before closing: nothing for opaque 1.
	if err := srv.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	for {
		c, err := rc.fr.Read()
		if err != nil {
			break
		}
		if c.Opaque == 1 {
			t.Fatal("the oneway request was answered")
		}
	}
}

func TestServerInitiatedRequest(t *testing.T) {
	conns := make(chan *Conn, 1)
	m := echoMux()
	m.HandleFunc(HeartBeat, func(ctx context.Context, c *Conn, req *Command) *Command {
		conns <- c
		return NewResponse(Success, "")
	})
	srv := newTestServer(t, ServerConfig{}, m)
	notified := make(chan string, 1)
	cm := NewMux()
	cm.HandleFunc(GetConsumerRunningInfo, func(ctx context.Context, c *Conn, req *Command) *Command {
		r := NewResponse(Success, "")
		r.Body = []byte("running:" + req.Ext("consumerGroup"))
		return r
	})
	cm.HandleFunc(NotifyConsumerIDsChanged, func(ctx context.Context, c *Conn, req *Command) *Command {
		notified <- req.Ext("consumerGroup")
		return nil
	})
	cl := newTestClient(t, ClientConfig{Handler: cm})
	if _, err := cl.Invoke(testCtx(t), srv.Addr().String(), NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	sc := <-conns
	resp, err := sc.Invoke(testCtx(t), NewRequest(GetConsumerRunningInfo, map[string]string{"consumerGroup": "cg1"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Body) != "running:cg1" {
		t.Fatalf("client answered %s", resp)
	}
	if err := sc.InvokeOneway(testCtx(t), NewRequest(NotifyConsumerIDsChanged, map[string]string{"consumerGroup": "cg2"}, nil)); err != nil {
		t.Fatal(err)
	}
	if g := <-notified; g != "cg2" {
		t.Fatalf("notified %q", g)
	}
	// A client without a handler for the code answers REQUEST_CODE_NOT_SUPPORTED.
	resp, err = sc.Invoke(testCtx(t), NewRequest(ConsumeMessageDirectly, nil, nil))
	if err != nil || resp.ResponseCode() != RequestCodeNotSupported {
		t.Fatalf("unknown server-initiated code: %v %v", resp, err)
	}
}

func TestConnCloseCallback(t *testing.T) {
	var mu sync.Mutex
	closed := map[uint64]int{}
	ids := make(chan uint64, 1)
	m := echoMux()
	m.HandleFunc(HeartBeat, func(ctx context.Context, c *Conn, req *Command) *Command {
		ids <- c.ID()
		return NewResponse(Success, "")
	})
	srv := newTestServer(t, ServerConfig{OnConnClose: func(c *Conn) {
		mu.Lock()
		closed[c.ID()]++
		mu.Unlock()
	}}, m)
	cl := newTestClient(t, ClientConfig{})
	addr := srv.Addr().String()
	if _, err := cl.Invoke(testCtx(t), addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	id := <-ids
	cl.CloseConn(addr)
	waitFor(t, "the close callback", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return closed[id] == 1
	})
	if n := len(srv.Conns()); n != 0 {
		t.Fatalf("%d connections still listed", n)
	}
}

func TestIdleTimeout(t *testing.T) {
	closedCh := make(chan struct{})
	srv := newTestServer(t, ServerConfig{IdleTimeout: 100 * time.Millisecond, OnConnClose: func(*Conn) { close(closedCh) }}, echoMux())
	rc := dialRaw(t, srv.Addr().String())
	rc.expectClosed()
	<-closedCh
}

func TestOversizeFrameClosesConn(t *testing.T) {
	logs := &logBuffer{}
	srv := newTestServer(t, ServerConfig{MaxFrameSize: 1024, Logger: slog.New(slog.NewTextHandler(logs, nil))}, echoMux())
	rc := dialRaw(t, srv.Addr().String())
	// Declares 1 GiB; a server that allocated it would still not reply.
	rc.nc.Write([]byte{0x40, 0, 0, 0, 0, 0, 0, 2, '{', '}'})
	rc.expectClosed()
	waitFor(t, "the log line", func() bool {
		s := logs.String()
		return strings.Contains(s, "frame too large") && strings.Contains(s, rc.nc.LocalAddr().String())
	})
}

func TestMalformedHeaderClosesConn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"bad json", jsonFrame(`{"code":`, "")},
		{"header longer than frame", []byte{0, 0, 0, 8, 0, 0, 0, 9, 0, 0, 0, 0}},
		{"negative length", []byte{0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0}},
		{"bad binary", []byte{0, 0, 0, 8, 1, 0, 0, 4, 0, 0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logBuffer{}
			srv := newTestServer(t, ServerConfig{Logger: slog.New(slog.NewTextHandler(logs, nil))}, echoMux())
			rc := dialRaw(t, srv.Addr().String())
			rc.nc.Write(tc.frame)
			rc.expectClosed()
			waitFor(t, "the log line", func() bool {
				s := logs.String()
				return strings.Contains(s, "malformed frame") && strings.Contains(s, rc.nc.LocalAddr().String())
			})
		})
	}
}

// TestCloseAnswersInFlight: a held request is answered when Close cancels
// its context; a request arriving while closing is answered
// SERVICE_NOT_AVAILABLE.
func TestCloseAnswersInFlight(t *testing.T) {
	entered := make(chan struct{})
	m := NewMux()
	m.HandleFunc(PullMessage, func(ctx context.Context, c *Conn, req *Command) *Command {
		close(entered)
		<-ctx.Done()
		return NewResponse(PullNotFound, "shutting down")
	})
	srv, err := NewServer(ServerConfig{Addr: "127.0.0.1:0"}, m)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	cl := newTestClient(t, ClientConfig{})
	res := make(chan result, 1)
	go func() {
		resp, err := cl.Invoke(testCtx(t), srv.Addr().String(), NewRequest(PullMessage, nil, nil))
		res <- result{resp, err}
	}()
	<-entered
	if err := srv.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil || r.cmd.ResponseCode() != PullNotFound || r.cmd.Remark != "shutting down" {
		t.Fatalf("held request got %v, %v", r.cmd, r.err)
	}
	if err := srv.Close(testCtx(t)); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := cl.Invoke(testCtx(t), srv.Addr().String(), NewRequest(PullMessage, nil, nil)); err == nil {
		t.Fatal("invoke after Close succeeded")
	}
}

// TestCloseDeadlineFailsInFlight: a handler that ignores its context past
// Close's deadline gets its connection closed; the caller fails at once.
func TestCloseDeadlineFailsInFlight(t *testing.T) {
	entered := make(chan struct{})
	release, releaseNow := releaser(t)
	m := NewMux()
	m.HandleFunc(PullMessage, func(ctx context.Context, c *Conn, req *Command) *Command {
		close(entered)
		<-release
		return NewResponse(Success, "")
	})
	srv, err := NewServer(ServerConfig{Addr: "127.0.0.1:0"}, m)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	cl := newTestClient(t, ClientConfig{})
	res := make(chan error, 1)
	go func() {
		_, err := cl.Invoke(testCtx(t), srv.Addr().String(), NewRequest(PullMessage, nil, nil))
		res <- err
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	closeErr := make(chan error, 1)
	go func() { closeErr <- srv.Close(ctx) }()
	err = <-res // fails before the handler returns
	if !errors.Is(err, ErrConnClosed) || !strings.Contains(err.Error(), srv.Addr().String()) {
		t.Fatalf("held call failed with %v", err)
	}
	releaseNow()
	if err := <-closeErr; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close returned %v, want DeadlineExceeded", err)
	}
}

func TestClientReconnectAfterServerRestart(t *testing.T) {
	srv, err := NewServer(ServerConfig{Addr: "127.0.0.1:0"}, echoMux())
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	addr := srv.Addr().String()
	cl := newTestClient(t, ClientConfig{})
	if _, err := cl.Invoke(testCtx(t), addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	// The old connection is gone: the call fails and names the address.
	_, err = cl.Invoke(testCtx(t), addr, NewRequest(HeartBeat, nil, nil))
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("call to a stopped server: %v", err)
	}
	srv2 := newTestServer(t, ServerConfig{Addr: addr}, echoMux())
	_ = srv2
	resp, err := cl.Invoke(testCtx(t), addr, NewRequest(HeartBeat, map[string]string{"n": "x"}, nil))
	if err != nil || resp.Ext("n") != "x" {
		t.Fatalf("after restart: %v %v", resp, err)
	}
}

func TestDialErrorNamesAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cl := newTestClient(t, ClientConfig{})
	_, err = cl.Invoke(testCtx(t), addr, NewRequest(GetRouteInfoByTopic, nil, nil))
	want := "transport: dial " + addr + ": connection refused"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("%v does not match ECONNREFUSED", err)
	}
}

// TestBrokenConnFailsPending: when the connection breaks every pending call
// fails at once with an error naming the address.
func TestBrokenConnFailsPending(t *testing.T) {
	var entered atomic.Int32
	m := NewMux()
	m.HandleFunc(PullMessage, func(ctx context.Context, c *Conn, req *Command) *Command {
		entered.Add(1)
		<-ctx.Done()
		return nil
	})
	srv := newTestServer(t, ServerConfig{}, m)
	cl := newTestClient(t, ClientConfig{})
	addr := srv.Addr().String()
	const n = 5
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := cl.Invoke(context.Background(), addr, NewRequest(PullMessage, nil, nil))
			errs <- err
		}()
	}
	waitFor(t, "all pulls to be held", func() bool { return entered.Load() == n })
	for _, c := range srv.Conns() {
		c.Close()
	}
	for range n {
		err := <-errs
		if !errors.Is(err, ErrConnClosed) || !strings.Contains(err.Error(), addr) {
			t.Fatalf("pending call failed with %v", err)
		}
	}
}

func TestContextDeadline(t *testing.T) {
	release, releaseNow := releaser(t)
	m := echoMux()
	m.HandleFunc(PullMessage, func(ctx context.Context, c *Conn, req *Command) *Command {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return NewResponse(Success, "late")
	})
	srv := newTestServer(t, ServerConfig{}, m)
	cl := newTestClient(t, ClientConfig{})
	addr := srv.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := cl.Invoke(ctx, addr, NewRequest(PullMessage, nil, nil))
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("got %v", err)
	}
	// Async deadline.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel2()
	asyncErr := make(chan error, 1)
	if err := cl.InvokeAsync(ctx2, addr, NewRequest(PullMessage, nil, nil), func(resp *Command, err error) { asyncErr <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-asyncErr; !errors.Is(err, ErrTimeout) {
		t.Fatalf("async: got %v", err)
	}
	// The late replies are dropped and the connection keeps working.
	releaseNow()
	c, err := cl.Conn(testCtx(t), addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Invoke(testCtx(t), addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "no pending calls", func() bool {
		c.pmu.Lock()
		defer c.pmu.Unlock()
		return len(c.pending) == 0
	})
}

func TestInvokeAsync(t *testing.T) {
	srv := newTestServer(t, ServerConfig{}, echoMux())
	cl := newTestClient(t, ClientConfig{})
	done := make(chan *Command, 1)
	err := cl.InvokeAsync(testCtx(t), srv.Addr().String(), NewRequest(HeartBeat, map[string]string{"n": "a"}, nil), func(resp *Command, err error) {
		if err != nil {
			t.Error(err)
		}
		done <- resp
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp := <-done; resp == nil || resp.Ext("n") != "a" {
		t.Fatalf("async got %v", resp)
	}
}

func TestOversizeRequestFailsCallOnly(t *testing.T) {
	srv := newTestServer(t, ServerConfig{}, echoMux())
	cl := newTestClient(t, ClientConfig{MaxFrameSize: 1024})
	addr := srv.Addr().String()
	_, err := cl.Invoke(testCtx(t), addr, NewRequest(HeartBeat, nil, make([]byte, 2048)))
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v", err)
	}
	if _, err := cl.Invoke(testCtx(t), addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatalf("connection unusable after a rejected frame: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg   ServerConfig
		field string
	}{
		{ServerConfig{}, "Addr"},
		{ServerConfig{Addr: ":0", MaxFrameSize: -1}, "MaxFrameSize"},
		{ServerConfig{Addr: ":0", MaxFrameSize: 10}, "MaxFrameSize"},
		{ServerConfig{Addr: ":0", MaxInFlightPerConn: -1}, "MaxInFlightPerConn"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: got %v, want an error naming %s", tc.cfg, err, tc.field)
		}
	}
	if err := DefaultServerConfig(":0").Validate(); err != nil {
		t.Error(err)
	}
	if err := (ClientConfig{DialTimeout: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "DialTimeout") {
		t.Errorf("client: %v", err)
	}
	if err := DefaultClientConfig().Validate(); err != nil {
		t.Error(err)
	}
	if _, err := NewServer(ServerConfig{Addr: "256.0.0.1:1"}, NewMux()); err == nil || !strings.Contains(err.Error(), "256.0.0.1:1") {
		t.Errorf("listen error: %v", err)
	}
}

func TestClientSharesOneConnPerAddress(t *testing.T) {
	srv := newTestServer(t, ServerConfig{}, echoMux())
	cl := newTestClient(t, ClientConfig{})
	addr := srv.Addr().String()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := cl.Invoke(testCtx(t), addr, NewRequest(HeartBeat, nil, nil)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(srv.Conns()); n != 1 {
		t.Fatalf("%d connections for 32 concurrent first calls, want 1", n)
	}
}

func TestClientIdleTimeoutAndRedial(t *testing.T) {
	closed := make(chan struct{}, 2)
	srv := newTestServer(t, ServerConfig{OnConnClose: func(*Conn) { closed <- struct{}{} }}, echoMux())
	cl := newTestClient(t, ClientConfig{IdleTimeout: 50 * time.Millisecond})
	addr := srv.Addr().String()
	if _, err := cl.Invoke(testCtx(t), addr, NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	<-closed // the client dropped the idle connection
	resp, err := cl.Invoke(testCtx(t), addr, NewRequest(HeartBeat, map[string]string{"n": "again"}, nil))
	if err != nil || resp.Ext("n") != "again" {
		t.Fatalf("after idle close: %v %v", resp, err)
	}
}

func TestServeReturnsAfterClose(t *testing.T) {
	srv, err := NewServer(ServerConfig{Addr: "127.0.0.1:0"}, echoMux())
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	cl := newTestClient(t, ClientConfig{})
	if _, err := cl.Invoke(testCtx(t), srv.Addr().String(), NewRequest(HeartBeat, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve returned %v after Close", err)
	}
	if err := srv.Start(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("second client Close: %v", err)
	}
	if _, err := cl.Invoke(testCtx(t), srv.Addr().String(), NewRequest(HeartBeat, nil, nil)); !errors.Is(err, ErrClosed) {
		t.Fatalf("invoke on a closed client: %v", err)
	}
}
