package node_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/transport"
)

func TestCluster_SendPullEverywhere(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Quiet())
	leader := c.Leader(t)
	cl := c.Client()
	ctx := context.Background()
	for i := range 20 {
		resp, err := send(ctx, cl, leader.Addr(), c.Topic, i%4, bodyOf(i))
		mustSucceed(t, resp, err)
		if resp.Ext("msgId") == "" || resp.Ext("queueId") != strconv.Itoa(i%4) || resp.Ext("queueOffset") != strconv.Itoa(i/4) {
			t.Fatalf("send reply ext %v", resp.ExtFields)
		}
	}
	// A send to a follower is forwarded to the leader (whose address the follower learnt from
	// the replicated member table).
	c.WaitApplied(t, leader.Raft().AppliedIndex())
	f := c.Followers()[0]
	resp, err := send(ctx, cl, f.Addr(), c.Topic, 0, bodyOf(20))
	mustSucceed(t, resp, err)
	c.WaitApplied(t, leader.Raft().AppliedIndex())
	for _, nd := range c.Live() {
		got := pullAll(t, cl, nd.Addr(), c.Topic, 0)
		if len(got) != 6 {
			t.Fatalf("%s: pulled %d messages from queue 0, want 6", nd.ServerID(), len(got))
		}
		for k, m := range got[:5] {
			if string(m.Body) != string(bodyOf(k*4)) {
				t.Fatalf("%s: message %d body %q", nd.ServerID(), k, m.Body)
			}
		}
	}
	c.EnsureSame(t)
}

func TestCluster_LongPollWakesOnSend(t *testing.T) {
	c := testcluster.New(t, 1, testcluster.Quiet())
	leader := c.Leader(t)
	cl := c.Client()
	done := make(chan *transport.Command, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cl.Invoke(ctx, leader.Addr(), pullReq(c.Topic, 1, 0, 32, 8*time.Second, "*"))
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	select {
	case r := <-done:
		t.Fatalf("held pull answered before any send: %v", r)
	case <-time.After(300 * time.Millisecond):
	}
	resp, err := send(context.Background(), cl, leader.Addr(), c.Topic, 1, bodyOf(1))
	mustSucceed(t, resp, err)
	r := <-done
	if r == nil || r.Code != int16(transport.Success) || r.Ext("nextBeginOffset") != "1" {
		t.Fatalf("held pull reply %v", r)
	}
}
