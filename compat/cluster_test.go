package compat

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/node"
)

// cluster is a name server and an n-node DLedger group on 127.0.0.1, built from the main
// module's exported APIs (internal/testcluster cannot be imported from this module).
type cluster struct {
	ns      *namesrv.Server
	root    string
	logger  *slog.Logger
	mu      sync.Mutex
	cfgs    []node.Config
	opts    []node.Options
	nodes   []*node.Node
	closed  atomic.Bool
	ownRoot bool
}

// newCluster starts a name server and an n-node group and waits for a ready leader.
func newCluster(logger *slog.Logger, root string, n int) (*cluster, error) {
	ncfg := namesrv.DefaultConfig()
	ncfg.ListenAddr = "127.0.0.1:0"
	ncfg.Logger = logger.With("component", "namesrv")
	ns, err := namesrv.New(ncfg)
	if err != nil {
		return nil, fmt.Errorf("compat: start name server: %w", err)
	}
	c := &cluster{ns: ns, root: root, logger: logger}
	var held []net.Listener
	pick := func() (int, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		held = append(held, ln)
		return ln.Addr().(*net.TCPAddr).Port, nil
	}
	raftPorts := make([]int, n)
	brokerPorts := make([]int, n)
	for i := range n {
		if raftPorts[i], err = pick(); err != nil {
			c.close()
			return nil, fmt.Errorf("compat: pick port: %w", err)
		}
		if brokerPorts[i], err = pick(); err != nil {
			c.close()
			return nil, fmt.Errorf("compat: pick port: %w", err)
		}
	}
	for _, ln := range held {
		ln.Close()
	}
	var peers []node.Peer
	for i := range n {
		peers = append(peers, node.Peer{ID: "n" + strconv.Itoa(i), Addr: "127.0.0.1:" + strconv.Itoa(raftPorts[i])})
	}
	for i := range n {
		cfg := node.DefaultConfig()
		cfg.BrokerClusterName = "CompatCluster"
		cfg.BrokerName = "broker-a"
		cfg.BrokerIP1 = "127.0.0.1"
		cfg.ListenPort = brokerPorts[i]
		cfg.HAListenPort = raftPorts[i]
		cfg.NamesrvAddr = []string{ns.Addr()}
		cfg.StorePathRootDir = filepath.Join(root, "n"+strconv.Itoa(i))
		cfg.EnableDLegerCommitLog = true
		cfg.DLegerPeers = peers
		cfg.DLegerSelfID = "n" + strconv.Itoa(i)
		cfg.MappedFileSizeCommitLog = 8 << 20
		cfg.MaxMessageSize = 1 << 20
		cfg.MappedFileSizeConsumeQueue = 20 * 20000
		cfg.MaxHashSlotNum = 1000
		cfg.MaxIndexNum = 4000
		cfg.RaftHeartbeatTimeout = 500 * time.Millisecond
		cfg.RaftElectionTimeout = 500 * time.Millisecond
		cfg.RaftLeaderLeaseTimout = 250 * time.Millisecond
		cfg.RaftCommitTimeout = 20 * time.Millisecond
		// Back-check half messages quickly (Java: 6 s timeout, checked every 60 s).
		cfg.TransactionTimeout = time.Second
		cfg.TransactionCheckInterval = time.Second
		o := node.Options{
			Logger:              logger.With("node", "n"+strconv.Itoa(i)),
			ListenAddr:          net.JoinHostPort("127.0.0.1", strconv.Itoa(brokerPorts[i])),
			RegisterInterval:    2 * time.Second,
			RaftLogLevel:        hclog.Warn,
			OffsetFlushInterval: 200 * time.Millisecond,
		}
		c.cfgs = append(c.cfgs, cfg)
		c.opts = append(c.opts, o)
	}
	c.nodes = make([]*node.Node, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.start(i)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			c.close()
			return nil, fmt.Errorf("compat: start node %d: %w", i, err)
		}
	}
	if _, err := c.waitLeader(20 * time.Second); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *cluster) start(i int) error {
	var err error
	for range 20 {
		var nd *node.Node
		nd, err = node.New(c.cfgs[i], c.opts[i])
		if err == nil {
			c.mu.Lock()
			c.nodes[i] = nd
			c.mu.Unlock()
			return nil
		}
		time.Sleep(100 * time.Millisecond) // a just-closed port may linger
	}
	return err
}

// nsAddr is the name server's ip:port.
func (c *cluster) nsAddr() string { return c.ns.Addr() }

func (c *cluster) live() []*node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*node.Node
	for _, nd := range c.nodes {
		if nd != nil {
			out = append(out, nd)
		}
	}
	return out
}

// waitLeader waits until exactly one node leads and is ready, and has registered as master.
func (c *cluster) waitLeader(d time.Duration) (*node.Node, error) {
	var leader *node.Node
	err := poll(d, func() error {
		var ls []*node.Node
		for _, nd := range c.live() {
			if nd.LeaderReady() {
				ls = append(ls, nd)
			}
		}
		if len(ls) != 1 {
			return fmt.Errorf("%d ready leaders", len(ls))
		}
		leader = ls[0]
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("compat: wait for leader: %w", err)
	}
	return leader, nil
}

// kill aborts the node at index i (no leadership transfer, no unregistration).
func (c *cluster) kill(i int) error {
	c.mu.Lock()
	nd := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if nd == nil {
		return nil
	}
	return nd.Abort()
}

// index returns nd's index.
func (c *cluster) index(nd *node.Node) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.nodes {
		if x == nd {
			return i
		}
	}
	return -1
}

// createTopic creates topic on the leader and waits until the name server routes it.
func (c *cluster) createTopic(topic string, queues int32) error {
	leader, err := c.waitLeader(20 * time.Second)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := leader.CreateTopic(ctx, fsm.TopicConfig{TopicName: topic, ReadQueueNums: queues, WriteQueueNums: queues, Perm: 6}); err != nil {
		return fmt.Errorf("compat: create topic %s: %w", topic, err)
	}
	return c.waitRoute(topic, 10*time.Second)
}

// waitRoute waits until the name server has a route with a master for topic.
func (c *cluster) waitRoute(topic string, d time.Duration) error {
	return poll(d, func() error {
		r, ok := c.ns.Table().Route(topic)
		if !ok || len(r.QueueDatas) == 0 {
			return fmt.Errorf("no route for %s", topic)
		}
		for _, bd := range r.BrokerDatas {
			if _, ok := bd.BrokerAddrs[0]; ok {
				return nil
			}
		}
		return fmt.Errorf("route for %s has no master", topic)
	})
}

func (c *cluster) close() {
	if c.closed.Swap(true) {
		return
	}
	for i := range c.nodes {
		if err := c.kill(i); err != nil {
			c.logger.Warn("close node", "i", i, "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.ns.Close(ctx)
}

// poll calls cond every 20 ms until it returns nil or d passes; it returns the last error.
func poll(d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v: %w", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventually is poll that fails the test.
func eventually(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	if err := poll(d, cond); err != nil {
		t.Fatal(err)
	}
}

// newTestCluster starts a cluster owned by t.
func newTestCluster(t testing.TB, n int) *cluster {
	t.Helper()
	root := t.TempDir()
	c, err := newCluster(testLogger(), root, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

// testLogger logs warnings of the cluster to stderr when COMPAT_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("COMPAT_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
