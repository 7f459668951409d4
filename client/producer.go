package client

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/transport"
	rmqbody "github.com/raftmq/raftmq/transport/body"
)

// ProducerConfig configures a Producer. Zero values take the defaults.
type ProducerConfig struct {
	ClientConfig
	// Group is the producer group; default "DEFAULT_PRODUCER". Transactional producers
	// need a group of their own: the broker asks the group's producers to check.
	Group string
	// MaxAttempts is how many times a sync or async send is tried, on another queue after
	// a retryable failure (default 3; 1 disables retries).
	MaxAttempts int
	// Selector picks the queue; default DefaultSelector (by ShardingKey hash, else round
	// robin skipping the broker that just failed).
	Selector QueueSelector
	// CompressThreshold: single-message bodies of at least this many bytes are zlib
	// compressed; default 4096, < 0 disables.
	CompressThreshold int
	// MaxMessageSize bounds a body (and a batch's encoded size); default 4 MiB.
	MaxMessageSize int
	// MaxAsyncInFlight bounds the SendAsync calls awaiting a reply; SendAsync blocks when
	// it is reached. Default 512: deeper queues add latency, not throughput (docs/BENCHMARKS.md).
	MaxAsyncInFlight int
	// TransactionListener enables SendInTransaction and answers the broker's checks.
	TransactionListener TransactionListener
}

// Producer defaults.
const (
	DefaultProducerGroup     = "DEFAULT_PRODUCER"
	DefaultMaxAttempts       = 3
	DefaultCompressThreshold = 4096
	DefaultMaxAsyncInFlight  = 512
)

// DefaultProducerConfig returns the defaults (NameServers still has to be set).
func DefaultProducerConfig() ProducerConfig {
	return ProducerConfig{
		ClientConfig:      DefaultClientConfig(),
		Group:             DefaultProducerGroup,
		MaxAttempts:       DefaultMaxAttempts,
		CompressThreshold: DefaultCompressThreshold,
		MaxMessageSize:    message.DefaultMaxMessageSize,
		MaxAsyncInFlight:  DefaultMaxAsyncInFlight,
	}
}

// Validate reports the first invalid field.
func (c ProducerConfig) Validate() error {
	if err := c.ClientConfig.Validate(); err != nil {
		return err
	}
	if c.Group != "" {
		if err := validGroup("Group", c.Group); err != nil {
			return err
		}
	}
	if c.MaxAttempts < 0 || c.MaxAttempts > 100 {
		return fmt.Errorf("%w: MaxAttempts %d outside 0..100 (0 means %d)", ErrInvalidConfig, c.MaxAttempts, DefaultMaxAttempts)
	}
	if c.MaxMessageSize < 0 || c.MaxMessageSize > 16<<20 {
		return fmt.Errorf("%w: MaxMessageSize %d outside 0..16 MiB", ErrInvalidConfig, c.MaxMessageSize)
	}
	if c.MaxAsyncInFlight < 0 {
		return fmt.Errorf("%w: MaxAsyncInFlight %d is negative", ErrInvalidConfig, c.MaxAsyncInFlight)
	}
	return nil
}

func (c ProducerConfig) withDefaults() ProducerConfig {
	d := DefaultProducerConfig()
	if c.Group == "" {
		c.Group = d.Group
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = d.MaxAttempts
	}
	if c.CompressThreshold == 0 {
		c.CompressThreshold = d.CompressThreshold
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = d.MaxMessageSize
	}
	if c.MaxAsyncInFlight == 0 {
		c.MaxAsyncInFlight = d.MaxAsyncInFlight
	}
	if c.Selector == nil {
		c.Selector = &DefaultSelector{}
	}
	return c
}

// SendStatus is how the broker stored a message. Every status means stored.
type SendStatus int

// Send statuses (RocketMQ's SendStatus).
const (
	SendOK SendStatus = iota
	SendFlushDiskTimeout
	SendFlushSlaveTimeout
	SendSlaveNotAvailable
)

func (s SendStatus) String() string {
	switch s {
	case SendOK:
		return "SEND_OK"
	case SendFlushDiskTimeout:
		return "FLUSH_DISK_TIMEOUT"
	case SendFlushSlaveTimeout:
		return "FLUSH_SLAVE_TIMEOUT"
	case SendSlaveNotAvailable:
		return "SLAVE_NOT_AVAILABLE"
	}
	return "SendStatus(" + strconv.Itoa(int(s)) + ")"
}

// SendResult describes a stored message (or batch).
type SendResult struct {
	Status      SendStatus
	MsgID       string // UNIQ_KEY; a batch's ids joined by ","
	OffsetMsgID string // store host + physical offset; joined by "," for a batch
	Queue       MessageQueue
	QueueOffset int64 // the first message's offset for a batch
	Attempts    int   // 1 + retries it took
	broker      string
}

// QueueSelector picks the queue for a message. queues is never empty; lastFailed is the
// broker name of the previous failed attempt ("" on the first). It must be safe for
// concurrent use.
type QueueSelector interface {
	Select(msg *Message, queues []MessageQueue, lastFailed string) MessageQueue
}

// QueueSelectorFunc adapts a function to QueueSelector.
type QueueSelectorFunc func(msg *Message, queues []MessageQueue, lastFailed string) MessageQueue

// Select calls f.
func (f QueueSelectorFunc) Select(msg *Message, queues []MessageQueue, lastFailed string) MessageQueue {
	return f(msg, queues, lastFailed)
}

// DefaultSelector sends messages with a ShardingKey to the queue its hash picks (so one
// key's messages stay in order, also across retries) and the others round robin, skipping
// the broker group that just failed when another one exists.
type DefaultSelector struct{ n atomic.Uint64 }

// Select implements QueueSelector.
func (s *DefaultSelector) Select(msg *Message, queues []MessageQueue, lastFailed string) MessageQueue {
	if msg.ShardingKey != "" {
		return HashQueue(msg.ShardingKey, queues)
	}
	for range queues {
		q := queues[int(s.n.Add(1)%uint64(len(queues)))]
		if q.BrokerName != lastFailed {
			return q
		}
	}
	return queues[int(s.n.Add(1)%uint64(len(queues)))]
}

// HashQueue returns the queue key hashes to (FNV-1a modulo the number of queues).
func HashQueue(key string, queues []MessageQueue) MessageQueue {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return queues[int(h.Sum32()%uint32(len(queues)))]
}

// Producer sends messages. It is safe for concurrent use; Close stops its goroutines and
// connections. A Producer is ready when NewProducer returns.
type Producer struct {
	cfg   ProducerConfig
	c     *core
	async chan struct{} // async in-flight slots
	wg    sync.WaitGroup

	topicsMu   sync.Mutex
	topics     map[string]bool
	registered map[string]bool // topics whose brokers got a heartbeat (transactions)
	closing    atomic.Bool
}

// NewProducer validates cfg and returns a running producer.
func NewProducer(cfg ProducerConfig) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Producer{cfg: cfg, topics: map[string]bool{}, registered: map[string]bool{}}
	c, err := newCore(cfg.ClientConfig, transport.HandlerFunc(p.serve))
	if err != nil {
		return nil, err
	}
	p.c = c
	p.async = make(chan struct{}, cfg.MaxAsyncInFlight)
	c.heartbeat = p.heartbeatData
	c.start()
	return p, nil
}

// ClientID returns the producer's client id ("ip@instance").
func (p *Producer) ClientID() string { return p.c.clientID }

// Close waits for the async sends in flight (their callbacks run), then stops every
// goroutine and closes every connection. It is idempotent.
func (p *Producer) Close() error {
	p.closing.Store(true)
	p.wg.Wait()
	p.c.close()
	return nil
}

func (p *Producer) heartbeatData() (*rmqbody.HeartbeatData, []string) {
	p.topicsMu.Lock()
	topics := make([]string, 0, len(p.topics))
	for t := range p.topics {
		topics = append(topics, t)
	}
	p.topicsMu.Unlock()
	return &rmqbody.HeartbeatData{
		ClientID:        p.c.clientID,
		ProducerDataSet: []rmqbody.ProducerData{{GroupName: p.cfg.Group}},
		ConsumerDataSet: []rmqbody.ConsumerData{},
	}, p.c.brokerAddrs(topics, true)
}

func (p *Producer) useTopic(t string) {
	p.topicsMu.Lock()
	p.topics[t] = true
	p.topicsMu.Unlock()
}

// register makes sure the brokers of topic know this producer (HEART_BEAT) before a half
// message is sent, so that they can ask it to check; later heartbeats keep it known.
func (p *Producer) register(ctx context.Context, topic string) error {
	p.topicsMu.Lock()
	done := p.registered[topic]
	p.topicsMu.Unlock()
	if done {
		return nil
	}
	p.useTopic(topic)
	if _, err := p.sendRoute(ctx, topic, time.Time{}); err != nil {
		return err
	}
	if p.c.sendHeartbeats(ctx) > 0 {
		p.topicsMu.Lock()
		p.registered[topic] = true
		p.topicsMu.Unlock()
	}
	return nil
}

// request is one encoded send: everything but the queue.
type request struct {
	topic    string
	code     transport.RequestCode
	sysFlag  int32
	flag     int32
	props    string
	body     []byte
	msg      *Message // for the selector
	uniq     string
	batchIDs string
}

func (p *Producer) prepare(msg *Message, extraProps ...string) (*request, error) {
	if p.closing.Load() {
		return nil, ErrClosed
	}
	if msg == nil {
		return nil, fmt.Errorf("%w: nil message", ErrInvalidMessage)
	}
	if err := msg.validate(p.cfg.MaxMessageSize); err != nil {
		return nil, err
	}
	uniq := newUniqID()
	props, err := msg.properties(uniq, extraProps...)
	if err != nil {
		return nil, err
	}
	r := &request{topic: msg.Topic, code: transport.SendMessageV2, flag: msg.Flag, props: props, body: msg.Body, msg: msg, uniq: uniq}
	if p.cfg.CompressThreshold > 0 && len(msg.Body) >= p.cfg.CompressThreshold {
		if z, err := compress(msg.Body); err == nil && len(z) < len(msg.Body) {
			r.body = z
			r.sysFlag |= message.FlagCompressed
		}
	}
	return r, nil
}

func (p *Producer) command(r *request, mq MessageQueue) *transport.Command {
	ext := map[string]string{
		"a": p.cfg.Group,
		"b": r.topic,
		"c": "TBW102",
		"d": "4",
		"e": strconv.Itoa(mq.QueueID),
		"f": strconv.Itoa(int(r.sysFlag)),
		"g": strconv.FormatInt(time.Now().UnixMilli(), 10),
		"h": strconv.Itoa(int(r.flag)),
		"i": r.props,
		"j": "0",
		// "k" (unitMode) is nullable in Java's header and false when absent; left out.
		"l": "0",
		"m": strconv.FormatBool(r.code == transport.SendBatchMessage),
	}
	return transport.NewRequest(r.code, ext, r.body)
}

// Send sends msg and waits until the broker group has stored it (a Raft quorum
// acknowledged it). Retryable failures (a broker down, a leader change, a not-leader
// reply) are retried on another queue after an immediate route refresh, up to
// MaxAttempts; the error of the last attempt is returned.
func (p *Producer) Send(ctx context.Context, msg *Message) (*SendResult, error) {
	r, err := p.prepare(msg)
	if err != nil {
		return nil, err
	}
	return p.sendSync(ctx, r, p.cfg.MaxAttempts, "")
}

// SendBatch sends msgs, which must share one topic and have no DelayLevel, as one batch
// to one queue: all are stored or none. Each message gets its own UNIQ_KEY.
func (p *Producer) SendBatch(ctx context.Context, msgs []*Message) (*SendResult, error) {
	if len(msgs) == 0 {
		return nil, fmt.Errorf("%w: empty batch", ErrInvalidMessage)
	}
	if p.closing.Load() {
		return nil, ErrClosed
	}
	bodies := make([][]byte, len(msgs))
	flags := make([]int32, len(msgs))
	props := make([]string, len(msgs))
	ids := make([]string, len(msgs))
	topic := msgs[0].Topic
	for i, m := range msgs {
		if m == nil {
			return nil, fmt.Errorf("%w: nil message at %d", ErrInvalidMessage, i)
		}
		if err := m.validate(p.cfg.MaxMessageSize); err != nil {
			return nil, fmt.Errorf("batch message %d: %w", i, err)
		}
		if m.Topic != topic {
			return nil, fmt.Errorf("%w: batch message %d has topic %q, not %q", ErrInvalidMessage, i, m.Topic, topic)
		}
		if m.DelayLevel != 0 {
			return nil, fmt.Errorf("%w: batch message %d has a DelayLevel; batches cannot be delayed", ErrInvalidMessage, i)
		}
		ids[i] = newUniqID()
		s, err := m.properties(ids[i])
		if err != nil {
			return nil, err
		}
		bodies[i], flags[i], props[i] = m.Body, m.Flag, s
	}
	body := encodeBatchBody(bodies, flags, props)
	if len(body) > p.cfg.MaxMessageSize {
		return nil, fmt.Errorf("%w: batch of %d bytes exceeds the limit of %d", ErrInvalidMessage, len(body), p.cfg.MaxMessageSize)
	}
	r := &request{topic: topic, code: transport.SendBatchMessage, body: body, msg: msgs[0], batchIDs: strings.Join(ids, ",")}
	return p.sendSync(ctx, r, p.cfg.MaxAttempts, "")
}

// selectQueue returns the queue and master address for one attempt, waiting up to the
// attempt's deadline for a route with a master.
func (p *Producer) selectQueue(ctx context.Context, r *request, lastFailed string) (MessageQueue, string, error) {
	p.useTopic(r.topic)
	rt, err := p.sendRoute(ctx, r.topic, time.Time{})
	if err != nil {
		return MessageQueue{}, "", err
	}
	for {
		// A group whose master just failed at the connection level is skipped until the
		// route names another master or suspectFor passes.
		if len(rt.write) > 0 {
			mq := p.cfg.Selector.Select(r.msg, rt.write, lastFailed)
			if addr := rt.master(mq.BrokerName); addr != "" && !p.c.suspect(addr) {
				return mq, addr, nil
			}
		}
		if !p.c.sleep(ctx, 50*time.Millisecond) {
			if p.c.closed.Load() {
				return MessageQueue{}, "", ErrClosed
			}
			return MessageQueue{}, "", fmt.Errorf("%w: topic %s has no reachable master: %w", ErrNoRoute, r.topic, ctx.Err())
		}
		if rt, err = p.sendRoute(ctx, r.topic, time.Now().Add(-50*time.Millisecond)); err != nil {
			return MessageQueue{}, "", err
		}
	}
}

// autoCreateTopic is RocketMQ's default topic: brokers with autoCreateTopicEnable=true register
// it (perm 7, inherit), and a send that names it as defaultTopic creates the missing topic.
const autoCreateTopic = "TBW102"

// autoCreateQueues is how many queues per group a producer offers for a topic it is
// auto-creating (RocketMQ producers' defaultTopicQueueNums).
const autoCreateQueues = 4

// sendRoute returns topic's route for sending (refreshed when refreshSince is set). For a
// topic the name servers do not know, it returns a route over TBW102's groups with at most
// autoCreateQueues queues each, as RocketMQ producers do: the send names TBW102 as its
// defaultTopic, so a broker with autoCreateTopicEnable=true creates the topic and registers
// it at once, and one with it off answers TOPIC_NOT_EXIST. Without a TBW102 route the
// topic's own ErrTopicNotExist is returned.
func (p *Producer) sendRoute(ctx context.Context, topic string, refreshSince time.Time) (*topicRoute, error) {
	var rt *topicRoute
	var err error
	if refreshSince.IsZero() {
		rt, err = p.c.route(ctx, topic)
	} else {
		rt, err = p.c.refreshRoute(ctx, topic, refreshSince)
	}
	if !errors.Is(err, ErrTopicNotExist) || topic == autoCreateTopic {
		return rt, err
	}
	def, derr := p.c.route(ctx, autoCreateTopic)
	if derr != nil {
		return nil, err
	}
	return def.derive(topic, autoCreateQueues), nil
}

func (p *Producer) sendSync(ctx context.Context, r *request, attempts int, lastFailed string) (*SendResult, error) {
	var lastErr error
	for i := 1; i <= attempts; i++ {
		if err := ctx.Err(); err != nil {
			if lastErr != nil {
				return nil, fmt.Errorf("client: send to %s: %w (last attempt: %w)", r.topic, err, lastErr)
			}
			return nil, err
		}
		res, broker, err := p.attempt(ctx, r, lastFailed)
		if err == nil {
			res.Attempts = i
			return res, nil
		}
		lastErr, lastFailed = err, broker
		if !Retryable(err) {
			return nil, err
		}
		p.c.log.Debug("send attempt failed; retrying", "topic", r.topic, "attempt", i, "err", err)
	}
	return nil, lastErr
}

// attempt makes one sync attempt; on failure it returns the broker name that failed.
func (p *Producer) attempt(ctx context.Context, r *request, lastFailed string) (*SendResult, string, error) {
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, p.c.cfg.RequestTimeout)
	defer cancel()
	mq, addr, err := p.selectQueue(actx, r, lastFailed)
	if err != nil {
		return nil, mq.BrokerName, err
	}
	resp, err := p.c.invoke(actx, addr, p.command(r, mq), 0)
	if err != nil {
		if isConnErr(err) {
			p.c.markFailed(addr)
		}
		err = p.afterFailure(ctx, r.topic, start, fmt.Errorf("client: send to %s at %s: %w", mq, addr, err))
		return nil, mq.BrokerName, err
	}
	p.c.markOK(addr)
	res, err := p.result(r, mq, addr, resp)
	if err != nil {
		return nil, mq.BrokerName, p.afterFailure(ctx, r.topic, start, err)
	}
	return res, "", nil
}

// afterFailure refreshes the route at once when err says it is stale.
func (p *Producer) afterFailure(ctx context.Context, topic string, since time.Time, err error) error {
	var e *Error
	if errors.As(err, &e) && !e.refreshesRoute() {
		return err
	}
	if errors.Is(err, ErrClosed) || !Retryable(err) && !errors.As(err, &e) {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, p.c.cfg.RequestTimeout)
	defer cancel()
	if _, rerr := p.c.refreshRoute(rctx, topic, since); rerr != nil {
		p.c.log.Debug("route refresh after a failed send", "topic", topic, "err", rerr)
	}
	return err
}

func (p *Producer) result(r *request, mq MessageQueue, addr string, resp *transport.Command) (*SendResult, error) {
	res := &SendResult{Queue: mq, MsgID: r.uniq, broker: addr}
	if r.batchIDs != "" {
		res.MsgID = r.batchIDs
	}
	switch resp.ResponseCode() {
	case transport.Success:
		res.Status = SendOK
	case transport.FlushDiskTimeout:
		res.Status = SendFlushDiskTimeout
	case transport.FlushSlaveTimeout:
		res.Status = SendFlushSlaveTimeout
	case transport.SlaveNotAvailable:
		res.Status = SendSlaveNotAvailable
	default:
		return nil, replyError(r.code.Name(), addr, resp)
	}
	res.OffsetMsgID = resp.Ext("msgId")
	if q, err := resp.ExtInt32("queueId"); err == nil {
		res.Queue.QueueID = int(q)
	}
	res.QueueOffset, _ = resp.ExtInt64("queueOffset")
	return res, nil
}

// SendAsync sends msg without waiting: cb gets the result or error exactly once, on
// another goroutine. At most MaxAsyncInFlight sends are pending; beyond that SendAsync
// waits for a slot (or ctx). Retryable failures are retried like Send's. ctx bounds the
// whole send, including retries. An error returned by SendAsync means cb is not called.
func (p *Producer) SendAsync(ctx context.Context, msg *Message, cb func(*SendResult, error)) error {
	if cb == nil {
		return fmt.Errorf("%w: nil callback", ErrInvalidMessage)
	}
	r, err := p.prepare(msg)
	if err != nil {
		return err
	}
	select {
	case p.async <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.c.closing:
		return ErrClosed
	}
	p.wg.Add(1)
	done := func(res *SendResult, err error) {
		defer p.wg.Done()
		<-p.async
		cb(res, err)
	}
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, p.c.cfg.RequestTimeout)
	mq, addr, err := p.selectQueue(actx, r, "")
	if err != nil {
		cancel()
		p.retryAsync(ctx, r, mq.BrokerName, err, start, done)
		return nil
	}
	ierr := p.c.tc.InvokeAsync(actx, addr, p.command(r, mq), func(resp *transport.Command, err error) {
		cancel()
		if err == nil {
			var res *SendResult
			if res, err = p.result(r, mq, addr, resp); err == nil {
				res.Attempts = 1
				done(res, nil)
				return
			}
		} else {
			if isConnErr(err) {
				p.c.markFailed(addr)
			}
			err = fmt.Errorf("client: send to %s at %s: %w", mq, addr, err)
		}
		p.retryAsync(ctx, r, mq.BrokerName, err, start, done)
	})
	if ierr != nil {
		cancel()
		p.retryAsync(ctx, r, mq.BrokerName, fmt.Errorf("client: send to %s at %s: %w", mq, addr, ierr), start, done)
	}
	return nil
}

// retryAsync finishes a failed first async attempt on a tracked goroutine: a route refresh
// and the remaining attempts, synchronously.
func (p *Producer) retryAsync(ctx context.Context, r *request, failed string, err error, start time.Time, done func(*SendResult, error)) {
	if !Retryable(err) || p.cfg.MaxAttempts <= 1 || p.c.closed.Load() {
		done(nil, err)
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := p.c.ctx(ctx, 0)
		defer cancel()
		err := p.afterFailure(ctx, r.topic, start, err)
		res, err2 := p.sendSync(ctx, r, p.cfg.MaxAttempts-1, failed)
		if err2 != nil {
			done(nil, err2)
			return
		}
		_ = err
		res.Attempts++
		done(res, nil)
	}()
}

// SendOneway sends msg without waiting for the broker: it returns once the request is
// written. Only a failure to write is retried (on another queue). The message may be lost.
func (p *Producer) SendOneway(ctx context.Context, msg *Message) error {
	r, err := p.prepare(msg)
	if err != nil {
		return err
	}
	var lastErr error
	lastFailed := ""
	for range p.cfg.MaxAttempts {
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, p.c.cfg.RequestTimeout)
		mq, addr, err := p.selectQueue(actx, r, lastFailed)
		if err == nil {
			err = p.c.tc.InvokeOneway(actx, addr, p.command(r, mq))
			if err != nil {
				err = p.afterFailure(ctx, r.topic, start, fmt.Errorf("client: oneway send to %s at %s: %w", mq, addr, err))
			}
		}
		cancel()
		if err == nil {
			return nil
		}
		if !Retryable(err) {
			return err
		}
		lastErr, lastFailed = err, mq.BrokerName
	}
	return lastErr
}
