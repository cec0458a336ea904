package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ostia/ostia/internal/postgres"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// ApplyInline applies freshly appended events inside the append transaction
// itself (aggregates/handler's Inline), so a command's effect is in the read
// models the moment the command commits, with one commit instead of two.
//
// It runs under a savepoint: when the projection fails for a reason other
// than a serialization failure, its writes are rolled back, the failure is
// logged and the command still commits; the projection consumer applies the
// events later. A serialization failure is returned, so the caller re-runs
// the whole transaction.
func (p *Projector) ApplyInline(ctx context.Context, tx pgx.Tx, envs []*eventsv1.Envelope) error {
	// The events of each projected aggregate, in order (a command appends
	// consecutive versions per aggregate).
	type group struct {
		aggType, aggID string
		envs           []*eventsv1.Envelope
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, env := range envs {
		if !projected(env.GetAggregateType()) {
			continue
		}
		if env.GetAggregateId() == "" || env.GetAggregateVersion() <= 0 {
			// Nothing written yet: leave the events to the consumer (which
			// refuses this one as permanent).
			p.log.WarnContext(ctx, "inline projection: event without aggregate id or version; the projection consumer will handle it",
				"event", env.GetEventId(), "type", env.GetType())
			return nil
		}
		k := cacheKey(env.GetAggregateType(), env.GetAggregateId())
		g := byKey[k]
		if g == nil {
			g = &group{aggType: env.GetAggregateType(), aggID: env.GetAggregateId()}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.envs = append(g.envs, env)
	}
	if len(groups) == 0 {
		return nil
	}
	// One round trip opens the savepoint and reads the generations and the
	// checkpoints of every aggregate involved; a second writes every row.
	types, ids := make([]string, len(groups)), make([]string, len(groups))
	for i, g := range groups {
		types[i], ids[i] = g.aggType, g.aggID
	}
	b := &pgx.Batch{}
	b.Queue("SAVEPOINT " + inlineSavepoint)
	b.Queue(`SELECT g.current_generation, g.building_generation, c.aggregate_type, c.aggregate_id, c.version
		FROM projection_generations g LEFT JOIN projection_checkpoints c ON c.projection = g.projection
			AND c.generation = g.current_generation AND c.aggregate_type = ANY($2::text[]) AND c.aggregate_id = ANY($3::text[])
		WHERE g.projection = $1`, projectionName, types, ids)
	var (
		current  int64
		building *int64
		stored   = map[string]int64{}
		found    bool
	)
	br := tx.SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil {
		var rows pgx.Rows
		rows, err = br.Query()
		if err == nil {
			for rows.Next() {
				var cType, cID *string
				var cVersion *int64
				if err = rows.Scan(&current, &building, &cType, &cID, &cVersion); err != nil {
					break
				}
				found = true
				if cType != nil && cID != nil && cVersion != nil {
					stored[cacheKey(*cType, *cID)] = *cVersion
				}
			}
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && !found {
		err = fmt.Errorf("projection %s has no generation row", projectionName)
	}
	if err != nil {
		return p.inlineFailed(ctx, tx, fmt.Errorf("inline projection: read generations and checkpoints: %w", err), envs[0])
	}
	if building != nil && *building != current {
		// A replay is building a new generation: apply event by event to
		// both (rare; the plain path knows how).
		for _, env := range envs {
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
	for _, g := range groups {
		from := stored[cacheKey(g.aggType, g.aggID)]
		pending := g.envs
		for len(pending) > 0 && pending[0].GetAggregateVersion() <= from {
			p.metrics.skipped.WithLabelValues(g.aggType).Inc()
			pending = pending[1:]
		}
		if len(pending) == 0 {
			continue
		}
		ent, err := p.queueApply(ctx, tx, current, from, pending, writes)
		if err != nil {
			return p.inlineFailed(ctx, tx, err, pending[0])
		}
		evolved = append(evolved, done{ent, g.aggType, pending[len(pending)-1].GetAggregateVersion() - from})
	}
	if writes.Len() > 0 {
		if err := tx.SendBatch(ctx, writes).Close(); err != nil {
			return p.inlineFailed(ctx, tx, fmt.Errorf("inline projection: write read models: %w", err), envs[0])
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
