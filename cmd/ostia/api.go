package main

import (
	"context"
	"net"

	"golang.org/x/sync/errgroup"
)

func runAPI(ctx context.Context, env *environment, args []string) error {
	fs, path := newFlags(env, "api")
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
	defer pool.Close()
	c, err := b.newCore(pool, true)
	if err != nil {
		return err
	}
	api, err := b.newGateway(pool, c)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return serveHTTP(ctx, b.log, "api", b.cfg.API.Bind, api, func(a net.Addr) {
			b.log.Info("Octavia v2 API listening", "url", "http://"+a.String())
		})
	})
	g.Go(func() error {
		return serveHTTP(ctx, b.log, "metrics", b.cfg.Metrics.Bind, b.metricsHandler(pool.Ping), nil)
	})
	return g.Wait()
}
