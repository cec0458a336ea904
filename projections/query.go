package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ostia/ostia/projections/views"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// Errors of the query functions; match them with errors.Is. The messages
// of the wrapping *QueryError are Octavia's faultstrings.
var (
	// ErrNotFound: no such object (404).
	ErrNotFound = errors.New("not found")
	// ErrInvalidMarker: the pagination marker names no object (400).
	ErrInvalidMarker = errors.New("invalid marker")
	// ErrInvalidSortKey: a sort key is not an attribute (400).
	ErrInvalidSortKey = errors.New("invalid sort key")
	// ErrInvalidFilter: a filter is not an attribute (400).
	ErrInvalidFilter = errors.New("invalid filter")
	// ErrUnknownKind: the kind is not a read model (a programming error).
	ErrUnknownKind = errors.New("unknown kind")
)

// QueryError is a refused query with Octavia's message.
type QueryError struct {
	Err     error
	Message string
}

func (e *QueryError) Error() string { return e.Message }
func (e *QueryError) Unwrap() error { return e.Err }

// SortKey is one sort criterion.
type SortKey struct {
	Key  string
	Desc bool
}

// Query selects objects of one kind (Octavia's list semantics, spec 0.5).
type Query struct {
	// ProjectID restricts to one project; empty means all.
	ProjectID string
	// Filters are equality filters: attribute -> accepted values (any of
	// them matches; "a,b" is not split). Attributes are compared as the text
	// of the API object's field, except loadbalancer_id, project_id and the
	// parent id (pool_id of members and health monitors, l7policy_id of
	// rules, listener_id of policies), which use the row's columns. The
	// keys tags, tags-any, not-tags and not-tags-any filter on the tags
	// (values may be comma separated).
	Filters map[string][]string
	// Sort keys; created_at and id are appended as tie-breakers (ascending)
	// when the object has them and they are not present.
	Sort []SortKey
	// Limit <= 0 means no limit.
	Limit int
	// Marker is the id of the last object of the previous page.
	Marker string
	// PageReverse flips the marker comparison, as Octavia does when
	// page_reverse is exactly "True" (the order of the page is unchanged).
	PageReverse bool
	// Fields, when set, keeps only these attributes of each object.
	Fields []string
	// Generation reads another generation than the current one (0).
	Generation int64
}

// Page is one page of a list.
type Page struct {
	Items []json.RawMessage
	// FirstID and LastID are the ids of the first and last objects (for
	// the previous and next links), even when Fields drops "id".
	FirstID, LastID string
	// Full reports that Limit was set and the page holds Limit objects (a
	// next link is due).
	Full bool
}

// Object is one stored object with the columns the gateway checks (owner,
// parent) besides the API representation.
type Object struct {
	Kind               views.Kind
	ID                 string
	ProjectID          string
	LoadBalancerID     string
	ParentID           string
	ProvisioningStatus string
	Doc                json.RawMessage
}

func knownKind(k views.Kind) bool { return views.Fields(k) != nil }

// parentFilter is the query key that filters on the parent_id column.
func parentFilter(k views.Kind) string {
	switch k {
	case views.KindMember, views.KindHealthMonitor:
		return "pool_id"
	case views.KindL7Rule:
		return "l7policy_id"
	case views.KindL7Policy:
		return "listener_id"
	}
	return ""
}

// column maps a query attribute to a row column, "" for the object's field.
func column(k views.Kind, field string) string {
	switch {
	case field == "id":
		return "id"
	case field == "project_id":
		return "project_id"
	case field == "loadbalancer_id" && k != views.KindAmphora:
		return "loadbalancer_id"
	case field != "" && field == parentFilter(k):
		return "parent_id"
	}
	return ""
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func isBoolField(f string) bool {
	switch f {
	case "admin_state_up", "backup", "invert", "enabled", "tls_enabled", "cert_busy":
		return true
	}
	return false
}

func (p *Projector) generation(ctx context.Context, g int64) (int64, error) {
	if g > 0 {
		return g, nil
	}
	cur, _, err := generations(ctx, p.pool)
	return cur, err
}

type args struct{ v []any }

func (a *args) add(v any) string {
	a.v = append(a.v, v)
	return "$" + strconv.Itoa(len(a.v))
}

// sortExpr is the SQL expression a sort key orders by (a JSONB value, so
// numbers sort as numbers and strings as strings; null sorts first).
func sortExpr(k views.Kind, key string) (string, bool) {
	if c := column(k, key); c != "" {
		return "to_jsonb(" + c + ")", true
	}
	if !views.HasField(k, key) {
		return "", false
	}
	return "COALESCE(doc->" + quoteLiteral(key) + ", 'null'::jsonb)", true
}

func splitValues(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// List returns one page of objects of a kind.
func (p *Projector) List(ctx context.Context, kind views.Kind, q Query) (Page, error) {
	if !knownKind(kind) {
		return Page{}, fmt.Errorf("list %s: %w", kind, ErrUnknownKind)
	}
	gen, err := p.generation(ctx, q.Generation)
	if err != nil {
		return Page{}, err
	}
	a := &args{}
	where := []string{"generation = " + a.add(gen)}
	if q.ProjectID != "" {
		where = append(where, "project_id = "+a.add(q.ProjectID))
	}
	for field, values := range q.Filters {
		switch field {
		case "tags", "tags-any", "not-tags", "not-tags-any":
			if !views.HasTags(kind) {
				return Page{}, invalidFilter()
			}
			tags := splitValues(values)
			op := "@>"
			if strings.HasSuffix(field, "-any") {
				op = "&&"
			}
			cond := "tags " + op + " " + a.add(tags) + "::text[]"
			if strings.HasPrefix(field, "not-") {
				cond = "NOT (" + cond + ")"
			}
			where = append(where, cond)
			continue
		}
		if c := column(kind, field); c != "" {
			where = append(where, c+" = ANY("+a.add(values)+"::text[])")
			continue
		}
		if !views.HasField(kind, field) {
			return Page{}, invalidFilter()
		}
		vals := values
		if isBoolField(field) {
			vals = make([]string, len(values))
			for i, v := range values {
				vals[i] = strings.ToLower(v)
			}
		}
		where = append(where, "doc->>"+quoteLiteral(field)+" = ANY("+a.add(vals)+"::text[])")
	}

	keys := append([]SortKey(nil), q.Sort...)
	has := map[string]bool{}
	for _, k := range keys {
		has[k.Key] = true
	}
	for _, d := range []string{"created_at", "id"} {
		if !has[d] && (views.HasField(kind, d) || d == "id") {
			keys = append(keys, SortKey{Key: d})
		}
	}
	exprs := make([]string, len(keys))
	order := make([]string, len(keys))
	for i, k := range keys {
		e, ok := sortExpr(kind, k.Key)
		if !ok {
			return Page{}, &QueryError{Err: ErrInvalidSortKey, Message: fmt.Sprintf("Supplied sort key '%s' is not valid.", k.Key)}
		}
		exprs[i] = e
		dir := " ASC"
		if k.Desc {
			dir = " DESC"
		}
		order[i] = e + dir
	}

	if q.Marker != "" {
		// The marker's sort values, as JSONB text.
		var marker []*string
		sel := make([]string, len(exprs))
		for i, e := range exprs {
			sel[i] = e + "::text"
		}
		rows, err := p.pool.Query(ctx, `SELECT ARRAY[`+strings.Join(sel, ", ")+`] FROM `+table(kind)+
			` WHERE generation = $1 AND id = $2`, gen, q.Marker)
		if err != nil {
			return Page{}, fmt.Errorf("list %s: read marker: %w", kind, err)
		}
		found := false
		for rows.Next() {
			if err := rows.Scan(&marker); err != nil {
				rows.Close()
				return Page{}, fmt.Errorf("list %s: read marker: %w", kind, err)
			}
			found = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return Page{}, fmt.Errorf("list %s: read marker: %w", kind, err)
		}
		if !found {
			return Page{}, &QueryError{Err: ErrInvalidMarker,
				Message: fmt.Sprintf("Supplied pagination marker '%s' is not valid.", q.Marker)}
		}
		// (k1 > m1) OR (k1 = m1 AND k2 > m2) OR ... with < for descending
		// keys; page_reverse flips every comparison.
		var ors []string
		for i := range keys {
			var ands []string
			for j := 0; j < i; j++ {
				ands = append(ands, exprs[j]+" = "+a.add(marker[j])+"::jsonb")
			}
			op := ">"
			if keys[i].Desc != q.PageReverse {
				op = "<"
			}
			ands = append(ands, exprs[i]+" "+op+" "+a.add(marker[i])+"::jsonb")
			ors = append(ors, "("+strings.Join(ands, " AND ")+")")
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}

	sql := `SELECT id, doc FROM ` + table(kind) + ` WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY ` + strings.Join(order, ", ")
	if q.Limit > 0 {
		sql += " LIMIT " + a.add(q.Limit)
	}
	rows, err := p.pool.Query(ctx, sql, a.v...)
	if err != nil {
		return Page{}, fmt.Errorf("list %s: %w", kind, err)
	}
	defer rows.Close()
	page := Page{Items: []json.RawMessage{}}
	for rows.Next() {
		var id string
		var doc []byte
		if err := rows.Scan(&id, &doc); err != nil {
			return Page{}, fmt.Errorf("list %s: %w", kind, err)
		}
		if page.FirstID == "" {
			page.FirstID = id
		}
		page.LastID = id
		if len(q.Fields) > 0 {
			if doc, err = selectFields(doc, q.Fields); err != nil {
				return Page{}, fmt.Errorf("list %s: %w", kind, err)
			}
		}
		page.Items = append(page.Items, doc)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("list %s: %w", kind, err)
	}
	page.Full = q.Limit > 0 && len(page.Items) == q.Limit
	return page, nil
}

func invalidFilter() error {
	return &QueryError{Err: ErrInvalidFilter, Message: "One or more arguments are either duplicate or invalid"}
}

// selectFields keeps only the named attributes of an object.
func selectFields(doc []byte, fields []string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, fmt.Errorf("decode stored object: %w", err)
	}
	out := make(map[string]json.RawMessage, len(fields))
	for _, f := range fields {
		if v, ok := m[f]; ok {
			out[f] = v
		}
	}
	return json.Marshal(out)
}

// Get returns one object of the current generation; fields, when given,
// keep only these attributes.
func (p *Projector) Get(ctx context.Context, kind views.Kind, id string, fields ...string) (*Object, error) {
	if !knownKind(kind) {
		return nil, fmt.Errorf("get %s: %w", kind, ErrUnknownKind)
	}
	gen, err := p.generation(ctx, 0)
	if err != nil {
		return nil, err
	}
	o := &Object{Kind: kind, ID: id}
	var doc []byte
	err = p.pool.QueryRow(ctx, `SELECT project_id, loadbalancer_id, parent_id, provisioning_status, doc FROM `+table(kind)+
		` WHERE generation = $1 AND id = $2`, gen, id).Scan(&o.ProjectID, &o.LoadBalancerID, &o.ParentID, &o.ProvisioningStatus, &doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s %s: %w", kind, id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", kind, id, err)
	}
	if len(fields) > 0 {
		if doc, err = selectFields(doc, fields); err != nil {
			return nil, err
		}
	}
	o.Doc = doc
	return o, nil
}

// StatusTree returns the status tree of a load balancer (the value of
// "statuses").
func (p *Projector) StatusTree(ctx context.Context, lbID string) (json.RawMessage, error) {
	gen, err := p.generation(ctx, 0)
	if err != nil {
		return nil, err
	}
	var tree []byte
	err = p.pool.QueryRow(ctx, `SELECT aux FROM view_loadbalancer WHERE generation = $1 AND id = $2`, gen, lbID).Scan(&tree)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && tree == nil) {
		return nil, fmt.Errorf("load balancer %s: %w", lbID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("status tree of %s: %w", lbID, err)
	}
	return tree, nil
}

// ProjectQuota returns the limits set for a project (unset fields use the
// defaults; render with views.Quota) and whether the project has a quota
// record at all.
func (p *Projector) ProjectQuota(ctx context.Context, projectID string) (*eventsv1.Quota, bool, error) {
	o, err := p.Get(ctx, views.KindQuota, projectID)
	if errors.Is(err, ErrNotFound) {
		return &eventsv1.Quota{}, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var v struct {
		LoadBalancer  *int64 `json:"load_balancer"`
		Listener      *int64 `json:"listener"`
		Pool          *int64 `json:"pool"`
		HealthMonitor *int64 `json:"health_monitor"`
		Member        *int64 `json:"member"`
		L7Policy      *int64 `json:"l7policy"`
		L7Rule        *int64 `json:"l7rule"`
	}
	if err := json.Unmarshal(o.Doc, &v); err != nil {
		return nil, false, fmt.Errorf("decode quota of %s: %w", projectID, err)
	}
	return &eventsv1.Quota{LoadBalancer: v.LoadBalancer, Listener: v.Listener, Pool: v.Pool,
		HealthMonitor: v.HealthMonitor, Member: v.Member, L7Policy: v.L7Policy, L7Rule: v.L7Rule}, true, nil
}

// AuditEntry is one change of one object.
type AuditEntry struct {
	EventID          string
	GlobalPosition   int64
	OccurredAt       time.Time
	Actor            string
	ProjectID        string
	CorrelationID    string
	AggregateType    string
	AggregateID      string
	AggregateVersion int64
	ObjectKind       views.Kind
	ObjectID         string
	EventType        string
	// Before and After are the object's API representation (nil when it
	// did not exist).
	Before, After json.RawMessage
}

// AuditTrail returns every recorded change of an object, oldest first:
// the rows older versions stored in audit_log as they were stored, and the
// changes recorded in audit_events with the documents rendered from the
// event log (renderAudit).
func (p *Projector) AuditTrail(ctx context.Context, objectID string) ([]AuditEntry, error) {
	gen, err := p.generation(ctx, 0)
	if err != nil {
		return nil, err
	}
	rows, err := p.pool.Query(ctx, `SELECT event_id::text, global_position, occurred_at, actor, project_id, correlation_id,
		aggregate_type, aggregate_id, aggregate_version, object_kind, object_id, event_type, before, after, seq
		FROM audit_log WHERE generation = $1 AND object_id = $2
		ORDER BY occurred_at, aggregate_version, seq`, gen, objectID)
	if err != nil {
		return nil, fmt.Errorf("audit trail of %s: %w", objectID, err)
	}
	defer rows.Close()
	var out []auditEntry
	for rows.Next() {
		var e AuditEntry
		var kind string
		var before, after []byte
		var seq int32
		if err := rows.Scan(&e.EventID, &e.GlobalPosition, &e.OccurredAt, &e.Actor, &e.ProjectID, &e.CorrelationID,
			&e.AggregateType, &e.AggregateID, &e.AggregateVersion, &kind, &e.ObjectID, &e.EventType, &before, &after,
			&seq); err != nil {
			return nil, fmt.Errorf("audit trail of %s: %w", objectID, err)
		}
		e.ObjectKind = views.Kind(kind)
		if before != nil {
			e.Before = before
		}
		if after != nil {
			e.After = after
		}
		out = append(out, auditEntry{AuditEntry: e, seq: seq})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit trail of %s: %w", objectID, err)
	}
	rows.Close()
	derived, err := p.recordedChanges(ctx, gen, objectID)
	if err != nil {
		return nil, fmt.Errorf("audit trail of %s: %w", objectID, err)
	}
	if err := p.renderAudit(ctx, derived); err != nil {
		return nil, fmt.Errorf("audit trail of %s: %w", objectID, err)
	}
	out = append(out, derived...)
	// The order of the rows' ORDER BY (stable: ties keep the order read).
	sort.SliceStable(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if !a.OccurredAt.Equal(b.OccurredAt) {
			return a.OccurredAt.Before(b.OccurredAt)
		}
		if a.AggregateVersion != b.AggregateVersion {
			return a.AggregateVersion < b.AggregateVersion
		}
		return a.seq < b.seq
	})
	trail := make([]AuditEntry, len(out))
	for i := range out {
		trail[i] = out[i].AuditEntry
	}
	return trail, nil
}
