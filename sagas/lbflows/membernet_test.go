package lbflows_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/ostia/ostia/aggregates/amphora"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/internal/drivers/noop"
	"github.com/ostia/ostia/sagas/lbflows"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// Member subnets of the tests; subnet-onvip lies on the VIP network.
func addMemberSubnets(c *noop.Cloud) {
	c.AddSubnet(ports.Subnet{ID: "subnet-a", NetworkID: "net-a", CIDR: "192.168.10.0/24", GatewayIP: "192.168.10.1"})
	c.AddSubnet(ports.Subnet{ID: "subnet-b", NetworkID: "net-b", CIDR: "192.168.20.0/24", GatewayIP: "192.168.20.1"})
	c.AddSubnet(ports.Subnet{ID: "subnet-onvip", NetworkID: "net-vip", CIDR: "10.9.0.0/24", GatewayIP: "10.9.0.1"})
}

func strp(s string) *string { return &s }

// activeLBWithMembers creates a load balancer with one listener whose
// default pool holds members on the given subnets ("" for none), and runs
// its create saga (on runner w1, left running) to completion. It returns
// the create saga's id too.
func (e *env) activeLBWithMembers(topology string, subnets ...string) (lbID, poolID, sagaID string) {
	e.t.Helper()
	lbID, poolID = uuid.NewString(), uuid.NewString()
	pool := &lb.PoolSpec{ID: poolID, Name: strp("pool-1"), Protocol: "HTTP", LBAlgorithm: "ROUND_ROBIN"}
	for i, sn := range subnets {
		m := lb.MemberSpec{ID: uuid.NewString(), Address: "192.168.99." + string(rune('1'+i)), ProtocolPort: 8080}
		if sn != "" {
			m.SubnetID = strp(sn)
		}
		pool.Members = append(pool.Members, m)
	}
	cmd := lb.CreateLoadBalancer{ID: lbID, ProjectID: "proj-1", VipSubnetID: "subnet-vip", VipNetworkID: "net-vip",
		Topology: topology, Listeners: []lb.ListenerSpec{{Protocol: "HTTP", ProtocolPort: 80, DefaultPool: pool}}}
	_, envs, err := e.svc.LoadBalancer(context.Background(), md, lbID, cmd)
	if err != nil {
		e.t.Fatal(err)
	}
	ids := e.trigger(envs)
	e.startRunner(e.runnerConfig("w1"))
	e.waitSaga(ids[0], saga.StatusCompleted, waitFor)
	return lbID, poolID, ids[0]
}

// do sends a load-balancer command, runs the sagas it starts to their end
// and returns their ids.
func (e *env) do(lbID string, cmd lb.Command, want string) []string {
	e.t.Helper()
	_, envs, err := e.svc.LoadBalancer(context.Background(), md, lbID, cmd)
	if err != nil {
		e.t.Fatal(err)
	}
	ids := e.trigger(envs)
	for _, id := range ids {
		e.waitSaga(id, want, waitFor)
	}
	return ids
}

// memberPorts maps amphora id -> member subnets of its ports (sorted),
// checking on the way that each port is attached to the amphora's server
// and that the amphora's agent knows its MAC.
func (e *env) memberPorts(amps []string) map[string][]string {
	e.t.Helper()
	out := map[string][]string{}
	for _, p := range e.cloud.Ports() {
		sn := p.Tags[ports.TagMemberSubnet]
		if sn == "" {
			continue
		}
		ampID := p.Tags[ports.TagAmphoraID]
		if !slices.Contains(amps, ampID) {
			e.t.Fatalf("member port %s belongs to amphora %q, not one of %v", p.ID, ampID, amps)
		}
		a := e.amp(ampID)
		if p.DeviceID != a.ComputeId {
			e.t.Fatalf("member port %s on subnet %s is attached to %q, want amphora server %s", p.ID, sn, p.DeviceID, a.ComputeId)
		}
		view, _ := e.cloud.Agent(ampID)
		plug, ok := view.Networks[p.MAC]
		if !ok || len(plug.FixedIPs) != 1 || plug.FixedIPs[0].IP != p.IP || plug.FixedIPs[0].SubnetCIDR != p.SubnetCIDR {
			e.t.Fatalf("agent of %s was not told about member port %s (%s): %+v", ampID, p.ID, p.MAC, view.Networks)
		}
		out[ampID] = append(out[ampID], sn)
	}
	for k := range out {
		slices.Sort(out[k])
	}
	return out
}

func ampIDs(in lbflows.LBState) []string {
	var ids []string
	for _, a := range in.Amps {
		ids = append(ids, a.ID)
	}
	return ids
}

func wantSubnets(t *testing.T, got map[string][]string, amps []string, subnets ...string) {
	t.Helper()
	for _, a := range amps {
		if !slices.Equal(got[a], subnets) {
			t.Fatalf("amphora %s has member ports on %v, want %v (all: %v)", a, got[a], subnets, got)
		}
	}
	if len(got) > len(amps) || (len(subnets) == 0 && len(got) > 0) {
		t.Fatalf("member ports %v, want only %v on %v", got, subnets, amps)
	}
}

func TestMemberNetworksArePluggedAndUnpluggedWithTheMembers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noop.Config{})
	addMemberSubnets(e.cloud)
	// Members on subnet-a (twice), without a subnet, on the VIP subnet and
	// on another subnet of the VIP network: only subnet-a needs a port.
	lbID, poolID, sagaID := e.activeLBWithMembers(lbflows.TopologyActiveStandby, "subnet-a", "subnet-a", "", "subnet-vip", "subnet-onvip")
	mustEqual(t, "lb status", e.lb(lbID).ProvisioningStatus, lb.StatusActive)
	amps := ampIDs(e.input(sagaID))
	wantSubnets(t, e.memberPorts(amps), amps, "subnet-a")
	mustEqual(t, "ports (VIP, 2 VRRP, 2 member)", len(e.cloud.Ports()), 5)

	// A member on a new subnet: every amphora gets a port there.
	memberB := uuid.NewString()
	upd := e.do(lbID, lb.CreateMember{PoolID: poolID, MemberSpec: lb.MemberSpec{ID: memberB, Address: "192.168.20.5",
		ProtocolPort: 8080, SubnetID: strp("subnet-b")}}, saga.StatusCompleted)
	mustEqual(t, "update sagas", len(upd), 1)
	wantSubnets(t, e.memberPorts(amps), amps, "subnet-a", "subnet-b")

	// Running the member flow again (all progress lost) finds the ports
	// and makes none.
	before := e.cloud.AllCalls()
	req := saga.StartRequest{SagaID: "rerun-" + upd[0], Type: lbflows.FlowUpdateLB, SubjectID: lbID,
		Input: lbflows.LBState{LBID: lbID, ProjectID: "proj-1", MemberNetworks: true}, Metadata: md}
	if _, err := e.sagas.Start(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	e.waitSaga(req.SagaID, saga.StatusCompleted, waitFor)
	after := e.cloud.AllCalls()
	for _, op := range []string{noop.OpCreatePort, noop.OpDeletePort, noop.OpUnplugPort} {
		if after[op] != before[op] {
			t.Errorf("%s called on re-run: %d -> %d", op, before[op], after[op])
		}
	}
	if d := e.cloud.Duplicates(); len(d) > 0 {
		t.Fatalf("duplicated resources: %v", d)
	}
	wantSubnets(t, e.memberPorts(amps), amps, "subnet-a", "subnet-b")

	// The last member on subnet-b goes: its ports go too.
	e.do(lbID, lb.DeleteMember{PoolID: poolID, MemberID: memberB}, saga.StatusCompleted)
	wantSubnets(t, e.memberPorts(amps), amps, "subnet-a")
	mustEqual(t, "ports after the member delete", len(e.cloud.Ports()), 5)

	// Deleting the load balancer releases every port, member ports included.
	e.do(lbID, lb.DeleteLoadBalancer{Cascade: true}, saga.StatusCompleted)
	if live := e.cloud.Live(""); len(live) > 0 {
		t.Fatalf("left behind after the delete: %v", live)
	}
}

func TestBatchMemberUpdateReplacesMemberNetworks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noop.Config{})
	addMemberSubnets(e.cloud)
	lbID, poolID, sagaID := e.activeLBWithMembers(lbflows.TopologySingle, "subnet-a")
	amps := ampIDs(e.input(sagaID))
	wantSubnets(t, e.memberPorts(amps), amps, "subnet-a")

	// The batch leaves only a member on subnet-b.
	e.do(lbID, lb.BatchUpdateMembers{PoolID: poolID, Members: []lb.MemberSpec{{Address: "192.168.20.7", ProtocolPort: 8080,
		SubnetID: strp("subnet-b")}}}, saga.StatusCompleted)
	wantSubnets(t, e.memberPorts(amps), amps, "subnet-b")
}

func TestFailedMemberFlowRemovesThePortsItMade(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noop.Config{})
	addMemberSubnets(e.cloud)
	lbID, poolID, sagaID := e.activeLBWithMembers(lbflows.TopologySingle, "subnet-a")
	amps := ampIDs(e.input(sagaID))

	// The configuration push after the plug fails for good: the saga
	// compensates, and the port it made on subnet-b goes; subnet-a's stays.
	e.cloud.Inject(noop.Fault{Op: noop.OpUploadConfig, Err: saga.Permanent(errors.New("haproxy refused the configuration"))})
	e.do(lbID, lb.CreateMember{PoolID: poolID, MemberSpec: lb.MemberSpec{ID: uuid.NewString(), Address: "192.168.20.5",
		ProtocolPort: 8080, SubnetID: strp("subnet-b")}}, saga.StatusFailed)
	if e.cloud.Created(noop.KindPort)["octavia-lb-member-"+amps[0]+"-subnet-b"] != 1 {
		t.Fatal("the failed flow should have made a port on subnet-b before failing")
	}
	wantSubnets(t, e.memberPorts(amps), amps, "subnet-a")
}

func TestFailoverReplugsMemberNetworks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noop.Config{})
	addMemberSubnets(e.cloud)
	lbID, _, sagaID := e.activeLBWithMembers(lbflows.TopologySingle, "subnet-a")
	old := e.input(sagaID).Amps[0].ID

	_, fenvs, err := e.svc.Amphora(context.Background(), md, old, amphora.RequestFailover{Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	fids := e.trigger(fenvs)
	mustEqual(t, "failover sagas", len(fids), 1)
	e.waitSaga(fids[0], saga.StatusCompleted, waitFor)
	mustEqual(t, "lb status", e.lb(lbID).ProvisioningStatus, lb.StatusActive)
	replacement := e.input(fids[0]).Amps[0].ID
	// Only the replacement has a member port; the old amphora's is gone.
	wantSubnets(t, e.memberPorts([]string{replacement}), []string{replacement}, "subnet-a")
	mustEqual(t, "ports (VIP, VRRP, member)", len(e.cloud.Ports()), 3)
}
