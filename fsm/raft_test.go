package fsm

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// raftNode is one member of an in-process raft group over one replica.
type raftNode struct {
	id      raft.ServerID
	trans   *raft.InmemTransport
	rep     *replica
	raft    *raft.Raft
	store   *raft.InmemStore
	fetches atomic.Int32
}

func raftConfig(t testing.TB, id raft.ServerID) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = id
	c.HeartbeatTimeout = 400 * time.Millisecond
	c.ElectionTimeout = 400 * time.Millisecond
	c.LeaderLeaseTimeout = 200 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.BatchApplyCh = true
	c.SnapshotThreshold = 1 << 30 // snapshots are taken explicitly
	c.SnapshotInterval = time.Hour
	c.TrailingLogs = 8
	c.Logger = hclog.NewNullLogger()
	if testing.Verbose() {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: string(id), Output: tLogWriter{t}, Level: hclog.Info})
	}
	return c
}

func waitLeader(t testing.TB, nodes []*raftNode, exclude *raftNode) *raftNode {
	t.Helper()
	var leader *raftNode
	waitFor(t, 20*time.Second, "a leader", func() bool {
		for _, n := range nodes {
			if n != exclude && n.raft.State() == raft.Leader {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

func applyVia(t testing.TB, r *raft.Raft, logs []*raft.Log) {
	t.Helper()
	futures := make([]raft.ApplyFuture, len(logs))
	for i, l := range logs {
		futures[i] = r.Apply(l.Data, 10*time.Second)
	}
	for i, f := range futures {
		if err := f.Error(); err != nil {
			t.Fatalf("raft apply %d: %v", i, err)
		}
		if err, ok := f.Response().(error); ok && errorsIsFatal(err) {
			t.Fatalf("fsm apply %d: %v", i, err)
		}
	}
}

// TestRaft_FollowerCatchesUpThroughSnapshotAndFetcher: a follower is cut
// off, the others write past log compaction, and the follower comes back
// through InstallSnapshot: Restore fetches the commitlog it lacks from a
// peer. All three commitlogs end byte-identical.
func TestRaft_FollowerCatchesUpThroughSnapshotAndFetcher(t *testing.T) {
	logs := workload(t, 360)
	ids := []raft.ServerID{"n0", "n1", "n2"}
	nodes := make([]*raftNode, len(ids))
	var servers []raft.Server
	for i, id := range ids {
		addr, trans := raft.NewInmemTransport(raft.ServerAddress(id))
		nodes[i] = &raftNode{id: id, trans: trans}
		servers = append(servers, raft.Server{ID: id, Address: addr, Suffrage: raft.Voter})
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.trans.Connect(raft.ServerAddress(b.id), b.trans)
			}
		}
	}
	for _, n := range nodes {
		self := n
		n.rep = newReplica(t, t.TempDir(), func(c *Config) {
			c.FetchBytes = 64 << 10
			c.Fetcher = FetcherFunc(func(ctx context.Context, from int64, maxBytes int) ([]byte, error) {
				self.fetches.Add(1)
				var best *raftNode // the peer with the most log
				for _, p := range nodes {
					if p != self && (best == nil || p.rep.log.MaxPhysOffset() > best.rep.log.MaxPhysOffset()) {
						best = p
					}
				}
				return best.rep.fsm.ReadCommitLog(from, maxBytes)
			})
		})
		snaps, err := raft.NewFileSnapshotStore(filepath.Join(n.rep.dir, "raft"), 2, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		store := raft.NewInmemStore()
		r, err := raft.NewRaft(raftConfig(t, n.id), n.rep.fsm, store, store, snaps, n.trans)
		if err != nil {
			t.Fatal(err)
		}
		n.raft, n.store = r, store
		// Shut raft down before the replica closes (cleanups run last-in first-out).
		t.Cleanup(func() { _ = r.Shutdown().Error() })
	}
	if err := nodes[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatal(err)
	}
	leader := waitLeader(t, nodes, nil)
	applyVia(t, leader.raft, logs[:60])

	var lagging *raftNode
	for _, n := range nodes {
		if n != leader {
			lagging = n
			break
		}
	}
	waitFor(t, 10*time.Second, "the follower to apply the first entries", func() bool {
		return lagging.rep.fsm.AppliedIndex() == leader.rep.fsm.AppliedIndex()
	})
	lagging.trans.DisconnectAll()
	for _, n := range nodes {
		if n != lagging {
			n.trans.Disconnect(raft.ServerAddress(lagging.id))
		}
	}
	lagLast := lagging.raft.LastIndex()

	// The majority writes on, snapshots and compacts its raft log.
	leader = waitLeader(t, nodes, lagging)
	applyVia(t, leader.raft, logs[60:300])
	if err := leader.raft.Snapshot().Error(); err != nil {
		t.Fatalf("leader snapshot: %v", err)
	}
	applyVia(t, leader.raft, logs[300:330])
	if err := leader.raft.Snapshot().Error(); err != nil {
		t.Fatalf("leader snapshot: %v", err)
	}
	firstIdx, err := leader.store.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	if firstIdx <= lagLast+1 {
		t.Fatalf("the leader kept its log from %d; the follower ends at %d: no snapshot needed", firstIdx, lagLast)
	}

	// Reconnect: the leader must send a snapshot; the follower's Restore
	// fetches the commitlog while the leader keeps writing.
	for _, n := range nodes {
		if n != lagging {
			n.trans.Connect(raft.ServerAddress(lagging.id), lagging.trans)
			lagging.trans.Connect(raft.ServerAddress(n.id), n.trans)
		}
	}
	applyVia(t, leader.raft, logs[330:])
	want := leader.raft.AppliedIndex()
	waitFor(t, 20*time.Second, "every replica to apply everything", func() bool {
		for _, n := range nodes {
			if n.raft.AppliedIndex() < want {
				return false
			}
		}
		return true
	})
	if lagging.fetches.Load() == 0 {
		t.Fatal("the lagging follower caught up without fetching: no snapshot was installed")
	}
	for _, n := range nodes {
		if n.rep.fsm.AppliedIndex() != leader.rep.fsm.AppliedIndex() || n.rep.log.MaxPhysOffset() != leader.rep.log.MaxPhysOffset() {
			t.Fatalf("%s at index %d / offset %d, leader %d / %d", n.id, n.rep.fsm.AppliedIndex(), n.rep.log.MaxPhysOffset(),
				leader.rep.fsm.AppliedIndex(), leader.rep.log.MaxPhysOffset())
		}
		requireSameLog(t, leader.rep, n.rep)
	}
	for _, n := range nodes {
		if err := n.raft.Shutdown().Error(); err != nil {
			t.Fatal(err)
		}
		n.rep.close()
	}
	ref := files(t, nodes[0].rep.dir, false)
	for _, n := range nodes[1:] {
		requireSameFiles(t, ref, files(t, n.rep.dir, false))
	}
}

// TestRaft_RestartSkipsSnapshotRestoreWhenDiskCovers: a single node on
// raft-boltdb restarts with NoSnapshotRestoreOnStart when DiskCovers says
// its files hold the latest snapshot; raft replays the rest and nothing is
// applied twice.
func TestRaft_RestartSkipsSnapshotRestoreWhenDiskCovers(t *testing.T) {
	logs := workload(t, 200)
	dir := t.TempDir()
	rep := newReplica(t, dir, nil)
	start := func(noRestore bool) (*raft.Raft, func()) {
		t.Helper()
		store, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
		if err != nil {
			t.Fatal(err)
		}
		snaps, err := raft.NewFileSnapshotStore(filepath.Join(dir, "raft"), 2, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		addr, trans := raft.NewInmemTransport("n0")
		c := raftConfig(t, "n0")
		c.NoSnapshotRestoreOnStart = noRestore
		r, err := raft.NewRaft(c, rep.fsm, store, store, snaps, trans)
		if err != nil {
			t.Fatal(err)
		}
		if !noRestore {
			if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: "n0", Address: addr}}}).Error(); err != nil && err != raft.ErrCantBootstrap {
				t.Fatal(err)
			}
		}
		return r, func() {
			if err := r.Shutdown().Error(); err != nil {
				t.Error(err)
			}
			store.Close()
		}
	}
	r, stop := start(false)
	waitLeader(t, []*raftNode{{raft: r}}, nil)
	applyVia(t, r, logs[:120])
	if err := r.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	applyVia(t, r, logs[120:150])
	stop()
	rep.crash() // no Close: the meta file is the snapshot's

	snaps, err := raft.NewFileSnapshotStore(filepath.Join(dir, "raft"), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	metas, err := snaps.List()
	if err != nil || len(metas) == 0 {
		t.Fatalf("snapshots: %v %v", metas, err)
	}
	rep.reopen(nil)
	covers := rep.fsm.DiskCovers(metas[0].Index)
	if !covers {
		t.Fatalf("DiskCovers(%d) false after a snapshot of this FSM (meta at %d)", metas[0].Index, rep.fsm.AppliedIndex())
	}
	r, stop = start(covers)
	defer stop()
	waitLeader(t, []*raftNode{{raft: r}}, nil)
	applyVia(t, r, logs[150:])
	if err := r.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	// A replica fed the same commands directly holds the same bytes.
	ref := newReplica(t, t.TempDir(), nil)
	applyAll(t, ref.fsm, logs)
	if queueState(ref.log) != queueState(rep.log) || metaDump(ref.fsm) != metaDump(rep.fsm) {
		t.Fatalf("after restart:\n%s\n%s\nwant\n%s\n%s", queueState(rep.log), metaDump(rep.fsm), queueState(ref.log), metaDump(ref.fsm))
	}
	stop()
	stop = func() {}
	rep.close()
	ref.close()
	requireSameFiles(t, files(t, ref.dir, false), files(t, dir, false))
	if _, err := os.Stat(filepath.Join(dir, "meta")); err != nil {
		t.Fatal(err)
	}
}
