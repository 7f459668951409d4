package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// shutdownContext returns a context cancelled by the first SIGINT or SIGTERM. A second signal
// exits the process at once, as operators expect from a server that is draining.
func shutdownContext(parent context.Context, logger *slog.Logger) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			logger.Info("shutting down; a second signal exits at once", "signal", s.String())
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			logger.Error("second signal: exiting now", "signal", s.String())
			os.Exit(130)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

func newLogger(w *os.File, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
