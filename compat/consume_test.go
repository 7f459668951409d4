package compat

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

func sendBodies(t testing.TB, p interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}, topic, prefix string, n int) []string {
	t.Helper()
	var out []string
	for i := range n {
		body := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(body))); err != nil {
			t.Fatalf("send %s: %v", body, err)
		}
		out = append(out, body)
	}
	return out
}

// TestClusteringSharesQueues runs two members of one group (distinct instance names): both
// get queues after the rebalance, and together they consume every message.
func TestClusteringSharesQueues(t *testing.T) {
	topic, group := unique("TClu"), unique("CG")
	if err := shared.createTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, shared)
	all := newCollector()
	var per [2]atomic.Int64
	for i := range 2 {
		newPushConsumer(t, shared, group, topic, consumer.MessageSelector{},
			func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
				per[i].Add(int64(len(msgs)))
				return all.handler(ctx, msgs...)
			})
	}
	var want []string
	// Keep sending until both members have consumed: the second member's queues come with
	// the rebalance the broker's NOTIFY_CONSUMER_IDS_CHANGED triggers (or the 20 s timer).
	round := 0
	eventually(t, 60*time.Second, func() error {
		want = append(want, sendBodies(t, p, topic, fmt.Sprintf("r%d", round), 8)...)
		round++
		if per[0].Load() == 0 || per[1].Load() == 0 {
			time.Sleep(200 * time.Millisecond)
			return fmt.Errorf("consumed per member: %d, %d", per[0].Load(), per[1].Load())
		}
		return nil
	})
	all.waitAll(t, 30*time.Second, want)
	// The group's heartbeat created %RETRY%<group> and registered it with the name server.
	if err := shared.waitRoute("%RETRY%"+group, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestBroadcasting runs two broadcasting members of one group: each consumes every message.
func TestBroadcasting(t *testing.T) {
	topic, group := unique("TBro"), unique("CG")
	if err := shared.createTopic(topic, 2); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, shared)
	cols := []*collector{newCollector(), newCollector()}
	for i := range 2 {
		newPushConsumer(t, shared, group, topic, consumer.MessageSelector{}, cols[i].handler,
			consumer.WithConsumerModel(consumer.BroadCasting))
	}
	want := sendBodies(t, p, topic, "b", 20)
	for i := range 2 {
		cols[i].waitAll(t, 30*time.Second, want)
	}
}

// TestTagFilter subscribes "TagA || TagB" on a one-queue topic: a TagC message sent before
// the last TagA is never delivered.
func TestTagFilter(t *testing.T) {
	topic := unique("TTag")
	if err := shared.createTopic(topic, 1); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, shared)
	col := newCollector()
	newPushConsumer(t, shared, unique("CG"), topic,
		consumer.MessageSelector{Type: consumer.TAG, Expression: "TagA || TagB"}, col.handler)
	var want []string
	for i, tag := range []string{"TagA", "TagC", "TagB", "TagC", "TagC", "TagA"} {
		body := fmt.Sprintf("%s-%d", tag, i)
		m := primitive.NewMessage(topic, []byte(body))
		m.WithTag(tag)
		if _, err := p.SendSync(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if tag != "TagC" {
			want = append(want, body)
		}
	}
	col.waitAll(t, 30*time.Second, want)
	if got := col.distinct(); got != len(want) {
		t.Fatalf("consumed %d distinct messages, want %d (TagC delivered?)", got, len(want))
	}
}

// TestOrderly sends three keys' sequences through a hash queue selector and checks an
// orderly consumer sees every key's messages in send order.
func TestOrderly(t *testing.T) {
	topic := unique("TOrd")
	if err := shared.createTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, shared, producer.WithQueueSelector(producer.NewHashQueueSelector()))
	var mu sync.Mutex
	seen := map[string][]int{}
	total := 0
	newPushConsumer(t, shared, unique("CG"), topic, consumer.MessageSelector{},
		func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				var key string
				var i int
				fmt.Sscanf(string(m.Body), "%s %d", &key, &i)
				seen[key] = append(seen[key], i)
				total++
			}
			return consumer.ConsumeSuccess, nil
		}, consumer.WithConsumerOrder(true), consumer.WithConsumeMessageBatchMaxSize(4))
	const per = 30
	keys := []string{"alpha", "beta", "gamma"}
	for i := range per {
		for _, k := range keys {
			m := primitive.NewMessage(topic, []byte(fmt.Sprintf("%s %d", k, i)))
			m.WithShardingKey(k)
			if _, err := p.SendSync(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, 40*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if total < per*len(keys) {
			return fmt.Errorf("consumed %d of %d", total, per*len(keys))
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for _, k := range keys {
		got := seen[k]
		for i := range got {
			if i >= per || got[i] != i {
				t.Fatalf("key %s consumed out of order or twice: %v", k, got)
			}
		}
	}
}

// TestRetryThenDLQ fails every delivery of two messages. The first one succeeds on its second
// delivery (a retry with delay level 1 through %RETRY%group, ReconsumeTimes 1); the other
// keeps failing and, after maxReconsumeTimes 2, lands in %DLQ%group.
func TestRetryThenDLQ(t *testing.T) {
	topic, group := unique("TRetry"), unique("CG")
	if err := shared.createTopic(topic, 1); err != nil {
		t.Fatal(err)
	}
	// The client reads the %RETRY% route only at its route refresh or rebalance (every 20-30 s),
	// and the broker creates that topic at the group's first heartbeat, after the client's
	// first route lookup. A group that existed before has it: create it up front like that.
	if err := shared.createTopic("%RETRY%"+group, 1); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, shared)
	var mu sync.Mutex
	deliveries := map[string][]int32{}
	newPushConsumer(t, shared, group, topic, consumer.MessageSelector{},
		func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			mu.Lock()
			defer mu.Unlock()
			if cc, ok := primitive.GetConcurrentlyCtx(ctx); ok {
				cc.DelayLevelWhenNextConsume = 1 // 1 s instead of 10 s
			}
			fail := false
			for _, m := range msgs {
				b := string(m.Body)
				deliveries[b] = append(deliveries[b], m.ReconsumeTimes)
				t.Logf("%v %s delivered: reconsumeTimes %d topic %s retryTopic %q", time.Now().Format("15:04:05.000"), b, m.ReconsumeTimes, m.Topic, m.GetProperty(primitive.PropertyRetryTopic))
				if m.Topic != topic {
					t.Errorf("%s delivered with topic %q", b, m.Topic)
				}
				if b == "poison" || (b == "flaky" && m.ReconsumeTimes == 0) {
					fail = true
				}
			}
			if fail {
				return consumer.ConsumeRetryLater, nil
			}
			return consumer.ConsumeSuccess, nil
		}, consumer.WithMaxReconsumeTimes(2), consumer.WithConsumeMessageBatchMaxSize(1))
	sendBodies(t, p, topic, "ok", 1)
	for _, b := range []string{"flaky", "poison"} {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(b))); err != nil {
			t.Fatal(err)
		}
	}
	get := func(b string) []int32 {
		mu.Lock()
		defer mu.Unlock()
		return append([]int32(nil), deliveries[b]...)
	}
	eventually(t, 30*time.Second, func() error {
		if d := get("flaky"); len(d) < 2 {
			return fmt.Errorf("flaky delivered %v", d)
		}
		return nil
	})
	if d := get("flaky"); d[0] != 0 || d[1] != 1 {
		t.Fatalf("flaky reconsume times %v, want [0 1]", d)
	}
	dlq := "%DLQ%" + group
	eventually(t, 40*time.Second, func() error {
		leader, err := shared.waitLeader(5 * time.Second)
		if err != nil {
			return err
		}
		if n := leader.Store().MaxOffset(dlq, 0); n < 1 {
			return fmt.Errorf("%s holds %d messages; poison delivered %v", dlq, n, get("poison"))
		}
		return nil
	})
	// 1 delivery + 2 retries, then the DLQ.
	if d := get("poison"); len(d) != 3 || d[2] != 2 {
		t.Fatalf("poison delivered with reconsume times %v, want [0 1 2]", d)
	}
}

// TestDelayLevel sends with delay level 2 (5 s): the message is consumed no earlier than
// the delay and carries its tag and body.
func TestDelayLevel(t *testing.T) {
	topic := unique("TDelay")
	if err := shared.createTopic(topic, 2); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, shared)
	type got struct {
		at time.Time
		m  *primitive.MessageExt
	}
	ch := make(chan got, 10)
	newPushConsumer(t, shared, unique("CG"), topic, consumer.MessageSelector{},
		func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			for _, m := range msgs {
				ch <- got{time.Now(), m}
			}
			return consumer.ConsumeSuccess, nil
		})
	m := primitive.NewMessage(topic, []byte("later"))
	m.WithTag("D")
	m.WithDelayTimeLevel(2)
	sent := time.Now()
	if _, err := p.SendSync(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-ch:
		if string(g.m.Body) != "later" || g.m.GetTags() != "D" || g.m.Topic != topic {
			t.Fatalf("delayed message: body %q tag %q topic %q", g.m.Body, g.m.GetTags(), g.m.Topic)
		}
		// A lower bound only: the message must not come before its delay (minus clock
		// rounding of the schedule); how late it comes is not asserted.
		if d := g.at.Sub(sent); d < 4*time.Second {
			t.Fatalf("delay level 2 message consumed after %v, want >= 5 s", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("delayed message not consumed within 30 s")
	}
}
