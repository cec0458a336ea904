package projections_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ostia/ostia/aggregates"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/projections"
	"github.com/ostia/ostia/projections/views"
)

// ObjectAt folds the log up to a past time and renders exactly what the
// read model served at that time.
func TestObjectAtRendersThePast(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	ctx := context.Background()
	before := e.clock.Peek()
	tr := e.buildTree("proj-a")
	t1 := e.clock.Peek()
	then := map[string]map[string]any{}
	for kind, id := range map[views.Kind]string{views.KindLoadBalancer: tr.lb, views.KindListener: tr.listener,
		views.KindMember: tr.member, views.KindL7Rule: tr.rule} {
		then[id] = e.get(kind, id)
	}
	statusThen, err := e.proj.StatusTree(ctx, tr.lb)
	if err != nil {
		t.Fatal(err)
	}

	// Later changes.
	e.lbCmd(tr.lb, lb.UpdateLoadBalancer{Description: aggregates.Value("changed later")})
	e.complete(tr.lb)
	e.lbCmd(tr.lb, lb.UpdateMember{PoolID: tr.pool, MemberID: tr.member, Weight: aggregates.Value[int32](42)})
	e.complete(tr.lb)
	t2 := e.clock.Peek()
	e.lbCmd(tr.lb, lb.DeleteLoadBalancer{Cascade: true})
	e.complete(tr.lb)

	for id, want := range then {
		past, err := e.proj.ObjectAt(ctx, id, t1)
		if err != nil {
			t.Fatalf("%s at %s: %v", id, t1, err)
		}
		sameJSON(t, "object "+id+" as of t1", jsonOf(t, past.Object), want)
		if id == tr.lb {
			sameJSON(t, "status tree as of t1", jsonOf(t, past.Tree["statuses"]), decode(t, statusThen))
			if n := len(past.Tree["members"].([]views.Object)); n != 1 {
				t.Fatalf("tree as of t1 has %d members", n)
			}
		}
	}
	past, err := e.proj.ObjectAt(ctx, tr.lb, t2)
	if err != nil {
		t.Fatal(err)
	}
	if got := past.Object["description"]; got != "changed later" {
		t.Fatalf("description as of t2: %v", got)
	}
	member, err := e.proj.ObjectAt(ctx, tr.member, t2)
	if err != nil {
		t.Fatal(err)
	}
	if got := member.Object["weight"]; got != int32(42) {
		t.Fatalf("member weight as of t2: %#v", got)
	}
	if past.Version <= 0 || past.ChangedAt.After(t2) {
		t.Fatalf("version %d changed at %s (asked %s)", past.Version, past.ChangedAt, t2)
	}
	for _, at := range []time.Time{before, e.clock.Peek()} {
		if _, err := e.proj.ObjectAt(ctx, tr.lb, at); !errors.Is(err, projections.ErrNotFound) {
			t.Fatalf("load balancer as of %s (before creation or after deletion): %v", at, err)
		}
	}
	if _, err := e.proj.ObjectAt(ctx, "no-such-object", t1); !errors.Is(err, projections.ErrNotFound) {
		t.Fatalf("unknown object: %v", err)
	}
}
