package node

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/transport"
)

// raftmq-specific request codes (outside RocketMQ's range).
const (
	// CodeJoin (RAFTMQ_JOIN): a classic slave asks the master to add it to the group.
	// ext serverId, raftAddr, brokerId. The master adds a voter when it is a SYNC_MASTER and a
	// non-voter when it is an ASYNC_MASTER.
	CodeJoin transport.RequestCode = 10001
	// CodeFetchCommitLog (RAFTMQ_FETCH_COMMITLOG): raw commitlog bytes for a follower catching up
	// through a snapshot. ext from, maxBytes; reply body = whole records (fsm.ReadCommitLog).
	CodeFetchCommitLog transport.RequestCode = 10002
)

func (n *Node) routes() {
	n.mux.HandleFunc(transport.SendMessage, n.handleSend)
	n.mux.HandleFunc(transport.SendMessageV2, n.handleSend)
	n.mux.HandleFunc(transport.SendBatchMessage, n.handleSend)
	n.mux.HandleFunc(transport.PullMessage, n.handlePull)
	n.mux.HandleFunc(CodeJoin, n.handleJoin)
	n.mux.HandleFunc(CodeFetchCommitLog, n.handleFetch)
	n.routesRaftAdmin()
	n.routesAdmin()
	n.routesConsumer()
	n.routesFlows()
}

// MemberStatus is one member of the group as GroupStatus reports it.
type MemberStatus struct {
	ServerID   string
	RaftAddr   string
	BrokerAddr string // "" when unknown
	Voter      bool
	Leader     bool
}

// GroupStatus is the state of the node's Raft group as this node sees it.
type GroupStatus struct {
	Self         string
	State        string // Leader, Follower, Candidate, Shutdown
	Leader       string // server ID, "" if none known
	Term         uint64
	LastIndex    uint64
	CommitIndex  uint64
	AppliedIndex uint64 // raft's
	FSMApplied   uint64 // the fsm's (what pulls see)
	Lag          uint64 // CommitIndex - FSMApplied
	Members      []MemberStatus
}

// GroupStatus reports the group's members, leader, term and indexes.
func (n *Node) GroupStatus() (GroupStatus, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return GroupStatus{}, fmt.Errorf("node: group status: %w", err)
	}
	_, leader := n.raft.LeaderWithID()
	st := GroupStatus{
		Self: string(n.serverID), State: n.raft.State().String(), Leader: string(leader),
		Term: n.raft.CurrentTerm(), LastIndex: n.raft.LastIndex(), CommitIndex: n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(), FSMApplied: n.fsm.AppliedIndex(),
	}
	if st.CommitIndex > st.FSMApplied {
		st.Lag = st.CommitIndex - st.FSMApplied
	}
	if n.Fenced() != nil {
		// Raft may still believe it leads (its loop is stuck in the stalled write); the node
		// serves nothing and its peers have moved on.
		st.State = "Fenced"
	}
	addrs := map[string]string{}
	for _, m := range n.fsm.Members() {
		addrs[m.ServerID] = m.BrokerAddr
	}
	addrs[string(n.serverID)] = n.addr
	for _, s := range f.Configuration().Servers {
		st.Members = append(st.Members, MemberStatus{
			ServerID: string(s.ID), RaftAddr: string(s.Address), BrokerAddr: addrs[string(s.ID)],
			Voter: s.Suffrage == raft.Voter, Leader: s.ID == leader,
		})
	}
	sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].ServerID < st.Members[j].ServerID })
	return st, nil
}

func (n *Node) leaderOnly() error {
	if err := n.serving(); err != nil {
		return err
	}
	if !n.IsLeader() {
		_, id := n.raft.LeaderWithID()
		if id == "" {
			return ErrNoLeader
		}
		return fmt.Errorf("%w; leader is %s", ErrNotLeader, id)
	}
	return nil
}

func timeoutOf(ctx context.Context, d time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return d
}

// TransferLeadership hands leadership to the member with server ID to ("" = raft picks).
func (n *Node) TransferLeadership(ctx context.Context, to string) error {
	if err := n.leaderOnly(); err != nil {
		return err
	}
	var f raft.Future
	if to == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		addr, err := n.memberAddr(raft.ServerID(to))
		if err != nil {
			return err
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(to), addr)
	}
	if err := waitFuture(ctx, f); err != nil {
		return fmt.Errorf("node: transfer leadership to %q: %w", to, err)
	}
	return nil
}

func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Node) memberAddr(id raft.ServerID) (raft.ServerAddress, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return "", err
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == id {
			return s.Address, nil
		}
	}
	return "", fmt.Errorf("node: %q is not a member of the group", id)
}

// AddMember adds a server to the group, as a voter or a non-voter.
func (n *Node) AddMember(ctx context.Context, id, raftAddr string, voter bool) error {
	if err := n.leaderOnly(); err != nil {
		return err
	}
	to := timeoutOf(ctx, 10*time.Second)
	var f raft.IndexFuture
	if voter {
		f = n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, to)
	} else {
		f = n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, to)
	}
	if err := f.Error(); err != nil {
		return fmt.Errorf("node: add member %s (%s, voter=%v): %w", id, raftAddr, voter, err)
	}
	n.log.Info("member added", "id", id, "raftAddr", raftAddr, "voter", voter)
	return nil
}

// RemoveMember removes a server from the group.
func (n *Node) RemoveMember(ctx context.Context, id string) error {
	if err := n.leaderOnly(); err != nil {
		return err
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, timeoutOf(ctx, 10*time.Second)).Error(); err != nil {
		return fmt.Errorf("node: remove member %s: %w", id, err)
	}
	return nil
}

// Promote turns a non-voter into a voter.
func (n *Node) Promote(ctx context.Context, id string) error {
	addr, err := n.memberAddr(raft.ServerID(id))
	if err != nil {
		return err
	}
	return n.AddMember(ctx, id, string(addr), true)
}

// CreateTopic creates or updates a topic through Raft and re-registers with the name servers
// at once (RocketMQ registers right after a topic change). Leader only.
func (n *Node) CreateTopic(ctx context.Context, tc fsm.TopicConfig) error {
	if err := n.leaderOnly(); err != nil {
		return err
	}
	if tc.Perm == 0 {
		tc.Perm = 6
	}
	if tc.TopicFilterType == "" {
		tc.TopicFilterType = "SINGLE_TAG"
	}
	if err := n.apply(ctx, fsm.CmdPutTopic, &fsm.PutTopicCommand{Topic: tc, Timestamp: time.Now().UnixMilli()}); err != nil {
		return fmt.Errorf("node: create topic %s: %w", tc.TopicName, err)
	}
	n.registerAll()
	return nil
}

// apply proposes one metadata command and waits for it to be applied.
func (n *Node) apply(ctx context.Context, t fsm.CommandType, v any) error {
	data, err := fsm.Encode(t, v)
	if err != nil {
		return err
	}
	f := n.raft.Apply(data, timeoutOf(ctx, n.opts.SendTimeout))
	if err := waitFuture(ctx, f); err != nil {
		return err
	}
	if err, ok := f.Response().(error); ok {
		return err
	}
	return nil
}

// handleJoin serves RAFTMQ_JOIN on the master.
func (n *Node) handleJoin(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	id, addr := req.Ext("serverId"), req.Ext("raftAddr")
	if id == "" || addr == "" {
		return errorResponse(fmt.Errorf("%w: join needs serverId and raftAddr", ErrBadRequest))
	}
	if err := n.leaderOnly(); err != nil {
		return errorResponse(err)
	}
	voter := n.cfg.BrokerRole == RoleSyncMaster || n.cfg.EnableDLegerCommitLog
	f := n.raft.GetConfiguration()
	if f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if s.ID == raft.ServerID(id) && s.Address == raft.ServerAddress(addr) && (s.Suffrage == raft.Voter) == voter {
				return transport.NewResponse(transport.Success, "already a member")
			}
		}
	}
	if bid, err := strconv.ParseInt(req.Ext("brokerId"), 10, 64); err == nil && req.Ext("brokerAddr") != "" {
		n.peerMu.Lock()
		n.peerAddrs[raft.ServerID(id)] = req.Ext("brokerAddr")
		n.peerMu.Unlock()
		_ = bid
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := n.AddMember(cctx, id, addr, voter); err != nil {
		return errorResponse(err)
	}
	return transport.NewResponse(transport.Success, "")
}

// joinLoop (classic slaves) registers with the name servers to learn the master's address and
// asks the master to add this node until the node is in the group's configuration.
func (n *Node) joinLoop() {
	t := time.NewTicker(n.opts.JoinRetryInterval)
	defer t.Stop()
	for {
		if n.inConfiguration() {
			n.log.Info("slave is a member of the group")
			return
		}
		if master := n.registerAll(); master != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
			resp, err := n.client.Invoke(ctx, master, transport.NewRequest(CodeJoin, map[string]string{
				"serverId": string(n.serverID), "raftAddr": string(n.raftAddr),
				"brokerId": strconv.FormatInt(n.cfg.BrokerID, 10), "brokerAddr": n.addr,
			}, nil))
			cancel()
			switch {
			case err != nil:
				n.log.Warn("join request to master failed", "master", master, "err", err)
			case resp.Code != int16(transport.Success):
				n.log.Warn("master refused join", "master", master, "code", transport.ResponseCode(resp.Code), "remark", resp.Remark)
			default:
				n.log.Info("joined the group through the master", "master", master)
			}
		}
		select {
		case <-n.shutdownCh:
			return
		case <-t.C:
		}
	}
}

func (n *Node) inConfiguration() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == n.serverID {
			return true
		}
	}
	return false
}
