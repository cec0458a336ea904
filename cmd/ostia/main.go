// Command ostia runs Ostia's services. `ostia up` runs all of them in one
// process on the single-machine default; each service also has its own
// subcommand for the production shape.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, env *environment, args []string) error
}

// environment is what every subcommand gets: output streams and the process
// environment (no globals).
type environment struct {
	stdout, stderr io.Writer
	environ        []string
}

func subcommands() map[string]command {
	return map[string]command{
		"up":          {"run every service in one process (embedded broker, local PostgreSQL)", runUp},
		"api":         {"run the Octavia v2 REST API", runAPI},
		"relay":       {"publish the event store's outbox to Kafka", runRelay},
		"worker":      {"run the sagas that build, configure and fail over amphorae", runWorker},
		"health":      {"run the health manager: UDP heartbeats, operating statuses, statistics, failover", runHealth},
		"migrate":     {"create or update the database schema", runMigrate},
		"events":      {"inspect the event stream: `ostia events tail`", runEvents},
		"healthcheck": {"exit 0 when a service's /healthz answers (for container health checks)", runHealthcheck},
		"projector":   {"run the projection consumer: read models, audit trail and billing records from Kafka", runProjector},
		"replay":      {"rebuild the read models from the event log into a fresh generation and swap it in", runReplay},
		"audit":       {"show an object's history, or with --as-of the object at a past time", runAudit},
		"billing":     {"usage per project, load balancer, listener and amphora in a time window", runBilling},
		"version": {"print the version", func(_ context.Context, env *environment, _ []string) error {
			_, err := fmt.Fprintln(env.stdout, "ostia", version)
			return err
		}},
	}
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ostia <command> [flags]\n\ncommands:")
	cmds := subcommands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nEvery command takes -config FILE; environment variables OSTIA_<SECTION>_<KEY> override the file.")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &environment{stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ()}
	os.Exit(run(ctx, env, os.Args[1:]))
}

func run(ctx context.Context, env *environment, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := subcommands()[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "ostia: unknown command %q\n\n", args[0])
		usage(env.stderr)
		return 2
	}
	if err := cmd.run(ctx, env, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return 0
		}
		slog.New(slog.NewTextHandler(env.stderr, nil)).Error("ostia "+args[0]+" failed", "error", err)
		return 1
	}
	return 0
}
