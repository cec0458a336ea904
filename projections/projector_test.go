package projections_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/internal/postgres"
	"github.com/ostia/ostia/projections"
	"github.com/ostia/ostia/projections/views"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// Inline application makes a GET return exactly what the write returned.
func TestInlineReadsOwnWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	tr := e.buildTree("proj-a")
	st := e.lbCmd(tr.lb, lb.UpdateListener{ListenerID: tr.listener, ConnectionLimit: aggregates.Value[int64](1000),
		InsertHeaders: aggregates.Value(map[string]string{"X-Forwarded-For": "true"})})
	sameJSON(t, "listener after update", e.get(views.KindListener, tr.listener), jsonOf(t, views.Listener(st, tr.listener)))
	e.complete(tr.lb)
	st = e.lbCmd(tr.lb, lb.UpdateMember{PoolID: tr.pool, MemberID: tr.member, Weight: aggregates.Value[int32](10)})
	sameJSON(t, "member after update", e.get(views.KindMember, tr.member), jsonOf(t, views.Member(st, tr.member)))
	e.complete(tr.lb)
	st = e.lbCmd(tr.lb, lb.UpdateLoadBalancer{Description: aggregates.Value("renamed")})
	sameJSON(t, "lb after update", e.get(views.KindLoadBalancer, tr.lb), jsonOf(t, views.LoadBalancer(st)))
	st = e.complete(tr.lb)
	for _, c := range []struct {
		kind views.Kind
		id   string
		want views.Object
	}{
		{views.KindPool, tr.pool, views.Pool(st, tr.pool)},
		{views.KindHealthMonitor, tr.hm, views.HealthMonitor(st, tr.hm)},
		{views.KindL7Policy, tr.policy, views.L7Policy(st, tr.policy)},
		{views.KindL7Rule, tr.rule, views.L7Rule(st, tr.rule)},
	} {
		got := e.get(c.kind, c.id)
		want := jsonOf(t, c.want)
		// Status changes bump updated_at in the read model (as Octavia's
		// row updates do); the state alone does not know when.
		delete(got, "updated_at")
		delete(want, "updated_at")
		sameJSON(t, string(c.kind), got, want)
	}
	tree, err := e.proj.StatusTree(context.Background(), tr.lb)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "status tree", decode(t, tree), jsonOf(t, views.StatusTree(st)))
	if got := e.get(views.KindPool, tr.pool)["updated_at"]; got == nil {
		t.Fatalf("pool updated_at after provisioning is null; Octavia shows the last status change")
	}

	// A cascade delete removes every row.
	e.lbCmd(tr.lb, lb.DeleteLoadBalancer{Cascade: true})
	if got := e.get(views.KindMember, tr.member)["provisioning_status"]; got != "PENDING_DELETE" {
		t.Fatalf("member during cascade delete: %v", got)
	}
	e.complete(tr.lb)
	for _, k := range []views.Kind{views.KindLoadBalancer, views.KindListener, views.KindMember, views.KindL7Rule} {
		if _, err := e.proj.Get(context.Background(), k, map[views.Kind]string{views.KindLoadBalancer: tr.lb,
			views.KindListener: tr.listener, views.KindMember: tr.member, views.KindL7Rule: tr.rule}[k]); !errors.Is(err, projections.ErrNotFound) {
			t.Fatalf("%s after delete: %v", k, err)
		}
	}
}

// Every event applied twice and in random order gives the same model as the
// log applied once in order (a replay).
func TestIdempotentOutOfOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.workload(7, 60)
	all := e.allEvents()
	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := append(append([]*eventsv1.Envelope(nil), all...), all...)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	ctx := context.Background()
	for _, env := range shuffled {
		if err := e.proj.ApplyEnvelopes(ctx, []*eventsv1.Envelope{env}); err != nil {
			t.Fatal(err)
		}
	}
	live := e.checksum(0)
	// Applying everything again changes nothing.
	if err := e.proj.ApplyEnvelopes(ctx, all); err != nil {
		t.Fatal(err)
	}
	if again := e.checksum(0); again != live {
		t.Fatalf("checksum changed by re-applying: %s -> %s", live, again)
	}
	res, err := e.proj.Replay(ctx, projections.ReplayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.checksum(res.Generation); got != live {
		t.Fatalf("replay checksum %s != shuffled live %s", got, live)
	}
}

// An event past a gap catches up with the missing events from the store.
func TestGapCatchUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	tr := e.buildTree("proj-a")
	all := e.allEvents()
	var last *eventsv1.Envelope
	for _, env := range all {
		if env.AggregateId == tr.lb {
			last = env
		}
	}
	if err := e.proj.ApplyEnvelopes(context.Background(), []*eventsv1.Envelope{last}); err != nil {
		t.Fatal(err)
	}
	rule := e.get(views.KindL7Rule, tr.rule)
	if rule["provisioning_status"] != "ACTIVE" {
		t.Fatalf("rule after catch-up: %v", rule)
	}
	trail, err := e.proj.AuditTrail(context.Background(), tr.member)
	if err != nil {
		t.Fatal(err)
	}
	if len(trail) < 2 {
		t.Fatalf("catch-up left %d audit entries for the member", len(trail))
	}
}

// A cold projector (empty cache) converges with a warm one, and a
// concurrent inline and consumer-like application of the same events
// leaves one consistent result.
func TestConcurrentApplyConverges(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.workload(3, 30)
	all := e.allEvents()
	ctx := context.Background()
	other, err := projections.New(projections.Config{Pool: e.pool, Store: e.store, Registry: e.reg, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	for _, p := range []*projections.Projector{e.proj, other} {
		go func() {
			for _, env := range all {
				err := postgres.RetryTx(ctx, e.pool, func(tx pgx.Tx) error { return p.Apply(ctx, tx, env) })
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	live := e.checksum(0)
	res, err := e.proj.Replay(ctx, projections.ReplayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.checksum(res.Generation); got != live {
		t.Fatalf("replay %s != concurrently applied %s", got, live)
	}
}

// A replay into a fresh generation equals the live model after a few
// hundred commands, and is swapped in.
func TestReplayEqualsLive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	trees := e.workload(11, 250)
	ctx := context.Background()
	before, err := e.proj.CurrentGeneration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	live := e.checksum(0)
	lbBefore := e.get(views.KindLoadBalancer, trees[0].lb)
	var calls int
	var lastDone, lastTotal int64
	res, err := e.proj.Replay(ctx, projections.ReplayConfig{BatchSize: 200, Progress: func(done, total int64) {
		calls++
		lastDone, lastTotal = done, total
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Swapped || res.Generation == before || res.Previous != before {
		t.Fatalf("replay result %+v (before: generation %d)", res, before)
	}
	if calls == 0 || lastDone != lastTotal || lastDone != res.Events {
		t.Fatalf("progress: %d calls, last %d/%d, events %d", calls, lastDone, lastTotal, res.Events)
	}
	if got := e.checksum(0); got != live {
		t.Fatalf("replayed checksum %s != live %s", got, live)
	}
	sameJSON(t, "lb after replay", e.get(views.KindLoadBalancer, trees[0].lb), lbBefore)
	t.Logf("replayed %d events of %d aggregates in %s", res.Events, res.Aggregates, res.Duration)

	// The live path keeps going on the new generation.
	st := e.lbCmd(trees[1].lb, lb.UpdateLoadBalancer{Name: aggregates.Value("after-replay")})
	sameJSON(t, "lb written after replay", e.get(views.KindLoadBalancer, trees[1].lb), jsonOf(t, views.LoadBalancer(st)))
}

// A replay with Until builds the model as it was then, without swapping.
func TestReplayUntil(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	ctx := context.Background()
	tr := e.buildTree("proj-a")
	e.lbCmd(tr.lb, lb.UpdateListener{ListenerID: tr.listener, Name: aggregates.Value("first")})
	e.complete(tr.lb)
	cut := e.clock.Peek()
	e.lbCmd(tr.lb, lb.UpdateListener{ListenerID: tr.listener, Name: aggregates.Value("second")})
	e.complete(tr.lb)
	late := e.createLB("proj-a")

	cur, _ := e.proj.CurrentGeneration(ctx)
	res, err := e.proj.Replay(ctx, projections.ReplayConfig{Until: cut})
	if err != nil {
		t.Fatal(err)
	}
	if res.Swapped {
		t.Fatal("a point-in-time replay was swapped in")
	}
	if now, _ := e.proj.CurrentGeneration(ctx); now != cur {
		t.Fatalf("current generation moved from %d to %d", cur, now)
	}
	page, err := e.proj.List(ctx, views.KindListener, projections.Query{Generation: res.Generation,
		Filters: map[string][]string{"id": {tr.listener}}})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("listener in the past: %v %v", page, err)
	}
	if name := decode(t, page.Items[0])["name"]; name != "first" {
		t.Fatalf("listener name at the cut = %v, want first", name)
	}
	page, err = e.proj.List(ctx, views.KindLoadBalancer, projections.Query{Generation: res.Generation,
		Filters: map[string][]string{"id": {late}}})
	if err != nil || len(page.Items) != 0 {
		t.Fatalf("load balancer created after the cut is in the past model: %v %v", page.Items, err)
	}
	if e.get(views.KindListener, tr.listener)["name"] != "second" {
		t.Fatal("live model disturbed by the point-in-time replay")
	}
	if err := e.proj.DropGeneration(ctx, res.Generation); err != nil {
		t.Fatal(err)
	}
	if err := e.proj.DropGeneration(ctx, cur); err == nil {
		t.Fatal("dropping the current generation was allowed")
	}
}

func TestAuditTrail(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	tr := e.buildTree("proj-a")
	e.md.Actor, e.md.CorrelationID = "alice", "req-update"
	e.lbCmd(tr.lb, lb.UpdateMember{PoolID: tr.pool, MemberID: tr.member, Weight: aggregates.Value[int32](9)})
	e.complete(tr.lb)
	e.lbCmd(tr.lb, lb.DeleteMember{PoolID: tr.pool, MemberID: tr.member})
	e.complete(tr.lb)
	trail, err := e.proj.AuditTrail(context.Background(), tr.member)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, a := range trail {
		types = append(types, a.EventType)
	}
	first, last := trail[0], trail[len(trail)-1]
	if first.EventType != "member.created.v1" || first.Before != nil || first.After == nil {
		t.Fatalf("first entry %+v", first)
	}
	if last.EventType != "member.deleted.v1" || last.After != nil || last.Before == nil {
		t.Fatalf("last entry %+v (types %v)", last, types)
	}
	var update *projections.AuditEntry
	for i := range trail {
		if trail[i].EventType == "member.updated.v1" {
			update = &trail[i]
		}
	}
	if update == nil || update.Actor != "alice" || update.CorrelationID != "req-update" || update.ObjectKind != views.KindMember {
		t.Fatalf("update entry %+v", update)
	}
	if decode(t, update.Before)["weight"] != float64(1) || decode(t, update.After)["weight"] != float64(9) {
		t.Fatalf("update before %s after %s", update.Before, update.After)
	}
	if len(types) < 6 {
		t.Fatalf("trail %v lacks the status changes", types)
	}
}

func TestLBCreateWithGraphAndTouched(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	id := "4a4f2f8e-0000-4000-8000-000000000001"
	st := e.lbCmd(id, lb.CreateLoadBalancer{ID: id, ProjectID: "proj-a", VipSubnetID: "s1", Listeners: []lb.ListenerSpec{{
		Protocol: "HTTP", ProtocolPort: 80, DefaultPool: &lb.PoolSpec{Name: proto.String("p"), Protocol: "HTTP",
			LBAlgorithm: "ROUND_ROBIN", Members: []lb.MemberSpec{{Address: "192.0.2.1", ProtocolPort: 80}}}}}})
	sameJSON(t, "graph lb", e.get(views.KindLoadBalancer, id), jsonOf(t, views.LoadBalancer(st)))
	full := views.FullLoadBalancer(st)
	if len(full["pools"].([]views.Object)) != 1 || len(full["listeners"].([]views.Object)) != 1 {
		t.Fatalf("full graph %v", full)
	}
	created := e.get(views.KindLoadBalancer, id)["created_at"]
	e.complete(id)
	if got := e.get(views.KindLoadBalancer, id)["updated_at"]; got == nil || got == created {
		t.Fatalf("updated_at %v after provisioning (created %v)", got, created)
	}
	_ = time.Second
}

// The audit trail recorded in audit_events (documents rendered from the
// event log when read) reads exactly like audit_log rows with the documents
// stored, as older versions wrote them: same entries in the same order,
// byte for byte the same before/after.
func TestDerivedAuditTrailReadsLikeStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	e.workload(11, 90)
	ctx := context.Background()
	var ids []string
	rows, err := e.pool.Query(ctx, `SELECT DISTINCT object_id FROM audit_objects ORDER BY object_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) < 10 {
		t.Fatalf("only %d objects in the audit trail", len(ids))
	}
	derived := map[string][]projections.AuditEntry{}
	for _, id := range ids {
		if derived[id], err = e.proj.AuditTrail(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := projections.StoreAuditDocuments(ctx, e.proj); err != nil {
		t.Fatal(err)
	}
	var left, stored int
	if err := e.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM audit_events), (SELECT count(*) FROM audit_log)`).Scan(&left, &stored); err != nil || left != 0 || stored == 0 {
		t.Fatalf("%d audit_events rows left, %d audit_log rows (%v)", left, stored, err)
	}
	docs := 0
	for _, id := range ids {
		stored, err := e.proj.AuditTrail(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != len(derived[id]) {
			t.Fatalf("%s: %d stored entries, %d derived", id, len(stored), len(derived[id]))
		}
		for i := range stored {
			if !reflect.DeepEqual(stored[i], derived[id][i]) {
				t.Fatalf("%s entry %d:\nstored  %+v\nderived %+v", id, i, stored[i], derived[id][i])
			}
			if stored[i].Before != nil {
				docs++
			}
		}
	}
	if docs == 0 {
		t.Fatal("no entry had a before document")
	}
}
