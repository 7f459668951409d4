package node_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/node"
	"github.com/raftmq/raftmq/transport"
)

// BenchmarkCluster_Send3Nodes measures acknowledged sends per second of 1 KiB messages on a
// 3-node DLedger group in this process, with 64 or 256 concurrent senders sharing 4 connections
// (group commit turns them into few Raft entries).
//
//	go test -run '^$' -bench Cluster_Send -benchtime 60000x ./node
func BenchmarkCluster_Send3Nodes(b *testing.B) {
	for _, v := range []struct {
		name    string
		senders int
		opts    func(int, *node.Options)
	}{
		{"senders64", 64, func(int, *node.Options) {}},
		{"senders256", 256, func(int, *node.Options) {}},
		{"senders64/batchApplyCh", 64, func(_ int, o *node.Options) { o.BatchApplyCh = true }},
		{"senders64/inflight1", 64, func(_ int, o *node.Options) { o.MaxInFlight = 1 }},
		{"senders64/inflight6", 64, func(_ int, o *node.Options) { o.MaxInFlight = 6 }},
	} {
		b.Run(v.name, func(b *testing.B) { benchSend(b, 3, v.senders, testcluster.WithOptions(v.opts)) })
	}
}

// BenchmarkCluster_Send1Node is the same load on a group of one (no replication): the cost of
// the broker path itself.
func BenchmarkCluster_Send1Node(b *testing.B) { benchSend(b, 1, 64) }

func benchSend(b *testing.B, nodes, senders int, opts ...testcluster.Option) {
	c := testcluster.New(b, nodes, append(opts, testcluster.Quiet())...)
	leader := c.Leader(b)
	// Several connections, as several producer processes would use.
	clients := make([]*transport.Client, benchConns)
	for i := range clients {
		cl, err := transport.NewClient(transport.ClientConfig{})
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		clients[i] = cl
	}
	var next atomic.Int64
	body := make([]byte, 1024)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	var q atomic.Int64
	var failed atomic.Int64
	b.SetBytes(int64(len(body)))
	b.SetParallelism(max(1, senders/runtime.GOMAXPROCS(0))) // x GOMAXPROCS senders
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		cl := clients[next.Add(1)%int64(len(clients))]
		for pb.Next() {
			resp, err := send(context.Background(), cl, leader.Addr(), c.Topic, int(q.Add(1)%4), body)
			if err != nil || resp.Code != int16(transport.Success) {
				if failed.Add(1) <= 3 {
					if err != nil {
						b.Logf("send failed: %v", err)
					} else {
						b.Logf("send failed: %s %s", transport.ResponseCode(resp.Code), resp.Remark)
					}
				}
			}
		}
	})
	el := time.Since(start)
	b.StopTimer()
	// A spurious election under load (other processes share the 2 cores) fails sends fast
	// with SERVICE_NOT_AVAILABLE until a leader is back; they are counted, not retried.
	b.ReportMetric(float64(failed.Load()), "failed")
	b.ReportMetric(float64(b.N-int(failed.Load()))/el.Seconds(), "msgs/s")
	st, _ := leader.GroupStatus()
	b.ReportMetric(float64(b.N)/float64(max(st.CommitIndex, 1)), "msgs/entry")
}

const benchConns = 4 // client connections the senders share
