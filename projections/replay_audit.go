package projections

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// A replay writes its audit trail (audit_events) in the order of the
// table's primary key (generation, aggregate_type, aggregate_id,
// aggregate_version) rather than in the order of the log. The generation
// being built is the newest, so rows in key order all go to the right edge
// of the primary key's B-tree, where PostgreSQL inserts without descending
// the tree (its rightmost-leaf fast path) and splits pages so they stay
// full; rows in log order land all over the index, and maintaining it was
// most of the database's share of a replay (comparisons of the text
// columns on every level of the tree, for every row). So the fold keeps
// each aggregate's rows with the aggregate, and they are written, in key
// order, while the read models are written. At most replayAuditBuffer rows
// (a few hundred bytes each) are held: past that a folding worker writes
// those it holds as one run in key order (a run still goes in key order,
// only not all at the right edge of the index).
const replayAuditBuffer = 1 << 17

// replayAuditChunk is how many audit rows one COPY writes (and how many are
// written again with INSERT ... ON CONFLICT when some are already there).
const replayAuditChunk = 10000

// auditRow is one audit_events row of a replay: what the row needs of the
// event (not the event, whose payload would be kept in memory too) and the
// objects it changed.
type auditRow struct {
	aggType, aggID string
	version        int64
	position       int64
	eventID        uuid.UUID
	at             time.Time
	actor          string
	projectID      string
	correlationID  string
	eventType      string
	items          []auditItem
}

func newAuditRow(env *eventsv1.Envelope, items []auditItem) (auditRow, error) {
	id, err := uuid.Parse(env.GetEventId())
	if err != nil {
		return auditRow{}, fmt.Errorf("event id %q: %w", env.GetEventId(), err)
	}
	return auditRow{aggType: env.GetAggregateType(), aggID: env.GetAggregateId(), version: env.GetAggregateVersion(),
		position: env.GetGlobalPosition(), eventID: id, at: env.GetOccurredAt().AsTime(),
		actor: env.GetActor(), projectID: env.GetProjectId(), correlationID: env.GetCorrelationId(), eventType: env.GetType(),
		items: items}, nil
}

// takeAudit returns the audit rows the aggregates hold, as writeAuditRows
// takes them (the aggregates' runs in the order of their keys), and leaves
// the aggregates without.
func takeAudit(aggs map[string]*replayAgg) [][]auditRow {
	keys := make([]string, 0, len(aggs))
	for k, a := range aggs {
		if len(a.audit) > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	runs := make([][]auditRow, len(keys))
	for i, k := range keys {
		runs[i], aggs[k].audit = aggs[k].audit, nil
	}
	return runs
}

var auditColumns = []string{"generation", "aggregate_type", "aggregate_id", "aggregate_version", "event_id",
	"global_position", "occurred_at", "actor", "project_id", "correlation_id", "event_type", "object_kinds", "object_ids"}

// writeAuditRows stores audit rows of a replay: runs, each the rows of one
// aggregate in version order, the runs in the order of the aggregates'
// keys. They are written in that order, in chunks of about
// replayAuditChunk rows, one chunk after the other on one connection (two
// connections, each writing half of the keys, cost the database more, as
// only one of them appends at the right edge of the index, and were no
// faster). Each chunk is streamed with COPY (copyRows); when some of its
// rows are already there (live events written to the generation being
// built while the replay ran) the COPY fails as a whole (on CockroachDB
// the batches before the failing one stay) and the chunk is written again
// with INSERT ... ON CONFLICT DO NOTHING.
// Without useCopy every chunk is written with INSERT.
func (p *Projector) writeAuditRows(ctx context.Context, gen int64, runs [][]auditRow, useCopy bool) error {
	var chunk []auditRow
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if err := p.copyAuditChunk(ctx, gen, chunk, useCopy); err != nil {
			return fmt.Errorf("replay: write audit trail: %w", err)
		}
		chunk = chunk[:0]
		return nil
	}
	for _, run := range runs {
		chunk = append(chunk, run...)
		if len(chunk) >= replayAuditChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// copyAuditChunk writes one chunk of audit rows (see writeAuditRows).
func (p *Projector) copyAuditChunk(ctx context.Context, gen int64, rows []auditRow, useCopy bool) error {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if !useCopy {
		b := &pgx.Batch{}
		queueAuditRows(b, gen, rows)
		return conn.SendBatch(ctx, b).Close()
	}
	err = copyRows(ctx, conn.Conn().PgConn(), "audit_events", auditColumns, len(rows), func(e *copyEncoder, i int) {
		r := &rows[i]
		e.row(len(auditColumns))
		e.int8(gen)
		e.text(r.aggType)
		e.text(r.aggID)
		e.int8(r.version)
		e.uuid(r.eventID)
		e.int8(r.position)
		e.timestamptz(r.at)
		e.text(r.actor)
		e.text(r.projectID)
		e.text(r.correlationID)
		e.text(r.eventType)
		e.textArray(len(r.items), func(j int) string { return string(r.items[j].kind) })
		e.textArray(len(r.items), func(j int) string { return r.items[j].id })
	})
	if !isUniqueViolation(err) {
		return err
	}
	b := &pgx.Batch{}
	queueAuditRows(b, gen, rows)
	return conn.SendBatch(ctx, b).Close()
}

// queueAuditRows queues storing audit rows; rows already there are kept.
func queueAuditRows(b *pgx.Batch, gen int64, rows []auditRow) {
	n := len(rows)
	ids, actors, projects, corrs, aggTypes, aggIDs := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	kinds, objIDs, types := make([]string, n), make([]string, n), make([]string, n)
	positions, versions := make([]int64, n), make([]int64, n)
	at := make([]time.Time, n)
	for i := range rows {
		r := &rows[i]
		ids[i], actors[i], projects[i], corrs[i], aggTypes[i], aggIDs[i] = r.eventID.String(), r.actor, r.projectID,
			r.correlationID, r.aggType, r.aggID
		positions[i], versions[i], at[i], types[i] = r.position, r.version, r.at, r.eventType
		k, o := make([]string, len(r.items)), make([]string, len(r.items))
		for j, it := range r.items {
			k[j], o[j] = string(it.kind), it.id
		}
		kinds[i], objIDs[i] = textArray(k), textArray(o)
	}
	b.Queue(insertAuditEvents, gen, aggTypes, aggIDs, versions, ids, positions, at, actors, projects, corrs, types,
		kinds, objIDs)
}
