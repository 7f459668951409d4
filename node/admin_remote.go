package node

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/raftmq/raftmq/transport"
)

// Raft group administration over the remoting protocol (raftmq-specific codes, used by
// `raftmq admin groupStatus|transferLeader|addMember|removeMember|promote`).
const (
	// CodeGroupStatus (RAFTMQ_GROUP_STATUS): no ext; reply body = GroupStatus as JSON, as
	// the node asked sees it (any member answers).
	CodeGroupStatus transport.RequestCode = 10003
	// CodeTransferLeader (RAFTMQ_TRANSFER_LEADER): ext to = target server ID ("" = raft picks).
	// Leader only.
	CodeTransferLeader transport.RequestCode = 10004
	// CodeAddMember (RAFTMQ_ADD_MEMBER): ext id, raftAddr, voter ("true"/"false"). Leader only.
	CodeAddMember transport.RequestCode = 10005
	// CodeRemoveMember (RAFTMQ_REMOVE_MEMBER): ext id. Leader only.
	CodeRemoveMember transport.RequestCode = 10006
	// CodePromote (RAFTMQ_PROMOTE): ext id, a non-voter to turn into a voter. Leader only.
	CodePromote transport.RequestCode = 10007
)

func (n *Node) routesRaftAdmin() {
	n.mux.HandleFunc(CodeGroupStatus, n.handleGroupStatus)
	n.mux.HandleFunc(CodeTransferLeader, n.handleTransferLeader)
	n.mux.HandleFunc(CodeAddMember, n.handleAddMember)
	n.mux.HandleFunc(CodeRemoveMember, n.handleRemoveMember)
	n.mux.HandleFunc(CodePromote, n.handlePromote)
}

func (n *Node) handleGroupStatus(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	st, err := n.GroupStatus()
	if err != nil {
		return errorResponse(err)
	}
	body, err := json.Marshal(st)
	if err != nil {
		return errorResponse(fmt.Errorf("node: encode group status: %w", err))
	}
	resp := transport.NewResponse(transport.Success, "")
	resp.Body = body
	return resp
}

func (n *Node) handleTransferLeader(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	if err := n.TransferLeadership(ctx, req.Ext("to")); err != nil {
		return errorResponse(err)
	}
	return transport.NewResponse(transport.Success, "")
}

func (n *Node) handleAddMember(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	id, addr := req.Ext("id"), req.Ext("raftAddr")
	if id == "" || addr == "" {
		return errorResponse(fmt.Errorf("%w: id and raftAddr are required", ErrBadRequest))
	}
	voter := req.Ext("voter") != "false"
	if err := n.AddMember(ctx, id, addr, voter); err != nil {
		return errorResponse(err)
	}
	return transport.NewResponse(transport.Success, "")
}

func (n *Node) handleRemoveMember(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	id := req.Ext("id")
	if id == "" {
		return errorResponse(fmt.Errorf("%w: id is required", ErrBadRequest))
	}
	if err := n.RemoveMember(ctx, id); err != nil {
		return errorResponse(err)
	}
	return transport.NewResponse(transport.Success, "")
}

func (n *Node) handlePromote(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	id := req.Ext("id")
	if id == "" {
		return errorResponse(fmt.Errorf("%w: id is required", ErrBadRequest))
	}
	if err := n.Promote(ctx, id); err != nil {
		return errorResponse(err)
	}
	return transport.NewResponse(transport.Success, "")
}
