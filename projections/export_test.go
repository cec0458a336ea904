package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// StoreAuditDocuments turns the current generation's audit trail into
// audit_log rows with stored documents, rendered the way the projector
// rendered and stored them before audit_events (every event of the
// aggregate folded with both documents rendered): what a database written
// by an older version holds.
func StoreAuditDocuments(ctx context.Context, p *Projector) error {
	gen, err := p.generation(ctx, 0)
	if err != nil {
		return err
	}
	rows, err := p.pool.Query(ctx, `SELECT DISTINCT aggregate_type, aggregate_id FROM audit_events WHERE generation = $1`, gen)
	if err != nil {
		return err
	}
	type agg struct{ t, id string }
	var aggs []agg
	for rows.Next() {
		var a agg
		if err := rows.Scan(&a.t, &a.id); err != nil {
			rows.Close()
			return err
		}
		aggs = append(aggs, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, a := range aggs {
		m, err := newModel(a.t, a.id)
		if err != nil {
			return err
		}
		envs, err := p.store.Load(ctx, a.t, a.id, 0)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		for _, env := range envs {
			payload, err := p.reg.Decode(env)
			if err != nil {
				return err
			}
			items, err := m.apply(env, payload, auditRendered)
			if err != nil {
				return fmt.Errorf("%s %s v%d: %w", a.t, a.id, env.GetAggregateVersion(), err)
			}
			for i, it := range items {
				// Only events the trail recorded.
				b.Queue(`INSERT INTO audit_log (generation, event_id, seq, global_position, occurred_at, actor, project_id,
						correlation_id, aggregate_type, aggregate_id, aggregate_version, object_kind, object_id, event_type,
						before, after)
					SELECT generation, event_id, $4, global_position, occurred_at, actor, project_id, correlation_id,
						aggregate_type, aggregate_id, aggregate_version, $5, $6, event_type, $7::text::jsonb, $8::text::jsonb
					FROM audit_events WHERE generation = $1 AND aggregate_type = $2 AND aggregate_id = $3
						AND aggregate_version = $9`,
					gen, a.t, a.id, int32(i), string(it.kind), it.id, nullText(it.before), nullText(it.after),
					env.GetAggregateVersion())
			}
		}
		if err := p.pool.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
	}
	for _, t := range []string{"audit_events", "audit_objects"} {
		if _, err := p.pool.Exec(ctx, `DELETE FROM `+t+` WHERE generation = $1`, gen); err != nil {
			return err
		}
	}
	return nil
}
