package node_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/node"
	"github.com/raftmq/raftmq/transport"
)

// hangingStore is the fault injected through Options.WrapRaftLogStore: once hang() says so,
// every write blocks until release is closed (a disk whose writes never return).
type hangingStore struct {
	raft.LogStore
	hang    func() bool
	release <-chan struct{}
	hung    atomic.Int64 // writes that blocked
}

func (s *hangingStore) block() {
	if s.hang() {
		s.hung.Add(1)
		<-s.release
	}
}

func (s *hangingStore) StoreLogs(logs []*raft.Log) error {
	s.block()
	return s.LogStore.StoreLogs(logs)
}

func (s *hangingStore) StoreLog(l *raft.Log) error {
	s.block()
	return s.LogStore.StoreLog(l)
}

// stallCluster starts a 3-node group whose node hangNode (-1: none) has a hanging Raft log,
// with raftLogStallTimeout 1500 ms. release ends the hang (idempotent); it also runs before
// the cluster closes.
func stallCluster(t *testing.T) (c *testcluster.Cluster, hangNode *atomic.Int32, stores []*hangingStore, release func()) {
	hangNode = &atomic.Int32{}
	hangNode.Store(-1)
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	stores = make([]*hangingStore, 3)
	var mu sync.Mutex
	c = testcluster.New(t, 3, testcluster.Quiet(),
		testcluster.WithConfig(func(_ int, cfg *node.Config) { cfg.RaftLogStallTimeout = 1500 * time.Millisecond }),
		testcluster.WithOptions(func(i int, o *node.Options) {
			o.WrapRaftLogStore = func(s raft.LogStore) raft.LogStore {
				h := &hangingStore{LogStore: s, hang: func() bool { return hangNode.Load() == int32(i) }, release: gate}
				mu.Lock()
				stores[i] = h
				mu.Unlock()
				return h
			}
		}))
	// Cleanups run last-in first-out: the disk comes back before the cluster closes (Close
	// of a fenced node waits for its stalled write, like raft's shutdown).
	t.Cleanup(release)
	return c, hangNode, stores, release
}

// TestCluster_LeaderLogStallFencesLeader is raft#503: the leader's log writes hang. The
// watchdog fences it, the others elect a new leader that takes sends, the stalled send never
// gets SEND_OK and the fenced node says it is not ready.
func TestCluster_LeaderLogStallFencesLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster log-stall scenario")
	}
	c, hangNode, stores, release := stallCluster(t)
	old := c.Leader(t)
	oi := c.Index(old)
	sendRetryTo(t, c, old.Addr(), "before")

	hangNode.Store(int32(oi))
	stalled := time.Now()
	resp, err := send(context.Background(), c.Client(), old.Addr(), c.Topic, 0, []byte("stalled"))
	if err == nil && resp.Code == int16(transport.Success) {
		t.Fatalf("a send to the leader whose log write hangs was acknowledged: %v", resp)
	}
	if err == nil {
		t.Logf("stalled send answered %s: %s", transport.ResponseCode(resp.Code), resp.Remark)
	} else {
		t.Logf("stalled send: %v", err)
	}
	if stores[oi].hung.Load() == 0 {
		t.Fatal("the leader's log write did not hang")
	}

	// Another node leads and takes sends.
	var leader *node.Node
	testcluster.Eventually(t, 15*time.Second, func() error {
		for i := range c.N() {
			if nd := c.Node(i); i != oi && nd != nil && nd.LeaderReady() {
				leader = nd
				return nil
			}
		}
		return fmt.Errorf("no new leader yet (old leader fenced: %v)", old.Fenced())
	})
	t.Logf("new leader %s ready %v after the hang", leader.ServerID(), time.Since(stalled).Round(time.Millisecond))
	sendRetryTo(t, c, leader.Addr(), "after")

	// The old leader is fenced and says so.
	err = old.Fenced()
	if !errors.Is(err, node.ErrFenced) || !strings.Contains(err.Error(), "StoreLogs") || !strings.Contains(err.Error(), "raftLogStallTimeout") {
		t.Fatalf("old leader's Fenced() = %v", err)
	}
	if old.IsLeader() || old.LeaderReady() {
		t.Fatalf("fenced node: leader %v, ready %v", old.IsLeader(), old.LeaderReady())
	}
	if gs, err := old.GroupStatus(); err != nil || gs.State != "Fenced" {
		t.Fatalf("fenced node's group status: state %q, %v", gs.State, err)
	}
	testcluster.Eventually(t, 5*time.Second, func() error {
		if old.Registered() {
			return errors.New("the fenced node still counts as registered")
		}
		return nil
	})
	resp, err = send(context.Background(), c.Client(), old.Addr(), c.Topic, 0, []byte("to-fenced"))
	if err != nil || resp.Code != int16(transport.ServiceNotAvailable) {
		t.Fatalf("send to the fenced node: %v %v", resp, err)
	}
	// Its registration is gone: the routes list the new leader only.
	testcluster.Eventually(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		r, err := namesrv.GetRouteInfo(ctx, c.Client(), c.NS.Addr(), c.Topic)
		if err != nil {
			return err
		}
		for _, bd := range r.BrokerDatas {
			for id, addr := range bd.BrokerAddrs {
				if addr == old.Addr() {
					return fmt.Errorf("the fenced node is still routed as brokerId %d", id)
				}
			}
			if bd.BrokerAddrs[0] != leader.Addr() {
				return fmt.Errorf("brokerId 0 is %q, want the new leader %s", bd.BrokerAddrs[0], leader.Addr())
			}
		}
		return nil
	})
	// The stalled message was never stored anywhere that serves.
	seen, _ := readAll(t, c, leader.Addr())
	if seen["stalled"] != 0 || seen["before"] == 0 || seen["after"] == 0 {
		t.Fatalf("stored: stalled %d, before %d, after %d", seen["stalled"], seen["before"], seen["after"])
	}

	// The disk comes back: the node stays fenced, and a graceful Close (which skips the
	// leadership transfer a fenced node cannot do) returns.
	release()
	closed := make(chan error, 1)
	go func() { closed <- old.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Logf("close of the fenced node: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close of the fenced node did not return within 30s of the disk coming back")
	}
	if old.Fenced() == nil {
		t.Fatal("the fence was lifted")
	}
}

// TestCluster_FollowerLogStallFencesFollower: a follower whose log writes hang fences itself
// too; the leader goes on committing with the remaining follower.
func TestCluster_FollowerLogStallFencesFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster log-stall scenario")
	}
	c, hangNode, stores, _ := stallCluster(t)
	leader := c.Leader(t)
	fi := (c.Index(leader) + 1) % c.N()
	follower := c.Node(fi)
	hangNode.Store(int32(fi))
	for k := range 5 {
		sendRetryTo(t, c, leader.Addr(), fmt.Sprint("m", k))
	}
	testcluster.Eventually(t, 15*time.Second, func() error {
		if stores[fi].hung.Load() == 0 {
			return errors.New("the follower's log write has not hung yet")
		}
		if err := follower.Fenced(); err == nil {
			return errors.New("follower not fenced yet")
		}
		if follower.Registered() {
			return errors.New("fenced follower still registered")
		}
		return nil
	})
	if !strings.Contains(follower.Fenced().Error(), "StoreLogs") {
		t.Fatalf("fenced follower: %v", follower.Fenced())
	}
	if !leader.LeaderReady() || leader.Fenced() != nil {
		t.Fatalf("the leader changed: ready %v, fenced %v", leader.LeaderReady(), leader.Fenced())
	}
	sendRetryTo(t, c, leader.Addr(), "after")
}

// sendRetryTo sends body to addr until it is acknowledged, failing the test after 15 s (a
// spurious election on the busy machine fails a send; callers allow a duplicate).
func sendRetryTo(t testing.TB, c *testcluster.Cluster, addr, body string) {
	t.Helper()
	var resp *transport.Command
	var err error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err = send(context.Background(), c.Client(), addr, c.Topic, 0, []byte(body))
		if err == nil && resp.Code == int16(transport.Success) {
			return
		}
	}
	mustSucceed(t, resp, err)
}
