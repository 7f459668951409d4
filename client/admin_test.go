package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/transport"
)

func newTestAdmin(t testing.TB, c *testcluster.Cluster) *Admin {
	t.Helper()
	a, err := NewAdmin(ClientConfig{NameServers: []string{"127.0.0.1:1", c.NS.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func TestAdmin_RouteClusterTopics(t *testing.T) {
	c := newCluster(t)
	a := newTestAdmin(t, c)
	ctx := testCtx(t, 20*time.Second)
	topics, err := a.ListTopics(ctx)
	if err != nil || !slices.Contains(topics, c.Topic) {
		t.Fatalf("ListTopics: %v %v", topics, err)
	}
	rt, err := a.Route(ctx, c.Topic)
	if err != nil || len(rt.QueueDatas) != 1 || rt.QueueDatas[0].WriteQueueNums != 4 {
		t.Fatalf("Route: %+v %v", rt, err)
	}
	if _, err := a.Route(ctx, "NoSuchTopic"); !errors.Is(err, ErrTopicNotExist) {
		t.Fatalf("Route of a missing topic: %v", err)
	}
	// On a loaded machine the group may still hold an election right after start: the
	// leader's BID 0 registration then follows within a few seconds.
	testcluster.Eventually(t, 15*time.Second, func() error {
		ci, err := a.ClusterInfo(ctx)
		if err != nil {
			return err
		}
		b, ok := ci.BrokerAddrTable["broker-a"]
		if !ok || b.BrokerAddrs[0] != c.Leader(t).Addr() || len(b.BrokerAddrs) != 3 {
			return fmt.Errorf("ClusterInfo: %+v", ci)
		}
		st, err := a.GroupStatus(ctx, "broker-a")
		if err != nil || st.Leader != c.Leader(t).Addr() || len(st.Members) != 3 || st.Cluster != "TestCluster" {
			return fmt.Errorf("GroupStatus: %+v %v", st, err)
		}
		return nil
	})
	if _, err := a.GroupStatus(ctx, "no-such-group"); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("GroupStatus of a missing group: %v", err)
	}
}

func TestAdmin_CreateDeleteTopic(t *testing.T) {
	c := newCluster(t)
	requireBroker(t, c, transport.UpdateAndCreateTopic, transport.DeleteTopicInBroker)
	a := newTestAdmin(t, c)
	ctx := testCtx(t, 30*time.Second)
	if err := a.CreateTopic(ctx, TopicConfig{Topic: "AdminTopic", ReadQueues: 2, WriteQueues: 2}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error { _, err := a.Route(ctx, "AdminTopic"); return err })
	p := newTestProducer(t, c)
	if _, err := p.Send(ctx, &Message{Topic: "AdminTopic", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteTopic(ctx, "AdminTopic"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if _, err := a.Route(ctx, "AdminTopic"); !errors.Is(err, ErrTopicNotExist) {
			return errors.New("still routed")
		}
		return nil
	})
}

func TestAdmin_QueryMessage(t *testing.T) {
	c := newCluster(t)
	requireBroker(t, c, transport.ViewMessageByID, transport.QueryMessage)
	a := newTestAdmin(t, c)
	p := newTestProducer(t, c)
	ctx := testCtx(t, 30*time.Second)
	res, err := p.Send(ctx, &Message{Topic: c.Topic, Body: []byte("find me"), Keys: []string{"order-42"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.QueryMessageByID(ctx, res.OffsetMsgID)
	if err != nil || string(m.Body) != "find me" || m.MsgID != res.MsgID {
		t.Fatalf("QueryMessageByID: %+v %v", m, err)
	}
	eventually(t, 10*time.Second, func() error {
		ms, err := a.QueryMessageByKey(ctx, c.Topic, "order-42", 10, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			return err
		}
		if len(ms) != 1 || string(ms[0].Body) != "find me" {
			return errors.New("not found by key")
		}
		return nil
	})
}

func TestAdmin_ProgressAndReset(t *testing.T) {
	c := newCluster(t)
	requireBroker(t, c, append(clusteringCodes, transport.SearchOffsetByTimestamp)...)
	a := newTestAdmin(t, c)
	p := newTestProducer(t, c)
	ctx := testCtx(t, 30*time.Second)
	sendN(t, p, c.Topic, 8)
	// Store times are milliseconds stamped by the leader: keep mid clear of both batches,
	// or a message stored in mid's millisecond counts as after it.
	time.Sleep(5 * time.Millisecond)
	mid := time.Now()
	time.Sleep(5 * time.Millisecond)
	sendN(t, p, c.Topic, 8)
	prog, err := a.ConsumerProgress(ctx, "neverConsumed", c.Topic)
	if err != nil {
		t.Fatal(err)
	}
	var lag int64
	for _, q := range prog {
		lag += q.Lag
	}
	if lag != 16 {
		t.Fatalf("lag %d, want 16: %+v", lag, prog)
	}
	offs, err := a.ResetOffsetByTime(ctx, "resetGroup", c.Topic, mid)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, off := range offs {
		sum += off
	}
	if sum != 8 {
		t.Fatalf("reset offsets sum to %d, want 8", sum)
	}
	prog, err = a.ConsumerProgress(ctx, "resetGroup", c.Topic)
	if err != nil {
		t.Fatal(err)
	}
	lag = 0
	for _, q := range prog {
		lag += q.Lag
	}
	if lag != 8 {
		t.Fatalf("lag after reset %d, want 8", lag)
	}
}

// TestProducer_CompressedBodyRoundTrip: a body above CompressThreshold is sent zlib
// compressed and reaches the consumer as sent.
func TestProducer_CompressedBodyRoundTrip(t *testing.T) {
	c := newCluster(t)
	p := newTestProducer(t, c)
	ctx := testCtx(t, 20*time.Second)
	big := bytes.Repeat([]byte("compressible "), 1000)
	res, err := p.Send(ctx, &Message{Topic: c.Topic, Body: big})
	if err != nil {
		t.Fatal(err)
	}
	pc := newTestPull(t, c, "compressed")
	_ = pc.Assign("*", res.Queue)
	_ = pc.Seek(res.Queue, res.QueueOffset)
	msgs, err := pc.Poll(ctx)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("poll: %d %v", len(msgs), err)
	}
	if !bytes.Equal(msgs[0].Body, big) || msgs[0].SysFlag&1 == 0 {
		t.Fatalf("body %d bytes (sent %d), sysFlag %d", len(msgs[0].Body), len(big), msgs[0].SysFlag)
	}
}

// TestAdmin_ResetOffsetWhileConsuming: a reset by time reaches the group's online member
// through the broker, which then consumes again from the reset point.
func TestAdmin_ResetOffsetWhileConsuming(t *testing.T) {
	c := newCluster(t)
	requireBroker(t, c, append(clusteringCodes, transport.SearchOffsetByTimestamp, transport.InvokeBrokerToResetOffset)...)
	a := newTestAdmin(t, c)
	p := newTestProducer(t, c)
	ctx := testCtx(t, 60*time.Second)
	got := newReceived()
	pc := newTestPush(t, c, "resetOnline", func(cfg *PushConsumerConfig) {
		cfg.Listener = func(_ context.Context, msgs []*MessageExt) ConsumeResult { got.add(msgs); return ConsumeSuccess }
	}, c.Topic, "*")
	if err := pc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sendN(t, p, c.Topic, 8)
	got.waitAll(t, seq(8), 20*time.Second)
	if _, err := a.ResetOffsetByTime(ctx, "resetOnline", c.Topic, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() error {
		got.mu.Lock()
		defer got.mu.Unlock()
		for i := range 8 {
			if got.seen[i] < 2 {
				return fmt.Errorf("message %d not consumed again after the reset", i)
			}
		}
		return nil
	})
}
