package projections_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/amphora"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/internal/messaging"
	"github.com/ostia/ostia/internal/relay"
	"github.com/ostia/ostia/internal/relay/relaytest"
	"github.com/ostia/ostia/internal/testkit"
	"github.com/ostia/ostia/projections"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// churn creates, updates and deletes a few hundred objects through the
// command service: fully populated load balancers, member changes,
// listener updates, amphorae that come and go, and deleted load balancers.
func (e *env) churn(rng *rand.Rand, lbs int) (objects int) {
	e.t.Helper()
	ctx := context.Background()
	type lbTree struct{ id, pool, listener string }
	var trees []lbTree
	for i := range lbs {
		id := uuid.NewString()
		project := fmt.Sprintf("proj-%d", i%4)
		md := e.md
		md.ProjectID = project
		st, envs, err := e.svc.LoadBalancer(ctx, md, id, lb.CreateLoadBalancer{ID: id, ProjectID: project,
			Name: proto.String(fmt.Sprintf("lb-%d", i)), VipSubnetID: uuid.NewString(),
			Listeners: []lb.ListenerSpec{{Protocol: "HTTP", ProtocolPort: 80, DefaultPool: &lb.PoolSpec{Name: proto.String("pool"), Protocol: "HTTP",
				LBAlgorithm: "ROUND_ROBIN", Members: []lb.MemberSpec{{Address: "192.0.2.1", ProtocolPort: 80},
					{Address: "192.0.2.2", ProtocolPort: 80}, {Address: "192.0.2.3", ProtocolPort: 80}}}}}})
		if err != nil {
			e.t.Fatal(err)
		}
		e.applyInline(envs)
		e.complete(id)
		pool := st.Pools()[0].Id
		trees = append(trees, lbTree{id: id, pool: pool, listener: st.Listeners()[0].Id})
		objects += 6
		amp := uuid.NewString()
		if _, _, err := e.svc.Amphora(ctx, md, amp, amphora.CreateAmphora{ID: amp, LoadBalancerID: id, ProjectID: project,
			Role: amphora.RoleStandalone}); err != nil {
			e.t.Fatal(err)
		}
		objects++
		if i%3 == 0 {
			if _, _, err := e.svc.Amphora(ctx, md, amp, amphora.MarkDeleted{Reason: "churn"}); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	for r := range 3 * lbs {
		tr := trees[rng.IntN(len(trees))]
		switch rng.IntN(4) {
		case 0:
			e.lbCmd(tr.id, lb.UpdateLoadBalancer{Description: aggregates.Value(fmt.Sprintf("r%d", r))})
		case 1:
			e.lbCmd(tr.id, lb.CreateMember{PoolID: tr.pool, MemberSpec: lb.MemberSpec{
				Address: fmt.Sprintf("198.51.100.%d", r%250), ProtocolPort: int32(2000 + r)}})
			objects++
		case 2:
			st := e.complete(tr.id)
			if ms := st.Members(tr.pool); len(ms) > 1 {
				e.lbCmd(tr.id, lb.DeleteMember{PoolID: tr.pool, MemberID: ms[rng.IntN(len(ms))].Id})
			} else {
				continue
			}
		case 3:
			e.lbCmd(tr.id, lb.UpdateListener{ListenerID: tr.listener, ConnectionLimit: aggregates.Value(int64(r))})
		}
		e.complete(tr.id)
	}
	for _, tr := range trees[:lbs/5] {
		e.lbCmd(tr.id, lb.DeleteLoadBalancer{Cascade: true})
		e.complete(tr.id)
	}
	return objects
}

// faultyProjector runs the projection consumer like a process that keeps
// crashing: each incarnation is a fresh Projector (cold cache) in the
// consumer group, killed after a random time or in the middle of an event
// (its transaction rolled back), then started again.
type faultyProjector struct {
	t        *testing.T
	h        *relaytest.Harness
	e        *env
	metrics  *prometheus.Registry
	restarts atomic.Int64
	faults   atomic.Int64
}

// errCrash is the injected failure of an event's transaction.
var errCrash = errors.New("injected crash")

// run keeps incarnations going until stop is closed; the last one runs
// until ctx ends.
func (f *faultyProjector) run(ctx context.Context, stop <-chan struct{}, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	var mu sync.Mutex
	for ctx.Err() == nil {
		p, err := projections.New(projections.Config{Pool: f.h.Pool, Store: f.h.Store, Registry: f.h.Registry,
			Logger: quietLogger(), Metrics: f.metrics})
		if err != nil {
			return err
		}
		life, kill := context.WithCancel(ctx)
		stopping := false
		select {
		case <-stop:
			stopping = true
		default:
		}
		// Crash in the middle of roughly one event in 40 while churning.
		crashEvery := 40
		if stopping {
			crashEvery = 0
		}
		inner := p.Handler()
		c, err := p.NewConsumer(messaging.ConsumerConfig{Brokers: f.h.Addrs(), Logger: quietLogger(),
			RetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond,
			Handler: func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
				if err := inner(ctx, tx, env); err != nil {
					return err
				}
				mu.Lock()
				crash := crashEvery > 0 && rng.IntN(crashEvery) == 0
				mu.Unlock()
				if crash {
					f.faults.Add(1)
					kill() // the process dies with this event's transaction open
					return errCrash
				}
				return nil
			}})
		if err != nil {
			kill()
			return err
		}
		if err := c.Start(life); err != nil {
			kill()
			return err
		}
		if stopping {
			<-ctx.Done()
			kill()
			return c.Close()
		}
		mu.Lock()
		lifetime := time.Duration(100+rng.IntN(700)) * time.Millisecond
		mu.Unlock()
		select {
		case <-time.After(lifetime):
		case <-life.Done():
		case <-stop:
		}
		kill()
		if err := c.Close(); err != nil {
			f.t.Logf("close killed consumer: %v", err)
		}
		f.restarts.Add(1)
	}
	return nil
}

// Acceptance: a few hundred objects are created, updated and deleted
// through the command service while the projection consumer runs over the
// embedded Kafka broker and is killed at random points and restarted many
// times. Once it has caught up, a replay into a fresh generation equals
// the live model (checksums), and billing computed from the replay equals
// billing computed live.
func TestAcceptanceProjectorCrashesThenReplayEqualsLive(t *testing.T) {
	t.Parallel()
	h := relaytest.New(t, relaytest.Config{Partitions: 3})
	e := newEnvOn(t, h.Pool, false)
	h.StartRelay(relay.Config{HolderID: "relay-acceptance"})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	f := &faultyProjector{t: t, h: h, e: e, metrics: prometheus.NewRegistry()}
	ctx, cancel := context.WithCancel(context.Background())
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- f.run(ctx, stop, seed) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("projector: %v", err)
		}
	}()

	start := e.clock.Peek()
	objects := e.churn(rand.New(rand.NewPCG(seed, 1)), 40)
	end := e.clock.Peek()
	// Let it crash a few more times on the tail, then run clean.
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, func() bool { return f.restarts.Load() >= 5 },
		"the projector was not restarted 5 times")
	close(stop)

	testkit.Eventually(t, 30*time.Second, 20*time.Millisecond, func() bool {
		var events, done int
		_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE aggregate_type <> 'saga'`).Scan(&events)
		_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM processed_events WHERE consumer = $1`, projections.ConsumerName).Scan(&done)
		return done >= events && e.lagging() == 0
	}, "the projector did not catch up after the crashes")
	var events int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d objects, %d events, %d restarts, %d events crashed mid-transaction", objects, events,
		f.restarts.Load(), f.faults.Load())
	if f.faults.Load() == 0 {
		t.Fatal("no event crashed mid-transaction; the fault injection did not run")
	}
	if n := lagObservations(t, f.metrics); n < uint64(events/2) {
		t.Fatalf("projection lag histogram has %d observations for %d events", n, events)
	}

	live := e.checksum(0)
	q := projections.UsageQuery{From: start, To: end.Add(time.Hour), Now: end.Add(time.Minute)}
	liveUsage, err := e.proj.Usage(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(liveUsage.Resources) < 40 {
		t.Fatalf("live billing has %d resources", len(liveUsage.Resources))
	}
	res, err := e.proj.Replay(ctx, projections.ReplayConfig{KeepPrevious: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.checksum(res.Generation); got != live {
		t.Fatalf("replayed read model %s != live read model %s", got, live)
	}
	if got := e.checksum(res.Previous); got != live {
		t.Fatalf("kept previous generation %s != live %s", got, live)
	}
	q.Generation = res.Generation
	replayed, err := e.proj.Usage(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	replayed.Generation = liveUsage.Generation
	if !reflect.DeepEqual(replayed, liveUsage) {
		t.Fatalf("billing from the replay differs from live billing:\n replay %+v\n live   %+v", replayed, liveUsage)
	}
}

// lagObservations returns how many events the lag histogram observed.
func lagObservations(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "ostia_projection_lag_seconds" {
			var n uint64
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
			return n
		}
	}
	return 0
}
