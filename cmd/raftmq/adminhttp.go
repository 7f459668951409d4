package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	metrics "github.com/armon/go-metrics"
)

// readiness is what /readyz asks.
type readiness interface{ Ready() error }

type adminServer struct {
	srv  *http.Server
	done chan struct{}
}

// setupMetrics installs one in-memory go-metrics sink as the global one: raft 1.7.3 reports
// into armon/go-metrics too, so /metrics shows raft's and raftmq's figures together.
func setupMetrics() *metrics.InmemSink {
	sink := metrics.NewInmemSink(10*time.Second, time.Minute)
	cfg := metrics.DefaultConfig("raftmq")
	cfg.EnableHostname = false
	cfg.EnableRuntimeMetrics = true
	_, _ = metrics.NewGlobal(cfg, sink)
	return sink
}

// startAdminHTTP serves /livez, /readyz and /metrics on addr.
func startAdminHTTP(addr string, r readiness, sink *metrics.InmemSink, logger *slog.Logger) (*adminServer, error) {
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
		data, err := sink.DisplayMetrics(w, req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(data)
	})
	s := &adminServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, done: make(chan struct{})}
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
