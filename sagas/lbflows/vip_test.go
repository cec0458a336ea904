package lbflows_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ostia/ostia/aggregates"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/drivers/noop"
	"github.com/ostia/ostia/sagas/lbflows"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// vipPorts are the cloud's ports named as the VIP of lbID.
func (e *env) vipPorts(lbID string) []ports.Port {
	var out []ports.Port
	for _, p := range e.cloud.Ports() {
		if p.Name == "octavia-lb-"+lbID {
			out = append(out, p)
		}
	}
	return out
}

// A VIP the API allocated is recorded with the create, adopted by the
// create flow (no second port, the address does not change) and deleted
// with the load balancer.
func TestAPIAllocatedVIPIsAdoptedAndDeletedWithTheLoadBalancer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, noop.Config{})
	v := &lbflows.VIPAllocator{Network: e.cloud}
	id := uuid.NewString()
	cmd := lb.CreateLoadBalancer{ID: id, ProjectID: "proj-1", VipSubnetID: "subnet-vip", Topology: lbflows.TopologySingle,
		Listeners: []lb.ListenerSpec{{Protocol: "HTTP", ProtocolPort: 80}}}
	alloc, err := v.Allocate(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if alloc == nil || alloc.VipPortID == "" || alloc.VipAddress == "" || alloc.VipNetworkID == "" {
		t.Fatalf("allocation %+v", alloc)
	}
	// Allocating again (a retried request) finds the same port.
	again, err := v.Allocate(ctx, cmd)
	if err != nil || again.VipPortID != alloc.VipPortID {
		t.Fatalf("second allocation %+v, %v; want port %s", again, err, alloc.VipPortID)
	}
	cmd.AllocatedVip = alloc
	st, envs, err := e.svc.LoadBalancer(ctx, md, id, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.LoadBalancer(); got.VipPortId != alloc.VipPortID || got.VipAddress != alloc.VipAddress {
		t.Fatalf("the create does not carry the VIP: %s %s", got.VipPortId, got.VipAddress)
	}
	ids := e.trigger(envs)
	mustEqual(t, "sagas started", len(ids), 1)
	e.startRunner(e.runnerConfig("w1"))
	e.waitSaga(ids[0], saga.StatusCompleted, waitFor)
	l := e.lb(id)
	mustEqual(t, "lb status", l.ProvisioningStatus, lb.StatusActive)
	mustEqual(t, "VIP port after the flow", l.VipPortId, alloc.VipPortID)
	mustEqual(t, "VIP address after the flow", l.VipAddress, alloc.VipAddress)
	mustEqual(t, "VIP ports", len(e.vipPorts(id)), 1)

	e.do(id, lb.DeleteLoadBalancer{Cascade: true}, saga.StatusCompleted)
	mustEqual(t, "VIP ports after the delete", len(e.vipPorts(id)), 0)
	mustEqual(t, "ports after the delete", len(e.cloud.Ports()), 0)
}

// A VIP port the user gives is checked and recorded, not allocated: a
// missing one is Octavia's 400; a requested address that cannot be had is
// Octavia's 409.
func TestVIPAllocatorGivenPortAndRefusedAddress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, noop.Config{})
	v := &lbflows.VIPAllocator{Network: e.cloud}
	_, err := v.Allocate(ctx, lb.CreateLoadBalancer{ID: uuid.NewString(), VipPortID: "no-such-port"})
	var ae *aggregates.Error
	if !asAggregateError(err, &ae) || ae.Kind != aggregates.KindInvalid || ae.Message != "Port no-such-port not found." {
		t.Fatalf("missing port: %v", err)
	}
	users, err := e.cloud.CreatePort(ctx, ports.PortSpec{Name: "mine", SubnetID: "subnet-users"})
	if err != nil {
		t.Fatal(err)
	}
	alloc, err := v.Allocate(ctx, lb.CreateLoadBalancer{ID: uuid.NewString(), VipPortID: users.ID})
	if err != nil || alloc == nil || alloc.VipPortID != users.ID || alloc.VipAddress != users.IP || alloc.VipSubnetID != "subnet-users" {
		t.Fatalf("given port: allocation %+v, %v", alloc, err)
	}
	if _, err := v.Allocate(ctx, lb.CreateLoadBalancer{ID: uuid.NewString(), VipPortID: users.ID, VipAddress: "192.0.2.77"}); !asAggregateError(err, &ae) || ae.Kind != aggregates.KindInvalid {
		t.Fatalf("given port with another address: %v", err)
	}
	mustEqual(t, "ports", len(e.cloud.Ports()), 1)

	failing := &lbflows.VIPAllocator{Network: refusingNetwork{e.cloud}}
	_, err = failing.Allocate(ctx, lb.CreateLoadBalancer{ID: uuid.NewString(), VipSubnetID: "s", VipAddress: "10.0.0.9"})
	if !asAggregateError(err, &ae) || ae.Kind != aggregates.KindConflict {
		t.Fatalf("refused address: %v, want a conflict", err)
	}
}

// refusingNetwork refuses every port, as Neutron refuses an address in use.
type refusingNetwork struct{ *noop.Cloud }

func (refusingNetwork) CreatePort(context.Context, ports.PortSpec) (ports.Port, error) {
	return ports.Port{}, saga.Permanent(errAddressInUse)
}

// The API died between allocating a VIP port and storing the create: the
// sweep deletes that port once two sweeps at least the grace apart found no
// load balancer for it; the port of a stored load balancer stays. Release
// gives back the port of a create that was refused.
func TestVIPSweepDeletesOnlyPortsOfLoadBalancersNeverStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, noop.Config{})
	v := &lbflows.VIPAllocator{Network: e.cloud, Logger: testLogger(t)}
	exists := func(ctx context.Context, lbID string) (bool, error) {
		ver, err := e.es.Version(ctx, events.AggregateLoadBalancer, lbID)
		return ver > 0, err
	}

	lost := uuid.NewString()
	if _, err := v.Allocate(ctx, lb.CreateLoadBalancer{ID: lost, VipSubnetID: "subnet-vip"}); err != nil {
		t.Fatal(err)
	}
	kept := uuid.NewString()
	cmd := lb.CreateLoadBalancer{ID: kept, ProjectID: "proj-1", VipSubnetID: "subnet-vip"}
	alloc, err := v.Allocate(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	cmd.AllocatedVip = alloc
	if _, _, err := e.svc.LoadBalancer(ctx, md, kept, cmd); err != nil {
		t.Fatal(err)
	}

	seen := map[string]time.Time{}
	t0 := time.Now()
	const grace = 5 * time.Minute
	for _, step := range []struct {
		at        time.Duration
		wantGone  int
		wantPorts int
	}{{0, 0, 2}, {grace / 2, 0, 2}, {grace, 1, 1}, {2 * grace, 0, 1}} {
		n, err := v.Sweep(ctx, exists, seen, grace, t0.Add(step.at))
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "ports deleted by the sweep at +"+step.at.String(), n, step.wantGone)
		mustEqual(t, "ports after the sweep at +"+step.at.String(), len(e.cloud.Ports()), step.wantPorts)
	}
	mustEqual(t, "ports of the lost load balancer", len(e.vipPorts(lost)), 0)
	mustEqual(t, "ports of the stored load balancer", len(e.vipPorts(kept)), 1)

	refused := uuid.NewString()
	if _, err := v.Allocate(ctx, lb.CreateLoadBalancer{ID: refused, VipSubnetID: "subnet-vip"}); err != nil {
		t.Fatal(err)
	}
	if err := v.Release(ctx, refused); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "ports of the refused load balancer", len(e.vipPorts(refused)), 0)
	mustEqual(t, "ports left", len(e.cloud.Ports()), 1)
}

var errAddressInUse = errors.New("IP address 10.0.0.9 already allocated in subnet s")

func asAggregateError(err error, target **aggregates.Error) bool { return errors.As(err, target) }
