package main

import (
	"context"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/ostia/ostia/aggregates/commands"
	"github.com/ostia/ostia/aggregates/handler"
	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/aggregates/project"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/gateway"
	"github.com/ostia/ostia/internal/config"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/healthmanager"
	"github.com/ostia/ostia/internal/heartbeat"
	"github.com/ostia/ostia/internal/qos"
	"github.com/ostia/ostia/projections"
	"github.com/ostia/ostia/sagas/ports"
)

// core is what every service that decides commands shares.
type core struct {
	store    *eventstore.Store
	registry *events.Registry
	handler  *handler.Handler
	commands *commands.Service
	// views, when set, is the projector every command's events are applied
	// through inline (in the append transaction).
	views *projections.Projector
	// foreground, when set (ostia up), is the gate through which the
	// worker's saga steps yield to the API's writes in the same process.
	foreground *qos.Gate
	// vips, when set, allocates a new load balancer's VIP port in the API
	// (as Octavia does); nil leaves it to the create flow.
	vips gateway.VIPAllocator
	// certs, when set, lets the API check TLS references with the cert
	// manager before storing a command (as Octavia does).
	certs gateway.CertChecker
}

// certChecker lets the API check TLS references with a cert manager.
type certChecker struct{ m ports.CertManager }

func (c certChecker) CheckTLSBundle(ctx context.Context, ref string) error {
	_, err := c.m.GetTLSBundle(ctx, ref)
	return err
}

func (c certChecker) CheckSecret(ctx context.Context, ref string) error {
	_, err := c.m.GetSecret(ctx, ref)
	return err
}

// quotaDefaults are the configured [quotas] default limits.
func (b *base) quotaDefaults() project.Limits {
	q := b.cfg.Quotas
	return project.Limits{LoadBalancer: int64(q.LoadBalancer), Listener: int64(q.Listener), Pool: int64(q.Pool),
		HealthMonitor: int64(q.HealthMonitor), Member: int64(q.Member), L7Policy: int64(q.L7Policy), L7Rule: int64(q.L7Rule)}
}

// newCore builds the command path. With inline, the process also gets a
// projector (core.views) and every command's events are applied to the read
// models inside the command's own append transaction: the API reads its
// own writes, and the worker's status changes show at once, with one commit
// per command. Services that only decide commands in the background
// (standalone worker, health manager) leave that to the projection consumer.
func (b *base) newCore(pool *pgxpool.Pool, inline bool, opts ...eventstore.Option) (*core, error) {
	reg, err := events.NewRegistry()
	if err != nil {
		return nil, err
	}
	store := eventstore.New(pool, opts...)
	hc := handler.Config{Store: store, Registry: reg}
	var views *projections.Projector
	if inline {
		views, err = b.projector(pool, store, reg, b.cfg.Projector.CacheSize)
		if err != nil {
			return nil, err
		}
		hc.Inline = views.InlineThen
	}
	h, err := handler.New(hc)
	if err != nil {
		return nil, err
	}
	lbcfg := loadbalancer.DefaultConfig()
	lbcfg.TimeoutClientData = int64(b.cfg.HAProxy.TimeoutClientData)
	lbcfg.TimeoutMemberConnect = int64(b.cfg.HAProxy.TimeoutMemberConnect)
	lbcfg.TimeoutMemberData = int64(b.cfg.HAProxy.TimeoutMemberData)
	lbcfg.TimeoutTCPInspect = int64(b.cfg.HAProxy.TimeoutTCPInspect)
	lbcfg.Topology = b.cfg.Worker.Topology
	lbcfg.Provider = b.cfg.API.DefaultProvider
	svc, err := commands.New(commands.Config{
		Handler:       h,
		LoadBalancer:  lbcfg,
		QuotaDefaults: b.quotaDefaults(),
		// Octavia skips quotas entirely without Keystone.
		EnforceQuotas: b.cfg.API.AuthStrategy != config.AuthNoAuth,
	})
	if err != nil {
		return nil, err
	}
	return &core{store: store, registry: reg, handler: h, commands: svc, views: views}, nil
}

// startHealth runs the health manager: the UDP heartbeat receiver publishing
// to Kafka, the consumer turning heartbeats into statuses and statistics, and
// the stale-amphora scanner. It returns once everything is started; the
// goroutines end with ctx.
func (b *base) startHealth(ctx context.Context, g *errgroup.Group, pool *pgxpool.Pool, c *core, brokers []string) error {
	hc := b.cfg.Health
	if hc.HeartbeatKey == "" {
		return fmt.Errorf("config: [health] heartbeat_key: required to run the health manager")
	}
	log := b.log.With("service", "health")
	host, _ := os.Hostname()
	pub, err := healthmanager.NewPublisher(healthmanager.PublisherConfig{Brokers: brokers,
		ClientID: b.cfg.Kafka.ClientID + "-health", Receiver: host, Logger: log, Metrics: b.metrics})
	if err != nil {
		return err
	}
	recv, err := heartbeat.NewReceiver(heartbeat.Config{Addr: hc.Bind, Key: []byte(hc.HeartbeatKey), Sink: pub.Sink,
		Logger: log, Metrics: b.metrics})
	if err != nil {
		_ = pub.Close()
		return err
	}
	consumer, err := healthmanager.NewConsumer(healthmanager.ConsumerConfig{Brokers: brokers, Pool: pool,
		Events: c.store, Registry: c.registry, Commands: c.commands, HeartbeatInterval: hc.HeartbeatInterval,
		Logger: log, Metrics: b.metrics})
	if err != nil {
		_ = pub.Close()
		return err
	}
	scanner, err := healthmanager.NewScanner(healthmanager.ScannerConfig{Pool: pool, Commands: c.commands, Loader: c.handler,
		HeartbeatTimeout: hc.HeartbeatTimeout, CheckInterval: hc.CheckInterval, FailoverThreshold: hc.FailoverThreshold,
		Owner: host, Logger: log, Metrics: b.metrics})
	if err != nil {
		_ = pub.Close()
		return err
	}
	if err := consumer.Start(ctx); err != nil {
		_ = pub.Close()
		return err
	}
	log.Info("heartbeat receiver listening", "udp", recv.Addr().String())
	g.Go(func() error {
		err := recv.Run(ctx)
		if cerr := pub.Close(); cerr != nil {
			log.Warn("close heartbeat publisher", "error", cerr)
		}
		return err
	})
	g.Go(func() error {
		<-ctx.Done()
		return consumer.Close()
	})
	g.Go(func() error { return scanner.Run(ctx) })
	return nil
}

func runHealth(ctx context.Context, env *environment, args []string) error {
	fs, path := newFlags(env, "health")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := setup(env, *path)
	if err != nil {
		return err
	}
	if b.cfg.Kafka.Embedded {
		return fmt.Errorf("ostia health needs external brokers ([kafka] brokers); the embedded broker runs with `ostia up`")
	}
	pool, err := b.openDB(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	c, err := b.newCore(pool, false)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	if err := b.startHealth(ctx, g, pool, c, b.cfg.Kafka.Brokers); err != nil {
		return err
	}
	g.Go(func() error {
		return serveHTTP(ctx, b.log, "metrics", b.cfg.Metrics.Bind, b.metricsHandler(pool.Ping), nil)
	})
	return g.Wait()
}
