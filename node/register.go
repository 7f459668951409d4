package node

import (
	"context"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/namesrv"
)

// roleLoop follows leadership. On becoming leader the node waits until it has applied
// everything committed (Barrier), records its broker address in the replicated member table
// (so followers can forward to it) and registers as brokerId 0; on losing leadership it
// re-registers as a slave at once.
func (n *Node) roleLoop() {
	leaderCh := n.raft.LeaderCh()
	for {
		select {
		case <-n.shutdownCh:
			return
		case isLeader := <-leaderCh:
			n.onLeadership(isLeader)
		case o := <-n.observeCh:
			if lo, ok := o.Data.(raft.LeaderObservation); ok {
				n.log.Info("leader changed", "leader", lo.LeaderID)
				n.refreshPeers()
			}
			n.kickRegister()
		}
	}
}

func (n *Node) onLeadership(isLeader bool) {
	if !isLeader {
		n.leaderReady.Store(false)
		n.leaderEpoch.Store(0)
		n.log.Info("lost leadership")
		n.kickRegister()
		return
	}
	term := n.raft.CurrentTerm()
	n.log.Info("became leader", "term", term)
	if !n.cfg.EnableDLegerCommitLog && n.cfg.BrokerID > 0 {
		// A classic slave (a voter of a SYNC_MASTER group) won an election, e.g. after the
		// master was briefly cut off. Classic modes have no failover: hand leadership back to
		// the master when it is reachable.
		if addr, err := n.memberAddr(masterServerID); err == nil {
			if err := n.raft.LeadershipTransferToServer(masterServerID, addr).Error(); err == nil {
				n.log.Info("handed leadership back to the master")
				return
			}
		}
	}
	// Catch up: everything committed by earlier leaders is applied before we register as
	// master (RocketMQ's DLedgerRoleChangeHandler waits the same way).
	for {
		err := n.raft.Barrier(n.cfg.RaftElectionTimeout * 5).Error()
		if err == nil {
			break
		}
		if n.raft.State() != raft.Leader {
			return
		}
		select {
		case <-n.shutdownCh:
			return
		default:
		}
		n.log.Warn("barrier after election failed; retrying", "err", err)
	}
	data, err := fsm.Encode(fsm.CmdSetMember, &fsm.SetMemberCommand{Member: fsm.Member{
		ServerID: string(n.serverID), BrokerAddr: n.addr, BrokerID: n.cfg.BrokerID,
	}})
	if err == nil {
		err = n.raft.Apply(data, n.opts.SendTimeout).Error()
	}
	if err != nil {
		n.log.Warn("recording the leader's broker address failed", "err", err)
	}
	if n.raft.State() != raft.Leader {
		return
	}
	n.leaderEpoch.Store(int64(term))
	n.leaderReady.Store(true)
	n.kickRegister()
}

func (n *Node) kickRegister() {
	select {
	case n.regKick <- struct{}{}:
	default:
	}
}

// registerLoop registers with every name server at start, every RegisterInterval and at once
// when kicked (role change, topic change).
func (n *Node) registerLoop() {
	t := time.NewTicker(n.opts.RegisterInterval)
	defer t.Stop()
	n.registerAll()
	for {
		select {
		case <-n.shutdownCh:
			return
		case <-t.C:
		case <-n.regKick:
		}
		n.registerAll()
	}
}

// registrationID is the brokerId this node registers under right now.
// Registered reports whether a name server accepted this node's registration under the
// brokerId it registers as now (0 once it leads and has caught up; its slave id otherwise).
// With no name server configured there is nothing to register with: true.
func (n *Node) Registered() bool {
	if len(n.cfg.NamesrvAddr) == 0 {
		return true
	}
	return n.registered.Load() == n.registrationID()+1
}

func (n *Node) registrationID() int64 {
	if n.leaderReady.Load() && n.IsLeader() {
		return 0
	}
	return n.slaveID
}

func (n *Node) registerRequest() namesrv.RegisterBrokerRequest {
	topics := n.fsm.Topics()
	dv := n.topicDataVersion()
	table := make(map[string]namesrv.TopicConfig, len(topics))
	for _, tc := range topics {
		table[tc.TopicName] = namesrv.TopicConfig{
			TopicName: tc.TopicName, ReadQueueNums: tc.ReadQueueNums, WriteQueueNums: tc.WriteQueueNums,
			Perm: n.registeredTopicPerm(tc.Perm), TopicFilterType: orDefault(tc.TopicFilterType, "SINGLE_TAG"), TopicSysFlag: tc.TopicSysFlag, Order: tc.Order,
		}
	}
	id := n.registrationID()
	req := namesrv.RegisterBrokerRequest{
		ClusterName:  n.cfg.BrokerClusterName,
		BrokerName:   n.cfg.BrokerName,
		BrokerAddr:   n.addr,
		BrokerID:     id,
		HAServerAddr: string(n.raftAddr),
		Topics: namesrv.TopicConfigSerializeWrapper{
			DataVersion:      namesrv.DataVersion{Timestamp: dv.Timestamp, Counter: dv.Counter},
			TopicConfigTable: table,
		},
		HeartbeatTimeout: n.opts.NamesrvHeartbeatTimeout,
	}
	if id == 0 {
		req.LeaderEpoch = n.leaderEpoch.Load()
	}
	return req
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// boundedContext is a context cancelled after d or when the node shuts down, whichever comes
// first, for name-server calls that must neither hang nor outlive Close.
func (n *Node) boundedContext(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	go func() {
		select {
		case <-n.shutdownCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// registerAll registers once with every name server and returns the master address learnt
// from the replies (for classic slaves).
func (n *Node) registerAll() (masterAddr string) {
	if len(n.cfg.NamesrvAddr) == 0 || n.serving() != nil {
		return ""
	}
	ctx, cancel := n.boundedContext(3 * time.Second)
	defer cancel()
	req := n.registerRequest()
	accepted := false
	defer func() {
		if accepted {
			n.registered.Store(req.BrokerID + 1)
		}
	}()
	for _, r := range namesrv.RegisterAll(ctx, n.client, n.cfg.NamesrvAddr, req) {
		if r.Err != nil {
			n.log.Warn("register with name server failed", "namesrv", r.Addr, "brokerId", req.BrokerID, "err", r.Err)
			continue
		}
		accepted = true
		if r.Result.MasterAddr != "" {
			masterAddr = r.Result.MasterAddr
		}
	}
	n.log.Debug("registered with name servers", "brokerId", req.BrokerID, "topics", len(req.Topics.TopicConfigTable))
	return masterAddr
}

func (n *Node) unregister() {
	if len(n.cfg.NamesrvAddr) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	errs := namesrv.UnregisterAll(ctx, n.client, n.cfg.NamesrvAddr, namesrv.UnregisterBrokerRequest{
		ClusterName: n.cfg.BrokerClusterName, BrokerName: n.cfg.BrokerName, BrokerAddr: n.addr, BrokerID: n.registrationID(),
	})
	for i, err := range errs {
		if err != nil {
			n.log.Warn("unregister from name server failed", "namesrv", n.cfg.NamesrvAddr[i], "err", err)
		}
	}
}

// refreshPeers caches the broker addresses of the members the FSM knows.
func (n *Node) refreshPeers() {
	ms := n.fsm.Members()
	n.peerMu.Lock()
	defer n.peerMu.Unlock()
	for _, m := range ms {
		if m.BrokerAddr != "" && raft.ServerID(m.ServerID) != n.serverID {
			n.peerAddrs[raft.ServerID(m.ServerID)] = m.BrokerAddr
		}
	}
}
