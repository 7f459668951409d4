package client

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/node"
)

func TestProducer_SendSyncAsyncOnewayBatch(t *testing.T) {
	c := newCluster(t)
	p := newTestProducer(t, c)
	ctx := testCtx(t, 30*time.Second)

	res, err := p.Send(ctx, &Message{Topic: c.Topic, Body: []byte("hello"), Tags: "A", Keys: []string{"k1"}})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.Status != SendOK || len(res.MsgID) != 32 || len(res.OffsetMsgID) != 32 || res.Attempts != 1 {
		t.Fatalf("Send result %+v", res)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	var asyncErrs []error
	for i := range 50 {
		wg.Add(1)
		err := p.SendAsync(ctx, &Message{Topic: c.Topic, Body: body(i)}, func(r *SendResult, err error) {
			defer wg.Done()
			if err == nil && r.Status != SendOK {
				err = errors.New(r.Status.String())
			}
			if err != nil {
				mu.Lock()
				asyncErrs = append(asyncErrs, err)
				mu.Unlock()
			}
		})
		if err != nil {
			t.Fatalf("SendAsync: %v", err)
		}
	}
	wg.Wait()
	if len(asyncErrs) > 0 {
		t.Fatalf("async errors: %v", asyncErrs)
	}
	if err := p.SendOneway(ctx, &Message{Topic: c.Topic, Body: []byte("oneway")}); err != nil {
		t.Fatalf("SendOneway: %v", err)
	}
	batch := []*Message{{Topic: c.Topic, Body: []byte("b1")}, {Topic: c.Topic, Body: []byte("b2")}, {Topic: c.Topic, Body: []byte("b3")}}
	bres, err := p.SendBatch(ctx, batch)
	if err != nil {
		t.Fatalf("SendBatch: %v", err)
	}
	if n := len(strings.Split(bres.MsgID, ",")); n != 3 {
		t.Fatalf("batch MsgID %q has %d ids", bres.MsgID, n)
	}
	if n := len(strings.Split(bres.OffsetMsgID, ",")); n != 3 {
		t.Fatalf("batch OffsetMsgID %q has %d ids", bres.OffsetMsgID, n)
	}
}

func TestProducer_Validation(t *testing.T) {
	c := newCluster(t)
	p := newTestProducer(t, c)
	ctx := testCtx(t, 10*time.Second)
	big := make([]byte, 4<<20+1)
	cases := []*Message{
		nil,
		{Topic: c.Topic},
		{Topic: "bad topic", Body: []byte("x")},
		{Topic: "TBW102", Body: []byte("x")},
		{Topic: "%RETRY%g", Body: []byte("x")},
		{Topic: c.Topic, Body: big},
		{Topic: c.Topic, Body: []byte("x"), DelayLevel: 19},
		{Topic: c.Topic, Body: []byte("x"), Keys: []string{"a b"}},
		{Topic: c.Topic, Body: []byte("x"), Properties: map[string]string{"UNIQ_KEY": "x"}},
	}
	for i, m := range cases {
		if _, err := p.Send(ctx, m); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("case %d: err %v, want ErrInvalidMessage", i, err)
		}
	}
	// Exactly at the limit is accepted by the client (the test broker allows 1 MiB, so use
	// a producer limit that matches it).
	p2 := newTestProducer(t, c, func(cfg *ProducerConfig) { cfg.MaxMessageSize = 1 << 20; cfg.CompressThreshold = -1 })
	if _, err := p2.Send(ctx, &Message{Topic: c.Topic, Body: make([]byte, 1<<20)}); err != nil {
		t.Fatalf("message at the limit: %v", err)
	}
	if _, err := p2.Send(ctx, &Message{Topic: c.Topic, Body: make([]byte, 1<<20+1)}); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("message 1 byte over the limit: %v", err)
	}
	// Properties one byte over the int16 limit, and a batch whose encoding is over the size
	// limit, are refused before anything is sent.
	if _, err := p.Send(ctx, &Message{Topic: c.Topic, Body: []byte("x"), Properties: map[string]string{"p": strings.Repeat("v", 32767)}}); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("oversized properties: %v", err)
	}
	half := make([]byte, 600<<10)
	if _, err := p2.SendBatch(ctx, []*Message{{Topic: c.Topic, Body: half}, {Topic: c.Topic, Body: half}}); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("oversized batch: %v", err)
	}
	if _, err := p.SendBatch(ctx, []*Message{{Topic: c.Topic, Body: []byte("a")}, {Topic: "Other", Body: []byte("b")}}); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("batch over two topics: %v", err)
	}
	if _, err := p.SendBatch(ctx, []*Message{{Topic: c.Topic, Body: []byte("a"), DelayLevel: 1}}); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("delayed batch: %v", err)
	}
	// A topic the name servers do not know goes through TBW102's route: the brokers
	// (autoCreateTopicEnable=true in the test cluster) create it with 4 queues. The leader
	// registers TBW102 shortly after it is elected.
	testcluster.Eventually(t, 10*time.Second, func() error {
		if _, ok := c.NS.Table().Route("TBW102"); !ok {
			return errors.New("no TBW102 route yet")
		}
		return nil
	})
	res, err := p.Send(ctx, &Message{Topic: "AutoCreatedTopic", Body: []byte("x")})
	if err != nil {
		t.Fatalf("send to a new topic with auto-creation on: %v", err)
	}
	if res.Queue.QueueID >= autoCreateQueues {
		t.Errorf("auto-created topic used queue %d", res.Queue.QueueID)
	}
	tc, ok := c.Leader(t).FSM().Topic("AutoCreatedTopic")
	if !ok || tc.WriteQueueNums != autoCreateQueues {
		t.Fatalf("auto-created topic config %+v %v", tc, ok)
	}
}

func TestProducer_MissingTopicWithoutAutoCreate(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Quiet(), testcluster.WithConfig(func(_ int, cfg *node.Config) {
		cfg.AutoCreateTopicEnable = false
	}))
	p := newTestProducer(t, c)
	ctx := testCtx(t, 20*time.Second)
	if _, err := p.Send(ctx, &Message{Topic: "NoSuchTopic", Body: []byte("x")}); !errors.Is(err, ErrTopicNotExist) {
		t.Fatalf("missing topic with autoCreateTopicEnable=false: %v", err)
	}
}

func TestProducer_DeadFirstNameServer(t *testing.T) {
	c := newCluster(t)
	p := newTestProducer(t, c, func(cfg *ProducerConfig) {
		// A dead address, an unresolvable name, then the live server by DNS name.
		_, port, _ := net.SplitHostPort(c.NS.Addr())
		cfg.NameServers = []string{"127.0.0.1:1", "no-such-host.invalid:9876", "localhost:" + port}
	})
	if _, err := p.Send(testCtx(t, 10*time.Second), &Message{Topic: c.Topic, Body: []byte("x")}); err != nil {
		t.Fatalf("Send with a dead first name server: %v", err)
	}
	// All dead: the error lists every address.
	p2 := newTestProducer(t, c, func(cfg *ProducerConfig) {
		cfg.NameServers = []string{"127.0.0.1:1", "127.0.0.1:2"}
		cfg.MaxAttempts = 1
	})
	_, err := p2.Send(testCtx(t, 10*time.Second), &Message{Topic: c.Topic, Body: []byte("x")})
	if !errors.Is(err, ErrNameServer) || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "127.0.0.1:2") {
		t.Fatalf("all name servers dead: %v", err)
	}
}

func TestProducer_Closed(t *testing.T) {
	c := newCluster(t)
	p := newTestProducer(t, c)
	_ = p.Close()
	_ = p.Close()
	if _, err := p.Send(testCtx(t, time.Second), &Message{Topic: c.Topic, Body: []byte("x")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

// TestProducer_NameServerLost: with every name server gone, a producer keeps sending on the
// route it has cached, and its route refreshes fail without dropping that route.
func TestProducer_NameServerLost(t *testing.T) {
	c := newCluster(t)
	p := newTestProducer(t, c, func(cfg *ProducerConfig) { cfg.RouteRefreshInterval = 100 * time.Millisecond })
	ctx := testCtx(t, 20*time.Second)
	if _, err := p.Send(ctx, &Message{Topic: c.Topic, Body: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	if err := c.NS.Close(ctx); err != nil {
		t.Fatal(err)
	}
	fetched := p.c.cachedRoute(c.Topic).fetched
	// Wait until a refresh has been tried and failed (the route timestamp stays).
	eventually(t, 10*time.Second, func() error {
		if _, err := p.c.fetchRoute(ctx, c.Topic); err == nil {
			return errors.New("name server still answers")
		}
		return nil
	})
	for i := range 10 {
		if _, err := p.Send(ctx, &Message{Topic: c.Topic, Body: body(i)}); err != nil {
			t.Fatalf("send %d without name server: %v", i, err)
		}
	}
	if r := p.c.cachedRoute(c.Topic); r == nil || !r.fetched.Equal(fetched) {
		t.Fatal("cached route replaced or dropped")
	}
}
