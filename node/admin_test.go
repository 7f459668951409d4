package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/node"
)

// routeMaster returns the address the name server lists as brokerId 0 of the test group.
func routeMaster(c *testcluster.Cluster) (string, map[int64]string) {
	bd, ok := c.NS.Table().ClusterInfo().BrokerAddrTable["broker-a"]
	if !ok {
		return "", nil
	}
	return bd.BrokerAddrs[0], bd.BrokerAddrs
}

func TestAdmin_GroupStatusTransferAndReregistration(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster admin scenario")
	}
	c := testcluster.New(t, 3, testcluster.Quiet())
	l := c.Leader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	st, err := l.GroupStatus()
	if err != nil {
		t.Fatal(err)
	}
	if st.Leader != l.ServerID() || st.State != "Leader" || len(st.Members) != 3 || st.Term == 0 || st.CommitIndex == 0 {
		t.Fatalf("status %+v", st)
	}
	for _, m := range st.Members {
		if !m.Voter {
			t.Fatalf("DLedger member %s is not a voter", m.ServerID)
		}
	}
	// The leader is brokerId 0 on the name server, the others K+1; every node knows it is
	// registered in its role (what /readyz asks).
	testcluster.Eventually(t, 10*time.Second, func() error {
		m, all := routeMaster(c)
		if m != l.Addr() || len(all) != 3 {
			return fmt.Errorf("route %v, leader %s", all, l.Addr())
		}
		for _, n := range c.Live() {
			if !n.Registered() {
				return fmt.Errorf("%s not registered", n.ServerID())
			}
		}
		return nil
	})
	target := c.Followers()[0]
	if err := target.TransferLeadership(ctx, l.ServerID()); err == nil {
		t.Fatal("a follower accepted TransferLeadership")
	}
	if err := l.TransferLeadership(ctx, target.ServerID()); err != nil {
		t.Fatal(err)
	}
	if nl := c.Leader(t); nl != target {
		t.Fatalf("leader is %s after transfer to %s", nl.ServerID(), target.ServerID())
	}
	// Re-registration at once on the leadership change (well before the 2 s period... or the
	// 30 s default: the test only needs it to happen).
	testcluster.Eventually(t, 10*time.Second, func() error {
		if m, all := routeMaster(c); m != target.Addr() || len(all) != 3 {
			return fmt.Errorf("route %v, new leader %s", all, target.Addr())
		}
		if !target.Registered() || !l.Registered() {
			return fmt.Errorf("registered in the new roles: new leader %v, old leader %v", target.Registered(), l.Registered())
		}
		return nil
	})
	// Remove a member and add it back as a non-voter, then promote it.
	nl := target
	var victim *node.Node
	for _, f := range c.Followers() {
		victim = f
	}
	if err := nl.RemoveMember(ctx, victim.ServerID()); err != nil {
		t.Fatal(err)
	}
	if err := nl.AddMember(ctx, victim.ServerID(), victim.RaftAddr(), false); err != nil {
		t.Fatal(err)
	}
	voter := func() bool {
		st, _ := nl.GroupStatus()
		for _, m := range st.Members {
			if m.ServerID == victim.ServerID() {
				return m.Voter
			}
		}
		t.Fatalf("%s not a member", victim.ServerID())
		return false
	}
	if voter() {
		t.Fatal("added as non-voter but is a voter")
	}
	if err := nl.Promote(ctx, victim.ServerID()); err != nil {
		t.Fatal(err)
	}
	if !voter() {
		t.Fatal("promoted but not a voter")
	}
	resp, err := send(ctx, c.Client(), nl.Addr(), c.Topic, 0, []byte("after membership changes"))
	mustSucceed(t, resp, err)
	c.EnsureSame(t)
}

// Close on the leader hands leadership over and unregisters; the group keeps serving.
func TestNode_GracefulCloseTransfersLeadership(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster scenario")
	}
	c := testcluster.New(t, 3, testcluster.Quiet())
	l := c.Leader(t)
	li := c.Index(l)
	addr := l.Addr()
	start := time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	c.Kill(t, li) // forget it
	nl := c.Leader(t)
	t.Logf("new leader %s ready %v after Close began", nl.ServerID(), time.Since(start))
	testcluster.Eventually(t, 10*time.Second, func() error {
		m, all := routeMaster(c)
		for _, a := range all {
			if a == addr {
				return fmt.Errorf("closed node still registered: %v", all)
			}
		}
		if m != nl.Addr() {
			return fmt.Errorf("route master %s, want %s", m, nl.Addr())
		}
		return nil
	})
	resp, err := send(context.Background(), c.Client(), nl.Addr(), c.Topic, 0, []byte("x"))
	mustSucceed(t, resp, err)
}

// TestNode_RegisteredFollowsTheRole: Registered (what /readyz asks) is true only when a name
// server accepted the node's registration in its current role; a role change while the name
// server is gone leaves both nodes unregistered.
func TestNode_RegisteredFollowsTheRole(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster admin scenario")
	}
	c := testcluster.New(t, 3, testcluster.Quiet())
	l := c.Leader(t)
	testcluster.Eventually(t, 10*time.Second, func() error {
		for _, n := range c.Live() {
			if !n.Registered() {
				return fmt.Errorf("%s not registered", n.ServerID())
			}
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.NS.Close(ctx); err != nil {
		t.Fatal(err)
	}
	target := c.Followers()[0]
	if err := l.TransferLeadership(ctx, target.ServerID()); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		if !target.LeaderReady() {
			return fmt.Errorf("%s not a ready leader yet", target.ServerID())
		}
		return nil
	})
	if target.Registered() || l.Registered() {
		t.Fatalf("registered without a name server: new leader %v, old leader %v", target.Registered(), l.Registered())
	}
}
