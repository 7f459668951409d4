package node

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/fsm"
)

// Group commit. Handlers on the leader queue their messages; one goroutine (run) takes
// everything queued while earlier entries are in flight and proposes it as one CmdAppend
// entry, bounded by groupCommitMaxBytes; a second (complete) waits for the entries in order
// and hands each sender its results. At most MaxInFlight entries are in flight, so under load
// batches form by themselves while a lone send is proposed at once. groupCommitMaxWait > 0
// additionally lets a batch wait that long for company.

// Request states: a request can be cancelled by its sender only before it is proposed.
const (
	reqPending int32 = iota
	reqProposed
	reqCancelled
)

type sendRequest struct {
	msgs  []*commitlog.Message
	size  int
	state atomic.Int32
	done  chan sendOutcome // buffered 1
}

type sendOutcome struct {
	results []commitlog.AppendResult
	err     error
}

type inflight struct {
	future raft.ApplyFuture
	reqs   []*sendRequest
	count  int
}

type batcher struct {
	n        *Node
	queue    chan *sendRequest
	slots    chan struct{} // in-flight entries
	inflight chan inflight
	carry    *sendRequest
}

func newBatcher(n *Node) *batcher {
	return &batcher{
		n:        n,
		queue:    make(chan *sendRequest, 4096),
		slots:    make(chan struct{}, n.opts.MaxInFlight),
		inflight: make(chan inflight, n.opts.MaxInFlight),
	}
}

// submit queues msgs for group commit. The returned request's done channel delivers the
// outcome exactly once unless the caller cancels it first (cancel reports true then).
func (b *batcher) submit(msgs []*commitlog.Message) (*sendRequest, error) {
	r := &sendRequest{msgs: msgs, done: make(chan sendOutcome, 1)}
	for _, m := range msgs {
		r.size += m.EncodedSize()
	}
	select {
	case b.queue <- r:
		return r, nil
	case <-b.n.shutdownCh:
		return nil, ErrShuttingDown
	default:
		return nil, fmt.Errorf("%w: group-commit queue full", raft.ErrEnqueueTimeout)
	}
}

// cancel withdraws r if it has not been proposed yet; true means it will never be stored.
func (r *sendRequest) cancel() bool { return r.state.CompareAndSwap(reqPending, reqCancelled) }

func (b *batcher) next(block bool) *sendRequest {
	if b.carry != nil {
		r := b.carry
		b.carry = nil
		return r
	}
	if block {
		select {
		case r := <-b.queue:
			return r
		case <-b.n.shutdownCh:
			return nil
		}
	}
	select {
	case r := <-b.queue:
		return r
	default:
		return nil
	}
}

func (b *batcher) run() {
	defer close(b.inflight)
	maxBytes := b.n.cfg.GroupCommitMaxBytes
	for {
		first := b.next(true)
		if first == nil {
			b.failQueued(ErrShuttingDown)
			return
		}
		// Wait for an in-flight slot; meanwhile more requests queue up.
		select {
		case b.slots <- struct{}{}:
		case <-b.n.shutdownCh:
			b.finish(first, sendOutcome{err: ErrShuttingDown})
			b.failQueued(ErrShuttingDown)
			return
		}
		batch := make([]*sendRequest, 0, 16)
		size := 0
		add := func(r *sendRequest) bool {
			if len(batch) > 0 && size+r.size > maxBytes {
				b.carry = r
				return false
			}
			if !r.state.CompareAndSwap(reqPending, reqProposed) {
				return true // cancelled by its sender: skip
			}
			batch = append(batch, r)
			size += r.size
			return true
		}
		add(first)
		var deadline <-chan time.Time
		var timer *time.Timer
		if w := b.n.cfg.GroupCommitMaxWait; w > 0 {
			timer = time.NewTimer(w)
			deadline = timer.C
		}
	collect:
		for size < maxBytes && b.carry == nil {
			if r := b.next(false); r != nil {
				add(r)
				continue
			}
			if deadline == nil {
				break
			}
			select {
			case r := <-b.queue:
				add(r)
			case <-deadline:
				break collect
			case <-b.n.shutdownCh:
				break collect
			}
		}
		if timer != nil {
			timer.Stop()
		}
		if len(batch) == 0 {
			<-b.slots
			continue
		}
		b.propose(batch)
	}
}

func (b *batcher) propose(batch []*sendRequest) {
	n := b.n
	fail := func(err error) {
		for _, r := range batch {
			b.finish(r, sendOutcome{err: err})
		}
		<-b.slots
	}
	if err := n.serving(); err != nil {
		fail(err)
		return
	}
	if n.raft.State() != raft.Leader {
		fail(ErrNotLeader)
		return
	}
	if err := n.store.CheckWritable(); err != nil {
		fail(err)
		return
	}
	count := 0
	for _, r := range batch {
		count += len(r.msgs)
	}
	msgs := make([]*commitlog.Message, 0, count)
	for _, r := range batch {
		for _, m := range r.msgs {
			m.StoreHost = n.storeHost
			msgs = append(msgs, m)
		}
	}
	data, err := fsm.EncodeAppend(&fsm.AppendCommand{StoreTimestamp: time.Now().UnixMilli(), Messages: msgs})
	if err != nil {
		fail(fmt.Errorf("node: encode append: %w", err))
		return
	}
	f := n.raft.Apply(data, n.opts.SendTimeout)
	b.inflight <- inflight{future: f, reqs: batch, count: count}
}

// complete waits for the proposed entries in order and answers their senders.
func (b *batcher) complete() {
	for in := range b.inflight {
		err := b.wait(in.future)
		var resp *fsm.AppendResponse
		if err == nil {
			switch v := in.future.Response().(type) {
			case *fsm.AppendResponse:
				resp = v
			case error:
				err = v
			default:
				err = fmt.Errorf("node: unexpected apply response %T", v)
			}
		}
		if err == nil && (resp == nil || len(resp.Results) != in.count) {
			got := 0
			if resp != nil {
				got = len(resp.Results)
			}
			err = fmt.Errorf("node: apply returned %d results for %d messages", got, in.count)
		}
		i := 0
		for _, r := range in.reqs {
			if err != nil {
				b.finish(r, sendOutcome{err: err})
				continue
			}
			b.finish(r, sendOutcome{results: resp.Results[i : i+len(r.msgs)]})
			i += len(r.msgs)
		}
		<-b.slots
	}
}

// wait returns the future's error. raft v1.7.3 never answers a future still buffered in its
// apply or FSM channels when it shuts down, so once Raft is down the wait is abandoned (the
// waiting goroutine then stays blocked on that future: at most MaxInFlight of them, only in
// that race at shutdown).
func (b *batcher) wait(f raft.ApplyFuture) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-b.n.raftDown:
		select {
		case err := <-done:
			return err
		default:
			return raft.ErrRaftShutdown
		}
	}
}

func (b *batcher) finish(r *sendRequest, o sendOutcome) {
	r.state.CompareAndSwap(reqPending, reqProposed)
	select {
	case r.done <- o:
	default:
	}
}

func (b *batcher) failQueued(err error) {
	if b.carry != nil {
		b.finish(b.carry, sendOutcome{err: err})
		b.carry = nil
	}
	for {
		select {
		case r := <-b.queue:
			b.finish(r, sendOutcome{err: err})
		default:
			return
		}
	}
}

// isNotStored reports whether err certainly means nothing was stored.
func isNotStored(err error) bool {
	return errors.Is(err, ErrNotStored) || errors.Is(err, raft.ErrEnqueueTimeout) || errors.Is(err, ErrNotLeader) ||
		errors.Is(err, commitlog.ErrDiskFull)
}
