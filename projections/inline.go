package projections

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/postgres"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// ApplyInline applies freshly appended events inside the append transaction
// itself, so a command's effect is in the read models the moment the
// command commits, with one commit instead of two. It is InlineThen run on
// its own: the first round trip is not shared with the events.
func (p *Projector) ApplyInline(ctx context.Context, tx pgx.Tx, envs []*eventsv1.Envelope) error {
	then := p.InlineThen(envs)
	if err := then.Send(ctx, tx); err != nil {
		return err
	}
	return then.Run(ctx, tx)
}

// InlineThen is the inline projection of events being appended, as work of
// the append's own transaction (aggregates/handler's Inline, with
// eventstore.Store.AppendWith): the savepoint and the read of every
// involved aggregate's generation and checkpoint travel with the events,
// and every row is written in one more round trip.
//
// It runs under that savepoint: when the projection fails for a reason
// other than a serialization failure, its writes are rolled back, the
// failure is logged and the command still commits; the projection consumer
// applies the events later. A serialization failure is returned, so the
// caller re-runs the whole transaction.
func (p *Projector) InlineThen(envs []*eventsv1.Envelope) eventstore.Then {
	in := &inlineRun{p: p, envs: envs, byKey: map[string]*inlineGroup{}, stored: map[string]int64{}}
	for _, env := range envs {
		if !projected(env.GetAggregateType()) {
			continue
		}
		k := cacheKey(env.GetAggregateType(), env.GetAggregateId())
		g := in.byKey[k]
		if g == nil {
			g = &inlineGroup{aggType: env.GetAggregateType(), aggID: env.GetAggregateId()}
			in.byKey[k] = g
			in.groups = append(in.groups, g)
		}
		g.envs = append(g.envs, env)
	}
	return eventstore.Then{Queue: in.queue, Read: in.read, Run: in.run}
}

// inlineGroup is the events of one projected aggregate in an append, in
// order (a command appends consecutive versions per aggregate).
type inlineGroup struct {
	aggType, aggID string
	envs           []*eventsv1.Envelope
}

// inlineRun is one inline projection (InlineThen).
type inlineRun struct {
	p      *Projector
	envs   []*eventsv1.Envelope
	groups []*inlineGroup
	byKey  map[string]*inlineGroup

	queued   bool
	current  int64
	building *int64
	stored   map[string]int64
	readErr  error
}

func (in *inlineRun) queue(b *pgx.Batch) {
	if len(in.groups) == 0 {
		return
	}
	// One equality per aggregate, not aggregate_type = ANY(...) AND
	// aggregate_id = ANY(...): under SERIALIZABLE an array scan of the
	// checkpoint index takes coarser predicate locks, and concurrent
	// commands then abort each other far more often.
	var q strings.Builder
	q.WriteString(`SELECT g.current_generation, g.building_generation, c.aggregate_type, c.aggregate_id, c.version
		FROM projection_generations g LEFT JOIN projection_checkpoints c ON c.projection = g.projection
			AND c.generation = g.current_generation AND (`)
	args := make([]any, 0, 1+2*len(in.groups))
	args = append(args, projectionName)
	for i, g := range in.groups {
		if i > 0 {
			q.WriteString(" OR ")
		}
		fmt.Fprintf(&q, "(c.aggregate_type = $%d AND c.aggregate_id = $%d)", 2*i+2, 2*i+3)
		args = append(args, g.aggType, g.aggID)
	}
	q.WriteString(`)
		WHERE g.projection = $1`)
	b.Queue("SAVEPOINT " + inlineSavepoint)
	b.Queue(q.String(), args...)
	in.queued = true
}

// read takes the savepoint's and the read's results. A failed read is kept
// for run (which rolls back to the savepoint), unless it is a
// serialization failure, which re-runs the transaction.
func (in *inlineRun) read(br pgx.BatchResults) error {
	if !in.queued {
		return nil
	}
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("inline projection: savepoint: %w", err)
	}
	rows, err := br.Query()
	found := false
	if err == nil {
		for rows.Next() {
			var cType, cID *string
			var cVersion *int64
			if err = rows.Scan(&in.current, &in.building, &cType, &cID, &cVersion); err != nil {
				break
			}
			found = true
			if cType != nil && cID != nil && cVersion != nil {
				in.stored[cacheKey(*cType, *cID)] = *cVersion
			}
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err == nil && !found {
		err = fmt.Errorf("projection %s has no generation row", projectionName)
	}
	if err != nil {
		if postgres.IsRetryable(err) {
			return err
		}
		in.readErr = fmt.Errorf("inline projection: read generations and checkpoints: %w", err)
	}
	return nil
}

func (in *inlineRun) run(ctx context.Context, tx pgx.Tx) error {
	p := in.p
	if !in.queued {
		return nil
	}
	for _, g := range in.groups {
		for _, env := range g.envs {
			if env.GetAggregateId() == "" || env.GetAggregateVersion() <= 0 {
				return p.inlineFailed(ctx, tx, fmt.Errorf("inline projection: event %s has no aggregate id or version", env.GetEventId()), env)
			}
		}
	}
	if in.readErr != nil {
		return p.inlineFailed(ctx, tx, in.readErr, in.envs[0])
	}
	if in.building != nil && *in.building != in.current {
		// A replay is building a new generation: apply event by event to
		// both (rare; the plain path knows how).
		for _, env := range in.envs {
			if err := p.Apply(ctx, tx, env); err != nil {
				return p.inlineFailed(ctx, tx, err, env)
			}
		}
		return nil
	}
	writes := &pgx.Batch{}
	type done struct {
		ent     *cached
		aggType string
		n       int64
	}
	var evolved []done
	for _, g := range in.groups {
		from := in.stored[cacheKey(g.aggType, g.aggID)]
		pending := g.envs
		for len(pending) > 0 && pending[0].GetAggregateVersion() <= from {
			p.metrics.skipped.WithLabelValues(g.aggType).Inc()
			pending = pending[1:]
		}
		if len(pending) == 0 {
			continue
		}
		ent, err := p.queueApply(ctx, tx, in.current, from, pending, writes)
		if err != nil {
			return p.inlineFailed(ctx, tx, err, pending[0])
		}
		evolved = append(evolved, done{ent, g.aggType, pending[len(pending)-1].GetAggregateVersion() - from})
	}
	if writes.Len() > 0 {
		if err := tx.SendBatch(ctx, writes).Close(); err != nil {
			return p.inlineFailed(ctx, tx, fmt.Errorf("inline projection: write read models: %w", err), in.envs[0])
		}
	}
	for _, d := range evolved {
		p.applied(d.ent, d.aggType, d.n)
	}
	// The savepoint is not released: the transaction's COMMIT releases it,
	// one round trip less.
	return nil
}

// inlineSavepoint names the savepoint the inline projection runs under.
const inlineSavepoint = "ostia_inline_projection"

// inlineFailed handles a failure of the inline projection: a serialization
// failure is returned (the caller re-runs the whole transaction); anything
// else rolls the projection's writes back to the savepoint, is logged, and
// leaves the events to the projection consumer.
func (p *Projector) inlineFailed(ctx context.Context, tx pgx.Tx, err error, env *eventsv1.Envelope) error {
	if postgres.IsRetryable(err) {
		return err
	}
	if _, rerr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT "+inlineSavepoint); rerr != nil {
		return fmt.Errorf("inline projection: roll back to savepoint after %v: %w", err, rerr)
	}
	p.log.WarnContext(ctx, "inline projection failed; the projection consumer will apply the events",
		"event", env.GetEventId(), "type", env.GetType(), "error", err)
	return nil
}
