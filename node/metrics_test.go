package node_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	metrics "github.com/armon/go-metrics"

	"github.com/raftmq/raftmq/internal/promsink"
	"github.com/raftmq/raftmq/internal/testcluster"
	"github.com/raftmq/raftmq/node"
	"github.com/raftmq/raftmq/transport"
)

// installSink makes sinks the global go-metrics sink (service name "raftmq", as cmd/raftmq)
// until the test ends.
func installSink(tb testing.TB, sink metrics.MetricSink) {
	tb.Helper()
	cfg := metrics.DefaultConfig("raftmq")
	cfg.EnableHostname = false
	cfg.EnableRuntimeMetrics = false // its collector goroutine never stops
	if _, err := metrics.NewGlobal(cfg, sink); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		off := metrics.DefaultConfig("")
		off.EnableRuntimeMetrics = false
		_, _ = metrics.NewGlobal(off, &metrics.BlackholeSink{})
	})
}

// metricValue returns the value of the sample line starting with series (name and labels).
func metricValue(t *testing.T, sink *promsink.Sink, series string) (float64, bool) {
	t.Helper()
	var b bytes.Buffer
	if err := sink.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f, true
		}
	}
	return 0, false
}

func wantMetric(t *testing.T, sink *promsink.Sink, series string, ok func(float64) bool) {
	t.Helper()
	testcluster.Eventually(t, 10*time.Second, func() error {
		v, found := metricValue(t, sink, series)
		if !found {
			var b bytes.Buffer
			_ = sink.WriteText(&b)
			return fmt.Errorf("no series %s in\n%s", series, b.String())
		}
		if !ok(v) {
			return fmt.Errorf("%s = %v", series, v)
		}
		return nil
	})
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
func positive(v float64) bool            { return v > 0 }

func TestMetrics_SendPullAndGauges(t *testing.T) {
	sink := promsink.New(promsink.Options{})
	installSink(t, sink)
	c := testcluster.New(t, 3, testcluster.Quiet())
	leader := c.Leader(t)
	topic := c.Topic
	ctx := context.Background()

	// 5 sends to the leader and 1 through a follower (counted once, by the leader).
	for i := range 5 {
		resp, err := send(ctx, c.Client(), leader.Addr(), topic, 0, bodyOf(i))
		mustSucceed(t, resp, err)
	}
	resp, err := send(ctx, c.Client(), c.Followers()[0].Addr(), topic, 0, bodyOf(5))
	mustSucceed(t, resp, err)
	// A refused send: counted by its code.
	resp, err = send(ctx, c.Client(), leader.Addr(), "SCHEDULE_TOPIC_XXXX", 0, bodyOf(6))
	if err != nil || resp.Code != int16(transport.NoPermission) {
		t.Fatalf("send to a system topic: %v %v", resp, err)
	}

	wantMetric(t, sink, `raftmq_broker_put_messages_total{topic="TestTopic"}`, eq(6))
	wantMetric(t, sink, `raftmq_broker_put_bytes_total{topic="TestTopic"}`, func(v float64) bool { return v > 6*float64(len(bodyOf(0))) })
	wantMetric(t, sink, `raftmq_broker_send_failures_total{code="NO_PERMISSION"}`, eq(1))
	wantMetric(t, sink, `raftmq_broker_send_latency_seconds_count`, func(v float64) bool { return v >= 6 })
	wantMetric(t, sink, `raftmq_broker_send_latency_seconds{quantile="0.5"}`, positive)

	// Pulls: the 6 messages, then PULL_NOT_FOUND at the end.
	if got := pullAll(t, c.Client(), leader.Addr(), topic, 0); len(got) != 6 {
		t.Fatalf("pulled %d messages, want 6", len(got))
	}
	wantMetric(t, sink, `raftmq_broker_get_messages_total{topic="TestTopic"}`, eq(6))
	wantMetric(t, sink, `raftmq_broker_get_bytes_total{topic="TestTopic"}`, positive)
	wantMetric(t, sink, `raftmq_broker_pull_requests_total{code="SUCCESS"}`, positive)
	wantMetric(t, sink, `raftmq_broker_pull_requests_total{code="PULL_NOT_FOUND"}`, positive)

	// A held long poll shows in the gauge, and its hold is not pull latency.
	held := make(chan *transport.Command, 1)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		r, err := c.Client().Invoke(cctx, leader.Addr(), pullReq(topic, 1, 0, 32, 5*time.Second, "*"))
		if err != nil {
			t.Error(err)
		}
		held <- r
	}()
	nodeLabels := fmt.Sprintf(`{broker="broker-a",node="%s"}`, leader.ServerID())
	testcluster.Eventually(t, 10*time.Second, func() error {
		leader.ReportMetrics()
		if v, _ := metricValue(t, sink, "raftmq_broker_pull_suspended"+nodeLabels); v != 1 {
			return fmt.Errorf("suspended = %v", v)
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond)
	resp, err = send(ctx, c.Client(), leader.Addr(), topic, 1, bodyOf(7))
	mustSucceed(t, resp, err)
	if r := <-held; r == nil || r.Code != int16(transport.Success) {
		t.Fatalf("long poll reply %v", r)
	}
	leader.ReportMetrics()
	wantMetric(t, sink, "raftmq_broker_pull_suspended"+nodeLabels, eq(0))
	wantMetric(t, sink, `raftmq_broker_pull_latency_seconds{quantile="1"}`, func(v float64) bool { return v > 0 && v < 0.3 })

	// Gauges of every node.
	for _, nd := range c.Live() {
		nd.ReportMetrics()
		labels := fmt.Sprintf(`{broker="broker-a",node="%s"`, nd.ServerID())
		state, ready := "Follower", 0.0
		if nd == leader {
			state, ready = "Leader", 1
		}
		wantMetric(t, sink, "raftmq_broker_raft_state"+labels+`,state="`+state+`"}`, eq(1))
		wantMetric(t, sink, "raftmq_broker_raft_state"+labels+`,state="Candidate"}`, eq(0))
		wantMetric(t, sink, "raftmq_broker_leader_ready"+labels+"}", eq(ready))
		st, err := nd.GroupStatus()
		if err != nil {
			t.Fatal(err)
		}
		wantMetric(t, sink, "raftmq_broker_raft_term"+labels+"}", eq(float64(st.Term)))
		for _, g := range []string{"raft_last_index", "raft_commit_index", "raft_applied_index", "fsm_applied_index", "commitlog_max_offset"} {
			wantMetric(t, sink, "raftmq_broker_"+g+labels+"}", positive)
		}
		wantMetric(t, sink, "raftmq_broker_raft_lag"+labels+"}", func(v float64) bool { return v >= 0 })
		wantMetric(t, sink, "raftmq_broker_commitlog_min_offset"+labels+"}", eq(0))
		wantMetric(t, sink, "raftmq_broker_commitlog_disk_ratio"+labels+"}", func(v float64) bool { return v > 0 && v <= 1 })
	}
}

// Raft reports into the same global sink.
func TestMetrics_RaftMetricsInSameSink(t *testing.T) {
	sink := promsink.New(promsink.Options{})
	installSink(t, sink)
	c := testcluster.New(t, 1, testcluster.Quiet())
	sendRetry(t, c, 0, bodyOf(1))
	wantMetric(t, sink, "raftmq_raft_apply", positive)
	wantMetric(t, sink, "raftmq_raft_commitTime_count", positive)
	wantMetric(t, sink, `raftmq_broker_put_messages_total{topic="TestTopic"}`, eq(1))
}

func TestMetrics_Descriptions(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range node.MetricDescriptions() {
		k := strings.Join(d.Key, ".")
		if seen[k] || d.Help == "" || d.Key[0] != "broker" {
			t.Errorf("description %q: duplicate, empty or outside broker.*", k)
		}
		seen[k] = true
	}
}

// BenchmarkCluster_SendWithMetricSinks is BenchmarkCluster_Send3Nodes/senders64 with the
// sinks cmd/raftmq installs (in-memory for the JSON view and Prometheus) instead of
// go-metrics' default blackhole: the whole cost of raft's and raftmq's metrics.
func BenchmarkCluster_SendWithMetricSinks(b *testing.B) {
	installSink(b, metrics.FanoutSink{metrics.NewInmemSink(10*time.Second, time.Minute), promsink.New(promsink.Options{})})
	benchSend(b, 3, 64)
}
