package projections

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Resource types of usage records.
const (
	usageLoadBalancer = "loadbalancer"
	usageListener     = "listener"
	usageAmphora      = "amphora"
)

// usageRecord is one billable interval of a resource: from when it became
// billable until it was deleted (zero: still there). It is a row of
// billing_usage, kept per generation like the read models and derived from
// the same fold of the log, so a replayed generation bills exactly like
// the live one.
type usageRecord struct {
	kind      string
	id        string
	projectID string
	lbID      string
	from      time.Time
	until     time.Time
}

// closeUsage ends the open record of a resource.
func closeUsage(recs []usageRecord, kind, id string, at time.Time) {
	for i := range recs {
		if recs[i].kind == kind && recs[i].id == id && recs[i].until.IsZero() {
			recs[i].until = at
		}
	}
}

// changedUsage returns the records of now that are not in before as they are.
func changedUsage(before, now []usageRecord) []usageRecord {
	var out []usageRecord
	for _, u := range now {
		if !slices.Contains(before, u) {
			out = append(out, u)
		}
	}
	return out
}

func (u *usageRecord) untilColumn() pgtype.Timestamptz {
	if u.until.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: u.until, Valid: true}
}

// queueUsage queues writing usage records into generation gen.
func queueUsage(b *pgx.Batch, gen int64, recs []usageRecord) {
	if len(recs) == 0 {
		return
	}
	n := len(recs)
	kinds, ids, projects, lbs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	from, until := make([]time.Time, n), make([]pgtype.Timestamptz, n)
	for i := range recs {
		u := &recs[i]
		kinds[i], ids[i], projects[i], lbs[i], from[i], until[i] = u.kind, u.id, u.projectID, u.lbID, u.from, u.untilColumn()
	}
	b.Queue(`INSERT INTO billing_usage (generation, resource_type, resource_id, project_id, loadbalancer_id, active_from, active_until)
		SELECT $1, u.kind, u.id, u.project, u.lb, u.from_at, u.until_at
		FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[])
			AS u (kind, id, project, lb, from_at, until_at)
		ON CONFLICT (generation, resource_type, resource_id) DO UPDATE SET project_id = excluded.project_id,
			loadbalancer_id = excluded.loadbalancer_id, active_from = excluded.active_from, active_until = excluded.active_until`,
		gen, kinds, ids, projects, lbs, from, until)
}

// UsageQuery selects the usage of one time window.
type UsageQuery struct {
	// ProjectID restricts the report to one project; empty means every
	// project.
	ProjectID string
	// From and To bound the window [From, To).
	From, To time.Time
	// Generation reads another generation than the current one (0), for
	// example one rebuilt by Replay.
	Generation int64
	// Now ends the intervals of resources that still exist (default: the
	// current time), so nothing is billed in the future.
	Now time.Time
}

// UsageLine is the usage of one resource in the window. Load balancers
// carry the traffic of their listeners; amphorae carry none.
type UsageLine struct {
	ProjectID      string `json:"project_id"`
	ResourceType   string `json:"resource_type"`
	ResourceID     string `json:"resource_id"`
	LoadBalancerID string `json:"loadbalancer_id"`
	// ActiveFrom and ActiveUntil are the whole billable interval (nil
	// until: the resource still exists).
	ActiveFrom  time.Time  `json:"active_from"`
	ActiveUntil *time.Time `json:"active_until"`
	// Seconds is the part of the interval inside the window.
	Seconds float64 `json:"seconds"`
	Hours   float64 `json:"hours"`
	// Traffic counted by the health manager in the window (statistics
	// buckets that start inside it).
	BytesIn          int64 `json:"bytes_in"`
	BytesOut         int64 `json:"bytes_out"`
	TotalConnections int64 `json:"total_connections"`
	RequestErrors    int64 `json:"request_errors"`
}

// ProjectUsage is the usage of one project in the window.
type ProjectUsage struct {
	ProjectID         string  `json:"project_id"`
	LoadBalancers     int     `json:"loadbalancers"`
	LoadBalancerHours float64 `json:"loadbalancer_hours"`
	Listeners         int     `json:"listeners"`
	ListenerHours     float64 `json:"listener_hours"`
	Amphorae          int     `json:"amphorae"`
	AmphoraHours      float64 `json:"amphora_hours"`
	BytesIn           int64   `json:"bytes_in"`
	BytesOut          int64   `json:"bytes_out"`
	TotalConnections  int64   `json:"total_connections"`
	RequestErrors     int64   `json:"request_errors"`
}

// UsageReport is the usage of a window.
type UsageReport struct {
	From       time.Time      `json:"from"`
	To         time.Time      `json:"to"`
	Generation int64          `json:"generation"`
	Projects   []ProjectUsage `json:"projects"`
	Resources  []UsageLine    `json:"resources"`
}

// traffic is the statistics of a listener or load balancer in a window.
type traffic struct{ in, out, conns, errs int64 }

func (t traffic) add(o traffic) traffic {
	return traffic{t.in + o.in, t.out + o.out, t.conns + o.conns, t.errs + o.errs}
}

func typeRank(t string) int {
	switch t {
	case usageLoadBalancer:
		return 0
	case usageListener:
		return 1
	}
	return 2
}

// Usage computes the usage of a window from a generation's usage records
// (hours active, from the event log) and the health manager's listener
// statistics (listener_stats_history). Intervals are clipped to the window
// and to Now.
func (p *Projector) Usage(ctx context.Context, q UsageQuery) (*UsageReport, error) {
	if q.From.IsZero() || q.To.IsZero() || !q.From.Before(q.To) {
		return nil, fmt.Errorf("usage: the window needs From before To (got %s, %s)", q.From, q.To)
	}
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	gen, err := p.generation(ctx, q.Generation)
	if err != nil {
		return nil, err
	}
	end := q.To
	if q.Now.Before(end) {
		end = q.Now
	}
	rows, err := p.pool.Query(ctx, `SELECT resource_type, resource_id, project_id, loadbalancer_id, active_from, active_until
		FROM billing_usage
		WHERE generation = $1 AND ($2 = '' OR project_id = $2) AND active_from < $4
			AND (active_until IS NULL OR active_until > $3)`, gen, q.ProjectID, q.From, end)
	if err != nil {
		return nil, fmt.Errorf("usage: read intervals: %w", err)
	}
	var lines []UsageLine
	for rows.Next() {
		var l UsageLine
		var until pgtype.Timestamptz
		if err := rows.Scan(&l.ResourceType, &l.ResourceID, &l.ProjectID, &l.LoadBalancerID, &l.ActiveFrom, &until); err != nil {
			rows.Close()
			return nil, fmt.Errorf("usage: read intervals: %w", err)
		}
		l.ActiveFrom = l.ActiveFrom.UTC()
		stop := end
		if until.Valid {
			t := until.Time.UTC()
			l.ActiveUntil = &t
			if t.Before(stop) {
				stop = t
			}
		}
		start := l.ActiveFrom
		if start.Before(q.From) {
			start = q.From
		}
		if d := stop.Sub(start); d > 0 {
			l.Seconds, l.Hours = d.Seconds(), d.Hours()
		}
		lines = append(lines, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("usage: read intervals: %w", err)
	}

	// Traffic per listener, attributed through the listener's usage record.
	byListener := map[string]traffic{}
	rows, err = p.pool.Query(ctx, `SELECT h.listener_id, COALESCE(SUM(h.bytes_in), 0), COALESCE(SUM(h.bytes_out), 0),
			COALESCE(SUM(h.total_connections), 0), COALESCE(SUM(h.request_errors), 0)
		FROM listener_stats_history h
		JOIN billing_usage u ON u.generation = $1 AND u.resource_type = 'listener' AND u.resource_id = h.listener_id
		WHERE ($2 = '' OR u.project_id = $2) AND h.bucket_start >= $3 AND h.bucket_start < $4
		GROUP BY h.listener_id`, gen, q.ProjectID, q.From, q.To)
	if err != nil {
		return nil, fmt.Errorf("usage: read listener statistics: %w", err)
	}
	for rows.Next() {
		var id string
		var t traffic
		if err := rows.Scan(&id, &t.in, &t.out, &t.conns, &t.errs); err != nil {
			rows.Close()
			return nil, fmt.Errorf("usage: read listener statistics: %w", err)
		}
		byListener[id] = t
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("usage: read listener statistics: %w", err)
	}
	byLB := map[string]traffic{}
	for i := range lines {
		l := &lines[i]
		if l.ResourceType != usageListener {
			continue
		}
		t, ok := byListener[l.ResourceID]
		if !ok {
			continue
		}
		delete(byListener, l.ResourceID)
		l.BytesIn, l.BytesOut, l.TotalConnections, l.RequestErrors = t.in, t.out, t.conns, t.errs
		byLB[l.LoadBalancerID] = byLB[l.LoadBalancerID].add(t)
	}
	// A listener with traffic in the window but an interval outside it
	// (statistics arriving after the deletion) still counts its traffic.
	if len(byListener) > 0 {
		extra, err := p.listenerRecords(ctx, gen, byListener)
		if err != nil {
			return nil, err
		}
		for _, l := range extra {
			t := byListener[l.ResourceID]
			l.BytesIn, l.BytesOut, l.TotalConnections, l.RequestErrors = t.in, t.out, t.conns, t.errs
			byLB[l.LoadBalancerID] = byLB[l.LoadBalancerID].add(t)
			lines = append(lines, l)
		}
	}
	for i := range lines {
		l := &lines[i]
		if l.ResourceType == usageLoadBalancer {
			t := byLB[l.ResourceID]
			l.BytesIn, l.BytesOut, l.TotalConnections, l.RequestErrors = t.in, t.out, t.conns, t.errs
		}
	}
	slices.SortFunc(lines, func(a, b UsageLine) int {
		return cmp.Or(cmp.Compare(a.ProjectID, b.ProjectID), cmp.Compare(a.LoadBalancerID, b.LoadBalancerID),
			cmp.Compare(typeRank(a.ResourceType), typeRank(b.ResourceType)), cmp.Compare(a.ResourceID, b.ResourceID))
	})

	rep := &UsageReport{From: q.From.UTC(), To: q.To.UTC(), Generation: gen, Resources: lines}
	if rep.Resources == nil {
		rep.Resources = []UsageLine{}
	}
	rep.Projects = []ProjectUsage{}
	for _, l := range lines {
		if len(rep.Projects) == 0 || rep.Projects[len(rep.Projects)-1].ProjectID != l.ProjectID {
			rep.Projects = append(rep.Projects, ProjectUsage{ProjectID: l.ProjectID})
		}
		pu := &rep.Projects[len(rep.Projects)-1]
		switch l.ResourceType {
		case usageLoadBalancer:
			pu.LoadBalancers++
			pu.LoadBalancerHours += l.Hours
			// Traffic is summed from the listeners, so it is not counted
			// twice.
		case usageListener:
			pu.Listeners++
			pu.ListenerHours += l.Hours
			pu.BytesIn += l.BytesIn
			pu.BytesOut += l.BytesOut
			pu.TotalConnections += l.TotalConnections
			pu.RequestErrors += l.RequestErrors
		case usageAmphora:
			pu.Amphorae++
			pu.AmphoraHours += l.Hours
		}
	}
	return rep, nil
}

// listenerRecords returns the usage lines (with no time in the window) of
// listeners given by id.
func (p *Projector) listenerRecords(ctx context.Context, gen int64, ids map[string]traffic) ([]UsageLine, error) {
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	rows, err := p.pool.Query(ctx, `SELECT resource_id, project_id, loadbalancer_id, active_from, active_until FROM billing_usage
		WHERE generation = $1 AND resource_type = 'listener' AND resource_id = ANY($2::text[])`, gen, list)
	if err != nil {
		return nil, fmt.Errorf("usage: read listeners: %w", err)
	}
	defer rows.Close()
	var out []UsageLine
	for rows.Next() {
		l := UsageLine{ResourceType: usageListener}
		var until pgtype.Timestamptz
		if err := rows.Scan(&l.ResourceID, &l.ProjectID, &l.LoadBalancerID, &l.ActiveFrom, &until); err != nil {
			return nil, fmt.Errorf("usage: read listeners: %w", err)
		}
		l.ActiveFrom = l.ActiveFrom.UTC()
		if until.Valid {
			t := until.Time.UTC()
			l.ActiveUntil = &t
		}
		out = append(out, l)
	}
	return out, rows.Err()
}
