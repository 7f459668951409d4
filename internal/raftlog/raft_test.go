package raftlog

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// countFSM counts applied commands and sums their 8-byte values.
type countFSM struct {
	mu    sync.Mutex
	count uint64
	sum   uint64
}

func (f *countFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count++
	f.sum += binary.LittleEndian.Uint64(l.Data)
	return f.count
}

func (f *countFSM) state() (uint64, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count, f.sum
}

func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) {
	c, s := f.state()
	return countSnap{c, s}, nil
}

func (f *countFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var b [16]byte
	if _, err := io.ReadFull(rc, b[:]); err != nil {
		return err
	}
	f.mu.Lock()
	f.count, f.sum = binary.LittleEndian.Uint64(b[0:8]), binary.LittleEndian.Uint64(b[8:16])
	f.mu.Unlock()
	return nil
}

type countSnap struct{ count, sum uint64 }

func (s countSnap) Persist(sink raft.SnapshotSink) error {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[0:8], s.count)
	binary.LittleEndian.PutUint64(b[8:16], s.sum)
	if _, err := sink.Write(b[:]); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (countSnap) Release() {}

// raftNode is one member of the test cluster; stable and snaps survive restarts (they
// stand for the node's other durable state), the log store is closed and reopened.
type raftNode struct {
	id     raft.ServerID
	addr   raft.ServerAddress
	dir    string
	store  *Store
	stable *raft.InmemStore
	snaps  raft.SnapshotStore
	trans  *raft.InmemTransport
	fsm    *countFSM
	r      *raft.Raft
}

func testRaftConfig(id raft.ServerID) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = id
	c.HeartbeatTimeout = 50 * time.Millisecond
	c.ElectionTimeout = 50 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.SnapshotInterval = 20 * time.Millisecond
	c.SnapshotThreshold = 200
	c.TrailingLogs = 100
	c.LogOutput = io.Discard
	c.LogLevel = "ERROR"
	return c
}

func (n *raftNode) start(t *testing.T, peers []*raftNode) {
	t.Helper()
	n.store = mustOpen(t, n.dir, Options{SegmentSize: 16 << 10})
	_, n.trans = raft.NewInmemTransport(n.addr)
	for _, p := range peers {
		if p != n && p.trans != nil {
			n.trans.Connect(p.addr, p.trans)
			p.trans.Connect(n.addr, n.trans)
		}
	}
	n.fsm = &countFSM{}
	r, err := raft.NewRaft(testRaftConfig(n.id), n.fsm, n.store, n.stable, n.snaps, n.trans)
	if err != nil {
		t.Fatalf("NewRaft %s: %v", n.id, err)
	}
	n.r = r
}

func (n *raftNode) stop(t *testing.T) {
	t.Helper()
	if err := n.r.Shutdown().Error(); err != nil {
		t.Fatalf("shutdown %s: %v", n.id, err)
	}
	n.trans.Close()
	mustClose(t, n.store)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func leaderOf(t *testing.T, nodes []*raftNode) *raftNode {
	t.Helper()
	var leader *raftNode
	waitFor(t, "a leader", func() bool {
		for _, n := range nodes {
			if n.r != nil && n.r.State() == raft.Leader {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// applyN applies n commands through the leader, retrying on leadership changes.
func applyN(t *testing.T, nodes []*raftNode, n int, sum *uint64) {
	t.Helper()
	for done := 0; done < n; {
		leader := leaderOf(t, nodes)
		batch := min(n-done, 500)
		futures := make([]raft.ApplyFuture, batch)
		for i := range futures {
			var b [8]byte
			binary.LittleEndian.PutUint64(b[:], uint64(done+i+1))
			futures[i] = leader.r.Apply(b[:], 5*time.Second)
		}
		ok := 0
		for _, f := range futures {
			if f.Error() != nil {
				break
			}
			ok++
		}
		for i := 0; i < ok; i++ {
			*sum += uint64(done + i + 1)
		}
		done += ok
		if ok < batch {
			t.Logf("leadership changed after %d of %d applies; retrying", ok, batch)
		}
	}
}

func TestRaftCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("raft cluster test")
	}
	nodes := make([]*raftNode, 3)
	var servers []raft.Server
	for i := range nodes {
		n := &raftNode{
			id:     raft.ServerID(fmt.Sprintf("n%d", i)),
			addr:   raft.ServerAddress(fmt.Sprintf("addr%d", i)),
			dir:    t.TempDir(),
			stable: raft.NewInmemStore(),
		}
		snaps, err := raft.NewFileSnapshotStore(t.TempDir(), 2, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		n.snaps = snaps
		nodes[i] = n
		servers = append(servers, raft.Server{ID: n.id, Address: n.addr})
	}
	for _, n := range nodes {
		n.start(t, nodes)
	}
	defer func() {
		for _, n := range nodes {
			if n.r != nil {
				n.r.Shutdown().Error()
				n.store.Close()
			}
		}
	}()
	if err := nodes[0].r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatal(err)
	}

	var count, sum uint64
	converged := func(what string) {
		t.Helper()
		waitFor(t, what, func() bool {
			for _, n := range nodes {
				if c, s := n.fsm.state(); c != count || s != sum {
					return false
				}
			}
			return true
		})
	}

	applyN(t, nodes, 3000, &sum)
	count = 3000
	converged("all FSMs to apply 3000 commands")

	// Snapshots compacted every log.
	waitFor(t, "log compaction on every node", func() bool {
		for _, n := range nodes {
			if first, _ := n.store.FirstIndex(); first <= 1 {
				return false
			}
		}
		return true
	})

	// Restart a follower that can catch up from the leader's log.
	leader := leaderOf(t, nodes)
	follower := nodes[0]
	if follower == leader {
		follower = nodes[1]
	}
	follower.stop(t)
	applyN(t, nodes, 50, &sum)
	count += 50
	follower.start(t, nodes)
	converged("the restarted follower to catch up from the log")

	// Restart a follower after the leader compacted past its last entry: it must install
	// a snapshot (raft then deletes its whole log, IsMonotonic) and append after it.
	leader = leaderOf(t, nodes)
	follower = nodes[0]
	if follower == leader {
		follower = nodes[1]
	}
	follower.stop(t)
	followerLast := func() uint64 {
		s := mustOpen(t, follower.dir, Options{})
		defer s.Close()
		l, _ := s.LastIndex()
		return l
	}()
	applyN(t, nodes, 1500, &sum)
	count += 1500
	waitFor(t, "the leader to compact past the stopped follower", func() bool {
		first, _ := leader.store.FirstIndex()
		return first > followerLast+1
	})
	follower.start(t, nodes)
	converged("the restarted follower to catch up from a snapshot")
	applyN(t, nodes, 100, &sum)
	count += 100
	converged("all FSMs after the restarts")
	// The follower's old log is gone (raft deleted it all after installing the snapshot)
	// and its new entries start after the snapshot.
	if first, _ := follower.store.FirstIndex(); first <= followerLast {
		t.Fatalf("follower log starts at %d, expected past its old last index %d (snapshot install)", first, followerLast)
	}

	// The logs agree wherever they overlap.
	var lo, hi uint64 = 0, 1<<64 - 1
	for _, n := range nodes {
		f, _ := n.store.FirstIndex()
		l, _ := n.store.LastIndex()
		lo, hi = max(lo, f), min(hi, l)
	}
	if lo > hi {
		t.Fatalf("logs do not overlap: [%d, %d]", lo, hi)
	}
	for i := lo; i <= hi; i++ {
		var ref raft.Log
		haveRef := false
		for _, n := range nodes {
			var l raft.Log
			if err := n.store.GetLog(i, &l); err != nil {
				// The node may have compacted meanwhile.
				if first, _ := n.store.FirstIndex(); first > i {
					continue
				}
				t.Fatalf("%s GetLog(%d): %v", n.id, i, err)
			}
			if !haveRef {
				ref, haveRef = l, true
			} else if l.Term != ref.Term || l.Type != ref.Type || string(l.Data) != string(ref.Data) {
				t.Fatalf("entry %d differs on %s", i, n.id)
			}
		}
	}
	t.Logf("logs agree on [%d, %d]", lo, hi)
}
