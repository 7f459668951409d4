package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/transport"
)

// fetcher implements fsm.Fetcher over the remoting protocol: it asks the other nodes of the
// group for commitlog bytes (RAFTMQ_FETCH_COMMITLOG), the leader first. Addresses come from the
// replicated member table, from joins, and from the name servers' view of the group.
type fetcher struct{ n *Node }

func (f *fetcher) FetchCommitLog(ctx context.Context, from int64, maxBytes int) ([]byte, error) {
	var errs []error
	tried := map[string]bool{}
	try := func(addrs []string) ([]byte, bool) {
		for _, addr := range addrs {
			if tried[addr] {
				continue
			}
			tried[addr] = true
			b, err := f.fetchFrom(ctx, addr, from, maxBytes)
			if err == nil {
				return b, true
			}
			errs = append(errs, err)
		}
		return nil, false
	}
	// Known members first (the leader first); the name servers' view of the group only when
	// none of them answers.
	if b, ok := try(f.known()); ok {
		return b, nil
	}
	if b, ok := try(f.fromNameServers(ctx)); ok {
		return b, nil
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("node: fetch commitlog from %d: no peer broker address known", from)
	}
	return nil, fmt.Errorf("node: fetch commitlog from %d: %w", from, errors.Join(errs...))
}

func (f *fetcher) fetchFrom(ctx context.Context, addr string, from int64, maxBytes int) ([]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := f.n.client.Invoke(cctx, addr, transport.NewRequest(CodeFetchCommitLog, map[string]string{
		"from": strconv.FormatInt(from, 10), "maxBytes": strconv.Itoa(maxBytes),
	}, nil))
	if err != nil {
		return nil, err
	}
	if resp.Code != int16(transport.Success) {
		return nil, fmt.Errorf("%s: %s: %s", addr, transport.ResponseCode(resp.Code), resp.Remark)
	}
	return resp.Body, nil
}

// known lists the broker addresses of other members this node knows, the leader's first.
func (f *fetcher) known() []string {
	n := f.n
	var out []string
	seen := map[string]bool{n.addr: true, "": true}
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	var leaderID raft.ServerID
	if n.raft != nil {
		var a string
		a, leaderID = n.leaderBrokerAddr()
		add(a)
	}
	n.peerMu.Lock()
	add(n.peerAddrs[leaderID])
	for _, a := range n.peerAddrs {
		add(a)
	}
	n.peerMu.Unlock()
	return out
}

// fromNameServers lists the addresses a name server holds for this node's group, id 0 first.
func (f *fetcher) fromNameServers(ctx context.Context) []string {
	n := f.n
	var out []string
	for _, ns := range n.cfg.NamesrvAddr {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		ci, err := namesrv.GetClusterInfo(cctx, n.client, ns)
		cancel()
		if err != nil {
			continue
		}
		bd, ok := ci.BrokerAddrTable[n.cfg.BrokerName]
		if !ok {
			continue
		}
		ids := make([]int64, 0, len(bd.BrokerAddrs))
		for id := range bd.BrokerAddrs {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			if a := bd.BrokerAddrs[id]; a != n.addr {
				out = append(out, a)
			}
		}
		return out
	}
	return out
}

func (n *Node) handleFetch(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	if err := n.serving(); err != nil {
		return errorResponse(err)
	}
	from, err := req.ExtInt64("from")
	if err != nil {
		return errorResponse(err)
	}
	maxBytes, err := req.ExtInt32("maxBytes")
	if err != nil {
		return errorResponse(err)
	}
	if maxBytes <= 0 || maxBytes > 8<<20 {
		maxBytes = 8 << 20
	}
	b, err := n.fsm.ReadCommitLog(from, int(maxBytes))
	if err != nil {
		return errorResponse(err)
	}
	resp := transport.NewResponse(transport.Success, "")
	resp.Body = b
	return resp
}
