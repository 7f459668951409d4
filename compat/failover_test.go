package compat

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestLeaderKilled kills the group's leader while a producer sends synchronously and a push
// consumer consumes. The client keeps working once its route refresh (every 30 s, fixed in
// v2.1.2) shows the new master, and every acknowledged message is consumed.
func TestLeaderKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the client's 30 s route refresh")
	}
	c := newTestCluster(t, 3)
	topic := unique("TFail")
	if err := c.createTopic(topic, 4); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, c)
	col := newCollector()
	newPushConsumer(t, c, unique("CG"), topic, consumer.MessageSelector{}, col.handler)

	var mu sync.Mutex
	var acked []string
	var failed int
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			body := fmt.Sprintf("m-%d", i)
			m := primitive.NewMessage(topic, []byte(body))
			m.WithKeys([]string{body})
			res, err := p.SendSync(ctx, m)
			mu.Lock()
			if err == nil && res.Status == primitive.SendOK {
				acked = append(acked, body)
			} else {
				failed++
			}
			mu.Unlock()
			if err != nil {
				time.Sleep(50 * time.Millisecond) // pace retries against a dead master
			}
		}
	}()
	defer func() { cancel(); wg.Wait() }()

	eventually(t, 20*time.Second, func() error {
		if n := ackedCount(); n < 100 {
			return fmt.Errorf("%d acknowledged before the kill", n)
		}
		return nil
	})
	old, err := c.waitLeader(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	oldAddr := old.Addr()
	if err := c.kill(c.index(old)); err != nil {
		t.Logf("kill leader: %v", err)
	}
	atKill := ackedCount()
	t.Logf("killed leader %s after %d acknowledged sends", oldAddr, atKill)
	newLeader, err := c.waitLeader(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("new leader %s", newLeader.Addr())
	// The producer recovers at its route refresh (<= 30 s after its last one).
	eventually(t, 60*time.Second, func() error {
		if n := ackedCount(); n < atKill+100 {
			return fmt.Errorf("%d acknowledged since the kill", n-atKill)
		}
		return nil
	})
	cancel()
	wg.Wait()
	mu.Lock()
	all := append([]string(nil), acked...)
	t.Logf("%d acknowledged, %d failed sends", len(all), failed)
	mu.Unlock()
	col.waitAll(t, 60*time.Second, all)
}
