package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/raftmq/raftmq/node"
)

func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	confPath := fs.String("c", "", "broker.conf `file` (required)")
	namesrv := fs.String("n", "", "name server `addresses` \"ip:port;ip:port\" (overrides namesrvAddr and NAMESRV_ADDR)")
	printAll := fs.Bool("p", false, "print every effective config key and exit")
	printImportant := fs.Bool("m", false, "print the important config keys and exit")
	debug := fs.Bool("debug", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *confPath == "" {
		return fmt.Errorf("%w: -c broker.conf is required", errUsage)
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := newLogger(os.Stderr, level).With("process", "broker")

	cfg, warnings, err := node.LoadConfig(*confPath, node.LoadOptions{NamesrvAddr: *namesrv})
	if err != nil {
		return err
	}
	for _, w := range warnings {
		logger.Warn(w)
	}
	if *printAll || *printImportant {
		fmt.Fprint(stdout, cfg.Properties(*printAll))
		return nil
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		logger.Warn(w)
	}
	if err := checkDataDir(cfg.StorePathRootDir); err != nil {
		return err
	}

	ctx, stop := shutdownContext(ctx, logger)
	defer stop()
	sink := setupMetrics()

	n, err := node.New(cfg, node.Options{Logger: logger})
	if err != nil {
		return fmt.Errorf("start broker node: %w", err)
	}
	var admin *adminServer
	if cfg.AdminListenAddr != "" {
		admin, err = startAdminHTTP(cfg.AdminListenAddr, brokerHealth{n}, sink, logger)
		if err != nil {
			_ = n.Close()
			return err
		}
	}
	logger.Info("broker node started", "addr", n.Addr(), "raft", n.RaftAddr(), "admin", cfg.AdminListenAddr, "version", version)
	<-ctx.Done()
	logger.Info("stopping: transferring leadership, unregistering, flushing")
	if admin != nil {
		admin.Close()
	}
	if err := n.Close(); err != nil {
		return fmt.Errorf("close broker node: %w", err)
	}
	logger.Info("broker node stopped")
	return nil
}

// brokerHealth answers /livez and /readyz for a broker node: ready once the store has
// recovered (New returned), a Raft leader is known, on the leader everything committed has
// been applied, and a name server has accepted the node's registration in its current role.
// A node fenced after a stalled Raft log write is never ready again (restart it).
type brokerHealth struct{ n *node.Node }

func (h brokerHealth) Ready() error {
	if err := h.n.Fenced(); err != nil {
		return err
	}
	st, err := h.n.GroupStatus()
	if err != nil {
		return err
	}
	if st.Leader == "" {
		return fmt.Errorf("no Raft leader known (state %s, term %d)", st.State, st.Term)
	}
	if h.n.IsLeader() && !h.n.LeaderReady() {
		return fmt.Errorf("leader still applying committed entries (applied %d of %d)", st.FSMApplied, st.CommitIndex)
	}
	if !h.n.Registered() {
		return fmt.Errorf("not yet registered with a name server in its current role (namesrvAddr %s)", strings.Join(h.n.Config().NamesrvAddr, ";"))
	}
	return nil
}

// checkDataDir turns the usual start-up failures with a data directory into clear errors.
func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("storePathRootDir %s: %w", dir, err)
	}
	probe, err := os.CreateTemp(dir, ".write-probe-*")
	if err != nil {
		return fmt.Errorf("storePathRootDir %s is not writable by this user (uid %d): %w", dir, os.Getuid(), err)
	}
	name := probe.Name()
	probe.Close()
	return os.Remove(name)
}
