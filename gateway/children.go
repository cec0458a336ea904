package gateway

import (
	"context"
	"net/http"
	"strings"

	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/gateway/request"
	"github.com/ostia/ostia/projections"
	"github.com/ostia/ostia/projections/views"
)

// This file holds the endpoints of the objects inside a load balancer:
// listeners, pools, members, health monitors, L7 policies and rules. Each
// write finds the owning load balancer in the read model (404 when the
// parent is missing), checks RBAC against its project and runs the command
// on the load-balancer aggregate.

var (
	listenerCollection = collection{kind: views.KindListener, key: "listeners", links: "listeners_links",
		rbac: "listener", projectScoped: true, extra: []string{"loadbalancer_id"}}
	poolCollection = collection{kind: views.KindPool, key: "pools", links: "pools_links",
		rbac: "pool", projectScoped: true, extra: []string{"loadbalancer_id"}}
	memberCollection = collection{kind: views.KindMember, key: "members", links: "members_links",
		rbac: "member"}
	hmCollection = collection{kind: views.KindHealthMonitor, key: "healthmonitors", links: "healthmonitors_links",
		rbac: "healthmonitor", projectScoped: true, extra: []string{"pool_id", "loadbalancer_id"}}
	l7PolicyCollection = collection{kind: views.KindL7Policy, key: "l7policies", links: "l7policies_links",
		rbac: "l7policy", projectScoped: true}
	l7RuleCollection = collection{kind: views.KindL7Rule, key: "rules", links: "rules_links",
		rbac: "l7rule"}
)

// owned reads an object and checks an RBAC action on its project.
func (a *api) owned(r *http.Request, k views.Kind, id, action string) (*projections.Object, error) {
	o, err := a.lookup(r.Context(), k, id)
	if err != nil {
		return nil, err
	}
	if err := a.authorize(r, action, o.ProjectID); err != nil {
		return nil, err
	}
	return o, nil
}

// child reads a nested object and checks it belongs to its parent.
func (a *api) child(r *http.Request, k views.Kind, parentKind views.Kind, parentID, id, action string) (*projections.Object, error) {
	if _, err := a.lookup(r.Context(), parentKind, parentID); err != nil {
		return nil, err
	}
	o, err := a.owned(r, k, id, action)
	if err != nil {
		return nil, err
	}
	if o.ParentID != parentID {
		return nil, notFound(k, id)
	}
	return o, nil
}

// decode reads the body and decodes it with one of the request decoders.
func decode[T any](r *http.Request, dec func(ctx context.Context, body []byte) (*T, error)) (*T, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	return dec(r.Context(), body)
}

// created runs a create command and answers the new object from the read model.
func (a *api) created(w http.ResponseWriter, r *http.Request, lbID, project string, cmd loadbalancer.Command, k views.Kind, key, id string) {
	if err := a.checkTLSRefs(r.Context(), cmd); err != nil {
		a.fail(w, r, err)
		return
	}
	if _, err := a.lbCommand(r, lbID, project, cmd); err != nil {
		a.fail(w, r, err)
		return
	}
	o, err := a.lookup(r.Context(), k, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeObject(w, http.StatusCreated, key, o.Doc)
}

// updated runs an update command and answers the object.
func (a *api) updated(w http.ResponseWriter, r *http.Request, o *projections.Object, cmd loadbalancer.Command, key string) {
	if err := a.checkTLSRefs(r.Context(), cmd); err != nil {
		a.fail(w, r, err)
		return
	}
	if _, err := a.lbCommand(r, o.LoadBalancerID, o.ProjectID, cmd); err != nil {
		a.fail(w, r, err)
		return
	}
	a.show(w, r, o.Kind, key, o.ID, nil)
}

// deleted runs a delete command and answers 204.
func (a *api) deleted(w http.ResponseWriter, r *http.Request, o *projections.Object, cmd loadbalancer.Command) {
	if _, err := a.lbCommand(r, o.LoadBalancerID, o.ProjectID, cmd); err != nil {
		a.fail(w, r, err)
		return
	}
	writeEmpty(w, http.StatusNoContent)
}

// Listeners.

func (a *api) listListeners(w http.ResponseWriter, r *http.Request) {
	a.list(w, r, listenerCollection, nil, "")
}

func (a *api) showListener(w http.ResponseWriter, r *http.Request) {
	a.showOwned(w, r, views.KindListener, "listener", "listener:get_one", r.PathValue("id"))
}

func (a *api) createListener(w http.ResponseWriter, r *http.Request) {
	b, err := decode(r, request.DecodeListenerCreate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cmd := b.Command()
	lb, err := a.owned(r, views.KindLoadBalancer, cmd.LoadBalancerID, "listener:post")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cmd.ID = a.newID()
	a.created(w, r, lb.ID, lb.ProjectID, cmd, views.KindListener, "listener", cmd.ID)
}

func (a *api) updateListener(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b, err := decode(r, request.DecodeListenerUpdate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	o, err := a.owned(r, views.KindListener, id, "listener:put")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.updated(w, r, o, b.Command(id), "listener")
}

func (a *api) deleteListener(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	o, err := a.owned(r, views.KindListener, id, "listener:delete")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.deleted(w, r, o, loadbalancer.DeleteListener{ListenerID: id})
}

func (a *api) listenerStats(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := a.owned(r, views.KindListener, id, "listener:get_stats"); err != nil {
		a.fail(w, r, err)
		return
	}
	st, err := a.sumStats(r.Context(), "listener_id", id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"stats": st})
}

// Pools.

func (a *api) listPools(w http.ResponseWriter, r *http.Request) {
	a.list(w, r, poolCollection, nil, "")
}

func (a *api) showPool(w http.ResponseWriter, r *http.Request) {
	a.showOwned(w, r, views.KindPool, "pool", "pool:get_one", r.PathValue("id"))
}

func (a *api) createPool(w http.ResponseWriter, r *http.Request) {
	b, err := decode(r, request.DecodePoolCreate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cmd := b.Command()
	var lbID, project string
	switch {
	case cmd.ListenerID != "":
		l, err := a.lookup(r.Context(), views.KindListener, cmd.ListenerID)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		lbID, project = l.LoadBalancerID, l.ProjectID
		if cmd.LoadBalancerID != "" && cmd.LoadBalancerID != lbID {
			// The aggregate refuses the mismatch with Octavia's message.
			lbID = cmd.LoadBalancerID
		}
	case cmd.LoadBalancerID != "":
		lb, err := a.lookup(r.Context(), views.KindLoadBalancer, cmd.LoadBalancerID)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		lbID, project = lb.ID, lb.ProjectID
	default:
		a.fail(w, r, invalidf("Validation failure: Must provide at least one of: loadbalancer_id, listener_id"))
		return
	}
	if err := a.authorize(r, "pool:post", project); err != nil {
		a.fail(w, r, err)
		return
	}
	cmd.ID = a.newID()
	a.created(w, r, lbID, project, cmd, views.KindPool, "pool", cmd.ID)
}

func (a *api) updatePool(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b, err := decode(r, request.DecodePoolUpdate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	o, err := a.owned(r, views.KindPool, id, "pool:put")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.updated(w, r, o, b.Command(id), "pool")
}

func (a *api) deletePool(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	o, err := a.owned(r, views.KindPool, id, "pool:delete")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.deleted(w, r, o, loadbalancer.DeletePool{PoolID: id})
}

// Members.

func (a *api) listMembers(w http.ResponseWriter, r *http.Request) {
	pool, err := a.lookup(r.Context(), views.KindPool, r.PathValue("pool"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.list(w, r, memberCollection, map[string]string{"pool_id": pool.ID}, pool.ProjectID)
}

func (a *api) showMember(w http.ResponseWriter, r *http.Request) {
	pool, id := r.PathValue("pool"), r.PathValue("id")
	if _, err := a.child(r, views.KindMember, views.KindPool, pool, id, "member:get_one"); err != nil {
		a.fail(w, r, err)
		return
	}
	a.show(w, r, views.KindMember, "member", id, r.URL.Query()["fields"])
}

func (a *api) createMember(w http.ResponseWriter, r *http.Request) {
	poolID := r.PathValue("pool")
	b, err := decode(r, request.DecodeMemberCreate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	pool, err := a.owned(r, views.KindPool, poolID, "member:post")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cmd := b.Command(poolID)
	cmd.ID = a.newID()
	a.created(w, r, pool.LoadBalancerID, pool.ProjectID, cmd, views.KindMember, "member", cmd.ID)
}

func (a *api) batchMembers(w http.ResponseWriter, r *http.Request) {
	poolID := r.PathValue("pool")
	body, err := readBody(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	members, err := request.DecodeMembersBatch(r.Context(), body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	additive := strings.EqualFold(r.URL.Query().Get("additive_only"), "true")
	pool, err := a.owned(r, views.KindPool, poolID, "member:post")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	actions := []string{"member:put"}
	if !additive {
		actions = append(actions, "member:delete")
	}
	for _, act := range actions {
		if err := a.authorize(r, act, pool.ProjectID); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	cmd := request.BatchCommand(poolID, members, additive)
	for i := range cmd.Members {
		if cmd.Members[i].ID == "" {
			cmd.Members[i].ID = a.newID()
		}
	}
	if _, err := a.lbCommand(r, pool.LoadBalancerID, pool.ProjectID, cmd); err != nil {
		a.fail(w, r, err)
		return
	}
	writeEmpty(w, http.StatusAccepted)
}

func (a *api) updateMember(w http.ResponseWriter, r *http.Request) {
	poolID, id := r.PathValue("pool"), r.PathValue("id")
	b, err := decode(r, request.DecodeMemberUpdate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	o, err := a.child(r, views.KindMember, views.KindPool, poolID, id, "member:put")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.updated(w, r, o, b.Command(poolID, id), "member")
}

func (a *api) deleteMember(w http.ResponseWriter, r *http.Request) {
	poolID, id := r.PathValue("pool"), r.PathValue("id")
	o, err := a.child(r, views.KindMember, views.KindPool, poolID, id, "member:delete")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.deleted(w, r, o, loadbalancer.DeleteMember{PoolID: poolID, MemberID: id})
}

// Health monitors.

func (a *api) listHealthMonitors(w http.ResponseWriter, r *http.Request) {
	a.list(w, r, hmCollection, nil, "")
}

func (a *api) showHealthMonitor(w http.ResponseWriter, r *http.Request) {
	a.showOwned(w, r, views.KindHealthMonitor, "healthmonitor", "healthmonitor:get_one", r.PathValue("id"))
}

func (a *api) createHealthMonitor(w http.ResponseWriter, r *http.Request) {
	b, err := decode(r, request.DecodeHealthMonitorCreate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cmd := b.Command()
	pool, err := a.owned(r, views.KindPool, cmd.PoolID, "healthmonitor:post")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cmd.ID = a.newID()
	a.created(w, r, pool.LoadBalancerID, pool.ProjectID, cmd, views.KindHealthMonitor, "healthmonitor", cmd.ID)
}

func (a *api) updateHealthMonitor(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b, err := decode(r, request.DecodeHealthMonitorUpdate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	o, err := a.owned(r, views.KindHealthMonitor, id, "healthmonitor:put")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.updated(w, r, o, b.Command(id), "healthmonitor")
}

func (a *api) deleteHealthMonitor(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	o, err := a.owned(r, views.KindHealthMonitor, id, "healthmonitor:delete")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.deleted(w, r, o, loadbalancer.DeleteHealthMonitor{HealthMonitorID: id})
}

// L7 policies.

func (a *api) listL7Policies(w http.ResponseWriter, r *http.Request) {
	a.list(w, r, l7PolicyCollection, nil, "")
}

func (a *api) showL7Policy(w http.ResponseWriter, r *http.Request) {
	a.showOwned(w, r, views.KindL7Policy, "l7policy", "l7policy:get_one", r.PathValue("id"))
}

func (a *api) createL7Policy(w http.ResponseWriter, r *http.Request) {
	b, err := decode(r, request.DecodeL7PolicyCreate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cmd := b.Command()
	l, err := a.owned(r, views.KindListener, cmd.ListenerID, "l7policy:post")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cmd.ID = a.newID()
	for i := range cmd.Rules {
		if cmd.Rules[i].ID == "" {
			cmd.Rules[i].ID = a.newID()
		}
	}
	a.created(w, r, l.LoadBalancerID, l.ProjectID, cmd, views.KindL7Policy, "l7policy", cmd.ID)
}

func (a *api) updateL7Policy(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b, err := decode(r, request.DecodeL7PolicyUpdate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	o, err := a.owned(r, views.KindL7Policy, id, "l7policy:put")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.updated(w, r, o, b.Command(id), "l7policy")
}

func (a *api) deleteL7Policy(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	o, err := a.owned(r, views.KindL7Policy, id, "l7policy:delete")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.deleted(w, r, o, loadbalancer.DeleteL7Policy{L7PolicyID: id})
}

// L7 rules.

func (a *api) listL7Rules(w http.ResponseWriter, r *http.Request) {
	pol, err := a.lookup(r.Context(), views.KindL7Policy, r.PathValue("policy"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.list(w, r, l7RuleCollection, map[string]string{"l7policy_id": pol.ID}, pol.ProjectID)
}

func (a *api) showL7Rule(w http.ResponseWriter, r *http.Request) {
	pol, id := r.PathValue("policy"), r.PathValue("id")
	if _, err := a.child(r, views.KindL7Rule, views.KindL7Policy, pol, id, "l7rule:get_one"); err != nil {
		a.fail(w, r, err)
		return
	}
	a.show(w, r, views.KindL7Rule, "rule", id, r.URL.Query()["fields"])
}

func (a *api) createL7Rule(w http.ResponseWriter, r *http.Request) {
	polID := r.PathValue("policy")
	b, err := decode(r, request.DecodeL7RuleCreate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	pol, err := a.owned(r, views.KindL7Policy, polID, "l7rule:post")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cmd := b.Command(polID)
	cmd.ID = a.newID()
	a.created(w, r, pol.LoadBalancerID, pol.ProjectID, cmd, views.KindL7Rule, "rule", cmd.ID)
}

func (a *api) updateL7Rule(w http.ResponseWriter, r *http.Request) {
	polID, id := r.PathValue("policy"), r.PathValue("id")
	b, err := decode(r, request.DecodeL7RuleUpdate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	o, err := a.child(r, views.KindL7Rule, views.KindL7Policy, polID, id, "l7rule:put")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.updated(w, r, o, b.Command(polID, id), "rule")
}

func (a *api) deleteL7Rule(w http.ResponseWriter, r *http.Request) {
	polID, id := r.PathValue("policy"), r.PathValue("id")
	o, err := a.child(r, views.KindL7Rule, views.KindL7Policy, polID, id, "l7rule:delete")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.deleted(w, r, o, loadbalancer.DeleteL7Rule{L7PolicyID: polID, L7RuleID: id})
}
