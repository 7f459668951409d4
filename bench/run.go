package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftmq/raftmq/client"
)

// Summary is the result of a run.
type Summary struct {
	Mode           Mode    `json:"mode"`
	Topic          string  `json:"topic"`
	Workers        int     `json:"workers"`
	Consumers      int     `json:"consumers,omitempty"`
	ConsumeThreads int     `json:"consume_threads,omitempty"`
	Size           int     `json:"size"`
	Batch          int     `json:"batch"`
	Async          bool    `json:"async"`
	Keys           bool    `json:"keys"`
	Embedded       bool    `json:"embedded"`
	Durability     string  `json:"durability"` // embedded: flushDiskType + "quorum ack"; else "as configured"
	Elapsed        float64 `json:"elapsed_s"`  // the measured part (sending and/or consuming)
	GOMAXPROCS     int     `json:"gomaxprocs"`
	GoVersion      string  `json:"go_version"`
	Preloaded      uint64  `json:"preloaded,omitempty"` // embedded consumer mode: backlog written first
	PreloadSecs    float64 `json:"preload_s,omitempty"`
	WarmupSecs     float64 `json:"warmup_s,omitempty"` // load run before the measured part, not counted

	Send    *Throughput `json:"send,omitempty"`
	Consume *Throughput `json:"consume,omitempty"` // latency = born → consumed
	Cluster *Cluster    `json:"cluster,omitempty"` // embedded only

	CPUProfile string `json:"cpu_profile,omitempty"`
}

// Cluster is what an embedded run saw of its broker group.
type Cluster struct {
	Nodes        int    `json:"nodes"`
	TermBefore   uint64 `json:"raft_term_before"`
	TermAfter    uint64 `json:"raft_term_after"`
	LeaderBefore string `json:"leader_before"`
	LeaderAfter  string `json:"leader_after"`
	// HeapInuseMax is the largest runtime.MemStats.HeapInuse sampled each interval. It is the
	// whole process's: every embedded node plus the bench clients, so it bounds each node's.
	HeapInuseMax uint64 `json:"heap_inuse_max_bytes"`
}

const magic = 0x726d71626e636831 // "rmqbnch1": the body carries the send time in ns after it

// Run runs one benchmark as cfg says and returns its summary. Interval lines go to cfg.Out.
// It ends when cfg.Duration passes, cfg.Total is reached or ctx ends (the summary then covers
// what was measured).
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sum := &Summary{
		Mode: cfg.Mode, Topic: cfg.Topic, Workers: cfg.Workers, Size: cfg.Size, Batch: cfg.Batch,
		Async: cfg.Async, Keys: cfg.Keys, Consumers: cfg.Consumers, ConsumeThreads: cfg.ConsumeThreads, Embedded: cfg.Embedded, Durability: "as configured on the brokers",
		GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), CPUProfile: cfg.CPUProfile,
	}
	if cfg.Mode == ModeProducer {
		sum.Consumers, sum.ConsumeThreads = 0, 0
	}
	var emb *Embedded
	if cfg.Embedded {
		var err error
		emb, err = StartEmbedded(ctx, EmbeddedConfig{
			Nodes: cfg.EmbeddedNodes, Topic: cfg.Topic, Queues: cfg.Queues,
			FlushDiskType: cfg.FlushDiskType, Logger: cfg.EmbeddedLogger,
			RaftMaxInFlight: cfg.RaftMaxInFlight, LogCacheSize: cfg.LogCacheSize, GroupCommitMaxBytes: cfg.GroupCommitMaxBytes, PageCacheKeep: cfg.PageCacheKeep,
			RaftLogStore: cfg.RaftLogStore,
		})
		if err != nil {
			return nil, err
		}
		defer emb.Close()
		cfg.NameServers = []string{emb.NameServer()}
		logStore := emb.RaftLogStore()
		sum.Durability = fmt.Sprintf("%s, quorum ack (%d-node Raft group), Raft log in %s", cfg.FlushDiskType, cfg.EmbeddedNodes, logStore)
	}
	r := &runner{cfg: cfg, out: out, logger: logger, emb: emb, sum: sum}
	if err := r.run(ctx); err != nil {
		return nil, err
	}
	return sum, nil
}

type runner struct {
	cfg    Config
	out    io.Writer
	logger *slog.Logger
	emb    *Embedded
	sum    *Summary

	send, recv stats
	issued     atomic.Int64 // messages handed to a send call (for Total)
	warming    atomic.Bool  // the warm-up is running: Total does not apply
	heapMax    uint64
}

func (r *runner) clientConfig(name string) client.ClientConfig {
	return client.ClientConfig{
		NameServers:  r.cfg.NameServers,
		InstanceName: name + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 10),
		Logger:       r.logger.With("component", name),
	}
}

func (r *runner) run(ctx context.Context) error {
	cfg := r.cfg
	var producer *client.Producer
	if cfg.Mode != ModeConsumer || cfg.Embedded {
		pc := client.ProducerConfig{ClientConfig: r.clientConfig("bench-producer"), Group: "benchmark_producer", MaxAsyncInFlight: cfg.MaxInFlight}
		var err error
		producer, err = client.NewProducer(pc)
		if err != nil {
			return fmt.Errorf("bench: producer: %w", err)
		}
		defer producer.Close()
	}
	if cfg.Mode == ModeConsumer && cfg.Embedded {
		if err := r.preload(ctx, producer); err != nil {
			return err
		}
	}
	if cfg.Mode == ModeE2E && !cfg.Embedded {
		if err := r.ensureTopic(ctx); err != nil {
			return err
		}
	}
	var consumers []*client.PushConsumer
	if cfg.Mode != ModeProducer {
		from := client.ConsumeFromTimestamp
		if cfg.Embedded {
			from = client.ConsumeFromFirst // a fresh topic: everything in it is this run's
		}
		for i := range cfg.Consumers {
			c, err := client.NewPushConsumer(client.PushConsumerConfig{
				ClientConfig:     r.clientConfig("bench-consumer" + strconv.Itoa(i)),
				Group:            cfg.Group,
				ConsumeFrom:      from,
				ConsumeTimestamp: time.Now(),
				Listener:         r.listen,
				Concurrency:      cfg.ConsumeThreads,
				ConsumeBatchSize: 32,
				PullBatchSize:    32,
			})
			if err == nil {
				err = c.Subscribe(cfg.Topic, "*")
			}
			if err != nil {
				return fmt.Errorf("bench: consumer: %w", err)
			}
			defer c.Close()
			consumers = append(consumers, c)
		}
	}

	var termBefore uint64
	if r.emb != nil {
		termBefore, r.sum.Cluster = r.embTerm()
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("bench: cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench: cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if cfg.Trace != "" {
		f, err := os.Create(cfg.Trace)
		if err != nil {
			return fmt.Errorf("bench: trace: %w", err)
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return fmt.Errorf("bench: trace: %w", err)
		}
		defer trace.Stop()
	}

	if cfg.Warmup > 0 {
		if err := r.warmup(ctx, producer); err != nil {
			return err
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		var c2 context.CancelFunc
		runCtx, c2 = context.WithTimeout(runCtx, cfg.Duration)
		defer c2()
	}
	start := time.Now()
	r.send.lastProgress, r.recv.lastProgress = start, start
	for _, c := range consumers {
		if err := c.Start(ctx); err != nil {
			return fmt.Errorf("bench: consumer start: %w", err)
		}
	}

	// Reporter.
	repDone := make(chan struct{})
	var repWG sync.WaitGroup
	repWG.Add(1)
	go func() {
		defer repWG.Done()
		r.report(start, repDone)
	}()

	// Producers.
	var prodWG sync.WaitGroup
	if cfg.Mode != ModeConsumer {
		for w := range cfg.Workers {
			prodWG.Add(1)
			go func() {
				defer prodWG.Done()
				r.produce(runCtx, producer, w)
			}()
		}
	}
	prodWG.Wait()
	if producer != nil && cfg.Mode != ModeConsumer {
		producer.Close() // waits for async sends in flight
	}
	end := time.Now()

	// Consumers: until Total / Duration / ctx (consumer mode), or until they have what was
	// sent or stall for DrainTimeout (e2e).
	if cfg.Mode != ModeProducer {
		for {
			now := time.Now()
			got := r.recv.okTotal()
			if cfg.Mode == ModeConsumer {
				if runCtx.Err() != nil || (cfg.Total > 0 && got >= uint64(cfg.Total)) {
					break
				}
			} else if got >= r.send.okTotal() || r.recv.sinceProgress(now) > cfg.DrainTimeout && now.Sub(end) > cfg.DrainTimeout || ctx.Err() != nil {
				break
			}
			select {
			case <-time.After(5 * time.Millisecond):
			case <-runCtx.Done():
				if cfg.Mode == ModeConsumer {
					continue
				}
				runCtx = ctx // e2e: the deadline stops the producers, the consumer drains
			}
		}
	}
	consEnd := time.Now()
	close(repDone)
	repWG.Wait()
	for _, c := range consumers {
		c.Close()
	}

	if cfg.Mode != ModeConsumer {
		t := r.send.totals(end.Sub(start))
		r.sum.Send = &t
		r.sum.Elapsed = end.Sub(start).Seconds()
	}
	if cfg.Mode != ModeProducer {
		// Consumption rate over the time until the last message arrived.
		r.recv.mu.Lock()
		last := r.recv.lastProgress
		r.recv.mu.Unlock()
		if last.Before(start) || last.After(consEnd) {
			last = consEnd
		}
		d := last.Sub(start)
		if cfg.Mode == ModeConsumer {
			d = consEnd.Sub(start)
			r.sum.Elapsed = d.Seconds()
		}
		t := r.recv.totals(d)
		r.sum.Consume = &t
	}
	if r.emb != nil {
		r.sum.Cluster.TermBefore = termBefore
		_, c := r.embTerm()
		r.sum.Cluster.TermAfter, r.sum.Cluster.LeaderAfter = c.TermBefore, c.LeaderBefore
		r.sampleHeap()
		r.sum.Cluster.HeapInuseMax = r.heapMax
	}
	return nil
}

// ensureTopic creates the topic on every broker group with cfg.Queues queues when the name
// servers do not know it: an e2e run against an existing cluster starts its consumers before
// the first send, and a consumer cannot start on a topic without a route.
func (r *runner) ensureTopic(ctx context.Context) error {
	adm, err := client.NewAdmin(r.clientConfig("bench-admin"))
	if err != nil {
		return fmt.Errorf("bench: admin: %w", err)
	}
	defer adm.Close()
	if _, err := adm.Route(ctx, r.cfg.Topic); err == nil {
		return nil
	} else if !errors.Is(err, client.ErrTopicNotExist) {
		return fmt.Errorf("bench: route of %s: %w", r.cfg.Topic, err)
	}
	if err := adm.CreateTopic(ctx, client.TopicConfig{Topic: r.cfg.Topic, ReadQueues: r.cfg.Queues, WriteQueues: r.cfg.Queues}); err != nil {
		return fmt.Errorf("bench: create topic %s: %w", r.cfg.Topic, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := adm.Route(ctx, r.cfg.Topic); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("bench: topic %s created but not routed by the name servers after 10 s: %w", r.cfg.Topic, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r *runner) embTerm() (uint64, *Cluster) {
	t, l := r.emb.Term()
	return t, &Cluster{Nodes: len(r.emb.Nodes()), TermBefore: t, LeaderBefore: l}
}

func (r *runner) sampleHeap() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.heapMax = max(r.heapMax, ms.HeapInuse)
	return ms.HeapInuse
}

// newBody returns a body of cfg.Size bytes stamped with the current time when it has room.
func (r *runner) stamp(b []byte) []byte {
	if len(b) >= 16 {
		binary.BigEndian.PutUint64(b[0:8], magic)
		binary.BigEndian.PutUint64(b[8:16], uint64(time.Now().UnixNano()))
	}
	return b
}

func newBody(size int) []byte {
	b := make([]byte, size)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = 'a' + b[i]%26 // printable, like RocketMQ's benchmark bodies
	}
	return b
}

// take reserves n messages against Total; false when the run is complete.
func (r *runner) take(n int) bool {
	if r.cfg.Total <= 0 || r.warming.Load() {
		return true // the warm-up is bounded by time only
	}
	if r.issued.Add(int64(n)) > r.cfg.Total {
		return false
	}
	return true
}

func (r *runner) message(body []byte, w int, seq int64) *client.Message {
	m := &client.Message{Topic: r.cfg.Topic, Body: body}
	if r.cfg.Keys {
		m.Keys = []string{"k" + strconv.Itoa(w) + "_" + strconv.FormatInt(seq, 10)}
	}
	return m
}

// warmup runs the producers' load for cfg.Warmup, then forgets what it recorded. Async
// sends still in flight at its end complete into the measured run (at most MaxInFlight).
func (r *runner) warmup(ctx context.Context, p *client.Producer) error {
	wctx, cancel := context.WithTimeout(ctx, r.cfg.Warmup)
	defer cancel()
	r.warming.Store(true)
	defer r.warming.Store(false)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range r.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.produce(wctx, p, w)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bench: warm-up: %w", err)
	}
	ok := r.send.okTotal()
	fmt.Fprintf(r.out, "warm-up %.1fs: %d messages, %.0f msgs/s (not counted)\n", time.Since(start).Seconds(), ok, float64(ok)/time.Since(start).Seconds())
	r.sum.WarmupSecs = time.Since(start).Seconds()
	r.send.reset(time.Now())
	r.issued.Store(0)
	return nil
}

func (r *runner) produce(ctx context.Context, p *client.Producer, w int) {
	cfg := r.cfg
	sendCtx := context.WithoutCancel(ctx) // a send in flight at the deadline still completes
	var seq int64
	switch {
	case cfg.Batch > 1:
		bodies := make([][]byte, cfg.Batch)
		for i := range bodies {
			bodies[i] = newBody(cfg.Size)
		}
		msgs := make([]*client.Message, cfg.Batch)
		for ctx.Err() == nil && r.take(cfg.Batch) {
			for i := range msgs {
				seq++
				msgs[i] = r.message(r.stamp(bodies[i]), w, seq)
			}
			t0 := time.Now()
			_, err := p.SendBatch(sendCtx, msgs)
			if err != nil {
				r.send.failure(cfg.Batch)
				r.logger.Debug("batch send failed", "err", err)
				continue
			}
			r.send.success(cfg.Batch, cfg.Batch*cfg.Size, time.Since(t0))
		}
	case cfg.Async:
		tmpl := newBody(cfg.Size)
		for ctx.Err() == nil && r.take(1) {
			seq++
			body := make([]byte, cfg.Size)
			copy(body, tmpl)
			t0 := time.Now()
			err := p.SendAsync(sendCtx, r.message(r.stamp(body), w, seq), func(_ *client.SendResult, err error) {
				if err != nil {
					r.send.failure(1)
					r.logger.Debug("async send failed", "err", err)
					return
				}
				r.send.success(1, cfg.Size, time.Since(t0))
			})
			if err != nil {
				r.send.failure(1)
				if errors.Is(err, client.ErrClosed) {
					return
				}
			}
		}
	default:
		body := newBody(cfg.Size)
		for ctx.Err() == nil && r.take(1) {
			seq++
			m := r.message(r.stamp(body), w, seq)
			t0 := time.Now()
			_, err := p.Send(sendCtx, m)
			if err != nil {
				r.send.failure(1)
				r.logger.Debug("send failed", "err", err)
				continue
			}
			r.send.success(1, cfg.Size, time.Since(t0))
		}
	}
}

func (r *runner) listen(_ context.Context, msgs []*client.MessageExt) client.ConsumeResult {
	now := time.Now()
	for _, m := range msgs {
		var lat time.Duration
		if len(m.Body) >= 16 && binary.BigEndian.Uint64(m.Body[0:8]) == magic {
			lat = now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(m.Body[8:16]))))
		} else {
			lat = now.Sub(m.BornTimestamp) // millisecond resolution
		}
		r.recv.success(1, len(m.Body), lat)
	}
	return client.ConsumeSuccess
}

// preload writes the consumer mode's backlog with batches from 8 goroutines.
func (r *runner) preload(ctx context.Context, p *client.Producer) error {
	t0 := time.Now()
	var left atomic.Int64
	left.Store(r.cfg.Preload)
	var done atomic.Uint64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := newBody(r.cfg.Size)
			var msgs []*client.Message
			for ctx.Err() == nil {
				n := min(left.Add(-64)+64, 64)
				if n <= 0 {
					return
				}
				msgs = msgs[:0]
				for i := int64(0); i < n; i++ {
					msgs = append(msgs, r.message(body, w, i))
				}
				if _, err := p.SendBatch(ctx, msgs); err != nil {
					firstErr.CompareAndSwap(nil, err)
					left.Add(n) // retry these
					if !client.Retryable(err) {
						return
					}
					continue
				}
				done.Add(uint64(n))
			}
		}()
	}
	wg.Wait()
	r.sum.Preloaded = done.Load()
	r.sum.PreloadSecs = time.Since(t0).Seconds()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bench: preload: %w", err)
	}
	if done.Load() < uint64(r.cfg.Preload) {
		return fmt.Errorf("bench: preload: %d of %d stored: %v", done.Load(), r.cfg.Preload, firstErr.Load())
	}
	fmt.Fprintf(r.out, "preloaded %d messages of %d B in %.1f s\n", done.Load(), r.cfg.Size, r.sum.PreloadSecs)
	return nil
}

func (r *runner) report(start time.Time, done <-chan struct{}) {
	t := time.NewTicker(r.cfg.ReportInterval)
	defer t.Stop()
	last := start
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			d := now.Sub(last)
			last = now
			heap := r.sampleHeap()
			at := now.Sub(start).Seconds()
			if r.cfg.Mode != ModeConsumer {
				tp := r.send.takeInterval(d)
				fmt.Fprintf(r.out, "[%6.1fs] send %s\n", at, formatThroughput(tp, "latency"))
			}
			if r.cfg.Mode != ModeProducer {
				tp := r.recv.takeInterval(d)
				fmt.Fprintf(r.out, "[%6.1fs] recv %s\n", at, formatThroughput(tp, "born→consumed"))
			}
			if r.emb != nil {
				term, leader := r.emb.Term()
				fmt.Fprintf(r.out, "[%6.1fs] heap in use %.1f MiB, raft term %d, leader %s\n", at, float64(heap)/(1<<20), term, leader)
			}
		}
	}
}

func formatThroughput(t Throughput, what string) string {
	l := t.Latency
	return fmt.Sprintf("%9.0f msgs/s %7.2f MB/s  %s ms avg %.3f p50 %.3f p99 %.3f p999 %.3f max %.3f  failed %d",
		t.MsgsPerSec, t.MBPerSec, what, l.Avg, l.P50, l.P99, l.P999, l.Max, t.Failed)
}

// WriteText writes the summary for people.
func (s *Summary) WriteText(w io.Writer) {
	how := "sync, one send in flight per worker"
	switch {
	case s.Batch > 1:
		how = fmt.Sprintf("sync batches of %d", s.Batch)
	case s.Async:
		how = "async (pipelined)"
	}
	if s.Mode == ModeConsumer {
		how = fmt.Sprintf("%d consumer(s) × %d listener goroutines", s.Consumers, s.ConsumeThreads)
	} else {
		how = fmt.Sprintf("%d workers, %s", s.Workers, how)
	}
	if s.Mode == ModeE2E {
		how += fmt.Sprintf("; %d consumer(s) × %d listener goroutines", s.Consumers, s.ConsumeThreads)
	}
	fmt.Fprintf(w, "== summary: %s, topic %s, %d B bodies, %s, %.1f s measured\n", s.Mode, s.Topic, s.Size, how, s.Elapsed)
	if s.WarmupSecs > 0 {
		fmt.Fprintf(w, "   after a %.1f s warm-up of the same load (not counted)\n", s.WarmupSecs)
	}
	fmt.Fprintf(w, "   durability: %s; GOMAXPROCS %d, %s\n", s.Durability, s.GOMAXPROCS, s.GoVersion)
	if s.Preloaded > 0 {
		fmt.Fprintf(w, "   preloaded: %d messages in %.1f s\n", s.Preloaded, s.PreloadSecs)
	}
	if s.Send != nil {
		fmt.Fprintf(w, "   send:    ok %d, %s\n", s.Send.OK, formatThroughput(*s.Send, "latency"))
	}
	if s.Consume != nil {
		fmt.Fprintf(w, "   consume: ok %d, %s\n", s.Consume.OK, formatThroughput(*s.Consume, "born→consumed"))
	}
	if c := s.Cluster; c != nil {
		fmt.Fprintf(w, "   cluster: %d nodes, raft term %d → %d, leader %s → %s, heap in use max %.1f MiB (whole process: nodes + clients)\n",
			c.Nodes, c.TermBefore, c.TermAfter, c.LeaderBefore, c.LeaderAfter, float64(c.HeapInuseMax)/(1<<20))
	}
	if s.CPUProfile != "" {
		fmt.Fprintf(w, "   cpu profile: %s (go tool pprof -top %s)\n", s.CPUProfile, s.CPUProfile)
	}
}
