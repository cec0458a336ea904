// Package relay publishes the transactional outbox to Kafka.
//
// The relay reads outbox rows in global-position order, publishes them as
// one batch keyed by aggregate id (so every event of an aggregate goes to
// one partition, in append order), and deletes the rows only after Kafka
// acknowledged the whole batch. A crash between the two steps publishes the
// batch again after restart: delivery is at least once, and consumers
// dedupe by event id. Several relays may run; a lease row in the leases
// table lets only one of them publish at a time.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/messaging"
	"github.com/ostia/ostia/internal/postgres"
)

// Producer sends a batch of records and returns once every one of them is
// acknowledged, or an error. sarama.SyncProducer implements it; configure it
// with messaging.SaramaConfig.
type Producer interface {
	SendMessages(msgs []*sarama.ProducerMessage) error
}

// Config configures a Relay.
type Config struct {
	// Store is the event store whose outbox is relayed.
	Store *eventstore.Store
	// Producer publishes the batches.
	Producer Producer
	// PollInterval is how often the outbox is checked when idle and no
	// Notify arrives (default 20 ms).
	PollInterval time.Duration
	// BatchSize is the most outbox rows published at once (default 500).
	BatchSize int
	// LeaseName names the lease the relays compete for (default
	// "outbox-relay").
	LeaseName string
	// HolderID identifies this relay in the lease (default host name plus a
	// random suffix). It must be unique among running relays.
	HolderID string
	// LeaseTTL is how long the lease lasts without renewal (default 10 s).
	// A relay that dies keeps others from publishing this long.
	LeaseTTL time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed publish or
	// database error (defaults 50 ms and 5 s).
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics receives the relay's metrics; nil registers none.
	Metrics prometheus.Registerer
	// Yield, when set, is called before each batch is read from the outbox;
	// it may hold the relay back for a while (qos.Gate.Yield: in `ostia up`
	// a burst of API requests is answered before the work it started is
	// published and picked up).
	Yield func(ctx context.Context)

	// BeforePublish and AfterPublish are fault-injection hooks for tests.
	// An error from either makes Run return it at once, as if the process
	// died there: before the batch was sent, or after Kafka acknowledged it
	// but before the outbox rows were deleted. The lease is not released.
	BeforePublish func(ctx context.Context, batch []eventstore.Outboxed) error
	AfterPublish  func(ctx context.Context, batch []eventstore.Outboxed) error
}

func (c *Config) setDefaults() {
	if c.PollInterval <= 0 {
		c.PollInterval = 20 * time.Millisecond
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.LeaseName == "" {
		c.LeaseName = "outbox-relay"
	}
	if c.HolderID == "" {
		host, _ := os.Hostname()
		c.HolderID = host + "-" + uuid.NewString()[:8]
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 50 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("relay: missing store"))
	}
	if c.Producer == nil {
		errs = append(errs, errors.New("relay: missing producer"))
	}
	if c.LeaseTTL > 0 && c.LeaseTTL < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("relay: lease TTL %s is too short", c.LeaseTTL))
	}
	return errors.Join(errs...)
}

type metrics struct {
	published     prometheus.Counter
	publishErrors prometheus.Counter
	lag           prometheus.Gauge
	leaseHeld     prometheus.Gauge
	batchSeconds  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, holder string) (*metrics, error) {
	labels := prometheus.Labels{"holder": holder}
	m := &metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "ostia_relay_published_total",
			Help: "Outbox events published to Kafka and acknowledged.", ConstLabels: labels}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "ostia_relay_publish_errors_total",
			Help: "Batches Kafka did not acknowledge (they are retried).", ConstLabels: labels}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ostia_relay_outbox_lag",
			Help: "Events waiting in the outbox, sampled by the lease holder.", ConstLabels: labels}),
		leaseHeld: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ostia_relay_lease_held",
			Help: "1 while this relay holds the publishing lease.", ConstLabels: labels}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ostia_relay_batch_seconds",
			Help: "Time to publish one batch and delete it from the outbox.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	var err error
	if m.published, err = messaging.Register(reg, m.published); err != nil {
		return nil, err
	}
	if m.publishErrors, err = messaging.Register(reg, m.publishErrors); err != nil {
		return nil, err
	}
	if m.lag, err = messaging.Register(reg, m.lag); err != nil {
		return nil, err
	}
	if m.leaseHeld, err = messaging.Register(reg, m.leaseHeld); err != nil {
		return nil, err
	}
	if m.batchSeconds, err = messaging.Register(reg, m.batchSeconds); err != nil {
		return nil, err
	}
	return m, nil
}

// Relay publishes the outbox. Run it in one goroutine; Notify may be called
// from any goroutine.
type Relay struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	wake    chan struct{}
}

// New checks the configuration and registers the metrics.
func New(cfg Config) (*Relay, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Metrics, cfg.HolderID)
	if err != nil {
		return nil, fmt.Errorf("relay %s: %w", cfg.HolderID, err)
	}
	return &Relay{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "relay", "holder", cfg.HolderID, "lease", cfg.LeaseName),
		metrics: m,
		wake:    make(chan struct{}, 1),
	}, nil
}

// HolderID returns the id this relay holds the lease under.
func (r *Relay) HolderID() string { return r.cfg.HolderID }

// Notify wakes the relay to publish now instead of at the next poll. Call
// it after a successful append. It never blocks.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run publishes until ctx ends (then it releases the lease and returns nil)
// or a fault-injection hook fails (then it returns that error). Publish and
// database errors are logged and retried with backoff.
func (r *Relay) Run(ctx context.Context) error {
	var (
		leaseUntil time.Time // local deadline of the lease we hold
		renewedAt  time.Time
		backoff    = r.cfg.MinBackoff
		lastLag    time.Time
	)
	defer func() {
		r.metrics.leaseHeld.Set(0)
		if !leaseUntil.IsZero() && ctx.Err() != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := r.release(rctx); err != nil {
				r.log.Warn("release lease", "err", err)
			}
		}
	}()
	fail := func(what string, err error) bool {
		r.log.Warn(what, "err", err, "backoff", backoff)
		ok := r.wait(ctx, backoff)
		backoff = min(2*backoff, r.cfg.MaxBackoff)
		return ok
	}
	for ctx.Err() == nil {
		// Hold the lease: renew it when a third of the TTL has passed.
		now := time.Now()
		if now.After(leaseUntil) || now.Sub(renewedAt) > r.cfg.LeaseTTL/3 {
			held, err := r.acquire(ctx)
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				leaseUntil = time.Time{}
				r.metrics.leaseHeld.Set(0)
				if !fail("acquire lease", err) {
					break
				}
				continue
			}
			if !held {
				if !leaseUntil.IsZero() {
					r.log.Warn("lost the lease to another relay")
				}
				leaseUntil = time.Time{}
				r.metrics.leaseHeld.Set(0)
				// Standby: look again after a poll interval (Notify does not
				// help, the holder publishes).
				if !r.wait(ctx, max(r.cfg.PollInterval, r.cfg.LeaseTTL/10)) {
					break
				}
				continue
			}
			if leaseUntil.IsZero() {
				r.log.Info("holding the lease; publishing the outbox")
			}
			// Keep a safety margin: stop publishing well before the lease
			// could expire on the database's clock.
			leaseUntil = now.Add(r.cfg.LeaseTTL * 2 / 3)
			renewedAt = now
			r.metrics.leaseHeld.Set(1)
		}

		if r.cfg.Yield != nil {
			r.cfg.Yield(ctx)
		}
		n, err := r.publishBatch(ctx)
		var crash *injectedCrash
		if errors.As(err, &crash) {
			leaseUntil = time.Time{} // a crashed relay does not release
			return crash.err
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if !fail("publish outbox batch", err) {
				break
			}
			continue
		}
		backoff = r.cfg.MinBackoff
		if time.Since(lastLag) > 250*time.Millisecond {
			if l, err := r.cfg.Store.OutboxLen(ctx); err == nil {
				r.metrics.lag.Set(float64(l))
			}
			lastLag = time.Now()
		}
		if n < r.cfg.BatchSize && !r.wait(ctx, r.cfg.PollInterval) {
			break
		}
	}
	return nil
}

// wait sleeps d, or until Notify or ctx ends; false means ctx ended.
func (r *Relay) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-r.wake:
		return true
	case <-t.C:
		return true
	}
}

type injectedCrash struct{ err error }

func (e *injectedCrash) Error() string { return "injected crash: " + e.err.Error() }

// publishBatch publishes one batch of the outbox and deletes it; it returns
// how many events it published.
func (r *Relay) publishBatch(ctx context.Context) (int, error) {
	batch, err := r.cfg.Store.PendingOutbox(ctx, r.cfg.BatchSize)
	if err != nil {
		return 0, err
	}
	if len(batch) == 0 {
		return 0, nil
	}
	start := time.Now()
	if h := r.cfg.BeforePublish; h != nil {
		if err := h(ctx, batch); err != nil {
			return 0, &injectedCrash{err}
		}
	}
	msgs := make([]*sarama.ProducerMessage, len(batch))
	positions := make([]int64, len(batch))
	for i, o := range batch {
		value, err := events.Marshal(o.Envelope)
		if err != nil {
			return 0, err
		}
		env := o.Envelope
		msgs[i] = &sarama.ProducerMessage{
			Topic: o.Topic,
			Key:   sarama.StringEncoder(o.Key),
			Value: sarama.ByteEncoder(value),
			Headers: []sarama.RecordHeader{
				{Key: []byte(messaging.HeaderEventType), Value: []byte(env.GetType())},
				{Key: []byte(messaging.HeaderEventID), Value: []byte(env.GetEventId())},
				{Key: []byte(messaging.HeaderCorrelationID), Value: []byte(env.GetCorrelationId())},
			},
		}
		positions[i] = env.GetGlobalPosition()
	}
	if err := r.cfg.Producer.SendMessages(msgs); err != nil {
		r.metrics.publishErrors.Inc()
		return 0, fmt.Errorf("send %d records (positions %d..%d): %w", len(msgs), positions[0], positions[len(positions)-1], err)
	}
	if h := r.cfg.AfterPublish; h != nil {
		if err := h(ctx, batch); err != nil {
			return 0, &injectedCrash{err}
		}
	}
	r.metrics.published.Add(float64(len(batch)))
	// Kafka has the batch. If this delete fails, the batch is published
	// again later, which consumers dedupe. Use a context that survives the
	// shutdown so a clean stop does not cause needless duplicates.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.cfg.Store.AckOutbox(actx, positions); err != nil {
		return 0, err
	}
	r.metrics.batchSeconds.Observe(time.Since(start).Seconds())
	return len(batch), nil
}

// acquire takes or renews the lease; it reports whether this relay holds it.
// Portable SQL: an upsert that only overwrites our own or an expired lease.
func (r *Relay) acquire(ctx context.Context) (bool, error) {
	var held bool
	err := postgres.RetryTx(ctx, r.cfg.Store.Pool(), func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO leases (name, holder, expires_at)
			VALUES ($1, $2, now() + $3 * interval '1 millisecond')
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE leases.holder = excluded.holder OR leases.expires_at < now()`,
			r.cfg.LeaseName, r.cfg.HolderID, r.cfg.LeaseTTL.Milliseconds())
		if err != nil {
			return err
		}
		held = tag.RowsAffected() == 1
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", r.cfg.LeaseName, err)
	}
	return held, nil
}

// release gives the lease up so a standby relay takes over at once.
func (r *Relay) release(ctx context.Context) error {
	_, err := r.cfg.Store.Pool().Exec(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`,
		r.cfg.LeaseName, r.cfg.HolderID)
	if err != nil {
		return fmt.Errorf("release lease %s: %w", r.cfg.LeaseName, err)
	}
	return nil
}
