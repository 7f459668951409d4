package client

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/transport"
)

// sendN sends n messages (bodies msg-000000...) with the given tags cycling, and returns
// the ids.
func sendN(t testing.TB, p *Producer, topic string, n int, tags ...string) []string {
	t.Helper()
	ctx := testCtx(t, 60*time.Second)
	var ids []string
	for i := range n {
		m := &Message{Topic: topic, Body: body(i)}
		if len(tags) > 0 {
			m.Tags = tags[i%len(tags)]
		}
		res, err := p.Send(ctx, m)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		ids = append(ids, res.MsgID)
	}
	return ids
}

// received collects consumed messages by body index.
type received struct {
	mu   sync.Mutex
	seen map[int]int
	list []*MessageExt
}

func newReceived() *received { return &received{seen: map[int]int{}} }

func (r *received) add(msgs []*MessageExt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		r.seen[bodyIndex(m.Body)]++
		r.list = append(r.list, m)
	}
}

func (r *received) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *received) waitAll(t testing.TB, want []int, d time.Duration) {
	t.Helper()
	eventually(t, d, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		var missing []int
		for _, i := range want {
			if r.seen[i] == 0 {
				missing = append(missing, i)
			}
		}
		if len(missing) > 0 {
			if len(missing) > 10 {
				missing = missing[:10]
			}
			return fmt.Errorf("%d of %d missing, e.g. %v", len(missing), len(want), missing)
		}
		return nil
	})
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func newTestPull(t testing.TB, c *testcluster.Cluster, group string) *PullConsumer {
	t.Helper()
	pc, err := NewPullConsumer(PullConsumerConfig{ClientConfig: ClientConfig{NameServers: []string{c.NS.Addr()}}, Group: group, PollTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

func TestPullConsumer_AssignSeekPoll(t *testing.T) {
	c := newCluster(t)
	p := newTestProducer(t, c)
	sendN(t, p, c.Topic, 40, "A", "B")
	pc := newTestPull(t, c, "pullGroup")
	ctx := testCtx(t, 30*time.Second)
	qs, err := pc.Queues(ctx, c.Topic)
	if err != nil || len(qs) != 4 {
		t.Fatalf("Queues: %v %v", qs, err)
	}
	if err := pc.Assign("A", qs...); err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if err := pc.Seek(q, 0); err != nil {
			t.Fatal(err)
		}
	}
	got := newReceived()
	eventually(t, 20*time.Second, func() error {
		msgs, err := pc.Poll(ctx)
		if err != nil {
			return err
		}
		got.add(msgs)
		if n := got.distinct(); n < 20 {
			return fmt.Errorf("%d of 20 tag-A messages", n)
		}
		return nil
	})
	for _, m := range got.list {
		if m.Tags != "A" || bodyIndex(m.Body)%2 != 0 {
			t.Fatalf("filter let through %q tag %q", m.Body, m.Tags)
		}
		if len(m.MsgID) != 32 || m.Queue.BrokerName == "" {
			t.Fatalf("message metadata %+v", m)
		}
	}
	// Positions are at the end; a re-seek replays.
	var total int64
	for _, q := range qs {
		off, ok := pc.Position(q)
		if !ok {
			t.Fatalf("no position for %v", q)
		}
		total += off
	}
	if total != 40 {
		t.Fatalf("positions sum to %d, want 40", total)
	}
	// Re-assigning keeps positions; a seek back replays one queue.
	if err := pc.Assign("*", qs...); err != nil {
		t.Fatal(err)
	}
	if err := pc.Seek(qs[0], 0); err != nil {
		t.Fatal(err)
	}
	msgs, err := pc.Poll(ctx)
	if err != nil || len(msgs) == 0 || msgs[0].Queue != qs[0] || msgs[0].QueueOffset != 0 {
		t.Fatalf("poll after seek: %d msgs, %v", len(msgs), err)
	}
	// At the end of every queue a poll waits PollTimeout and returns nothing.
	for _, q := range qs {
		off, _ := pc.Position(q)
		if q == qs[0] {
			off = int64(len(msgs))
			for {
				m, err := pc.Poll(ctx)
				if err != nil || len(m) == 0 {
					break
				}
			}
			continue
		}
		_ = off
	}
	msgs, err = pc.Poll(ctx)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("poll at the end: %d msgs, %v", len(msgs), err)
	}
	// A message sent during a long poll ends it.
	done := make(chan []*MessageExt, 1)
	go func() {
		m, _ := pc.Poll(ctx)
		done <- m
	}()
	sendN(t, p, c.Topic, 1, "A")
	select {
	case m := <-done:
		if len(m) != 1 {
			// The poll may have ended (PollTimeout) just before the send: poll again.
			m, _ = pc.Poll(ctx)
			if len(m) != 1 {
				t.Fatalf("long poll got %d messages", len(m))
			}
		}
	case <-ctx.Done():
		t.Fatal("long poll never returned")
	}
}

func TestPullConsumer_Commit(t *testing.T) {
	c := newCluster(t)
	requireBroker(t, c, transport.UpdateConsumerOffset, transport.QueryConsumerOffset)
	p := newTestProducer(t, c)
	sendN(t, p, c.Topic, 12)
	pc := newTestPull(t, c, "pullCommit")
	ctx := testCtx(t, 30*time.Second)
	qs, err := pc.Queues(ctx, c.Topic)
	if err != nil {
		t.Fatal(err)
	}
	_ = pc.Assign("*", qs...)
	for _, q := range qs {
		_ = pc.Seek(q, 0)
	}
	got := newReceived()
	eventually(t, 20*time.Second, func() error {
		msgs, err := pc.Poll(ctx)
		if err != nil {
			return err
		}
		got.add(msgs)
		if got.distinct() < 12 {
			return fmt.Errorf("%d of 12", got.distinct())
		}
		return nil
	})
	if err := pc.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	var sum int64
	for _, q := range qs {
		off, found, err := pc.Committed(ctx, q)
		if err != nil || !found {
			t.Fatalf("Committed(%v): %d %v %v", q, off, found, err)
		}
		sum += off
	}
	if sum != 12 {
		t.Fatalf("committed offsets sum to %d, want 12", sum)
	}
	// A new pull consumer of the group starts at the committed offsets.
	pc2 := newTestPull(t, c, "pullCommit")
	_ = pc2.Assign("*", qs...)
	sendN(t, p, c.Topic, 1)
	eventually(t, 20*time.Second, func() error {
		msgs, err := pc2.Poll(ctx)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			return fmt.Errorf("nothing yet")
		}
		if len(msgs) != 1 {
			t.Fatalf("new consumer re-read %d messages", len(msgs))
		}
		return nil
	})
}

func newTestPush(t testing.TB, c *testcluster.Cluster, group string, edit func(*PushConsumerConfig), subs ...string) *PushConsumer {
	t.Helper()
	cfg := PushConsumerConfig{
		ClientConfig: ClientConfig{NameServers: []string{c.NS.Addr()}},
		Group:        group,
		ConsumeFrom:  ConsumeFromFirst,
		// Short intervals keep the tests quick.
		LongPollTimeout:      2 * time.Second,
		OffsetCommitInterval: 200 * time.Millisecond,
		RebalanceInterval:    time.Second,
		OffsetStoreDir:       t.TempDir(),
	}
	if edit != nil {
		edit(&cfg)
	}
	pc, err := NewPushConsumer(cfg)
	if err != nil {
		t.Fatalf("NewPushConsumer: %v", err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	for i := 0; i+1 < len(subs); i += 2 {
		if err := pc.Subscribe(subs[i], subs[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	return pc
}

func TestPushConsumer_BroadcastingConcurrent(t *testing.T) {
	c := newCluster(t)
	p := newTestProducer(t, c)
	sendN(t, p, c.Topic, 60, "A", "B", "C")
	got1, got2 := newReceived(), newReceived()
	mk := func(r *received) *PushConsumer {
		return newTestPush(t, c, "bcast", func(cfg *PushConsumerConfig) {
			cfg.Model = Broadcasting
			cfg.Listener = func(_ context.Context, msgs []*MessageExt) ConsumeResult { r.add(msgs); return ConsumeSuccess }
		}, c.Topic, "A || B")
	}
	c1, c2 := mk(got1), mk(got2)
	ctx := testCtx(t, 30*time.Second)
	if err := c1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var want []int
	for i := range 60 {
		if i%3 != 2 {
			want = append(want, i)
		}
	}
	got1.waitAll(t, want, 20*time.Second)
	got2.waitAll(t, want, 20*time.Second)
	for _, m := range got1.list {
		if m.Tags == "C" {
			t.Fatalf("tag C delivered")
		}
	}
	if n := len(c1.Assigned()); n != 4 {
		t.Fatalf("broadcasting consumer holds %d queues, want 4", n)
	}
	// Offsets reach the local file: a new consumer with the same client id and directory
	// starts where the first stopped.
	dir := c1.cfg.OffsetStoreDir
	inst := c1.c.cfg.InstanceName
	_ = c1.Close()
	lo, err := openLocalOffsets(dir, c1.ClientID(), "bcast", nil)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, off := range lo.table {
		sum += off
	}
	if sum != 60 {
		t.Fatalf("stored offsets sum to %d, want 60 (%v)", sum, lo.table)
	}
	got3 := newReceived()
	c3 := newTestPush(t, c, "bcast", func(cfg *PushConsumerConfig) {
		cfg.Model = Broadcasting
		cfg.InstanceName = inst
		cfg.OffsetStoreDir = dir
		cfg.Listener = func(_ context.Context, msgs []*MessageExt) ConsumeResult { got3.add(msgs); return ConsumeSuccess }
	}, c.Topic, "*")
	if err := c3.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sendN(t, p, c.Topic, 1, "A") // body msg-000000 again, but a new message
	eventually(t, 10*time.Second, func() error {
		if got3.distinct() != 1 {
			return fmt.Errorf("got %d", got3.distinct())
		}
		return nil
	})
	got3.mu.Lock()
	defer got3.mu.Unlock()
	if len(got3.list) != 1 {
		t.Fatalf("restarted consumer re-read %d messages", len(got3.list))
	}
}

func TestPushConsumer_BroadcastingOrderly(t *testing.T) {
	c := newCluster(t)
	p := newTestProducer(t, c)
	ctx := testCtx(t, 30*time.Second)
	keys := []string{"k0", "k1", "k2", "k3", "k4"}
	for i := range 100 {
		if _, err := p.Send(ctx, &Message{Topic: c.Topic, Body: body(i), ShardingKey: keys[i%len(keys)]}); err != nil {
			t.Fatal(err)
		}
	}
	got := newReceived()
	var mu sync.Mutex
	perKey := map[string][]int{}
	failedOnce := map[int]bool{}
	pc := newTestPush(t, c, "orderly", func(cfg *PushConsumerConfig) {
		cfg.Model = Broadcasting
		cfg.SuspendInterval = 20 * time.Millisecond
		cfg.OrderlyListener = func(_ context.Context, msgs []*MessageExt) OrderlyResult {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				i := bodyIndex(m.Body)
				if i%7 == 0 && !failedOnce[i] {
					failedOnce[i] = true
					return OrderlySuspend
				}
			}
			for _, m := range msgs {
				perKey[m.ShardingKey] = append(perKey[m.ShardingKey], bodyIndex(m.Body))
			}
			got.add(msgs)
			return OrderlySuccess
		}
	}, c.Topic, "*")
	if err := pc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	got.waitAll(t, seq(100), 20*time.Second)
	mu.Lock()
	defer mu.Unlock()
	for k, l := range perKey {
		if !sort.IntsAreSorted(l) {
			t.Fatalf("key %s out of order: %v", k, l)
		}
		if len(l) != 20 {
			t.Fatalf("key %s: %d messages, want 20 exactly once", k, len(l))
		}
	}
}

// TestPushConsumer_FlowControl: while the listener is stuck, a queue's puller stops once it
// holds PullThresholdPerQueue messages, and resumes when they are consumed.
func TestPushConsumer_FlowControl(t *testing.T) {
	c := newCluster(t)
	p := newTestProducer(t, c)
	ctx := testCtx(t, 30*time.Second)
	var mq MessageQueue
	for i := range 100 {
		res, err := p.Send(ctx, &Message{Topic: c.Topic, Body: body(i), ShardingKey: "one-queue"})
		if err != nil {
			t.Fatal(err)
		}
		mq = res.Queue
	}
	release := make(chan struct{})
	got := newReceived()
	pc := newTestPush(t, c, "flow", func(cfg *PushConsumerConfig) {
		cfg.Model = Broadcasting
		cfg.Concurrency = 1
		cfg.PullBatchSize = 4
		cfg.PullThresholdPerQueue = 10
		cfg.Listener = func(ctx context.Context, msgs []*MessageExt) ConsumeResult {
			select {
			case <-release:
			case <-ctx.Done():
				return ConsumeRetryLater
			}
			got.add(msgs)
			return ConsumeSuccess
		}
	}, c.Topic, "*")
	if err := pc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if _, pauses := pc.held(mq); pauses == 0 {
			return fmt.Errorf("puller never paused")
		}
		return nil
	})
	// Paused: no pull runs until the listener frees space, so the count is stable.
	if n, _ := pc.held(mq); n < 10 || n > 10-1+4 {
		t.Fatalf("holding %d messages, want 10..13", n)
	}
	close(release)
	got.waitAll(t, seq(100), 20*time.Second)
}

// TestPullConsumer_SeekToTime: seeking by time skips what was stored before it.
func TestPullConsumer_SeekToTime(t *testing.T) {
	c := newCluster(t)
	requireBroker(t, c, transport.SearchOffsetByTimestamp)
	p := newTestProducer(t, c)
	ctx := testCtx(t, 30*time.Second)
	send := func(from, n int) MessageQueue {
		var q MessageQueue
		for i := from; i < from+n; i++ {
			res, err := p.Send(ctx, &Message{Topic: c.Topic, Body: body(i), ShardingKey: "one"})
			if err != nil {
				t.Fatal(err)
			}
			q = res.Queue
		}
		return q
	}
	q := send(0, 5)
	mid := time.Now()
	// Store times have millisecond resolution: make sure the next messages are later.
	eventually(t, time.Second, func() error {
		if time.Since(mid) < 5*time.Millisecond {
			return fmt.Errorf("wait")
		}
		return nil
	})
	send(5, 5)
	pc := newTestPull(t, c, "seekTime")
	_ = pc.Assign("*", q)
	if err := pc.SeekToTime(ctx, q, mid.Add(2*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	got := newReceived()
	eventually(t, 10*time.Second, func() error {
		msgs, err := pc.Poll(ctx)
		if err != nil {
			return err
		}
		got.add(msgs)
		if got.distinct() < 5 {
			return fmt.Errorf("%d of 5", got.distinct())
		}
		return nil
	})
	for i := range got.seen {
		if i < 5 {
			t.Fatalf("message %d stored before the seek time was returned", i)
		}
	}
}
