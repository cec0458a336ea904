package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/config"
	"github.com/ostia/ostia/internal/drivers/noop"
	"github.com/ostia/ostia/internal/relay"
	"github.com/ostia/ostia/internal/relay/relaytest"
	"github.com/ostia/ostia/internal/testkit"
	"github.com/ostia/ostia/projections"
	pviews "github.com/ostia/ostia/projections/views"
)

// TestTwoWorkerReplicasShareTheWork runs two replicas of the worker and of
// the projector (each its own saga runner and consumer-group members)
// against one database and one broker, with one shared (noop) cloud: every
// load balancer is built once, both replicas take part, no server or port
// is created twice, and the read model is built with every event applied
// exactly once between the two projectors.
func TestTwoWorkerReplicasShareTheWork(t *testing.T) {
	h := relaytest.New(t, relaytest.Config{Partitions: 6})
	rl := h.StartRelay(relay.Config{})
	defer func() { _ = rl.Stop() }()
	cloud := noop.New(noop.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	defer func() {
		cancel()
		_ = g.Wait()
	}()
	var cores []*core
	var views []*projections.Projector
	var regs []*prometheus.Registry
	for i := range 2 {
		reg := prometheus.NewRegistry()
		regs = append(regs, reg)
		b := &base{cfg: config.Default(), log: slog.New(slog.NewTextHandler(io.Discard, nil)), metrics: reg}
		c, err := b.newCore(h.Pool, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.startWorker(gctx, g, h.Pool, c, h.Addrs(), noopDrivers(cloud)); err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
		p, err := b.newProjections(h.Pool, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.consumeProjections(gctx, g, h.Pool, p, h.Addrs(), nil); err != nil {
			t.Fatalf("projector %d: %v", i, err)
		}
		cores = append(cores, c)
		views = append(views, p)
	}
	const n = 80
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
		if _, _, err := cores[i%2].commands.LoadBalancer(ctx, events.Metadata{ProjectID: "p1"}, ids[i],
			loadbalancer.CreateLoadBalancer{ID: ids[i], ProjectID: "p1", VipSubnetID: uuid.NewString()}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 60*time.Second, 100*time.Millisecond, func() bool {
		for _, id := range ids {
			st := loadbalancer.New(id)
			if _, err := cores[0].handler.Load(ctx, events.AggregateLoadBalancer, id, st); err != nil ||
				st.LoadBalancer().GetProvisioningStatus() != loadbalancer.StatusActive {
				return false
			}
		}
		return true
	}, "not every load balancer became ACTIVE")
	if d := cloud.Duplicates(); len(d) > 0 {
		t.Fatalf("resources created twice: %v", d)
	}
	if got := len(cloud.Servers()); got != n {
		t.Fatalf("%d servers for %d SINGLE load balancers", got, n)
	}
	// Both replicas ran sagas, and together they finished each exactly once.
	// A saga records its own completion right after its last step made the
	// load balancer ACTIVE, so wait for the counts to settle.
	finished := func() (total float64, per []float64) {
		for _, reg := range regs {
			v := relaytest.CounterValue(t, reg, "ostia_saga_finished_total")
			per = append(per, v)
			total += v
		}
		return total, per
	}
	testkit.Eventually(t, 30*time.Second, 50*time.Millisecond, func() bool {
		total, _ := finished()
		return total >= n
	}, "sagas did not all record their completion")
	total, per := finished()
	for i, done := range per {
		t.Logf("replica %d finished %v sagas", i, done)
		if done == 0 {
			t.Errorf("replica %d did no work", i)
		}
	}
	if total != n {
		t.Fatalf("%v sagas finished for %d load balancers", total, n)
	}
	// The read model shows every load balancer ACTIVE, built by both
	// projector replicas, each event applied once.
	testkit.Eventually(t, 30*time.Second, 100*time.Millisecond, func() bool {
		page, err := views[0].List(ctx, pviews.KindLoadBalancer, projections.Query{
			Filters: map[string][]string{"provisioning_status": {"ACTIVE"}}})
		return err == nil && len(page.Items) == n
	}, "the read model does not show every load balancer ACTIVE")
	for i, reg := range regs {
		v := relaytest.CounterValue(t, reg, "ostia_projection_events_applied_total")
		t.Logf("projector %d applied %v events", i, v)
		if v == 0 {
			t.Errorf("projector replica %d did no work", i)
		}
	}
	// Nothing was applied twice in effect: once everything is published
	// and projected, the live read model equals one rebuilt from the log.
	last := -1
	testkit.Eventually(t, 30*time.Second, 300*time.Millisecond, func() bool {
		var pending, processed int
		if err := h.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM processed_events WHERE consumer = $1)`,
			projections.ConsumerName).Scan(&pending, &processed); err != nil {
			t.Fatal(err)
		}
		settled := pending == 0 && processed == last
		last = processed
		return settled
	}, "the projection did not settle")
	cur, err := views[0].CurrentGeneration(ctx)
	if err != nil {
		t.Fatal(err)
	}
	live, err := views[0].Checksum(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	res, err := views[0].Replay(ctx, projections.ReplayConfig{KeepPrevious: true})
	if err != nil {
		t.Fatal(err)
	}
	rebuilt, err := views[0].Checksum(ctx, res.Generation)
	if err != nil {
		t.Fatal(err)
	}
	if live != rebuilt {
		t.Fatalf("live read model (generation %d) differs from its rebuild from the log (generation %d)", cur, res.Generation)
	}
	var started int
	if err := h.Pool.QueryRow(ctx, `SELECT count(*) FROM processed_events WHERE consumer = 'saga.createlb'`).Scan(&started); err != nil {
		t.Fatal(err)
	}
	if started == 0 {
		t.Fatal("no trigger recorded by the saga.createlb consumer group")
	}
}
