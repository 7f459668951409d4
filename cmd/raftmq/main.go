// Command raftmq is the one raftmq binary: name server, broker node, admin tool and benchmark,
// chosen by the first argument or by the name it is invoked as (mqnamesrv, mqbroker, mqadmin).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// errUsage marks a command-line mistake: exit status 2.
var errUsage = errors.New("usage")

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"namesrv", "run a name server (mqnamesrv)", runNamesrv},
		{"broker", "run a broker node from broker.conf (mqbroker)", runBroker},
		{"health", "check a process's admin HTTP address (/readyz)", runHealth},
		{"admin", "administer topics, groups, brokers (mqadmin)", runAdmin},
		{"bench", "benchmark producer/consumer/e2e", runBench},
		{"version", "print the version", runVersion},
	}
}

// aliases maps the RocketMQ program names a link may carry to subcommands.
var aliases = map[string]string{"mqnamesrv": "namesrv", "mqbroker": "broker", "mqadmin": "admin"}

func main() {
	os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
}

func run(ctx context.Context, argv []string, stdout, stderr io.Writer) int {
	args := argv[1:]
	name := ""
	if sub, ok := aliases[strings.TrimSuffix(filepath.Base(argv[0]), ".exe")]; ok {
		name = sub
	} else if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	for _, c := range commands() {
		if c.name == name {
			err := c.run(ctx, args, stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				fmt.Fprintf(stderr, "raftmq %s: %v\n", name, err)
				return 2
			default:
				fmt.Fprintf(stderr, "raftmq %s: %v\n", name, err)
				return 1
			}
		}
	}
	if name != "" && name != "help" && name != "-h" && name != "--help" {
		fmt.Fprintf(stderr, "raftmq: unknown command %q\n\n", name)
	}
	usage(stderr)
	if name == "help" || name == "-h" || name == "--help" {
		return 0
	}
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: raftmq <command> [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nInvoked through a link named mqnamesrv, mqbroker or mqadmin it acts as that command.\n")
}

func runVersion(_ context.Context, _ []string, stdout, _ io.Writer) error {
	fmt.Fprintf(stdout, "raftmq %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
