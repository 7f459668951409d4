package compat

import (
	"context"
	"fmt"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestPullConsumerPollAck uses the client's pull consumer (Subscribe, Poll, ACK) with a tag
// expression: pulls carry the subscription themselves (sysFlag 6) instead of relying on the
// heartbeat's.
func TestPullConsumerPollAck(t *testing.T) {
	topic := unique("TPull")
	if err := shared.createTopic(topic, 2); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, shared)
	pc, err := rocketmq.NewPullConsumer(
		consumer.WithNameServer(ns(shared)),
		consumer.WithGroupName(unique("CG")),
		consumer.WithInstance(unique("pull")),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "keep"}); err != nil {
		t.Fatal(err)
	}
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Shutdown() })
	var want []string
	for i := range 10 {
		tag := "keep"
		if i%2 == 1 {
			tag = "drop"
		}
		body := fmt.Sprintf("%s-%d", tag, i)
		m := primitive.NewMessage(topic, []byte(body))
		m.WithTag(tag)
		if _, err := p.SendSync(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if tag == "keep" {
			want = append(want, body)
		}
	}
	col := newCollector()
	deadline := time.Now().Add(30 * time.Second)
	for col.distinct() < len(want) && time.Now().Before(deadline) {
		cr, err := pc.Poll(context.Background(), time.Second)
		if err != nil {
			continue // ErrNoNewMsg
		}
		for _, m := range cr.GetMsgList() {
			col.add(string(m.Body), m)
		}
		pc.ACK(context.Background(), cr, consumer.ConsumeSuccess)
	}
	col.waitAll(t, time.Second, want)
	if n := col.distinct(); n != len(want) {
		t.Fatalf("polled %d distinct messages, want %d (a 'drop' tag came through?)", n, len(want))
	}
}
