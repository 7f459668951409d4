package compat

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

// shared is the cluster most tests use (each with its own topics and groups); tests that
// kill nodes start their own.
var shared *cluster

func TestMain(m *testing.M) {
	rlog.SetLogLevel("fatal")
	if os.Getenv("COMPAT_CLIENT_LOG") != "" {
		rlog.SetLogLevel(os.Getenv("COMPAT_CLIENT_LOG"))
	}
	root, err := os.MkdirTemp("", "raftmq-compat-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared, err = newCluster(testLogger(), root, 3)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(root)
		os.Exit(1)
	}
	// TBW102 is created by the leader's housekeeping loop; auto-creation needs it routed.
	if err := shared.waitRoute("TBW102", 20*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "compat: TBW102:", err)
	}
	code := m.Run()
	shared.close()
	os.RemoveAll(root)
	os.Exit(code)
}

var seq atomic.Int64

// unique returns prefix plus a process-unique suffix: topics, groups and client instance
// names never repeat, so clients of different tests never share a connection set.
func unique(prefix string) string {
	return prefix + "_" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10) + "_" + strconv.FormatInt(seq.Add(1), 10)
}

func ns(c *cluster) primitive.NamesrvAddr { return primitive.NamesrvAddr{c.nsAddr()} }

// newProducer starts a producer on c's name server; it is shut down with the test.
func newProducer(t testing.TB, c *cluster, opts ...producer.Option) rocketmq.Producer {
	t.Helper()
	all := append([]producer.Option{
		producer.WithNameServer(ns(c)),
		producer.WithGroupName(unique("PG")),
		producer.WithInstanceName(unique("prod")),
		producer.WithRetry(2),
	}, opts...)
	p, err := rocketmq.NewProducer(all...)
	if err != nil {
		t.Fatalf("new producer: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("start producer: %v", err)
	}
	t.Cleanup(func() { p.Shutdown() })
	return p
}

// newPushConsumer starts a push consumer of group on topic with selector and handler.
func newPushConsumer(t testing.TB, c *cluster, group, topic string, sel consumer.MessageSelector,
	h func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error), opts ...consumer.Option) rocketmq.PushConsumer {
	t.Helper()
	all := append([]consumer.Option{
		consumer.WithNameServer(ns(c)),
		consumer.WithGroupName(group),
		consumer.WithInstance(unique("cons")),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	}, opts...)
	pc, err := rocketmq.NewPushConsumer(all...)
	if err != nil {
		t.Fatalf("new push consumer: %v", err)
	}
	if err := pc.Subscribe(topic, sel, h); err != nil {
		t.Fatalf("subscribe %s: %v", topic, err)
	}
	if err := pc.Start(); err != nil {
		t.Fatalf("start push consumer: %v", err)
	}
	t.Cleanup(func() { pc.Shutdown() })
	return pc
}

// collector records consumed messages by a key of the test's choice.
type collector struct {
	mu   sync.Mutex
	msgs map[string][]*primitive.MessageExt
	n    int
}

func newCollector() *collector { return &collector{msgs: map[string][]*primitive.MessageExt{}} }

func (c *collector) add(key string, m *primitive.MessageExt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs[key] = append(c.msgs[key], m)
	c.n++
}

func (c *collector) get(key string) []*primitive.MessageExt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*primitive.MessageExt(nil), c.msgs[key]...)
}

func (c *collector) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// handler records every message under its body and acknowledges it.
func (c *collector) handler(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	for _, m := range msgs {
		c.add(string(m.Body), m)
	}
	return consumer.ConsumeSuccess, nil
}

// waitAll waits until every key in want has been consumed at least once.
func (c *collector) waitAll(t testing.TB, d time.Duration, want []string) {
	t.Helper()
	eventually(t, d, func() error {
		missing := 0
		first := ""
		for _, k := range want {
			if len(c.get(k)) == 0 {
				if missing == 0 {
					first = k
				}
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d messages not consumed (first %q)", missing, len(want), first)
		}
		return nil
	})
}
