package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/node"
	"github.com/raftmq/raftmq/transport"
)

// fakeConsumer is a client process: its own connections, and a handler recording what the
// brokers push to it (NOTIFY_CONSUMER_IDS_CHANGED, RESET_CONSUMER_CLIENT_OFFSET).
type fakeConsumer struct {
	id  string
	cl  *transport.Client
	mu  sync.Mutex
	got []*transport.Command
}

func newFakeConsumer(t *testing.T, id string) *fakeConsumer {
	t.Helper()
	fc := &fakeConsumer{id: id}
	cl, err := transport.NewClient(transport.ClientConfig{Handler: transport.HandlerFunc(
		func(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
			fc.mu.Lock()
			fc.got = append(fc.got, req)
			fc.mu.Unlock()
			return nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	fc.cl = cl
	t.Cleanup(func() { cl.Close() })
	return fc
}

// received returns the pushed requests with code c.
func (fc *fakeConsumer) received(c transport.RequestCode) []*transport.Command {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	var out []*transport.Command
	for _, r := range fc.got {
		if r.Code == int16(c) {
			out = append(out, r)
		}
	}
	return out
}

func (fc *fakeConsumer) clear() {
	fc.mu.Lock()
	fc.got = nil
	fc.mu.Unlock()
}

// heartbeatBody is what Go's client sends (codeSet as strings).
func heartbeatBody(clientID, group, topic, sub string) []byte {
	var tags, codes []string
	if sub != "*" && sub != "" {
		for _, t := range strings.Split(sub, "||") {
			t = strings.TrimSpace(t)
			tags = append(tags, t)
			codes = append(codes, strconv.FormatInt(message.TagsHashCode(t), 10))
		}
	}
	hb := map[string]any{
		"clientID":        clientID,
		"producerDataSet": []map[string]any{{"groupName": "pg-" + group}},
		"consumerDataSet": []map[string]any{{
			"groupName": group, "consumeType": "CONSUME_PASSIVELY", "messageModel": "CLUSTERING",
			"consumeFromWhere": "CONSUME_FROM_FIRST_OFFSET", "unitMode": false,
			"subscriptionDataSet": []map[string]any{
				{"classFilterMode": false, "topic": topic, "subString": sub, "tagsSet": orEmpty(tags), "codeSet": orEmpty(codes),
					"subVersion": int64(1795565707486726831), "expressionType": "TAG"},
				{"classFilterMode": false, "topic": "%RETRY%" + group, "subString": "*", "tagsSet": []string{}, "codeSet": []string{},
					"subVersion": int64(1795565707486726832), "expressionType": "TAG"},
			},
		}},
	}
	b, _ := json.Marshal(hb)
	return b
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (fc *fakeConsumer) heartbeat(t *testing.T, addr, group, topic, sub string) {
	t.Helper()
	r := invoke(t, fc.cl, addr, transport.NewRequest(transport.HeartBeat, nil, heartbeatBody(fc.id, group, topic, sub)))
	mustSucceed(t, r, nil)
}

func consumerList(t *testing.T, cl *transport.Client, addr, group string) []string {
	t.Helper()
	r := invoke(t, cl, addr, transport.NewRequest(transport.GetConsumerListByGroup, map[string]string{"consumerGroup": group}, nil))
	if r.Code != int16(transport.Success) {
		return nil
	}
	var body struct {
		ConsumerIDList []string `json:"consumerIdList"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("consumer list body %q: %v", r.Body, err)
	}
	return body.ConsumerIDList
}

func sendTag(t *testing.T, c *testcluster.Cluster, topic string, q int, body, tag string) {
	t.Helper()
	testcluster.Eventually(t, 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := c.Client().Invoke(ctx, c.Leader(t).Addr(), sendReq(topic, q, []byte(body), "TAGS\x01"+tag+"\x02"))
		if err != nil {
			return err
		}
		if r.Code != int16(transport.Success) {
			return fmt.Errorf("%s: %s", transport.ResponseCode(r.Code), r.Remark)
		}
		return nil
	})
}

// pushPullReq is a push consumer's pull: subscription "" and no subscription bit.
func pushPullReq(group, topic string, qid int, offset int64, suspend time.Duration) *transport.Command {
	sys := 0
	if suspend > 0 {
		sys |= 2
	}
	return transport.NewRequest(transport.PullMessage, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(qid), "queueOffset": strconv.FormatInt(offset, 10),
		"maxMsgNums": "32", "sysFlag": strconv.Itoa(sys), "commitOffset": "-1",
		"suspendTimeoutMillis": strconv.FormatInt(suspend.Milliseconds(), 10), "subscription": "",
		"subVersion": "0", "expressionType": "TAG",
	}, nil)
}

func decodeBodies(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	for len(b) > 0 {
		m, n, err := message.DecodeRecord(b)
		if err != nil {
			t.Fatalf("decode pulled record: %v", err)
		}
		out = append(out, string(m.Body))
		b = b[n:]
	}
	return out
}

func queryOffset(t *testing.T, cl *transport.Client, addr, group, topic string, q int) (transport.ResponseCode, int64) {
	t.Helper()
	r := invoke(t, cl, addr, transport.NewRequest(transport.QueryConsumerOffset, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(q)}, nil))
	off, _ := strconv.ParseInt(r.Ext("offset"), 10, 64)
	return transport.ResponseCode(r.Code), off
}

func updateOffset(t *testing.T, cl *transport.Client, addr, group, topic string, q int, off int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := cl.InvokeOneway(ctx, addr, transport.NewRequest(transport.UpdateConsumerOffset, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(q), "commitOffset": strconv.FormatInt(off, 10)}, nil))
	if err != nil {
		t.Fatal(err)
	}
}

func TestConsumer_Cluster(t *testing.T) {
	const flush = 200 * time.Millisecond
	c := testcluster.New(t, 3, testcluster.Quiet(), testcluster.WithOptions(func(i int, o *node.Options) {
		o.OffsetFlushInterval = flush
		o.LockExpiry = 3 * time.Second
	}))
	cl := c.Client()
	code := func(r *transport.Command) transport.ResponseCode { return transport.ResponseCode(r.Code) }

	t.Run("TagFilteredLongPoll", func(t *testing.T) {
		l := c.Leader(t)
		if r := invoke(t, cl, l.Addr(), pullReq(c.Topic, 0, 0, 1, 0, "A")); code(r) != transport.PullNotFound { // creates group cg
			t.Fatalf("first pull of an empty queue: %s %s", code(r), r.Remark)
		}
		start := l.Store().MaxOffset(c.Topic, 0)
		// A non-matching message already there is skipped, not answered with
		// PULL_RETRY_IMMEDIATELY: the pull is held for a matching one.
		sendTag(t, c, c.Topic, 0, "not-for-me-1", "B")
		type result struct {
			r   *transport.Command
			err error
		}
		done := make(chan result, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			req := pullReq(c.Topic, 0, start, 32, 15*time.Second, "A")
			r, err := cl.Invoke(ctx, l.Addr(), req)
			done <- result{r, err}
		}()
		testcluster.Eventually(t, 10*time.Second, func() error {
			if l.HeldPulls() == 0 {
				return fmt.Errorf("the pull is not held")
			}
			return nil
		})
		sendTag(t, c, c.Topic, 0, "not-for-me-2", "B")
		sendTag(t, c, c.Topic, 0, "for-me", "A")
		res := <-done
		if res.err != nil {
			t.Fatal(res.err)
		}
		// Woken by the B append, the pull would have answered PULL_RETRY_IMMEDIATELY.
		if code(res.r) != transport.Success {
			t.Fatalf("held pull answered %s %s; want SUCCESS with the A message", code(res.r), res.r.Remark)
		}
		if got := decodeBodies(t, res.r.Body); !slices.Equal(got, []string{"for-me"}) {
			t.Fatalf("pulled %q, want [for-me]", got)
		}
		if next := res.r.Ext("nextBeginOffset"); next != strconv.FormatInt(start+3, 10) {
			t.Fatalf("nextBeginOffset %s, want %d", next, start+3)
		}
		for _, k := range []string{"minOffset", "maxOffset", "suggestWhichBrokerId"} {
			if res.r.Ext(k) == "" {
				t.Fatalf("reply lacks %s", k)
			}
		}
	})

	t.Run("PushPullFilteredByHeartbeat", func(t *testing.T) {
		l := c.Leader(t)
		fc := newFakeConsumer(t, "10.0.0.1@push")
		start := l.Store().MaxOffset(c.Topic, 1)
		// Without a heartbeat the broker does not know the subscription.
		r := invoke(t, fc.cl, l.Addr(), pushPullReq("cg-push", c.Topic, 1, start, 0))
		if code(r) != transport.SubscriptionNotExist || r.Ext("nextBeginOffset") != strconv.FormatInt(start, 10) || r.Ext("suggestWhichBrokerId") != "0" {
			t.Fatalf("pull before heartbeat: %s %s %v", code(r), r.Remark, r.ExtFields)
		}
		fc.heartbeat(t, l.Addr(), "cg-push", c.Topic, "X || Y")
		sendTag(t, c, c.Topic, 1, "x1", "X")
		sendTag(t, c, c.Topic, 1, "z1", "Z")
		sendTag(t, c, c.Topic, 1, "y1", "Y")
		var got []string
		off := start
		for off < start+3 {
			r := invoke(t, fc.cl, l.Addr(), pushPullReq("cg-push", c.Topic, 1, off, time.Second))
			switch code(r) {
			case transport.Success:
				got = append(got, decodeBodies(t, r.Body)...)
			case transport.PullNotFound, transport.PullRetryImmediately:
			default:
				t.Fatalf("push pull: %s %s", code(r), r.Remark)
			}
			off, _ = strconv.ParseInt(r.Ext("nextBeginOffset"), 10, 64)
		}
		if !slices.Equal(got, []string{"x1", "y1"}) {
			t.Fatalf("push consumer got %q, want [x1 y1]", got)
		}
		// The heartbeat created the group and its retry topic through Raft.
		testcluster.Eventually(t, 10*time.Second, func() error {
			for _, nd := range c.Live() {
				if _, ok := nd.FSM().Group("cg-push"); !ok {
					return fmt.Errorf("%s: no group", nd.ServerID())
				}
				if tc, ok := nd.FSM().Topic("%RETRY%cg-push"); !ok || tc.ReadQueueNums != 1 || tc.Perm != 6 {
					return fmt.Errorf("%s: retry topic %+v %v", nd.ServerID(), tc, ok)
				}
			}
			return nil
		})
	})

	t.Run("MembersOnEveryNodeAndNotify", func(t *testing.T) {
		const group = "cg-members"
		c1, c2 := newFakeConsumer(t, "10.0.0.1@one"), newFakeConsumer(t, "10.0.0.2@two")
		addrs := []string{}
		for _, nd := range c.Live() {
			addrs = append(addrs, nd.Addr())
		}
		for _, a := range addrs {
			c1.heartbeat(t, a, group, c.Topic, "*")
		}
		for _, a := range addrs {
			if got := consumerList(t, cl, a, group); !slices.Equal(got, []string{c1.id}) {
				t.Fatalf("%s lists %q", a, got)
			}
		}
		c1.clear()
		for _, a := range addrs {
			c2.heartbeat(t, a, group, c.Topic, "*")
		}
		for _, a := range addrs {
			if got := consumerList(t, cl, a, group); !slices.Equal(got, []string{c1.id, c2.id}) {
				t.Fatalf("%s lists %q", a, got)
			}
		}
		// A repeated heartbeat changes nothing and notifies nobody new.
		testcluster.Eventually(t, 5*time.Second, func() error {
			if n := len(c1.received(transport.NotifyConsumerIDsChanged)); n != len(addrs) {
				return fmt.Errorf("c1 got %d notifications on c2 joining, want one per node (%d)", n, len(addrs))
			}
			return nil
		})
		for _, r := range c1.received(transport.NotifyConsumerIDsChanged) {
			if r.Ext("consumerGroup") != group || !r.IsOneway() {
				t.Fatalf("notification %v", r)
			}
		}
		// Connection close: c2's process goes away without unregistering.
		c1.clear()
		c2.cl.Close()
		testcluster.Eventually(t, 10*time.Second, func() error {
			for _, a := range addrs {
				if got := consumerList(t, cl, a, group); !slices.Equal(got, []string{c1.id}) {
					return fmt.Errorf("%s lists %q", a, got)
				}
			}
			if n := len(c1.received(transport.NotifyConsumerIDsChanged)); n != len(addrs) {
				return fmt.Errorf("c1 got %d notifications on c2 leaving", n)
			}
			return nil
		})
		// Consumer connections and producer connections (admin reads).
		r := invoke(t, cl, addrs[0], transport.NewRequest(transport.GetConsumerConnectionList, map[string]string{"consumerGroup": group}, nil))
		mustSucceed(t, r, nil)
		if !strings.Contains(string(r.Body), c1.id) || !strings.Contains(string(r.Body), `"subscriptionTable"`) {
			t.Fatalf("consumer connections: %s", r.Body)
		}
		r = invoke(t, cl, addrs[0], transport.NewRequest(transport.GetProducerConnectionList, map[string]string{"producerGroup": "pg-" + group}, nil))
		mustSucceed(t, r, nil)
		if !strings.Contains(string(r.Body), c1.id) {
			t.Fatalf("producer connections: %s", r.Body)
		}
		if pc := c.Live()[0].ProducerConns("pg-" + group); len(pc) != 1 {
			t.Fatalf("producer conns %v", pc)
		}
		// A member subscribing to another topic: the group is told to rebalance.
		c1.clear()
		mustSucceed(t, invoke(t, c1.cl, addrs[0], transport.NewRequest(transport.HeartBeat, nil, heartbeatBody(c1.id, group, "OtherTopic", "*"))), nil)
		testcluster.Eventually(t, 5*time.Second, func() error {
			if len(c1.received(transport.NotifyConsumerIDsChanged)) != 1 {
				return fmt.Errorf("no notification after a subscription change")
			}
			return nil
		})
		// Unregistering leaves the group empty: Java answers SYSTEM_ERROR with no body.
		for _, a := range addrs {
			mustSucceed(t, invoke(t, c1.cl, a, transport.NewRequest(transport.UnregisterClient, map[string]string{
				"clientID": c1.id, "consumerGroup": group, "producerGroup": "pg-" + group}, nil)), nil)
			r := invoke(t, cl, a, transport.NewRequest(transport.GetConsumerListByGroup, map[string]string{"consumerGroup": group}, nil))
			if code(r) != transport.SystemError || len(r.Body) != 0 {
				t.Fatalf("empty group: %s %q", code(r), r.Body)
			}
		}
	})

	t.Run("Locks", func(t *testing.T) {
		l := c.Leader(t)
		lock := func(cmd transport.RequestCode, client string, qs ...int) []int {
			t.Helper()
			var mqs []map[string]any
			for _, q := range qs {
				mqs = append(mqs, map[string]any{"topic": c.Topic, "brokerName": "broker-a", "queueId": q})
			}
			body, _ := json.Marshal(map[string]any{"consumerGroup": "cg-lock", "clientId": client, "mqSet": mqs})
			r := invoke(t, cl, l.Addr(), transport.NewRequest(cmd, nil, body))
			mustSucceed(t, r, nil)
			if cmd == transport.UnlockBatchMQ {
				return nil
			}
			var out struct {
				LockOKMQSet []struct {
					QueueID int `json:"queueId"`
				} `json:"lockOKMQSet"`
			}
			if err := json.Unmarshal(r.Body, &out); err != nil {
				t.Fatalf("lock reply %q: %v", r.Body, err)
			}
			var got []int
			for _, m := range out.LockOKMQSet {
				got = append(got, m.QueueID)
			}
			return got
		}
		if got := lock(transport.LockBatchMQ, "c1", 0, 1); !slices.Equal(got, []int{0, 1}) {
			t.Fatalf("c1 locked %v", got)
		}
		if got := lock(transport.LockBatchMQ, "c2", 1, 2); !slices.Equal(got, []int{2}) {
			t.Fatalf("c2 locked %v, want [2]", got)
		}
		lock(transport.UnlockBatchMQ, "c2", 0, 1) // not the holder: no effect
		if got := lock(transport.LockBatchMQ, "c1", 0, 1); !slices.Equal(got, []int{0, 1}) {
			t.Fatalf("c1 renewed %v", got)
		}
		lock(transport.UnlockBatchMQ, "c1", 0)
		if got := lock(transport.LockBatchMQ, "c2", 0); !slices.Equal(got, []int{0}) {
			t.Fatalf("c2 after c1 unlocked: %v", got)
		}
		// c1 stops renewing queue 1: it lapses after LockExpiry and c2 may take it.
		testcluster.Eventually(t, 15*time.Second, func() error {
			if got := lock(transport.LockBatchMQ, "c2", 1); !slices.Equal(got, []int{1}) {
				return fmt.Errorf("c2 still refused queue 1")
			}
			return nil
		})
		// Through a follower: forwarded to the leader.
		body, _ := json.Marshal(map[string]any{"consumerGroup": "cg-lock", "clientId": "c2", "mqSet": []map[string]any{{"topic": c.Topic, "brokerName": "broker-a", "queueId": 3}}})
		r := invoke(t, cl, c.Followers()[0].Addr(), transport.NewRequest(transport.LockBatchMQ, nil, body))
		mustSucceed(t, r, nil)
		if !strings.Contains(string(r.Body), `"queueId":3`) {
			t.Fatalf("lock via follower: %s", r.Body)
		}
	})

	t.Run("OffsetsSurviveLeaderKill", func(t *testing.T) {
		const group = "cg-offsets"
		l := c.Leader(t)
		sendTag(t, c, c.Topic, 2, "m", "A")
		// Nothing stored, minOffset 0 and the first message still stored: SUCCESS with 0.
		if rc, off := queryOffset(t, cl, l.Addr(), group, c.Topic, 2); rc != transport.Success || off != 0 {
			t.Fatalf("query before commit: %s %d", rc, off)
		}
		updateOffset(t, cl, l.Addr(), group, c.Topic, 2, 7)
		updateOffset(t, cl, c.Followers()[0].Addr(), group, c.Topic, 3, 9) // forwarded
		testcluster.Eventually(t, 10*time.Second, func() error {
			for _, nd := range c.Live() {
				o2, ok2 := nd.FSM().Offset(group, c.Topic, 2)
				o3, ok3 := nd.FSM().Offset(group, c.Topic, 3)
				if !ok2 || !ok3 || o2 != 7 || o3 != 9 {
					return fmt.Errorf("%s: %d %v %d %v", nd.ServerID(), o2, ok2, o3, ok3)
				}
			}
			return nil
		})
		// A commit that the leader has not proposed yet may be lost with it: at most one
		// interval of progress, never back to zero.
		updateOffset(t, cl, l.Addr(), group, c.Topic, 2, 8)
		c.Kill(t, c.Index(l))
		nl := c.Leader(t)
		rc, off := queryOffset(t, cl, nl.Addr(), group, c.Topic, 2)
		if rc != transport.Success || (off != 7 && off != 8) {
			t.Fatalf("after failover: %s %d, want 7 or 8", rc, off)
		}
		if rc, off := queryOffset(t, cl, nl.Addr(), group, c.Topic, 3); rc != transport.Success || off != 9 {
			t.Fatalf("after failover queue 3: %s %d", rc, off)
		}
		// Consume stats on the new leader.
		r := invoke(t, cl, nl.Addr(), transport.NewRequest(transport.GetConsumeStats, map[string]string{"consumerGroup": group, "topic": c.Topic}, nil))
		mustSucceed(t, r, nil)
		if !strings.Contains(string(r.Body), `{"brokerName":"broker-a","queueId":3,"topic":"TestTopic"}:{"brokerOffset":`) ||
			!strings.Contains(string(r.Body), `"consumerOffset":9`) {
			t.Fatalf("consume stats: %s", r.Body)
		}
		// Without a topic: every topic the group has offsets for.
		r = invoke(t, cl, nl.Addr(), transport.NewRequest(transport.GetConsumeStats, map[string]string{"consumerGroup": group}, nil))
		mustSucceed(t, r, nil)
		if !strings.Contains(string(r.Body), `"queueId":2,"topic":"TestTopic"}:{"brokerOffset":`) || !strings.Contains(string(r.Body), `"consumeTps":`) {
			t.Fatalf("consume stats of every topic: %s", r.Body)
		}
		// Queue offsets.
		for _, cmd := range []transport.RequestCode{transport.GetMaxOffset, transport.GetMinOffset, transport.SearchOffsetByTimestamp, transport.GetEarliestMsgStoreTime} {
			r := invoke(t, cl, nl.Addr(), transport.NewRequest(cmd, map[string]string{"topic": c.Topic, "queueId": "2", "timestamp": "0"}, nil))
			mustSucceed(t, r, nil)
			if r.Ext("offset") == "" && r.Ext("timestamp") == "" {
				t.Fatalf("%s: no offset: %v", cmd, r)
			}
		}
		if r := invoke(t, cl, nl.Addr(), transport.NewRequest(transport.GetMaxOffset, map[string]string{"topic": c.Topic, "queueId": "2"}, nil)); r.Ext("offset") != strconv.FormatInt(nl.Store().MaxOffset(c.Topic, 2), 10) {
			t.Fatalf("max offset %s", r.Ext("offset"))
		}
	})

	t.Run("ConsumeTpsCountsPulls", func(t *testing.T) {
		l := c.Leader(t)
		for i := range 5 {
			sendTag(t, c, c.Topic, 1, "tps-"+strconv.Itoa(i), "A")
		}
		req := pullReq(c.Topic, 1, 0, 32, 0, "*")
		req.ExtFields["consumerGroup"] = "cg-tps"
		mustSucceed(t, invoke(t, cl, l.Addr(), req), nil)
		r := invoke(t, cl, l.Addr(), transport.NewRequest(transport.GetConsumeStats, map[string]string{"consumerGroup": "cg-tps"}, nil))
		mustSucceed(t, r, nil)
		var st struct {
			ConsumeTps float64 `json:"consumeTps"`
		}
		if i := strings.Index(string(r.Body), `"offsetTable"`); i < 0 || json.Unmarshal([]byte(string(r.Body)[:i-1]+"}"), &st) != nil || st.ConsumeTps <= 0 {
			t.Fatalf("consumeTps after a pull of 5+ messages: %s", r.Body)
		}
	})

	t.Run("ResetByTimeSeenByOnlineConsumer", func(t *testing.T) {
		const group = "cg-reset"
		l := c.Leader(t)
		fc := newFakeConsumer(t, "10.0.0.3@reset")
		fc.heartbeat(t, l.Addr(), group, c.Topic, "*")
		for q := 0; q < 4; q++ {
			updateOffset(t, cl, l.Addr(), group, c.Topic, q, l.Store().MaxOffset(c.Topic, int32(q)))
		}
		// The oneway updates are served concurrently: see them recorded before resetting.
		testcluster.Eventually(t, 5*time.Second, func() error {
			for q := 0; q < 4; q++ {
				if rc, off := queryOffset(t, cl, l.Addr(), group, c.Topic, q); rc != transport.Success || off != l.Store().MaxOffset(c.Topic, int32(q)) {
					return fmt.Errorf("queue %d: %s %d", q, rc, off)
				}
			}
			return nil
		})
		r := invoke(t, cl, l.Addr(), transport.NewRequest(transport.InvokeBrokerToResetOffset, map[string]string{
			"topic": c.Topic, "group": group, "timestamp": "0", "isForce": "true"}, nil))
		mustSucceed(t, r, nil)
		testcluster.Eventually(t, 5*time.Second, func() error {
			if len(fc.received(transport.ResetConsumerClientOffset)) == 0 {
				return fmt.Errorf("no RESET_CONSUMER_CLIENT_OFFSET")
			}
			return nil
		})
		got := fc.received(transport.ResetConsumerClientOffset)[0]
		if got.Ext("group") != group || got.Ext("topic") != c.Topic || !strings.Contains(string(got.Body), `{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"TestTopic"}:0,`) {
			t.Fatalf("reset request %v body %s", got, got.Body)
		}
		for q := 0; q < 4; q++ {
			if rc, off := queryOffset(t, cl, l.Addr(), group, c.Topic, q); rc != transport.Success || off != 0 {
				t.Fatalf("queue %d after reset: %s %d", q, rc, off)
			}
		}
		// Without force, a reset to the end moves no queue forward.
		r = invoke(t, cl, l.Addr(), transport.NewRequest(transport.InvokeBrokerToResetOffset, map[string]string{
			"topic": c.Topic, "group": group, "timestamp": "-1", "isForce": "false"}, nil))
		mustSucceed(t, r, nil)
		if !strings.Contains(string(r.Body), `"queueId":0,"topic":"TestTopic"}:0,`) {
			t.Fatalf("non-forced reset body %s", r.Body)
		}
		if rc, off := queryOffset(t, cl, l.Addr(), group, c.Topic, 0); rc != transport.Success || off != 0 {
			t.Fatalf("non-forced reset moved queue 0 to %d (%s)", off, rc)
		}
		r = invoke(t, cl, l.Addr(), transport.NewRequest(transport.InvokeBrokerToResetOffset, map[string]string{
			"topic": "NoSuchTopic", "group": group, "timestamp": "0"}, nil))
		if code(r) != transport.TopicNotExist || !strings.Contains(r.Remark, "NoSuchTopic") {
			t.Fatalf("reset of an unknown topic: %s %s", code(r), r.Remark)
		}
	})
}

func TestConsumer_ExpiryAndMalformed(t *testing.T) {
	c := testcluster.New(t, 1, testcluster.Quiet(),
		testcluster.WithOptions(func(i int, o *node.Options) { o.ClientExpiry = time.Second }),
		testcluster.WithConfig(func(i int, cfg *node.Config) { cfg.AutoCreateSubscriptionGroup = false }))
	l := c.Leader(t)
	cl := c.Client()
	code := func(r *transport.Command) transport.ResponseCode { return transport.ResponseCode(r.Code) }

	t.Run("Expiry", func(t *testing.T) {
		c1, c2 := newFakeConsumer(t, "10.0.0.1@one"), newFakeConsumer(t, "10.0.0.2@two")
		c1.heartbeat(t, l.Addr(), "cg-exp", c.Topic, "*")
		c2.heartbeat(t, l.Addr(), "cg-exp", c.Topic, "*")
		if got := consumerList(t, cl, l.Addr(), "cg-exp"); len(got) != 2 {
			t.Fatalf("list %q", got)
		}
		c1.clear()
		// c1 keeps heartbeating, c2 goes silent (its connection stays open).
		testcluster.Eventually(t, 15*time.Second, func() error {
			c1.heartbeat(t, l.Addr(), "cg-exp", c.Topic, "*")
			if got := consumerList(t, cl, l.Addr(), "cg-exp"); !slices.Equal(got, []string{c1.id}) {
				return fmt.Errorf("list %q", got)
			}
			if len(c1.received(transport.NotifyConsumerIDsChanged)) == 0 {
				return fmt.Errorf("no notification")
			}
			return nil
		})
	})

	t.Run("Malformed", func(t *testing.T) {
		cases := []struct {
			name   string
			req    *transport.Command
			code   transport.ResponseCode
			remark string
		}{
			{"heartbeat not json", transport.NewRequest(transport.HeartBeat, nil, []byte("{")), transport.SystemError, "heartbeat body"},
			{"heartbeat no clientID", transport.NewRequest(transport.HeartBeat, nil, []byte(`{"consumerDataSet":[]}`)), transport.SystemError, "clientID"},
			{"heartbeat codeSet word", transport.NewRequest(transport.HeartBeat, nil, []byte(`{"clientID":"x","consumerDataSet":[{"groupName":"g","subscriptionDataSet":[{"topic":"T","codeSet":["abc"]}]}]}`)), transport.SystemError, "heartbeat body"},
			{"heartbeat no group", transport.NewRequest(transport.HeartBeat, nil, []byte(`{"clientID":"x","consumerDataSet":[{"groupName":""}]}`)), transport.SystemError, "groupName"},
			{"query no queueId", transport.NewRequest(transport.QueryConsumerOffset, map[string]string{"consumerGroup": "g", "topic": c.Topic}, nil), transport.SystemError, "queueId"},
			{"query bad queueId", transport.NewRequest(transport.QueryConsumerOffset, map[string]string{"consumerGroup": "g", "topic": c.Topic, "queueId": "x"}, nil), transport.SystemError, "queueId"},
			{"query no group", transport.NewRequest(transport.QueryConsumerOffset, map[string]string{"topic": c.Topic, "queueId": "0"}, nil), transport.SystemError, "consumerGroup"},
			{"max offset illegal topic", transport.NewRequest(transport.GetMaxOffset, map[string]string{"topic": "a b", "queueId": "0"}, nil), transport.SystemError, "topic"},
			{"update no commitOffset", transport.NewRequest(transport.UpdateConsumerOffset, map[string]string{"consumerGroup": "g", "topic": c.Topic, "queueId": "0"}, nil), transport.SystemError, "commitOffset"},
			{"search no timestamp", transport.NewRequest(transport.SearchOffsetByTimestamp, map[string]string{"topic": c.Topic, "queueId": "0"}, nil), transport.SystemError, "timestamp"},
			{"lock no clientId", transport.NewRequest(transport.LockBatchMQ, nil, []byte(`{"consumerGroup":"g","mqSet":[]}`)), transport.SystemError, "clientId"},
			{"lock not json", transport.NewRequest(transport.LockBatchMQ, nil, []byte(`[`)), transport.SystemError, "lock body"},
			{"consumer list no group", transport.NewRequest(transport.GetConsumerListByGroup, nil, nil), transport.SystemError, "consumerGroup"},
			{"reset bad timestamp", transport.NewRequest(transport.InvokeBrokerToResetOffset, map[string]string{"topic": c.Topic, "group": "g", "timestamp": "soon"}, nil), transport.SystemError, "timestamp"},
			{"pull unknown group", pullReq(c.Topic, 0, 0, 32, 0, "*"), transport.SubscriptionGroupNotExist, "cg"},
			{"consumer connections offline", transport.NewRequest(transport.GetConsumerConnectionList, map[string]string{"consumerGroup": "nobody"}, nil), transport.ConsumerNotOnline, "nobody"},
		}
		for _, tc := range cases {
			r := invoke(t, cl, l.Addr(), tc.req)
			if code(r) != tc.code || !strings.Contains(r.Remark, tc.remark) {
				t.Errorf("%s: %s %q, want %s naming %q", tc.name, code(r), r.Remark, tc.code, tc.remark)
			}
		}
		// An empty queue with nothing committed: SUCCESS 0 (Java's rule).
		if rc, off := queryOffset(t, cl, l.Addr(), "g", c.Topic, 3); rc != transport.Success || off != 0 {
			t.Fatalf("query on empty queue: %s %d", rc, off)
		}
	})
}

// TestConsumer_OffsetHandOver: offsets recorded on a leader but not yet proposed (the flush
// interval is long here) are handed to the next leader when leadership moves.
func TestConsumer_OffsetHandOver(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Quiet(), testcluster.WithOptions(func(i int, o *node.Options) {
		o.OffsetFlushInterval = time.Hour
	}))
	cl := c.Client()
	l := c.Leader(t)
	updateOffset(t, cl, l.Addr(), "cg-handover", c.Topic, 1, 42)
	testcluster.Eventually(t, 5*time.Second, func() error {
		if off, ok := l.ConsumerOffset("cg-handover", c.Topic, 1); !ok || off != 42 {
			return fmt.Errorf("leader has %d %v", off, ok)
		}
		return nil
	})
	if _, ok := l.FSM().Offset("cg-handover", c.Topic, 1); ok {
		t.Fatal("offset proposed before the flush interval")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.TransferLeadership(ctx, ""); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		nl := c.Leader(t)
		if nl == l {
			return fmt.Errorf("leadership did not move")
		}
		if off, ok := nl.ConsumerOffset("cg-handover", c.Topic, 1); !ok || off != 42 {
			return fmt.Errorf("new leader %s has %d %v", nl.ServerID(), off, ok)
		}
		return nil
	})
	// Graceful Close proposes what is pending.
	nl := c.Leader(t)
	if err := nl.FlushOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	for _, nd := range c.Live() {
		testcluster.Eventually(t, 5*time.Second, func() error {
			if off, ok := nd.FSM().Offset("cg-handover", c.Topic, 1); !ok || off != 42 {
				return fmt.Errorf("%s has %d %v", nd.ServerID(), off, ok)
			}
			return nil
		})
	}
}
