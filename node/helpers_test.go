package node_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/raftmq/raftmq/commitlog"
	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/message"
	"github.com/raftmq/raftmq/transport"
)

func sendReq(topic string, qid int, body []byte, props string) *transport.Command {
	return transport.NewRequest(transport.SendMessage, map[string]string{
		"producerGroup": "pg", "topic": topic, "queueId": strconv.Itoa(qid), "sysFlag": "0",
		"bornTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10), "flag": "0", "properties": props,
		"reconsumeTimes": "0", "unitMode": "false", "maxReconsumeTimes": "0", "batch": "false",
		"defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
	}, body)
}

// send sends one message and returns the reply.
func send(ctx context.Context, cl *transport.Client, addr, topic string, qid int, body []byte) (*transport.Command, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return cl.Invoke(cctx, addr, sendReq(topic, qid, body, "TAGS\x01A\x02"))
}

func pullReq(topic string, qid int, offset int64, maxMsgs int, suspend time.Duration, sub string) *transport.Command {
	sys := 4
	if suspend > 0 {
		sys |= 2
	}
	return transport.NewRequest(transport.PullMessage, map[string]string{
		"consumerGroup": "cg", "topic": topic, "queueId": strconv.Itoa(qid), "queueOffset": strconv.FormatInt(offset, 10),
		"maxMsgNums": strconv.Itoa(maxMsgs), "sysFlag": strconv.Itoa(sys), "commitOffset": "0",
		"suspendTimeoutMillis": strconv.FormatInt(suspend.Milliseconds(), 10), "subscription": sub,
		"subVersion": "0", "expressionType": "TAG",
	}, nil)
}

// pullAll reads every message of topic/qid from addr (no long polling).
func pullAll(t testing.TB, cl *transport.Client, addr, topic string, qid int) []*commitlog.MessageExt {
	t.Helper()
	var out []*commitlog.MessageExt
	var off int64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cl.Invoke(ctx, addr, pullReq(topic, qid, off, 32, 0, "*"))
		cancel()
		if err != nil {
			t.Fatalf("pull %s/%d at %d from %s: %v", topic, qid, off, addr, err)
		}
		next, err := strconv.ParseInt(resp.Ext("nextBeginOffset"), 10, 64)
		if err != nil {
			t.Fatalf("pull reply without nextBeginOffset: %v", resp)
		}
		switch transport.ResponseCode(resp.Code) {
		case transport.Success:
			b := resp.Body
			for len(b) > 0 {
				m, n, err := message.DecodeRecord(b)
				if err != nil {
					t.Fatalf("decode pulled record: %v", err)
				}
				out = append(out, m)
				b = b[n:]
			}
		case transport.PullNotFound:
			return out
		case transport.PullRetryImmediately:
		default:
			t.Fatalf("pull %s/%d at %d: %s %s", topic, qid, off, transport.ResponseCode(resp.Code), resp.Remark)
		}
		off = next
	}
}

func mustSucceed(t testing.TB, resp *transport.Command, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != int16(transport.Success) {
		t.Fatalf("reply %s: %s", transport.ResponseCode(resp.Code), resp.Remark)
	}
}

func bodyOf(i int) []byte { return []byte(fmt.Sprintf("message-%06d", i)) }

// sendRetry sends body to the cluster's leader until it is acknowledged (a spurious election
// under load fails a send; retrying may store it twice, which callers must allow).
func sendRetry(t testing.TB, c *testcluster.Cluster, q int, body []byte) *transport.Command {
	t.Helper()
	var resp *transport.Command
	testcluster.Eventually(t, 20*time.Second, func() error {
		r, err := send(context.Background(), c.Client(), c.Leader(t).Addr(), c.Topic, q, body)
		if err != nil {
			return err
		}
		if r.Code != int16(transport.Success) {
			return fmt.Errorf("%s: %s", transport.ResponseCode(r.Code), r.Remark)
		}
		resp = r
		return nil
	})
	return resp
}
