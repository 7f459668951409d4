package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/transport"
)

// Defaults of Options.
const (
	DefaultRegisterInterval = 30 * time.Second
	DefaultSendTimeout      = 3 * time.Second
	DefaultLogCacheSize     = 64 // entries; each holds up to groupCommitMaxBytes, so 512 cost ~200 MiB of heap for no throughput (docs/BENCHMARKS.md)
	DefaultMaxInFlight      = 3
	DefaultSnapshotRetain   = 2
)

// Options are the knobs of a node that are not broker.conf keys (tests, embedding).
type Options struct {
	Logger *slog.Logger // nil discards

	// ListenAddr overrides the remoting listen address (default ":listenPort"); tests use
	// "127.0.0.1:0" and then read Node.Addr. The advertised address stays cfg.Addr() unless
	// ListenAddr chose the port (port 0), in which case the real port is advertised.
	ListenAddr string
	// RaftBindAddr overrides the address the Raft transport listens on; the advertised Raft
	// address stays the configured one (tests put a proxy in front).
	RaftBindAddr string
	// RaftAddressProvider overrides the address dialled for each peer (tests route each
	// ordered pair of nodes through its own proxy to cut links).
	RaftAddressProvider raft.ServerAddressProvider
	// RaftTransport replaces the TCP transport entirely (e.g. raft.InmemTransport).
	RaftTransport raft.Transport

	RegisterInterval time.Duration // name-server re-registration period, default 30 s
	// NamesrvHeartbeatTimeout asks the name servers to expire this node after this long
	// without registration (0: their default, 120 s).
	NamesrvHeartbeatTimeout time.Duration
	SendTimeout             time.Duration // longest a send waits for its acknowledgement, default 3 s
	JoinRetryInterval       time.Duration // classic slaves: how often to ask the master to add them, default 1 s
	LogCacheSize            int           // raft.NewLogCache size in entries, default 64
	MaxInFlight             int           // Raft entries of the group-commit batcher in flight, default 3
	RaftLogLevel            hclog.Level   // default hclog.Info
	// SnapshotRetain is how many raft snapshots are kept, default 2.
	SnapshotRetain int
	// BatchApplyCh turns raft's BatchApplyCh on. It is off by default: group commit already
	// puts many sends into one entry with at most MaxInFlight entries in flight, and measured
	// with 64 senders on 3 nodes it made no difference (25.5-26.5k msgs/s either way), while
	// raft v1.7.3 never answers futures still buffered in that channel when it shuts down.
	BatchApplyCh bool
	// DiskUsage and DiskCheckInterval are passed to the commitlog's disk guard (tests fake a
	// full disk); nil / 0 = statfs every 2 s.
	DiskUsage         func(path string) (float64, error)
	DiskCheckInterval time.Duration
	// Consumer side (consumer*.go, offsets.go, lock.go); 0 = defaults.
	OffsetFlushInterval time.Duration // flushConsumerOffsetInterval: offsets proposed per interval, default 5 s
	ClientExpiry        time.Duration // a client channel without heartbeat is dropped after this, default 120 s
	LockExpiry          time.Duration // an orderly-consumer queue lock lapses without renewal, default 60 s
	// WrapRaftLogStore is for tests and fault injection only (nil in production): it wraps the
	// raft.LogStore methods of the node's Raft log store, e.g. with a StoreLogs that blocks. It
	// sits inside the stall watchdog's wrapper (watchdog.go), so the watchdog sees what it does;
	// Sync, Close and IsMonotonic still go to the real store.
	WrapRaftLogStore func(raft.LogStore) raft.LogStore
}

func (o *Options) fill() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RegisterInterval <= 0 {
		o.RegisterInterval = DefaultRegisterInterval
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = DefaultSendTimeout
	}
	if o.JoinRetryInterval <= 0 {
		o.JoinRetryInterval = time.Second
	}
	if o.LogCacheSize <= 0 {
		o.LogCacheSize = DefaultLogCacheSize
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.RaftLogLevel == hclog.NoLevel {
		o.RaftLogLevel = hclog.Info
	}
	if o.SnapshotRetain <= 0 {
		o.SnapshotRetain = DefaultSnapshotRetain
	}
}

// Node is one running broker node. Its methods are safe for concurrent use.
type Node struct {
	cfg  Config
	opts Options
	log  *slog.Logger

	serverID  raft.ServerID
	raftAddr  raft.ServerAddress
	addr      string         // advertised broker address (ip:port)
	storeHost netip.AddrPort // addr parsed, stamped into records
	slaveID   int64          // brokerId registered while not leader

	store        *commitlog.Log
	fsm          *fsm.FSM
	raftLog      raftLogStore          // bolt or WAL (through logWatch), behind the LogCache
	logStoreKind RaftLogStoreKind      // the store raftLog is (raftLogStore resolved: never auto)
	logWatch     *watchedLogStore      // the raft log store with its writes timed (watchdog.go)
	stable       *raftboltdb.BoltStore // term and vote, always fsynced (nil when the bolt log file holds them)
	snaps        raft.SnapshotStore
	trans        raft.Transport
	raftTrans    *fencingTransport // trans as raft sees it: fenced after a stalled log write (watchdog.go)
	raft         *raft.Raft
	server       *transport.Server
	mux          *transport.Mux
	client       *transport.Client
	batcher      *batcher
	offsets      *offsetCommitter
	consumers    *consumerSide // heartbeating clients, subscriptions, locks (consumer*.go)
	sendSem      chan struct{}
	pullSem      chan struct{}
	observer     *raft.Observer
	observeCh    chan raft.Observation

	regKick    chan struct{}
	shutdownCh chan struct{}
	raftDown   chan struct{} // closed once raft has shut down
	wg         sync.WaitGroup

	fatal       atomic.Pointer[error]
	fenced      atomic.Pointer[error] // why the node fenced itself (watchdog.go); nil = not fenced
	closing     atomic.Bool
	closeOnce   sync.Once
	closeErr    error
	leaderEpoch atomic.Int64 // term in which this node last became leader (0: not leader)
	leaderReady atomic.Bool  // leader and caught up (barrier done): registered as brokerId 0
	registered  atomic.Int64 // 1 + the brokerId of the last registration a name server accepted; 0 = none
	queueRR     atomic.Uint32

	peerMu    sync.Mutex
	peerAddrs map[raft.ServerID]string // known broker addresses of other members (forwarding, fetch)

	admin adminState // admin_api.go, broker_config.go, stats.go: live broker config and statistics
}

// ErrNotLeader is returned for writes on a node that is not the Raft leader.
var (
	ErrNotLeader     = errors.New("node: not leader")
	ErrNoLeader      = errors.New("node: no leader known")
	ErrShuttingDown  = errors.New("node: shutting down")
	ErrFatal         = errors.New("node: stopped serving after a fatal apply error")
	ErrTopicNotExist = errors.New("node: topic does not exist")
	ErrNoPermission  = errors.New("node: no permission")
	ErrQueueID       = errors.New("node: queue id out of range")
	ErrNotStored     = errors.New("node: not stored: timed out before the message was proposed")
	ErrCommitTimeout = errors.New("node: not acknowledged by a quorum in time")
	ErrBadRequest    = errors.New("node: bad request")
)

// New opens the node's stores, starts Raft, the remoting server and the background loops.
// cfg must be valid (Validate is called again).
func New(cfg Config, opts Options) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts.fill()
	n := &Node{
		cfg:        cfg,
		opts:       opts,
		log:        opts.Logger.With("broker", cfg.BrokerName),
		regKick:    make(chan struct{}, 1),
		shutdownCh: make(chan struct{}),
		raftDown:   make(chan struct{}),
		sendSem:    make(chan struct{}, cfg.SendMessageThreadPoolNums),
		pullSem:    make(chan struct{}, cfg.PullMessageThreadPoolNums),
		peerAddrs:  map[raft.ServerID]string{},
	}
	n.serverID, n.raftAddr, n.slaveID = identity(&cfg)
	ok := false
	defer func() {
		if !ok {
			n.shutdown(false)
		}
	}()
	if err := n.openStores(); err != nil {
		return nil, err
	}
	// The remoting server listens before Raft starts so that the advertised address is known
	// for stamping and peers can fetch from us as soon as we are in a group.
	n.mux = transport.NewMux()
	n.routes()
	listen := opts.ListenAddr
	if listen == "" {
		listen = net.JoinHostPort("", strconv.Itoa(cfg.ListenPort))
	}
	srv, err := transport.NewServer(transport.ServerConfig{Addr: listen, Logger: n.log.With("component", "remoting"), OnConnClose: n.onConnClose}, n.mux)
	if err != nil {
		return nil, fmt.Errorf("node: listen remoting %s: %w", listen, err)
	}
	n.server = srv
	n.addr = cfg.Addr()
	if _, port, _ := net.SplitHostPort(listen); port == "0" || cfg.ListenPort == 0 {
		_, real, _ := net.SplitHostPort(srv.Addr().String())
		n.addr = net.JoinHostPort(cfg.BrokerIP1, real)
	}
	n.storeHost, err = netip.ParseAddrPort(n.addr)
	if err != nil {
		return nil, fmt.Errorf("node: advertised address %q: %w", n.addr, err)
	}
	n.client, err = transport.NewClient(transport.ClientConfig{Logger: n.log.With("component", "client")})
	if err != nil {
		return nil, fmt.Errorf("node: remoting client: %w", err)
	}
	if err := n.startRaft(); err != nil {
		return nil, err
	}
	n.batcher = newBatcher(n)
	n.offsets = &offsetCommitter{n: n, pending: map[offsetKey]int64{}}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("node: start remoting server: %w", err)
	}
	n.goFunc(n.batcher.run)
	n.goFunc(n.batcher.complete)
	n.goFunc(n.roleLoop)
	n.goFunc(n.offsets.run)
	n.startFlows() // delayed delivery, transaction checks, TBW102 (delay.go)
	n.goFunc(n.registerLoop)
	n.startMetrics() // refresh the go-metrics gauges every MetricsInterval (metrics.go)
	if n.cfg.FlushDiskType == AsyncFlush && n.raftLog != nil {
		n.goFunc(n.raftLogSyncLoop)
	}
	if !n.cfg.EnableDLegerCommitLog && n.cfg.BrokerID > 0 {
		n.goFunc(n.joinLoop)
	}
	if n.cfg.RaftLogStallTimeout > 0 {
		n.goFunc(n.logStallWatchdog)
	}
	if cfg.EnableDLegerCommitLog && string(n.raftAddr) != cfg.RaftAddr() && opts.RaftTransport == nil {
		n.log.Warn("the Raft transport uses this node's dLegerPeers address, not brokerIP2:haListenPort",
			"dLegerPeers", n.raftAddr, "haAddr", cfg.RaftAddr())
	}
	ok = true
	n.log.Info("broker node started", "addr", n.addr, "raftAddr", n.raftAddr, "serverID", n.serverID,
		"mode", n.mode(), "flushDiskType", cfg.FlushDiskType)
	return n, nil
}

// masterServerID is the Raft server ID of a classic master (brokerId 0).
const masterServerID raft.ServerID = "b0"

// identity derives the Raft server ID, Raft address and slave brokerId of the node.
func identity(cfg *Config) (raft.ServerID, raft.ServerAddress, int64) {
	if cfg.EnableDLegerCommitLog {
		addr := cfg.RaftAddr()
		for _, p := range cfg.DLegerPeers {
			if p.ID == cfg.DLegerSelfID {
				addr = p.Addr
			}
		}
		id := int64(1)
		if k, err := strconv.ParseInt(strings.TrimLeft(cfg.DLegerSelfID, "nN"), 10, 64); err == nil && k >= 0 {
			id = k + 1
		}
		return raft.ServerID(cfg.DLegerSelfID), raft.ServerAddress(addr), id
	}
	slave := cfg.BrokerID
	if slave == 0 {
		// A classic master that lost leadership (admin transfer) registers under an id no
		// slave of the seed's layouts uses.
		slave = 100
	}
	return raft.ServerID("b" + strconv.FormatInt(cfg.BrokerID, 10)), raft.ServerAddress(cfg.RaftAddr()), slave
}

func (n *Node) mode() string {
	switch {
	case n.cfg.EnableDLegerCommitLog:
		return "dledger"
	case n.cfg.BrokerID > 0:
		return "slave"
	default:
		return strings.ToLower(string(n.cfg.BrokerRole))
	}
}

func (n *Node) goFunc(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// pageCacheKeep maps commitLogPageCacheKeep to commitlog.Config.PageCacheKeep, whose zero
// means its default: 0 (keep nothing) becomes one byte, which drops the same whole pages.
func pageCacheKeep(v int64) int64 {
	if v == 0 {
		return 1
	}
	return v
}

func (n *Node) openStores() error {
	c := n.cfg
	clcfg := commitlog.Config{
		RootDir:                           c.StorePathRootDir,
		CommitLogDir:                      c.StorePathCommitLog,
		ConsumeQueueDir:                   c.StorePathConsumeQueue,
		IndexDir:                          c.StorePathIndex,
		CheckpointPath:                    c.StoreCheckpoint,
		AbortPath:                         c.AbortFile,
		MappedFileSizeCommitLog:           c.MappedFileSizeCommitLog,
		MappedFileSizeConsumeQueue:        c.MappedFileSizeConsumeQueue,
		MaxMessageSize:                    c.MaxMessageSize,
		FlushIntervalCommitLog:            c.FlushIntervalCommitLog,
		FlushCommitLogLeastPages:          c.FlushCommitLogLeastPages,
		FlushCommitLogThoroughInterval:    c.FlushCommitLogThoroughInterval,
		FlushIntervalConsumeQueue:         c.FlushIntervalConsumeQueue,
		FlushConsumeQueueLeastPages:       c.FlushConsumeQueueLeastPages,
		FlushConsumeQueueThoroughInterval: c.FlushConsumeQueueThoroughInterval,
		FileReservedTime:                  c.FileReservedTime,
		DeleteWhen:                        c.DeleteWhen,
		DiskMaxUsedSpaceRatio:             c.DiskMaxUsedSpaceRatio,
		DelayLevels:                       c.MessageDelayLevel,
		Index:                             commitlog.IndexConfig{MaxHashSlots: c.MaxHashSlotNum, MaxIndexCount: c.MaxIndexNum},
		PageCacheKeep:                     pageCacheKeep(c.CommitLogPageCacheKeep),
		Logger:                            n.log.With("component", "commitlog"),
		DiskUsage:                         n.opts.DiskUsage,
		DiskCheckInterval:                 n.opts.DiskCheckInterval,
	}
	store, err := commitlog.Open(clcfg)
	if err != nil {
		return fmt.Errorf("node: open commitlog: %w", err)
	}
	n.store = store
	if err := os.MkdirAll(c.RaftDir, 0o755); err != nil {
		return fmt.Errorf("node: create raft dir: %w", err)
	}
	f, err := fsm.New(fsm.Config{
		Log:      store,
		MetaPath: filepath.Join(c.StorePathRootDir, "meta.db"),
		Fetcher:  &fetcher{n: n},
		OnFatal:  n.onFatal,
		Logger:   n.log.With("component", "fsm"),
	})
	if err != nil {
		return fmt.Errorf("node: open fsm: %w", err)
	}
	n.fsm = f
	return nil
}

func (n *Node) onFatal(err error) {
	n.fatal.Store(&err)
	n.log.Error("fatal apply error: this node stops serving", "err", err)
	// Shut raft down so the node takes no further part in the group; Close does the rest.
	n.goFunc(func() {
		if r := n.raft; r != nil {
			r.Shutdown()
		}
	})
}

// Addr is the node's advertised broker address (what clients and name servers see).
func (n *Node) Addr() string { return n.addr }

// RaftAddr is the node's advertised Raft address.
func (n *Node) RaftAddr() string { return string(n.raftAddr) }

// ServerID is the node's Raft server ID.
func (n *Node) ServerID() string { return string(n.serverID) }

// Config returns the node's configuration.
func (n *Node) Config() Config { return n.cfg }

// FSM exposes the node's state machine (read side) for tests and tools.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// Store exposes the node's commitlog for tests and tools.
func (n *Node) Store() *commitlog.Log { return n.store }

// Raft exposes the node's raft instance for tests and tools.
func (n *Node) Raft() *raft.Raft { return n.raft }

// RaftLogStore is the Raft log store the node runs on: raftLogStore with auto resolved.
func (n *Node) RaftLogStore() RaftLogStoreKind { return n.logStoreKind }

// IsLeader reports whether this node is the Raft leader. A fenced node (watchdog.go) is not,
// whatever its stuck raft still says.
func (n *Node) IsLeader() bool {
	return n.raft != nil && n.fenced.Load() == nil && n.raft.State() == raft.Leader
}

// Close shuts the node down gracefully: a leader transfers leadership first, the node
// unregisters from the name servers, then everything stops in reverse order of start.
// Idempotent; later calls return the first result.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.shutdown(true) })
	return n.closeErr
}

// Abort stops the node as close to a crash as an in-process stop allows: no leadership
// transfer, no unregistration, raft shut down at once, files closed. Idempotent with Close.
func (n *Node) Abort() error {
	n.closeOnce.Do(func() { n.closeErr = n.shutdown(false) })
	return n.closeErr
}

func (n *Node) shutdown(graceful bool) error {
	n.closing.Store(true)
	var errs []error
	// A fenced node skips the graceful steps: its raft loop may be stuck in the stalled write
	// (a leadership transfer would wait for it forever) and it has unregistered already.
	if graceful && n.raft != nil && n.fenced.Load() == nil {
		if n.offsets != nil && n.raft.State() == raft.Leader {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := n.offsets.flush(ctx); err != nil {
				n.log.Warn("committing consumer offsets before shutdown failed", "err", err)
			}
			cancel()
		}
		if n.raft.State() == raft.Leader && n.voterCount() > 1 {
			if err := n.raft.LeadershipTransfer().Error(); err != nil {
				n.log.Warn("leadership transfer before shutdown failed", "err", err)
			}
		}
		n.unregister()
	}
	if n.shutdownCh != nil {
		select {
		case <-n.shutdownCh:
		default:
			close(n.shutdownCh)
		}
	}
	if n.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.server.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close remoting server: %w", err))
		}
		cancel()
	}
	if n.raft != nil {
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("shutdown raft: %w", err))
		}
	}
	close(n.raftDown)
	n.wg.Wait()
	if n.observer != nil && n.raft != nil {
		n.raft.DeregisterObserver(n.observer)
	}
	if nt, ok := n.trans.(*raft.NetworkTransport); ok && n.opts.RaftTransport == nil {
		nt.CloseStreams() // pooled outgoing connections: the peers' handlers would wait on them forever
	}
	if c, ok := n.trans.(interface{ Close() error }); ok && n.opts.RaftTransport == nil {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft transport: %w", err))
		}
	}
	if n.client != nil {
		n.client.Close()
	}
	if n.raftLog != nil {
		if n.cfg.FlushDiskType == AsyncFlush {
			_ = n.raftLog.Sync()
		}
		if err := n.raftLog.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft log: %w", err))
		}
	}
	if n.stable != nil {
		if err := n.stable.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft stable store: %w", err))
		}
	}
	if n.fsm != nil {
		if err := n.fsm.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close fsm: %w", err))
		}
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close commitlog: %w", err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("node: close: %w", errors.Join(errs...))
	}
	return nil
}

// serving returns nil when the node may serve requests.
func (n *Node) serving() error {
	if p := n.fatal.Load(); p != nil {
		return fmt.Errorf("%w: %v", ErrFatal, *p)
	}
	if p := n.fenced.Load(); p != nil {
		return *p
	}
	if n.closing.Load() {
		return ErrShuttingDown
	}
	return nil
}

// LeaderReady reports whether this node is the leader and has caught up with everything
// committed before its election (it then registers as brokerId 0 and accepts writes).
func (n *Node) LeaderReady() bool { return n.leaderReady.Load() && n.IsLeader() }
