package node

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/raftmq/raftmq/internal/raftlog"
)

// raftLogStore is the Raft log store behind the LogCache: raft-boltdb (the default) or
// raftmq's segment-file WAL (raftLogStore=wal).
type raftLogStore interface {
	raft.LogStore
	Sync() error
	Close() error
}

// startRaft builds the Raft stores and transport and starts Raft, bootstrapping the group
// when this node is one that bootstraps (DLedger peers, a classic master) and has no state.
//
// Durability of the Raft log (raft-boltdb, or the WAL with raftLogStore=wal):
//   - SYNC_FLUSH: NoSync=false, every StoreLogs is fsynced before raft acknowledges it, so an
//     acknowledged message is on the disks of a quorum.
//   - ASYNC_FLUSH: NoSync=true and raftLogSyncLoop fsyncs every flushIntervalCommitLog; an
//     acknowledged message is in the memory (page cache) of a quorum and reaches their disks
//     within the interval. Term and vote live in a separate, always-synced file.
func (n *Node) startRaft() error {
	c := n.cfg
	noSync := c.FlushDiskType == AsyncFlush
	kind := resolveRaftLogStore(c.RaftDir, c.RaftLogStore)
	if err := checkRaftLogStoreKind(c.RaftDir, kind); err != nil {
		return err
	}
	n.logStoreKind = kind
	n.log.Info("raft log store", "raftLogStore", kind, "configured", c.RaftLogStore)
	var store raftLogStore
	switch kind {
	case RaftLogWAL:
		w, err := raftlog.Open(filepath.Join(c.RaftDir, "wal"), raftlog.Options{
			NoSync: noSync,
			Logger: n.log.With("component", "raftlog"),
		})
		if err != nil {
			return fmt.Errorf("node: open raft log %s: %w", filepath.Join(c.RaftDir, "wal"), err)
		}
		store = w
	default:
		bolt, err := raftboltdb.New(raftboltdb.Options{
			Path:   filepath.Join(c.RaftDir, "raft.db"),
			NoSync: noSync,
		})
		if err != nil {
			return fmt.Errorf("node: open raft log %s: %w", c.RaftDir, err)
		}
		store = bolt
	}
	// The stall watchdog (watchdog.go) times every write under the LogCache.
	n.logWatch = newWatchedLogStore(store, n.opts.WrapRaftLogStore)
	n.raftLog = n.logWatch
	// Term and vote are always fsynced, whatever flushDiskType says: a node that forgot its
	// vote after a crash could vote twice in one term (two leaders). With SYNC_FLUSH the bolt
	// log file already syncs, so it holds them too; otherwise they get their own bolt file.
	var stable raft.StableStore
	if bolt, ok := store.(*raftboltdb.BoltStore); ok && !noSync {
		stable = bolt
	} else {
		st, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(c.RaftDir, "raft-stable.db")})
		if err != nil {
			return fmt.Errorf("node: open raft stable store %s: %w", c.RaftDir, err)
		}
		n.stable = st
		stable = st
	}
	logs, err := raft.NewLogCache(n.opts.LogCacheSize, n.logWatch)
	if err != nil {
		return fmt.Errorf("node: raft log cache: %w", err)
	}
	hlog := newHCLog(n.opts.Logger.With("broker", c.BrokerName, "node", string(n.serverID)), "raft", n.opts.RaftLogLevel)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(c.RaftDir, n.opts.SnapshotRetain, hlog.Named("snapshot"))
	if err != nil {
		return fmt.Errorf("node: raft snapshot store: %w", err)
	}
	n.snaps = snaps
	if n.opts.RaftTransport != nil {
		n.trans = n.opts.RaftTransport
	} else {
		bind := n.opts.RaftBindAddr
		if bind == "" {
			bind = string(n.raftAddr)
		}
		adv, err := resolveTCP(string(n.raftAddr))
		if err != nil {
			return fmt.Errorf("node: raft address %s: %w", n.raftAddr, err)
		}
		t, err := raft.NewTCPTransportWithConfig(bind, adv, &raft.NetworkTransportConfig{
			ServerAddressProvider: n.opts.RaftAddressProvider,
			Logger:                hlog.Named("transport"),
			MaxPool:               3,
			Timeout:               10 * time.Second,
		})
		if err != nil {
			return fmt.Errorf("node: raft transport on %s: %w", bind, err)
		}
		n.trans = t
	}
	// Raft gets the transport through the fence of the stall watchdog (watchdog.go).
	var trans raft.Transport
	trans, n.raftTrans = newFencingTransport(n.trans, n.shutdownCh)

	rc := raft.DefaultConfig()
	rc.LocalID = n.serverID
	rc.HeartbeatTimeout = c.RaftHeartbeatTimeout
	rc.ElectionTimeout = c.RaftElectionTimeout
	rc.LeaderLeaseTimeout = c.RaftLeaderLeaseTimout
	rc.CommitTimeout = c.RaftCommitTimeout
	rc.MaxAppendEntries = c.RaftMaxAppendEntries
	rc.BatchApplyCh = n.opts.BatchApplyCh
	rc.SnapshotInterval = c.RaftSnapshotInterval
	rc.SnapshotThreshold = c.RaftSnapshotThreshold
	rc.TrailingLogs = c.RaftTrailingLogs
	rc.Logger = hlog
	// PreVote stays on (raft 1.7.3's default): a node cut off and rejoining does not depose a
	// healthy leader.
	if metas, err := snaps.List(); err == nil && len(metas) > 0 && n.fsm.DiskCovers(metas[0].Index) {
		// The commitlog and metadata on disk already hold everything up to the newest
		// snapshot: restoring it would only re-fetch what we have.
		rc.NoSnapshotRestoreOnStart = true
	}
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("node: raft config: %w", err)
	}

	has, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return fmt.Errorf("node: inspect raft state: %w", err)
	}
	if !has {
		if boot, ok := n.bootstrapConfiguration(); ok {
			if err := raft.BootstrapCluster(rc, logs, stable, snaps, trans, boot); err != nil {
				return fmt.Errorf("node: bootstrap raft group: %w", err)
			}
			n.log.Info("bootstrapped raft group", "servers", len(boot.Servers))
		}
	}
	r, err := raft.NewRaft(rc, n.fsm, logs, stable, snaps, trans)
	if err != nil {
		return fmt.Errorf("node: start raft: %w", err)
	}
	n.raft = r
	n.observeCh = make(chan raft.Observation, 16)
	n.observer = raft.NewObserver(n.observeCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState:
			return true
		}
		return false
	})
	r.RegisterObserver(n.observer)
	return nil
}

// bootstrapConfiguration is the configuration this node bootstraps with, if it is one that
// bootstraps: every DLedger peer (all with the same voter set), or a classic master alone.
// Classic slaves never bootstrap: they ask the master to add them.
func (n *Node) bootstrapConfiguration() (raft.Configuration, bool) {
	if n.cfg.EnableDLegerCommitLog {
		var conf raft.Configuration
		for _, p := range n.cfg.DLegerPeers {
			conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
		}
		return conf, true
	}
	if n.cfg.BrokerID == 0 {
		return raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: n.serverID, Address: n.raftAddr}}}, true
	}
	return raft.Configuration{}, false
}

// resolveRaftLogStore turns raftLogStore=auto into the store that holds the node's Raft log
// in dir (raft.db: boltdb; a non-empty wal/: wal), or the WAL for a node with neither. An
// explicit kind is returned as it is (checkRaftLogStoreKind then refuses a mismatch).
func resolveRaftLogStore(dir string, kind RaftLogStoreKind) RaftLogStoreKind {
	if kind != RaftLogAuto {
		return kind
	}
	if holdsLog(filepath.Join(dir, "raft.db")) && !holdsLog(filepath.Join(dir, "wal")) {
		return RaftLogBolt
	}
	return RaftLogWAL
}

// holdsLog reports whether path is a store's file, or a directory with something in it.
func holdsLog(path string) bool {
	st, err := os.Stat(path)
	if err != nil {
		return false
	}
	if st.IsDir() {
		ents, err := os.ReadDir(path)
		return err == nil && len(ents) > 0
	}
	return true
}

// checkRaftLogStoreKind refuses to start with one raftLogStore when the node's Raft log is in
// the other: the node would come up with an empty log, forgetting entries it acknowledged.
func checkRaftLogStoreKind(dir string, kind RaftLogStoreKind) error {
	other := filepath.Join(dir, "wal")
	if kind == RaftLogWAL {
		other = filepath.Join(dir, "raft.db")
	}
	if !holdsLog(other) {
		return nil // nothing of the other store (or unreadable: opening ours will say)
	}
	return fmt.Errorf("node: raftLogStore=%s but %s holds this node's Raft log from the other store; "+
		"switching would forget acknowledged entries: set raftLogStore back, or empty %s so the node rejoins from a snapshot",
		kind, other, dir)
}

// raftLogSyncLoop fsyncs the Raft log every flushIntervalCommitLog under ASYNC_FLUSH.
func (n *Node) raftLogSyncLoop() {
	t := time.NewTicker(n.cfg.FlushIntervalCommitLog)
	defer t.Stop()
	for {
		select {
		case <-n.shutdownCh:
			return
		case <-t.C:
			if err := n.raftLog.Sync(); err != nil {
				n.log.Warn("raft log background fsync failed", "err", err)
			}
		}
	}
}

func (n *Node) voterCount() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	v := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			v++
		}
	}
	return v
}

func resolveTCP(addr string) (*net.TCPAddr, error) { return net.ResolveTCPAddr("tcp", addr) }
