// Package broker runs an embedded single-node Kafka-protocol broker (kfake)
// on 127.0.0.1: the log for tests and for the single-machine default. With a
// data directory, records, topics and consumer-group offsets survive a
// restart.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/messaging"
)

// Config configures the embedded broker.
type Config struct {
	// DataDir persists the log and group offsets there; empty keeps
	// everything in memory.
	DataDir string
	// Port to listen on at 127.0.0.1; 0 picks a free port.
	Port int
	// Partitions of each topic created at start (default 6).
	Partitions int
	// Topics to create; empty means DefaultTopics(). Existing topics are
	// left as they are, so a restart on the same DataDir is idempotent.
	Topics []string
	// SyncWrites fsyncs every produced batch (durable across an OS crash,
	// several times slower). Only meaningful with DataDir.
	SyncWrites bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// DefaultTopics are the event topics of every aggregate type and their
// poison topics.
func DefaultTopics() []string {
	var out []string
	for _, t := range events.Topics() {
		out = append(out, t, messaging.PoisonTopic(t))
	}
	return out
}

// Broker is a running embedded broker.
type Broker struct {
	cluster *kfake.Cluster
	addrs   []string
	log     *slog.Logger
}

// Start starts the broker and creates the configured topics.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	if cfg.Partitions <= 0 {
		cfg.Partitions = 6
	}
	if len(cfg.Topics) == 0 {
		cfg.Topics = DefaultTopics()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("broker: invalid port %d", cfg.Port)
	}
	opts := []kfake.Opt{
		// One broker; kfake always listens on 127.0.0.1.
		kfake.Ports(cfg.Port),
		kfake.ClusterID("ostia"),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.SeedTopics(int32(cfg.Partitions), cfg.Topics...),
		// Let a crashed consumer's partitions move on within seconds.
		kfake.GroupMinSessionTimeout(time.Second),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
		if cfg.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker (port %d, data dir %q): %w", cfg.Port, cfg.DataDir, err)
	}
	b := &Broker{cluster: c, addrs: c.ListenAddrs(), log: cfg.Logger.With("component", "broker")}
	// Seeded topics exist only on a fresh data directory; topics added to
	// the list since then are created over the wire.
	if err := b.ensureTopics(ctx, cfg.Topics, cfg.Partitions); err != nil {
		c.Close()
		return nil, err
	}
	b.log.Info("embedded broker started", "addrs", b.addrs, "data_dir", cfg.DataDir, "partitions", cfg.Partitions)
	return b, nil
}

func (b *Broker) ensureTopics(ctx context.Context, topics []string, partitions int) error {
	conf := sarama.NewConfig()
	conf.ClientID = "ostia-broker-admin"
	conf.Version = sarama.V3_6_0_0
	conf.Net.DialTimeout = 5 * time.Second
	admin, err := sarama.NewClusterAdmin(b.addrs, conf)
	if err != nil {
		return fmt.Errorf("broker: connect admin: %w", err)
	}
	defer admin.Close()
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("broker: list topics: %w", err)
	}
	for _, t := range topics {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("broker: create topics: %w", err)
		}
		if _, ok := existing[t]; ok {
			continue
		}
		err := admin.CreateTopic(t, &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: 1}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("broker: create topic %s: %w", t, err)
		}
	}
	return nil
}

// Addrs returns the host:port addresses clients bootstrap from.
func (b *Broker) Addrs() []string { return append([]string(nil), b.addrs...) }

// Port returns the port the broker listens on, to restart it on the same
// address.
func (b *Broker) Port() int {
	if len(b.addrs) == 0 {
		return 0
	}
	_, port, err := net.SplitHostPort(b.addrs[0])
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(port)
	return p
}

// Close stops the broker; with a data directory it flushes state first.
func (b *Broker) Close() error {
	b.cluster.Close()
	b.log.Info("embedded broker stopped", "addrs", b.addrs)
	return nil
}
