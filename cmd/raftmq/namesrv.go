package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/raftmq/raftmq/namesrv"
)

func runNamesrv(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("namesrv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	confPath := fs.String("c", "", "namesrv.conf `file` (Java properties)")
	printAll := fs.Bool("p", false, "print the effective config and exit")
	listen := fs.String("listen", "", "listen `address` (overrides listenPort, e.g. 127.0.0.1:9876)")
	adminAddr := fs.String("admin", "", "serve /livez, /readyz and /metrics (Prometheus) on this `address`, e.g. 127.0.0.1:9877")
	debug := fs.Bool("debug", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := newLogger(os.Stderr, level).With("process", "namesrv")

	cfg := namesrv.DefaultConfig()
	if *confPath != "" {
		loaded, warnings, err := namesrv.LoadConfig(*confPath)
		if err != nil {
			return err
		}
		for _, w := range warnings {
			logger.Warn(w)
		}
		cfg = loaded
	}
	if *listen != "" {
		cfg.ListenAddr = *listen
	}
	if *printAll {
		fmt.Fprint(stdout, cfg.Properties())
		return nil
	}
	cfg.Logger = logger
	if err := cfg.Validate(); err != nil {
		return err
	}

	ctx, stop := shutdownContext(ctx, logger)
	defer stop()
	srv, err := namesrv.New(cfg)
	if err != nil {
		return err
	}
	if *adminAddr != "" {
		admin, err := startNamesrvAdminHTTP(*adminAddr, srv, logger)
		if err != nil {
			_ = srv.Close(context.Background())
			return err
		}
		defer admin.Close()
	}
	logger.Info("name server started", "addr", srv.Addr(), "version", version)
	<-ctx.Done()
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Close(closeCtx); err != nil {
		return fmt.Errorf("close name server: %w", err)
	}
	logger.Info("name server stopped")
	return nil
}
