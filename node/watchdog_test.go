package node

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/raftmq/raftmq/internal/raftlog"
	"github.com/raftmq/raftmq/transport"
)

// gatedStore is a raftLogStore whose write calls announce themselves on entered and then wait
// for their operation's gate to close (a nil gate: no wait).
type gatedStore struct {
	raft.LogStore
	entered chan logOp
	gates   map[logOp]chan struct{}
	syncs   atomic.Int64
}

func newGatedStore(ops ...logOp) *gatedStore {
	s := &gatedStore{LogStore: raft.NewInmemStore(), entered: make(chan logOp, 64), gates: map[logOp]chan struct{}{}}
	for _, op := range ops {
		s.gates[op] = make(chan struct{})
	}
	return s
}

func (s *gatedStore) wait(op logOp) {
	if g := s.gates[op]; g != nil {
		s.entered <- op
		<-g
	}
}

func (s *gatedStore) StoreLogs(logs []*raft.Log) error {
	s.wait(opStoreLogs)
	return s.LogStore.StoreLogs(logs)
}

func (s *gatedStore) DeleteRange(lo, hi uint64) error {
	s.wait(opDeleteRange)
	return s.LogStore.DeleteRange(lo, hi)
}

func (s *gatedStore) Sync() error {
	s.wait(opSync)
	s.syncs.Add(1)
	return nil
}

func (s *gatedStore) Close() error { return nil }

func oldestOp(t *testing.T, w *watchedLogStore) (logOp, int64) {
	t.Helper()
	v, ok := w.oldest()
	if !ok {
		return 0, 0
	}
	op, age := w.describe(v)
	if age < 0 {
		t.Fatalf("negative age %v", age)
	}
	return op, v
}

// TestWatchedLogStore_OldestInProgress: with several writes in progress at once the watchdog
// sees the oldest; when it returns, the next oldest; when all have returned, nothing.
func TestWatchedLogStore_OldestInProgress(t *testing.T) {
	s := newGatedStore(opStoreLogs, opDeleteRange, opSync)
	w := newWatchedLogStore(s, nil)
	if _, ok := w.oldest(); ok {
		t.Fatal("idle store reports a write in progress")
	}
	var wg sync.WaitGroup
	start := func(op logOp, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				t.Errorf("%s: %v", op, err)
			}
		}()
		if got := <-s.entered; got != op {
			t.Fatalf("entered %s, want %s", got, op)
		}
	}
	start(opStoreLogs, func() error { return w.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Data: []byte("x")}}) })
	op, first := oldestOp(t, w)
	if op != opStoreLogs {
		t.Fatalf("oldest = %s, want StoreLogs", op)
	}
	time.Sleep(2 * time.Millisecond) // distinct start times whatever the clock's resolution
	start(opDeleteRange, func() error { return w.DeleteRange(1, 1) })
	time.Sleep(2 * time.Millisecond)
	start(opSync, w.Sync)
	if op, v := oldestOp(t, w); op != opStoreLogs || v != first {
		t.Fatalf("oldest = %s, want the first StoreLogs", op)
	}
	time.Sleep(10 * time.Millisecond)
	if _, age := w.describe(first); age < 10*time.Millisecond {
		t.Fatalf("StoreLogs in progress for %v, want at least 10ms", age)
	}

	close(s.gates[opStoreLogs])
	waitFor(t, func() bool { return !w.inProgress(first) })
	if op, _ := oldestOp(t, w); op != opDeleteRange {
		t.Fatalf("after StoreLogs returned, oldest = %s, want DeleteRange", op)
	}
	close(s.gates[opDeleteRange])
	waitFor(t, func() bool { op, _ := oldestOp(t, w); return op == opSync })
	close(s.gates[opSync])
	wg.Wait()
	if v, ok := w.oldest(); ok {
		op, _ := w.describe(v)
		t.Fatalf("all writes returned, but %s reported in progress", op)
	}
	var l raft.Log
	if err := w.GetLog(1, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog after DeleteRange(1,1): %v", err)
	}
	if s.syncs.Load() != 1 {
		t.Fatalf("Sync reached the store %d times", s.syncs.Load())
	}
}

// TestWatchedLogStore_AppendStalled: only a StoreLogs in progress for at least d counts (it
// decides whether a SYNC_MASTER may answer FLUSH_SLAVE_TIMEOUT, "stored on the master").
func TestWatchedLogStore_AppendStalled(t *testing.T) {
	s := newGatedStore(opStoreLogs, opSync)
	w := newWatchedLogStore(s, nil)
	if w.appendStalled(0) {
		t.Fatal("idle store reports a stalled append")
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = w.Sync() }()
	<-s.entered
	time.Sleep(20 * time.Millisecond)
	if w.appendStalled(10 * time.Millisecond) {
		t.Fatal("a Sync in progress counts as a stalled append")
	}
	go func() { defer wg.Done(); _ = w.StoreLogs([]*raft.Log{{Index: 1, Term: 1}}) }()
	<-s.entered
	if w.appendStalled(time.Hour) {
		t.Fatal("a just-started append counts as stalled for an hour")
	}
	time.Sleep(20 * time.Millisecond)
	if !w.appendStalled(10 * time.Millisecond) {
		t.Fatal("a StoreLogs in progress for 20ms is not stalled for 10ms")
	}
	close(s.gates[opStoreLogs])
	close(s.gates[opSync])
	wg.Wait()
	if w.appendStalled(0) {
		t.Fatal("returned append still reported")
	}
}

// TestWatchedLogStore_MoreCallsThanSlots: calls beyond the slots pass through untracked and the
// oldest is still reported.
func TestWatchedLogStore_MoreCallsThanSlots(t *testing.T) {
	s := newGatedStore(opStoreLogs)
	w := newWatchedLogStore(s, nil)
	var wg sync.WaitGroup
	const calls = watchSlots + 4
	var first int64
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.StoreLogs([]*raft.Log{{Index: uint64(i + 1), Term: 1}}); err != nil {
				t.Error(err)
			}
		}()
		<-s.entered
		if i == 0 {
			_, first = oldestOp(t, w)
		}
	}
	if _, v := oldestOp(t, w); v != first {
		t.Fatal("the oldest call is not the first one")
	}
	close(s.gates[opStoreLogs])
	wg.Wait()
	if _, ok := w.oldest(); ok {
		t.Fatal("calls returned but one is still reported in progress")
	}
}

// TestWatchedLogStore_Concurrent hammers the slots from many goroutines while the watchdog
// reads them (run with -race): every call is passed through, none stays recorded.
func TestWatchedLogStore_Concurrent(t *testing.T) {
	s := newGatedStore() // no gates: nothing blocks
	w := newWatchedLogStore(s, nil)
	stop := make(chan struct{})
	var reads atomic.Int64
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if v, ok := w.oldest(); ok {
				if op, _ := w.describe(v); op < opStoreLogs || op > opSync {
					t.Errorf("bad op %d in slot value %x", op, v)
					return
				}
			}
			reads.Add(1)
		}
	}()
	var wg sync.WaitGroup
	const workers, perWorker = 16, 500
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range perWorker {
				var err error
				switch k % 3 {
				case 0:
					err = w.StoreLogs([]*raft.Log{{Index: uint64(g*perWorker + k + 1), Term: 1}})
				case 1:
					err = w.StoreLog(&raft.Log{Index: uint64(g*perWorker + k + 1), Term: 1})
				default:
					err = w.Sync()
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	rwg.Wait()
	if _, ok := w.oldest(); ok {
		t.Fatal("all calls returned but one is still recorded")
	}
	if got, want := s.syncs.Load(), int64(workers*(perWorker/3)); got != want {
		t.Fatalf("%d Syncs reached the store, want %d", got, want)
	}
	t.Logf("%d watchdog reads during %d calls", reads.Load(), workers*perWorker)
}

// TestWatchedLogStore_PassThrough: the real stores behind the wrapper (and the LogCache) work
// as before, IsMonotonic is the store's, and the test hook sees the LogStore calls only.
func TestWatchedLogStore_PassThrough(t *testing.T) {
	wal, err := raftlog.Open(filepath.Join(t.TempDir(), "wal"), raftlog.Options{NoSync: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(t.TempDir(), "raft.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		store     raftLogStore
		monotonic bool
	}{{"wal", wal, true}, {"boltdb", bolt, false}} {
		t.Run(tc.name, func(t *testing.T) {
			var hooked atomic.Int64
			w := newWatchedLogStore(tc.store, func(s raft.LogStore) raft.LogStore {
				return &countingStore{LogStore: s, n: &hooked}
			})
			cache, err := raft.NewLogCache(4, w)
			if err != nil {
				t.Fatal(err)
			}
			if cache.IsMonotonic() != tc.monotonic {
				t.Fatalf("LogCache.IsMonotonic = %v, want %v", cache.IsMonotonic(), tc.monotonic)
			}
			var logs []*raft.Log
			for i := uint64(1); i <= 10; i++ {
				logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte(fmt.Sprint("entry-", i))})
			}
			if err := cache.StoreLogs(logs[:9]); err != nil {
				t.Fatal(err)
			}
			if err := w.StoreLog(logs[9]); err != nil {
				t.Fatal(err)
			}
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := cache.DeleteRange(1, 3); err != nil {
				t.Fatal(err)
			}
			first, _ := w.FirstIndex()
			last, _ := w.LastIndex()
			if first != 4 || last != 10 {
				t.Fatalf("first, last = %d, %d, want 4, 10", first, last)
			}
			var l raft.Log
			if err := w.GetLog(7, &l); err != nil || !bytes.Equal(l.Data, []byte("entry-7")) {
				t.Fatalf("GetLog(7) = %q, %v", l.Data, err)
			}
			if got := hooked.Load(); got != 3 { // StoreLogs, StoreLog, DeleteRange; not Sync
				t.Fatalf("the hook saw %d write calls, want 3", got)
			}
			if _, ok := w.oldest(); ok {
				t.Fatal("idle store reports a write in progress")
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

type countingStore struct {
	raft.LogStore
	n *atomic.Int64
}

func (s *countingStore) StoreLog(l *raft.Log) error     { s.n.Add(1); return s.LogStore.StoreLog(l) }
func (s *countingStore) StoreLogs(ls []*raft.Log) error { s.n.Add(1); return s.LogStore.StoreLogs(ls) }
func (s *countingStore) DeleteRange(lo, hi uint64) error {
	s.n.Add(1)
	return s.LogStore.DeleteRange(lo, hi)
}

// TestStallDetector: only a write in progress beyond the limit at two consecutive checks fires;
// slow writes that return, however many, never do.
func TestStallDetector(t *testing.T) {
	const limit = time.Second
	d := stallDetector{limit: limit}
	const a, b int64 = 0x18, 0x29
	steps := []struct {
		v    int64
		ok   bool
		age  time.Duration
		fire bool
	}{
		{a, true, 500 * time.Millisecond, false},
		{a, true, 900 * time.Millisecond, false},
		{0, false, 0, false},                       // returned just under the limit
		{b, true, 1100 * time.Millisecond, false},  // beyond: first look
		{0, false, 0, false},                       // returned: forgotten
		{b, true, 2 * time.Second, false},          // (same value again) first look once more
		{a, true, 1500 * time.Millisecond, false},  // another call: first look at it
		{a, true, limit, false},                    // not beyond the limit
		{a, true, 1600 * time.Millisecond, false},  // first look again
		{a, true, 2600 * time.Millisecond, true},   // second look: stalled
		{b, true, 10 * time.Millisecond, false},    // a fresh call
		{b, true, limit + time.Nanosecond, false},  // beyond: first look
		{b, true, limit + 2*time.Nanosecond, true}, // second look: stalled
	}
	for i, s := range steps {
		if got := d.check(s.v, s.ok, s.age); got != s.fire {
			t.Fatalf("step %d (%x, %v, %v): fire = %v, want %v", i, s.v, s.ok, s.age, got, s.fire)
		}
	}
	// A steady stream of writes each a little under the limit.
	d = stallDetector{limit: limit}
	for i := range 1000 {
		v := int64(i+1)<<opBits | int64(opStoreLogs)
		for _, age := range []time.Duration{300 * time.Millisecond, 600 * time.Millisecond, 999 * time.Millisecond} {
			if d.check(v, true, age) {
				t.Fatalf("write %d fired at %v", i, age)
			}
		}
	}
}

// TestFencingTransport: RPCs pass until the fence, then every outgoing RPC fails, on new and
// existing pipelines; pre-vote is offered exactly when the wrapped transport has it.
func TestFencingTransport(t *testing.T) {
	_, a := raft.NewInmemTransport("a")
	_, b := raft.NewInmemTransport("b")
	defer a.Close()
	defer b.Close()
	a.Connect("b", b)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // b answers everything
		defer wg.Done()
		for {
			select {
			case rpc := <-b.Consumer():
				switch rpc.Command.(type) {
				case *raft.AppendEntriesRequest:
					rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
				case *raft.RequestVoteRequest:
					rpc.Respond(&raft.RequestVoteResponse{}, nil)
				case *raft.RequestPreVoteRequest:
					rpc.Respond(&raft.RequestPreVoteResponse{}, nil)
				case *raft.TimeoutNowRequest:
					rpc.Respond(&raft.TimeoutNowResponse{}, nil)
				default:
					rpc.Respond(nil, errors.New("unexpected"))
				}
			case <-done:
				return
			}
		}
	}()
	defer wg.Wait()
	defer close(done)

	shutdown := make(chan struct{})
	rt, f := newFencingTransport(a, shutdown)
	pv, ok := rt.(raft.WithPreVote)
	if !ok {
		t.Fatal("the wrapper of a pre-vote transport does not offer pre-vote")
	}
	if _, ok := rt.(raft.WithClose); !ok {
		t.Fatal("the wrapper has no Close for raft's shutdown")
	}
	calls := map[string]func() error{
		"AppendEntries": func() error {
			return rt.AppendEntries("b", "b", &raft.AppendEntriesRequest{}, &raft.AppendEntriesResponse{})
		},
		"RequestVote": func() error {
			return rt.RequestVote("b", "b", &raft.RequestVoteRequest{}, &raft.RequestVoteResponse{})
		},
		"RequestPreVote": func() error {
			return pv.RequestPreVote("b", "b", &raft.RequestPreVoteRequest{}, &raft.RequestPreVoteResponse{})
		},
		"TimeoutNow": func() error {
			return rt.TimeoutNow("b", "b", &raft.TimeoutNowRequest{}, &raft.TimeoutNowResponse{})
		},
	}
	for name, call := range calls {
		if err := call(); err != nil {
			t.Fatalf("%s before the fence: %v", name, err)
		}
	}
	pipe, err := rt.AppendEntriesPipeline("b", "b")
	if err != nil {
		t.Fatal(err)
	}
	defer pipe.Close()
	f.fence()
	// A fenced RPC waits fencedRPCDelay (throttling raft's retries), or until the node shuts down.
	f.delay = 50 * time.Millisecond
	began := time.Now()
	if err := calls["AppendEntries"](); !errors.Is(err, errTransportFenced) || time.Since(began) < f.delay {
		t.Fatalf("fenced AppendEntries: %v after %v, want errTransportFenced after %v", err, time.Since(began), f.delay)
	}
	f.delay = time.Hour
	close(shutdown)
	for name, call := range calls {
		if err := call(); !errors.Is(err, errTransportFenced) {
			t.Fatalf("%s after the fence: %v", name, err)
		}
	}
	if err := rt.InstallSnapshot("b", "b", &raft.InstallSnapshotRequest{}, &raft.InstallSnapshotResponse{}, bytes.NewReader(nil)); !errors.Is(err, errTransportFenced) {
		t.Fatalf("InstallSnapshot after the fence: %v", err)
	}
	if _, err := rt.AppendEntriesPipeline("b", "b"); !errors.Is(err, errTransportFenced) {
		t.Fatalf("new pipeline after the fence: %v", err)
	}
	if _, err := pipe.AppendEntries(&raft.AppendEntriesRequest{}, &raft.AppendEntriesResponse{}); !errors.Is(err, errTransportFenced) {
		t.Fatalf("append on an earlier pipeline after the fence: %v", err)
	}

	// A transport without pre-vote stays without it.
	rt2, _ := newFencingTransport(struct{ raft.Transport }{a}, shutdown)
	if _, ok := rt2.(raft.WithPreVote); ok {
		t.Fatal("the wrapper offers pre-vote its transport lacks")
	}
}

// TestFenceError: a fenced node's error names the stalled operation and maps to
// SERVICE_NOT_AVAILABLE (nothing stored: the client retries elsewhere).
func TestFenceError(t *testing.T) {
	n := &Node{cfg: Config{RaftLogStallTimeout: 1500 * time.Millisecond}, log: slog.New(slog.DiscardHandler), shutdownCh: make(chan struct{})}
	if n.Fenced() != nil || n.serving() != nil {
		t.Fatal("fenced before the fence")
	}
	n.fenceLogStall(opStoreLogs, 1600*time.Millisecond)
	err := n.serving()
	if !errors.Is(err, ErrFenced) || !errors.Is(err, ErrShuttingDown) || n.Fenced() != err {
		t.Fatalf("serving() = %v, Fenced() = %v", err, n.Fenced())
	}
	for _, want := range []string{"StoreLogs", "1.6s", "raftLogStallTimeout 1.5s", "restart"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if got := codeFor(err); got != transport.ServiceNotAvailable {
		t.Fatalf("code %v, want SERVICE_NOT_AVAILABLE", got)
	}
	if n.IsLeader() || n.LeaderReady() {
		t.Fatal("a fenced node reports itself leader")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// nopLogStore is the cheapest possible store: what is left is the wrapper's own cost.
type nopLogStore struct{ raft.LogStore }

func (nopLogStore) StoreLogs([]*raft.Log) error { return nil }
func (nopLogStore) Sync() error                 { return nil }
func (nopLogStore) Close() error                { return nil }

// BenchmarkWatchedLogStore: the watchdog's cost per write, alone (nop store: direct vs watched)
// and next to a real write (the WAL without fsync, 4 KiB entries: its cheapest StoreLogs).
func BenchmarkWatchedLogStore(b *testing.B) {
	logs := []*raft.Log{{Index: 1, Term: 1}}
	b.Run("nop/direct", func(b *testing.B) {
		var s raftLogStore = nopLogStore{}
		for b.Loop() {
			_ = s.StoreLogs(logs)
		}
	})
	b.Run("nop/watched", func(b *testing.B) {
		var s raftLogStore = newWatchedLogStore(nopLogStore{}, nil)
		for b.Loop() {
			_ = s.StoreLogs(logs)
		}
	})
	b.Run("nop/watched-parallel", func(b *testing.B) {
		var s raftLogStore = newWatchedLogStore(nopLogStore{}, nil)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = s.StoreLogs(logs)
			}
		})
	})
	data := bytes.Repeat([]byte("x"), 4096)
	for _, watched := range []bool{false, true} {
		name := "wal-nosync/direct"
		if watched {
			name = "wal-nosync/watched"
		}
		b.Run(name, func(b *testing.B) {
			wal, err := raftlog.Open(filepath.Join(b.TempDir(), "wal"), raftlog.Options{NoSync: true, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			var s raftLogStore = wal
			if watched {
				s = newWatchedLogStore(wal, nil)
			}
			defer s.Close()
			b.SetBytes(int64(len(data)))
			idx := uint64(0)
			for b.Loop() {
				idx++
				if err := s.StoreLogs([]*raft.Log{{Index: idx, Term: 1, Type: raft.LogCommand, Data: data}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
