package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/node"
)

// EmbeddedConfig configures an in-process cluster: one name server and an n-node DLedger group
// on 127.0.0.1 with data in a temporary directory removed at Close.
type EmbeddedConfig struct {
	Nodes         int                // group size, default 3
	Topic         string             // created with Queues queues (required)
	Queues        int                // default 8
	FlushDiskType node.FlushDiskType // default ASYNC_FLUSH
	Dir           string             // parent of the temporary directory; default os.TempDir()
	Logger        *slog.Logger       // nil discards
	// Levers for experiments (0 = the node's defaults): node.Options.MaxInFlight (Raft
	// entries of the group-commit batcher in flight), node.Options.LogCacheSize (Raft log
	// entries cached in memory), Config.GroupCommitMaxBytes, Config.RaftLogStore and
	// Config.CommitLogPageCacheKeep (-1 never drops).
	RaftMaxInFlight     int
	LogCacheSize        int
	GroupCommitMaxBytes int
	RaftLogStore        node.RaftLogStoreKind
	PageCacheKeep       int64
}

// Embedded is a running in-process cluster.
type Embedded struct {
	ns    *namesrv.Server
	nodes []*node.Node
	dir   string
	once  sync.Once
	err   error
}

// StartEmbedded starts the cluster, waits for a leader and creates the topic.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = 3
	}
	if cfg.Queues == 0 {
		cfg.Queues = 8
	}
	if cfg.FlushDiskType == "" {
		cfg.FlushDiskType = node.AsyncFlush
	}
	if cfg.Nodes < 1 || cfg.Nodes > 9 {
		return nil, fmt.Errorf("bench: embedded Nodes %d: must be 1..9", cfg.Nodes)
	}
	if cfg.Topic == "" {
		return nil, errors.New("bench: embedded Topic is required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp(cfg.Dir, "raftmq-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: embedded: temp dir: %w", err)
	}
	e := &Embedded{dir: dir}
	ok := false
	defer func() {
		if !ok {
			e.Close()
		}
	}()
	ncfg := namesrv.DefaultConfig()
	ncfg.ListenAddr = "127.0.0.1:0"
	ncfg.Logger = logger.With("component", "namesrv")
	e.ns, err = namesrv.New(ncfg)
	if err != nil {
		return nil, fmt.Errorf("bench: embedded: name server: %w", err)
	}
	// Pick ports while holding them, then release them just before the nodes bind.
	var held []net.Listener
	pick := func() (int, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("bench: embedded: free port: %w", err)
		}
		held = append(held, ln)
		return ln.Addr().(*net.TCPAddr).Port, nil
	}
	brokerPorts := make([]int, cfg.Nodes)
	raftPorts := make([]int, cfg.Nodes)
	var peers []node.Peer
	for i := range cfg.Nodes {
		if brokerPorts[i], err = pick(); err == nil {
			raftPorts[i], err = pick()
		}
		if err != nil {
			for _, ln := range held {
				ln.Close()
			}
			return nil, err
		}
		peers = append(peers, node.Peer{ID: "n" + strconv.Itoa(i), Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(raftPorts[i]))})
	}
	for _, ln := range held {
		ln.Close()
	}
	e.nodes = make([]*node.Node, cfg.Nodes)
	errs := make([]error, cfg.Nodes)
	var wg sync.WaitGroup
	for i := range cfg.Nodes {
		c := node.DefaultConfig()
		c.BrokerClusterName = "BenchCluster"
		c.BrokerName = "broker-a"
		c.BrokerIP1 = "127.0.0.1"
		c.ListenPort = brokerPorts[i]
		c.HAListenPort = raftPorts[i]
		c.NamesrvAddr = []string{e.ns.Addr()}
		c.StorePathRootDir = filepath.Join(dir, "n"+strconv.Itoa(i))
		c.EnableDLegerCommitLog = true
		c.DLegerPeers = peers
		c.DLegerSelfID = "n" + strconv.Itoa(i)
		c.FlushDiskType = cfg.FlushDiskType
		c.MappedFileSizeCommitLog = 128 << 20
		c.MaxHashSlotNum = 100_000
		c.MaxIndexNum = 400_000
		if cfg.GroupCommitMaxBytes > 0 {
			c.GroupCommitMaxBytes = cfg.GroupCommitMaxBytes
		}
		if cfg.RaftLogStore != "" {
			c.RaftLogStore = cfg.RaftLogStore
		}
		if cfg.PageCacheKeep != 0 {
			c.CommitLogPageCacheKeep = cfg.PageCacheKeep
		}
		o := node.Options{
			Logger:           logger.With("node", "n"+strconv.Itoa(i)),
			ListenAddr:       net.JoinHostPort("127.0.0.1", strconv.Itoa(brokerPorts[i])),
			RegisterInterval: 5 * time.Second,
			RaftLogLevel:     hclog.Warn,
			MaxInFlight:      cfg.RaftMaxInFlight,
			LogCacheSize:     cfg.LogCacheSize,
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 0; attempt < 20; attempt++ {
				nd, err := node.New(c, o)
				if err == nil {
					e.nodes[i] = nd
					return
				}
				errs[i] = err
				if ctx.Err() != nil {
					return
				}
				time.Sleep(100 * time.Millisecond) // a just-released port may linger
			}
		}()
	}
	wg.Wait()
	for i, nd := range e.nodes {
		if nd == nil {
			return nil, fmt.Errorf("bench: embedded: start node %d: %w", i, errs[i])
		}
	}
	leader, err := e.waitLeader(ctx)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tc := fsm.TopicConfig{TopicName: cfg.Topic, ReadQueueNums: int32(cfg.Queues), WriteQueueNums: int32(cfg.Queues), Perm: 6}
	if err := leader.CreateTopic(cctx, tc); err != nil {
		return nil, fmt.Errorf("bench: embedded: create topic %s: %w", cfg.Topic, err)
	}
	ok = true
	return e, nil
}

func (e *Embedded) waitLeader(ctx context.Context) (*node.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		for _, nd := range e.nodes {
			if nd.IsLeader() && nd.LeaderReady() {
				return nd, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bench: embedded: no leader: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// NameServer returns the name server's address.
func (e *Embedded) NameServer() string { return e.ns.Addr() }

// RaftLogStore is the Raft log store the group's nodes run on (raftLogStore with auto resolved).
func (e *Embedded) RaftLogStore() node.RaftLogStoreKind {
	if len(e.nodes) == 0 {
		return ""
	}
	return e.nodes[0].RaftLogStore()
}

// Nodes returns the broker nodes.
func (e *Embedded) Nodes() []*node.Node { return e.nodes }

// Term returns the highest Raft term among the nodes and the current leader's id ("" if none).
func (e *Embedded) Term() (uint64, string) {
	var term uint64
	leader := ""
	for _, nd := range e.nodes {
		if nd == nil {
			continue
		}
		if t, err := strconv.ParseUint(nd.Raft().Stats()["term"], 10, 64); err == nil && t > term {
			term = t
		}
		if nd.IsLeader() {
			leader = nd.ServerID()
		}
	}
	return term, leader
}

// Close stops the nodes and the name server and removes the data. Idempotent.
func (e *Embedded) Close() error {
	e.once.Do(func() {
		var errs []error
		for _, nd := range e.nodes {
			if nd != nil {
				if err := nd.Close(); err != nil {
					errs = append(errs, fmt.Errorf("bench: embedded: close node %s: %w", nd.ServerID(), err))
				}
			}
		}
		if e.ns != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := e.ns.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("bench: embedded: close name server: %w", err))
			}
			cancel()
		}
		if err := os.RemoveAll(e.dir); err != nil {
			errs = append(errs, fmt.Errorf("bench: embedded: remove %s: %w", e.dir, err))
		}
		e.err = errors.Join(errs...)
	})
	return e.err
}
