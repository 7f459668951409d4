package compat

import (
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// TestNewGroupFromLastOffsetReadsYoungTopic starts a group with the client's default
// CONSUME_FROM_LAST_OFFSET after messages were sent: as with Java brokers, a queue whose first
// message is still held answers QUERY_CONSUMER_OFFSET with 0, so the group reads from the start.
func TestNewGroupFromLastOffsetReadsYoungTopic(t *testing.T) {
	topic := unique("TLast")
	if err := shared.createTopic(topic, 2); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, shared)
	want := sendBodies(t, p, topic, "early", 10)
	col := newCollector()
	newPushConsumer(t, shared, unique("CG"), topic, consumer.MessageSelector{}, col.handler,
		consumer.WithConsumeFromWhere(consumer.ConsumeFromLastOffset))
	col.waitAll(t, 30*time.Second, want)
}

// TestNamespace uses the clients' namespace option: topic and group names travel as
// "ns%name". (v2.1.2 does not strip the namespace from consumed messages' Topic, so
// applications see "ns%topic" there, as they would with a Java broker.)
func TestNamespace(t *testing.T) {
	const space = "nsCompat"
	topic := unique("TNs")
	if err := shared.createTopic(space+"%"+topic, 2); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, shared, producer.WithNamespace(space))
	col := newCollector()
	newPushConsumer(t, shared, unique("CG"), topic, consumer.MessageSelector{}, col.handler,
		consumer.WithNamespace(space))
	want := sendBodies(t, p, topic, "ns", 6)
	col.waitAll(t, 30*time.Second, want)
	for _, b := range want {
		if m := col.get(b)[0]; m.Topic != space+"%"+topic {
			t.Errorf("%s: topic %q, want %q", b, m.Topic, space+"%"+topic)
		}
	}
}
