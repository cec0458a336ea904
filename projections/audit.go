package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/ostia/ostia/projections/views"
)

// The audit trail records, per generation, every projected event that
// changed objects (audit_events: who, when, the request id and the objects,
// in order) and, per object, which aggregate's events changed it
// (audit_objects). The objects' API representations before and after each
// event are not stored: they are a function of the event log (the
// aggregate's events folded with the aggregate's own Apply and rendered
// with the views, exactly what the projector rendered when it stored them),
// so AuditTrail renders them when the trail is read. Rendering and storing
// two JSON documents per changed object, and indexing a row per changed
// object, were most of the cost of a replay (issue 4) and of the
// projector's writes; the trail is read rarely, one object at a time.
//
// audit_log holds the rows older versions stored with their documents;
// AuditTrail returns them as stored.

// auditEntry is an AuditEntry with its position among the objects its
// event changed (the order of the trail's ties).
type auditEntry struct {
	AuditEntry
	seq int32
}

// recordedChanges returns the changes of an object recorded in
// audit_events, without their documents.
func (p *Projector) recordedChanges(ctx context.Context, gen int64, objectID string) ([]auditEntry, error) {
	rows, err := p.pool.Query(ctx, `SELECT e.event_id::text, e.global_position, e.occurred_at, e.actor, e.project_id,
			e.correlation_id, e.aggregate_type, e.aggregate_id, e.aggregate_version, e.event_type, e.object_kinds,
			e.object_ids
		FROM audit_objects o JOIN audit_events e ON e.generation = o.generation AND e.aggregate_type = o.aggregate_type
			AND e.aggregate_id = o.aggregate_id
		WHERE o.generation = $1 AND o.object_id = $2 AND $2 = ANY(e.object_ids)
		ORDER BY e.occurred_at, e.aggregate_version`, gen, objectID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []auditEntry
	for rows.Next() {
		var e AuditEntry
		var at time.Time
		var kinds, ids []string
		if err := rows.Scan(&e.EventID, &e.GlobalPosition, &at, &e.Actor, &e.ProjectID, &e.CorrelationID,
			&e.AggregateType, &e.AggregateID, &e.AggregateVersion, &e.EventType, &kinds, &ids); err != nil {
			return nil, err
		}
		e.OccurredAt = at
		if len(kinds) != len(ids) {
			return nil, fmt.Errorf("event %s lists %d object kinds and %d ids", e.EventID, len(kinds), len(ids))
		}
		for i, id := range ids {
			if id == objectID {
				x := e
				x.ObjectKind, x.ObjectID = views.Kind(kinds[i]), id
				out = append(out, auditEntry{AuditEntry: x, seq: int32(i)})
			}
		}
	}
	return out, rows.Err()
}

// renderAudit fills in Before and After of entries from audit_events: per
// aggregate, its events are read from the store and folded, rendering the
// changed objects at the versions the entries name. The documents are then
// passed through the database's JSONB (text to jsonb), so that they read
// exactly like documents stored in audit_log's JSONB columns.
func (p *Projector) renderAudit(ctx context.Context, trail []auditEntry) error {
	if len(trail) == 0 {
		return nil
	}
	type aggKey struct{ aggType, aggID string }
	byAgg := map[aggKey]map[int64][]int{}
	var order []aggKey
	for i := range trail {
		e := &trail[i]
		k := aggKey{e.AggregateType, e.AggregateID}
		if byAgg[k] == nil {
			byAgg[k] = map[int64][]int{}
			order = append(order, k)
		}
		byAgg[k][e.AggregateVersion] = append(byAgg[k][e.AggregateVersion], i)
	}
	for _, k := range order {
		if err := p.renderAggregate(ctx, k.aggType, k.aggID, trail, byAgg[k]); err != nil {
			return err
		}
	}
	return p.normalizeDocs(ctx, trail)
}

// renderAggregate folds one aggregate's events up to the last version
// asked for and renders the entries' objects before and after their events.
func (p *Projector) renderAggregate(ctx context.Context, aggType, aggID string, trail []auditEntry, wanted map[int64][]int) error {
	var last int64
	for v := range wanted {
		last = max(last, v)
	}
	m, err := newModel(aggType, aggID)
	if err != nil {
		return err
	}
	envs, err := p.store.Load(ctx, aggType, aggID, 0)
	if err != nil {
		return fmt.Errorf("render %s %s: %w", aggType, aggID, err)
	}
	var version int64
	for _, env := range envs {
		v := env.GetAggregateVersion()
		if v > last {
			break
		}
		if v != version+1 {
			return fmt.Errorf("render %s %s: version %d after %d", aggType, aggID, v, version)
		}
		version = v
		payload, err := p.reg.Decode(env)
		if err != nil {
			return fmt.Errorf("render %s %s v%d: %w", aggType, aggID, v, err)
		}
		entries := wanted[v]
		mode := auditNone
		if len(entries) > 0 {
			mode = auditRendered
		}
		items, err := m.apply(env, payload, mode)
		if err != nil {
			return fmt.Errorf("render %s %s v%d (%s): %w", aggType, aggID, v, env.GetType(), err)
		}
		for _, i := range entries {
			e := &trail[i]
			if int(e.seq) >= len(items) || items[e.seq].kind != e.ObjectKind || items[e.seq].id != e.ObjectID {
				return fmt.Errorf("render %s %s v%d (%s): the event does not change %s %s as its object %d",
					aggType, aggID, v, env.GetType(), e.ObjectKind, e.ObjectID, e.seq)
			}
			it := items[e.seq]
			e.Before, e.After = nil, nil
			if it.before != nil {
				e.Before = it.before
			}
			if it.after != nil {
				e.After = it.after
			}
		}
	}
	if version < last {
		return fmt.Errorf("render %s %s: the store has versions up to %d, the audit trail names %d", aggType, aggID, version, last)
	}
	return nil
}

// normalizeDocs replaces the rendered documents by their JSONB text form
// (the key order and spacing of the database's JSONB output): what the same
// documents stored in JSONB columns read as.
func (p *Projector) normalizeDocs(ctx context.Context, trail []auditEntry) error {
	var docs []string
	var targets []*json.RawMessage
	for i := range trail {
		e := &trail[i]
		for _, doc := range []*json.RawMessage{&e.Before, &e.After} {
			if *doc != nil {
				docs = append(docs, string(*doc))
				targets = append(targets, doc)
			}
		}
	}
	if len(docs) == 0 {
		return nil
	}
	rows, err := p.pool.Query(ctx, `SELECT u.n, u.d::jsonb FROM unnest($1::text[]) WITH ORDINALITY AS u (d, n)`, docs)
	if err != nil {
		return fmt.Errorf("normalize documents: %w", err)
	}
	type normalized struct {
		n   int64
		doc []byte
	}
	var got []normalized
	for rows.Next() {
		var x normalized
		if err := rows.Scan(&x.n, &x.doc); err != nil {
			rows.Close()
			return fmt.Errorf("normalize documents: %w", err)
		}
		got = append(got, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("normalize documents: %w", err)
	}
	if len(got) != len(docs) {
		return fmt.Errorf("normalize documents: %d of %d came back", len(got), len(docs))
	}
	sort.Slice(got, func(i, j int) bool { return got[i].n < got[j].n })
	for i, x := range got {
		if x.n != int64(i+1) {
			return fmt.Errorf("normalize documents: document %d came back as %d", i+1, x.n)
		}
		*targets[i] = x.doc
	}
	return nil
}
