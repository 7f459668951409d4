package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	live := fs.Bool("live", false, "check /livez (process up) instead of /readyz (serving)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: raftmq health [-live] ADMIN_HTTP_ADDR (host:port of adminListenAddr)", errUsage)
	}
	path := "/readyz"
	if *live {
		path = "/livez"
	}
	if err := runHealthCheck(ctx, fs.Arg(0), path); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
