package compat

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// txListener commits, rolls back or leaves unknown by body; the back-check commits.
type txListener struct {
	mu      sync.Mutex
	checked map[string]int
}

func (l *txListener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	switch string(m.Body) {
	case "rollback":
		return primitive.RollbackMessageState
	case "unknown":
		return primitive.UnknowState
	}
	return primitive.CommitMessageState
}

func (l *txListener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checked[string(m.Body)]++
	return primitive.CommitMessageState
}

func (l *txListener) checks(body string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checked[body]
}

// TestTransactionalProducer: a committed half message is delivered, a rolled-back one never,
// and one left unknown is delivered after the broker's back-check (CHECK_TRANSACTION_STATE)
// reaches the producer and it answers commit.
func TestTransactionalProducer(t *testing.T) {
	topic := unique("TTx")
	if err := shared.createTopic(topic, 2); err != nil {
		t.Fatal(err)
	}
	l := &txListener{checked: map[string]int{}}
	p, err := rocketmq.NewTransactionProducer(l,
		producer.WithNameServer(ns(shared)),
		producer.WithGroupName(unique("TXPG")),
		producer.WithInstanceName(unique("txprod")),
		producer.WithRetry(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown() })
	col := newCollector()
	newPushConsumer(t, shared, unique("CG"), topic, consumer.MessageSelector{}, col.handler)

	want := map[string]primitive.LocalTransactionState{
		"commit": primitive.CommitMessageState, "rollback": primitive.RollbackMessageState, "unknown": primitive.UnknowState,
	}
	for _, body := range []string{"commit", "rollback", "unknown"} {
		res, err := p.SendMessageInTransaction(context.Background(), primitive.NewMessage(topic, []byte(body)))
		if err != nil {
			t.Fatalf("send %s: %v", body, err)
		}
		if res.Status != primitive.SendOK || res.State != want[body] {
			t.Fatalf("send %s: status %v state %v", body, res.Status, res.State)
		}
	}
	col.waitAll(t, 60*time.Second, []string{"commit", "unknown"})
	if n := l.checks("unknown"); n == 0 {
		t.Fatal("unknown delivered without a back-check")
	}
	// A last committed message; once it is in, the rolled-back one has had every chance.
	if _, err := p.SendMessageInTransaction(context.Background(), primitive.NewMessage(topic, []byte("commit-last"))); err != nil {
		t.Fatal(err)
	}
	col.waitAll(t, 30*time.Second, []string{"commit-last"})
	if n := len(col.get("rollback")); n != 0 {
		t.Fatalf("rolled-back message delivered %d times", n)
	}
	if n := l.checks("commit") + l.checks("rollback"); n != 0 {
		t.Errorf("resolved transactions back-checked %d times", n)
	}
	for _, m := range col.get("unknown") {
		if m.GetProperty(primitive.PropertyTransactionPrepared) == "true" {
			t.Errorf("delivered message still marked prepared: %v", m.GetProperties())
		}
	}
}

func newAdmin(t testing.TB, c *cluster) admin.Admin {
	t.Helper()
	a, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{c.nsAddr()})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// TestAdminCreateTopic creates a topic through the client's admin API (UPDATE_AND_CREATE_TOPIC
// to the master), which must reach the name server quickly; then lists it, uses it and
// deletes it.
func TestAdminCreateTopic(t *testing.T) {
	topic := unique("TAdmin")
	leader, err := shared.waitLeader(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	a := newAdmin(t, shared)
	ctx := context.Background()
	if err := a.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(leader.Addr()),
		admin.WithReadQueueNums(3), admin.WithWriteQueueNums(3)); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if err := shared.waitRoute(topic, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	r, _ := shared.ns.Table().Route(topic)
	if len(r.QueueDatas) != 1 || r.QueueDatas[0].ReadQueueNums != 3 || r.QueueDatas[0].WriteQueueNums != 3 {
		t.Fatalf("route queues: %+v", r.QueueDatas)
	}
	list, err := a.FetchAllTopicList(ctx)
	if err != nil {
		t.Fatalf("fetch topic list: %v", err)
	}
	if !slices.Contains(list.TopicList, topic) {
		t.Fatalf("topic list %v lacks %s", list.TopicList, topic)
	}
	mqs, err := a.FetchPublishMessageQueues(ctx, topic)
	if err != nil || len(mqs) != 3 {
		t.Fatalf("publish queues: %v, %v", mqs, err)
	}

	group := unique("CG")
	p := newProducer(t, shared)
	col := newCollector()
	newPushConsumer(t, shared, group, topic, consumer.MessageSelector{}, col.handler)
	col.waitAll(t, 30*time.Second, sendBodies(t, p, topic, "a", 6))

	groups, err := a.GetAllSubscriptionGroup(ctx, leader.Addr(), 3*time.Second)
	if err != nil {
		t.Fatalf("get subscription groups: %v", err)
	}
	if _, ok := groups.SubscriptionGroupTable[group]; !ok {
		t.Errorf("subscription groups lack %s (consumer heartbeat should create it)", group)
	}

	if err := a.DeleteTopic(ctx, admin.WithTopicDelete(topic), admin.WithBrokerAddrDelete(leader.Addr()),
		admin.WithNameSrvAddr([]string{shared.nsAddr()})); err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	eventually(t, 10*time.Second, func() error {
		if _, ok := leader.FSM().Topic(topic); ok {
			return fmt.Errorf("broker still has %s", topic)
		}
		if _, ok := shared.ns.Table().Route(topic); ok {
			return fmt.Errorf("name server still routes %s", topic)
		}
		return nil
	})
}
