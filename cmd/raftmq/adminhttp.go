package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	metrics "github.com/armon/go-metrics"

	"github.com/raftmq/raftmq/internal/promsink"
	"github.com/raftmq/raftmq/namesrv"
	"github.com/raftmq/raftmq/node"
)

// readiness is what /readyz asks.
type readiness interface{ Ready() error }

type adminServer struct {
	srv  *http.Server
	addr string // the address listened on
	done chan struct{}
}

// metricsService is go-metrics' service name: the prefix of every metric name.
const metricsService = "raftmq"

// metricsSinks are the go-metrics sinks behind /metrics: Prometheus text (the default) and
// go-metrics' in-memory aggregation, served as JSON with ?format=json.
type metricsSinks struct {
	inmem *metrics.InmemSink
	prom  *promsink.Sink
}

// raftMetricHelp is the HELP text of raft's main metrics (timings are milliseconds).
var raftMetricHelp = []struct {
	key  []string
	help string
}{
	{[]string{"raft", "apply"}, "Entries proposed through raft.Apply on the leader (each carries a group-commit batch)."},
	{[]string{"raft", "commitTime"}, "Milliseconds from dispatching an entry on the leader to its commit."},
	{[]string{"raft", "commitNumLogs"}, "Entries committed at once, last time."},
	{[]string{"raft", "fsm", "apply"}, "Milliseconds the state machine took to apply an entry."},
	{[]string{"raft", "fsm", "enqueue"}, "Milliseconds waiting to hand committed entries to the state machine."},
	{[]string{"raft", "leader", "dispatchLog"}, "Milliseconds the leader took to write entries to its own log."},
	{[]string{"raft", "leader", "lastContact"}, "Milliseconds since the leader last heard from a quorum (sampled on each check)."},
	{[]string{"raft", "rpc", "appendEntries"}, "Milliseconds a follower took to handle an AppendEntries RPC."},
	{[]string{"raft", "rpc", "appendEntries", "storeLogs"}, "Milliseconds a follower took to store the entries of an AppendEntries RPC."},
	{[]string{"raft", "state", "leader"}, "Times this node became leader."},
	{[]string{"raft", "state", "follower"}, "Times this node became follower."},
	{[]string{"raft", "state", "candidate"}, "Times this node became candidate (started an election)."},
	{[]string{"raft", "transition", "heartbeat_timeout"}, "Heartbeat timeouts after which this node started an election."},
	{[]string{"raft", "peers"}, "Voters in the leader's configuration."},
	{[]string{"raft", "snapshot", "create"}, "Milliseconds to create a snapshot."},
}

// setupMetrics installs the global go-metrics sink: a fan-out to an in-memory sink (the
// JSON view) and a Prometheus one. raft 1.7.3 reports into armon/go-metrics too, so
// /metrics shows raft's and raftmq's figures together; the Prometheus view adds the usual
// go_* and process_* metrics at scrape time.
func setupMetrics() *metricsSinks {
	s := &metricsSinks{inmem: metrics.NewInmemSink(10*time.Second, time.Minute), prom: promsink.New(promsink.Options{})}
	s.prom.AddCollector(promsink.RuntimeCollector())
	for _, d := range raftMetricHelp {
		s.prom.SetHelp(append([]string{metricsService}, d.key...), d.help)
	}
	for _, d := range node.MetricDescriptions() {
		s.prom.SetHelp(append([]string{metricsService}, d.Key...), d.Help)
	}
	for _, d := range namesrv.MetricDescriptions() {
		s.prom.SetHelp(append([]string{metricsService}, d.Key...), d.Help)
	}
	cfg := metrics.DefaultConfig(metricsService)
	cfg.EnableHostname = false
	cfg.EnableRuntimeMetrics = true
	_, _ = metrics.NewGlobal(cfg, metrics.FanoutSink{s.inmem, s.prom})
	return s
}

// metricsReporter refreshes gauges right before a scrape (broker nodes: Node.ReportMetrics).
type metricsReporter interface{ ReportMetrics() }

// ReportMetrics refreshes the broker node's gauges (Raft state, indexes, commitlog) so that
// every scrape sees current values.
func (h brokerHealth) ReportMetrics() { h.n.ReportMetrics() }

// namesrvHealth answers /readyz for a name server (ready once it serves) and refreshes its
// gauges for /metrics.
type namesrvHealth struct{ srv *namesrv.Server }

func (h namesrvHealth) Ready() error   { return nil }
func (h namesrvHealth) ReportMetrics() { h.srv.ReportMetrics() }

// startNamesrvAdminHTTP installs the metrics sinks and serves /livez, /readyz and /metrics
// for a name server on addr.
func startNamesrvAdminHTTP(addr string, srv *namesrv.Server, logger *slog.Logger) (*adminServer, error) {
	return startAdminHTTP(addr, namesrvHealth{srv}, setupMetrics(), logger)
}

// startAdminHTTP serves /livez, /readyz and /metrics on addr. /metrics is the Prometheus
// text format 0.0.4; /metrics?format=json is go-metrics' in-memory view (the last minute in
// 10 s intervals), as before.
func startAdminHTTP(addr string, r readiness, sinks *metricsSinks, logger *slog.Logger) (*adminServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("adminListenAddr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := r.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, req *http.Request) {
		if rep, ok := r.(metricsReporter); ok {
			rep.ReportMetrics()
		}
		switch req.URL.Query().Get("format") {
		case "", "prometheus", "text":
			sinks.prom.ServeHTTP(w, req)
		case "json":
			data, err := sinks.inmem.DisplayMetrics(w, req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(data)
		default:
			http.Error(w, "unknown format "+strconv.Quote(req.URL.Query().Get("format"))+": use prometheus (default) or json", http.StatusBadRequest)
		}
	})
	s := &adminServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, addr: ln.Addr().String(), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("admin http server stopped", "err", err)
		}
	}()
	return s, nil
}

func (s *adminServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}

// runHealth is `raftmq health ADDR`: exit 0 when the admin HTTP address answers /readyz
// (or /livez with -live), for container health checks.
func runHealthCheck(ctx context.Context, addr, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health %s%s: %w", addr, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b [512]byte
		n, _ := resp.Body.Read(b[:])
		return fmt.Errorf("health %s%s: %s: %s", addr, path, resp.Status, string(b[:n]))
	}
	return nil
}
