// Package relaytest is a test harness for the event pipeline: a fresh
// database with an event store, the embedded broker, relays and idempotent
// consumers that record what they applied, and checks that every appended
// event was applied exactly once and in per-aggregate order. It is used by
// the relay tests and the benchmarks.
package relaytest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/broker"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/messaging"
	"github.com/ostia/ostia/internal/relay"
	"github.com/ostia/ostia/internal/testkit"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// Config configures a Harness.
type Config struct {
	// Partitions per topic (default 6).
	Partitions int
	// Persistent keeps the broker's data in a temporary directory, so
	// RestartBroker keeps the log and the group offsets.
	Persistent bool
	// Logger defaults to a logger that discards everything below Warn.
	Logger *slog.Logger
}

// Harness is one isolated pipeline: database, broker and helpers.
type Harness struct {
	TB       testing.TB
	Pool     *pgxpool.Pool
	Store    *eventstore.Store
	Registry *events.Registry
	Logger   *slog.Logger

	mu        sync.Mutex
	broker    *broker.Broker
	brokerCfg broker.Config
}

// New starts a harness; everything stops when the test ends.
func New(tb testing.TB, cfg Config) *Harness {
	tb.Helper()
	pool, _ := testkit.NewDatabase(tb)
	if _, err := pool.Exec(context.Background(), `CREATE TABLE relaytest_applied (
		seq               BIGSERIAL PRIMARY KEY,
		consumer          TEXT   NOT NULL,
		event_id          UUID   NOT NULL,
		aggregate_type    TEXT   NOT NULL,
		aggregate_id      TEXT   NOT NULL,
		aggregate_version BIGINT NOT NULL,
		topic             TEXT   NOT NULL,
		message_key       TEXT   NOT NULL)`); err != nil {
		tb.Fatalf("create applied table: %v", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	h := &Harness{
		TB:       tb,
		Pool:     pool,
		Store:    eventstore.New(pool),
		Registry: events.MustNewRegistry(),
		Logger:   logger,
	}
	h.brokerCfg = broker.Config{Partitions: cfg.Partitions, Logger: logger}
	if cfg.Persistent {
		h.brokerCfg.DataDir = tb.TempDir()
	}
	b, err := broker.Start(context.Background(), h.brokerCfg)
	if err != nil {
		tb.Fatalf("start broker: %v", err)
	}
	h.broker = b
	h.brokerCfg.Port = b.Port()
	tb.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.broker != nil {
			_ = h.broker.Close()
		}
	})
	return h
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Logf("%s", p)
	return len(p), nil
}

// Addrs returns the broker's addresses (stable across RestartBroker).
func (h *Harness) Addrs() []string {
	return []string{fmt.Sprintf("127.0.0.1:%d", h.brokerCfg.Port)}
}

// StopBroker closes the broker.
func (h *Harness) StopBroker() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.broker != nil {
		_ = h.broker.Close()
		h.broker = nil
	}
}

// StartBroker starts the broker again on the same port and data directory.
func (h *Harness) StartBroker() {
	h.mu.Lock()
	defer h.mu.Unlock()
	var err error
	for range 50 { // the old listener's port may take a moment to free up
		var b *broker.Broker
		b, err = broker.Start(context.Background(), h.brokerCfg)
		if err == nil {
			h.broker = b
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.TB.Errorf("restart broker: %v", err)
}

// NewProducer returns an idempotent sync producer, closed at the end.
func (h *Harness) NewProducer(clientID string) sarama.SyncProducer {
	p, err := sarama.NewSyncProducer(h.Addrs(), messaging.SaramaConfig(clientID))
	if err != nil {
		h.TB.Fatalf("producer: %v", err)
	}
	h.TB.Cleanup(func() { _ = p.Close() })
	return p
}

// Running is a relay running in the background.
type Running struct {
	Relay  *relay.Relay
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Stop cancels the relay and returns what Run returned.
func (r *Running) Stop() error {
	r.cancel()
	<-r.done
	return r.err
}

// StartRelay runs a relay with cfg; Store, Producer and Logger default to
// the harness's.
func (h *Harness) StartRelay(cfg relay.Config) *Running {
	if cfg.Store == nil {
		cfg.Store = h.Store
	}
	if cfg.Producer == nil {
		cfg.Producer = h.NewProducer("relay-" + cfg.HolderID)
	}
	if cfg.Logger == nil {
		cfg.Logger = h.Logger
	}
	r, err := relay.New(cfg)
	if err != nil {
		h.TB.Fatalf("relay: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &Running{Relay: r, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(run.done)
		run.err = r.Run(ctx)
	}()
	h.TB.Cleanup(func() { _ = run.Stop() })
	return run
}

// OnApplied is called inside the consumer's transaction after the harness
// recorded the event.
type OnApplied func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error

// StartConsumer starts an idempotent consumer of every event topic that
// records each applied event in relaytest_applied.
func (h *Harness) StartConsumer(name string, reg prometheus.Registerer, then OnApplied) *messaging.Consumer {
	c, err := messaging.NewConsumer(messaging.ConsumerConfig{
		Name:    name,
		Brokers: h.Addrs(),
		Topics:  events.Topics(),
		Pool:    h.Pool,
		Logger:  h.Logger,
		Metrics: reg,
		Handler: func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
			rec, _ := messaging.RecordFromContext(ctx)
			var topic, key string
			if rec != nil {
				topic, key = rec.Topic, string(rec.Key)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO relaytest_applied (consumer, event_id, aggregate_type, aggregate_id,
				aggregate_version, topic, message_key) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				name, env.GetEventId(), env.GetAggregateType(), env.GetAggregateId(), env.GetAggregateVersion(), topic, key); err != nil {
				return err
			}
			if then != nil {
				return then(ctx, tx, env)
			}
			return nil
		},
	})
	if err != nil {
		h.TB.Fatalf("consumer: %v", err)
	}
	if err := c.Start(context.Background()); err != nil {
		h.TB.Fatalf("start consumer: %v", err)
	}
	h.TB.Cleanup(func() { _ = c.Close() })
	return c
}

// Aggregate names one stream.
type Aggregate struct{ Type, ID string }

// Aggregates returns n aggregates alternating between load balancers and
// amphorae, with ids unique to this call.
func Aggregates(n int) []Aggregate {
	out := make([]Aggregate, n)
	for i := range out {
		t := events.AggregateLoadBalancer
		if i%2 == 1 {
			t = events.AggregateAmphora
		}
		out[i] = Aggregate{Type: t, ID: uuid.NewString()}
	}
	return out
}

// Event builds one envelope for an aggregate.
func (h *Harness) Event(agg Aggregate, now time.Time) *eventsv1.Envelope {
	var payload proto.Message = &eventsv1.LoadBalancerUpdated{UpdatedFields: []string{"name"}}
	if agg.Type == events.AggregateAmphora {
		payload = &eventsv1.AmphoraUpdated{UpdatedFields: []string{"status"}}
	}
	env, err := h.Registry.Envelope(uuid.NewString(), agg.ID, payload,
		events.Metadata{ProjectID: "p1", CorrelationID: "req-" + agg.ID, Actor: "ostia:test"}, now)
	if err != nil {
		h.TB.Fatalf("envelope: %v", err)
	}
	return env
}

// AppendOne appends one event to agg at the expected version and returns
// the envelope.
func (h *Harness) AppendOne(ctx context.Context, agg Aggregate, expected int64) (*eventsv1.Envelope, error) {
	env := h.Event(agg, time.Now())
	err := h.Store.Append(ctx, eventstore.Stream{AggregateType: agg.Type, AggregateID: agg.ID, ProjectID: "p1",
		ExpectedVersion: expected, Events: []*eventsv1.Envelope{env}})
	return env, err
}

// AppendConcurrently appends perAgg events, one per Append with the correct
// expected version, to every aggregate, one goroutine per aggregate. notify,
// when not nil, is called after every append.
func (h *Harness) AppendConcurrently(ctx context.Context, aggs []Aggregate, perAgg int, notify func()) error {
	errs := make([]error, len(aggs))
	var wg sync.WaitGroup
	for i, agg := range aggs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range int64(perAgg) {
				if _, err := h.AppendOne(ctx, agg, v); err != nil {
					errs[i] = fmt.Errorf("append %s v%d: %w", agg.ID, v+1, err)
					return
				}
				if notify != nil {
					notify()
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// AppliedCount returns how many rows consumer wrote (duplicates included).
func (h *Harness) AppliedCount(ctx context.Context, consumer string) int {
	var n int
	if err := h.Pool.QueryRow(ctx, `SELECT count(*) FROM relaytest_applied WHERE consumer = $1`, consumer).Scan(&n); err != nil {
		h.TB.Fatalf("count applied: %v", err)
	}
	return n
}

// WaitApplied waits until consumer applied n events.
func (h *Harness) WaitApplied(consumer string, n int, timeout time.Duration) {
	h.TB.Helper()
	testkit.Eventually(h.TB, timeout, 20*time.Millisecond, func() bool {
		return h.AppliedCount(context.Background(), consumer) >= n
	}, "consumer %s applied %d of %d events", consumer, h.AppliedCount(context.Background(), consumer), n)
}

// CheckExactlyOnceInOrder checks that consumer applied every event in the
// store exactly once, from the topic of its aggregate type, keyed by its
// aggregate id, with each aggregate's versions applied in order; and that
// the outbox is empty.
func (h *Harness) CheckExactlyOnceInOrder(ctx context.Context, consumer string) {
	h.TB.Helper()
	var stored, applied, distinct, missing, wrongRoute int
	q := func(dst *int, sql string, args ...any) {
		if err := h.Pool.QueryRow(ctx, sql, args...).Scan(dst); err != nil {
			h.TB.Fatalf("%s: %v", sql, err)
		}
	}
	q(&stored, `SELECT count(*) FROM events`)
	q(&applied, `SELECT count(*) FROM relaytest_applied WHERE consumer = $1`, consumer)
	q(&distinct, `SELECT count(DISTINCT event_id) FROM relaytest_applied WHERE consumer = $1`, consumer)
	q(&missing, `SELECT count(*) FROM events e WHERE NOT EXISTS
		(SELECT 1 FROM relaytest_applied a WHERE a.consumer = $1 AND a.event_id = e.event_id)`, consumer)
	q(&wrongRoute, `SELECT count(*) FROM relaytest_applied WHERE consumer = $1
		AND (topic <> 'ostia.' || aggregate_type || '.v1' OR message_key <> aggregate_id)`, consumer)
	// In apply order, each aggregate's versions must be 1, 2, 3, ...
	var outOfOrder int
	q(&outOfOrder, `SELECT count(*) FROM (
		SELECT aggregate_version, row_number() OVER (PARTITION BY aggregate_type, aggregate_id ORDER BY seq) AS n
		FROM relaytest_applied WHERE consumer = $1) x WHERE aggregate_version <> n`, consumer)
	outbox, err := h.Store.OutboxLen(ctx)
	if err != nil {
		h.TB.Fatal(err)
	}
	if applied != stored || distinct != stored || missing != 0 || wrongRoute != 0 || outOfOrder != 0 || outbox != 0 {
		h.TB.Fatalf("consumer %s: stored %d, applied %d (distinct %d), missing %d, wrong topic/key %d, out of order %d, outbox %d",
			consumer, stored, applied, distinct, missing, wrongRoute, outOfOrder, outbox)
	}
}

// CounterValue sums the counter or gauge series named name in reg.
func CounterValue(tb testing.TB, reg *prometheus.Registry, name string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}
