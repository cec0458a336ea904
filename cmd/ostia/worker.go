package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/certmanager"
	"github.com/ostia/ostia/internal/config"
	"github.com/ostia/ostia/internal/drivers/agentclient"
	"github.com/ostia/ostia/internal/drivers/local"
	"github.com/ostia/ostia/internal/drivers/noop"
	"github.com/ostia/ostia/internal/drivers/openstack"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/sagas/certrotation"
	"github.com/ostia/ostia/sagas/lbflows"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
	"github.com/ostia/ostia/templates"
)

// drivers are the outside world of the sagas, as the [worker] driver
// makes it.
type drivers struct {
	Compute      ports.Compute
	Network      ports.Network
	Agent        ports.Agent
	Certificates ports.Certificates
	// CertManager reads tenant TLS material; nil: startWorker builds the
	// one of [certificates] (`ostia up` builds it once for API and worker).
	CertManager ports.CertManager
	// Flows are the driver's additions to the flows' configuration
	// (renderer, boot parameters, config-drive files).
	Flows func(*lbflows.Config)
}

// localBootPoll is how often a booting local amphora is checked: its agent
// is up within a second, so amp_active_wait (10 s) would only slow down
// load-balancer creation.
const localBootPoll = 250 * time.Millisecond

// newDrivers builds the saga ports of the configured [worker] driver:
// noop (in memory), local (ostia-agent processes with haproxy and
// keepalived on this machine) or openstack (Nova, Neutron, Glance). The
// local and openstack drivers talk to the amphora agents over gRPC with
// mutual TLS, using the CA of [certificates]. cleanup closes the agent
// connections; amphorae of the local driver keep running, as virtual
// machines would.
func (b *base) newDrivers(ctx context.Context, cfg config.Config) (drivers, func(), error) {
	log := b.log.With("service", "worker", "driver", cfg.Worker.Driver)
	nothing := func() {}
	switch cfg.Worker.Driver {
	case config.DriverNoop:
		cloud := noop.New(noop.Config{})
		return drivers{Compute: cloud, Network: cloud, Agent: cloud, Certificates: cloud}, nothing, nil
	case config.DriverLocal, config.DriverOpenStack:
	default:
		return drivers{}, nothing, fmt.Errorf("config: [worker] driver: unknown driver %q", cfg.Worker.Driver)
	}

	auth, err := loadAuthority(cfg.Certificates)
	if err != nil {
		return drivers{}, nothing, err
	}
	agents, err := agentclient.New(agentclient.Config{
		ClientCertificate: auth.ClientCertificateFunc("ostia-controller", 0),
		ServerCAs:         auth.Pool(),
		Port:              cfg.Worker.AgentPort,
		Logger:            log,
	})
	if err != nil {
		return drivers{}, nothing, err
	}
	cleanup := func() {
		if err := agents.Close(); err != nil {
			log.Warn("close agent connections", "error", err)
		}
	}
	keyPEM, err := os.ReadFile(cfg.Certificates.CAPrivateKey)
	if err != nil {
		cleanup()
		return drivers{}, nothing, fmt.Errorf("read CA key: %w", err)
	}
	// VRRP passwords derive from a secret of this installation.
	vrrpKey := sha256.Sum256(append([]byte("ostia-vrrp\x00"), keyPEM...))
	vrrp := templates.KeepalivedSettings{AdvertInt: cfg.VRRP.AdvertInt, CheckInterval: cfg.VRRP.CheckInterval,
		FailCount: cfg.VRRP.FailCount, SuccessCount: cfg.VRRP.SuccessCount}
	d := drivers{Agent: agents, Certificates: auth}

	switch cfg.Worker.Driver {
	case config.DriverLocal:
		drv, err := newLocalDriver(ctx, cfg, auth, log)
		if err != nil {
			cleanup()
			return drivers{}, nothing, err
		}
		renderer, err := lbflows.NewTemplateRenderer(lbflows.RenderConfig{Keepalived: vrrp, VRRPAuthKey: vrrpKey[:],
			ForAmphora: func(a lbflows.Amp, s *templates.Settings, k *templates.KeepalivedSettings) {
				drv.TemplateSettings(a.ComputeID, s, k)
			}})
		if err != nil {
			cleanup()
			return drivers{}, nothing, err
		}
		d.Compute, d.Network = drv, drv
		d.Flows = func(fc *lbflows.Config) {
			fc.Renderer = renderer
			fc.BootPollInterval = localBootPoll
			fc.ImageTag = cfg.Worker.AmpImageTag
		}
	case config.DriverOpenStack:
		oc := cfg.OpenStack
		drv, err := openstack.NewFromCloud(ctx, openstack.AuthOptions{AuthURL: oc.AuthURL, Username: oc.Username,
			Password: oc.Password, ProjectName: oc.ProjectName, DomainName: oc.DomainName, Region: oc.Region,
			Interface: oc.Interface}, func(c *openstack.Config) {
			c.ManagementNetworkIDs = cfg.Worker.AmpBootNetworkList
			c.ImageOwnerID = oc.ImageOwnerID
			c.TagsOnCreate = oc.TagsOnCreate
			c.Logger = log
		})
		if err != nil {
			cleanup()
			return drivers{}, nothing, err
		}
		renderer, err := lbflows.NewTemplateRenderer(lbflows.RenderConfig{Keepalived: vrrp, VRRPAuthKey: vrrpKey[:]})
		if err != nil {
			cleanup()
			return drivers{}, nothing, err
		}
		d.Compute, d.Network = drv, drv
		d.Flows = func(fc *lbflows.Config) {
			fc.Renderer = renderer
			fc.ImageTag, fc.FlavorID = cfg.Worker.AmpImageTag, cfg.Worker.AmpFlavorID
			fc.ManagementNetworkIDs = cfg.Worker.AmpBootNetworkList
			fc.BootPollInterval = cfg.Worker.AmpActiveWait
			fc.BootTimeout = time.Duration(cfg.Worker.AmpActiveRetries) * cfg.Worker.AmpActiveWait
			// Octavia's agents read the client CA from the config drive.
			fc.ConfigDrive = map[string][]byte{"/etc/octavia/certs/client_ca.pem": auth.CACertPEM()}
		}
	}
	inner := d.Flows
	d.Flows = func(fc *lbflows.Config) {
		fc.CertValidity = cfg.Certificates.CertValidity
		inner(fc)
	}
	return d, cleanup, nil
}

// newCertManager builds the cert manager of [certificates] cert_manager,
// which the flows read tenant TLS material from.
func (b *base) newCertManager(ctx context.Context, cfg config.Config) (ports.CertManager, error) {
	log := b.log.With("service", "worker", "cert_manager", cfg.Certificates.CertManager)
	switch cfg.Certificates.CertManager {
	case config.CertManagerLocal:
		d, err := certmanager.NewDir(cfg.Certificates.StoragePath)
		if err != nil {
			return nil, fmt.Errorf("config: [certificates] storage_path: %w", err)
		}
		if _, err := os.Stat(d.Path()); err != nil {
			log.Warn("the local cert manager's directory does not exist: TLS listeners and pools will fail to provision until it does",
				"storage_path", d.Path())
		}
		return d, nil
	case config.CertManagerBarbican:
		oc := cfg.OpenStack
		return openstack.NewBarbicanFromCloud(ctx, openstack.AuthOptions{AuthURL: oc.AuthURL, Username: oc.Username,
			Password: oc.Password, ProjectName: oc.ProjectName, DomainName: oc.DomainName, Region: oc.Region,
			Interface: oc.Interface}, log)
	default:
		return nil, fmt.Errorf("config: [certificates] cert_manager: unknown cert manager %q", cfg.Certificates.CertManager)
	}
}

// loadAuthority loads the amphora CA, creating it on first start.
func loadAuthority(c config.Certificates) (*agentclient.Authority, error) {
	for _, p := range []string{c.CACertificate, c.CAPrivateKey} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, fmt.Errorf("create directory of %s: %w", p, err)
		}
	}
	return agentclient.LoadOrCreateAuthority(c.CACertificate, c.CAPrivateKey)
}

// newLocalDriver starts the local cloud from [local], sending heartbeats
// to the health manager of [health].
func newLocalDriver(ctx context.Context, cfg config.Config, auth *agentclient.Authority, log *slog.Logger) (*local.Driver, error) {
	lc := cfg.Local
	lcfg := local.Config{StateDir: lc.StateDir, Mode: local.Mode(lc.Mode), AgentBinary: lc.AgentBinary, Bridge: lc.Bridge,
		AgentPort: cfg.Worker.AgentPort, ClientCAPEM: auth.CACertPEM(), Logger: log}
	var err error
	if lc.VIPSubnet != "" {
		if lcfg.VIPSubnet, err = netip.ParsePrefix(lc.VIPSubnet); err != nil {
			return nil, fmt.Errorf("config: [local] vip_subnet: %w", err)
		}
	}
	if lcfg.ManagementSubnet, err = netip.ParsePrefix(lc.ManagementSubnet); err != nil {
		return nil, fmt.Errorf("config: [local] management_subnet: %w", err)
	}
	if cfg.Health.HeartbeatKey != "" {
		target, err := heartbeatTarget(cfg.Health.Bind)
		if err != nil {
			return nil, err
		}
		lcfg.HeartbeatTargets, lcfg.HeartbeatKey = []string{target}, cfg.Health.HeartbeatKey
		lcfg.HeartbeatInterval = cfg.Health.HeartbeatInterval
	} else {
		log.Warn("no [health] heartbeat_key: local amphorae send no heartbeats")
	}
	if err := os.MkdirAll(lc.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("create %s: %w", lc.StateDir, err)
	}
	return local.New(ctx, lcfg)
}

// heartbeatTarget is the address agents on this machine send heartbeats
// to: the health manager's bind address, loopback for a wildcard host.
func heartbeatTarget(bind string) (string, error) {
	host, port, err := net.SplitHostPort(bind)
	if err != nil {
		return "", fmt.Errorf("config: [health] bind: %w", err)
	}
	if a, err := netip.ParseAddr(host); host == "" || (err == nil && a.IsUnspecified()) {
		host = "127.0.0.1"
	}
	if port == "0" {
		return "", errors.New("config: [health] bind: the local driver needs a fixed heartbeat port, not 0")
	}
	return net.JoinHostPort(host, port), nil
}

// noopDrivers are the saga ports of one noop cloud.
func noopDrivers(cloud *noop.Cloud) *drivers {
	return &drivers{Compute: cloud, Network: cloud, Agent: cloud, Certificates: cloud}
}

// startWorker runs the saga runner and the consumers that start sagas from
// load-balancer and amphora events. shared, when not nil, are the drivers
// to use, owned by the caller (`ostia up` shares them with the API; replicas
// in one test share one noop cloud, as real workers share one Nova);
// otherwise the [worker] driver decides (newDrivers).
func (b *base) startWorker(ctx context.Context, g *errgroup.Group, pool *pgxpool.Pool, c *core, brokers []string, shared *drivers) error {
	log := b.log.With("service", "worker")
	var d drivers
	cleanup := func() {}
	if shared != nil {
		d = *shared
	} else {
		var err error
		if d, cleanup, err = b.newDrivers(ctx, b.cfg); err != nil {
			return err
		}
	}
	certs := d.CertManager
	if certs == nil {
		var err error
		if certs, err = b.newCertManager(ctx, b.cfg); err != nil {
			cleanup()
			return err
		}
	}
	fc := lbflows.Config{Commands: c.commands, Loader: c.handler,
		Compute: d.Compute, Network: d.Network, Agent: d.Agent, Certificates: d.Certificates, CertManager: certs}
	if d.Flows != nil {
		d.Flows(&fc)
	}
	store, err := saga.NewStore(saga.StoreConfig{Pool: pool, Registry: c.registry})
	if err != nil {
		cleanup()
		return err
	}
	flows, err := lbflows.New(fc)
	if err != nil {
		cleanup()
		return err
	}
	allFlows := flows.All()
	hk := b.cfg.HouseKeeping
	var rotator *certrotation.Rotator
	if hk.CertInterval > 0 {
		// The amphora view lists the candidates; a worker without an
		// inline projector reads it through a projector of its own, which
		// only queries (the projection consumer keeps the view).
		views := c.views
		if views == nil {
			if views, err = b.projector(pool, c.store, c.registry, b.cfg.Projector.CacheSize); err != nil {
				cleanup()
				return err
			}
		}
		rotator, err = certrotation.New(certrotation.Config{Commands: c.commands, Loader: c.handler, Sagas: store,
			Candidates: certCandidates(views), Agent: d.Agent, Certificates: d.Certificates, Interval: hk.CertInterval,
			ExpiryBuffer: hk.CertExpiryBuffer, Validity: b.cfg.Certificates.CertValidity, MaxPerScan: hk.CertRotateThreads,
			Logger: log.With("task", "cert_rotation")})
		if err != nil {
			cleanup()
			return err
		}
		allFlows = append(allFlows, rotator.Flow())
	}
	rc := saga.RunnerConfig{Store: store, Flows: allFlows, Logger: log, Metrics: b.metrics, Yield: c.foreground.YieldFunc()}
	runner, err := saga.NewRunner(rc)
	if err != nil {
		cleanup()
		return err
	}
	poison, err := b.poisonProducer(ctx, g, brokers)
	if err != nil {
		cleanup()
		return err
	}
	consumers, err := flows.Consumers(lbflows.TriggerConfig{Poison: poison, Brokers: brokers, Pool: pool, Store: store,
		Registry: c.registry, Kick: runner.Kick, Logger: log, Metrics: b.metrics, Yield: rc.Yield})
	if err != nil {
		cleanup()
		return err
	}
	for _, cons := range consumers {
		if err := cons.Start(ctx); err != nil {
			cleanup()
			return err
		}
	}
	g.Go(func() error {
		defer cleanup()
		return runner.Run(ctx)
	})
	if rotator != nil {
		// The rotator starts sagas only; the runner above executes them.
		g.Go(func() error { return rotator.Run(ctx) })
	}
	if hk.OrphanVIPInterval > 0 {
		sweeper := &lbflows.VIPAllocator{Network: d.Network, Logger: log.With("task", "orphan_vip_sweep")}
		g.Go(func() error {
			sweepOrphanVIPs(ctx, sweeper, c.store, hk.OrphanVIPInterval, hk.OrphanVIPGrace, log)
			return nil
		})
	}
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
	log.Info("saga worker started", "driver", b.cfg.Worker.Driver, "cert_interval", hk.CertInterval)
	return nil
}

// sweepOrphanVIPs deletes, every interval, the VIP ports the API allocated
// for load balancers it never stored (see lbflows.VIPAllocator.Sweep),
// until ctx ends.
func sweepOrphanVIPs(ctx context.Context, v *lbflows.VIPAllocator, store *eventstore.Store, interval, grace time.Duration, log *slog.Logger) {
	exists := func(ctx context.Context, lbID string) (bool, error) {
		ver, err := store.Version(ctx, events.AggregateLoadBalancer, lbID)
		return ver > 0, err
	}
	seen := map[string]time.Time{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := v.Sweep(ctx, exists, seen, grace, time.Now()); err != nil && ctx.Err() == nil {
			log.Warn("sweep orphaned VIP ports", "error", err)
		}
	}
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
	c, err := b.newCore(pool, false)
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
