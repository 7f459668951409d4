package node_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/node"
	"github.com/raftmq/raftmq/transport"
)

// forEachLogStore runs a scenario once per Raft log store (raftLogStore=boltdb and wal).
func forEachLogStore(t *testing.T, f func(t *testing.T, store testcluster.Option)) {
	for _, kind := range []node.RaftLogStoreKind{node.RaftLogBolt, node.RaftLogWAL} {
		t.Run(string(kind), func(t *testing.T) {
			f(t, testcluster.WithConfig(func(_ int, c *node.Config) { c.RaftLogStore = kind }))
		})
	}
}

// readAll pulls every queue of the cluster's topic from addr and returns body -> count.
func readAll(t testing.TB, c *testcluster.Cluster, addr string) (map[string]int, int) {
	t.Helper()
	seen := map[string]int{}
	total := 0
	for q := range 4 {
		for k, m := range pullAll(t, c.Client(), addr, c.Topic, q) {
			if m.QueueOffset != int64(k) {
				t.Fatalf("queue %d: message %d has queue offset %d", q, k, m.QueueOffset)
			}
			seen[string(m.Body)]++
			total++
		}
	}
	return seen, total
}

func TestCluster_LeaderKilledDuringSend_NoLoss(t *testing.T) {
	forEachLogStore(t, testClusterLeaderKilledDuringSend_NoLoss)
}

func testClusterLeaderKilledDuringSend_NoLoss(t *testing.T, store testcluster.Option) {
	if testing.Short() {
		t.Skip("cluster failover scenario")
	}
	c := testcluster.New(t, 3, testcluster.Quiet(), store)
	leader := c.Leader(t)
	li := c.Index(leader)
	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		seq   atomic.Int64
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	addrs := []string{}
	for _, nd := range c.Live() {
		addrs = append(addrs, nd.Addr())
	}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				i := int(seq.Add(1))
				body := fmt.Sprintf("w%d-%d", w, i)
				resp, err := send(context.Background(), c.Client(), addrs[(w+k)%len(addrs)], c.Topic, i%4, []byte(body))
				if err == nil && resp.Code == int16(transport.Success) {
					mu.Lock()
					acked[body] = true
					mu.Unlock()
				}
			}
		}()
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 200 {
			return fmt.Errorf("%d acknowledged", len(acked))
		}
		return nil
	})
	killed := time.Now()
	c.Kill(t, li)
	newLeader := c.Leader(t)
	failover := time.Since(killed)
	t.Logf("failover: new leader %s registered-ready %v after the kill", newLeader.ServerID(), failover)
	if failover > 15*time.Second {
		t.Fatalf("failover took %v", failover)
	}
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	testcluster.Eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < before+100 {
			return fmt.Errorf("%d acknowledged after failover", len(acked)-before)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	seen, total := readAll(t, c, newLeader.Addr())
	for body := range acked {
		if seen[body] == 0 {
			t.Fatalf("acknowledged message %s lost (%d acknowledged, %d stored)", body, len(acked), total)
		}
	}
	for body, n := range seen {
		if n > 1 {
			t.Fatalf("message %s stored %d times", body, n)
		}
	}
	t.Logf("%d acknowledged, %d stored", len(acked), total)
	c.Restart(t, li)
	c.EnsureSame(t)
}

func TestCluster_PartitionedLeaderStepsDown(t *testing.T) {
	forEachLogStore(t, testClusterPartitionedLeaderStepsDown)
}

func testClusterPartitionedLeaderStepsDown(t *testing.T, store testcluster.Option) {
	if testing.Short() {
		t.Skip("cluster partition scenario")
	}
	c := testcluster.New(t, 3, testcluster.Quiet(), store)
	old := c.Leader(t)
	oi := c.Index(old)
	for i := range 8 {
		sendRetry(t, c, i%4, bodyOf(i))
	}
	old = c.Leader(t)
	oi = c.Index(old)
	c.Partition(oi)
	// Writes sent straight to the cut-off leader are never acknowledged.
	var lostBodies []string
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := "partitioned-" + strconv.Itoa(i)
			resp, err := send(context.Background(), c.Client(), old.Addr(), c.Topic, i, []byte(body))
			if err == nil && resp.Code == int16(transport.Success) {
				t.Errorf("the partitioned leader acknowledged %s", body)
			}
		}()
		lostBodies = append(lostBodies, "partitioned-"+strconv.Itoa(i))
	}
	// The majority elects a new leader; the old one steps down (no split brain).
	var newLeader *node.Node
	testcluster.Eventually(t, 20*time.Second, func() error {
		for _, nd := range c.Live() {
			if nd != old && nd.LeaderReady() {
				newLeader = nd
			}
		}
		if newLeader == nil {
			return fmt.Errorf("no new leader yet")
		}
		if old.IsLeader() {
			return fmt.Errorf("old leader %s still leader", old.ServerID())
		}
		return nil
	})
	wg.Wait()
	for i := range 8 {
		sendRetry(t, c, i%4, bodyOf(100+i))
	}
	// The cut-off node refuses writes while it knows no leader.
	resp, err := send(context.Background(), c.Client(), old.Addr(), c.Topic, 0, []byte("refused"))
	if err == nil && resp.Code == int16(transport.Success) {
		t.Fatal("partitioned node acknowledged a send")
	}
	c.Heal()
	if l := c.Leader(t); l == old {
		t.Log("old leader won again after healing (allowed: its uncommitted tail is still gone)")
	}
	c.EnsureSame(t)
	seen, total := readAll(t, c, old.Addr())
	for _, b := range lostBodies {
		if seen[b] != 0 {
			t.Fatalf("unacknowledged write %s of the deposed leader survived", b)
		}
	}
	for _, i := range []int{0, 1, 2, 3, 4, 5, 6, 7, 100, 101, 102, 103, 104, 105, 106, 107} {
		if seen[string(bodyOf(i))] == 0 {
			t.Fatalf("acknowledged message %d lost (%d stored)", i, total)
		}
	}
}

func TestCluster_FollowerCatchesUpThroughSnapshot(t *testing.T) {
	forEachLogStore(t, testClusterFollowerCatchesUpThroughSnapshot)
}

func testClusterFollowerCatchesUpThroughSnapshot(t *testing.T, store testcluster.Option) {
	if testing.Short() {
		t.Skip("cluster snapshot scenario")
	}
	c := testcluster.New(t, 3, testcluster.Quiet(), store, testcluster.WithConfig(func(i int, cfg *node.Config) {
		cfg.RaftSnapshotThreshold = 32
		cfg.RaftTrailingLogs = 16
		cfg.RaftSnapshotInterval = 100 * time.Millisecond
	}))
	leader := c.Leader(t)
	f := c.Followers()[0]
	fi := c.Index(f)
	for i := range 10 {
		sendRetry(t, c, i%4, bodyOf(i))
	}
	c.WaitApplied(t, c.Leader(t).Raft().AppliedIndex())
	stoppedAt := f.FSM().AppliedIndex()
	c.Kill(t, fi)
	n := 10
	testcluster.Eventually(t, 30*time.Second, func() error {
		for range 20 {
			sendRetry(t, c, n%4, bodyOf(n))
			n++
		}
		leader = c.Leader(t)
		snap, _ := strconv.ParseUint(leader.Raft().Stats()["last_snapshot_index"], 10, 64)
		if snap < stoppedAt+16+32 {
			return fmt.Errorf("leader's last snapshot at %d, follower stopped at %d", snap, stoppedAt)
		}
		return nil
	})
	restarted := c.Restart(t, fi)
	c.WaitApplied(t, c.Leader(t).Raft().AppliedIndex())
	c.EnsureSame(t)
	want, wantTotal := readAll(t, c, c.Leader(t).Addr())
	seen, total := readAll(t, c, restarted.Addr())
	if total != wantTotal {
		t.Fatalf("restarted follower serves %d messages, the leader %d", total, wantTotal)
	}
	for i := range n {
		if b := string(bodyOf(i)); seen[b] == 0 || seen[b] != want[b] {
			t.Fatalf("message %d seen %d times on the restarted follower, %d on the leader", i, seen[b], want[b])
		}
	}
}

func TestCluster_FullRestartReplaysNothingTwice(t *testing.T) {
	forEachLogStore(t, testClusterFullRestartReplaysNothingTwice)
}

func testClusterFullRestartReplaysNothingTwice(t *testing.T, store testcluster.Option) {
	if testing.Short() {
		t.Skip("cluster restart scenario")
	}
	c := testcluster.New(t, 3, testcluster.Quiet(), store)
	for i := range 40 {
		sendRetry(t, c, i%4, bodyOf(i))
	}
	leader := c.Leader(t)
	c.WaitApplied(t, leader.Raft().AppliedIndex())
	c.EnsureSame(t)
	maxPhys := leader.Store().MaxPhysOffset()
	before, beforeTotal := readAll(t, c, leader.Addr())
	for i := range c.N() {
		c.Kill(t, i)
	}
	for i := range c.N() {
		c.Restart(t, i)
	}
	leader = c.Leader(t)
	for _, nd := range c.Live() {
		if got := nd.Store().MaxPhysOffset(); got != maxPhys {
			t.Fatalf("%s: commitlog ends at %d after restart, want %d", nd.ServerID(), got, maxPhys)
		}
		seen, total := readAll(t, c, nd.Addr())
		if total != beforeTotal {
			t.Fatalf("%s: %d messages after restart, %d before", nd.ServerID(), total, beforeTotal)
		}
		for body, k := range seen {
			if k != before[body] {
				t.Fatalf("%s: %s stored %d times after restart, %d before", nd.ServerID(), body, k, before[body])
			}
		}
	}
	// New messages continue the queues where they were.
	next := map[int]int64{}
	for q := range 4 {
		next[q] = leader.Store().MaxOffset(c.Topic, int32(q))
	}
	for i := 40; i < 48; i++ {
		resp := sendRetry(t, c, i%4, bodyOf(i))
		if off, _ := strconv.ParseInt(resp.Ext("queueOffset"), 10, 64); off < next[i%4] {
			t.Fatalf("send %d after restart got queue offset %d, queue was at %d", i, off, next[i%4])
		}
	}
	c.EnsureSame(t)
}
