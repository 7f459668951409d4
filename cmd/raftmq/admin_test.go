package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/transport"
	"github.com/raftmq/raftmq/transport/body"
)

func TestAdminUsageErrors(t *testing.T) {
	code, _, errOut := runArgs(t, "raftmq", "admin", "frobTopic")
	if code != 2 || !strings.Contains(errOut, `unknown admin command "frobTopic"`) {
		t.Fatalf("unknown command: code %d stderr %q", code, errOut)
	}
	code, _, errOut = runArgs(t, "raftmq", "admin", "topicRoute", "-n", "127.0.0.1:1")
	if code != 2 || !strings.Contains(errOut, "missing required flag -t") {
		t.Fatalf("missing -t: code %d stderr %q", code, errOut)
	}
	t.Setenv("NAMESRV_ADDR", "")
	code, _, errOut = runArgs(t, "raftmq", "admin", "topicList")
	if code != 2 || !strings.Contains(errOut, "-n") {
		t.Fatalf("missing -n: code %d stderr %q", code, errOut)
	}
	code, _, errOut = runArgs(t, "raftmq", "admin", "brokerStatus", "-n", "127.0.0.1:1")
	if code != 2 || !strings.Contains(errOut, "-b (broker address) or -c (cluster name)") {
		t.Fatalf("brokerStatus without target: code %d stderr %q", code, errOut)
	}
	code, _, errOut = runArgs(t, "raftmq", "admin", "resetOffsetByTime", "-n", "127.0.0.1:1", "-g", "g", "-t", "t", "-s", "yesterday")
	if code != 2 || !strings.Contains(errOut, `-s "yesterday"`) {
		t.Fatalf("bad -s: code %d stderr %q", code, errOut)
	}
	if code, _, _ := runArgs(t, "raftmq", "admin"); code != 2 {
		t.Fatalf("no command: code %d, want 2", code)
	}
}

func TestParseAdminTime(t *testing.T) {
	ts, err := parseAdminTime("2024-03-01#12:30:45:123")
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2024, 3, 1, 12, 30, 45, 123e6, time.Local)
	if !ts.Equal(want) {
		t.Fatalf("got %v want %v", ts, want)
	}
	if ts, err := parseAdminTime("1700000000000"); err != nil || ts.UnixMilli() != 1700000000000 {
		t.Fatalf("millis: %v %v", ts, err)
	}
}

// A table's header takes the widths of its rows' cells.
func TestAdminTable(t *testing.T) {
	var out strings.Builder
	a := newAdminEnv("x", &out, io.Discard)
	row := a.table("%-6s %4d  %-5v|%d\n", "#Name", "#N", "#OK", "#Z")
	row("a", 7, true, 9)
	if want := "#Name    #N  #OK  |#Z\na         7  true |9\n"; out.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", out.String(), want)
	}
}

// admin runs `raftmq admin cmd -n ns args...` and fails the test on a non-zero exit.
func admin(t *testing.T, ns, cmd string, args ...string) string {
	t.Helper()
	argv := append([]string{"raftmq", "admin", cmd, "-n", ns}, args...)
	code, out, errOut := runArgs(t, argv...)
	if code != 0 {
		t.Fatalf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(argv[1:], " "), code, out, errOut)
	}
	return out
}

func TestAdminAgainstCluster(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Quiet())
	ns := c.NS.Addr()
	leader := c.Leader(t)
	leaderAddr := leader.Addr()

	// clusterList: the leader is BID 0; followers are listed with their own ids.
	var out string
	testcluster.Eventually(t, 10*time.Second, func() error {
		out = admin(t, ns, "clusterList")
		if !strings.Contains(out, "#Cluster Name") || !strings.Contains(out, "#InTPS(LOAD)") {
			return fmt.Errorf("no header:\n%s", out)
		}
		if !regexp.MustCompile(`(?m)^TestCluster\s+broker-a\s+0\s+` + regexp.QuoteMeta(leaderAddr) + `\s`).MatchString(out) {
			return fmt.Errorf("leader %s is not BID 0:\n%s", leaderAddr, out)
		}
		if n := strings.Count(out, "broker-a"); n != 3 {
			return fmt.Errorf("%d rows for broker-a, want 3:\n%s", n, out)
		}
		return nil
	})

	if out := admin(t, ns, "topicList"); !strings.Contains(out, c.Topic+"\n") {
		t.Fatalf("topicList lacks %s:\n%s", c.Topic, out)
	}
	if out := admin(t, ns, "topicRoute", "-t", c.Topic); !strings.Contains(out, `"brokerName": "broker-a"`) || !strings.Contains(out, leaderAddr) {
		t.Fatalf("topicRoute:\n%s", out)
	}

	// sendMessage, then read it back with consumeMessage.
	out = admin(t, ns, "sendMessage", "-t", c.Topic, "-p", "hello-admin", "-k", "k1", "-c", "TagA")
	m := regexp.MustCompile(`(?m)^broker-a\s+(\d+)\s+SEND_OK\s+(\S+)\s+(\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("sendMessage output:\n%s", out)
	}
	out = admin(t, ns, "consumeMessage", "-t", c.Topic)
	if !strings.Contains(out, "BODY: hello-admin") || !strings.Contains(out, "TAGS: [TagA]") || !strings.Contains(out, "OFFSETID: "+m[3]) {
		t.Fatalf("consumeMessage lacks the message %v:\n%s", m, out)
	}
	out = admin(t, ns, "queryMsgByOffset", "-t", c.Topic, "-b", "broker-a", "-i", m[1], "-o", "0")
	if !strings.Contains(out, "hello-admin") || !strings.Contains(out, m[3]) {
		t.Fatalf("queryMsgByOffset:\n%s", out)
	}

	// consumerProgress of a group that never consumed: the whole queue is the diff.
	out = admin(t, ns, "consumerProgress", "-g", "NoSuchGroup", "-t", c.Topic)
	if !strings.Contains(out, "#Consumer Offset") || !strings.Contains(out, "Consume Diff Total: 1\n") {
		t.Fatalf("consumerProgress:\n%s", out)
	}

	// Raft administration.
	out = admin(t, ns, "groupStatus", "-b", "broker-a")
	st, err := leader.GroupStatus()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^`+st.Leader+`\s+\S+\s+`+regexp.QuoteMeta(leaderAddr)+`\s+true\s+leader$`).MatchString(out) ||
		strings.Count(out, "follower") != 2 {
		t.Fatalf("groupStatus (leader %s at %s):\n%s", st.Leader, leaderAddr, out)
	}
	var target string
	for _, mem := range st.Members {
		if mem.ServerID != st.Leader {
			target = mem.ServerID
			break
		}
	}
	admin(t, ns, "transferLeader", "-b", "broker-a", "-i", target)
	testcluster.Eventually(t, 10*time.Second, func() error {
		out, err := runAdminOut(ns, "groupStatus", "-b", "broker-a")
		if err != nil {
			return err
		}
		if !regexp.MustCompile(`(?m)^` + target + `\s.*\sleader$`).MatchString(out) {
			return fmt.Errorf("%s is not the leader yet:\n%s", target, out)
		}
		return nil
	})
	code, _, errOut := runArgs(t, "raftmq", "admin", "removeMember", "-n", ns, "-b", "no-such-group", "-i", "n9")
	if code != 1 || !strings.Contains(errOut, "no-such-group") {
		t.Fatalf("removeMember on an unknown group: code %d stderr %q", code, errOut)
	}
}

func runAdminOut(ns, cmd string, args ...string) (string, error) {
	var out, errb strings.Builder
	argv := append([]string{"raftmq", "admin", cmd, "-n", ns}, args...)
	if code := run(context.Background(), argv, &out, &errb); code != 0 {
		return out.String(), fmt.Errorf("exit %d: %s", code, errb.String())
	}
	return out.String(), nil
}

func TestAdminTopicsGroupsMessages(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Quiet())
	ns := c.NS.Addr()
	leaderAddr := c.Leader(t).Addr()
	const topic = "AdminTopic"

	out := admin(t, ns, "updateTopic", "-c", "TestCluster", "-t", topic, "-r", "2", "-w", "2")
	if !strings.Contains(out, "create topic to "+leaderAddr+" success.") || !strings.Contains(out, "readQueueNums=2, writeQueueNums=2, perm=RW-") {
		t.Fatalf("updateTopic:\n%s", out)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		out, err := runAdminOut(ns, "topicRoute", "-t", topic)
		if err != nil {
			return err
		}
		if !strings.Contains(out, `"writeQueueNums": 2`) {
			return fmt.Errorf("route:\n%s", out)
		}
		return nil
	})

	out = admin(t, ns, "sendMessage", "-t", topic, "-p", "by-key", "-k", "order-42")
	m := regexp.MustCompile(`(?m)^broker-a\s+(\d+)\s+SEND_OK\s+\S+\s+(\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("sendMessage:\n%s", out)
	}
	out = admin(t, ns, "queryMsgById", "-i", m[2])
	if !regexp.MustCompile(`(?m)^Message Body:\s+by-key$`).MatchString(out) || !regexp.MustCompile(`(?m)^Keys:\s+\[order-42\]$`).MatchString(out) {
		t.Fatalf("queryMsgById:\n%s", out)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		out, err := runAdminOut(ns, "queryMsgByKey", "-t", topic, "-k", "order-42")
		if err != nil {
			return err
		}
		if !strings.Contains(out, m[2]) {
			return fmt.Errorf("queryMsgByKey lacks %s:\n%s", m[2], out)
		}
		return nil
	})
	out = admin(t, ns, "topicStatus", "-t", topic)
	if !regexp.MustCompile(`(?m)^broker-a\s+` + m[1] + `\s+0\s+1\s+\d{4}-`).MatchString(out) {
		t.Fatalf("topicStatus (message on queue %s):\n%s", m[1], out)
	}

	// resetOffsetByTime to now moves the group past the message: no lag left.
	out = admin(t, ns, "resetOffsetByTime", "-g", "AdminGroup", "-t", topic, "-s", "now")
	if !strings.Contains(out, "#brokerName") || !regexp.MustCompile(`(?m)^broker-a\s+`+m[1]+`\s+1\s*$`).MatchString(out) {
		t.Fatalf("resetOffsetByTime:\n%s", out)
	}
	out = admin(t, ns, "consumerProgress", "-g", "AdminGroup", "-t", topic)
	if !strings.Contains(out, "Consume Diff Total: 0\n") {
		t.Fatalf("consumerProgress after reset:\n%s", out)
	}

	out = admin(t, ns, "brokerStatus", "-b", leaderAddr)
	if !regexp.MustCompile(`(?m)^brokerName\s+: broker-a$`).MatchString(out) || !regexp.MustCompile(`(?m)^raftState\s+: Leader$`).MatchString(out) {
		t.Fatalf("brokerStatus:\n%s", out)
	}
	// -b (or -a) alone needs no name server.
	t.Setenv("NAMESRV_ADDR", "")
	if code, out, errOut := runArgs(t, "raftmq", "admin", "groupStatus", "-a", leaderAddr); code != 0 || !strings.Contains(out, "(Leader)") {
		t.Fatalf("groupStatus -a without -n: code %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runArgs(t, "raftmq", "admin", "brokerStatus", "-b", leaderAddr); code != 0 || !strings.Contains(out, "broker-a") {
		t.Fatalf("brokerStatus -b without -n: code %d\n%s%s", code, out, errOut)
	}
	out = admin(t, ns, "getBrokerConfig", "-b", leaderAddr)
	if !strings.Contains(out, "============"+leaderAddr+"============") || !regexp.MustCompile(`(?m)^brokerName\s+=  broker-a$`).MatchString(out) {
		t.Fatalf("getBrokerConfig:\n%s", out)
	}

	out = admin(t, ns, "updateSubGroup", "-c", "TestCluster", "-g", "AdminGroup", "-r", "3")
	if !strings.Contains(out, "create subscription group to "+leaderAddr+" success.") || !strings.Contains(out, "retryMaxTimes=3") {
		t.Fatalf("updateSubGroup:\n%s", out)
	}
	out = admin(t, ns, "deleteSubGroup", "-c", "TestCluster", "-g", "AdminGroup")
	if !strings.Contains(out, "delete subscription group [AdminGroup] from broker ["+leaderAddr+"] success.") {
		t.Fatalf("deleteSubGroup:\n%s", out)
	}

	admin(t, ns, "deleteTopic", "-t", topic, "-c", "TestCluster")
	testcluster.Eventually(t, 10*time.Second, func() error {
		out, err := runAdminOut(ns, "topicList")
		if err != nil {
			return err
		}
		if strings.Contains(out, topic+"\n") {
			return fmt.Errorf("%s still listed:\n%s", topic, out)
		}
		return nil
	})
}

// consumerConnection, producerConnection, consumerProgress without -t (GET_CONSUME_STATS) and
// updateBrokerConfig, against a group that heartbeats to the leader as a Go client does.
func TestAdminConnectionsAndConsumeStats(t *testing.T) {
	c := testcluster.New(t, 3, testcluster.Quiet())
	ns := c.NS.Addr()
	leaderAddr := c.Leader(t).Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call := func(req *transport.Command) {
		t.Helper()
		if r, err := c.Client().Invoke(ctx, leaderAddr, req); err != nil || r.ResponseCode() != transport.Success {
			t.Fatalf("%v: %v %v", transport.RequestCode(req.Code), r, err)
		}
	}
	hb, _ := json.Marshal(body.HeartbeatData{ClientID: "10.9.9.9@admin-test",
		ProducerDataSet: []body.ProducerData{{GroupName: "AdminPG"}},
		ConsumerDataSet: []body.ConsumerData{{GroupName: "AdminCG", ConsumeType: "CONSUME_PASSIVELY", MessageModel: "CLUSTERING",
			ConsumeFromWhere: "CONSUME_FROM_LAST_OFFSET", SubscriptionDataSet: []body.SubscriptionData{{Topic: c.Topic, SubString: "TagA || TagB",
				TagsSet: []string{"TagA", "TagB"}, CodeSet: body.CodeSet{Codes: []int64{2598919, 2598920}, Quoted: true}, ExpressionType: "TAG"}}}}})
	call(transport.NewRequest(transport.HeartBeat, nil, hb))
	for q := range 2 {
		call(transport.NewRequest(transport.UpdateConsumerOffset, map[string]string{
			"consumerGroup": "AdminCG", "topic": c.Topic, "queueId": strconv.Itoa(q), "commitOffset": "0"}, nil))
	}

	out := admin(t, ns, "consumerConnection", "-g", "AdminCG")
	for _, want := range []string{
		"#ClientId                            #ClientAddr            #Language  #Version\n",
		"\n001  10.9.9.9@admin-test ",
		fmt.Sprintf("\n001  Topic: %-40s SubExpression: TagA || TagB\n", c.Topic),
		"\nConsumeType: CONSUME_PASSIVELY\nMessageModel: CLUSTERING\nConsumeFromWhere: CONSUME_FROM_LAST_OFFSET\n",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("consumerConnection lacks %q:\n%s", want, out)
		}
	}
	if code, _, errOut := runArgs(t, "raftmq", "admin", "consumerConnection", "-n", ns, "-g", "NoSuchGroup"); code != 1 || !strings.Contains(errOut, "not online") {
		t.Fatalf("consumerConnection of an absent group: code %d stderr %q", code, errOut)
	}

	out = admin(t, ns, "producerConnection", "-g", "AdminPG", "-t", c.Topic)
	if !regexp.MustCompile(`^0001  10\.9\.9\.9@admin-test\s+127\.0\.0\.1:\d+\s+\S+\s+\d+\n$`).MatchString(out) {
		t.Fatalf("producerConnection:\n%s", out)
	}
	if code, _, errOut := runArgs(t, "raftmq", "admin", "producerConnection", "-n", ns, "-g", "AdminPG"); code != 2 || !strings.Contains(errOut, "missing required flag -t") {
		t.Fatalf("producerConnection without -t: code %d stderr %q", code, errOut)
	}

	out = admin(t, ns, "consumerProgress", "-g", "AdminCG")
	if !strings.HasPrefix(out, "#Topic ") || !strings.HasSuffix(out, "\nConsume TPS: 0.00\nConsume Diff Total: 0\n") {
		t.Fatalf("consumerProgress (consume stats):\n%s", out)
	}
	for q := range 2 {
		if !regexp.MustCompile(`(?m)^` + c.Topic + `\s+broker-a\s+` + strconv.Itoa(q) + `\s+0\s+0\s+N/A\s+0\s+N/A$`).MatchString(out) {
			t.Fatalf("consumerProgress lacks queue %d:\n%s", q, out)
		}
	}

	if out := admin(t, ns, "updateBrokerConfig", "-b", leaderAddr, "-k", "defaultTopicQueueNums", "-v", "8"); out != "update broker config success, "+leaderAddr+"\n" {
		t.Fatalf("updateBrokerConfig:\n%s", out)
	}
	if code, _, errOut := runArgs(t, "raftmq", "admin", "updateBrokerConfig", "-n", ns, "-k", "k", "-v", "v"); code != 2 || !strings.Contains(errOut, "-b (broker address) or -c (cluster name)") {
		t.Fatalf("updateBrokerConfig without a target: code %d stderr %q", code, errOut)
	}
}
