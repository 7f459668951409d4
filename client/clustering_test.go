package client

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/node" // test-only: broker config of the test cluster
	"github.com/raftmq/raftmq/transport"
)

var clusteringCodes = []transport.RequestCode{
	transport.HeartBeat, transport.GetConsumerListByGroup, transport.QueryConsumerOffset,
	transport.UpdateConsumerOffset, transport.GetMaxOffset,
}

func disjointCover(a, b []MessageQueue, n int) error {
	seen := map[MessageQueue]int{}
	for _, q := range append(append([]MessageQueue{}, a...), b...) {
		seen[q]++
	}
	if len(seen) != n || len(a)+len(b) != n {
		return fmt.Errorf("queues %v and %v do not split %d queues", a, b, n)
	}
	return nil
}

// TestPushConsumer_ClusteringSplitAndTakeover: two members of one group split the queues,
// every message is consumed by one of them, and the survivor takes every queue when the
// other leaves.
func TestPushConsumer_ClusteringSplitAndTakeover(t *testing.T) {
	c := newCluster(t)
	requireBroker(t, c, clusteringCodes...)
	p := newTestProducer(t, c)
	ctx := testCtx(t, 60*time.Second)
	got := newReceived()
	mk := func(inst string) *PushConsumer {
		return newTestPush(t, c, "split", func(cfg *PushConsumerConfig) {
			cfg.InstanceName = inst
			cfg.Listener = func(_ context.Context, msgs []*MessageExt) ConsumeResult { got.add(msgs); return ConsumeSuccess }
		}, c.Topic, "*")
	}
	c1, c2 := mk("one"), mk("two")
	if err := c1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	of := func(pc *PushConsumer) []MessageQueue {
		var out []MessageQueue
		for _, q := range pc.Assigned() {
			if q.Topic == c.Topic {
				out = append(out, q)
			}
		}
		return out
	}
	eventually(t, 20*time.Second, func() error { return disjointCover(of(c1), of(c2), 4) })
	if len(of(c1)) != 2 {
		t.Fatalf("uneven split: %v / %v", of(c1), of(c2))
	}
	ids, err := newTestAdmin(t, c).ConsumerConnections(ctx, "split", c.Topic)
	if err != nil || !slices.Contains(ids, c1.ClientID()) || !slices.Contains(ids, c2.ClientID()) {
		t.Fatalf("ConsumerConnections: %v %v (want %s and %s)", ids, err, c1.ClientID(), c2.ClientID())
	}
	sendN(t, p, c.Topic, 100)
	got.waitAll(t, seq(100), 20*time.Second)
	_ = c2.Close()
	eventually(t, 20*time.Second, func() error {
		if n := len(of(c1)); n != 4 {
			return fmt.Errorf("survivor holds %d queues", n)
		}
		return nil
	})
	sendN(t, p, c.Topic, 100)
	// Bodies repeat 0..99, so wait on the count of deliveries instead.
	eventually(t, 20*time.Second, func() error {
		got.mu.Lock()
		defer got.mu.Unlock()
		for i := range 100 {
			if got.seen[i] < 2 {
				return fmt.Errorf("message %d of the second round missing", i)
			}
		}
		return nil
	})
}

// TestPushConsumer_OffsetsCommittedAtClose: a group's next member starts where the last
// one closed.
func TestPushConsumer_OffsetsCommittedAtClose(t *testing.T) {
	c := newCluster(t)
	requireBroker(t, c, clusteringCodes...)
	p := newTestProducer(t, c)
	ctx := testCtx(t, 60*time.Second)
	sendN(t, p, c.Topic, 40)
	got := newReceived()
	c1 := newTestPush(t, c, "resume", func(cfg *PushConsumerConfig) {
		cfg.OffsetCommitInterval = time.Hour // only Close commits
		cfg.Listener = func(_ context.Context, msgs []*MessageExt) ConsumeResult { got.add(msgs); return ConsumeSuccess }
	}, c.Topic, "*")
	if err := c1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	got.waitAll(t, seq(40), 20*time.Second)
	_ = c1.Close()
	got2 := newReceived()
	c2 := newTestPush(t, c, "resume", func(cfg *PushConsumerConfig) {
		cfg.Listener = func(_ context.Context, msgs []*MessageExt) ConsumeResult { got2.add(msgs); return ConsumeSuccess }
	}, c.Topic, "*")
	if err := c2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, &Message{Topic: c.Topic, Body: body(1000)}); err != nil {
		t.Fatal(err)
	}
	got2.waitAll(t, []int{1000}, 20*time.Second)
	got2.mu.Lock()
	defer got2.mu.Unlock()
	if len(got2.list) != 1 {
		t.Fatalf("the group's next member re-read %d messages", len(got2.list)-1)
	}
}

// TestPushConsumer_NewGroupOnYoungTopicReadsFromStart documents the start position of a new
// group: while a queue's first message is still stored, the broker reports offset 0 for a
// group that never committed (Java's rule), so the group reads the queue from its start
// whatever ConsumeFrom says; ConsumeFrom applies once old messages have been deleted.
func TestPushConsumer_NewGroupOnYoungTopicReadsFromStart(t *testing.T) {
	c := newCluster(t)
	requireBroker(t, c, clusteringCodes...)
	p := newTestProducer(t, c)
	ctx := testCtx(t, 60*time.Second)
	sendN(t, p, c.Topic, 20)
	got := newReceived()
	pc := newTestPush(t, c, "fromLast", func(cfg *PushConsumerConfig) {
		cfg.ConsumeFrom = ConsumeFromLast
		cfg.Listener = func(_ context.Context, msgs []*MessageExt) ConsumeResult { got.add(msgs); return ConsumeSuccess }
	}, c.Topic, "*")
	if err := pc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	got.waitAll(t, seq(20), 20*time.Second)
}

// TestPushConsumer_RetryThenDLQ: a message that keeps failing is redelivered with a growing
// reconsume count and ends in %DLQ%<group> after MaxReconsumeTimes.
func TestPushConsumer_RetryThenDLQ(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a 10 s broker delay level")
	}
	c := newCluster(t)
	requireBroker(t, c, append(clusteringCodes, transport.ConsumerSendMsgBack)...)
	p := newTestProducer(t, c)
	ctx := testCtx(t, 90*time.Second)
	var mu sync.Mutex
	var attempts []int
	pc := newTestPush(t, c, "retry", func(cfg *PushConsumerConfig) {
		cfg.MaxReconsumeTimes = 1
		cfg.Listener = func(_ context.Context, msgs []*MessageExt) ConsumeResult {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				attempts = append(attempts, m.ReconsumeTimes)
			}
			return ConsumeRetryLater
		}
	}, c.Topic, "*")
	if err := pc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, &Message{Topic: c.Topic, Body: []byte("poison"), Keys: []string{"poison-key"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(attempts) < 2 {
			return fmt.Errorf("%d deliveries", len(attempts))
		}
		return nil
	})
	mu.Lock()
	if attempts[0] != 0 || attempts[1] != 1 {
		t.Errorf("reconsume counts %v, want 0 then 1", attempts)
	}
	mu.Unlock()
	// The DLQ topic is write-only (as in RocketMQ); find the message there by its key.
	a := newTestAdmin(t, c)
	eventually(t, 30*time.Second, func() error {
		ms, err := a.QueryMessageByKey(ctx, "%DLQ%retry", "poison-key", 10, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			return err
		}
		for _, m := range ms {
			if string(m.Body) == "poison" {
				return nil
			}
		}
		return fmt.Errorf("not in the DLQ yet (%d found)", len(ms))
	})
}

// TestPushConsumer_ClusteringOrderly: an orderly member holds the broker's locks of its
// queues and sees every key in order; when a second member joins, queues move without
// two members consuming one queue at once.
func TestPushConsumer_ClusteringOrderly(t *testing.T) {
	c := newCluster(t)
	requireBroker(t, c, append(clusteringCodes, transport.LockBatchMQ, transport.UnlockBatchMQ)...)
	p := newTestProducer(t, c)
	ctx := testCtx(t, 60*time.Second)
	var mu sync.Mutex
	perKey := map[string][]int{}
	active := map[MessageQueue]int{}
	overlap := false
	listener := func(_ context.Context, msgs []*MessageExt) OrderlyResult {
		mq := msgs[0].Queue
		mu.Lock()
		active[mq]++
		if active[mq] > 1 {
			overlap = true
		}
		for _, m := range msgs {
			perKey[m.ShardingKey] = append(perKey[m.ShardingKey], bodyIndex(m.Body))
		}
		mu.Unlock()
		mu.Lock()
		active[mq]--
		mu.Unlock()
		return OrderlySuccess
	}
	mk := func(inst string) *PushConsumer {
		return newTestPush(t, c, "orderlyCluster", func(cfg *PushConsumerConfig) {
			cfg.InstanceName = inst
			cfg.OrderlyListener = listener
		}, c.Topic, "*")
	}
	c1 := mk("o1")
	if err := c1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	keys := []string{"a", "b", "c", "d"}
	for i := range 100 {
		if i == 50 {
			c2 := mk("o2")
			if err := c2.Start(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := p.Send(ctx, &Message{Topic: c.Topic, Body: body(i), ShardingKey: keys[i%4]}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, l := range perKey {
			n += len(dedupe(l))
		}
		if n < 100 {
			return fmt.Errorf("%d of 100", n)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if overlap {
		t.Fatal("two listener calls ran on one queue at once")
	}
	for k, l := range perKey {
		if d := dedupe(l); !sort.IntsAreSorted(d) {
			t.Fatalf("key %s out of order: %v", k, d)
		}
	}
}

type txListener struct {
	mu      sync.Mutex
	local   map[string]TransactionState // by body
	checked []string
}

func (l *txListener) ExecuteLocal(_ context.Context, m *Message, _ any) TransactionState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.local[string(m.Body)]
}

func (l *txListener) Check(_ context.Context, m *MessageExt) TransactionState {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checked = append(l.checked, string(m.Body))
	return TxCommit
}

// TestProducer_Transaction: committed half messages become visible, rolled-back ones never
// do, and an unknown one is settled by the broker's check.
func TestProducer_Transaction(t *testing.T) {
	// Check half messages older than 1 s every 300 ms (RocketMQ: 6 s and 60 s).
	c := testcluster.New(t, 3, testcluster.Quiet(), testcluster.WithConfig(func(_ int, cfg *node.Config) {
		cfg.TransactionTimeout = time.Second
		cfg.TransactionCheckInterval = 300 * time.Millisecond
	}))
	requireBroker(t, c, transport.EndTransaction, transport.HeartBeat)
	l := &txListener{local: map[string]TransactionState{"commit": TxCommit, "rollback": TxRollback, "unknown": TxUnknown}}
	p := newTestProducer(t, c, func(cfg *ProducerConfig) { cfg.Group = "txGroup"; cfg.TransactionListener = l })
	ctx := testCtx(t, 90*time.Second)
	for _, b := range []string{"commit", "rollback", "unknown"} {
		res, err := p.SendInTransaction(ctx, &Message{Topic: c.Topic, Body: []byte(b)}, nil)
		if err != nil {
			t.Fatalf("SendInTransaction(%s): %v", b, err)
		}
		if res.State != l.local[b] {
			t.Fatalf("state %v", res.State)
		}
	}
	got := map[string]int{}
	var mu sync.Mutex
	pc := newTestPush(t, c, "txReader", func(cfg *PushConsumerConfig) {
		cfg.Model = Broadcasting
		cfg.Listener = func(_ context.Context, msgs []*MessageExt) ConsumeResult {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				got[string(m.Body)]++
			}
			return ConsumeSuccess
		}
	}, c.Topic, "*")
	if err := pc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 80*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if got["commit"] == 0 || got["unknown"] == 0 {
			return fmt.Errorf("visible: %v", got)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if got["rollback"] != 0 {
		t.Fatal("a rolled-back message became visible")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Contains(l.checked, "unknown") || slices.Contains(l.checked, "commit") || slices.Contains(l.checked, "rollback") {
		t.Fatalf("checked %v, want the unknown one only", l.checked)
	}
}
