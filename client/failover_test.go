package client

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raftmq/raftmq/transport"
)

// TestCluster_LeaderKilledDuringSendAndConsume: a producer sends keyed messages while a
// concurrent and an orderly consumer consume; the leader is killed half way. Every
// acknowledged message reaches both consumers, each key stays in order, and the leader
// change costs each send at most one retry.
func TestCluster_LeaderKilledDuringSendAndConsume(t *testing.T) {
	for _, model := range []MessageModel{Clustering, Broadcasting} {
		t.Run(model.String(), func(t *testing.T) { leaderKilled(t, model) })
	}
}

func leaderKilled(t *testing.T, model MessageModel) {
	c := newCluster(t)
	if model == Clustering {
		requireBroker(t, c, append(clusteringCodes, transport.LockBatchMQ)...)
	}
	p := newTestProducer(t, c)
	ctx := testCtx(t, 60*time.Second)

	conc := newReceived()
	var omu sync.Mutex
	perKey := map[string][]int{}
	cc := newTestPush(t, c, "failover-conc", func(cfg *PushConsumerConfig) {
		cfg.Model = model
		cfg.Listener = func(_ context.Context, msgs []*MessageExt) ConsumeResult { conc.add(msgs); return ConsumeSuccess }
	}, c.Topic, "*")
	oc := newTestPush(t, c, "failover-orderly", func(cfg *PushConsumerConfig) {
		cfg.Model = model
		cfg.OrderlyListener = func(_ context.Context, msgs []*MessageExt) OrderlyResult {
			omu.Lock()
			defer omu.Unlock()
			for _, m := range msgs {
				perKey[m.ShardingKey] = append(perKey[m.ShardingKey], bodyIndex(m.Body))
			}
			return OrderlySuccess
		}
	}, c.Topic, "*")
	if err := cc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := oc.Start(ctx); err != nil {
		t.Fatal(err)
	}

	const n = 300
	keys := []string{"a", "b", "c", "d", "e", "f"}
	var acked []int
	maxAttempts := 0
	leader := c.Index(c.Leader(t))
	for i := range n {
		if i == n/2 {
			c.Kill(t, leader)
		}
		res, err := p.Send(ctx, &Message{Topic: c.Topic, Body: body(i), ShardingKey: keys[i%len(keys)]})
		if err != nil {
			t.Logf("send %d failed (not acknowledged): %v", i, err)
			continue
		}
		acked = append(acked, i)
		maxAttempts = max(maxAttempts, res.Attempts)
	}
	t.Logf("%d of %d acknowledged; most attempts for one send: %d", len(acked), n, maxAttempts)
	if len(acked) < n {
		t.Errorf("%d sends failed across one leader change", n-len(acked))
	}
	if maxAttempts > 2 {
		t.Errorf("a send needed %d attempts; a leader change should cost at most one retry", maxAttempts)
	}
	conc.waitAll(t, acked, 30*time.Second)
	eventually(t, 30*time.Second, func() error {
		omu.Lock()
		defer omu.Unlock()
		seen := map[int]bool{}
		for _, l := range perKey {
			for _, i := range l {
				seen[i] = true
			}
		}
		for _, i := range acked {
			if !seen[i] {
				return fmt.Errorf("orderly consumer misses %d", i)
			}
		}
		return nil
	})
	omu.Lock()
	defer omu.Unlock()
	for k, l := range perKey {
		first := dedupe(l)
		if !sort.IntsAreSorted(first) {
			t.Fatalf("key %s out of order: %v", k, first)
		}
	}
}

func dedupe(l []int) []int {
	seen := map[int]bool{}
	var out []int
	for _, i := range l {
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	return out
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// connsTo counts this machine's established TCP connections whose remote port is in
// ports (the client side of connections to the brokers and the name server).
func connsTo(t testing.TB, ports map[int]bool) int {
	n := 0
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 4 || fs[3] != "01" {
				continue
			}
			i := strings.LastIndexByte(fs[2], ':')
			port, err := strconv.ParseInt(fs[2][i+1:], 16, 32)
			if err == nil && ports[int(port)] {
				n++
			}
		}
	}
	return n
}

func openFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestProducerConsumer_StartStopCycles: 1,000 start/stop cycles (50 with -short) of a
// producer that sends, a push consumer that consumes, a pull consumer that polls and an admin
// client leave no goroutine, file descriptor or connection behind.
func TestProducerConsumer_StartStopCycles(t *testing.T) {
	c := newCluster(t)
	cycles := 1000
	if testing.Short() {
		cycles = 50
	}
	ctx := testCtx(t, 170*time.Second)
	cycle := func(i int) {
		p, err := NewProducer(ProducerConfig{ClientConfig: ClientConfig{NameServers: []string{c.NS.Addr()}}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Send(ctx, &Message{Topic: c.Topic, Body: body(i)})
		if err != nil {
			t.Fatalf("cycle %d: send: %v", i, err)
		}
		got := make(chan struct{}, 1)
		pc, err := NewPushConsumer(PushConsumerConfig{
			ClientConfig: ClientConfig{NameServers: []string{c.NS.Addr()}},
			Group:        "cycles", Model: Broadcasting, ConsumeFrom: ConsumeFromFirst, OffsetStoreDir: t.TempDir(),
			LongPollTimeout: time.Second,
			Listener: func(context.Context, []*MessageExt) ConsumeResult {
				select {
				case got <- struct{}{}:
				default:
				}
				return ConsumeSuccess
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := pc.Subscribe(c.Topic, "*"); err != nil {
			t.Fatal(err)
		}
		if err := pc.Start(ctx); err != nil {
			t.Fatalf("cycle %d: start: %v", i, err)
		}
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatalf("cycle %d: nothing consumed", i)
		}
		pull, err := NewPullConsumer(PullConsumerConfig{ClientConfig: ClientConfig{NameServers: []string{c.NS.Addr()}}, Group: "cyclesPull"})
		if err != nil {
			t.Fatal(err)
		}
		_ = pull.Assign("*", res.Queue)
		_ = pull.Seek(res.Queue, res.QueueOffset)
		if msgs, err := pull.Poll(ctx); err != nil || len(msgs) == 0 {
			t.Fatalf("cycle %d: poll: %d %v", i, len(msgs), err)
		}
		adm, err := NewAdmin(ClientConfig{NameServers: []string{c.NS.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := adm.ListTopics(ctx); err != nil {
			t.Fatalf("cycle %d: admin: %v", i, err)
		}
		_ = adm.Close()
		_ = pull.Close()
		_ = pc.Close()
		_ = p.Close()
	}
	cycle(-1) // warm the cluster's own connections and goroutines up
	// The cluster's Raft links redial through the test proxies now and then: not ours.
	ignore := []goleak.Option{goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/raftmq/raftmq/internal/testcluster.(*proxy).serve"),
		goleak.IgnoreAnyFunction("github.com/raftmq/raftmq/internal/testcluster.(*proxy).serve.func1"),
		goleak.IgnoreAnyFunction("github.com/hashicorp/raft.(*NetworkTransport).handleConn"),
	}
	fds := openFDs(t)
	ports := map[int]bool{portOf(c.NS.Addr()): true}
	for _, nd := range c.Live() {
		ports[portOf(nd.Addr())] = true
	}
	conns := connsTo(t, ports)
	for i := range cycles {
		cycle(i)
	}
	if err := goleak.Find(ignore...); err != nil {
		t.Fatalf("after %d cycles: %v", cycles, err)
	}
	// Raft links redial through the proxies, so the fd count may drift by a few; a leak of
	// one per cycle would show as hundreds.
	eventually(t, 10*time.Second, func() error {
		if now := openFDs(t); now > fds+20 {
			return fmt.Errorf("open fds %d -> %d after %d cycles", fds, now, cycles)
		}
		if now := connsTo(t, ports); now > conns {
			return fmt.Errorf("established connections to the brokers and name server %d -> %d after %d cycles", conns, now, cycles)
		}
		return nil
	})
}
