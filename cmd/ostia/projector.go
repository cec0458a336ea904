package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/config"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/messaging"
	"github.com/ostia/ostia/internal/qos"
	"github.com/ostia/ostia/projections"
)

// projectorFlags are the projection consumer's command-line overrides of
// the [projector] section.
type projectorFlags struct {
	cacheSize int
	brokers   string
	fs        *flag.FlagSet
}

func (pf *projectorFlags) register(fs *flag.FlagSet) {
	pf.fs = fs
	fs.IntVar(&pf.cacheSize, "cache-size", 0,
		"aggregate states kept in memory, negative: none (default [projector] cache_size)")
	fs.StringVar(&pf.brokers, "brokers", "",
		"Kafka brokers host:port,... (default [projector] brokers, else [kafka] brokers)")
}

// resolve takes from the configuration what no flag set.
func (pf *projectorFlags) resolve(cfg config.Projector) {
	set := map[string]bool{}
	pf.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["cache-size"] {
		pf.cacheSize = cfg.CacheSize
	}
	if !set["brokers"] && len(cfg.Brokers) > 0 {
		pf.brokers = strings.Join(cfg.Brokers, ",")
	}
}

// newProjections builds a Projector on pool with its own event store and
// registry (the tools need no command handler).
func (b *base) newProjections(pool *pgxpool.Pool, cacheSize int) (*projections.Projector, error) {
	reg, err := events.NewRegistry()
	if err != nil {
		return nil, err
	}
	return b.projector(pool, eventstore.New(pool), reg, cacheSize)
}

// projector builds a Projector on pool reading the log through store.
func (b *base) projector(pool *pgxpool.Pool, store *eventstore.Store, reg *events.Registry, cacheSize int) (*projections.Projector, error) {
	return projections.New(projections.Config{Pool: pool, Store: store, Registry: reg,
		Logger: b.log.With("service", "projector"), Metrics: b.metrics, CacheSize: cacheSize})
}

// consumeProjections runs p's projection consumer; with fg (ostia up) it
// yields to the API's writes in the same process.
func (b *base) consumeProjections(ctx context.Context, g *errgroup.Group, pool *pgxpool.Pool, p *projections.Projector,
	brokers []string, fg *qos.Gate) error {
	log := b.log.With("service", "projector")
	poison, err := b.poisonProducer(ctx, g, brokers)
	if err != nil {
		return err
	}
	cc := messaging.ConsumerConfig{Brokers: brokers, Pool: pool, Logger: log, Metrics: b.metrics, Poison: poison,
		Yield: fg.YieldFunc()}
	cons, err := p.NewConsumer(cc)
	if err != nil {
		return err
	}
	if err := cons.Start(ctx); err != nil {
		return err
	}
	log.Info("projection consumer started", "group", projections.ConsumerName, "topics", projections.Topics())
	g.Go(func() error {
		<-ctx.Done()
		return cons.Close()
	})
	return nil
}

// runProjector is `ostia projector`: the projection consumer as a service
// of its own, with /metrics (ostia_projection_lag_seconds,
// ostia_projection_events_applied_total, the consumer's metrics) and
// /healthz.
func runProjector(ctx context.Context, env *environment, args []string) error {
	fs, path := newFlags(env, "projector")
	var pf projectorFlags
	pf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("projector: unexpected arguments %v", fs.Args())
	}
	b, err := setup(env, *path)
	if err != nil {
		return err
	}
	pf.resolve(b.cfg.Projector)
	brokers := b.cfg.Kafka.Brokers
	if pf.brokers != "" {
		brokers = strings.Split(pf.brokers, ",")
	}
	if len(brokers) == 0 {
		return fmt.Errorf("ostia projector needs external brokers ([kafka] brokers or -brokers); the embedded broker runs with `ostia up`")
	}
	pool, err := b.openDB(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	p, err := b.newProjections(pool, pf.cacheSize)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	if err := b.consumeProjections(ctx, g, pool, p, brokers, nil); err != nil {
		return err
	}
	g.Go(func() error {
		return serveHTTP(ctx, b.log, "metrics", b.cfg.Metrics.Bind, b.metricsHandler(pool.Ping), nil)
	})
	return g.Wait()
}
