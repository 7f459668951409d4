package node_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/transport"
)

// BenchmarkConsumer_Calls measures the consumer-side calls a client makes most, through the
// transport against a 3-node group's leader (one connection, calls in parallel):
//
//	go test -run '^$' -bench Consumer_Calls -benchtime 20000x ./node
func BenchmarkConsumer_Calls(b *testing.B) {
	c := testcluster.New(b, 3, testcluster.Quiet())
	l := c.Leader(b)
	cl := c.Client()
	hb := heartbeatBody("10.0.0.9@bench", "cg-bench", c.Topic, "A || B")
	call := func(b *testing.B, mk func(i int) *transport.Command) {
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				r, err := cl.Invoke(ctx, l.Addr(), mk(i))
				cancel()
				if err != nil {
					b.Error(err)
					return
				}
				_ = r
			}
		})
	}
	b.Run("heartbeat", func(b *testing.B) {
		call(b, func(int) *transport.Command { return transport.NewRequest(transport.HeartBeat, nil, hb) })
	})
	b.Run("updateOffset", func(b *testing.B) {
		call(b, func(i int) *transport.Command {
			return transport.NewRequest(transport.UpdateConsumerOffset, map[string]string{
				"consumerGroup": "cg-bench", "topic": c.Topic, "queueId": strconv.Itoa(i % 4), "commitOffset": strconv.Itoa(i)}, nil)
		})
	})
	b.Run("queryOffset", func(b *testing.B) {
		call(b, func(i int) *transport.Command {
			return transport.NewRequest(transport.QueryConsumerOffset, map[string]string{
				"consumerGroup": "cg-bench", "topic": c.Topic, "queueId": strconv.Itoa(i % 4)}, nil)
		})
	})
	b.Run("consumerList", func(b *testing.B) {
		call(b, func(int) *transport.Command {
			return transport.NewRequest(transport.GetConsumerListByGroup, map[string]string{"consumerGroup": "cg-bench"}, nil)
		})
	})
	b.Run("lockBatch", func(b *testing.B) {
		body := []byte(`{"consumerGroup":"cg-bench","clientId":"10.0.0.9@bench","mqSet":[{"topic":"TestTopic","brokerName":"broker-a","queueId":0},{"topic":"TestTopic","brokerName":"broker-a","queueId":1}]}`)
		call(b, func(int) *transport.Command { return transport.NewRequest(transport.LockBatchMQ, nil, body) })
	})
}
