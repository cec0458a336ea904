package projections_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates/amphora"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/projections"
)

// addStats records listener traffic as the health manager does: one
// listener_stats_history row per bucket.
func (e *env) addStats(listenerID, lbID string, bucket time.Time, in, out, conns, errs int64) {
	e.t.Helper()
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO listener_stats_history (listener_id, amphora_id, bucket_start,
		loadbalancer_id, bytes_in, bytes_out, total_connections, request_errors, max_active_connections, samples)
		VALUES ($1, 'amp', $2, $3, $4, $5, $6, $7, 1, 1)`, listenerID, bucket, lbID, in, out, conns, errs); err != nil {
		e.t.Fatal(err)
	}
}

// billed is a small, exactly known history: every decision moves the clock
// one second.
type billed struct {
	t0                  time.Time
	lb, listener, amp   string
	lbFrom, lbUntil     time.Time
	listenerFrom        time.Time
	ampFrom, ampUntil   time.Time
	statsIn, statsOut   int64
	statsConns, statErr int64
}

func (e *env) billedHistory(project string) billed {
	e.t.Helper()
	ctx := context.Background()
	b := billed{t0: e.clock.Peek()}
	b.lb = e.createLB(project) // created t0+1, ACTIVE t0+2
	b.lbFrom = b.t0.Add(2 * time.Second)
	st := e.lbCmd(b.lb, lb.CreateListener{LoadBalancerID: b.lb, ListenerSpec: lb.ListenerSpec{Name: proto.String("l"),
		Protocol: "HTTP", ProtocolPort: 80}}) // t0+3
	b.listener = st.Listeners()[0].Id
	e.complete(b.lb) // t0+4
	b.listenerFrom = b.t0.Add(4 * time.Second)
	b.amp = uuid.NewString()
	md := e.md
	md.ProjectID = project
	_, envs, err := e.svc.Amphora(ctx, md, b.amp, amphora.CreateAmphora{ID: b.amp, LoadBalancerID: b.lb, ProjectID: project,
		Role: amphora.RoleStandalone}) // t0+5
	if err != nil {
		e.t.Fatal(err)
	}
	e.applyInline(envs)
	b.ampFrom = b.t0.Add(5 * time.Second)
	_, envs, err = e.svc.Amphora(ctx, md, b.amp, amphora.MarkDeleted{Reason: "test"}) // t0+6
	if err != nil {
		e.t.Fatal(err)
	}
	e.applyInline(envs)
	b.ampUntil = b.t0.Add(6 * time.Second)
	e.lbCmd(b.lb, lb.DeleteLoadBalancer{Cascade: true}) // t0+7
	e.complete(b.lb)                                    // t0+8: deleted
	b.lbUntil = b.t0.Add(8 * time.Second)

	// Traffic: one bucket before the window, two inside, one after.
	e.addStats(b.listener, b.lb, b.t0, 1000, 1000, 1000, 1000)
	e.addStats(b.listener, b.lb, b.t0.Add(3*time.Second), 100, 200, 3, 1)
	e.addStats(b.listener, b.lb, b.t0.Add(60*time.Second), 10, 20, 2, 0)
	e.addStats(b.listener, b.lb, b.t0.Add(time.Hour), 5000, 5000, 5000, 5000)
	b.statsIn, b.statsOut, b.statsConns, b.statErr = 110, 220, 5, 1
	return b
}

func lineOf(t *testing.T, rep *projections.UsageReport, id string) projections.UsageLine {
	t.Helper()
	for _, l := range rep.Resources {
		if l.ResourceID == id {
			return l
		}
	}
	t.Fatalf("no usage line for %s in %+v", id, rep.Resources)
	return projections.UsageLine{}
}

// Hours are clipped to the window; traffic comes from the statistics
// buckets inside it and rolls up from listeners to their load balancer.
func TestUsageClipsToTheWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	b := e.billedHistory("proj-bill")
	ctx := context.Background()
	rep, err := e.proj.Usage(ctx, projections.UsageQuery{ProjectID: "proj-bill", From: b.t0.Add(3 * time.Second),
		To: b.t0.Add(30 * time.Minute), Now: b.t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	lbLine, listener, amp := lineOf(t, rep, b.lb), lineOf(t, rep, b.listener), lineOf(t, rep, b.amp)
	if lbLine.Seconds != 5 || listener.Seconds != 4 || amp.Seconds != 1 {
		t.Fatalf("seconds: lb %v (want 5), listener %v (want 4), amphora %v (want 1)", lbLine.Seconds, listener.Seconds, amp.Seconds)
	}
	if !lbLine.ActiveFrom.Equal(b.lbFrom) || lbLine.ActiveUntil == nil || !lbLine.ActiveUntil.Equal(b.lbUntil) {
		t.Fatalf("lb interval %v - %v, want %v - %v", lbLine.ActiveFrom, lbLine.ActiveUntil, b.lbFrom, b.lbUntil)
	}
	if !listener.ActiveFrom.Equal(b.listenerFrom) || !amp.ActiveFrom.Equal(b.ampFrom) || !amp.ActiveUntil.Equal(b.ampUntil) {
		t.Fatalf("listener from %v (want %v), amphora %v - %v (want %v - %v)", listener.ActiveFrom, b.listenerFrom,
			amp.ActiveFrom, amp.ActiveUntil, b.ampFrom, b.ampUntil)
	}
	for _, l := range []projections.UsageLine{lbLine, listener} {
		if l.BytesIn != b.statsIn || l.BytesOut != b.statsOut || l.TotalConnections != b.statsConns || l.RequestErrors != b.statErr {
			t.Fatalf("%s traffic %+v, want in %d out %d conns %d errors %d", l.ResourceType, l, b.statsIn, b.statsOut,
				b.statsConns, b.statErr)
		}
	}
	if amp.BytesIn != 0 || amp.LoadBalancerID != b.lb {
		t.Fatalf("amphora line %+v", amp)
	}
	if len(rep.Projects) != 1 {
		t.Fatalf("projects %+v", rep.Projects)
	}
	pu := rep.Projects[0]
	if pu.LoadBalancers != 1 || pu.Listeners != 1 || pu.Amphorae != 1 || pu.BytesIn != b.statsIn ||
		pu.LoadBalancerHours != 5.0/3600 {
		t.Fatalf("project usage %+v", pu)
	}

	// A window after the deletion bills nothing; a still running load
	// balancer is billed up to Now only.
	rep, err = e.proj.Usage(ctx, projections.UsageQuery{ProjectID: "proj-bill", From: b.t0.Add(9 * time.Second),
		To: b.t0.Add(20 * time.Second), Now: b.t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Resources) != 0 {
		t.Fatalf("usage after deletion: %+v", rep.Resources)
	}
	running := e.createLB("proj-run")
	activeAt := e.clock.Peek()
	rep, err = e.proj.Usage(ctx, projections.UsageQuery{ProjectID: "proj-run", From: b.t0, To: activeAt.Add(time.Hour),
		Now: activeAt.Add(90 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if l := lineOf(t, rep, running); l.Seconds != 90 || l.ActiveUntil != nil {
		t.Fatalf("running load balancer: %+v", l)
	}
}

// Billing computed from the live projection equals billing computed from
// a generation rebuilt by a replay.
func TestUsageLiveEqualsReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	start := e.clock.Peek()
	e.workload(11, 80)
	b := e.billedHistory("proj-0")
	e.billedHistory("proj-1")
	e.workload(12, 40)
	end := e.clock.Peek()
	ctx := context.Background()
	windows := []projections.UsageQuery{
		{From: start, To: end.Add(time.Hour), Now: end.Add(time.Minute)},
		{ProjectID: "proj-0", From: start.Add(30 * time.Second), To: b.t0.Add(7 * time.Second), Now: end},
		{ProjectID: "proj-1", From: start, To: end, Now: end},
	}
	live := make([]*projections.UsageReport, len(windows))
	for i, q := range windows {
		rep, err := e.proj.Usage(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Resources) == 0 {
			t.Fatalf("window %d bills nothing", i)
		}
		live[i] = rep
	}
	liveSum := e.checksum(0)
	res, err := e.proj.Replay(ctx, projections.ReplayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.checksum(res.Generation); got != liveSum {
		t.Fatalf("replayed checksum %s != live %s", got, liveSum)
	}
	for i, q := range windows {
		q.Generation = res.Generation
		rep, err := e.proj.Usage(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		rep.Generation = live[i].Generation
		if !reflect.DeepEqual(rep, live[i]) {
			t.Fatalf("window %d: replayed billing differs:\n replay %+v\n live   %+v", i, rep, live[i])
		}
	}
}
