package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/raftmq/raftmq/bench"
	"github.com/raftmq/raftmq/node"
)

// runBench is `raftmq bench producer|consumer|e2e [flags]`, with RocketMQ's benchmark flags.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := bench.DefaultConfig()
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "usage: raftmq bench producer|consumer|e2e [flags]\n")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return flag.ErrHelp
		}
		return fmt.Errorf("%w: the first argument is the mode: producer, consumer or e2e", errUsage)
	}
	cfg.Mode = bench.Mode(args[0])
	fs := flag.NewFlagSet("bench "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	namesrv := fs.String("n", "", "name server `addresses` \"ip:port;ip:port\"")
	fs.StringVar(&cfg.Topic, "t", cfg.Topic, "`topic`")
	fs.IntVar(&cfg.Workers, "w", cfg.Workers, "sending goroutines (sync: one send in flight each)")
	fs.IntVar(&cfg.Size, "s", cfg.Size, "message body `bytes`")
	fs.BoolVar(&cfg.Keys, "k", false, "give every message a unique key")
	fs.Int64Var(&cfg.Total, "q", 0, "total messages to send (consumer: to consume); 0 = no limit")
	fs.BoolVar(&cfg.Async, "y", false, "send asynchronously (pipelined)")
	fs.IntVar(&cfg.Batch, "b", cfg.Batch, "messages per batch send (1 = no batching)")
	fs.IntVar(&cfg.MaxInFlight, "inflight", 0, "async sends pending at most (0 = client default, 512)")
	ri := fs.Int("ri", int(cfg.ReportInterval.Milliseconds()), "report interval in `ms`")
	fs.DurationVar(&cfg.Duration, "duration", 0, "measured run length (0 = until -q or Ctrl-C)")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "producer mode: run the load this long first, not counted (steady state)")
	fs.StringVar(&cfg.Group, "g", "", "consumer `group` (default a fresh one per run)")
	fs.IntVar(&cfg.Consumers, "consumers", cfg.Consumers, "push consumers in the group")
	fs.IntVar(&cfg.ConsumeThreads, "ct", cfg.ConsumeThreads, "listener goroutines per consumer")
	fs.BoolVar(&cfg.Embedded, "embedded", false, "start a name server and a broker group in this process (data in a temp dir)")
	fs.IntVar(&cfg.EmbeddedNodes, "nodes", cfg.EmbeddedNodes, "embedded group size")
	flush := fs.String("flush", string(cfg.FlushDiskType), "embedded flushDiskType: ASYNC_FLUSH or SYNC_FLUSH")
	fs.IntVar(&cfg.Queues, "queues", cfg.Queues, "queues of the topic bench creates (embedded, or e2e on a cluster that lacks it)")
	fs.IntVar(&cfg.RaftMaxInFlight, "raft-inflight", 0, "embedded: group-commit Raft entries in flight (0 = node default 3)")
	fs.IntVar(&cfg.LogCacheSize, "log-cache", 0, "embedded: Raft log cache entries (0 = node default, 64)")
	fs.IntVar(&cfg.GroupCommitMaxBytes, "group-commit-bytes", 0, "embedded: most bytes per Raft entry (0 = node default 1 MiB)")
	fs.Int64Var(&cfg.PageCacheKeep, "page-cache-keep", 0, "embedded: commitLogPageCacheKeep in bytes (0 = node default 256 MiB, -1 = never drop)")
	logStore := fs.String("raft-log-store", "", "embedded: raftLogStore, auto, boltdb or wal (default the node's, auto: wal for the fresh group)")
	fs.Int64Var(&cfg.Preload, "preload", 0, "embedded consumer mode: backlog to write first (default -q, else 200000)")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write the run's CPU profile to `file`")
	fs.StringVar(&cfg.Trace, "trace", "", "write the run's Go execution trace to `file` (go tool trace)")
	asJSON := fs.Bool("json", false, "print the summary as JSON on stdout (interval lines go to stderr)")
	debug := fs.Bool("debug", false, "log the clients' and embedded nodes' debug lines to stderr (default: client errors only)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *namesrv != "" {
		for _, a := range strings.Split(*namesrv, ";") {
			if a = strings.TrimSpace(a); a != "" {
				cfg.NameServers = append(cfg.NameServers, a)
			}
		}
	}
	cfg.ReportInterval = time.Duration(*ri) * time.Millisecond
	cfg.FlushDiskType = node.FlushDiskType(*flush)
	cfg.RaftLogStore = node.RaftLogStoreKind(*logStore)
	cfg.Out = stdout
	if *asJSON {
		cfg.Out = stderr
	}
	level := slog.LevelError
	if *debug {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if *debug {
		cfg.EmbeddedLogger = cfg.Logger.With("process", "embedded")
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	ctx, stop := shutdownContext(ctx, cfg.Logger)
	defer stop()
	sum, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	sum.WriteText(stdout)
	return nil
}
