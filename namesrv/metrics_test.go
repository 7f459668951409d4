package namesrv

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metrics "github.com/armon/go-metrics"

	"github.com/raftmq/raftmq/internal/promsink"
	"github.com/raftmq/raftmq/transport"
)

func TestMetrics(t *testing.T) {
	sink := promsink.New(promsink.Options{})
	cfg := metrics.DefaultConfig("raftmq")
	cfg.EnableHostname = false
	cfg.EnableRuntimeMetrics = false
	if _, err := metrics.NewGlobal(cfg, sink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		off := metrics.DefaultConfig("")
		off.EnableRuntimeMetrics = false
		_, _ = metrics.NewGlobal(off, &metrics.BlackholeSink{})
	})
	text := func() string {
		var b bytes.Buffer
		if err := sink.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}

	s := startServer(t, func(c *Config) {
		c.ScanNotActiveBrokerInterval = 5 * time.Millisecond
		c.BrokerChannelExpiredTime = time.Second
	})
	c := newClient(t)
	if _, err := RegisterBroker(ctxT(t), c, s.Addr(), brokerReq("b1", "a:1", 0, 1, tc("T1", 4), tc("T2", 4))); err != nil {
		t.Fatal(err)
	}
	raw(t, c, s.Addr(), transport.RegisterBroker, map[string]string{"brokerName": "b1"}, nil) // malformed
	raw(t, c, s.Addr(), transport.GetRouteInfoByTopic, map[string]string{"topic": "T1"}, nil)
	raw(t, c, s.Addr(), transport.GetRouteInfoByTopic, map[string]string{"topic": "T1"}, nil)
	raw(t, c, s.Addr(), transport.GetRouteInfoByTopic, map[string]string{"topic": "nope"}, nil)
	gauge := `{namesrv="` + s.Addr() + `"}`
	waitFor(t, "gauges of the registered broker", func() bool {
		out := text()
		return strings.Contains(out, "\nraftmq_namesrv_brokers"+gauge+" 1\n") && strings.Contains(out, "\nraftmq_namesrv_topics"+gauge+" 2\n")
	})
	out := text()
	for _, want := range []string{
		`raftmq_namesrv_registrations_total{result="ok"} 1`,
		`raftmq_namesrv_registrations_total{result="error"} 1`,
		`raftmq_namesrv_route_queries_total{result="found"} 2`,
		`raftmq_namesrv_route_queries_total{result="not_found"} 1`,
	} {
		if !strings.Contains(out, "\n"+want+"\n") {
			t.Errorf("lacks %q in\n%s", want, out)
		}
	}
	waitFor(t, "the broker's expiry counted", func() bool {
		out := text()
		return strings.Contains(out, "\nraftmq_namesrv_brokers_expired_total 1\n") && strings.Contains(out, "\nraftmq_namesrv_brokers"+gauge+" 0\n")
	})
	for _, d := range MetricDescriptions() {
		if d.Help == "" || d.Key[0] != "namesrv" {
			t.Errorf("description %v", d)
		}
	}
}
