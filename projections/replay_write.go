package projections

import (
	"context"
	"errors"
	"sort"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ostia/ostia/internal/postgres"
	"github.com/ostia/ostia/projections/views"
)

// renderedAgg is a replayed aggregate with its read-model rows.
type renderedAgg struct {
	agg  *replayAgg
	rows []row
}

// isUniqueViolation reports whether err is a unique violation (SQLSTATE
// 23505, on PostgreSQL and CockroachDB alike).
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// writeReplayedChunk writes the final rows, usage records, checkpoints and
// audit directory entries of some replayed aggregates in one transaction.
// An aggregate whose checkpoint in the generation is already at or past
// the replayed version (live events applied meanwhile) is left alone; one
// behind it is rewritten (its rows deleted, then upserted).
//
// The generation being built holds nothing of most aggregates (nothing but
// live events applied during the replay writes to it). With copyFresh the
// rows of those, found without a checkpoint, are streamed with COPY: no
// conflict checks, no speculative insertions, no arrays to unnest. Should
// one of them be there after all (written between the checkpoint read and
// the COPY, or an object two aggregates render), the COPY fails with a
// unique violation and the caller writes the chunk again without
// copyFresh, with INSERT ... ON CONFLICT as for the others.
func (p *Projector) writeReplayedChunk(ctx context.Context, gen int64, part []renderedAgg, copyFresh bool) error {
	return postgres.RetryTx(ctx, p.pool, func(tx pgx.Tx) error {
		ids := make([]string, len(part))
		for i, r := range part {
			ids[i] = r.agg.id
		}
		existing := map[string]int64{}
		rows, err := tx.Query(ctx, `SELECT aggregate_type, aggregate_id, version FROM projection_checkpoints
			WHERE projection = $1 AND generation = $2 AND aggregate_id = ANY($3::text[])`, projectionName, gen, ids)
		if err != nil {
			return err
		}
		for rows.Next() {
			var t, id string
			var v int64
			if err := rows.Scan(&t, &id, &v); err != nil {
				rows.Close()
				return err
			}
			existing[cacheKey(t, id)] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		b := &pgx.Batch{}
		var all []row
		var cps []checkpoint
		var usage []usageRecord
		var objects []auditObject
		var fresh []renderedAgg
		stale := map[string][]string{}
		for _, r := range part {
			v, ok := existing[cacheKey(r.agg.aggType, r.agg.id)]
			if !ok && copyFresh {
				fresh = append(fresh, r)
				continue
			}
			for s := range r.agg.objects {
				objects = append(objects, auditObject{r.agg.aggType, r.agg.id, s.kind, s.id})
			}
			if ok {
				if v >= r.agg.version {
					continue
				}
				stale[r.agg.aggType] = append(stale[r.agg.aggType], r.agg.id)
			}
			all = append(all, r.rows...)
			usage = append(usage, r.agg.model.usage()...)
			cps = append(cps, checkpoint{r.agg.aggType, r.agg.id, r.agg.version})
		}
		if err := copyFreshAggregates(ctx, tx.Conn().PgConn(), gen, fresh); err != nil {
			return err
		}
		for t, ids := range stale {
			queueDeleteAggregates(b, gen, t, ids)
		}
		queueUpsert(b, gen, all)
		queueUsage(b, gen, usage)
		queueCheckpoints(b, gen, cps)
		sort.Slice(objects, func(i, j int) bool { return objects[i].id < objects[j].id })
		queueAuditObjects(b, gen, objects)
		if b.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

var (
	checkpointColumns  = []string{"projection", "generation", "aggregate_type", "aggregate_id", "version"}
	viewColumns        = []string{"generation", "id", "aggregate_id", "project_id", "loadbalancer_id", "parent_id", "name", "provisioning_status", "operating_status", "created_at", "updated_at", "tags", "doc", "aux"}
	usageColumns       = []string{"generation", "resource_type", "resource_id", "project_id", "loadbalancer_id", "active_from", "active_until"}
	auditObjectColumns = []string{"generation", "object_id", "aggregate_type", "aggregate_id", "object_kind"}
)

// copyFreshAggregates writes the checkpoints, rows, usage records and audit
// directory entries of aggregates the generation has nothing of, with COPY
// (see writeReplayedChunk). The checkpoints go first: the transaction read
// them, so a concurrent writer of the same aggregate is reported as a
// serialization failure (and the transaction retried) where it can be.
func copyFreshAggregates(ctx context.Context, conn *pgconn.PgConn, gen int64, aggs []renderedAgg) error {
	if len(aggs) == 0 {
		return nil
	}
	if err := copyRows(ctx, conn, "projection_checkpoints", checkpointColumns, len(aggs), func(e *copyEncoder, i int) {
		a := aggs[i].agg
		e.row(len(checkpointColumns))
		e.text(projectionName)
		e.int8(gen)
		e.text(a.aggType)
		e.text(a.id)
		e.int8(a.version)
	}); err != nil {
		return err
	}
	byKind := map[views.Kind][]*row{}
	var kinds []views.Kind
	var usage []usageRecord
	var objects []auditObject
	for _, r := range aggs {
		for i := range r.rows {
			k := r.rows[i].kind
			if _, ok := byKind[k]; !ok {
				kinds = append(kinds, k)
			}
			byKind[k] = append(byKind[k], &r.rows[i])
		}
		usage = append(usage, r.agg.model.usage()...)
		for s := range r.agg.objects {
			objects = append(objects, auditObject{r.agg.aggType, r.agg.id, s.kind, s.id})
		}
	}
	for _, k := range kinds {
		rs := byKind[k]
		if err := copyRows(ctx, conn, table(k), viewColumns, len(rs), func(e *copyEncoder, i int) {
			r := rs[i]
			e.row(len(viewColumns))
			e.int8(gen)
			e.text(r.id)
			e.text(r.aggregateID)
			e.text(r.projectID)
			e.text(r.lbID)
			e.text(r.parentID)
			e.text(r.name)
			e.text(r.prov)
			e.text(r.oper)
			e.timestamptzOrNull(r.created)
			e.timestamptzOrNull(r.updated)
			e.textArray(len(r.tags), func(j int) string { return r.tags[j] })
			e.jsonb(r.doc)
			e.jsonb(r.aux)
		}); err != nil {
			return err
		}
	}
	if err := copyRows(ctx, conn, "billing_usage", usageColumns, len(usage), func(e *copyEncoder, i int) {
		u := &usage[i]
		e.row(len(usageColumns))
		e.int8(gen)
		e.text(u.kind)
		e.text(u.id)
		e.text(u.projectID)
		e.text(u.lbID)
		e.timestamptz(u.from)
		if u.until.IsZero() {
			e.null()
		} else {
			e.timestamptz(u.until)
		}
	}); err != nil {
		return err
	}
	// In the order of the directory's key, so the rows are appended
	// along its B-tree rather than all over it.
	sort.Slice(objects, func(i, j int) bool {
		a, b := &objects[i], &objects[j]
		if a.id != b.id {
			return a.id < b.id
		}
		if a.aggregateType != b.aggregateType {
			return a.aggregateType < b.aggregateType
		}
		return a.aggregateID < b.aggregateID
	})
	return copyRows(ctx, conn, "audit_objects", auditObjectColumns, len(objects), func(e *copyEncoder, i int) {
		o := &objects[i]
		e.row(len(auditObjectColumns))
		e.int8(gen)
		e.text(o.id)
		e.text(o.aggregateType)
		e.text(o.aggregateID)
		e.text(string(o.kind))
	})
}
