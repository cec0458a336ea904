package healthmanager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/commands"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/messaging"
	"github.com/ostia/ostia/internal/postgres"
	healthv1 "github.com/ostia/ostia/proto/ostia/health/v1"
)

// Actor is the actor recorded on the events the health manager causes.
const Actor = "ostia:health-manager"

// ConsumerConfig configures the status Consumer.
type ConsumerConfig struct {
	// Brokers are the bootstrap addresses; Group defaults to ConsumerGroup.
	Brokers []string
	Group   string
	// Pool is the database with amphora_health, listener_stats and the
	// event store's streams table.
	Pool *pgxpool.Pool
	// Events reads aggregate events (the *eventstore.Store on Pool);
	// Registry decodes them (default events.MustNewRegistry()).
	Events   EventSource
	Registry *events.Registry
	// Commands records operating statuses.
	Commands *commands.Service
	// HeartbeatInterval is the amphora send period (default 10 s): a
	// heartbeat processed this long after its receipt is too old to count.
	HeartbeatInterval time.Duration
	// StatsBucket is the listener_stats_history bucket (default 1 minute).
	StatsBucket time.Duration
	// BatchSize and BatchWait bound a partition's batch (default 500
	// records, 5 ms after the first record).
	BatchSize int
	BatchWait time.Duration
	// StatusWorkers bounds concurrent status commands per batch (default 8).
	StatusWorkers int
	// Logger defaults to slog.Default(); Metrics nil registers none.
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	// SaramaConfig overrides messaging.ConsumerSaramaConfig.
	SaramaConfig *sarama.Config
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnApplied, if set, is called after each batch for every heartbeat it
	// applied, with its receive time and the time its health row,
	// statistics and statuses were all committed (tests, benchmarks).
	OnApplied func(amphoraID string, receivedAt, visibleAt time.Time)
}

func (c *ConsumerConfig) setDefaults() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("missing brokers"))
	}
	if c.Pool == nil {
		errs = append(errs, errors.New("missing database pool"))
	}
	if c.Events == nil {
		errs = append(errs, errors.New("missing event source"))
	}
	if c.Commands == nil {
		errs = append(errs, errors.New("missing commands service"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("healthmanager: consumer: %w", err)
	}
	if c.Group == "" {
		c.Group = ConsumerGroup
	}
	if c.Registry == nil {
		c.Registry = events.MustNewRegistry()
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.StatsBucket <= 0 {
		c.StatsBucket = time.Minute
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.BatchWait <= 0 {
		c.BatchWait = 5 * time.Millisecond
	}
	if c.StatusWorkers <= 0 {
		c.StatusWorkers = 8
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SaramaConfig == nil {
		c.SaramaConfig = messaging.ConsumerSaramaConfig(c.Group)
		c.SaramaConfig.ChannelBufferSize = 4 * c.BatchSize
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Consumer is a member of the health consumer group: it applies heartbeats
// from Topic to amphora_health and listener statistics and records the
// derived operating statuses. Records of a partition are handled in
// batches, in order; partitions concurrently. Offsets are marked after a
// batch is applied, so delivery is at least once; the sequence rule makes a
// redelivered heartbeat a no-op.
type Consumer struct {
	cfg     ConsumerConfig
	log     *slog.Logger
	metrics *consumerMetrics
	cache   *stateCache

	processed atomic.Uint64
	applied   atomic.Uint64

	mu      sync.Mutex
	started bool
	group   sarama.ConsumerGroup
	stop    context.CancelFunc
	done    chan struct{}
}

// NewConsumer checks the configuration and registers the metrics.
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	m, err := newConsumerMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("healthmanager: consumer: %w", err)
	}
	return &Consumer{
		cfg:     cfg,
		log:     cfg.Logger.With(slog.String("component", "health-consumer"), slog.String("group", cfg.Group)),
		metrics: m,
		cache:   newStateCache(cfg.Pool, cfg.Events, cfg.Registry),
	}, nil
}

// Start joins the group and consumes in the background until ctx ends or
// Close is called.
func (c *Consumer) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return errors.New("healthmanager: consumer already started")
	}
	group, err := sarama.NewConsumerGroup(c.cfg.Brokers, c.cfg.Group, c.cfg.SaramaConfig)
	if err != nil {
		return fmt.Errorf("healthmanager: consumer: join group %s: %w", c.cfg.Group, err)
	}
	runCtx, stop := context.WithCancel(ctx)
	c.started, c.group, c.stop, c.done = true, group, stop, make(chan struct{})
	go func() {
		for err := range group.Errors() {
			c.log.Warn("consumer group error", slog.Any("error", err))
		}
	}()
	go c.run(runCtx)
	return nil
}

// Close stops consuming, lets the batch in progress finish, commits marked
// offsets and leaves the group.
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
		return fmt.Errorf("healthmanager: consumer: close: %w", err)
	}
	return nil
}

// ConsumerStats counts heartbeats this consumer took from the topic and
// applied (statistics and seq recorded).
type ConsumerStats struct{ Processed, Applied uint64 }

// Stats returns this consumer's counters.
func (c *Consumer) Stats() ConsumerStats {
	return ConsumerStats{Processed: c.processed.Load(), Applied: c.applied.Load()}
}

func (c *Consumer) run(ctx context.Context) {
	defer close(c.done)
	h := &claimHandler{c: c, stop: ctx}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := c.group.Consume(ctx, []string{Topic}, h)
		if err == nil || ctx.Err() != nil || errors.Is(err, sarama.ErrClosedConsumerGroup) {
			continue
		}
		c.log.Warn("consume failed; retrying", slog.Any("error", err), slog.Duration("backoff", backoff))
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

type claimHandler struct {
	c    *Consumer
	stop context.Context
}

func (h *claimHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *claimHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim collects up to BatchSize records (waiting at most BatchWait
// after the first), applies them and marks the last one.
func (h *claimHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	c := h.c
	batch := make([]*sarama.ConsumerMessage, 0, c.cfg.BatchSize)
	for {
		batch = batch[:0]
		select {
		case rec, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			batch = append(batch, rec)
		case <-sess.Context().Done():
			return nil
		}
		deadline := time.NewTimer(c.cfg.BatchWait)
	fill:
		for len(batch) < c.cfg.BatchSize {
			select {
			case rec, ok := <-claim.Messages():
				if !ok {
					break fill
				}
				batch = append(batch, rec)
			case <-deadline.C:
				break fill
			}
		}
		deadline.Stop()
		// The batch's transactions are not cancelled by shutdown; retries
		// stop when the session ends (the records are then redelivered).
		ctx := context.WithoutCancel(h.stop)
		backoff := 100 * time.Millisecond
		for {
			err := c.processBatch(ctx, batch)
			if err == nil {
				break
			}
			c.log.Warn("applying heartbeat batch failed; retrying", slog.Int("records", len(batch)),
				slog.Int("partition", int(claim.Partition())), slog.Any("error", err), slog.Duration("backoff", backoff))
			if !sleep(h.stop, backoff) || sess.Context().Err() != nil {
				return nil
			}
			backoff = min(2*backoff, 5*time.Second)
		}
		sess.MarkMessage(batch[len(batch)-1], "")
	}
}

// item is one heartbeat of a batch.
type item struct {
	hb       *healthv1.AmphoraHeartbeat
	lbID     string
	project  string
	known    bool // amphora exists, is not deleted and serves an existing load balancer
	slow     bool // processed heartbeat_interval or more after receipt
	matches  bool // listener count as expected (refreshes liveness)
	applied  bool
	received time.Time
}

// processBatch applies one batch. It may run again for the same records
// (after an error or a rebalance) with the same effect.
func (c *Consumer) processBatch(ctx context.Context, recs []*sarama.ConsumerMessage) error {
	now := c.cfg.Now()
	items := make([]*item, 0, len(recs))
	ampIDs := make([]string, 0, len(recs))
	seen := map[string]bool{}
	for _, rec := range recs {
		hb, err := Unmarshal(rec.Value)
		if err != nil {
			c.metrics.processed.WithLabelValues(resultMalformed).Inc()
			c.log.Error("skipping undecodable heartbeat record", slog.Int("partition", int(rec.Partition)),
				slog.Int64("offset", rec.Offset), slog.Any("error", err))
			continue
		}
		it := &item{hb: hb, received: receivedAt(hb)}
		it.slow = now.Sub(it.received) >= c.cfg.HeartbeatInterval
		items = append(items, it)
		if !seen[hb.GetAmphoraId()] {
			seen[hb.GetAmphoraId()] = true
			ampIDs = append(ampIDs, hb.GetAmphoraId())
		}
	}
	if len(items) == 0 {
		return nil
	}

	// Resolve amphora -> load balancer, both from the (refreshed) cache.
	amps, err := c.cache.amphorae(ctx, ampIDs)
	if err != nil {
		return err
	}
	ampLB := make(map[string][2]string, len(amps))
	var lbIDs []string
	lbSeen := map[string]bool{}
	for id, e := range amps {
		e.mu.Lock()
		st := e.state
		if st.Exists() && st.Status() != amphora.StatusDeleted {
			a := st.Amphora()
			if a.LoadbalancerId != "" {
				ampLB[id] = [2]string{a.LoadbalancerId, a.ProjectId}
				if !lbSeen[a.LoadbalancerId] {
					lbSeen[a.LoadbalancerId] = true
					lbIDs = append(lbIDs, a.LoadbalancerId)
				}
			}
		}
		e.mu.Unlock()
	}
	lbs, err := c.cache.loadBalancers(ctx, lbIDs)
	if err != nil {
		return err
	}
	var orphans []string
	orphaned := map[string]bool{}
	for _, it := range items {
		ref, ok := ampLB[it.hb.GetAmphoraId()]
		if ok {
			e := lbs[ref[0]]
			e.mu.Lock()
			if e.state.Exists() {
				it.known, it.lbID, it.project = true, ref[0], ref[1]
				it.matches = Derive(e.state, it.hb).CountMatches(it.hb)
			}
			e.mu.Unlock()
		}
		if !it.known {
			c.metrics.processed.WithLabelValues(resultUnknown).Inc()
			if !orphaned[it.hb.GetAmphoraId()] {
				orphaned[it.hb.GetAmphoraId()] = true
				orphans = append(orphans, it.hb.GetAmphoraId())
				c.log.Debug("heartbeat from an amphora that is unknown, deleted or not serving a load balancer",
					slog.String("amphora_id", it.hb.GetAmphoraId()), slog.String("source", it.hb.GetSource()))
			}
		}
	}
	if err := forgetAmphorae(ctx, c.cfg.Pool, orphans); err != nil {
		return err
	}

	// Rounds: each amphora at most once per statement, in topic order.
	var rounds [][]*item
	count := map[string]int{}
	for _, it := range items {
		if !it.known {
			continue
		}
		r := count[it.hb.GetAmphoraId()]
		count[it.hb.GetAmphoraId()]++
		if r == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[r] = append(rounds[r], it)
	}
	for _, round := range rounds {
		if err := c.applyRound(ctx, round, now); err != nil {
			return err
		}
	}

	c.recordStatuses(ctx, items)

	done := c.cfg.Now()
	var applied uint64
	for _, it := range items {
		if !it.known {
			continue
		}
		switch {
		case !it.applied:
			c.metrics.processed.WithLabelValues(resultStale).Inc()
		case it.slow:
			c.metrics.processed.WithLabelValues(resultSlow).Inc()
			c.log.Warn("amphora heartbeat processed too slowly; ignored for liveness and statuses",
				slog.String("amphora_id", it.hb.GetAmphoraId()), slog.Duration("delay", now.Sub(it.received)))
		case !it.matches:
			c.metrics.processed.WithLabelValues(resultMismatch).Inc()
			c.log.Warn("amphora heartbeat reports an unexpected number of listeners; liveness not refreshed",
				slog.String("amphora_id", it.hb.GetAmphoraId()), slog.Int("reported", len(it.hb.GetListeners())))
		default:
			c.metrics.processed.WithLabelValues(resultApplied).Inc()
		}
		if it.applied {
			applied++
			c.metrics.lag.Observe(done.Sub(it.received).Seconds())
			if c.cfg.OnApplied != nil {
				c.cfg.OnApplied(it.hb.GetAmphoraId(), it.received, done)
			}
		}
	}
	c.processed.Add(uint64(len(recs)))
	c.applied.Add(applied)
	return nil
}

// applyRound records one heartbeat per amphora (health row and statistics)
// in one transaction.
func (c *Consumer) applyRound(ctx context.Context, round []*item, now time.Time) error {
	rows := make([]healthRow, len(round))
	for i, it := range round {
		rows[i] = healthRow{amphoraID: it.hb.GetAmphoraId(), lbID: it.lbID, seq: it.hb.GetSeq(),
			receivedAt: it.received, live: it.matches && !it.slow}
	}
	var applied map[string]bool
	err := postgres.RetryTx(ctx, c.cfg.Pool, func(tx pgx.Tx) error {
		var err error
		applied, err = upsertHealth(ctx, tx, rows, c.cfg.HeartbeatInterval, now)
		if err != nil {
			return err
		}
		var keys []statKey
		for _, it := range round {
			if applied[it.hb.GetAmphoraId()] && !it.hb.GetDeltaCounters() {
				for lid := range it.hb.GetListeners() {
					keys = append(keys, statKey{lid, it.hb.GetAmphoraId()})
				}
			}
		}
		prev, err := loadRawCounters(ctx, tx, keys)
		if err != nil {
			return err
		}
		var updates []statUpdate
		for _, it := range round {
			if applied[it.hb.GetAmphoraId()] {
				updates = append(updates, statDeltas(it.hb, it.lbID, prev)...)
			}
		}
		return writeStats(ctx, tx, updates, c.cfg.StatsBucket)
	})
	if err != nil {
		return fmt.Errorf("apply %d heartbeats: %w", len(round), err)
	}
	for _, it := range round {
		it.applied = applied[it.hb.GetAmphoraId()]
	}
	return nil
}

// recordStatuses derives the operating statuses of every load balancer
// from the newest applied, timely heartbeat of each of its amphorae and
// records what differs. Load balancers are handled concurrently (at most
// StatusWorkers), the heartbeats of one load balancer in order against the
// state left by the previous one. A failed command is logged and counted;
// the next heartbeat derives the statuses again.
func (c *Consumer) recordStatuses(ctx context.Context, items []*item) {
	latest := map[string]*item{}
	for _, it := range items {
		if it.known && it.applied && !it.slow {
			latest[it.hb.GetAmphoraId()] = it
		}
	}
	perLB := map[string][]*item{}
	var order []string
	for _, it := range items {
		if latest[it.hb.GetAmphoraId()] != it {
			continue
		}
		if _, ok := perLB[it.lbID]; !ok {
			order = append(order, it.lbID)
		}
		perLB[it.lbID] = append(perLB[it.lbID], it)
	}
	sem := make(chan struct{}, c.cfg.StatusWorkers)
	var wg sync.WaitGroup
	for _, lbID := range order {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			for _, it := range perLB[lbID] {
				c.recordStatus(ctx, lbID, it)
			}
		})
	}
	wg.Wait()
}

func (c *Consumer) recordStatus(ctx context.Context, lbID string, it *item) {
	e := c.cache.entry(lbID)
	e.mu.Lock()
	d := Derive(e.state, it.hb)
	e.mu.Unlock()
	if len(d.Changes) == 0 {
		return
	}
	md := events.Metadata{ProjectID: it.project, Actor: Actor,
		CorrelationID: fmt.Sprintf("heartbeat:%s:%d", it.hb.GetAmphoraId(), it.hb.GetSeq())}
	after, _, err := c.cfg.Commands.LoadBalancer(ctx, md, lbID, lb.SetOperatingStatuses{Changes: d.Changes})
	if err != nil {
		var ae *aggregates.Error
		if errors.As(err, &ae) && ae.Kind == aggregates.KindNotFound {
			return
		}
		c.metrics.statusErrors.Inc()
		c.log.Error("recording operating statuses failed", slog.String("loadbalancer_id", lbID),
			slog.String("amphora_id", it.hb.GetAmphoraId()), slog.Any("error", err))
		return
	}
	c.metrics.statusChanges.Inc()
	c.cache.offer(lbID, after)
	c.log.Debug("operating statuses changed", slog.String("loadbalancer_id", lbID),
		slog.String("amphora_id", it.hb.GetAmphoraId()), slog.Int("changes", len(d.Changes)))
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
