package node_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/raftmq/raftmq/fsm"
	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/transport"
)

// BenchmarkAdmin_RuntimeInfo: GET_BROKER_RUNTIME_INFO through the transport on a node with
// 50 topics x 8 queues (the put total sums every queue's max offset).
func BenchmarkAdmin_RuntimeInfo(b *testing.B) {
	c := testcluster.New(b, 1, testcluster.Quiet())
	l := c.Leader(b)
	for i := range 50 {
		topic := "BenchT" + strconv.Itoa(i)
		if err := l.CreateTopic(context.Background(), fsm.TopicConfig{TopicName: topic, ReadQueueNums: 8, WriteQueueNums: 8}); err != nil {
			b.Fatal(err)
		}
		for q := range 8 {
			mustSucceed(b, invoke(b, c.Client(), l.Addr(), sendReq(topic, q, []byte("x"), "")), nil)
		}
	}
	req := transport.NewRequest(transport.GetBrokerRuntimeInfo, nil, nil)
	b.ResetTimer()
	for b.Loop() {
		mustSucceed(b, invoke(b, c.Client(), l.Addr(), req), nil)
	}
}

// BenchmarkAdmin_QueryMessage: QUERY_MESSAGE by key through the transport among 5,000
// messages, 10 of which carry the key.
func BenchmarkAdmin_QueryMessage(b *testing.B) {
	c := testcluster.New(b, 1, testcluster.Quiet())
	l := c.Leader(b)
	ctx := context.Background()
	for i := range 5000 {
		key := fmt.Sprintf("k%d", i%500)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := c.Client().Invoke(cctx, l.Addr(), sendReq(c.Topic, i%4, bodyOf(i), "KEYS\x01"+key+"\x02"))
		cancel()
		mustSucceed(b, r, err)
	}
	now := time.Now().UnixMilli()
	req := transport.NewRequest(transport.QueryMessage, map[string]string{"topic": c.Topic, "key": "k7", "maxNum": "32",
		"beginTimestamp": strconv.FormatInt(now-600_000, 10), "endTimestamp": strconv.FormatInt(now+600_000, 10)}, nil)
	b.ResetTimer()
	for b.Loop() {
		r := invoke(b, c.Client(), l.Addr(), req)
		mustSucceed(b, r, nil)
	}
}
