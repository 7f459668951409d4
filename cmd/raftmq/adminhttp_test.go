package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/transport"
)

func httpGet(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// TestAdminHTTPMetrics checks /metrics of a broker node after a send and a pull: Prometheus
// text with raft's, the broker's and the runtime's metrics; the old JSON with ?format=json.
func TestAdminHTTPMetrics(t *testing.T) {
	sinks := setupMetrics()
	c := testcluster.New(t, 3, testcluster.Quiet())
	leader := c.Leader(t)
	srv, err := startAdminHTTP("127.0.0.1:0", brokerHealth{leader}, sinks, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.addr

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	send := transport.NewRequest(transport.SendMessage, map[string]string{
		"producerGroup": "pg", "topic": c.Topic, "queueId": "2", "sysFlag": "0",
		"bornTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10), "flag": "0", "properties": "",
		"reconsumeTimes": "0", "batch": "false",
	}, []byte("metrics test"))
	resp, err := c.Client().Invoke(ctx, leader.Addr(), send)
	if err != nil || resp.Code != int16(transport.Success) {
		t.Fatalf("send: %v %v", resp, err)
	}
	pull := transport.NewRequest(transport.PullMessage, map[string]string{
		"consumerGroup": "cg", "topic": c.Topic, "queueId": "2", "queueOffset": "0", "maxMsgNums": "32",
		"sysFlag": "4", "commitOffset": "0", "suspendTimeoutMillis": "0", "subscription": "*", "subVersion": "0",
		"expressionType": "TAG",
	}, nil)
	resp, err = c.Client().Invoke(ctx, leader.Addr(), pull)
	if err != nil || resp.Code != int16(transport.Success) {
		t.Fatalf("pull: %v %v", resp, err)
	}

	code, ct, body := httpGet(t, base+"/metrics")
	if code != http.StatusOK || ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("/metrics: %d %q", code, ct)
	}
	line := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? \S+$`)
	for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if !strings.HasPrefix(l, "# HELP ") && !strings.HasPrefix(l, "# TYPE ") && !line.MatchString(l) {
			t.Errorf("not an exposition line: %q", l)
		}
	}
	self := leader.ServerID()
	for _, want := range []*regexp.Regexp{
		// raft's own metrics
		regexp.MustCompile(`(?m)^# TYPE raftmq_raft_commitTime summary$`),
		regexp.MustCompile(`(?m)^# HELP raftmq_raft_commitTime Milliseconds`),
		regexp.MustCompile(`(?m)^raftmq_raft_commitTime_count [1-9]`),
		regexp.MustCompile(`(?m)^raftmq_raft_apply [1-9]`),
		// the broker's, after the send and the pull
		regexp.MustCompile(`(?m)^# TYPE raftmq_broker_put_messages_total counter$`),
		regexp.MustCompile(`(?m)^raftmq_broker_put_messages_total\{topic="TestTopic"\} [1-9]`),
		regexp.MustCompile(`(?m)^raftmq_broker_put_bytes_total\{topic="TestTopic"\} [1-9]`),
		regexp.MustCompile(`(?m)^raftmq_broker_send_latency_seconds_count [1-9]`),
		regexp.MustCompile(`(?m)^raftmq_broker_send_latency_seconds\{quantile="0.99"\} \d`),
		regexp.MustCompile(`(?m)^raftmq_broker_get_messages_total\{topic="TestTopic"\} [1-9]`),
		regexp.MustCompile(`(?m)^raftmq_broker_pull_requests_total\{code="SUCCESS"\} [1-9]`),
		regexp.MustCompile(`(?m)^raftmq_broker_pull_latency_seconds_count [1-9]`),
		// gauges refreshed for the scrape
		regexp.MustCompile(`(?m)^raftmq_broker_raft_state\{broker="broker-a",node="` + self + `",state="Leader"\} 1$`),
		regexp.MustCompile(`(?m)^raftmq_broker_raft_commit_index\{broker="broker-a",node="` + self + `"\} [1-9]`),
		regexp.MustCompile(`(?m)^raftmq_broker_commitlog_max_offset\{broker="broker-a",node="` + self + `"\} [1-9]`),
		regexp.MustCompile(`(?m)^raftmq_broker_commitlog_disk_ratio\{broker="broker-a",node="` + self + `"\} `),
		regexp.MustCompile(`(?m)^raftmq_broker_pull_suspended\{broker="broker-a",node="` + self + `"\} 0$`),
		// runtime and process
		regexp.MustCompile(`(?m)^go_goroutines [1-9]`),
		regexp.MustCompile(`(?m)^process_cpu_seconds_total `),
		regexp.MustCompile(`(?m)^process_resident_memory_bytes [1-9]`),
	} {
		if !want.MatchString(body) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}

	// go-metrics' in-memory view shows the last complete 10 s interval once there are two: a
	// send in the current interval appears when it completes, so look for up to 25 s.
	found := false
	for deadline := time.Now().Add(25 * time.Second); !found; time.Sleep(250 * time.Millisecond) {
		code, ct, body = httpGet(t, base+"/metrics?format=json")
		if code != http.StatusOK || ct != "application/json" {
			t.Fatalf("/metrics?format=json: %d %q", code, ct)
		}
		var summary struct {
			Counters []struct{ Name string }
		}
		if err := json.Unmarshal([]byte(body), &summary); err != nil {
			t.Fatalf("json: %v\n%s", err, body)
		}
		for _, c := range summary.Counters {
			found = found || c.Name == "raftmq.broker.put.messages.total"
		}
		if !found && time.Now().After(deadline) {
			t.Fatalf("JSON counters lack raftmq.broker.put.messages.total: %s", body)
		}
	}

	if code, _, body := httpGet(t, base+"/metrics?format=xml"); code != http.StatusBadRequest {
		t.Errorf("format=xml: %d %s", code, body)
	}
	if code, _, body := httpGet(t, base+"/livez"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/livez: %d %q", code, body)
	}
	testcluster.Eventually(t, 10*time.Second, func() error {
		if code, _, body := httpGet(t, base+"/readyz"); code != http.StatusOK {
			return fmt.Errorf("/readyz: %d %s", code, body)
		}
		return nil
	})
}

// TestNamesrvAdminHTTP checks a name server's /metrics (startNamesrvAdminHTTP).
func TestNamesrvAdminHTTP(t *testing.T) {
	c := testcluster.New(t, 1, testcluster.Quiet())
	srv, err := startNamesrvAdminHTTP("127.0.0.1:0", c.NS, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	testcluster.Eventually(t, 10*time.Second, func() error {
		code, _, body := httpGet(t, "http://"+srv.addr+"/metrics")
		want := `raftmq_namesrv_brokers{namesrv="` + c.NS.Addr() + `"} 1`
		if code != http.StatusOK || !strings.Contains(body, "\n"+want+"\n") || !strings.Contains(body, "\n# TYPE raftmq_namesrv_registrations_total counter\n") {
			return fmt.Errorf("/metrics %d lacks %s:\n%s", code, want, body)
		}
		return nil
	})
	if code, _, body := httpGet(t, "http://"+srv.addr+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: %d %s", code, body)
	}
}
