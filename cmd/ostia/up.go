package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ostia/ostia/internal/broker"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/healthmanager"
	"github.com/ostia/ostia/internal/qos"
	"github.com/ostia/ostia/sagas/lbflows"
)

// runUp runs every service in one process: the embedded Kafka-protocol
// broker (unless external brokers are configured), the relay and the API.
// apiQuietPeriod is how long after the last API write saga steps keep
// waiting ([worker] api_priority_wait): back-to-back calls of one client
// are one busy period.
const apiQuietPeriod = 5 * time.Millisecond

func runUp(ctx context.Context, env *environment, args []string) error {
	fs, path := newFlags(env, "up")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := setup(env, *path)
	if err != nil {
		return err
	}
	brokers := b.cfg.Kafka.Brokers
	if b.cfg.Kafka.Embedded {
		if err := os.MkdirAll(b.cfg.Kafka.DataDir, 0o750); err != nil {
			return fmt.Errorf("create kafka data dir: %w", err)
		}
		br, err := broker.Start(ctx, broker.Config{
			DataDir:    b.cfg.Kafka.DataDir,
			Port:       b.cfg.Kafka.EmbeddedPort,
			Partitions: b.cfg.Kafka.Partitions,
			Topics:     append(broker.DefaultTopics(), healthmanager.Topic),
			Logger:     b.log.With("service", "broker"),
		})
		if err != nil {
			return err
		}
		defer func() {
			if err := br.Close(); err != nil {
				b.log.Warn("close embedded broker", "error", err)
			}
		}()
		brokers = br.Addrs()
	}
	pool, err := b.openDB(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()

	var fg *qos.Gate
	if w := b.cfg.Worker.APIPriorityWait; w > 0 {
		fg = qos.NewGate(apiQuietPeriod, w)
	}
	r, closeRelay, err := b.newRelay(pool, brokers, fg.YieldFunc())
	if err != nil {
		return err
	}
	defer closeRelay()
	// The relay runs in this process: wake it after every append.
	c, err := b.newCore(pool, true, eventstore.WithAppendHook(r.Notify))
	if err != nil {
		return err
	}
	c.foreground = fg
	if b.cfg.Health.HeartbeatKey == "" {
		key, err := localHeartbeatKey(filepath.Join(filepath.Dir(b.cfg.Kafka.DataDir), "heartbeat.key"))
		if err != nil {
			return err
		}
		b.cfg.Health.HeartbeatKey = key
	}
	// The API and the worker share the drivers and the cert manager: the
	// API allocates VIP ports (as Octavia's API does), the create flow
	// adopts them; both read TLS references.
	d, closeDrivers, err := b.newDrivers(ctx, b.cfg)
	if err != nil {
		return err
	}
	defer closeDrivers()
	c.vips = &lbflows.VIPAllocator{Network: d.Network, Logger: b.log.With("service", "api")}
	if d.CertManager, err = b.newCertManager(ctx, b.cfg); err != nil {
		return err
	}
	c.certs = certChecker{d.CertManager}
	api, err := b.newGateway(pool, c)
	if err != nil {
		return err
	}

	// Say where everything listens once both servers are bound.
	var mu sync.Mutex
	bound := map[string]string{}
	announce := func(name string) func(net.Addr) {
		return func(a net.Addr) {
			mu.Lock()
			defer mu.Unlock()
			bound[name] = "http://" + a.String()
			if len(bound) == 2 {
				fmt.Fprintf(env.stdout, "Ostia is up.\n  Octavia v2 API: %s\n  metrics:        %s/metrics\n  Kafka brokers:  %s\n",
					bound["api"], bound["metrics"], strings.Join(brokers, ","))
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	// A service that cannot start stops the ones already started.
	abort := func(err error) error {
		cancel()
		_ = g.Wait()
		return err
	}
	if err := b.startHealth(ctx, g, pool, c, brokers); err != nil {
		return abort(err)
	}
	if err := b.startWorker(ctx, g, pool, c, brokers, &d); err != nil {
		return abort(err)
	}
	if err := b.consumeProjections(ctx, g, pool, c.views, brokers, c.foreground); err != nil {
		return abort(err)
	}
	g.Go(func() error { return r.Run(ctx) })
	g.Go(func() error { return serveHTTP(ctx, b.log, "api", b.cfg.API.Bind, api, announce("api")) })
	g.Go(func() error {
		return serveHTTP(ctx, b.log, "metrics", b.cfg.Metrics.Bind, b.metricsHandler(pool.Ping), announce("metrics"))
	})
	return g.Wait()
}

// localHeartbeatKey loads the heartbeat HMAC key of a single-machine
// installation from path, creating a random one on first start. The local
// compute driver hands it to the amphora agents it starts.
func localHeartbeatKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read heartbeat key: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate heartbeat key: %w", err)
	}
	key := hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write heartbeat key: %w", err)
	}
	return key, nil
}
