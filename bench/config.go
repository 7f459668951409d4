package bench

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/raftmq/raftmq/node"
)

// Mode is what a run measures.
type Mode string

// Modes.
const (
	ModeProducer Mode = "producer" // send only; consumer mode's numbers are absent
	ModeConsumer Mode = "consumer" // consume only (embedded: a preloaded backlog, from the first message)
	ModeE2E      Mode = "e2e"      // send and consume at once; the consumer reports born → consumed latency
)

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("bench: invalid config")

// Config configures a run. Zero values take the defaults (see DefaultConfig).
type Config struct {
	Mode        Mode
	NameServers []string // -n; required unless Embedded
	Topic       string   // -t, default "BenchmarkTest"
	Group       string   // consumer group; default a fresh "benchmark_consumer_<time>" per run
	Workers     int      // -w: sending goroutines (sync: one send in flight each), default 64
	Size        int      // -s: body bytes, default 128 (RocketMQ's); the standard scenario uses 1024
	Keys        bool     // -k: give every message a unique key (indexed by the broker)
	Total       int64    // -q: stop after this many messages sent (producer, e2e) or consumed (consumer); 0 = no limit
	Async       bool     // -y: SendAsync, up to MaxInFlight pending per producer
	Batch       int      // -b: messages per SendBatch; 1 (default) sends them one by one
	MaxInFlight int      // async sends pending per producer; default the client's (512)
	// ReportInterval (-ri) is the period of the interval lines; default 1 s.
	ReportInterval time.Duration
	// Duration bounds the measured run; 0 = until Total or the context ends.
	Duration time.Duration
	// Warmup (producer mode) is a phase of the same load before the measured run, not
	// counted, to separate start-up effects from the steady state (on the round-6 VM it
	// showed none worth the name: docs/BENCHMARKS.md).
	Warmup time.Duration
	// Consumers is the number of push consumers (one group) in consumer and e2e modes; default 1.
	Consumers int
	// ConsumeThreads is each consumer's listener concurrency; default 4.
	ConsumeThreads int
	// DrainTimeout (e2e): after the producers stop, how long the consumer may go without
	// progress before the run ends with what it got; default 5 s.
	DrainTimeout time.Duration

	// Embedded starts a name server and an EmbeddedNodes-node group in-process (NameServers
	// is then ignored) and removes its data at the end.
	Embedded      bool
	EmbeddedNodes int                // default 3
	FlushDiskType node.FlushDiskType // embedded durability, default ASYNC_FLUSH
	Queues        int                // queues of the topic bench creates (embedded, or e2e on a cluster without it), default 8
	// Embedded node levers (0 = the node's defaults); see EmbeddedConfig.
	RaftMaxInFlight     int
	LogCacheSize        int
	GroupCommitMaxBytes int
	PageCacheKeep       int64                 // embedded commitLogPageCacheKeep (0 = the node default, 256 MiB; -1 never drops)
	RaftLogStore        node.RaftLogStoreKind // embedded raftLogStore ("" = the node default, auto: wal on a fresh group)
	// Preload (embedded consumer mode) is the backlog written before consuming; default
	// Total, else 200000.
	Preload int64

	// CPUProfile, when set, is written with the CPU profile of the measured part of the run
	// (embedded nodes included: they run in this process).
	CPUProfile string
	// Trace, when set, is written with the Go execution trace of the measured part of the
	// run (go tool trace; -pprof=sync|syscall|sched gives where goroutines wait).
	Trace string
	// Out receives the interval lines; nil discards them.
	Out io.Writer
	// Logger receives the clients' logs; nil discards them.
	Logger *slog.Logger
	// EmbeddedLogger receives the embedded name server's and nodes' logs (their shutdown is
	// noisy: peers going away); nil discards them.
	EmbeddedLogger *slog.Logger
}

// DefaultConfig returns the defaults (RocketMQ's benchmark defaults where they exist).
func DefaultConfig() Config {
	return Config{
		Mode:           ModeProducer,
		Topic:          "BenchmarkTest",
		Workers:        64,
		Size:           128,
		Batch:          1,
		ReportInterval: time.Second,
		Consumers:      1,
		ConsumeThreads: 4,
		DrainTimeout:   5 * time.Second,
		EmbeddedNodes:  3,
		FlushDiskType:  node.AsyncFlush,
		Queues:         8,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Mode == "" {
		c.Mode = d.Mode
	}
	if c.Topic == "" {
		c.Topic = d.Topic
	}
	if c.Workers == 0 {
		c.Workers = d.Workers
	}
	if c.Size == 0 {
		c.Size = d.Size
	}
	if c.Batch == 0 {
		c.Batch = d.Batch
	}
	if c.ReportInterval == 0 {
		c.ReportInterval = d.ReportInterval
	}
	if c.Consumers == 0 {
		c.Consumers = d.Consumers
	}
	if c.ConsumeThreads == 0 {
		c.ConsumeThreads = d.ConsumeThreads
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = d.DrainTimeout
	}
	if c.EmbeddedNodes == 0 {
		c.EmbeddedNodes = d.EmbeddedNodes
	}
	if c.FlushDiskType == "" {
		c.FlushDiskType = d.FlushDiskType
	}
	if c.Queues == 0 {
		c.Queues = d.Queues
	}
	if c.Preload == 0 {
		c.Preload = c.Total
		if c.Preload == 0 {
			c.Preload = 200_000
		}
	}
	if c.Group == "" {
		c.Group = fmt.Sprintf("benchmark_consumer_%d", time.Now().UnixNano())
	}
	return c
}

// Validate reports the first invalid field (after defaults are applied).
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Mode != ModeProducer && c.Mode != ModeConsumer && c.Mode != ModeE2E:
		return bad("Mode %q: must be producer, consumer or e2e", c.Mode)
	case !c.Embedded && len(c.NameServers) == 0:
		return bad("NameServers: required unless Embedded (-n or --embedded)")
	case c.Workers < 1 || c.Workers > 10000:
		return bad("Workers %d: must be 1..10000", c.Workers)
	case c.Size < 1 || c.Size > 4<<20:
		return bad("Size %d: must be 1..4194304 bytes", c.Size)
	case c.Total < 0:
		return bad("Total %d: must be ≥ 0", c.Total)
	case c.Batch < 1 || c.Batch > 1024:
		return bad("Batch %d: must be 1..1024", c.Batch)
	case c.Batch > 1 && c.Async:
		return bad("Batch %d with Async: batches are sent synchronously (use more Workers)", c.Batch)
	case c.MaxInFlight < 0:
		return bad("MaxInFlight %d: must be ≥ 0", c.MaxInFlight)
	case c.ReportInterval < 10*time.Millisecond:
		return bad("ReportInterval %v: must be ≥ 10ms", c.ReportInterval)
	case c.Duration < 0:
		return bad("Duration %v: must be ≥ 0", c.Duration)
	case c.Consumers < 1 || c.Consumers > 64:
		return bad("Consumers %d: must be 1..64", c.Consumers)
	case c.ConsumeThreads < 1 || c.ConsumeThreads > 1000:
		return bad("ConsumeThreads %d: must be 1..1000", c.ConsumeThreads)
	case c.DrainTimeout < 0:
		return bad("DrainTimeout %v: must be ≥ 0", c.DrainTimeout)
	case c.EmbeddedNodes < 1 || c.EmbeddedNodes > 9:
		return bad("EmbeddedNodes %d: must be 1..9", c.EmbeddedNodes)
	case c.FlushDiskType != node.AsyncFlush && c.FlushDiskType != node.SyncFlush:
		return bad("FlushDiskType %q: must be ASYNC_FLUSH or SYNC_FLUSH", c.FlushDiskType)
	case c.Queues < 1 || c.Queues > 1024:
		return bad("Queues %d: must be 1..1024", c.Queues)
	case c.PageCacheKeep < -1:
		return bad("PageCacheKeep %d: must be ≥ -1", c.PageCacheKeep)
	case c.RaftMaxInFlight < 0 || c.LogCacheSize < 0 || c.GroupCommitMaxBytes < 0:
		return bad("RaftMaxInFlight %d, LogCacheSize %d, GroupCommitMaxBytes %d: must be ≥ 0", c.RaftMaxInFlight, c.LogCacheSize, c.GroupCommitMaxBytes)
	case c.RaftLogStore != "" && c.RaftLogStore != node.RaftLogAuto && c.RaftLogStore != node.RaftLogBolt && c.RaftLogStore != node.RaftLogWAL:
		return bad("RaftLogStore %q: must be auto, boltdb or wal", c.RaftLogStore)
	case c.Warmup < 0:
		return bad("Warmup %v: must be ≥ 0", c.Warmup)
	case c.Warmup > 0 && c.Mode != ModeProducer:
		return bad("Warmup %v: only in producer mode", c.Warmup)
	case c.Preload < 0:
		return bad("Preload %d: must be ≥ 0", c.Preload)
	}
	return nil
}
