package lbflows_test

import (
	"context"
	"testing"

	"github.com/ostia/ostia/aggregates/amphora"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/internal/drivers/noop"
	"github.com/ostia/ostia/internal/relay"
	"github.com/ostia/ostia/internal/relay/relaytest"
	"github.com/ostia/ostia/sagas/lbflows"
	"github.com/ostia/ostia/sagas/saga"
)

// kafkaEnv is env with the full pipeline: store → outbox → relay → embedded
// broker → "saga.<flow>" consumer groups → runner.
func kafkaEnv(t *testing.T) (*env, *running) {
	t.Helper()
	h := relaytest.New(t, relaytest.Config{Partitions: 3})
	e := newEnvWithPool(t, h.Pool, noop.Config{})
	h.StartRelay(relay.Config{HolderID: "relay-1"})
	w := e.startRunner(e.runnerConfig("w1"))
	cs, err := e.flows.Consumers(lbflows.TriggerConfig{Brokers: h.Addrs(), Pool: h.Pool, Store: e.sagas, Registry: e.reg,
		Kick: w.r.Kick, Logger: e.log, Metrics: e.prom})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	return e, w
}

func TestThroughKafkaCreateUpdateDeleteLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	e, _ := kafkaEnv(t)
	ctx := context.Background()
	lbID, _ := e.createLB(lbflows.TopologyActiveStandby, 1)
	waitUntil(t, func() bool { return e.lb(lbID).ProvisioningStatus == lb.StatusActive }, "load balancer ACTIVE")
	sagas, err := e.sagas.List(ctx, lbID)
	if err != nil || len(sagas) != 1 || sagas[0].Type != lbflows.FlowCreateLB {
		t.Fatalf("sagas of the load balancer: %v %v", sagas, err)
	}
	amps := e.input(sagas[0].ID).Amps

	// A child change: the listener reaches every amphora's configuration.
	st, _, err := e.svc.LoadBalancer(ctx, md, lbID, lb.CreateListener{LoadBalancerID: lbID,
		ListenerSpec: lb.ListenerSpec{Protocol: "TCP", ProtocolPort: 443}})
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "lb status after the change", st.LoadBalancer().ProvisioningStatus, lb.StatusPendingUpdate)
	waitUntil(t, func() bool { return e.lb(lbID).ProvisioningStatus == lb.StatusActive }, "configuration applied")
	for _, a := range amps {
		av, _ := e.cloud.Agent(a.ID)
		if av.Generation < 3 {
			t.Fatalf("amphora %s has config generation %d", a.ID, av.Generation)
		}
	}

	// Cascade delete.
	if _, _, err := e.svc.LoadBalancer(ctx, md, lbID, lb.DeleteLoadBalancer{Cascade: true}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return e.lb(lbID).ProvisioningStatus == lb.StatusDeleted }, "load balancer deleted")
	if live := e.cloud.Live(""); len(live) > 0 {
		t.Fatalf("left behind: %v", live)
	}
	for _, a := range amps {
		mustEqual(t, "amphora "+a.ID, e.amp(a.ID).Status, amphora.StatusDeleted)
	}
	// The flow completes the load balancer's deletion as its last step and
	// records its own completion right after: wait for that too.
	waitUntil(t, func() bool {
		sagas, err = e.sagas.List(ctx, lbID)
		if err != nil || len(sagas) != 3 {
			return false
		}
		for _, s := range sagas {
			if s.Status != saga.StatusCompleted {
				return false
			}
		}
		return true
	}, "all three sagas completed")
}
