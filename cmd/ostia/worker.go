package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/ostia/ostia/internal/config"
	"github.com/ostia/ostia/internal/drivers/noop"
	"github.com/ostia/ostia/sagas/lbflows"
	"github.com/ostia/ostia/sagas/saga"
)

// startWorker runs the saga runner and the consumers that start sagas from
// load-balancer and amphora events. cloud, when not nil, is the noop cloud to
// use (replicas in one test share one, as real workers share one Nova).
func (b *base) startWorker(ctx context.Context, g *errgroup.Group, pool *pgxpool.Pool, c *core, brokers []string, cloud *noop.Cloud) error {
	log := b.log.With("service", "worker")
	switch b.cfg.Worker.Driver {
	case config.DriverNoop:
		if cloud == nil {
			cloud = noop.New(noop.Config{})
		}
	default:
		return fmt.Errorf("config: [worker] driver: %q is not available yet in this build; use %q",
			b.cfg.Worker.Driver, config.DriverNoop)
	}
	store, err := saga.NewStore(saga.StoreConfig{Pool: pool, Registry: c.registry})
	if err != nil {
		return err
	}
	flows, err := lbflows.New(lbflows.Config{Commands: c.commands, Loader: c.handler,
		Compute: cloud, Network: cloud, Agent: cloud, Certificates: cloud})
	if err != nil {
		return err
	}
	runner, err := saga.NewRunner(saga.RunnerConfig{Store: store, Flows: flows.All(), Logger: log, Metrics: b.metrics})
	if err != nil {
		return err
	}
	consumers, err := flows.Consumers(lbflows.TriggerConfig{Brokers: brokers, Pool: pool, Store: store,
		Registry: c.registry, Kick: runner.Kick, Logger: log, Metrics: b.metrics})
	if err != nil {
		return err
	}
	for _, cons := range consumers {
		if err := cons.Start(ctx); err != nil {
			return err
		}
	}
	g.Go(func() error { return runner.Run(ctx) })
	g.Go(func() error {
		<-ctx.Done()
		var first error
		for _, cons := range consumers {
			if err := cons.Close(); err != nil && first == nil {
				first = err
			}
		}
		return first
	})
	log.Info("saga worker started", "driver", b.cfg.Worker.Driver)
	return nil
}

func runWorker(ctx context.Context, env *environment, args []string) error {
	fs, path := newFlags(env, "worker")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := setup(env, *path)
	if err != nil {
		return err
	}
	if b.cfg.Kafka.Embedded {
		return fmt.Errorf("ostia worker needs external brokers ([kafka] brokers); the embedded broker runs with `ostia up`")
	}
	pool, err := b.openDB(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	c, err := b.newCore(pool)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	if err := b.startWorker(ctx, g, pool, c, b.cfg.Kafka.Brokers, nil); err != nil {
		return err
	}
	g.Go(func() error {
		return serveHTTP(ctx, b.log, "metrics", b.cfg.Metrics.Bind, b.metricsHandler(pool.Ping), nil)
	})
	return g.Wait()
}
