package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/projections/views"
)

// PastObject is an object as the API showed it at a past time, rebuilt
// from the event log.
type PastObject struct {
	Kind          views.Kind
	ID            string
	AggregateType string
	AggregateID   string
	// At is the time asked for; Version is the aggregate's version then and
	// ChangedAt when the event that produced that version occurred.
	At        time.Time
	Version   int64
	ChangedAt time.Time
	// Object is the API representation (what a GET returned at At).
	Object views.Object
	// Tree is set for load balancers: every object of the tree at At, as
	// the API's list calls showed them, and the status tree.
	Tree views.Object
}

// ObjectAt renders an object (a load balancer or any object of its tree,
// an amphora, a project's quota, a flavor, ...) as it was at a past time:
// the events of its aggregate that occurred at or before at are read from
// the event store and folded with the aggregate's own Apply, then rendered
// with the same views the read models store. It fails with ErrNotFound
// when the object did not exist at that time.
func (p *Projector) ObjectAt(ctx context.Context, objectID string, at time.Time) (*PastObject, error) {
	kind, aggType, aggID, err := p.locate(ctx, objectID)
	if err != nil {
		return nil, err
	}
	m, err := newModel(aggType, aggID)
	if err != nil {
		return nil, err
	}
	envs, err := p.store.Load(ctx, aggType, aggID, 0)
	if err != nil {
		return nil, fmt.Errorf("%s %s as of %s: %w", kind, objectID, at.Format(time.RFC3339), err)
	}
	out := &PastObject{Kind: kind, ID: objectID, AggregateType: aggType, AggregateID: aggID, At: at}
	for _, env := range envs {
		// Versions of one aggregate are decided one after another, so
		// their times only grow: stop at the first event after at.
		if env.GetOccurredAt().AsTime().After(at) {
			break
		}
		payload, err := p.reg.Decode(env)
		if err != nil {
			return nil, fmt.Errorf("%s %s as of %s: %w", kind, objectID, at.Format(time.RFC3339), err)
		}
		if _, err := m.apply(env, payload, auditNone); err != nil {
			return nil, fmt.Errorf("%s %s as of %s: v%d (%s): %w", kind, objectID, at.Format(time.RFC3339),
				env.GetAggregateVersion(), env.GetType(), err)
		}
		out.Version, out.ChangedAt = env.GetAggregateVersion(), env.GetOccurredAt().AsTime()
	}
	out.Object = renderObject(m, kind, objectID)
	if out.Object == nil {
		return nil, fmt.Errorf("%s %s as of %s: %w", kind, objectID, at.Format(time.RFC3339), ErrNotFound)
	}
	if lb, ok := m.(*lbModel); ok && kind == views.KindLoadBalancer {
		out.Tree = treeObject(views.NewTree(lb.st, lb.touched))
	}
	return out, nil
}

// locate finds the kind and aggregate of an object: from the audit trail
// (rows of older versions, then the directory of audited objects), else as the id of a load balancer or amphora stream, else from the
// current read models.
func (p *Projector) locate(ctx context.Context, objectID string) (views.Kind, string, string, error) {
	gen, err := p.generation(ctx, 0)
	if err != nil {
		return "", "", "", err
	}
	var kind, aggType, aggID string
	err = p.pool.QueryRow(ctx, `SELECT object_kind, aggregate_type, aggregate_id FROM audit_log
		WHERE generation = $1 AND object_id = $2 LIMIT 1`, gen, objectID).Scan(&kind, &aggType, &aggID)
	if err == nil {
		return views.Kind(kind), aggType, aggID, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", "", "", fmt.Errorf("locate %s: %w", objectID, err)
	}
	err = p.pool.QueryRow(ctx, `SELECT object_kind, aggregate_type, aggregate_id FROM audit_objects
		WHERE generation = $1 AND object_id = $2 ORDER BY aggregate_type, aggregate_id LIMIT 1`, gen, objectID).Scan(&kind, &aggType, &aggID)
	if err == nil {
		return views.Kind(kind), aggType, aggID, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", "", "", fmt.Errorf("locate %s: %w", objectID, err)
	}
	err = p.pool.QueryRow(ctx, `SELECT aggregate_type FROM streams WHERE aggregate_id = $1 AND aggregate_type IN ($2, $3)
		ORDER BY aggregate_type LIMIT 1`, objectID, events.AggregateLoadBalancer, events.AggregateAmphora).Scan(&aggType)
	if err == nil {
		if aggType == events.AggregateAmphora {
			return views.KindAmphora, aggType, objectID, nil
		}
		return views.KindLoadBalancer, aggType, objectID, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", "", "", fmt.Errorf("locate %s: %w", objectID, err)
	}
	for _, k := range views.Kinds() {
		err = p.pool.QueryRow(ctx, `SELECT aggregate_id FROM `+table(k)+` WHERE generation = $1 AND id = $2`, gen, objectID).Scan(&aggID)
		if err == nil {
			for _, t := range []string{events.AggregateLoadBalancer, events.AggregateAmphora, events.AggregateProject,
				events.AggregateCatalog} {
				for _, tk := range kindsOf(t) {
					if tk == k {
						return k, t, aggID, nil
					}
				}
			}
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return "", "", "", fmt.Errorf("locate %s: %w", objectID, err)
		}
	}
	return "", "", "", fmt.Errorf("object %s: %w", objectID, ErrNotFound)
}

// renderObject renders one object of a folded model (nil: it does not
// exist in that state).
func renderObject(m model, kind views.Kind, id string) views.Object {
	switch x := m.(type) {
	case *lbModel:
		return render(views.NewTree(x.st, x.touched), subject{kind, id})
	case *amphoraModel:
		return views.Amphora(x.st)
	case *projectModel:
		if x.st.Version == 0 {
			return nil
		}
		return x.doc()
	case *catalogModel:
		return x.render(subject{kind, id})
	}
	return nil
}

// treeObject renders every object of a load balancer's tree.
func treeObject(t *views.Tree) views.Object {
	list := func(ids []string, one func(string) views.Object) []views.Object {
		out := make([]views.Object, 0, len(ids))
		for _, id := range ids {
			out = append(out, one(id))
		}
		return out
	}
	return views.Object{
		"loadbalancer":   t.LoadBalancer(),
		"listeners":      list(t.ListenerIDs(), t.Listener),
		"pools":          list(t.PoolIDs(), t.Pool),
		"members":        list(t.MemberIDs(), t.Member),
		"healthmonitors": list(t.HealthMonitorIDs(), t.HealthMonitor),
		"l7policies":     list(t.L7PolicyIDs(), t.L7Policy),
		"rules":          list(t.L7RuleIDs(), t.L7Rule),
		"statuses":       t.StatusTree(),
	}
}
