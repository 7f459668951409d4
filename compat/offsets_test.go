package compat

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestOffsetsSurviveRestart consumes a batch, shuts the consumer down (which commits its
// offsets with UPDATE_CONSUMER_OFFSET), and starts a new member of the group: it resumes
// after what was consumed instead of starting again from the first offset.
func TestOffsetsSurviveRestart(t *testing.T) {
	topic, group := unique("TOff"), unique("CG")
	if err := shared.createTopic(topic, 2); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, shared)
	first := newCollector()
	c1 := newPushConsumer(t, shared, group, topic, consumer.MessageSelector{}, first.handler)
	old := sendBodies(t, p, topic, "old", 20)
	first.waitAll(t, 30*time.Second, old)
	if err := c1.Shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	leader, err := shared.waitLeader(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The commit is oneway; wait until the group's offsets cover both queues' ends.
	eventually(t, 20*time.Second, func() error {
		for q := int32(0); q < 2; q++ {
			end := leader.Store().MaxOffset(topic, q)
			if off, ok := leader.FSM().Offset(group, topic, q); !ok || off < end {
				return fmt.Errorf("queue %d: committed %d (%v), end %d", q, off, ok, end)
			}
		}
		return nil
	})
	second := newCollector()
	newPushConsumer(t, shared, group, topic, consumer.MessageSelector{}, second.handler)
	fresh := sendBodies(t, p, topic, "new", 6)
	second.waitAll(t, 30*time.Second, fresh)
	for _, b := range old {
		if n := len(second.get(b)); n > 0 {
			t.Fatalf("%s consumed again after restart (%d times)", b, n)
		}
	}
}

// TestCompressedBody sends a body above the client's 4 KiB compression threshold (zlib, sysFlag
// bit 0): the consumer gets it back inflated.
func TestCompressedBody(t *testing.T) {
	topic := unique("TZip")
	if err := shared.createTopic(topic, 1); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, shared)
	got := make(chan []byte, 4)
	newPushConsumer(t, shared, unique("CG"), topic, consumer.MessageSelector{},
		func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			for _, m := range msgs {
				got <- m.Body
			}
			return consumer.ConsumeSuccess, nil
		})
	body := []byte(strings.Repeat("raftmq compat ", 2000)) // 28 KB
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, body)); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, body) {
			t.Fatalf("body of %d bytes came back as %d bytes", len(body), len(b))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("compressed message not consumed")
	}
}

// TestOrderlyBroadcasting runs an orderly broadcasting consumer: v2.1.2 still takes a queue
// only after LOCK_BATCH_MQ grants it, and then consumes in order. (Two such members of one
// group cannot both work, with raftmq or Java: the lock is per group and queue, and the
// client takes no queue it cannot lock.)
func TestOrderlyBroadcasting(t *testing.T) {
	topic, group := unique("TOrdB"), unique("CG")
	if err := shared.createTopic(topic, 1); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, shared)
	cols := []*collector{newCollector()}
	orders := make([][]string, 1)
	for i := range 1 {
		newPushConsumer(t, shared, group, topic, consumer.MessageSelector{},
			func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
				cols[i].mu.Lock()
				for _, m := range msgs {
					orders[i] = append(orders[i], string(m.Body))
				}
				cols[i].mu.Unlock()
				return cols[i].handler(ctx, msgs...)
			}, consumer.WithConsumerModel(consumer.BroadCasting), consumer.WithConsumerOrder(true))
	}
	want := sendBodies(t, p, topic, "ob", 15)
	for i := range 1 {
		cols[i].waitAll(t, 30*time.Second, want)
		cols[i].mu.Lock()
		got := append([]string(nil), orders[i]...)
		cols[i].mu.Unlock()
		for j := range want {
			if got[j] != want[j] {
				t.Fatalf("member %d consumed %v, want %v", i, got, want)
			}
		}
	}
}
