package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ostia/ostia/internal/config"
	"github.com/ostia/ostia/internal/postgres"
)

// base is what every service subcommand sets up first.
type base struct {
	cfg     config.Config
	log     *slog.Logger
	metrics *prometheus.Registry
}

// newFlags returns a flag set with the -config flag every command takes.
func newFlags(env *environment, name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	path := fs.String("config", "", "configuration file (INI: [section] key = value); OSTIA_<SECTION>_<KEY> variables override it")
	return fs, path
}

// setup loads and validates the configuration and builds the logger and the
// metrics registry.
func setup(env *environment, path string) (*base, error) {
	cfg, err := config.Load(path, env.environ)
	if err != nil {
		return nil, err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		return nil, fmt.Errorf("config: [log] level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(env.stderr, opts)
	if strings.EqualFold(cfg.Log.Format, "json") {
		h = slog.NewJSONHandler(env.stderr, opts)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &base{cfg: cfg, log: slog.New(h), metrics: reg}, nil
}

// openDB connects to the configured database and applies migrations.
func (b *base) openDB(ctx context.Context) (*pgxpool.Pool, error) {
	url := b.cfg.Database.URL
	if b.cfg.Database.MaxConns > 0 && !strings.Contains(url, "pool_max_conns") {
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		url += fmt.Sprintf("%spool_max_conns=%d", sep, b.cfg.Database.MaxConns)
	}
	pool, err := postgres.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := postgres.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	if b.metrics != nil {
		if err := b.metrics.Register(postgres.NewPoolCollector(pool, "main")); err != nil {
			pool.Close()
			return nil, fmt.Errorf("register pool metrics: %w", err)
		}
	}
	return pool, nil
}

// serveHTTP serves h on addr until ctx ends. ready receives the bound address.
func serveHTTP(ctx context.Context, log *slog.Logger, name, addr string, h http.Handler, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			log.Warn("http server shutdown", "server", name, "error", err)
		}
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("%s: %w", name, err)
	}
}

// metricsHandler serves /metrics and /healthz (healthy while check passes).
func (b *base) metricsHandler(check func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(b.metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if check != nil {
			if err := check(ctx); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if b.cfg.Metrics.Profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func runMigrate(ctx context.Context, env *environment, args []string) error {
	fs, path := newFlags(env, "migrate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := setup(env, *path)
	if err != nil {
		return err
	}
	pool, err := b.openDB(ctx)
	if err != nil {
		return err
	}
	pool.Close()
	b.log.Info("database schema is up to date")
	return nil
}
