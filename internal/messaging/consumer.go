package messaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/postgres"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// Handler applies one event inside the consumer's transaction. It must make
// its changes through tx only: the transaction may be run more than once
// (serialization failures) and is rolled back when the handler fails.
type Handler func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error

type recordKey struct{}

// RecordFromContext returns the Kafka record a Handler is applying (topic,
// partition, offset, key, headers).
func RecordFromContext(ctx context.Context) (*sarama.ConsumerMessage, bool) {
	rec, ok := ctx.Value(recordKey{}).(*sarama.ConsumerMessage)
	return rec, ok
}

// ErrPermanent marks a handler error that retrying cannot fix (wrap it with
// fmt.Errorf("...: %w", messaging.ErrPermanent)). The message goes to the
// poison policy at once instead of after MaxAttempts.
var ErrPermanent = errors.New("permanent failure")

// PoisonProducer publishes a message the consumer gave up on.
// sarama.SyncProducer implements it.
type PoisonProducer interface {
	SendMessage(msg *sarama.ProducerMessage) (partition int32, offset int64, err error)
}

// ConsumerConfig configures a Consumer.
type ConsumerConfig struct {
	// Name is both the Kafka consumer group and the consumer column of
	// processed_events. It is part of the wire contract: renaming it
	// re-consumes (and re-applies) every topic from the start.
	Name string
	// Brokers are the bootstrap addresses.
	Brokers []string
	// Topics the group subscribes to.
	Topics []string
	// Pool is the database the handler's transactions run on; it must have
	// the processed_events table.
	Pool *pgxpool.Pool
	// Handler applies one event.
	Handler Handler
	// Filter, when set, is asked before any transaction: false means the
	// event needs nothing from this consumer (it starts nothing, or its
	// effect is already there), and it is acknowledged without a
	// transaction or a processed_events row. Filter may only read, and
	// must never say false for an event whose effect is still due. An
	// error falls back to the transaction.
	Filter func(ctx context.Context, env *eventsv1.Envelope) (bool, error)
	// Yield, when set, is called before each message is handled; it may
	// hold the consumer back for a while (qos.Gate.Yield: API requests
	// in the same process first).
	Yield func(ctx context.Context)
	// MaxAttempts bounds how often a failing message is tried before the
	// poison policy applies (default 5).
	MaxAttempts int
	// RetryBackoff is the first wait before a failed message is tried again;
	// it doubles up to MaxRetryBackoff (defaults 100 ms and 5 s).
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// Poison is the explicit poison policy: when set, a message that still
	// fails after MaxAttempts (or fails with ErrPermanent, or cannot be
	// decoded) is published to PoisonTopic(topic) with the reason in its
	// headers and then acknowledged. When nil, such a message is retried
	// forever, with an error log each time, and holds up its partition.
	Poison PoisonProducer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics receives the consumer's metrics; nil registers none.
	Metrics prometheus.Registerer
	// SaramaConfig overrides ConsumerSaramaConfig(Name) (tests).
	SaramaConfig *sarama.Config
}

func (c *ConsumerConfig) setDefaults() {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.MaxRetryBackoff <= 0 {
		c.MaxRetryBackoff = 5 * time.Second
	}
	if c.MaxRetryBackoff < c.RetryBackoff {
		c.MaxRetryBackoff = c.RetryBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SaramaConfig == nil {
		c.SaramaConfig = ConsumerSaramaConfig(c.Name)
	}
}

// Validate reports every problem of the configuration.
func (c ConsumerConfig) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("consumer: missing name"))
	}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("consumer: missing brokers"))
	}
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("consumer: missing topics"))
	}
	if c.Pool == nil {
		errs = append(errs, errors.New("consumer: missing database pool"))
	}
	if c.Handler == nil {
		errs = append(errs, errors.New("consumer: missing handler"))
	}
	return errors.Join(errs...)
}

type consumerMetrics struct {
	consumed   *prometheus.CounterVec
	duplicates *prometheus.CounterVec
	filtered   *prometheus.CounterVec
	errors     *prometheus.CounterVec
	poisoned   *prometheus.CounterVec
	lag        *prometheus.GaugeVec
	duration   *prometheus.HistogramVec
}

func newConsumerMetrics(reg prometheus.Registerer, name string) (*consumerMetrics, error) {
	labels := prometheus.Labels{"consumer": name}
	m := &consumerMetrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ostia_consumer_events_applied_total", Help: "Events applied by the consumer's handler and committed.",
			ConstLabels: labels}, []string{"topic"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ostia_consumer_duplicates_skipped_total", Help: "Redelivered events skipped because processed_events already had them.",
			ConstLabels: labels}, []string{"topic"}),
		filtered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ostia_consumer_filtered_total", Help: "Events acknowledged without a transaction because the consumer's filter said they need nothing.",
			ConstLabels: labels}, []string{"topic"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ostia_consumer_handler_errors_total", Help: "Failed attempts to apply an event (each is retried or poisoned).",
			ConstLabels: labels}, []string{"topic"}),
		poisoned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ostia_consumer_poisoned_total", Help: "Events given up on and published to the poison topic.",
			ConstLabels: labels}, []string{"topic"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ostia_consumer_lag_messages", Help: "Records behind the partition's high-water mark after the last handled record.",
			ConstLabels: labels}, []string{"topic", "partition"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ostia_consumer_handle_seconds", Help: "Time to apply one event, transaction included.",
			ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"topic"}),
	}
	var err error
	if m.consumed, err = Register(reg, m.consumed); err != nil {
		return nil, err
	}
	if m.duplicates, err = Register(reg, m.duplicates); err != nil {
		return nil, err
	}
	if m.filtered, err = Register(reg, m.filtered); err != nil {
		return nil, err
	}
	if m.errors, err = Register(reg, m.errors); err != nil {
		return nil, err
	}
	if m.poisoned, err = Register(reg, m.poisoned); err != nil {
		return nil, err
	}
	if m.lag, err = Register(reg, m.lag); err != nil {
		return nil, err
	}
	if m.duration, err = Register(reg, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// Consumer is an idempotent consumer-group member. Each record is decoded
// into an Envelope and applied in one SERIALIZABLE transaction (retried as a
// whole on serialization failures) that first inserts (consumer, event_id)
// into processed_events; when the row already exists the event was applied
// before and the handler is skipped. The offset is marked only after the
// commit, so delivery is at least once and the effect exactly once.
//
// Records of one partition are handled one after another, in order;
// partitions are handled concurrently.
type Consumer struct {
	cfg     ConsumerConfig
	log     *slog.Logger
	metrics *consumerMetrics

	mu      sync.Mutex
	started bool
	group   sarama.ConsumerGroup
	stop    context.CancelFunc
	done    chan struct{}
}

// NewConsumer checks the configuration and registers the metrics. Start
// joins the group.
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newConsumerMetrics(cfg.Metrics, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", cfg.Name, err)
	}
	return &Consumer{
		cfg:     cfg,
		log:     cfg.Logger.With("consumer", cfg.Name),
		metrics: m,
	}, nil
}

// Start connects to the brokers and consumes in the background until ctx is
// cancelled or Close is called. A Consumer can be started once.
func (c *Consumer) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return fmt.Errorf("consumer %s: already started", c.cfg.Name)
	}
	group, err := sarama.NewConsumerGroup(c.cfg.Brokers, c.cfg.Name, c.cfg.SaramaConfig)
	if err != nil {
		return fmt.Errorf("consumer %s: join group: %w", c.cfg.Name, err)
	}
	runCtx, stop := context.WithCancel(ctx)
	c.started, c.group, c.stop, c.done = true, group, stop, make(chan struct{})
	go c.logGroupErrors(group)
	go c.run(runCtx)
	return nil
}

// Run is Start, then waiting for ctx to end, then Close.
func (c *Consumer) Run(ctx context.Context) error {
	if err := c.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return c.Close()
}

// Close stops taking new records, waits for the records being handled to
// finish (their transactions commit or roll back; they are not cancelled),
// commits the marked offsets and leaves the group.
func (c *Consumer) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started || c.group == nil {
		return nil
	}
	c.stop()
	<-c.done
	err := c.group.Close()
	c.group = nil
	if err != nil {
		return fmt.Errorf("consumer %s: close: %w", c.cfg.Name, err)
	}
	return nil
}

func (c *Consumer) logGroupErrors(group sarama.ConsumerGroup) {
	for err := range group.Errors() {
		c.log.Warn("consumer group error", "err", err)
	}
}

// run keeps the member in the group: Consume returns at every rebalance.
func (c *Consumer) run(ctx context.Context) {
	defer close(c.done)
	h := &groupHandler{c: c, stop: ctx}
	backoff := c.cfg.RetryBackoff
	for ctx.Err() == nil {
		err := c.group.Consume(ctx, c.cfg.Topics, h)
		if err == nil || ctx.Err() != nil || errors.Is(err, sarama.ErrClosedConsumerGroup) {
			backoff = c.cfg.RetryBackoff
			continue
		}
		c.log.Warn("consume failed; retrying", "err", err, "backoff", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, c.cfg.MaxRetryBackoff)
	}
}

type groupHandler struct {
	c    *Consumer
	stop context.Context
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case rec, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			if !h.c.handle(h.stop, sess.Context(), rec) {
				return nil
			}
			sess.MarkMessage(rec, "")
			h.c.metrics.lag.WithLabelValues(rec.Topic, strconv.Itoa(int(rec.Partition))).
				Set(float64(max(claim.HighWaterMarkOffset()-rec.Offset-1, 0)))
		case <-sess.Context().Done():
			return nil
		}
	}
}

// handle applies one record until it is applied, skipped as a duplicate or
// poisoned (true: mark it), or until the consumer stops or loses the
// partition (false: leave it for redelivery).
func (c *Consumer) handle(stop, session context.Context, rec *sarama.ConsumerMessage) bool {
	if c.cfg.Yield != nil {
		c.cfg.Yield(stop)
	}
	// The transaction is not cancelled by Close: an in-flight handler
	// finishes. Retries stop early when stopping.
	txCtx := context.WithValue(context.WithoutCancel(stop), recordKey{}, rec)
	log := c.log.With("topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "key", string(rec.Key))
	env, err := events.Unmarshal(rec.Value)
	if err == nil && env.GetEventId() == "" {
		err = errors.New("envelope has no event id")
	}
	if err != nil {
		c.metrics.errors.WithLabelValues(rec.Topic).Inc()
		err = fmt.Errorf("%w: %w", ErrPermanent, err)
		if c.cfg.Poison != nil {
			return c.poison(stop, session, rec, log, err, 1)
		}
		for {
			c.stuck(log, 1, err)
			if !sleep(stop, c.cfg.MaxRetryBackoff) || session.Err() != nil {
				return false
			}
		}
	}
	log = log.With("event_id", env.GetEventId(), "event_type", env.GetType(), "correlation_id", env.GetCorrelationId())
	if c.cfg.Filter != nil {
		want, err := c.cfg.Filter(txCtx, env)
		if err == nil && !want {
			c.metrics.filtered.WithLabelValues(rec.Topic).Inc()
			return true
		}
	}
	backoff := c.cfg.RetryBackoff
	for attempt := 1; ; attempt++ {
		start := time.Now()
		dup, err := c.apply(txCtx, env)
		if err == nil {
			c.metrics.duration.WithLabelValues(rec.Topic).Observe(time.Since(start).Seconds())
			if dup {
				c.metrics.duplicates.WithLabelValues(rec.Topic).Inc()
				log.Debug("skipped redelivered event")
			} else {
				c.metrics.consumed.WithLabelValues(rec.Topic).Inc()
			}
			return true
		}
		c.metrics.errors.WithLabelValues(rec.Topic).Inc()
		if errors.Is(err, ErrPermanent) || attempt >= c.cfg.MaxAttempts {
			if c.cfg.Poison != nil {
				return c.poison(stop, session, rec, log, err, attempt)
			}
			c.stuck(log, attempt, err)
			backoff = c.cfg.MaxRetryBackoff
		} else {
			log.Warn("handler failed; will retry", "attempt", attempt, "err", err, "backoff", backoff)
		}
		if !sleep(stop, backoff) || session.Err() != nil {
			return false
		}
		backoff = min(2*backoff, c.cfg.MaxRetryBackoff)
	}
}

type afterCommitKey struct{}

type afterCommit struct{ fns []func() }

// AfterCommit registers fn to run once the handler's transaction has
// committed (for example to wake a worker that reads what the handler
// wrote). Outside a consumer's handler it runs fn at once.
func AfterCommit(ctx context.Context, fn func()) {
	if ac, ok := ctx.Value(afterCommitKey{}).(*afterCommit); ok {
		ac.fns = append(ac.fns, fn)
		return
	}
	fn()
}

// apply runs the handler in a transaction guarded by processed_events.
func (c *Consumer) apply(ctx context.Context, env *eventsv1.Envelope) (duplicate bool, err error) {
	ac := &afterCommit{}
	ctx = context.WithValue(ctx, afterCommitKey{}, ac)
	defer func() {
		if err == nil {
			for _, fn := range ac.fns {
				fn()
			}
		}
	}()
	err = postgres.RetryTx(ctx, c.cfg.Pool, func(tx pgx.Tx) error {
		duplicate = false
		ac.fns = ac.fns[:0]
		tag, err := tx.Exec(ctx, `INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)
			ON CONFLICT (consumer, event_id) DO NOTHING`, c.cfg.Name, env.GetEventId())
		if err != nil {
			return fmt.Errorf("record processed event: %w", err)
		}
		if tag.RowsAffected() == 0 {
			duplicate = true
			return nil
		}
		return c.cfg.Handler(ctx, tx, env)
	})
	return duplicate, err
}

// stuck logs that a record cannot be applied and, with no poison policy,
// will be retried forever: an event is never dropped silently.
func (c *Consumer) stuck(log *slog.Logger, attempts int, cause error) {
	log.Error("CONSUMER STUCK: event cannot be applied and no poison policy is configured; the partition is blocked",
		"attempts", attempts, "err", cause)
}

// poison publishes a record that cannot be applied to its poison topic,
// with the reason in the headers; true means it may now be acknowledged.
func (c *Consumer) poison(stop, session context.Context, rec *sarama.ConsumerMessage, log *slog.Logger, cause error, attempts int) bool {
	headers := make([]sarama.RecordHeader, 0, len(rec.Headers)+5)
	for _, h := range rec.Headers {
		if h != nil {
			headers = append(headers, *h)
		}
	}
	headers = append(headers,
		sarama.RecordHeader{Key: []byte(HeaderPoisonReason), Value: []byte(cause.Error())},
		sarama.RecordHeader{Key: []byte(HeaderPoisonTopic), Value: []byte(rec.Topic)},
		sarama.RecordHeader{Key: []byte(HeaderPoisonConsumer), Value: []byte(c.cfg.Name)},
		sarama.RecordHeader{Key: []byte(HeaderPoisonPartition), Value: []byte(strconv.Itoa(int(rec.Partition)))},
		sarama.RecordHeader{Key: []byte(HeaderPoisonOffset), Value: []byte(strconv.FormatInt(rec.Offset, 10))},
	)
	msg := &sarama.ProducerMessage{
		Topic:   PoisonTopic(rec.Topic),
		Key:     sarama.ByteEncoder(rec.Key),
		Value:   sarama.ByteEncoder(rec.Value),
		Headers: headers,
	}
	backoff := c.cfg.RetryBackoff
	for {
		_, _, err := c.cfg.Poison.SendMessage(msg)
		if err == nil {
			break
		}
		log.Error("publish to poison topic failed; retrying", "poison_topic", msg.Topic, "err", err)
		if !sleep(stop, backoff) || session.Err() != nil {
			return false
		}
		backoff = min(2*backoff, c.cfg.MaxRetryBackoff)
	}
	c.metrics.poisoned.WithLabelValues(rec.Topic).Inc()
	log.Error("POISONED: event sent to the poison topic and skipped", "poison_topic", msg.Topic,
		"attempts", attempts, "reason", cause)
	return true
}

// sleep waits d or until ctx ends; it reports whether the wait completed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
