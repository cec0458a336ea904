package main

import (
	"context"
	"net"

	"golang.org/x/sync/errgroup"

	"github.com/ostia/ostia/internal/config"
	"github.com/ostia/ostia/sagas/lbflows"
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
	// Allocate VIP ports in the API, as Octavia does, when the ports live
	// in a cloud the workers share (Neutron). The noop cloud lives in one
	// process and the local cloud is run by the worker (`ostia up` shares
	// either between its API and worker); with them a separate API leaves
	// the VIP to the create flow.
	if b.cfg.Worker.Driver == config.DriverOpenStack {
		d, closeDrivers, err := b.newDrivers(ctx, b.cfg)
		if err != nil {
			return err
		}
		defer closeDrivers()
		c.vips = &lbflows.VIPAllocator{Network: d.Network, Logger: b.log.With("service", "api")}
	}
	// Check TLS references as Octavia's API does when the cert manager is
	// shared (Barbican); a local directory belongs to the machine the
	// workers run on.
	if b.cfg.Certificates.CertManager == config.CertManagerBarbican {
		certs, err := b.newCertManager(ctx, b.cfg)
		if err != nil {
			return err
		}
		c.certs = certChecker{certs}
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
