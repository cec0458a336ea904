package main

import (
	"context"
	"fmt"
	"os"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/messaging"
	"github.com/ostia/ostia/internal/relay"
)

func runRelay(ctx context.Context, env *environment, args []string) error {
	fs, path := newFlags(env, "relay")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := setup(env, *path)
	if err != nil {
		return err
	}
	if b.cfg.Kafka.Embedded {
		return fmt.Errorf("ostia relay needs external brokers ([kafka] brokers); the embedded broker runs with `ostia up`")
	}
	pool, err := b.openDB(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	r, closeRelay, err := b.newRelay(pool, b.cfg.Kafka.Brokers, nil)
	if err != nil {
		return err
	}
	defer closeRelay()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.Run(ctx) })
	g.Go(func() error {
		return serveHTTP(ctx, b.log, "metrics", b.cfg.Metrics.Bind, b.metricsHandler(pool.Ping), nil)
	})
	return g.Wait()
}

// poisonProducer returns the producer consumers publish events they give
// up on to (topic <topic>.poison), closed when ctx ends.
func (b *base) poisonProducer(ctx context.Context, g *errgroup.Group, brokers []string) (messaging.PoisonProducer, error) {
	p, err := sarama.NewSyncProducer(brokers, messaging.SaramaConfig(b.cfg.Kafka.ClientID+"-poison"))
	if err != nil {
		return nil, fmt.Errorf("poison producer: connect to kafka %v: %w", brokers, err)
	}
	g.Go(func() error {
		<-ctx.Done()
		return p.Close()
	})
	return p, nil
}

// newRelay builds the outbox relay with its own Kafka producer.
func (b *base) newRelay(pool *pgxpool.Pool, brokers []string, yield func(context.Context)) (*relay.Relay, func(), error) {
	producer, err := sarama.NewSyncProducer(brokers, messaging.SaramaConfig(b.cfg.Kafka.ClientID+"-relay"))
	if err != nil {
		return nil, nil, fmt.Errorf("relay: connect to kafka %v: %w", brokers, err)
	}
	host, _ := os.Hostname()
	r, err := relay.New(relay.Config{
		Store:        eventstore.New(pool),
		Producer:     producer,
		PollInterval: b.cfg.Relay.PollInterval,
		BatchSize:    b.cfg.Relay.BatchSize,
		LeaseTTL:     b.cfg.Relay.LeaseTTL,
		HolderID:     fmt.Sprintf("%s-%d", host, os.Getpid()),
		Logger:       b.log.With("service", "relay"),
		Metrics:      b.metrics,
		Yield:        yield,
	})
	if err != nil {
		_ = producer.Close()
		return nil, nil, err
	}
	return r, func() {
		if err := producer.Close(); err != nil {
			b.log.Warn("close relay producer", "error", err)
		}
	}, nil
}
