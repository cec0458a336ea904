package projections

import (
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/ostia/ostia/projections/views"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// projectionName is the projection column of the checkpoints and the key
// of projection_generations.
const projectionName = "views"

// table returns the read-model table of a kind (kinds are constants, so
// the name is safe to splice into SQL).
func table(k views.Kind) string { return "view_" + string(k) }

// textArray renders a PostgreSQL array literal ({"a","b"}), which both
// PostgreSQL and CockroachDB cast to TEXT[]: arrays of arrays cannot be
// passed through unnest.
func textArray(v []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for _, c := range s {
			if c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteRune(c)
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

func tstz(t *time.Time) pgtype.Timestamptz {
	if t == nil {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: *t, Valid: true}
}

func nullText(b []byte) pgtype.Text {
	if b == nil {
		return pgtype.Text{}
	}
	return pgtype.Text{String: string(b), Valid: true}
}

const upsertColumns = `generation, id, aggregate_id, project_id, loadbalancer_id, parent_id, name, provisioning_status,
	operating_status, created_at, updated_at, tags, doc, aux`

// queueUpsert queues one statement per kind writing rows into generation gen.
func queueUpsert(b *pgx.Batch, gen int64, rows []row) {
	byKind := map[views.Kind][]row{}
	var order []views.Kind
	for _, r := range rows {
		if _, ok := byKind[r.kind]; !ok {
			order = append(order, r.kind)
		}
		byKind[r.kind] = append(byKind[r.kind], r)
	}
	for _, k := range order {
		rs := byKind[k]
		n := len(rs)
		ids, aggs, projects, lbs, parents := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		names, provs, opers, tags, docs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		created, updated := make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
		aux := make([]pgtype.Text, n)
		for i, r := range rs {
			ids[i], aggs[i], projects[i], lbs[i], parents[i] = r.id, r.aggregateID, r.projectID, r.lbID, r.parentID
			names[i], provs[i], opers[i], tags[i], docs[i] = r.name, r.prov, r.oper, textArray(r.tags), string(r.doc)
			created[i], updated[i], aux[i] = tstz(r.created), tstz(r.updated), nullText(r.aux)
		}
		b.Queue(`INSERT INTO `+table(k)+` (`+upsertColumns+`)
			SELECT $1, u.id, u.agg, u.project, u.lb, u.parent, u.name, u.prov, u.oper, u.created, u.updated,
				u.tags::text[], u.doc::jsonb, u.aux::jsonb
			FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
				$10::timestamptz[], $11::timestamptz[], $12::text[], $13::text[], $14::text[])
				AS u (id, agg, project, lb, parent, name, prov, oper, created, updated, tags, doc, aux)
			ON CONFLICT (generation, id) DO UPDATE SET aggregate_id = excluded.aggregate_id,
				project_id = excluded.project_id, loadbalancer_id = excluded.loadbalancer_id,
				parent_id = excluded.parent_id, name = excluded.name, provisioning_status = excluded.provisioning_status,
				operating_status = excluded.operating_status, created_at = excluded.created_at,
				updated_at = excluded.updated_at, tags = excluded.tags, doc = excluded.doc, aux = excluded.aux`,
			gen, ids, aggs, projects, lbs, parents, names, provs, opers, created, updated, tags, docs, aux)
	}
}

// queueDelete queues deleting rows by kind and id.
func queueDelete(b *pgx.Batch, gen int64, keys []rowKey) {
	byKind := map[views.Kind][]string{}
	var order []views.Kind
	for _, k := range keys {
		if _, ok := byKind[k.kind]; !ok {
			order = append(order, k.kind)
		}
		byKind[k.kind] = append(byKind[k.kind], k.id)
	}
	for _, k := range order {
		b.Queue(`DELETE FROM `+table(k)+` WHERE generation = $1 AND id = ANY($2::text[])`, gen, byKind[k])
	}
}

// queueDeleteAggregates queues deleting every row of the aggregates.
func queueDeleteAggregates(b *pgx.Batch, gen int64, aggregateType string, ids []string) {
	for _, k := range kindsOf(aggregateType) {
		b.Queue(`DELETE FROM `+table(k)+` WHERE generation = $1 AND aggregate_id = ANY($2::text[])`, gen, ids)
	}
}

// auditRecord is one audit_events row: an event and the objects it changed
// (not rendered: AuditTrail renders them when read).
type auditRecord struct {
	env   *eventsv1.Envelope
	items []auditItem
}

// auditObject is one audit_objects row: an object some event of an
// aggregate changed.
type auditObject struct {
	aggregateType, aggregateID string
	kind                       views.Kind
	id                         string
}

// queueAudit queues storing audit records and their objects.
func queueAudit(b *pgx.Batch, gen int64, recs []auditRecord) {
	if len(recs) == 0 {
		return
	}
	n := len(recs)
	ids, actors, projects, corrs, aggTypes, aggIDs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	kinds, objIDs, types := make([]string, n), make([]string, n), make([]string, n)
	positions, versions := make([]int64, n), make([]int64, n)
	at := make([]time.Time, n)
	var objects []auditObject
	seen := map[auditObject]bool{}
	for i, r := range recs {
		e := r.env
		ids[i], actors[i], projects[i], corrs[i], aggTypes[i], aggIDs[i] = e.GetEventId(), e.GetActor(), e.GetProjectId(),
			e.GetCorrelationId(), e.GetAggregateType(), e.GetAggregateId()
		positions[i], versions[i], at[i], types[i] = e.GetGlobalPosition(), e.GetAggregateVersion(), e.GetOccurredAt().AsTime(), e.GetType()
		k, o := make([]string, len(r.items)), make([]string, len(r.items))
		for j, it := range r.items {
			k[j], o[j] = string(it.kind), it.id
			obj := auditObject{e.GetAggregateType(), e.GetAggregateId(), it.kind, it.id}
			if !seen[obj] {
				seen[obj] = true
				objects = append(objects, obj)
			}
		}
		kinds[i], objIDs[i] = textArray(k), textArray(o)
	}
	b.Queue(insertAuditEvents, gen, aggTypes, aggIDs, versions, ids, positions, at, actors, projects, corrs, types, kinds, objIDs)
	queueAuditObjects(b, gen, objects)
}

// insertAuditEvents stores audit_events rows from arrays (the object
// kinds and ids of each row, $12 and $13, as array literals), keeping rows
// already there.
const insertAuditEvents = `INSERT INTO audit_events (generation, aggregate_type, aggregate_id, aggregate_version, event_id,
		global_position, occurred_at, actor, project_id, correlation_id, event_type, object_kinds, object_ids)
	SELECT $1, u.agg_type, u.agg_id, u.version, u.id::uuid, u.pos, u.at, u.actor, u.project, u.corr, u.type,
		u.kinds::text[], u.objs::text[]
	FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::timestamptz[], $8::text[],
		$9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
		AS u (agg_type, agg_id, version, id, pos, at, actor, project, corr, type, kinds, objs)
	ON CONFLICT (generation, aggregate_type, aggregate_id, aggregate_version) DO NOTHING`

// queueAuditObjects queues recording objects in the audit trail's
// directory (rows already there are kept).
func queueAuditObjects(b *pgx.Batch, gen int64, objects []auditObject) {
	if len(objects) == 0 {
		return
	}
	n := len(objects)
	ids, aggTypes, aggIDs, kinds := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, o := range objects {
		ids[i], aggTypes[i], aggIDs[i], kinds[i] = o.id, o.aggregateType, o.aggregateID, string(o.kind)
	}
	b.Queue(`INSERT INTO audit_objects (generation, object_id, aggregate_type, aggregate_id, object_kind)
		SELECT $1, u.id, u.agg_type, u.agg_id, u.kind FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
			AS u (id, agg_type, agg_id, kind)
		ON CONFLICT (generation, object_id, aggregate_type, aggregate_id) DO NOTHING`, gen, ids, aggTypes, aggIDs, kinds)
}

// checkpoint is the version of one aggregate in one generation.
type checkpoint struct {
	aggregateType, aggregateID string
	version                    int64
}

// queueCheckpoints queues advancing checkpoints (never backwards).
func queueCheckpoints(b *pgx.Batch, gen int64, cps []checkpoint) {
	if len(cps) == 0 {
		return
	}
	types, ids, versions := make([]string, len(cps)), make([]string, len(cps)), make([]int64, len(cps))
	for i, c := range cps {
		types[i], ids[i], versions[i] = c.aggregateType, c.aggregateID, c.version
	}
	b.Queue(`INSERT INTO projection_checkpoints (projection, generation, aggregate_type, aggregate_id, version)
		SELECT $1, $2, u.t, u.id, u.v FROM unnest($3::text[], $4::text[], $5::bigint[]) AS u (t, id, v)
		ON CONFLICT (projection, generation, aggregate_type, aggregate_id)
		DO UPDATE SET version = excluded.version WHERE projection_checkpoints.version < excluded.version`,
		projectionName, gen, types, ids, versions)
}
