package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftmq/raftmq/transport"
	rmqbody "github.com/raftmq/raftmq/transport/body"
)

// MessageModel is how a group shares messages.
type MessageModel int

// Message models.
const (
	// Clustering: each message goes to one member of the group; queues are split among the
	// members and offsets are kept on the brokers.
	Clustering MessageModel = iota
	// Broadcasting: every member gets every message; offsets are kept in a local file.
	Broadcasting
)

func (m MessageModel) String() string {
	if m == Broadcasting {
		return "BROADCASTING"
	}
	return "CLUSTERING"
}

// ConsumeFrom is where a group starts on a queue it has no committed offset for.
type ConsumeFrom int

// Start positions.
const (
	ConsumeFromLast      ConsumeFrom = iota // the queue's end (only new messages)
	ConsumeFromFirst                        // the queue's first available message
	ConsumeFromTimestamp                    // the first message stored at or after ConsumeTimestamp
)

func (f ConsumeFrom) String() string {
	switch f {
	case ConsumeFromFirst:
		return "CONSUME_FROM_FIRST_OFFSET"
	case ConsumeFromTimestamp:
		return "CONSUME_FROM_TIMESTAMP"
	}
	return "CONSUME_FROM_LAST_OFFSET"
}

// ConsumeResult is a concurrent listener's verdict.
type ConsumeResult int

// Consume results.
const (
	ConsumeSuccess    ConsumeResult = iota
	ConsumeRetryLater               // send every message back for redelivery after a growing delay
)

// OrderlyResult is an orderly listener's verdict.
type OrderlyResult int

// Orderly results.
const (
	OrderlySuccess OrderlyResult = iota
	// OrderlySuspend retries the same messages on this queue after SuspendInterval; after
	// MaxReconsumeTimes they go to the dead-letter queue.
	OrderlySuspend
)

// MessageListener consumes messages concurrently: several calls may run at once, for
// messages of one queue or of different queues.
type MessageListener func(ctx context.Context, msgs []*MessageExt) ConsumeResult

// OrderlyListener consumes the messages of one queue in queue order, one call at a time per
// queue; in clustering mode only while the consumer holds the broker's lock of the queue.
type OrderlyListener func(ctx context.Context, msgs []*MessageExt) OrderlyResult

// PushConsumerConfig configures a PushConsumer. Zero values take the defaults.
type PushConsumerConfig struct {
	ClientConfig
	// Group is the consumer group (required).
	Group string
	// Model is Clustering (default) or Broadcasting.
	Model MessageModel
	// ConsumeFrom and ConsumeTimestamp (default 30 minutes ago) say where a group without a
	// committed offset starts. The broker has the first say: while a queue's first message
	// is still stored it reports offset 0 for a new group (RocketMQ's rule), so a new group
	// reads a young queue from its start; ConsumeFrom applies when the broker answers
	// QUERY_NOT_FOUND (old messages deleted).
	ConsumeFrom      ConsumeFrom
	ConsumeTimestamp time.Time
	// Listener or OrderlyListener (exactly one) receives the messages.
	Listener        MessageListener
	OrderlyListener OrderlyListener
	// Concurrency is the number of goroutines running Listener; default 20.
	Concurrency int
	// ConsumeBatchSize is the most messages per listener call; default 1.
	ConsumeBatchSize int
	// PullBatchSize is the most messages per pull; default 32.
	PullBatchSize int
	// PullThresholdPerQueue and PullThresholdSizePerQueue bound the messages (default 1000)
	// and body bytes (default 100 MiB) pulled but not yet consumed per queue; pulling
	// pauses while a queue is above either.
	PullThresholdPerQueue     int
	PullThresholdSizePerQueue int
	// MaxReconsumeTimes is how often a failed message is redelivered before it goes to the
	// dead-letter queue %DLQ%<group>; default 16.
	MaxReconsumeTimes int
	// SuspendInterval is an orderly queue's pause after OrderlySuspend; default 1 s.
	SuspendInterval time.Duration
	// RebalanceInterval (default 20 s): queues are reassigned this often and at once when
	// the broker says the group changed.
	RebalanceInterval time.Duration
	// OffsetCommitInterval (default 5 s): offsets are committed this often and at Close.
	OffsetCommitInterval time.Duration
	// LongPollTimeout is how long the broker holds a pull with nothing new; default 20 s.
	LongPollTimeout time.Duration
	// LockRenewInterval is how often an orderly clustering consumer renews its queue locks;
	// default 20 s (the broker expires them after 60 s).
	LockRenewInterval time.Duration
	// OffsetStoreDir holds broadcasting offsets; default ~/.raftmq_offsets.
	OffsetStoreDir string
}

// Push consumer defaults.
const (
	DefaultConcurrency               = 20
	DefaultConsumeBatchSize          = 1
	DefaultPullBatchSize             = 32
	DefaultPullThresholdPerQueue     = 1000
	DefaultPullThresholdSizePerQueue = 100 << 20
	DefaultMaxReconsumeTimes         = 16
	DefaultSuspendInterval           = time.Second
	DefaultRebalanceInterval         = 20 * time.Second
	DefaultOffsetCommitInterval      = 5 * time.Second
	DefaultLongPollTimeout           = 20 * time.Second
	DefaultLockRenewInterval         = 20 * time.Second
)

// DefaultPushConsumerConfig returns the defaults (NameServers, Group and a listener still
// have to be set).
func DefaultPushConsumerConfig() PushConsumerConfig {
	return PushConsumerConfig{ClientConfig: DefaultClientConfig()}.withDefaults()
}

// Validate reports the first invalid field.
func (c PushConsumerConfig) Validate() error {
	if err := c.ClientConfig.Validate(); err != nil {
		return err
	}
	if err := validGroup("Group", c.Group); err != nil {
		return err
	}
	if (c.Listener == nil) == (c.OrderlyListener == nil) {
		return fmt.Errorf("%w: set exactly one of Listener and OrderlyListener", ErrInvalidConfig)
	}
	if c.Model != Clustering && c.Model != Broadcasting {
		return fmt.Errorf("%w: Model %d unknown", ErrInvalidConfig, c.Model)
	}
	if c.ConsumeFrom < ConsumeFromLast || c.ConsumeFrom > ConsumeFromTimestamp {
		return fmt.Errorf("%w: ConsumeFrom %d unknown", ErrInvalidConfig, c.ConsumeFrom)
	}
	for _, f := range []struct {
		name    string
		v, l, h int
	}{
		{"Concurrency", c.Concurrency, 0, 1000},
		{"ConsumeBatchSize", c.ConsumeBatchSize, 0, 1024},
		{"PullBatchSize", c.PullBatchSize, 0, 1024},
		{"PullThresholdPerQueue", c.PullThresholdPerQueue, 0, 1 << 20},
		{"PullThresholdSizePerQueue", c.PullThresholdSizePerQueue, 0, 1 << 30},
		{"MaxReconsumeTimes", c.MaxReconsumeTimes, 0, 16},
	} {
		if f.v < f.l || f.v > f.h {
			return fmt.Errorf("%w: %s %d outside %d..%d (0 means the default)", ErrInvalidConfig, f.name, f.v, f.l, f.h)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"SuspendInterval", c.SuspendInterval}, {"RebalanceInterval", c.RebalanceInterval},
		{"OffsetCommitInterval", c.OffsetCommitInterval}, {"LongPollTimeout", c.LongPollTimeout},
		{"LockRenewInterval", c.LockRenewInterval},
	} {
		if d.v < 0 || d.v > 0 && d.v < 10*time.Millisecond {
			return fmt.Errorf("%w: %s %v below 10ms (0 means the default)", ErrInvalidConfig, d.name, d.v)
		}
	}
	if c.LongPollTimeout > 60*time.Second {
		return fmt.Errorf("%w: LongPollTimeout %v above 60s", ErrInvalidConfig, c.LongPollTimeout)
	}
	return nil
}

func (c PushConsumerConfig) withDefaults() PushConsumerConfig {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Concurrency, DefaultConcurrency)
	def(&c.ConsumeBatchSize, DefaultConsumeBatchSize)
	def(&c.PullBatchSize, DefaultPullBatchSize)
	def(&c.PullThresholdPerQueue, DefaultPullThresholdPerQueue)
	def(&c.PullThresholdSizePerQueue, DefaultPullThresholdSizePerQueue)
	def(&c.MaxReconsumeTimes, DefaultMaxReconsumeTimes)
	defD(&c.SuspendInterval, DefaultSuspendInterval)
	defD(&c.RebalanceInterval, DefaultRebalanceInterval)
	defD(&c.OffsetCommitInterval, DefaultOffsetCommitInterval)
	defD(&c.LongPollTimeout, DefaultLongPollTimeout)
	defD(&c.LockRenewInterval, DefaultLockRenewInterval)
	if c.ConsumeTimestamp.IsZero() {
		c.ConsumeTimestamp = time.Now().Add(-30 * time.Minute)
	}
	return c
}

// PushConsumer pulls the queues assigned to it and hands their messages to a listener.
// Subscribe before Start; Close stops everything and commits the offsets.
type PushConsumer struct {
	cfg     PushConsumerConfig
	c       *core
	offsets offsetStore

	subMu sync.Mutex
	subs  map[string]*subscription

	mu  sync.Mutex
	pqs map[MessageQueue]*processQueue

	rebalanceNow chan struct{}
	work         workQueue
	started      atomic.Bool
	closeOnce    sync.Once
	rebalances   atomic.Int64
}

// NewPushConsumer validates cfg and returns a consumer; call Subscribe and Start.
func NewPushConsumer(cfg PushConsumerConfig) (*PushConsumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	pc := &PushConsumer{cfg: cfg, subs: map[string]*subscription{}, pqs: map[MessageQueue]*processQueue{},
		rebalanceNow: make(chan struct{}, 1), work: workQueue{signal: make(chan struct{}, 1)}}
	c, err := newCore(cfg.ClientConfig, transport.HandlerFunc(pc.serve))
	if err != nil {
		return nil, err
	}
	pc.c = c
	c.heartbeat = pc.heartbeatData
	if cfg.Model == Broadcasting {
		lo, err := openLocalOffsets(cfg.OffsetStoreDir, c.clientID, cfg.Group, c.log.Warn)
		if err != nil {
			c.close()
			return nil, err
		}
		pc.offsets = lo
	} else {
		pc.offsets = &remoteOffsets{c: c, group: cfg.Group, table: map[MessageQueue]int64{}}
	}
	return pc, nil
}

// ClientID returns the consumer's client id ("ip@instance").
func (pc *PushConsumer) ClientID() string { return pc.c.clientID }

func retryTopic(group string) string { return "%RETRY%" + group }

// Subscribe adds topic with a tag expression ("*", "TagA", "TagA || TagB"). Call it before
// Start.
func (pc *PushConsumer) Subscribe(topic, expr string) error {
	if pc.started.Load() {
		return fmt.Errorf("%w: Subscribe after Start", ErrInvalidConfig)
	}
	if err := validGroup("topic", topic); err != nil || len(topic) > 127 {
		return fmt.Errorf("%w: topic %q", ErrInvalidConfig, topic)
	}
	s, err := parseSubscription(topic, expr)
	if err != nil {
		return err
	}
	pc.subMu.Lock()
	pc.subs[topic] = s
	pc.subMu.Unlock()
	return nil
}

func (pc *PushConsumer) subscriptions() []*subscription {
	pc.subMu.Lock()
	defer pc.subMu.Unlock()
	out := make([]*subscription, 0, len(pc.subs))
	for _, s := range pc.subs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out
}

func (pc *PushConsumer) subscriptionOf(topic string) *subscription {
	pc.subMu.Lock()
	defer pc.subMu.Unlock()
	return pc.subs[topic]
}

// Start fetches the routes of the subscribed topics (a topic without a route is an error),
// registers with the brokers, takes its queues and starts consuming.
func (pc *PushConsumer) Start(ctx context.Context) error {
	if pc.c.closed.Load() {
		return ErrClosed
	}
	if !pc.started.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: Start called twice", ErrInvalidConfig)
	}
	subs := pc.subscriptions()
	if len(subs) == 0 {
		return fmt.Errorf("%w: no subscription; call Subscribe before Start", ErrInvalidConfig)
	}
	for _, s := range subs {
		if _, err := pc.c.route(ctx, s.Topic); err != nil {
			return fmt.Errorf("client: start consumer %s: route of %s: %w", pc.cfg.Group, s.Topic, err)
		}
	}
	if pc.cfg.Model == Clustering {
		rs, _ := parseSubscription(retryTopic(pc.cfg.Group), "*")
		pc.subMu.Lock()
		pc.subs[rs.Topic] = rs
		pc.subMu.Unlock()
	}
	pc.c.sendHeartbeats(ctx)
	if pc.cfg.Model == Clustering {
		// The retry topic exists once a broker has seen the heartbeat.
		_, _ = pc.c.route(ctx, retryTopic(pc.cfg.Group))
	}
	pc.c.start()
	for range pc.cfg.Concurrency {
		pc.c.goFunc(pc.consumeWorker)
	}
	pc.rebalance(ctx)
	pc.c.goFunc(pc.rebalanceLoop)
	pc.c.goFunc(pc.commitLoop)
	return nil
}

// Close stops pulling and consuming, commits the offsets, releases orderly locks and closes
// every connection. Listener calls in progress finish first. Idempotent.
func (pc *PushConsumer) Close() error {
	pc.closeOnce.Do(func() {
		// Cancelling the base context ends every queue's context, including those of queues a
		// rebalance running right now may still add; then the loops stop (listener calls in
		// progress finish first).
		pc.c.cancel()
		close(pc.c.closing)
		pc.c.wg.Wait()
		// Save progress over the still-open connections.
		mqs := pc.Assigned()
		ctx, cancel := context.WithTimeout(context.Background(), 2*pc.c.cfg.RequestTimeout)
		if pc.started.Load() {
			pc.offsets.persist(ctx, mqs)
			if pc.cfg.OrderlyListener != nil && pc.cfg.Model == Clustering {
				pc.unlock(ctx, mqs)
			}
		}
		cancel()
		pc.c.closed.Store(true)
		_ = pc.c.tc.Close()
	})
	return nil
}

// Assigned returns the queues this consumer holds now, sorted.
func (pc *PushConsumer) Assigned() []MessageQueue {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	out := make([]MessageQueue, 0, len(pc.pqs))
	for mq := range pc.pqs {
		out = append(out, mq)
	}
	sortQueues(out)
	return out
}

// held returns the messages held in memory and the flow-control pauses of mq (tests).
func (pc *PushConsumer) held(mq MessageQueue) (msgs int, pauses int64) {
	pc.mu.Lock()
	pq := pc.pqs[mq]
	pc.mu.Unlock()
	if pq == nil {
		return 0, 0
	}
	pq.mu.Lock()
	defer pq.mu.Unlock()
	return len(pq.msgs), pq.pauses.Load()
}

// positioned counts the held queues of topic whose start offset is known (tests).
func (pc *PushConsumer) positioned(topic string) int {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	n := 0
	for mq, pq := range pc.pqs {
		if mq.Topic == topic && pq.positioned.Load() {
			n++
		}
	}
	return n
}

func (pc *PushConsumer) heartbeatData() (*rmqbody.HeartbeatData, []string) {
	subs := pc.subscriptions()
	cd := rmqbody.ConsumerData{
		GroupName: pc.cfg.Group, ConsumeType: "CONSUME_PASSIVELY", MessageModel: pc.cfg.Model.String(),
		ConsumeFromWhere: pc.cfg.ConsumeFrom.String(), SubscriptionDataSet: []rmqbody.SubscriptionData{},
	}
	topics := make([]string, 0, len(subs))
	for _, s := range subs {
		cd.SubscriptionDataSet = append(cd.SubscriptionDataSet, s.data())
		topics = append(topics, s.Topic)
	}
	return &rmqbody.HeartbeatData{ClientID: pc.c.clientID, ProducerDataSet: []rmqbody.ProducerData{}, ConsumerDataSet: []rmqbody.ConsumerData{cd}},
		pc.c.brokerAddrs(topics, false)
}

// serve handles the brokers' requests.
func (pc *PushConsumer) serve(ctx context.Context, _ *transport.Conn, req *transport.Command) *transport.Command {
	switch req.RequestCode() {
	case transport.NotifyConsumerIDsChanged:
		if req.Ext("consumerGroup") == pc.cfg.Group {
			pc.triggerRebalance()
		}
	case transport.ResetConsumerClientOffset:
		if req.Ext("group") == pc.cfg.Group && pc.started.Load() {
			var reset rmqbody.ResetOffsetBody
			reset.Decode(req.Body)
			pc.resetOffsets(ctx, reset.OffsetTable)
		}
	}
	return nil
}

// resetOffsets applies an admin offset reset relayed by the broker: the queues held are
// dropped without saving their progress, their offsets set, and the next rebalance takes
// them again from the new offsets.
func (pc *PushConsumer) resetOffsets(ctx context.Context, table map[MessageQueue]int64) {
	if len(table) == 0 {
		return
	}
	var dropped []*processQueue
	pc.mu.Lock()
	for mq := range table {
		if pq := pc.pqs[mq]; pq != nil {
			delete(pc.pqs, mq)
			dropped = append(dropped, pq)
		}
	}
	pc.mu.Unlock()
	for _, pq := range dropped {
		pq.cancel()
	}
	for mq, off := range table {
		pc.offsets.reset(ctx, mq, off)
	}
	pc.c.log.Info("offsets reset by the broker", "queues", len(table))
	pc.triggerRebalance()
}

func (pc *PushConsumer) triggerRebalance() {
	select {
	case pc.rebalanceNow <- struct{}{}:
	default:
	}
}

func (pc *PushConsumer) rebalanceLoop() {
	t := time.NewTicker(pc.cfg.RebalanceInterval)
	defer t.Stop()
	for {
		select {
		case <-pc.c.closing:
			return
		case <-t.C:
		case <-pc.rebalanceNow:
		}
		ctx, cancel := pc.c.ctx(context.Background(), 0)
		pc.rebalance(ctx)
		cancel()
	}
}

func (pc *PushConsumer) commitLoop() {
	t := time.NewTicker(pc.cfg.OffsetCommitInterval)
	defer t.Stop()
	for {
		select {
		case <-pc.c.closing:
			return
		case <-t.C:
		}
		ctx, cancel := pc.c.ctx(context.Background(), 0)
		pc.offsets.persist(ctx, pc.Assigned())
		cancel()
	}
}

// consumerIDs asks a broker of topic's route for the group's members.
func (pc *PushConsumer) consumerIDs(ctx context.Context, topic string) ([]string, error) {
	addrs := pc.c.brokerAddrs([]string{topic}, false)
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: topic %s has no broker", ErrNoRoute, topic)
	}
	var lastErr error
	// A random broker first (load spreading), then the others.
	first := pickRandom(addrs)
	order := append([]string{first}, addrs...)
	for i, addr := range order {
		if i > 0 && addr == first {
			continue
		}
		resp, err := pc.c.invoke(ctx, addr, transport.NewRequest(transport.GetConsumerListByGroup,
			map[string]string{"consumerGroup": pc.cfg.Group}, nil), 0)
		if err != nil {
			lastErr = fmt.Errorf("client: consumer list of %s at %s: %w", pc.cfg.Group, addr, err)
			continue
		}
		if resp.ResponseCode() != transport.Success {
			lastErr = replyError("GET_CONSUMER_LIST_BY_GROUP", addr, resp)
			continue
		}
		var body rmqbody.ConsumerList
		if err := json.Unmarshal(resp.Body, &body); err != nil {
			lastErr = fmt.Errorf("client: consumer list of %s at %s: %w", pc.cfg.Group, addr, err)
			continue
		}
		sort.Strings(body.ConsumerIDList)
		return body.ConsumerIDList, nil
	}
	return nil, lastErr
}

// allocateAveragely splits the sorted queues among the sorted ids as RocketMQ's
// AllocateMessageQueueAveragely does: contiguous ranges, the first len%n members getting
// one more.
func allocateAveragely(me string, ids []string, queues []MessageQueue) []MessageQueue {
	idx := -1
	for i, id := range ids {
		if id == me {
			idx = i
			break
		}
	}
	if idx < 0 || len(queues) == 0 {
		return nil
	}
	n, q := len(ids), len(queues)
	mod := q % n
	size := 1
	if q > n {
		size = q / n
		if mod > 0 && idx < mod {
			size++
		}
	}
	start := idx*size + mod
	if mod > 0 && idx < mod {
		start = idx * size
	}
	var out []MessageQueue
	for i := 0; i < min(size, q-start); i++ {
		out = append(out, queues[(start+i)%q])
	}
	return out
}

// rebalance recomputes this member's queues for every subscribed topic.
func (pc *PushConsumer) rebalance(ctx context.Context) {
	pc.rebalances.Add(1)
	for _, s := range pc.subscriptions() {
		rt, err := pc.c.route(ctx, s.Topic)
		if err != nil {
			if !strings.HasPrefix(s.Topic, "%RETRY%") {
				pc.c.log.Warn("rebalance: no route", "topic", s.Topic, "err", err)
			}
			continue
		}
		mine := rt.read
		if pc.cfg.Model == Clustering {
			ids, err := pc.consumerIDs(ctx, s.Topic)
			if err != nil {
				pc.c.log.Warn("rebalance: consumer list failed; keeping the current queues", "topic", s.Topic, "err", err)
				continue
			}
			mine = allocateAveragely(pc.c.clientID, ids, rt.read)
		}
		pc.assign(s, mine)
	}
}

// assign makes the consumer hold exactly mine among topic's queues.
func (pc *PushConsumer) assign(s *subscription, mine []MessageQueue) {
	want := make(map[MessageQueue]bool, len(mine))
	for _, mq := range mine {
		want[mq] = true
	}
	var dropped []*processQueue
	pc.mu.Lock()
	for mq, pq := range pc.pqs {
		if mq.Topic == s.Topic && !want[mq] {
			delete(pc.pqs, mq)
			dropped = append(dropped, pq)
		}
	}
	var added []*processQueue
	for _, mq := range mine {
		if _, ok := pc.pqs[mq]; !ok && pc.c.base.Err() == nil {
			pq := newProcessQueue(pc.c.base, mq)
			pc.pqs[mq] = pq
			added = append(added, pq)
		}
	}
	pc.mu.Unlock()
	for _, pq := range dropped {
		pc.c.log.Info("queue released", "queue", pq.mq.String())
		pq.cancel()
		ctx, cancel := pc.c.ctx(context.Background(), pc.c.cfg.RequestTimeout)
		pq.waitIdle(ctx) // an orderly call in progress ends before the lock goes
		pc.offsets.persist(ctx, []MessageQueue{pq.mq})
		pc.offsets.remove(pq.mq)
		if pc.cfg.OrderlyListener != nil && pc.cfg.Model == Clustering {
			pc.unlock(ctx, []MessageQueue{pq.mq})
		}
		cancel()
	}
	for _, pq := range added {
		pc.c.log.Info("queue taken", "queue", pq.mq.String())
		pc.c.goFunc(func() { pc.pullLoop(pq, s) })
		if pc.cfg.OrderlyListener != nil {
			pc.c.goFunc(func() { pc.orderlyLoop(pq) })
		}
	}
}

// startOffset finds where to start pulling mq: the committed offset, else ConsumeFrom.
func (pc *PushConsumer) startOffset(ctx context.Context, mq MessageQueue) (int64, error) {
	off, found, err := pc.offsets.read(ctx, mq)
	if err != nil {
		return 0, err
	}
	if found && off >= 0 {
		return off, nil
	}
	switch {
	case pc.cfg.ConsumeFrom == ConsumeFromFirst || strings.HasPrefix(mq.Topic, "%RETRY%"):
		return 0, nil
	case pc.cfg.ConsumeFrom == ConsumeFromTimestamp:
		return pc.c.searchOffset(ctx, mq, pc.cfg.ConsumeTimestamp)
	}
	return pc.c.maxOffset(ctx, mq)
}

// pullLoop pulls one queue until it is dropped or the consumer closes.
func (pc *PushConsumer) pullLoop(pq *processQueue, s *subscription) {
	ctx := pq.ctx
	orderlyLocked := pc.cfg.OrderlyListener != nil && pc.cfg.Model == Clustering
	// An orderly clustering queue starts only once this member holds its lock, so that it
	// reads the offset its previous owner committed last.
	for orderlyLocked && !pq.isLocked() {
		if pc.lock(ctx, []MessageQueue{pq.mq}) {
			break
		}
		if !pc.c.sleep(ctx, time.Second) {
			return
		}
	}
	var next int64
	for {
		off, err := pc.startOffset(ctx, pq.mq)
		if err == nil {
			next = off
			break
		}
		pc.c.log.Warn("start offset unknown; retrying", "queue", pq.mq.String(), "err", err)
		if !pc.c.sleep(ctx, time.Second) {
			return
		}
	}
	pq.setPulled(next)
	pq.positioned.Store(true)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if !pq.waitSpace(ctx, pc.cfg.PullThresholdPerQueue, int64(pc.cfg.PullThresholdSizePerQueue)) {
			return
		}
		addr := pc.c.anyAddrOf(pq.mq.BrokerName)
		if addr == "" {
			_, _ = pc.c.refreshRoute(ctx, pq.mq.Topic, time.Now())
			if !pc.c.sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 3*time.Second)
			continue
		}
		// Clustering progress also rides on pulls to the master (the commit bit), as the Go
		// and Java clients do; the periodic UPDATE_CONSUMER_OFFSET remains the reference.
		commit := int64(-1)
		if pc.cfg.Model == Clustering && addr == pc.c.masterOf(pq.mq.BrokerName) {
			if off, ok := pq.commitOffset(); ok && off > 0 {
				commit = off
			}
		}
		start := time.Now()
		res, err := pc.c.pull(ctx, addr, pc.cfg.Group, pq.mq, next, pc.cfg.PullBatchSize, s, pc.cfg.LongPollTimeout, commit)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			pc.c.log.Debug("pull failed", "queue", pq.mq.String(), "addr", addr, "err", err)
			if !errors.As(err, new(*Error)) {
				// Connection trouble: the node may be gone; the route tells where to go next.
				_, _ = pc.c.refreshRoute(ctx, pq.mq.Topic, start)
			}
			if !pc.c.sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 3*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		switch res.code {
		case transport.Success:
			if len(res.msgs) > 0 {
				pq.put(res.msgs)
			}
			next = res.next
			pq.setPulled(next)
			if len(res.msgs) > 0 {
				pc.dispatch(pq, res.msgs)
			} else {
				pc.offsetIfIdle(pq)
			}
		case transport.PullNotFound, transport.PullRetryImmediately:
			if res.next > next || res.next == next {
				next = res.next
				pq.setPulled(next)
				pc.offsetIfIdle(pq)
			}
		case transport.PullOffsetMoved:
			pc.c.log.Warn("pull offset moved", "queue", pq.mq.String(), "from", next, "to", res.next)
			next = res.next
			pq.setPulled(next)
			pc.offsets.update(pq.mq, next)
		}
	}
}

// offsetIfIdle records the pulled position as consumed when nothing is in flight (every
// message up to it was filtered or consumed).
func (pc *PushConsumer) offsetIfIdle(pq *processQueue) {
	if off, ok := pq.commitOffset(); ok && !pq.dropped() {
		pc.offsets.update(pq.mq, off)
	}
}

type consumeRequest struct {
	pq   *processQueue
	msgs []*MessageExt
}

func (pc *PushConsumer) dispatch(pq *processQueue, msgs []*MessageExt) {
	if pc.cfg.OrderlyListener != nil {
		pq.wake()
		return
	}
	for i := 0; i < len(msgs); i += pc.cfg.ConsumeBatchSize {
		pc.work.push(&consumeRequest{pq: pq, msgs: msgs[i:min(i+pc.cfg.ConsumeBatchSize, len(msgs))]})
	}
}

// workQueue hands consume requests to the workers. It is unbounded: the per-queue flow
// control (PullThresholdPerQueue/SizePerQueue) bounds what is pulled, so the pullers never
// block on busy workers.
type workQueue struct {
	mu     sync.Mutex
	items  []*consumeRequest
	signal chan struct{}
}

func (w *workQueue) push(r *consumeRequest) {
	w.mu.Lock()
	w.items = append(w.items, r)
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// pop waits for a request; nil once closing is closed.
func (w *workQueue) pop(closing <-chan struct{}) *consumeRequest {
	for {
		w.mu.Lock()
		if len(w.items) > 0 {
			r := w.items[0]
			w.items[0] = nil
			w.items = w.items[1:]
			more := len(w.items) > 0
			w.mu.Unlock()
			if more {
				select {
				case w.signal <- struct{}{}:
				default:
				}
			}
			return r
		}
		w.mu.Unlock()
		select {
		case <-w.signal:
		case <-closing:
			return nil
		}
	}
}

func (pc *PushConsumer) consumeWorker() {
	for {
		r := pc.work.pop(pc.c.closing)
		if r == nil {
			return
		}
		select {
		case <-pc.c.closing:
			return
		default:
		}
		pc.consume(r)
	}
}

func (pc *PushConsumer) consume(r *consumeRequest) {
	if r.pq.dropped() {
		return
	}
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	for _, m := range r.msgs {
		m.Properties["CONSUME_START_TIME"] = now
	}
	result := pc.callListener(r.pq.ctx, r.msgs)
	if result == ConsumeSuccess || pc.cfg.Model == Broadcasting {
		if result != ConsumeSuccess {
			pc.c.log.Warn("broadcasting: failed messages are dropped", "queue", r.pq.mq.String(), "count", len(r.msgs))
		}
		pc.done(r.pq, r.msgs)
		return
	}
	var again []*MessageExt
	for _, m := range r.msgs {
		if err := pc.sendBack(r.pq.ctx, m, 0); err != nil {
			pc.c.log.Warn("send back failed; consuming again locally", "msgId", m.MsgID, "err", err)
			m.ReconsumeTimes++
			again = append(again, m)
			continue
		}
		pc.done(r.pq, []*MessageExt{m})
	}
	if len(again) > 0 {
		// Retried locally after a pause; the offset cannot move past them meanwhile.
		pq := r.pq
		pc.c.goFunc(func() {
			if !pc.c.sleep(pq.ctx, 5*time.Second) {
				return
			}
			pc.work.push(&consumeRequest{pq: pq, msgs: again})
		})
	}
}

func (pc *PushConsumer) callListener(ctx context.Context, msgs []*MessageExt) (res ConsumeResult) {
	defer func() {
		if r := recover(); r != nil {
			pc.c.log.Error("listener panicked; messages will be retried", "panic", r)
			res = ConsumeRetryLater
		}
	}()
	return pc.cfg.Listener(ctx, msgs)
}

// done removes consumed messages and advances the offset.
func (pc *PushConsumer) done(pq *processQueue, msgs []*MessageExt) {
	pq.remove(msgs)
	if off, ok := pq.commitOffset(); ok && !pq.dropped() {
		pc.offsets.update(pq.mq, off)
	}
}

// sendBack returns m to the broker for redelivery (delayLevel 0: the broker picks
// 3 + reconsumeTimes; -1: straight to the dead-letter queue). A message that already failed
// MaxReconsumeTimes times goes to the dead-letter queue.
func (pc *PushConsumer) sendBack(ctx context.Context, m *MessageExt, delayLevel int) error {
	if m.ReconsumeTimes >= pc.cfg.MaxReconsumeTimes {
		delayLevel = -1
	}
	addr := pc.c.masterOf(m.Queue.BrokerName)
	if addr == "" {
		addr = m.StoreHost
	}
	ctx, cancel := context.WithTimeout(ctx, pc.c.cfg.RequestTimeout)
	defer cancel()
	resp, err := pc.c.invoke(ctx, addr, transport.NewRequest(transport.ConsumerSendMsgBack, map[string]string{
		"group":             pc.cfg.Group,
		"offset":            strconv.FormatInt(m.PhysicalOffset, 10),
		"delayLevel":        strconv.Itoa(delayLevel),
		"originMsgId":       m.MsgID,
		"originTopic":       m.Topic,
		"unitMode":          "false",
		"maxReconsumeTimes": strconv.Itoa(pc.cfg.MaxReconsumeTimes),
	}, nil), 0)
	if err != nil {
		return fmt.Errorf("client: send back %s to %s: %w", m.MsgID, addr, err)
	}
	if resp.ResponseCode() != transport.Success {
		return replyError("CONSUMER_SEND_MSG_BACK", addr, resp)
	}
	return nil
}

// ---- orderly ----

func (pc *PushConsumer) orderlyLoop(pq *processQueue) {
	needLock := pc.cfg.Model == Clustering
	renew := time.NewTicker(pc.cfg.LockRenewInterval)
	defer renew.Stop()
	for {
		select {
		case <-pq.ctx.Done():
			return
		case <-renew.C:
			if needLock {
				pc.lock(pq.ctx, []MessageQueue{pq.mq})
			}
			continue
		case <-pq.wakeCh:
		}
		for pq.ctx.Err() == nil {
			if needLock && !pq.isLocked() {
				if !pc.lock(pq.ctx, []MessageQueue{pq.mq}) {
					if !pc.c.sleep(pq.ctx, time.Second) {
						return
					}
					continue
				}
			}
			msgs := pq.head(pc.cfg.ConsumeBatchSize)
			if len(msgs) == 0 {
				break
			}
			if !pc.consumeOrderly(pq, msgs) {
				return
			}
		}
	}
}

// consumeOrderly runs the listener on msgs until it succeeds or they go to the DLQ;
// false when the queue was dropped meanwhile.
func (pc *PushConsumer) consumeOrderly(pq *processQueue, msgs []*MessageExt) bool {
	for {
		pq.busy.Lock()
		if pq.dropped() {
			pq.busy.Unlock()
			return false
		}
		res := pc.callOrderly(pq.ctx, msgs)
		pq.busy.Unlock()
		if res == OrderlySuccess {
			pc.done(pq, msgs)
			return true
		}
		over := false
		for _, m := range msgs {
			m.ReconsumeTimes++
			if m.ReconsumeTimes > pc.cfg.MaxReconsumeTimes {
				over = true
			}
		}
		if over {
			for _, m := range msgs {
				for pq.ctx.Err() == nil {
					if err := pc.sendBack(pq.ctx, m, -1); err == nil {
						break
					} else {
						pc.c.log.Warn("orderly: send to DLQ failed; retrying", "msgId", m.MsgID, "err", err)
					}
					if !pc.c.sleep(pq.ctx, time.Second) {
						return false
					}
				}
			}
			pc.done(pq, msgs)
			return true
		}
		if !pc.c.sleep(pq.ctx, pc.cfg.SuspendInterval) {
			return false
		}
	}
}

func (pc *PushConsumer) callOrderly(ctx context.Context, msgs []*MessageExt) (res OrderlyResult) {
	defer func() {
		if r := recover(); r != nil {
			pc.c.log.Error("orderly listener panicked; suspending the queue", "panic", r)
			res = OrderlySuspend
		}
	}()
	return pc.cfg.OrderlyListener(ctx, msgs)
}

// lock asks the master for the locks of mqs (all of one broker group); true when every
// one was granted. Granted queues are marked locked.
func (pc *PushConsumer) lock(ctx context.Context, mqs []MessageQueue) bool {
	if len(mqs) == 0 {
		return true
	}
	addr := pc.c.masterOf(mqs[0].BrokerName)
	if addr == "" {
		return false
	}
	body, _ := json.Marshal(rmqbody.LockBatchRequest{ConsumerGroup: pc.cfg.Group, ClientID: pc.c.clientID, MQSet: mqs})
	resp, err := pc.c.invoke(ctx, addr, transport.NewRequest(transport.LockBatchMQ, nil, body), 0)
	if err != nil || resp.ResponseCode() != transport.Success {
		if err == nil {
			err = replyError("LOCK_BATCH_MQ", addr, resp)
		}
		pc.c.log.Debug("lock failed", "queues", len(mqs), "err", err)
		return false
	}
	var ok rmqbody.LockBatchResponse
	if err := json.Unmarshal(resp.Body, &ok); err != nil {
		return false
	}
	granted := map[MessageQueue]bool{}
	for _, mq := range ok.LockOKMQSet {
		granted[mq] = true
	}
	pc.mu.Lock()
	for _, mq := range mqs {
		if pq := pc.pqs[mq]; pq != nil {
			pq.setLocked(granted[mq])
		}
	}
	pc.mu.Unlock()
	return len(granted) == len(mqs)
}

func (pc *PushConsumer) unlock(ctx context.Context, mqs []MessageQueue) {
	byBroker := map[string][]MessageQueue{}
	for _, mq := range mqs {
		byBroker[mq.BrokerName] = append(byBroker[mq.BrokerName], mq)
	}
	for b, qs := range byBroker {
		addr := pc.c.masterOf(b)
		if addr == "" {
			continue
		}
		body, _ := json.Marshal(rmqbody.LockBatchRequest{ConsumerGroup: pc.cfg.Group, ClientID: pc.c.clientID, MQSet: qs})
		if _, err := pc.c.tc.Invoke(ctx, addr, transport.NewRequest(transport.UnlockBatchMQ, nil, body)); err != nil {
			pc.c.log.Debug("unlock failed", "broker", b, "err", err)
		}
	}
}

// ---- process queue ----

// processQueue holds one queue's pulled, not yet consumed messages.
type processQueue struct {
	mq     MessageQueue
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	msgs     map[int64]*MessageExt
	inFlight map[int64]bool // orderly: handed to the listener
	bytes    int64
	pulled   int64 // next offset to pull
	spaceCh  chan struct{}
	wakeCh   chan struct{}

	positioned atomic.Bool  // the start offset is known
	pauses     atomic.Int64 // times the puller waited for space (flow control)
	locked     atomic.Bool
	lockedAt   atomic.Int64
	busy       sync.Mutex // held around an orderly listener call
}

func newProcessQueue(parent context.Context, mq MessageQueue) *processQueue {
	ctx, cancel := context.WithCancel(parent)
	return &processQueue{mq: mq, ctx: ctx, cancel: cancel, msgs: map[int64]*MessageExt{}, inFlight: map[int64]bool{},
		spaceCh: make(chan struct{}, 1), wakeCh: make(chan struct{}, 1)}
}

func (pq *processQueue) dropped() bool { return pq.ctx.Err() != nil }

func (pq *processQueue) setLocked(v bool) {
	pq.locked.Store(v)
	if v {
		pq.lockedAt.Store(time.Now().UnixNano())
	}
}

// isLocked: the lock is held and younger than 30 s (the broker keeps it 60 s).
func (pq *processQueue) isLocked() bool {
	return pq.locked.Load() && time.Since(time.Unix(0, pq.lockedAt.Load())) < 30*time.Second
}

func (pq *processQueue) wake() {
	select {
	case pq.wakeCh <- struct{}{}:
	default:
	}
}

func (pq *processQueue) put(msgs []*MessageExt) {
	pq.mu.Lock()
	for _, m := range msgs {
		if _, ok := pq.msgs[m.QueueOffset]; !ok {
			pq.msgs[m.QueueOffset] = m
			pq.bytes += int64(len(m.Body))
		}
	}
	pq.mu.Unlock()
}

func (pq *processQueue) setPulled(next int64) {
	pq.mu.Lock()
	if next > pq.pulled {
		pq.pulled = next
	}
	pq.mu.Unlock()
}

func (pq *processQueue) remove(msgs []*MessageExt) {
	pq.mu.Lock()
	for _, m := range msgs {
		if _, ok := pq.msgs[m.QueueOffset]; ok {
			delete(pq.msgs, m.QueueOffset)
			delete(pq.inFlight, m.QueueOffset)
			pq.bytes -= int64(len(m.Body))
		}
	}
	pq.mu.Unlock()
	select {
	case pq.spaceCh <- struct{}{}:
	default:
	}
}

// commitOffset is the offset to commit: the lowest unconsumed message's, else the next to
// pull. ok is false before the first pull position is known.
func (pq *processQueue) commitOffset() (int64, bool) {
	pq.mu.Lock()
	defer pq.mu.Unlock()
	if len(pq.msgs) == 0 {
		return pq.pulled, true
	}
	lowest := int64(-1)
	for off := range pq.msgs {
		if lowest < 0 || off < lowest {
			lowest = off
		}
	}
	return lowest, true
}

// head returns up to n of the lowest-offset messages not yet handed out (orderly).
func (pq *processQueue) head(n int) []*MessageExt {
	pq.mu.Lock()
	defer pq.mu.Unlock()
	offs := make([]int64, 0, len(pq.msgs))
	for off := range pq.msgs {
		if !pq.inFlight[off] {
			offs = append(offs, off)
		}
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	if len(offs) > n {
		offs = offs[:n]
	}
	out := make([]*MessageExt, len(offs))
	for i, off := range offs {
		out[i] = pq.msgs[off]
		pq.inFlight[off] = true
	}
	return out
}

// waitSpace blocks while the queue holds too much; false when it was dropped.
func (pq *processQueue) waitSpace(ctx context.Context, maxMsgs int, maxBytes int64) bool {
	for {
		pq.mu.Lock()
		full := len(pq.msgs) >= maxMsgs || pq.bytes >= maxBytes
		pq.mu.Unlock()
		if !full {
			return true
		}
		pq.pauses.Add(1)
		select {
		case <-pq.spaceCh:
		case <-ctx.Done():
			return false
		}
	}
}

// waitIdle waits until no orderly listener call runs on the queue (or ctx ends).
func (pq *processQueue) waitIdle(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		pq.busy.Lock()
		pq.busy.Unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
