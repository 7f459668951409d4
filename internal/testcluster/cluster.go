// Package testcluster runs an in-process raftmq cluster for tests: one name server and an
// n-node DLedger broker group on 127.0.0.1, data under t.TempDir(), logs to t.Log. Every Raft
// link between two nodes goes through its own TCP proxy, so Partition can cut a node off in
// both directions while the remoting ports stay reachable.
package testcluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/node"
	"github.com/raftmq/raftmq/transport"
)

// Option changes the cluster's node configs.
type Option func(*settings)

type settings struct {
	config  []func(i int, c *node.Config)
	options []func(i int, o *node.Options)
	quiet   bool
}

// WithConfig edits each node's broker config before start.
func WithConfig(f func(i int, c *node.Config)) Option {
	return func(s *settings) { s.config = append(s.config, f) }
}

// WithOptions edits each node's options before start.
func WithOptions(f func(i int, o *node.Options)) Option {
	return func(s *settings) { s.options = append(s.options, f) }
}

// Quiet logs warnings and errors only.
func Quiet() Option { return func(s *settings) { s.quiet = true } }

// Cluster is a running test cluster.
type Cluster struct {
	NS      *namesrv.Server
	Topic   string // a topic created at start (4 queues)
	members []*member
	proxies map[[2]int]*proxy // [from, to]
	client  *transport.Client
	logOn   *atomic.Bool
	logger  *slog.Logger
}

type member struct {
	mu   sync.Mutex
	cfg  node.Config
	opts node.Options
	node *node.Node
}

// New starts a name server and an n-node DLedger group and waits for a leader, then creates
// the topic c.Topic with 4 queues.
func New(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	var s settings
	for _, o := range opts {
		o(&s)
	}
	logOn := &atomic.Bool{}
	logOn.Store(true)
	t.Cleanup(func() { logOn.Store(false) }) // runs last: nothing logs to t after the test
	level := slog.LevelInfo
	if s.quiet {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(&tWriter{t: t, on: logOn}, &slog.HandlerOptions{Level: level}))
	ncfg := namesrv.DefaultConfig()
	ncfg.ListenAddr = "127.0.0.1:0"
	ncfg.Logger = logger.With("component", "namesrv")
	ns, err := namesrv.New(ncfg)
	if err != nil {
		t.Fatalf("testcluster: name server: %v", err)
	}
	root := t.TempDir() // before the cleanup below, so the files go after the nodes are closed
	c := &Cluster{NS: ns, Topic: "TestTopic", proxies: map[[2]int]*proxy{}, logOn: logOn, logger: logger}
	t.Cleanup(func() { c.close(t) })
	cl, err := transport.NewClient(transport.ClientConfig{})
	if err != nil {
		t.Fatalf("testcluster: client: %v", err)
	}
	c.client = cl

	// Ports: hold every picked port's listener until the proxies (which listen on :0) exist,
	// so that no proxy is handed a port a node is about to bind.
	raftAddrs := make([]string, n)
	brokerPorts := make([]int, n)
	var held []net.Listener
	pick := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testcluster: free port: %v", err)
		}
		held = append(held, ln)
		return ln.Addr().String()
	}
	for i := range n {
		raftAddrs[i] = pick()
		_, p, _ := net.SplitHostPort(pick())
		brokerPorts[i], _ = strconv.Atoi(p)
	}
	var peers []node.Peer
	for i := range n {
		peers = append(peers, node.Peer{ID: "n" + strconv.Itoa(i), Addr: raftAddrs[i]})
	}
	for i := range n {
		for j := range n {
			if i == j {
				continue
			}
			p, err := newProxy(raftAddrs[j])
			if err != nil {
				t.Fatalf("testcluster: proxy: %v", err)
			}
			c.proxies[[2]int{i, j}] = p
		}
	}
	for _, ln := range held {
		ln.Close()
	}
	for i := range n {
		cfg := node.DefaultConfig()
		cfg.BrokerClusterName = "TestCluster"
		cfg.BrokerName = "broker-a"
		cfg.BrokerIP1 = "127.0.0.1"
		cfg.ListenPort = brokerPorts[i]
		_, rp, _ := net.SplitHostPort(raftAddrs[i])
		cfg.HAListenPort, _ = strconv.Atoi(rp)
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
		for _, f := range s.config {
			f(i, &cfg)
		}
		o := node.Options{
			Logger:              logger.With("node", "n"+strconv.Itoa(i)),
			ListenAddr:          net.JoinHostPort("127.0.0.1", strconv.Itoa(brokerPorts[i])),
			RegisterInterval:    2 * time.Second,
			RaftAddressProvider: addrProvider{c: c, from: i, peers: peers},
			RaftLogLevel:        hclog.Info,
		}
		if s.quiet {
			o.RaftLogLevel = hclog.Warn
		}
		for _, f := range s.options {
			f(i, &o)
		}
		c.members = append(c.members, &member{cfg: cfg, opts: o})
	}
	// Start all nodes concurrently: each waits for nothing, but raft elections go faster.
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
			t.Fatalf("testcluster: start node %d: %v", i, err)
		}
	}
	leader := c.Leader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := leader.CreateTopic(ctx, fsm.TopicConfig{TopicName: c.Topic, ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}); err != nil {
		t.Fatalf("testcluster: create topic: %v", err)
	}
	return c
}

type addrProvider struct {
	c     *Cluster
	from  int
	peers []node.Peer
}

func (p addrProvider) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	for j, peer := range p.peers {
		if peer.ID == string(id) {
			if px, ok := p.c.proxies[[2]int{p.from, j}]; ok {
				return raft.ServerAddress(px.Addr()), nil
			}
			return raft.ServerAddress(peer.Addr), nil
		}
	}
	return "", fmt.Errorf("testcluster: unknown server %s", id)
}

type tWriter struct {
	t  testing.TB
	on *atomic.Bool
}

func (w *tWriter) Write(b []byte) (int, error) {
	if w.on.Load() {
		w.t.Log(string(bytes.TrimRight(b, "\n")))
	}
	return len(b), nil
}

func (c *Cluster) start(i int) error {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.node != nil {
		return nil
	}
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		var nd *node.Node
		nd, err = node.New(m.cfg, m.opts)
		if err == nil {
			m.node = nd
			return nil
		}
		// A port of a node just stopped may linger briefly: retry.
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func (c *Cluster) close(t testing.TB) {
	for _, m := range c.members {
		m.mu.Lock()
		if m.node != nil {
			if err := m.node.Abort(); err != nil {
				t.Logf("testcluster: close node: %v", err)
			}
			m.node = nil
		}
		m.mu.Unlock()
	}
	for _, p := range c.proxies {
		p.close()
	}
	if c.client != nil {
		c.client.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.NS.Close(ctx)
}

// N is the number of nodes.
func (c *Cluster) N() int { return len(c.members) }

// Node returns node i, nil while it is killed.
func (c *Cluster) Node(i int) *node.Node {
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.node
}

// Index returns the index of nd in the cluster.
func (c *Cluster) Index(nd *node.Node) int {
	for i := range c.members {
		if c.Node(i) == nd {
			return i
		}
	}
	return -1
}

// Live returns the running nodes.
func (c *Cluster) Live() []*node.Node {
	var out []*node.Node
	for i := range c.members {
		if nd := c.Node(i); nd != nil {
			out = append(out, nd)
		}
	}
	return out
}

// Eventually polls cond every 20 ms until it returns nil or d passes, then fails the test
// with the last error.
func Eventually(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Leader waits until exactly one running node is leader (and has registered as brokerId 0)
// and returns it.
func (c *Cluster) Leader(t testing.TB) *node.Node {
	t.Helper()
	var leader *node.Node
	Eventually(t, 20*time.Second, func() error {
		var ls []*node.Node
		for _, nd := range c.Live() {
			if nd.IsLeader() {
				ls = append(ls, nd)
			}
		}
		if len(ls) != 1 {
			return fmt.Errorf("%d leaders", len(ls))
		}
		if !ls[0].LeaderReady() {
			return fmt.Errorf("leader %s not caught up yet", ls[0].ServerID())
		}
		leader = ls[0]
		return nil
	})
	return leader
}

// Followers returns the running nodes that are not leader.
func (c *Cluster) Followers() []*node.Node {
	var out []*node.Node
	for _, nd := range c.Live() {
		if !nd.IsLeader() {
			out = append(out, nd)
		}
	}
	return out
}

// Kill stops node i hard: no leadership transfer, no unregistration.
func (c *Cluster) Kill(t testing.TB, i int) {
	t.Helper()
	m := c.members[i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.node == nil {
		return
	}
	if err := m.node.Abort(); err != nil {
		t.Logf("testcluster: kill node %d: %v", i, err)
	}
	m.node = nil
}

// Restart starts node i again with the same data directory and addresses.
func (c *Cluster) Restart(t testing.TB, i int) *node.Node {
	t.Helper()
	if err := c.start(i); err != nil {
		t.Fatalf("testcluster: restart node %d: %v", i, err)
	}
	return c.Node(i)
}

// Partition cuts the Raft links of the given nodes to every other node (both directions).
func (c *Cluster) Partition(idx ...int) {
	cut := map[int]bool{}
	for _, i := range idx {
		cut[i] = true
	}
	for k, p := range c.proxies {
		if cut[k[0]] != cut[k[1]] {
			p.setBlackhole(true)
		}
	}
}

// Heal restores every Raft link.
func (c *Cluster) Heal() {
	for _, p := range c.proxies {
		p.setBlackhole(false)
	}
}

// WaitApplied waits until every running node's FSM has applied idx.
func (c *Cluster) WaitApplied(t testing.TB, idx uint64) {
	t.Helper()
	Eventually(t, 20*time.Second, func() error {
		for _, nd := range c.Live() {
			if a := nd.FSM().AppliedIndex(); a < idx {
				return fmt.Errorf("%s applied %d < %d", nd.ServerID(), a, idx)
			}
		}
		return nil
	})
}

// Client is a remoting client for tests (closed with the cluster).
func (c *Cluster) Client() *transport.Client { return c.client }

// EnsureSame waits until the running nodes have applied the same index, then checks that their
// commitlogs and consume queues are byte-identical over the range all of them hold.
func (c *Cluster) EnsureSame(t testing.TB) {
	t.Helper()
	EnsureSameNodes(t, c.Live()...)
}

// EnsureSameNodes is EnsureSame for any nodes of one group (e.g. started from config files).
func EnsureSameNodes(t testing.TB, live ...*node.Node) {
	t.Helper()
	if len(live) < 2 {
		return
	}
	Eventually(t, 20*time.Second, func() error {
		var commit uint64
		for _, nd := range live {
			if nd.IsLeader() {
				commit = nd.Raft().CommitIndex()
			}
		}
		first := live[0].FSM().AppliedIndex()
		for _, nd := range live {
			if a := nd.FSM().AppliedIndex(); a != first || a < commit {
				return fmt.Errorf("applied indexes differ: %s at %d, %s at %d (commit %d)", live[0].ServerID(), first, nd.ServerID(), a, commit)
			}
		}
		return nil
	})
	var from, to int64 = 0, -1
	for _, nd := range live {
		st := nd.Store()
		from = max(from, st.MinPhysOffset())
		if to < 0 || st.MaxPhysOffset() < to {
			to = st.MaxPhysOffset()
		}
	}
	var ref []byte
	for i, nd := range live {
		var buf bytes.Buffer
		if to > from {
			if err := nd.Store().CopyRange(&buf, from, to); err != nil {
				t.Fatalf("EnsureSame: copy commitlog of %s: %v", nd.ServerID(), err)
			}
		}
		if i == 0 {
			ref = buf.Bytes()
			continue
		}
		if !bytes.Equal(ref, buf.Bytes()) {
			t.Fatalf("EnsureSame: commitlog [%d,%d) of %s differs from %s's (at byte %d)", from, to, nd.ServerID(), live[0].ServerID(), firstDiff(ref, buf.Bytes()))
		}
		if a, b := live[0].Store().MaxPhysOffset(), nd.Store().MaxPhysOffset(); a != b {
			t.Fatalf("EnsureSame: commitlog ends differ: %s %d, %s %d", live[0].ServerID(), a, nd.ServerID(), b)
		}
	}
	// Consume queues: the file bytes of every queue, up to the shortest replica's end.
	topics := map[string]bool{}
	for _, nd := range live {
		for _, tp := range nd.Store().Topics() {
			topics[tp] = true
		}
	}
	for tp := range topics {
		qids := map[int32]bool{}
		for _, nd := range live {
			for _, q := range nd.Store().QueueIDs(tp) {
				qids[q] = true
			}
		}
		for q := range qids {
			var refq []byte
			for i, nd := range live {
				if nd.Store().MaxOffset(tp, q) != live[0].Store().MaxOffset(tp, q) {
					t.Fatalf("EnsureSame: %s/%d: max offset %d on %s, %d on %s", tp, q,
						live[0].Store().MaxOffset(tp, q), live[0].ServerID(), nd.Store().MaxOffset(tp, q), nd.ServerID())
				}
				b := readQueue(t, nd, tp, q)
				if i == 0 {
					refq = b
				} else if !bytes.Equal(refq, b) {
					t.Fatalf("EnsureSame: consume queue %s/%d of %s differs from %s's (at byte %d)", tp, q, nd.ServerID(), live[0].ServerID(), firstDiff(refq, b))
				}
			}
		}
	}
}

// readQueue returns the consume-queue entries [min, max) of topic/queue as stored in the files.
func readQueue(t testing.TB, nd *node.Node, topic string, q int32) []byte {
	t.Helper()
	st := nd.Store()
	lo, hi := st.MinOffset(topic, q), st.MaxOffset(topic, q)
	dir := filepath.Join(nd.Config().StorePathConsumeQueue, topic, strconv.Itoa(int(q)))
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("EnsureSame: read %s: %v", dir, err)
	}
	var names []string
	for _, e := range ents {
		if _, err := strconv.ParseInt(e.Name(), 10, 64); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var out []byte
	for _, name := range names {
		base, _ := strconv.ParseInt(name, 10, 64)
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("EnsureSame: %v", err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			t.Fatalf("EnsureSame: %v", err)
		}
		start, end := lo*commitlog.CQEntrySize-base, hi*commitlog.CQEntrySize-base
		start = max(start, 0)
		end = min(end, int64(len(b)))
		if end > start {
			out = append(out, b[start:end]...)
		}
	}
	return out
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
