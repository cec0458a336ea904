// Package projections builds the read models the Octavia API serves from
// the event log: one table per resource kind holding the API object
// (projections/views) with the columns queries filter and sort on, the
// status trees, the quota list and an audit trail.
//
// The Projector applies events idempotently by aggregate version: an event
// at or below an aggregate's checkpoint changes nothing, and an event past
// a gap first catches up with the missing events from the event store. It
// runs both in the Kafka consumer group "projection.views" and inline in
// the gateway right after an append (ApplyEnvelopes), so the API reads its
// own writes; the two paths converge through the version checks.
//
// Read models are kept per generation: Replay rebuilds the whole model from
// the log into a fresh generation and swaps it in, never disturbing reads.
package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/messaging"
	"github.com/ostia/ostia/internal/postgres"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// ConsumerName is the Kafka consumer group (and processed_events consumer)
// of the projection. Renaming it re-consumes every topic.
const ConsumerName = "projection.views"

// Topics lists the topics the projection consumes.
func Topics() []string {
	return []string{events.Topic(events.AggregateLoadBalancer), events.Topic(events.AggregateAmphora),
		events.Topic(events.AggregateProject), events.Topic(events.AggregateCatalog)}
}

// Config configures a Projector.
type Config struct {
	// Pool is the database with the read-model tables.
	Pool *pgxpool.Pool
	// Store is the event store replays and point-in-time views read the log
	// from (gaps are filled inside the applying transaction).
	Store *eventstore.Store
	// Registry decodes payloads.
	Registry *events.Registry
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics receives the projector's metrics; nil registers none.
	Metrics prometheus.Registerer
	// CacheSize is how many aggregate states are kept (default 10000;
	// negative turns the cache off).
	CacheSize int
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Pool == nil {
		errs = append(errs, errors.New("projections: Pool is required"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("projections: Store is required"))
	}
	if c.Registry == nil {
		errs = append(errs, errors.New("projections: Registry is required"))
	}
	return errors.Join(errs...)
}

type metrics struct {
	lag      prometheus.Histogram
	applied  *prometheus.CounterVec
	skipped  *prometheus.CounterVec
	catchups *prometheus.CounterVec
	cache    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ostia_projection_lag_seconds",
			Help:    "Time from an event's occurred_at to the projection consumer applying it.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 16)}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ostia_projection_events_applied_total",
			Help: "Events applied to the read models, per aggregate type (each generation counts)."}, []string{"aggregate_type"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ostia_projection_events_skipped_total",
			Help: "Events at or below the read model's version (duplicates, inline path first)."}, []string{"aggregate_type"}),
		catchups: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ostia_projection_gap_catchups_total",
			Help: "Events that arrived past a gap and made the projector read the missing events from the store."},
			[]string{"aggregate_type"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ostia_projection_state_cache_total",
			Help: "Aggregate state lookups by result (hit, miss)."}, []string{"result"}),
	}
	var err error
	if m.lag, err = messaging.Register(reg, m.lag); err != nil {
		return nil, err
	}
	if m.applied, err = messaging.Register(reg, m.applied); err != nil {
		return nil, err
	}
	if m.skipped, err = messaging.Register(reg, m.skipped); err != nil {
		return nil, err
	}
	if m.catchups, err = messaging.Register(reg, m.catchups); err != nil {
		return nil, err
	}
	if m.cache, err = messaging.Register(reg, m.cache); err != nil {
		return nil, err
	}
	return m, nil
}

// Projector maintains the read models. It is safe for concurrent use.
type Projector struct {
	pool    *pgxpool.Pool
	store   *eventstore.Store
	reg     *events.Registry
	log     *slog.Logger
	metrics *metrics
	cache   *stateCache
}

// New returns a Projector.
func New(cfg Config) (*Projector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("projections: %w", err)
	}
	size := cfg.CacheSize
	if size == 0 {
		size = 10000
	}
	return &Projector{pool: cfg.Pool, store: cfg.Store, reg: cfg.Registry, log: cfg.Logger.With("projection", projectionName),
		metrics: m, cache: newStateCache(size)}, nil
}

// Handler returns the projector as a messaging.Handler for the consumer:
// Apply, observing the projection lag (ostia_projection_lag_seconds) of
// every event it handles.
func (p *Projector) Handler() messaging.Handler {
	return func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
		if err := p.Apply(ctx, tx, env); err != nil {
			return err
		}
		if at := env.GetOccurredAt(); at != nil && projected(env.GetAggregateType()) {
			p.metrics.lag.Observe(max(time.Since(at.AsTime()).Seconds(), 0))
		}
		return nil
	}
}

// NewConsumer returns the projection's consumer (group ConsumerName,
// Topics); cfg's Name, Topics and Pool are filled in, and Handler unless
// set (tests wrap Handler() to inject faults).
func (p *Projector) NewConsumer(cfg messaging.ConsumerConfig) (*messaging.Consumer, error) {
	cfg.Name, cfg.Topics, cfg.Pool = ConsumerName, Topics(), p.pool
	if cfg.Handler == nil {
		cfg.Handler = p.Handler()
	}
	if cfg.Filter == nil {
		cfg.Filter = p.needs
	}
	if cfg.Logger == nil {
		cfg.Logger = p.log
	}
	return messaging.NewConsumer(cfg)
}

// needs tells the consumer, with one read and no transaction, whether an
// event still has to be applied: events the projection does not follow, and
// events the inline path (API, worker) applied already, need nothing. While
// a replay builds a generation every event goes through the handler.
func (p *Projector) needs(ctx context.Context, env *eventsv1.Envelope) (bool, error) {
	if !projected(env.GetAggregateType()) {
		return false, nil
	}
	current, building, stored, err := generationsAndCheckpoint(ctx, p.pool, env.GetAggregateType(), env.GetAggregateId())
	if err != nil {
		return true, err
	}
	if building != nil && *building != current {
		return true, nil
	}
	if env.GetAggregateVersion() <= stored {
		p.metrics.skipped.WithLabelValues(env.GetAggregateType()).Inc()
		return false, nil
	}
	return true, nil
}

// ApplyEnvelopes applies freshly appended events in one transaction of its
// own (the gateway's inline path, so the API reads its own writes).
func (p *Projector) ApplyEnvelopes(ctx context.Context, envs []*eventsv1.Envelope) error {
	if len(envs) == 0 {
		return nil
	}
	return postgres.RetryTx(ctx, p.pool, func(tx pgx.Tx) error {
		for _, env := range envs {
			if err := p.Apply(ctx, tx, env); err != nil {
				return err
			}
		}
		return nil
	})
}

// generations returns the generations live events go to: the current one
// and, during a replay meant to be swapped in, the one being built.
func generations(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (current int64, building *int64, err error) {
	err = q.QueryRow(ctx, `SELECT current_generation, building_generation FROM projection_generations WHERE projection = $1`,
		projectionName).Scan(&current, &building)
	if err != nil {
		return 0, nil, fmt.Errorf("read projection generation: %w", err)
	}
	return current, building, nil
}

// Apply applies one event inside the caller's transaction. Events of
// aggregates the projection does not follow (sagas) are ignored.
func (p *Projector) Apply(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
	if !projected(env.GetAggregateType()) {
		return nil
	}
	if env.GetAggregateId() == "" || env.GetAggregateVersion() <= 0 {
		return fmt.Errorf("project event %s: no aggregate id or version: %w", env.GetEventId(), messaging.ErrPermanent)
	}
	current, building, stored, err := generationsAndCheckpoint(ctx, tx, env.GetAggregateType(), env.GetAggregateId())
	if err != nil {
		return err
	}
	if err := p.applyTo(ctx, tx, current, env, &stored); err != nil {
		return err
	}
	if building != nil && *building != current {
		return p.applyTo(ctx, tx, *building, env, nil)
	}
	return nil
}

// generationsAndCheckpoint is generations and the current generation's
// checkpointOf the aggregate in one round trip.
func generationsAndCheckpoint(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, aggType, aggID string) (current int64, building *int64, stored int64, err error) {
	err = q.QueryRow(ctx, `SELECT g.current_generation, g.building_generation,
			COALESCE((SELECT c.version FROM projection_checkpoints c WHERE c.projection = g.projection
				AND c.generation = g.current_generation AND c.aggregate_type = $2 AND c.aggregate_id = $3), 0)
		FROM projection_generations g WHERE g.projection = $1`,
		projectionName, aggType, aggID).Scan(&current, &building, &stored)
	if err != nil {
		return 0, nil, 0, fmt.Errorf("read projection generation and checkpoint of %s %s: %w", aggType, aggID, err)
	}
	return current, building, stored, nil
}

// checkpointOf is the version of an aggregate a generation has applied
// (0: none yet).
func checkpointOf(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, gen int64, aggType, aggID string) (int64, error) {
	var stored int64
	err := q.QueryRow(ctx, `SELECT version FROM projection_checkpoints
		WHERE projection = $1 AND generation = $2 AND aggregate_type = $3 AND aggregate_id = $4`,
		projectionName, gen, aggType, aggID).Scan(&stored)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("read checkpoint of %s %s: %w", aggType, aggID, err)
	}
	return stored, nil
}

func cacheKey(aggregateType, id string) string { return aggregateType + "/" + id }

// applyTo applies env to generation gen; known, when not nil, is the
// generation's checkpoint of the aggregate, already read in this
// transaction.
func (p *Projector) applyTo(ctx context.Context, tx pgx.Tx, gen int64, env *eventsv1.Envelope, known *int64) error {
	aggType, aggID, version := env.GetAggregateType(), env.GetAggregateId(), env.GetAggregateVersion()
	var stored int64
	if known != nil {
		stored = *known
	} else {
		var err error
		if stored, err = checkpointOf(ctx, tx, gen, aggType, aggID); err != nil {
			return err
		}
	}
	if version <= stored {
		p.metrics.skipped.WithLabelValues(aggType).Inc()
		return nil
	}
	b := &pgx.Batch{}
	ent, err := p.queueApply(ctx, tx, gen, stored, []*eventsv1.Envelope{env}, b)
	if err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write read model of %s %s v%d: %w", aggType, aggID, version, err)
	}
	p.applied(ent, aggType, version-stored)
	return nil
}

// queueApply evolves the aggregate's state from version stored (the
// generation's checkpoint) through envs (consecutive versions of one
// aggregate, the first of them above stored; missing ones in between are
// read from the log) and queues the read-model writes on b. The returned
// entry goes back to the cache with applied once b has been written.
func (p *Projector) queueApply(ctx context.Context, tx pgx.Tx, gen, stored int64, envs []*eventsv1.Envelope, b *pgx.Batch) (*cached, error) {
	first, last := envs[0], envs[len(envs)-1]
	aggType, aggID, version := last.GetAggregateType(), last.GetAggregateId(), last.GetAggregateVersion()
	pending := envs
	if from := first.GetAggregateVersion(); from > stored+1 {
		p.metrics.catchups.WithLabelValues(aggType).Inc()
		missing, err := p.load(ctx, tx, aggType, aggID, stored, from-1)
		if err != nil {
			return nil, err
		}
		pending = append(missing, envs...)
	}
	ent, err := p.stateAt(ctx, tx, aggType, aggID, stored)
	if err != nil {
		return nil, err
	}
	// Usage records change rarely: only changed ones are written, except
	// after a cache miss, when all are (which also fills in records an
	// older version of the projector did not keep).
	usageBefore := ent.model.usage()
	var audits []auditRecord
	for _, e := range pending {
		payload, err := p.reg.Decode(e)
		if err != nil {
			return nil, fmt.Errorf("project %s v%d: %w: %w", e.GetType(), e.GetAggregateVersion(), messaging.ErrPermanent, err)
		}
		items, err := ent.model.apply(e, payload, auditSubjects)
		if err != nil {
			return nil, fmt.Errorf("project %s %s v%d (%s): %w", aggType, aggID, e.GetAggregateVersion(), e.GetType(), err)
		}
		if len(items) > 0 {
			audits = append(audits, auditRecord{env: e, items: items})
		}
		ent.version = e.GetAggregateVersion()
		ent.rows = nil
	}
	rows, err := ent.model.rows()
	if err != nil {
		return nil, fmt.Errorf("render %s %s: %w", aggType, aggID, err)
	}
	now := make(map[rowKey]row, len(rows))
	for _, r := range rows {
		now[r.key()] = r
	}
	if old := ent.baseRows; old != nil {
		var changed []row
		var gone []rowKey
		for k, r := range now {
			if o, ok := old[k]; !ok || !o.same(&r) {
				changed = append(changed, r)
			}
		}
		for k := range old {
			if _, ok := now[k]; !ok {
				gone = append(gone, k)
			}
		}
		sort.Slice(gone, func(i, j int) bool { return gone[i].id < gone[j].id })
		queueDelete(b, gen, gone)
		queueUpsert(b, gen, changed)
	} else {
		queueDeleteAggregates(b, gen, aggType, []string{aggID})
		queueUpsert(b, gen, rows)
	}
	if ent.baseRows != nil {
		queueUsage(b, gen, changedUsage(usageBefore, ent.model.usage()))
	} else {
		queueUsage(b, gen, ent.model.usage())
	}
	queueAudit(b, gen, audits)
	queueCheckpoints(b, gen, []checkpoint{{aggType, aggID, version}})
	ent.rows = now
	return ent, nil
}

// applied puts an entry queueApply evolved back into the cache once its
// writes are in the transaction, and counts the n events applied.
func (p *Projector) applied(ent *cached, aggType string, n int64) {
	ent.baseRows = nil
	p.cache.put(ent)
	p.metrics.applied.WithLabelValues(aggType).Add(float64(n))
}

// load returns the events of a stream with versions in (after, upto], and
// fails when the store does not have all of them. It reads inside the
// caller's transaction: a second connection per event would deadlock a
// pool smaller than the number of partitions being applied at once (every
// handler holding its transaction's connection and waiting for another).
func (p *Projector) load(ctx context.Context, tx pgx.Tx, aggType, aggID string, after, upto int64) ([]*eventsv1.Envelope, error) {
	if upto <= after {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT global_position, event_id::text, aggregate_type, aggregate_id, aggregate_version,
			event_type, project_id, causation_id, correlation_id, actor, occurred_at, payload
		FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND aggregate_version > $3 AND aggregate_version <= $4
		ORDER BY aggregate_version`, aggType, aggID, after, upto)
	if err != nil {
		return nil, fmt.Errorf("catch up %s %s: %w", aggType, aggID, err)
	}
	out := make([]*eventsv1.Envelope, 0, upto-after)
	for rows.Next() {
		e := &eventsv1.Envelope{}
		var at time.Time
		if err := rows.Scan(&e.GlobalPosition, &e.EventId, &e.AggregateType, &e.AggregateId, &e.AggregateVersion, &e.Type,
			&e.ProjectId, &e.CausationId, &e.CorrelationId, &e.Actor, &at, &e.Payload); err != nil {
			rows.Close()
			return nil, fmt.Errorf("catch up %s %s: %w", aggType, aggID, err)
		}
		e.OccurredAt = timestamppb.New(at)
		if e.GetAggregateVersion() != after+int64(len(out))+1 {
			rows.Close()
			return nil, fmt.Errorf("catch up %s %s: version %d after %d", aggType, aggID, e.GetAggregateVersion(), after+int64(len(out)))
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catch up %s %s: %w", aggType, aggID, err)
	}
	if int64(len(out)) != upto-after {
		return nil, fmt.Errorf("catch up %s %s: the store has versions up to %d, need %d", aggType, aggID, after+int64(len(out)), upto)
	}
	return out, nil
}

// stateAt returns the aggregate's projection state at a version, from the
// cache or by replaying its stream. baseRows of the result are the rows
// that version rendered, when known.
func (p *Projector) stateAt(ctx context.Context, tx pgx.Tx, aggType, aggID string, version int64) (*cached, error) {
	key := cacheKey(aggType, aggID)
	ent := p.cache.take(key, version)
	if ent != nil && ent.version == version {
		p.metrics.cache.WithLabelValues("hit").Inc()
		ent.baseRows = ent.rows
		return ent, nil
	}
	p.metrics.cache.WithLabelValues("miss").Inc()
	if ent == nil {
		m, err := newModel(aggType, aggID)
		if err != nil {
			return nil, err
		}
		ent = &cached{key: key, model: m}
	}
	envs, err := p.load(ctx, tx, aggType, aggID, ent.version, version)
	if err != nil {
		return nil, err
	}
	for _, e := range envs {
		payload, err := p.reg.Decode(e)
		if err != nil {
			return nil, fmt.Errorf("replay %s %s: %w: %w", aggType, aggID, messaging.ErrPermanent, err)
		}
		if _, err := ent.model.apply(e, payload, auditNone); err != nil {
			return nil, fmt.Errorf("replay %s %s v%d (%s): %w", aggType, aggID, e.GetAggregateVersion(), e.GetType(), err)
		}
		ent.version = e.GetAggregateVersion()
	}
	ent.rows, ent.baseRows = nil, nil
	if version == 0 {
		// Nothing applied yet: the read model holds no rows of this
		// aggregate (rows are only ever written with its checkpoint), so
		// the new rows are written without first deleting by aggregate,
		// a read that under SERIALIZABLE conflicts with every concurrent
		// writer of the table.
		ent.baseRows = map[rowKey]row{}
	}
	return ent, nil
}
