package client

import (
	"sync"
	"testing"
)

// BenchmarkProducerSend: sync sends of 1 KiB messages, one in flight, against the
// in-process 3-node cluster (each send waits for a Raft quorum).
func BenchmarkProducerSend(b *testing.B) {
	c := newCluster(b)
	p := newTestProducer(b, c)
	ctx := testCtx(b, 0)
	msg := &Message{Topic: c.Topic, Body: make([]byte, 1024)}
	if _, err := p.Send(ctx, msg); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1024)
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProducerSendAsync: pipelined async sends of 1 KiB messages (up to
// MaxAsyncInFlight in flight) against the in-process 3-node cluster.
func BenchmarkProducerSendAsync(b *testing.B) {
	c := newCluster(b)
	p := newTestProducer(b, c, func(cfg *ProducerConfig) { cfg.MaxAsyncInFlight = 1024 })
	ctx := testCtx(b, 0)
	msg := &Message{Topic: c.Topic, Body: make([]byte, 1024)}
	if _, err := p.Send(ctx, msg); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	b.SetBytes(1024)
	b.ResetTimer()
	for b.Loop() {
		wg.Add(1)
		if err := p.SendAsync(ctx, msg, func(_ *SendResult, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			wg.Done()
		}); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
}
