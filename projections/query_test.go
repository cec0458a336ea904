package projections_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/ostia/ostia/projections"
	"github.com/ostia/ostia/projections/views"
)

func names(t *testing.T, p projections.Page) []string {
	t.Helper()
	out := []string{}
	for _, it := range p.Items {
		out = append(out, decode(t, it)["name"].(string))
	}
	return out
}

func TestListQueries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	ctx := context.Background()
	// Creation order c, a, d, b; one second apart.
	ids := map[string]string{}
	for _, n := range []struct {
		name, project string
		tags          []string
	}{
		{"c", "p1", []string{"x", "y"}}, {"a", "p1", []string{"x"}}, {"d", "p2", nil}, {"b", "p1", []string{"y", "z"}},
	} {
		id := e.createLB(n.project, n.tags...)
		e.lbCmd(id, lbRename(n.name))
		e.complete(id)
		ids[n.name] = id
	}
	list := func(q projections.Query) []string {
		t.Helper()
		p, err := e.proj.List(ctx, views.KindLoadBalancer, q)
		if err != nil {
			t.Fatalf("list %+v: %v", q, err)
		}
		return names(t, p)
	}
	check := func(what string, got, want []string) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got %v, want %v", what, got, want)
		}
	}
	check("default order (created_at, id)", list(projections.Query{}), []string{"c", "a", "d", "b"})
	check("project", list(projections.Query{ProjectID: "p1"}), []string{"c", "a", "b"})
	check("sort name desc", list(projections.Query{Sort: []projections.SortKey{{Key: "name", Desc: true}}}), []string{"d", "c", "b", "a"})
	check("filter", list(projections.Query{Filters: map[string][]string{"provisioning_status": {"ACTIVE"}, "name": {"a", "d"}}}),
		[]string{"a", "d"})
	check("bool filter", list(projections.Query{Filters: map[string][]string{"admin_state_up": {"True"}}, ProjectID: "p2"}), []string{"d"})
	check("tags", list(projections.Query{Filters: map[string][]string{"tags": {"x,y"}}}), []string{"c"})
	check("tags-any", list(projections.Query{Filters: map[string][]string{"tags-any": {"x", "z"}}}), []string{"c", "a", "b"})
	check("not-tags", list(projections.Query{Filters: map[string][]string{"not-tags": {"x,y"}}}), []string{"a", "d", "b"})
	check("not-tags-any", list(projections.Query{Filters: map[string][]string{"not-tags-any": {"y"}}}), []string{"a", "d"})

	byName := []projections.SortKey{{Key: "name"}}
	p, err := e.proj.List(ctx, views.KindLoadBalancer, projections.Query{Sort: byName, Limit: 2})
	if err != nil || !reflect.DeepEqual(names(t, p), []string{"a", "b"}) || !p.Full || p.LastID != ids["b"] || p.FirstID != ids["a"] {
		t.Fatalf("first page %v %+v %v", names(t, p), p, err)
	}
	p, err = e.proj.List(ctx, views.KindLoadBalancer, projections.Query{Sort: byName, Limit: 2, Marker: p.LastID})
	if err != nil || !reflect.DeepEqual(names(t, p), []string{"c", "d"}) {
		t.Fatalf("second page %v %v", names(t, p), err)
	}
	p, err = e.proj.List(ctx, views.KindLoadBalancer, projections.Query{Sort: byName, Limit: 2, Marker: ids["d"]})
	if err != nil || len(p.Items) != 0 || p.Full {
		t.Fatalf("past the end %v %v", names(t, p), err)
	}
	// page_reverse flips the comparison but keeps the order (Octavia).
	check("reverse", list(projections.Query{Sort: byName, Limit: 2, Marker: ids["d"], PageReverse: true}), []string{"a", "b"})
	check("desc marker", list(projections.Query{Sort: []projections.SortKey{{Key: "name", Desc: true}}, Marker: ids["c"]}),
		[]string{"b", "a"})

	p, err = e.proj.List(ctx, views.KindLoadBalancer, projections.Query{Sort: byName, Fields: []string{"id", "name"}, Limit: 1})
	if err != nil || len(p.Items) != 1 || len(decode(t, p.Items[0])) != 2 {
		t.Fatalf("fields: %v %v", p.Items, err)
	}
	p, err = e.proj.List(ctx, views.KindLoadBalancer, projections.Query{Fields: []string{"name"}, Limit: 1})
	if err != nil || p.FirstID != ids["c"] {
		t.Fatalf("ids without the id field: %+v %v", p, err)
	}

	var qe *projections.QueryError
	_, err = e.proj.List(ctx, views.KindLoadBalancer, projections.Query{Limit: 2, Marker: "5f6b46cd-1d4a-40ef-9e9a-29094b0ae58f"})
	if !errors.Is(err, projections.ErrInvalidMarker) || !errors.As(err, &qe) ||
		qe.Message != "Supplied pagination marker '5f6b46cd-1d4a-40ef-9e9a-29094b0ae58f' is not valid." {
		t.Fatalf("bad marker: %v", err)
	}
	_, err = e.proj.List(ctx, views.KindLoadBalancer, projections.Query{Sort: []projections.SortKey{{Key: "nope"}}})
	if !errors.Is(err, projections.ErrInvalidSortKey) || err.Error() != "Supplied sort key 'nope' is not valid." {
		t.Fatalf("bad sort key: %v", err)
	}
	_, err = e.proj.List(ctx, views.KindLoadBalancer, projections.Query{Filters: map[string][]string{"nope": {"1"}}})
	if !errors.Is(err, projections.ErrInvalidFilter) {
		t.Fatalf("bad filter: %v", err)
	}

	// Children: columns stand in for attributes the objects do not show.
	tr := e.buildTree("p3")
	lp, err := e.proj.List(ctx, views.KindListener, projections.Query{Filters: map[string][]string{
		"loadbalancer_id": {tr.lb}, "protocol": {"HTTP"}}})
	if err != nil || len(lp.Items) != 1 {
		t.Fatalf("listeners of lb: %v %v", lp.Items, err)
	}
	mp, err := e.proj.List(ctx, views.KindMember, projections.Query{Filters: map[string][]string{
		"pool_id": {tr.pool}, "weight": {"1"}}, Sort: []projections.SortKey{{Key: "protocol_port", Desc: true}}})
	if err != nil || len(mp.Items) != 1 {
		t.Fatalf("members of pool: %v %v", mp.Items, err)
	}
	rp, err := e.proj.List(ctx, views.KindL7Rule, projections.Query{Filters: map[string][]string{"l7policy_id": {tr.policy}}})
	if err != nil || len(rp.Items) != 1 {
		t.Fatalf("rules of policy: %v %v", rp.Items, err)
	}
	o, err := e.proj.Get(ctx, views.KindMember, tr.member, "id", "weight")
	if err != nil || o.ParentID != tr.pool || o.ProjectID != "p3" || o.LoadBalancerID != tr.lb || len(decode(t, o.Doc)) != 2 {
		t.Fatalf("get member: %+v %v", o, err)
	}
	if _, err := e.proj.Get(ctx, views.KindPool, "919f8b76-af7c-4a66-8398-53810ec895f7"); !errors.Is(err, projections.ErrNotFound) {
		t.Fatalf("missing pool: %v", err)
	}
}
