package client

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/raftmq/raftmq/transport"
	rmqbody "github.com/raftmq/raftmq/transport/body"
)

// PullConsumerConfig configures a PullConsumer. Zero values take the defaults.
type PullConsumerConfig struct {
	ClientConfig
	// Group is the consumer group whose offsets Commit stores (required).
	Group string
	// ConsumeFrom (and ConsumeTimestamp) position an assigned queue that has neither a
	// Seek nor a committed offset; default ConsumeFromLast.
	ConsumeFrom      ConsumeFrom
	ConsumeTimestamp time.Time
	// MaxMessages is the most messages one pull of one queue returns; default 32.
	MaxMessages int
	// PollTimeout is how long the broker holds a Poll with nothing new; default 5 s
	// (Poll returns earlier when its ctx ends).
	PollTimeout time.Duration
}

// Pull consumer defaults.
const (
	DefaultPullMaxMessages = 32
	DefaultPollTimeout     = 5 * time.Second
)

// DefaultPullConsumerConfig returns the defaults (NameServers and Group still have to be
// set).
func DefaultPullConsumerConfig() PullConsumerConfig {
	return PullConsumerConfig{ClientConfig: DefaultClientConfig(), MaxMessages: DefaultPullMaxMessages, PollTimeout: DefaultPollTimeout}
}

// Validate reports the first invalid field.
func (c PullConsumerConfig) Validate() error {
	if err := c.ClientConfig.Validate(); err != nil {
		return err
	}
	if err := validGroup("Group", c.Group); err != nil {
		return err
	}
	if c.ConsumeFrom < ConsumeFromLast || c.ConsumeFrom > ConsumeFromTimestamp {
		return fmt.Errorf("%w: ConsumeFrom %d unknown", ErrInvalidConfig, c.ConsumeFrom)
	}
	if c.MaxMessages < 0 || c.MaxMessages > 1024 {
		return fmt.Errorf("%w: MaxMessages %d outside 0..1024", ErrInvalidConfig, c.MaxMessages)
	}
	if c.PollTimeout < 0 || c.PollTimeout > 60*time.Second {
		return fmt.Errorf("%w: PollTimeout %v outside 0..60s", ErrInvalidConfig, c.PollTimeout)
	}
	return nil
}

// PullConsumer reads assigned queues at positions the caller controls: Assign, Seek,
// Poll, Commit. Its methods are safe for concurrent use, but Poll calls are serialised.
type PullConsumer struct {
	cfg PullConsumerConfig
	c   *core

	pollMu sync.Mutex // one Poll at a time

	mu       sync.Mutex
	assigned map[MessageQueue]*subscription
	pos      map[MessageQueue]int64
	order    []MessageQueue
	next     int
}

// NewPullConsumer validates cfg and returns a consumer.
func NewPullConsumer(cfg PullConsumerConfig) (*PullConsumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxMessages == 0 {
		cfg.MaxMessages = DefaultPullMaxMessages
	}
	if cfg.PollTimeout == 0 {
		cfg.PollTimeout = DefaultPollTimeout
	}
	if cfg.ConsumeTimestamp.IsZero() {
		cfg.ConsumeTimestamp = time.Now().Add(-30 * time.Minute)
	}
	pc := &PullConsumer{cfg: cfg, assigned: map[MessageQueue]*subscription{}, pos: map[MessageQueue]int64{}}
	c, err := newCore(cfg.ClientConfig, nil)
	if err != nil {
		return nil, err
	}
	pc.c = c
	c.heartbeat = pc.heartbeatData
	c.start()
	return pc, nil
}

func (pc *PullConsumer) heartbeatData() (*rmqbody.HeartbeatData, []string) {
	pc.mu.Lock()
	subs := map[string]*subscription{}
	for mq, s := range pc.assigned {
		subs[mq.Topic] = s
	}
	pc.mu.Unlock()
	cd := rmqbody.ConsumerData{GroupName: pc.cfg.Group, ConsumeType: "CONSUME_ACTIVELY", MessageModel: "CLUSTERING",
		ConsumeFromWhere: pc.cfg.ConsumeFrom.String(), SubscriptionDataSet: []rmqbody.SubscriptionData{}}
	topics := make([]string, 0, len(subs))
	for t, s := range subs {
		cd.SubscriptionDataSet = append(cd.SubscriptionDataSet, s.data())
		topics = append(topics, t)
	}
	return &rmqbody.HeartbeatData{ClientID: pc.c.clientID, ProducerDataSet: []rmqbody.ProducerData{}, ConsumerDataSet: []rmqbody.ConsumerData{cd}},
		pc.c.brokerAddrs(topics, false)
}

// Close stops the consumer's goroutines and connections (it commits nothing). Idempotent.
func (pc *PullConsumer) Close() error {
	pc.c.close()
	return nil
}

// Queues returns topic's readable queues, sorted.
func (pc *PullConsumer) Queues(ctx context.Context, topic string) ([]MessageQueue, error) {
	rt, err := pc.c.refreshRoute(ctx, topic, time.Time{})
	if err != nil {
		return nil, err
	}
	return append([]MessageQueue(nil), rt.read...), nil
}

// Assign makes Poll read exactly queues, filtered by the tag expression expr ("*",
// "A || B"). Positions of queues assigned before are kept.
func (pc *PullConsumer) Assign(expr string, queues ...MessageQueue) error {
	subs := map[string]*subscription{}
	for _, mq := range queues {
		if subs[mq.Topic] == nil {
			s, err := parseSubscription(mq.Topic, expr)
			if err != nil {
				return err
			}
			subs[mq.Topic] = s
		}
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.assigned = map[MessageQueue]*subscription{}
	pc.order = nil
	for _, mq := range queues {
		pc.assigned[mq] = subs[mq.Topic]
		pc.order = append(pc.order, mq)
	}
	sortQueues(pc.order)
	for mq := range pc.pos {
		if pc.assigned[mq] == nil {
			delete(pc.pos, mq)
		}
	}
	return nil
}

// Seek sets mq's next offset.
func (pc *PullConsumer) Seek(mq MessageQueue, offset int64) error {
	if offset < 0 {
		return fmt.Errorf("%w: negative offset %d", ErrInvalidConfig, offset)
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.assigned[mq] == nil {
		return fmt.Errorf("%w: %s is not assigned", ErrInvalidConfig, mq)
	}
	pc.pos[mq] = offset
	return nil
}

// SeekToTime positions mq at the first message stored at or after ts.
func (pc *PullConsumer) SeekToTime(ctx context.Context, mq MessageQueue, ts time.Time) error {
	off, err := pc.c.searchOffset(ctx, mq, ts)
	if err != nil {
		return err
	}
	return pc.Seek(mq, off)
}

// Position returns mq's next offset; false when it is not known yet (no Seek, no Poll).
func (pc *PullConsumer) Position(mq MessageQueue) (int64, bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	off, ok := pc.pos[mq]
	return off, ok
}

// Committed returns the group's committed offset of mq; false when none is stored.
func (pc *PullConsumer) Committed(ctx context.Context, mq MessageQueue) (int64, bool, error) {
	if _, err := pc.c.route(ctx, mq.Topic); err != nil {
		return 0, false, err
	}
	return pc.c.queryOffset(ctx, pc.cfg.Group, mq)
}

// Commit stores the current position of every assigned queue as the group's offset.
func (pc *PullConsumer) Commit(ctx context.Context) error {
	pc.mu.Lock()
	pos := make(map[MessageQueue]int64, len(pc.pos))
	for mq, off := range pc.pos {
		pos[mq] = off
	}
	pc.mu.Unlock()
	for mq, off := range pos {
		if _, err := pc.c.route(ctx, mq.Topic); err != nil {
			return err
		}
		if err := pc.c.commitOffset(ctx, pc.cfg.Group, mq, off); err != nil {
			return err
		}
	}
	return nil
}

// position resolves mq's start: committed offset, else ConsumeFrom.
func (pc *PullConsumer) position(ctx context.Context, mq MessageQueue) (int64, error) {
	if off, ok := pc.Position(mq); ok {
		return off, nil
	}
	off, found, err := pc.c.queryOffset(ctx, pc.cfg.Group, mq)
	if err == nil && found {
		return off, nil
	}
	if err != nil {
		pc.c.log.Debug("committed offset unknown; using ConsumeFrom", "queue", mq.String(), "err", err)
	}
	switch pc.cfg.ConsumeFrom {
	case ConsumeFromFirst:
		return pc.c.minOffset(ctx, mq)
	case ConsumeFromTimestamp:
		return pc.c.searchOffset(ctx, mq, pc.cfg.ConsumeTimestamp)
	}
	return pc.c.maxOffset(ctx, mq)
}

// Poll returns the next messages of the assigned queues. It first pulls each queue without
// waiting (round robin from where the last Poll stopped) and returns as soon as one has
// messages; when none has, it long-polls all of them at once until one has messages,
// PollTimeout passes (nil, nil) or ctx ends.
func (pc *PullConsumer) Poll(ctx context.Context) ([]*MessageExt, error) {
	pc.pollMu.Lock()
	defer pc.pollMu.Unlock()
	pc.mu.Lock()
	order := append([]MessageQueue(nil), pc.order...)
	start := pc.next
	pc.mu.Unlock()
	if len(order) == 0 {
		return nil, fmt.Errorf("%w: no queue assigned", ErrNotStarted)
	}
	var lastErr error
	for i := range order {
		mq := order[(start+i)%len(order)]
		msgs, err := pc.pullOne(ctx, mq, 0)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lastErr = err
			continue
		}
		if len(msgs) > 0 {
			pc.mu.Lock()
			pc.next = (start + i + 1) % len(order)
			pc.mu.Unlock()
			return msgs, nil
		}
	}
	// Long poll every queue; the first with messages ends the others.
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type res struct {
		msgs []*MessageExt
		err  error
	}
	ch := make(chan res, len(order))
	for _, mq := range order {
		go func() {
			msgs, err := pc.pullOne(lctx, mq, pc.cfg.PollTimeout)
			ch <- res{msgs, err}
		}()
	}
	var out []*MessageExt
	for range order {
		r := <-ch
		if len(r.msgs) > 0 {
			out = append(out, r.msgs...)
			cancel()
		}
		if r.err != nil && lctx.Err() == nil {
			lastErr = r.err
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, lastErr
}

// pullOne pulls mq at its position and advances it.
func (pc *PullConsumer) pullOne(ctx context.Context, mq MessageQueue, suspend time.Duration) ([]*MessageExt, error) {
	pc.mu.Lock()
	sub := pc.assigned[mq]
	pc.mu.Unlock()
	if sub == nil {
		return nil, nil
	}
	if _, err := pc.c.route(ctx, mq.Topic); err != nil {
		return nil, err
	}
	off, err := pc.position(ctx, mq)
	if err != nil {
		return nil, err
	}
	addr := pc.c.anyAddrOf(mq.BrokerName)
	if addr == "" {
		return nil, fmt.Errorf("%w: broker group %s", ErrNoRoute, mq.BrokerName)
	}
	start := time.Now()
	r, err := pc.c.pull(ctx, addr, pc.cfg.Group, mq, off, pc.cfg.MaxMessages, sub, suspend, -1)
	if err != nil {
		if !isReply(err) && ctx.Err() == nil {
			_, _ = pc.c.refreshRoute(ctx, mq.Topic, start)
		}
		return nil, err
	}
	pc.mu.Lock()
	if pc.assigned[mq] != nil {
		if cur, ok := pc.pos[mq]; !ok || cur == off {
			pc.pos[mq] = r.next
		}
	}
	pc.mu.Unlock()
	if r.code == transport.PullOffsetMoved {
		pc.c.log.Warn("pull offset moved", "queue", mq.String(), "from", off, "to", r.next)
	}
	return r.msgs, nil
}

func isReply(err error) bool {
	var e *Error
	return asError(err, &e)
}
