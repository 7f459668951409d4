package node_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/node"
	"github.com/raftmq/raftmq/transport"
)

func invoke(t testing.TB, cl *transport.Client, addr string, req *transport.Command) *transport.Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cl.Invoke(ctx, addr, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func batchBody(bodies ...string) []byte {
	var out []byte
	for _, b := range bodies {
		rec := make([]byte, 22+len(b))
		binary.BigEndian.PutUint32(rec, uint32(len(rec)))
		binary.BigEndian.PutUint32(rec[16:], uint32(len(b)))
		copy(rec[20:], b)
		out = append(out, rec...)
	}
	return out
}

func TestHandlers_SendValidationAndPullReplies(t *testing.T) {
	c := testcluster.New(t, 1, testcluster.Quiet())
	l := c.Leader(t)
	cl := c.Client()
	code := func(r *transport.Command) transport.ResponseCode { return transport.ResponseCode(r.Code) }

	noTopic := sendReq("NoSuchTopic", 0, []byte("x"), "")
	delete(noTopic.ExtFields, "defaultTopic") // with TBW102 named, autoCreateTopicEnable would create it
	if r := invoke(t, cl, l.Addr(), noTopic); code(r) != transport.TopicNotExist {
		t.Fatalf("unknown topic: %s %s", code(r), r.Remark)
	}
	if r := invoke(t, cl, l.Addr(), sendReq(c.Topic, 9, []byte("x"), "")); code(r) != transport.SystemError || !strings.Contains(r.Remark, "queue") {
		t.Fatalf("queue out of range: %s %s", code(r), r.Remark)
	}
	big := make([]byte, l.Config().MaxMessageSize+1)
	if r := invoke(t, cl, l.Addr(), sendReq(c.Topic, 0, big, "")); code(r) != transport.MessageIllegal || !strings.Contains(r.Remark, strconv.Itoa(l.Config().MaxMessageSize)) {
		t.Fatalf("too large: %s %s", code(r), r.Remark)
	}
	if r := invoke(t, cl, l.Addr(), sendReq(c.Topic, 0, nil, "")); code(r) != transport.MessageIllegal {
		t.Fatalf("empty body: %s %s", code(r), r.Remark)
	}
	if r := invoke(t, cl, l.Addr(), sendReq(c.Topic, 0, []byte("x"), "bad-props")); code(r) != transport.MessageIllegal {
		t.Fatalf("bad properties: %s %s", code(r), r.Remark)
	}

	// SEND_MESSAGE_V2 with short keys, all of them as the official clients send them
	// (k is unitMode, l is maxReconsumeTimes).
	v2 := transport.NewRequest(transport.SendMessageV2, map[string]string{"a": "pg", "b": c.Topic, "e": "2", "f": "0",
		"g": "1", "h": "0", "i": "TAGS\x01B\x02", "j": "0", "k": "false", "l": "16", "m": "false"}, []byte("v2"))
	if r := invoke(t, cl, l.Addr(), v2); code(r) != transport.Success || r.Ext("queueOffset") != "0" {
		t.Fatalf("v2: %s %s %v", code(r), r.Remark, r.ExtFields)
	}
	// SEND_BATCH_MESSAGE: consecutive offsets, comma-joined ids, first offset.
	batch := transport.NewRequest(transport.SendBatchMessage, map[string]string{"a": "pg", "b": c.Topic, "e": "2", "f": "0",
		"g": "1", "h": "0", "i": "", "j": "0", "k": "false", "l": "16", "m": "true"}, batchBody("b1", "b2", "b3"))
	r := invoke(t, cl, l.Addr(), batch)
	if code(r) != transport.Success || r.Ext("queueOffset") != "1" || len(strings.Split(r.Ext("msgId"), ",")) != 3 {
		t.Fatalf("batch: %s %s %v", code(r), r.Remark, r.ExtFields)
	}
	got := pullAll(t, cl, l.Addr(), c.Topic, 2)
	if len(got) != 4 || string(got[0].Body) != "v2" || string(got[3].Body) != "b3" || got[3].QueueOffset != 3 {
		t.Fatalf("pulled %d messages", len(got))
	}

	// Tag filtering by the request's subscription: filtered entries are skipped.
	r = invoke(t, cl, l.Addr(), pullReq(c.Topic, 2, 0, 32, 0, "A || C"))
	if code(r) != transport.PullRetryImmediately || r.Ext("nextBeginOffset") != "4" {
		t.Fatalf("filtered pull: %s next=%s", code(r), r.Ext("nextBeginOffset"))
	}
	r = invoke(t, cl, l.Addr(), pullReq(c.Topic, 2, 0, 32, 0, "B"))
	if code(r) != transport.Success || r.Ext("nextBeginOffset") != "4" || len(r.Body) > 200 {
		t.Fatalf("tag B pull: %s next=%s, %d body bytes", code(r), r.Ext("nextBeginOffset"), len(r.Body))
	}
	// Status mapping, and every reply carries the four offsets.
	for _, tc := range []struct {
		q      int
		off    int64
		want   transport.ResponseCode
		next   string
		suspnd time.Duration
	}{
		{2, 4, transport.PullNotFound, "4", 0},
		{2, 4, transport.PullNotFound, "4", 50 * time.Millisecond}, // held, then answered
		{2, 9, transport.PullOffsetMoved, "4", 0},
		{3, 0, transport.PullNotFound, "0", 0},
		{3, 5, transport.PullOffsetMoved, "0", 0},
	} {
		r := invoke(t, cl, l.Addr(), pullReq(c.Topic, tc.q, tc.off, 32, tc.suspnd, "*"))
		if code(r) != tc.want || r.Ext("nextBeginOffset") != tc.next {
			t.Errorf("pull q%d@%d: %s next=%s, want %s next=%s", tc.q, tc.off, code(r), r.Ext("nextBeginOffset"), tc.want, tc.next)
		}
		for _, k := range []string{"nextBeginOffset", "minOffset", "maxOffset", "suggestWhichBrokerId"} {
			if r.Ext(k) == "" {
				t.Errorf("pull reply without %s", k)
			}
		}
	}
	sql := pullReq(c.Topic, 0, 0, 32, 0, "a > 1")
	sql.ExtFields["expressionType"] = "SQL92"
	if r := invoke(t, cl, l.Addr(), sql); code(r) != transport.SubscriptionParseFailed {
		t.Fatalf("SQL92: %s", code(r))
	}
	if r := invoke(t, cl, l.Addr(), pullReq("NoSuchTopic", 0, 0, 32, 0, "*")); code(r) != transport.TopicNotExist {
		t.Fatalf("pull unknown topic: %s", code(r))
	}
}

// A follower that knows no leader answers writes at once with a retriable error.
func TestHandlers_FollowerWithoutLeaderAnswersAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster scenario")
	}
	c := testcluster.New(t, 3, testcluster.Quiet())
	l := c.Leader(t)
	f := c.Followers()[0]
	c.Partition(c.Index(f))
	testcluster.Eventually(t, 10*time.Second, func() error {
		if _, id := f.Raft().LeaderWithID(); id != "" {
			return strconvErr("follower still knows leader " + string(id))
		}
		return nil
	})
	start := time.Now()
	r := invoke(t, c.Client(), f.Addr(), sendReq(c.Topic, 0, []byte("x"), ""))
	if transport.ResponseCode(r.Code) != transport.ServiceNotAvailable || time.Since(start) > 2*time.Second {
		t.Fatalf("cut-off follower: %s %q after %v", transport.ResponseCode(r.Code), r.Remark, time.Since(start))
	}
	c.Heal()
	_ = l
	c.EnsureSame(t)
}

type strconvErr string

func (e strconvErr) Error() string { return string(e) }

// A full disk refuses sends with a remark naming the ratio; the rest keeps working.
func TestHandlers_DiskFullRefusesSends(t *testing.T) {
	var usage atomic.Uint64 // percent
	usage.Store(10)
	c := testcluster.New(t, 1, testcluster.Quiet(), testcluster.WithOptions(func(_ int, o *node.Options) {
		o.DiskUsage = func(string) (float64, error) { return float64(usage.Load()) / 100, nil }
		o.DiskCheckInterval = 10 * time.Millisecond
	}))
	l := c.Leader(t)
	r := invoke(t, c.Client(), l.Addr(), sendReq(c.Topic, 0, []byte("fits"), ""))
	if transport.ResponseCode(r.Code) != transport.Success {
		t.Fatalf("send: %s %s", transport.ResponseCode(r.Code), r.Remark)
	}
	usage.Store(99)
	stored := 1 // sends accepted before the guard read the full disk (it reads at most every 50 ms)
	testcluster.Eventually(t, 5*time.Second, func() error {
		r := invoke(t, c.Client(), l.Addr(), sendReq(c.Topic, 0, []byte("full"), ""))
		if transport.ResponseCode(r.Code) == transport.Success {
			stored++
		}
		if transport.ResponseCode(r.Code) != transport.ServiceNotAvailable || !strings.Contains(r.Remark, "disk") {
			return fmt.Errorf("send on a full disk: %s %q", transport.ResponseCode(r.Code), r.Remark)
		}
		t.Logf("full disk remark: %s", r.Remark)
		return nil
	})
	// Refused for good: nothing more is stored, and reads go on.
	for range 3 {
		if r := invoke(t, c.Client(), l.Addr(), sendReq(c.Topic, 0, []byte("full"), "")); transport.ResponseCode(r.Code) != transport.ServiceNotAvailable {
			t.Fatalf("send on a full disk after the guard saw it: %s %q", transport.ResponseCode(r.Code), r.Remark)
		}
	}
	if got := pullAll(t, c.Client(), l.Addr(), c.Topic, 0); len(got) != stored {
		t.Fatalf("pulled %d messages from a full broker, want the %d accepted", len(got), stored)
	}
}

func TestNode_AppendGoAPI(t *testing.T) {
	c := testcluster.New(t, 1, testcluster.Quiet())
	l := c.Leader(t)
	ctx := context.Background()
	res, err := l.Append(ctx, []*commitlog.Message{
		{Topic: c.Topic, QueueID: 3, Body: []byte("a")},
		{Topic: c.Topic, QueueID: 3, Body: []byte("b")},
	})
	if err != nil || len(res) != 2 || res[0].QueueOffset != 0 || res[1].QueueOffset != 1 || res[0].MsgID() == "" {
		t.Fatalf("Append: %v %+v", err, res)
	}
	if _, err := l.Append(ctx, []*commitlog.Message{{Topic: c.Topic, QueueID: 3}}); !errors.Is(err, commitlog.ErrEmptyBody) {
		t.Fatalf("Append empty body: %v", err)
	}
	if got := pullAll(t, c.Client(), l.Addr(), c.Topic, 3); len(got) != 2 || got[0].StoreHost.String() != l.Addr() {
		t.Fatalf("pulled %d, store host %v", len(got), got)
	}
}

// The snapshot fetcher reads whole records from a peer, and finds peers through the name
// server when the member table does not know them.
func TestFetcher_ReadsFromPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster scenario")
	}
	c := testcluster.New(t, 3, testcluster.Quiet())
	l := c.Leader(t)
	for i := range 12 {
		sendRetry(t, c, i%4, bodyOf(i))
	}
	c.WaitApplied(t, l.Raft().AppliedIndex())
	f := c.Followers()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := f.FetchCommitLogForTest(ctx, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	if err := l.Store().CopyRange(&want, 0, l.Store().MaxPhysOffset()); err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		t.Fatalf("fetched %d bytes, the leader holds %d", len(got), want.Len())
	}
	// Whole records only when the limit falls inside one.
	part, err := f.FetchCommitLogForTest(ctx, 0, 150)
	if err != nil {
		t.Fatal(err)
	}
	m, n, err := message.DecodeRecord(part)
	if err != nil || n != len(part) {
		t.Fatalf("partial fetch of %d bytes: %v (record %d)", len(part), err, n)
	}
	// BORNHOST is the sender's end of the TCP connection.
	if !m.BornHost.Addr().IsLoopback() || !m.BornHost.Addr().Is4() || m.BornHost.Port() == 0 {
		t.Fatalf("born host %v, want the test client's 127.0.0.1:port", m.BornHost)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		_, ns := f.FetchCandidatesForTest(ctx)
		if len(ns) != 2 || ns[0] != l.Addr() {
			return fmt.Errorf("name server candidates %v, leader %s", ns, l.Addr())
		}
		return nil
	})
}

// A follower that has not applied up to the requested offset answers NOT_FOUND (the consumer
// asks again) rather than OFFSET_MOVED, and a held pull on it wakes when it catches up.
func TestPull_LaggingFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster scenario")
	}
	c := testcluster.New(t, 3, testcluster.Quiet())
	l := c.Leader(t)
	c.WaitApplied(t, l.Raft().AppliedIndex())
	f := c.Followers()[0]
	c.Partition(c.Index(f))
	for i := range 3 {
		sendRetry(t, c, 1, bodyOf(i))
	}
	code := func(r *transport.Command) transport.ResponseCode { return transport.ResponseCode(r.Code) }
	r := invoke(t, c.Client(), f.Addr(), pullReq(c.Topic, 1, 2, 32, 0, "*"))
	if code(r) != transport.PullNotFound || r.Ext("nextBeginOffset") != "2" {
		t.Fatalf("lagging follower, empty queue: %s next=%s", code(r), r.Ext("nextBeginOffset"))
	}
	// The leader answers OFFSET_MOVED for an offset past its end.
	r = invoke(t, c.Client(), c.Leader(t).Addr(), pullReq(c.Topic, 1, 9, 32, 0, "*"))
	if code(r) != transport.PullOffsetMoved || r.Ext("nextBeginOffset") != "3" {
		t.Fatalf("leader, offset past end: %s next=%s", code(r), r.Ext("nextBeginOffset"))
	}
	done := make(chan *transport.Command, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		resp, err := c.Client().Invoke(ctx, f.Addr(), pullReq(c.Topic, 1, 0, 32, 10*time.Second, "*"))
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	c.Heal()
	select {
	case r := <-done:
		// The three sends are separate Raft entries: the follower may wake the pull after
		// applying only the first of them, and answers with what it has.
		if r == nil || code(r) != transport.Success || r.Ext("nextBeginOffset") == "0" {
			t.Fatalf("held pull on the follower: %v", r)
		}
		next := r.Ext("nextBeginOffset")
		c.WaitApplied(t, l.Raft().AppliedIndex())
		if next != "3" {
			r = invoke(t, c.Client(), f.Addr(), pullReq(c.Topic, 1, mustInt64(t, next), 32, 0, "*"))
			if code(r) != transport.Success || r.Ext("nextBeginOffset") != "3" {
				t.Fatalf("follower after catching up, from %s: %s next=%s", next, code(r), r.Ext("nextBeginOffset"))
			}
		}
	case <-time.After(12 * time.Second):
		t.Fatal("held pull on the follower not woken by its catching up")
	}
	c.EnsureSame(t)
}

// The commit bit of a pull stores the consumer's offset through Raft on every replica.
func TestPull_CommitOffsetBit(t *testing.T) {
	c := testcluster.New(t, 1, testcluster.Quiet())
	l := c.Leader(t)
	req := pullReq(c.Topic, 2, 0, 32, 0, "*")
	req.ExtFields["sysFlag"] = "3"
	req.ExtFields["commitOffset"] = "7"
	invoke(t, c.Client(), l.Addr(), req)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.FlushOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	if off, ok := l.FSM().Offset("cg", c.Topic, 2); !ok || off != 7 {
		t.Fatalf("offset %d %v, want 7", off, ok)
	}
}

func mustInt64(t testing.TB, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%q is not an int64: %v", s, err)
	}
	return v
}
