package node_test

// Tests of the message flows (send.go, retry.go, delay.go, tx.go) through the transport against
// in-process clusters.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/node"
	"github.com/raftmq/raftmq/transport"
)

func codeOf(r *transport.Command) transport.ResponseCode { return transport.ResponseCode(r.Code) }

// storedMessages reads every record of topic/qid from a node's own commitlog.
func storedMessages(t testing.TB, nd *node.Node, topic string, qid int32) []*commitlog.MessageExt {
	t.Helper()
	var out []*commitlog.MessageExt
	var off int64
	for {
		res, err := nd.Store().GetMessages(topic, qid, off, 64, 8<<20, nil)
		if err != nil {
			t.Fatalf("GetMessages %s/%d: %v", topic, qid, err)
		}
		for _, b := range res.Buffers {
			m, _, err := message.DecodeRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			m.Body = append([]byte(nil), m.Body...)
			out = append(out, m)
		}
		n := len(res.Buffers)
		next := res.NextBeginOffset
		res.Release()
		if n == 0 || next <= off {
			return out
		}
		off = next
	}
}

func physOf(t testing.TB, r *transport.Command) int64 {
	t.Helper()
	_, off, err := message.ParseOffsetMsgID(strings.Split(r.Ext("msgId"), ",")[0])
	if err != nil {
		t.Fatalf("msgId %q: %v", r.Ext("msgId"), err)
	}
	return off
}

func shortDelays(d time.Duration) []time.Duration {
	l := make([]time.Duration, 18)
	for i := range l {
		l[i] = d
	}
	return l
}

func TestSend_AutoCreateReservedNamesAndLimits(t *testing.T) {
	const maxSize = 2048
	c := testcluster.New(t, 3, testcluster.Quiet(), testcluster.WithConfig(func(i int, cfg *node.Config) {
		cfg.MaxMessageSize = maxSize
		cfg.DefaultTopicQueueNums = 6
		cfg.AutoCreateTopicEnable = true
	}))
	cl := c.Client()
	l := c.Leader(t)
	// The leader creates TBW102 itself: perm 7, defaultTopicQueueNums queues, on every replica.
	testcluster.Eventually(t, 10*time.Second, func() error {
		for _, nd := range c.Live() {
			tc, ok := nd.FSM().Topic("TBW102")
			if !ok {
				return fmt.Errorf("%s has no TBW102", nd.ServerID())
			}
			if tc.Perm != 7 || tc.WriteQueueNums != 6 || tc.ReadQueueNums != 6 {
				return fmt.Errorf("TBW102 = %+v", tc)
			}
		}
		return nil
	})
	// A send to an unknown topic naming TBW102 creates it with min(6, asked 4) queues, through
	// a follower too (forwarded), and the name server learns the route at once.
	f := c.Followers()[0]
	r := invoke(t, cl, f.Addr(), sendReq("AutoTopic", -1, []byte("x"), "TAGS\x01A"))
	mustSucceed(t, r, nil)
	for _, nd := range []*node.Node{l} {
		tc, ok := nd.FSM().Topic("AutoTopic")
		if !ok || tc.WriteQueueNums != 4 || tc.Perm != 6 {
			t.Fatalf("auto-created topic: %+v %v", tc, ok)
		}
	}
	route := invoke(t, cl, c.NS.Addr(), transport.NewRequest(transport.GetRouteInfoByTopic, map[string]string{"topic": "AutoTopic"}, nil))
	if codeOf(route) != transport.Success || !strings.Contains(string(route.Body), `"writeQueueNums":4`) {
		t.Fatalf("route of AutoTopic: %s %s %s", codeOf(route), route.Remark, route.Body)
	}
	// A namespaced topic name (namespace%topic) is an ordinary name here: passed through.
	mustSucceed(t, invoke(t, cl, l.Addr(), sendReq("MY_NS%Orders", 0, []byte("ns"), "")), nil)
	if _, ok := l.FSM().Topic("MY_NS%Orders"); !ok {
		t.Fatal("namespaced topic not created")
	}
	// The stored message carries the cluster name, as Java 4.9 adds it.
	msgs := storedMessages(t, l, "AutoTopic", mustAtoi(t, r.Ext("queueId")))
	if len(msgs) != 1 {
		t.Fatalf("AutoTopic holds %d messages", len(msgs))
	}
	if v, _ := message.GetProperty(msgs[0].Properties, commitlog.PropertyCluster); v != l.Config().BrokerClusterName {
		t.Fatalf("CLUSTER property %q, want %q", v, l.Config().BrokerClusterName)
	}

	// Reserved and illegal names.
	for _, tc := range []struct {
		topic string
		code  transport.ResponseCode
		word  string
	}{
		{"TBW102", transport.MessageIllegal, "TBW102"},
		{"SCHEDULE_TOPIC_XXXX", transport.NoPermission, "forbidden"},
		{"RMQ_SYS_TRANS_HALF_TOPIC", transport.NoPermission, "forbidden"},
		{"bad topic!", transport.MessageIllegal, "topic"},
		{strings.Repeat("t", 128), transport.MessageIllegal, "127"},
	} {
		r := invoke(t, cl, l.Addr(), sendReq(tc.topic, 0, []byte("x"), ""))
		if codeOf(r) != tc.code || !strings.Contains(r.Remark, tc.word) {
			t.Errorf("send to %.20q: %s %q, want %s naming %q", tc.topic, codeOf(r), r.Remark, tc.code, tc.word)
		}
	}
	// Limits: exactly maxMessageSize is stored, one byte over is refused naming the limit.
	mustSucceed(t, invoke(t, cl, l.Addr(), sendReq(c.Topic, 0, make([]byte, maxSize), "")), nil)
	r = invoke(t, cl, l.Addr(), sendReq(c.Topic, 0, make([]byte, maxSize+1), ""))
	if codeOf(r) != transport.MessageIllegal || !strings.Contains(r.Remark, "maxMessageSize") || !strings.Contains(r.Remark, strconv.Itoa(maxSize)) {
		t.Fatalf("one byte over: %s %q", codeOf(r), r.Remark)
	}
	r = invoke(t, cl, l.Addr(), sendReq(c.Topic, 0, []byte("x"), "K\x01"+strings.Repeat("v", 32768)))
	if codeOf(r) != transport.MessageIllegal || !strings.Contains(r.Remark, "32767") {
		t.Fatalf("properties over the limit: %s %q", codeOf(r), r.Remark)
	}
	// A compressed body (sysFlag bit 0) is stored as received.
	cr := sendReq(c.Topic, 1, []byte("zlib-bytes"), "")
	cr.ExtFields["sysFlag"] = "1"
	mustSucceed(t, invoke(t, cl, l.Addr(), cr), nil)
	got := storedMessages(t, l, c.Topic, 1)
	if len(got) != 1 || got[0].SysFlag&commitlog.FlagCompressed == 0 || string(got[0].Body) != "zlib-bytes" {
		t.Fatalf("compressed body: %+v", got)
	}
}

func mustAtoi(t testing.TB, s string) int32 {
	t.Helper()
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return int32(v)
}

func TestSend_AutoCreateOff(t *testing.T) {
	c := testcluster.New(t, 1, testcluster.Quiet(), testcluster.WithConfig(func(i int, cfg *node.Config) {
		cfg.AutoCreateTopicEnable = false
	}))
	l := c.Leader(t)
	r := invoke(t, c.Client(), l.Addr(), sendReq("Unknown", 0, []byte("x"), ""))
	if codeOf(r) != transport.TopicNotExist || !strings.Contains(r.Remark, "autoCreateTopicEnable=false") {
		t.Fatalf("auto-create off: %s %q", codeOf(r), r.Remark)
	}
	if _, ok := l.FSM().Topic("Unknown"); ok {
		t.Fatal("topic created with autoCreateTopicEnable=false")
	}
	if _, ok := l.FSM().Topic("TBW102"); ok {
		t.Fatal("TBW102 created with autoCreateTopicEnable=false")
	}
}

func sendBackReq(group string, offset int64, delayLevel, maxTimes int) *transport.Command {
	return transport.NewRequest(transport.ConsumerSendMsgBack, map[string]string{
		"group": group, "offset": strconv.FormatInt(offset, 10), "delayLevel": strconv.Itoa(delayLevel),
		"originMsgId": "", "originTopic": "", "unitMode": "false", "maxReconsumeTimes": strconv.Itoa(maxTimes),
	}, nil)
}

func TestRetry_ToDLQAfterMax(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Quiet(), testcluster.WithConfig(func(i int, cfg *node.Config) {
		cfg.MessageDelayLevel = shortDelays(100 * time.Millisecond)
	}))
	cl := c.Client()
	l := c.Leader(t)
	r := invoke(t, cl, l.Addr(), sendReq(c.Topic, 0, []byte("payload"), "TAGS\x01A\x02UNIQ_KEY\x01U1"))
	mustSucceed(t, r, nil)
	off := physOf(t, r)
	const group, maxTimes = "cg1", 2
	retry, dlq := "%RETRY%"+group, "%DLQ%"+group
	// Bad requests name the field.
	bad := sendBackReq(group, off, 0, maxTimes)
	delete(bad.ExtFields, "offset")
	if r := invoke(t, cl, l.Addr(), bad); codeOf(r) == transport.Success || !strings.Contains(r.Remark, "offset") {
		t.Fatalf("missing offset: %s %q", codeOf(r), r.Remark)
	}
	// Each send-back (to a follower: forwarded) goes to %RETRY% with reconsumeTimes+1; the
	// maxReconsumeTimes-th goes to the DLQ.
	for i := 0; i <= maxTimes; i++ {
		mustSucceed(t, invoke(t, cl, c.Followers()[0].Addr(), sendBackReq(group, off, 0, maxTimes)), nil)
		if i == maxTimes {
			break
		}
		var got []*commitlog.MessageExt
		testcluster.Eventually(t, 10*time.Second, func() error {
			got = storedMessages(t, c.Leader(t), retry, 0)
			if len(got) != i+1 {
				return fmt.Errorf("%s holds %d messages, want %d", retry, len(got), i+1)
			}
			return nil
		})
		m := got[i]
		if m.ReconsumeTimes != int32(i+1) || string(m.Body) != "payload" {
			t.Fatalf("retry %d: reconsumeTimes %d body %q", i, m.ReconsumeTimes, m.Body)
		}
		if v, _ := message.GetProperty(m.Properties, commitlog.PropertyRetryTopic); v != c.Topic {
			t.Fatalf("RETRY_TOPIC %q", v)
		}
		if v, _ := message.GetProperty(m.Properties, commitlog.PropertyOriginMessageID); v != "U1" {
			t.Fatalf("ORIGIN_MESSAGE_ID %q", v)
		}
		if _, ok := message.GetProperty(m.Properties, commitlog.PropertyDelayLevel); ok {
			t.Fatal("delivered retry message still has DELAY")
		}
		off = m.PhysicalOffset // the consumer fails it again
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		for _, nd := range c.Live() {
			if got := storedMessages(t, nd, dlq, 0); len(got) != 1 || got[0].ReconsumeTimes != maxTimes+1 {
				return fmt.Errorf("%s: %s holds %d", nd.ServerID(), dlq, len(got))
			}
		}
		return nil
	})
	tc, ok := c.Leader(t).FSM().Topic(dlq)
	if !ok || tc.Perm != 2 || tc.WriteQueueNums != 1 {
		t.Fatalf("DLQ topic %+v %v", tc, ok)
	}
	// A negative delay level goes to the DLQ at once.
	mustSucceed(t, invoke(t, cl, c.Leader(t).Addr(), sendBackReq(group, physOf(t, r), -1, maxTimes)), nil)
	if got := storedMessages(t, c.Leader(t), dlq, 0); len(got) != 2 {
		t.Fatalf("negative delay level: DLQ holds %d", len(got))
	}
	// A consumer's direct send to %RETRY% past the maximum lands in the DLQ too.
	d := sendReq(retry, 0, []byte("direct"), "")
	d.ExtFields["reconsumeTimes"], d.ExtFields["maxReconsumeTimes"] = "5", "3"
	mustSucceed(t, invoke(t, cl, c.Leader(t).Addr(), d), nil)
	if got := storedMessages(t, c.Leader(t), dlq, 0); len(got) != 3 || string(got[2].Body) != "direct" {
		t.Fatalf("direct retry past max: DLQ holds %d", len(got))
	}
	c.EnsureSame(t)
}

func TestDelay_DeliveredOnceOnTimeAcrossFailover(t *testing.T) {
	const delay = 2 * time.Second
	c := testcluster.New(t, 3, testcluster.Quiet(), testcluster.WithConfig(func(i int, cfg *node.Config) {
		cfg.MessageDelayLevel = shortDelays(delay)
	}))
	cl := c.Client()
	l := c.Leader(t)
	r := invoke(t, cl, l.Addr(), sendReq(c.Topic, 2, []byte("later"), "TAGS\x01A\x02UNIQ_KEY\x01D1\x02DELAY\x015"))
	mustSucceed(t, r, nil)
	if r.Ext("queueId") != "2" {
		t.Fatalf("reply queueId %q", r.Ext("queueId"))
	}
	sched := storedMessages(t, l, commitlog.ScheduleTopic, 4)
	if len(sched) != 1 {
		t.Fatalf("schedule queue 4 holds %d", len(sched))
	}
	if got := storedMessages(t, l, c.Topic, 2); len(got) != 0 {
		t.Fatal("delayed message visible at once")
	}
	// Fail the leader over before the message is due.
	killed := c.Index(l)
	c.Kill(t, killed)
	var got []*commitlog.MessageExt
	testcluster.Eventually(t, 20*time.Second, func() error {
		got = storedMessages(t, c.Leader(t), c.Topic, 2)
		if len(got) == 0 {
			return fmt.Errorf("not delivered yet")
		}
		return nil
	})
	m := got[0]
	if early := time.Duration(m.StoreTimestamp-sched[0].StoreTimestamp) * time.Millisecond; early < delay {
		t.Fatalf("delivered %v after it was stored, before its %v delay", early, delay)
	}
	if _, ok := message.GetProperty(m.Properties, commitlog.PropertyDelayLevel); ok {
		t.Fatal("DELAY not removed")
	}
	if v, _ := message.GetProperty(m.Properties, commitlog.PropertyWaitStoreMsgOK); v != "false" {
		t.Fatalf("WAIT=%q", v)
	}
	if v, _ := message.GetProperty(m.Properties, commitlog.PropertyUniqKey); v != "D1" {
		t.Fatalf("UNIQ_KEY=%q", v)
	}
	if m.PhysicalOffset == sched[0].PhysicalOffset || string(m.Body) != "later" {
		t.Fatal("not a new record")
	}
	// The killed node returns; a second delayed message goes through the new leader; every
	// replica ends with each message exactly once and the same progress.
	c.Restart(t, killed)
	mustSucceed(t, invoke(t, cl, c.Leader(t).Addr(), sendReq(c.Topic, 2, []byte("later2"), "DELAY\x015")), nil)
	testcluster.Eventually(t, 20*time.Second, func() error {
		for _, nd := range c.Live() {
			got := storedMessages(t, nd, c.Topic, 2)
			if len(got) != 2 {
				return fmt.Errorf("%s holds %d", nd.ServerID(), len(got))
			}
			if p := nd.FSM().ScheduleProgress(5); p != 2 {
				return fmt.Errorf("%s: progress %d", nd.ServerID(), p)
			}
		}
		return nil
	})
	if got := storedMessages(t, c.Leader(t), c.Topic, 2); string(got[0].Body) != "later" || string(got[1].Body) != "later2" {
		t.Fatalf("bodies %q %q", got[0].Body, got[1].Body)
	}
	c.EnsureSame(t)
}

// txProducer plays a transactional producer: it heartbeats as group txpg and answers
// CHECK_TRANSACTION_STATE with END_TRANSACTION (commit) for the keys it was told to.
type txProducer struct {
	t      *testing.T
	cl     *transport.Client
	mu     sync.Mutex
	checks map[string]int // UNIQ_KEY -> checks seen
	commit map[string]bool
}

func (p *txProducer) serve(ctx context.Context, conn *transport.Conn, req *transport.Command) *transport.Command {
	if req.RequestCode() != transport.CheckTransactionState {
		return transport.NewResponse(transport.RequestCodeNotSupported, "")
	}
	m, _, err := message.DecodeRecord(req.Body)
	if err != nil {
		p.t.Errorf("check body: %v", err)
		return nil
	}
	key, _ := message.GetProperty(m.Properties, commitlog.PropertyUniqKey)
	p.mu.Lock()
	p.checks[key]++
	commit := p.commit[key]
	p.mu.Unlock()
	if m.Topic == "RMQ_SYS_TRANS_HALF_TOPIC" || req.Ext("commitLogOffset") == "" || req.Ext("msgId") != key {
		p.t.Errorf("check request: topic %s ext %v", m.Topic, req.ExtFields)
	}
	if commit {
		end := transport.NewRequest(transport.EndTransaction, map[string]string{
			"producerGroup": "txpg", "tranStateTableOffset": req.Ext("tranStateTableOffset"),
			"commitLogOffset": req.Ext("commitLogOffset"), "commitOrRollback": "8",
			"fromTransactionCheck": "true", "msgId": key, "transactionId": req.Ext("transactionId"),
		}, nil)
		end.Flag |= transport.FlagOneway
		_ = conn.InvokeOneway(ctx, end)
	}
	return nil
}

func TestTransaction_CommitRollbackAndBackCheck(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Quiet(), testcluster.WithConfig(func(i int, cfg *node.Config) {
		cfg.TransactionTimeout = 300 * time.Millisecond
		cfg.TransactionCheckInterval = 100 * time.Millisecond
		cfg.TransactionCheckMax = 3
	}))
	p := &txProducer{t: t, checks: map[string]int{}, commit: map[string]bool{"T3": true}}
	ccfg := transport.DefaultClientConfig()
	ccfg.Handler = transport.HandlerFunc(p.serve)
	pcl, err := transport.NewClient(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pcl.Close() })
	l := c.Leader(t)
	hb, _ := json.Marshal(map[string]any{"clientID": "txclient@1", "producerDataSet": []map[string]string{{"groupName": "txpg"}}, "consumerDataSet": []any{}})
	mustSucceed(t, invoke(t, pcl, l.Addr(), transport.NewRequest(transport.HeartBeat, nil, hb)), nil)

	half := func(key string) int64 {
		req := sendReq(c.Topic, 3, []byte("tx-"+key), "TRAN_MSG\x01true\x02PGROUP\x01txpg\x02UNIQ_KEY\x01"+key)
		req.ExtFields["sysFlag"] = strconv.Itoa(commitlog.TxPreparedType)
		req.ExtFields["producerGroup"] = "txpg"
		r := invoke(t, pcl, l.Addr(), req)
		mustSucceed(t, r, nil)
		return physOf(t, r)
	}
	end := func(addr string, off int64, kind int) *transport.Command {
		return invoke(t, pcl, addr, transport.NewRequest(transport.EndTransaction, map[string]string{
			"producerGroup": "txpg", "tranStateTableOffset": "0", "commitLogOffset": strconv.FormatInt(off, 10),
			"commitOrRollback": strconv.Itoa(kind), "fromTransactionCheck": "false",
		}, nil))
	}
	o1, o2, o3 := half("T1"), half("T2"), half("T3") // o1 is 0: the first record of the log
	half("T5")                                       // never answered: rolled back after transactionCheckMax checks
	if got := storedMessages(t, l, c.Topic, 3); len(got) != 0 {
		t.Fatalf("half messages visible: %d", len(got))
	}
	mustSucceed(t, end(c.Followers()[0].Addr(), o1, 8), nil) // commit, through a follower
	mustSucceed(t, end(l.Addr(), o2, 12), nil)               // rollback
	mustSucceed(t, end(l.Addr(), o1, 8), nil)                // repeated commit: no-op
	mustSucceed(t, end(l.Addr(), o2, 8), nil)                // commit after rollback: no-op
	if r := end(l.Addr(), physOf(t, sendRetry(t, c, 0, []byte("plain"))), 8); codeOf(r) == transport.Success {
		t.Fatal("END_TRANSACTION on a non-half message accepted")
	}
	// T3 is resolved by the back-check: the producer answers commit.
	testcluster.Eventually(t, 15*time.Second, func() error {
		for _, nd := range c.Live() {
			got := storedMessages(t, nd, c.Topic, 3)
			if len(got) != 2 {
				return fmt.Errorf("%s: %d messages", nd.ServerID(), len(got))
			}
		}
		if !l.FSM().TxResolved(o3) && l.FSM().TxProgress() < 3 {
			return fmt.Errorf("T3 unresolved")
		}
		return nil
	})
	got := storedMessages(t, l, c.Topic, 3)
	if string(got[0].Body) != "tx-T1" || string(got[1].Body) != "tx-T3" {
		t.Fatalf("committed bodies %q %q", got[0].Body, got[1].Body)
	}
	for i, m := range got {
		if m.SysFlag&commitlog.TxTypeMask != commitlog.TxCommitType || m.PreparedTxOffset != []int64{o1, o3}[i] {
			t.Fatalf("committed record sysFlag %#x preparedTxOffset %d", m.SysFlag, m.PreparedTxOffset)
		}
		if _, ok := message.GetProperty(m.Properties, commitlog.PropertyRealTopic); ok {
			t.Fatal("REAL_TOPIC left on the committed message")
		}
	}
	// Progress moves over the resolved prefix on every replica; T5 is rolled back after
	// exactly transactionCheckMax unanswered checks.
	testcluster.Eventually(t, 10*time.Second, func() error {
		for _, nd := range c.Live() {
			if pr := nd.FSM().TxProgress(); pr != 4 {
				return fmt.Errorf("%s: progress %d", nd.ServerID(), pr)
			}
		}
		return nil
	})
	p.mu.Lock()
	if p.checks["T3"] == 0 || p.checks["T1"] != 0 || p.checks["T2"] != 0 || p.checks["T5"] != 3 {
		t.Errorf("checks %v: want T3 checked, T5 checked 3 times, T1 and T2 never", p.checks)
	}
	p.mu.Unlock()
	if got := storedMessages(t, l, c.Topic, 3); len(got) != 2 {
		t.Fatalf("after T5's rollback %d messages", len(got))
	}

	// Failover: a half stored before the leader dies is committed through the new leader,
	// exactly once even when the commit is repeated.
	o4 := half("T4")
	c.Kill(t, c.Index(l))
	nl := c.Leader(t)
	testcluster.Eventually(t, 10*time.Second, func() error {
		r := end(nl.Addr(), o4, 8)
		if codeOf(r) != transport.Success {
			return fmt.Errorf("%s %s", codeOf(r), r.Remark)
		}
		return nil
	})
	mustSucceed(t, end(nl.Addr(), o4, 8), nil)
	testcluster.Eventually(t, 10*time.Second, func() error {
		for _, nd := range c.Live() {
			if got := storedMessages(t, nd, c.Topic, 3); len(got) != 3 || string(got[2].Body) != "tx-T4" {
				return fmt.Errorf("%s: %d messages", nd.ServerID(), len(got))
			}
		}
		return nil
	})
	c.EnsureSame(t)
}

// rejectTransactionMessage=true refuses half messages with NO_PERMISSION, as RocketMQ does;
// ordinary sends go on.
func TestTransaction_RejectTransactionMessage(t *testing.T) {
	c := testcluster.New(t, 1, testcluster.Quiet(), testcluster.WithConfig(func(i int, cfg *node.Config) {
		cfg.RejectTransactionMessage = true
	}))
	l := c.Leader(t)
	req := sendReq(c.Topic, 0, []byte("tx"), "TRAN_MSG\x01true\x02PGROUP\x01txpg")
	req.ExtFields["sysFlag"] = strconv.Itoa(commitlog.TxPreparedType)
	req.ExtFields["producerGroup"] = "txpg"
	r := invoke(t, c.Client(), l.Addr(), req)
	if r.Code != int16(transport.NoPermission) || !strings.Contains(r.Remark, "rejectTransactionMessage") {
		t.Fatalf("half message: code %d remark %q, want NO_PERMISSION naming rejectTransactionMessage", r.Code, r.Remark)
	}
	mustSucceed(t, invoke(t, c.Client(), l.Addr(), sendReq(c.Topic, 0, []byte("plain"), "")), nil)
}
