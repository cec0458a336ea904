package loadbalancer_test

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/aggregatetest"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

const (
	lbID   = "11111111-0000-4000-8000-000000000000"
	lisID  = "22222222-0000-4000-8000-000000000000"
	poolID = "33333333-0000-4000-8000-000000000000"
	memID  = "44444444-0000-4000-8000-000000000000"
)

var ts = timestamppb.New(aggregatetest.T0)

// activeTree is an ACTIVE load balancer with an HTTP listener on port 80
// whose default pool has one member.
func activeTree() []proto.Message {
	return []proto.Message{&eventsv1.LoadBalancerCreated{
		Loadbalancer: &eventsv1.LoadBalancer{Id: lbID, ProjectId: "p", ProvisioningStatus: lb.StatusActive, OperatingStatus: lb.OperatingOnline, AdminStateUp: true},
		Listeners: []*eventsv1.Listener{{Id: lisID, LoadbalancerId: lbID, ProjectId: "p", ProvisioningStatus: lb.StatusActive,
			Protocol: "HTTP", ProtocolPort: 80, DefaultPoolId: proto.String(poolID)}},
		Pools: []*eventsv1.Pool{{Id: poolID, LoadbalancerId: lbID, ProjectId: "p", ProvisioningStatus: lb.StatusActive, Protocol: "HTTP", LbAlgorithm: "ROUND_ROBIN"}},
		Members: []*eventsv1.Member{{Id: memID, PoolId: poolID, ProjectId: "p", ProvisioningStatus: lb.StatusActive, OperatingStatus: lb.OperatingNoMonitor,
			Address: "10.0.0.5", ProtocolPort: 8080, Weight: 1}},
	}}
}

func given(t *testing.T, evs ...proto.Message) *lb.State {
	t.Helper()
	return aggregatetest.Given(t, lb.New(lbID), evs...)
}

// decide runs a command and checks that Decide did not touch the state and
// that replaying the decided events works.
func decide(t *testing.T, s *lb.State, cmd lb.Command) (lb.Decision, error) {
	t.Helper()
	before := s.Snapshot()
	v := s.Version
	dec, err := lb.Decide(s, cmd, aggregatetest.Env())
	if !proto.Equal(before, s.Snapshot()) || v != s.Version {
		t.Fatal("Decide changed its input state")
	}
	if err == nil {
		aggregatetest.ApplyAll(t, s, dec.Events)
	}
	return dec, err
}

func pending(kind eventsv1.ObjectKind, id, st string) *eventsv1.StatusChange {
	return &eventsv1.StatusChange{Kind: kind, Id: id, ProvisioningStatus: st}
}

func TestCreateListenerLocksLoadBalancer(t *testing.T) {
	t.Parallel()
	s := given(t, activeTree()...)
	dec, err := decide(t, s, lb.CreateListener{LoadBalancerID: lbID, ListenerSpec: lb.ListenerSpec{Protocol: "TCP", ProtocolPort: 443}})
	aggregatetest.ThenEvents(t, dec.Events, err,
		&eventsv1.ListenerCreated{Listener: &eventsv1.Listener{
			Id: aggregatetest.ID(1), LoadbalancerId: lbID, ProjectId: "p", AdminStateUp: true,
			ProvisioningStatus: lb.StatusPendingCreate, OperatingStatus: lb.OperatingOffline, Protocol: "TCP", ProtocolPort: 443,
			ConnectionLimit: -1, ClientAuthentication: "NONE", TimeoutClientData: 50000, TimeoutMemberConnect: 5000,
			TimeoutMemberData: 50000, CreatedAt: ts,
		}},
		&eventsv1.ProvisioningStatusChanged{Changes: []*eventsv1.StatusChange{pending(eventsv1.ObjectKind_OBJECT_KIND_LOADBALANCER, lbID, lb.StatusPendingUpdate)}},
	)
	if !proto.Equal(dec.Usage, &eventsv1.QuotaUsage{Listener: 1}) {
		t.Fatalf("usage %v", dec.Usage)
	}
	// now PENDING_UPDATE: every child change is refused
	_, err = decide(t, s, lb.CreateListener{ListenerSpec: lb.ListenerSpec{Protocol: "TCP", ProtocolPort: 444}})
	aggregatetest.ThenError(t, err, aggregates.KindConflict, "Load Balancer "+lbID+" is immutable and cannot be updated.")
	_, err = decide(t, s, lb.UpdateLoadBalancer{Name: aggregates.Value("x")})
	aggregatetest.ThenError(t, err, aggregates.KindConflict, "Invalid state PENDING_UPDATE of loadbalancer resource "+lbID)
	_, err = decide(t, s, lb.DeleteLoadBalancer{Cascade: true})
	aggregatetest.ThenError(t, err, aggregates.KindConflict, "Invalid state PENDING_UPDATE of loadbalancer resource "+lbID)

	// the flow ends: everything ACTIVE
	dec, err = decide(t, s, lb.CompleteProvisioning{})
	aggregatetest.ThenEvents(t, dec.Events, err, &eventsv1.ProvisioningStatusChanged{Changes: []*eventsv1.StatusChange{
		pending(eventsv1.ObjectKind_OBJECT_KIND_LOADBALANCER, lbID, lb.StatusActive),
		pending(eventsv1.ObjectKind_OBJECT_KIND_LISTENER, aggregatetest.ID(1), lb.StatusActive),
	}})
	dec, err = decide(t, s, lb.CompleteProvisioning{})
	aggregatetest.ThenEvents(t, dec.Events, err)
}

func TestChildRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cmd  lb.Command
		kind aggregates.Kind
		msg  string
	}{
		{"duplicate listener port on same L4", lb.CreateListener{ListenerSpec: lb.ListenerSpec{Protocol: "TCP", ProtocolPort: 80}},
			aggregates.KindConflict, "Another Listener on this Load Balancer is already using protocol TCP and protocol_port 80"},
		{"listener port range", lb.CreateListener{ListenerSpec: lb.ListenerSpec{Protocol: "UDP", ProtocolPort: 0}},
			aggregates.KindInvalid, "Invalid input for field/attribute protocol_port. Value: '0'. Value should be greater or equal to 1"},
		{"listener of another load balancer", lb.UpdateListener{ListenerID: "nope"}, aggregates.KindNotFound, "Listener nope not found."},
		{"listener already has a default pool", lb.CreatePool{ListenerID: lisID, PoolSpec: lb.PoolSpec{Protocol: "HTTP", LBAlgorithm: "ROUND_ROBIN"}},
			aggregates.KindConflict, "This listener already has a default pool"},
		{"pool protocol incompatible", lb.UpdateListener{ListenerID: lisID, DefaultPoolID: aggregates.Value("x")}, aggregates.KindNotFound, "Pool x not found."},
		{"duplicate member", lb.CreateMember{PoolID: poolID, MemberSpec: lb.MemberSpec{Address: "10.0.0.5", ProtocolPort: 8080}},
			aggregates.KindConflict, "Another member on this pool is already using ip 10.0.0.5 on protocol_port 8080"},
		{"member weight", lb.CreateMember{PoolID: poolID, MemberSpec: lb.MemberSpec{Address: "10.0.0.6", ProtocolPort: 1, Weight: proto.Int32(257)}},
			aggregates.KindInvalid, "Invalid input for field/attribute weight. Value: '257'. Value should be lower or equal to 256"},
		{"reserved member address", lb.CreateMember{PoolID: poolID, MemberSpec: lb.MemberSpec{Address: "169.254.169.254", ProtocolPort: 1}},
			aggregates.KindInvalid, "169.254.169.254 is not a valid option for member address"},
		{"member of another pool", lb.DeleteMember{PoolID: poolID, MemberID: "m2"}, aggregates.KindNotFound, "Member m2 not found."},
		{"HM type vs pool protocol", lb.CreateHealthMonitor{PoolID: poolID, HealthMonitorSpec: lb.HealthMonitorSpec{Type: "UDP-CONNECT", Delay: 5, Timeout: 5, MaxRetries: 3}},
			aggregates.KindInvalid, "Validation failure: The UDP-CONNECT type is only supported for pools of type UDP/SCTP."},
		{"HM max_retries", lb.CreateHealthMonitor{PoolID: poolID, HealthMonitorSpec: lb.HealthMonitorSpec{Type: "TCP", Delay: 5, Timeout: 5, MaxRetries: 11}},
			aggregates.KindInvalid, "Invalid input for field/attribute max_retries. Value: '11'. Value should be lower or equal to 10"},
		{"delete LB with children", lb.DeleteLoadBalancer{}, aggregates.KindInvalid, "Validation failure: Cannot delete Load Balancer " + lbID + " - it has children"},
		{"policy without action", lb.CreateL7Policy{ListenerID: lisID}, aggregates.KindInvalid, "Invalid L7 Policy action specified: None"},
		{"redirect pool protocol", lb.CreatePool{PoolSpec: lb.PoolSpec{Protocol: "TCPX", LBAlgorithm: "ROUND_ROBIN"}},
			aggregates.KindInvalid, "Invalid input for field/attribute protocol. Value: 'TCPX'. Value should be one of: HTTP, HTTPS, PROXY, PROXYV2, SCTP, TCP, UDP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := decide(t, given(t, activeTree()...), tc.cmd)
			aggregatetest.ThenError(t, err, tc.kind, tc.msg)
		})
	}
}

func TestListenerPoolCompatibility(t *testing.T) {
	t.Parallel()
	s := given(t, activeTree()...)
	_, err := decide(t, s, lb.CreateListener{ListenerSpec: lb.ListenerSpec{Protocol: "UDP", ProtocolPort: 80, DefaultPoolID: proto.String(poolID)}})
	aggregatetest.ThenError(t, err, aggregates.KindInvalid, "Validation failure: The pool protocol 'HTTP' is invalid while the listener protocol is 'UDP'.")
}

func TestMemberCreateLocksPoolAndListener(t *testing.T) {
	t.Parallel()
	s := given(t, activeTree()...)
	dec, err := decide(t, s, lb.CreateMember{PoolID: poolID, MemberSpec: lb.MemberSpec{Address: "10.0.0.6", ProtocolPort: 80}})
	aggregatetest.ThenEvents(t, dec.Events, err,
		&eventsv1.MemberCreated{Member: &eventsv1.Member{Id: aggregatetest.ID(1), PoolId: poolID, ProjectId: "p", AdminStateUp: true,
			ProvisioningStatus: lb.StatusPendingCreate, OperatingStatus: lb.OperatingNoMonitor, Address: "10.0.0.6", ProtocolPort: 80,
			Weight: 1, VnicType: "normal", CreatedAt: ts}},
		&eventsv1.ProvisioningStatusChanged{Changes: []*eventsv1.StatusChange{
			pending(eventsv1.ObjectKind_OBJECT_KIND_LOADBALANCER, lbID, lb.StatusPendingUpdate),
			pending(eventsv1.ObjectKind_OBJECT_KIND_LISTENER, lisID, lb.StatusPendingUpdate),
			pending(eventsv1.ObjectKind_OBJECT_KIND_POOL, poolID, lb.StatusPendingUpdate),
		}},
	)
	// a failed member flow: member ERROR, parents ACTIVE
	dec, err = decide(t, s, lb.FailProvisioning{Reason: "boom"})
	aggregatetest.ThenEvents(t, dec.Events, err, &eventsv1.ProvisioningStatusChanged{Reason: "boom", Changes: []*eventsv1.StatusChange{
		pending(eventsv1.ObjectKind_OBJECT_KIND_LOADBALANCER, lbID, lb.StatusActive),
		pending(eventsv1.ObjectKind_OBJECT_KIND_LISTENER, lisID, lb.StatusActive),
		pending(eventsv1.ObjectKind_OBJECT_KIND_POOL, poolID, lb.StatusActive),
		pending(eventsv1.ObjectKind_OBJECT_KIND_MEMBER, aggregatetest.ID(1), lb.StatusError),
	}})
}

func TestPoolNotActiveRefusesMembers(t *testing.T) {
	t.Parallel()
	s := given(t, append(activeTree(), &eventsv1.ProvisioningStatusChanged{Changes: []*eventsv1.StatusChange{
		pending(eventsv1.ObjectKind_OBJECT_KIND_POOL, poolID, lb.StatusError)}})...)
	_, err := decide(t, s, lb.CreateMember{PoolID: poolID, MemberSpec: lb.MemberSpec{Address: "10.0.0.6", ProtocolPort: 80}})
	aggregatetest.ThenError(t, err, aggregates.KindConflict, "Pool "+poolID+" is immutable and cannot be updated.")
}

func TestCascadeDeleteReleasesEverything(t *testing.T) {
	t.Parallel()
	s := given(t, activeTree()...)
	dec, err := decide(t, s, lb.DeleteLoadBalancer{Cascade: true})
	aggregatetest.ThenEvents(t, dec.Events, err, &eventsv1.LoadBalancerDeleteRequested{Cascade: true})
	if st := s.Member(memID).ProvisioningStatus; st != lb.StatusPendingDelete {
		t.Fatalf("member %s", st)
	}
	dec, err = decide(t, s, lb.CompleteProvisioning{Reason: "done"})
	aggregatetest.ThenEvents(t, dec.Events, err, &eventsv1.LoadBalancerDeleted{Reason: "done"})
	if !proto.Equal(dec.Usage, &eventsv1.QuotaUsage{LoadBalancer: -1, Listener: -1, Pool: -1, Member: -1}) {
		t.Fatalf("usage %v", dec.Usage)
	}
	_, err = decide(t, s, lb.UpdateLoadBalancer{})
	aggregatetest.ThenError(t, err, aggregates.KindNotFound, "Load Balancer "+lbID+" not found.")
}

func TestDeletePoolCompletes(t *testing.T) {
	t.Parallel()
	s := given(t, activeTree()...)
	dec, err := decide(t, s, lb.DeletePool{PoolID: poolID})
	aggregatetest.ThenEvents(t, dec.Events, err, &eventsv1.PoolDeleteRequested{PoolId: poolID},
		&eventsv1.ProvisioningStatusChanged{Changes: []*eventsv1.StatusChange{
			pending(eventsv1.ObjectKind_OBJECT_KIND_LOADBALANCER, lbID, lb.StatusPendingUpdate),
			pending(eventsv1.ObjectKind_OBJECT_KIND_LISTENER, lisID, lb.StatusPendingUpdate),
		}})
	dec, err = decide(t, s, lb.CompleteProvisioning{})
	aggregatetest.ThenEvents(t, dec.Events, err, &eventsv1.PoolDeleted{PoolId: poolID},
		&eventsv1.ProvisioningStatusChanged{Changes: []*eventsv1.StatusChange{
			pending(eventsv1.ObjectKind_OBJECT_KIND_LOADBALANCER, lbID, lb.StatusActive),
			pending(eventsv1.ObjectKind_OBJECT_KIND_LISTENER, lisID, lb.StatusActive),
		}})
	if !proto.Equal(dec.Usage, &eventsv1.QuotaUsage{Pool: -1, Member: -1}) {
		t.Fatalf("usage %v", dec.Usage)
	}
	if s.Listener(lisID).DefaultPoolId != nil || s.Member(memID) != nil {
		t.Fatal("pool children survived")
	}
}

func TestGraphCreate(t *testing.T) {
	t.Parallel()
	s := lb.New(lbID)
	web := proto.String("web")
	dec, err := decide(t, s, lb.CreateLoadBalancer{
		ProjectID: "p", VipSubnetID: "sub",
		Listeners: []lb.ListenerSpec{{
			Protocol: "HTTP", ProtocolPort: 80, DefaultPool: &lb.PoolSpec{Name: web},
			L7Policies: []lb.L7PolicySpec{{Action: "REDIRECT_TO_POOL", RedirectPool: &lb.PoolSpec{Name: web},
				Rules: []lb.L7RuleSpec{{Type: "PATH", CompareType: "STARTS_WITH", Value: "/api"}}}},
		}},
		Pools: []lb.PoolSpec{{Name: web, Protocol: "HTTP", LBAlgorithm: "ROUND_ROBIN",
			Members:       []lb.MemberSpec{{Address: "10.0.0.1", ProtocolPort: 80}, {Address: "10.0.0.2", ProtocolPort: 80}},
			HealthMonitor: &lb.HealthMonitorSpec{Type: "HTTP", Delay: 5, Timeout: 3, MaxRetries: 3}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dec.Events) != 1 {
		t.Fatalf("events %s", aggregatetest.Format(dec.Events))
	}
	want := &eventsv1.QuotaUsage{LoadBalancer: 1, Listener: 1, Pool: 1, Member: 2, HealthMonitor: 1, L7Policy: 1, L7Rule: 1}
	if !proto.Equal(dec.Usage, want) {
		t.Fatalf("usage %v", dec.Usage)
	}
	ev := dec.Events[0].(*eventsv1.LoadBalancerCreated)
	pool := ev.Pools[0]
	if ev.Listeners[0].GetDefaultPoolId() != pool.Id || ev.L7Policies[0].GetRedirectPoolId() != pool.Id || ev.L7Policies[0].Position != 1 {
		t.Fatalf("references not resolved: %v", ev)
	}
	if ev.Members[0].OperatingStatus != lb.OperatingOffline || ev.HealthMonitors[0].GetUrlPath() != "/" {
		t.Fatalf("defaults: %v %v", ev.Members[0], ev.HealthMonitors[0])
	}
	// flow finishes: all ACTIVE, monitor ONLINE
	dec, err = decide(t, s, lb.CompleteProvisioning{})
	if err != nil || len(dec.Events) != 2 {
		t.Fatalf("complete: %v %s", err, aggregatetest.Format(dec.Events))
	}
	if s.LoadBalancer().ProvisioningStatus != lb.StatusActive || s.PoolHealthMonitor(pool.Id).OperatingStatus != lb.OperatingOnline {
		t.Fatal("not active")
	}

	_, err = decide(t, lb.New("x"), lb.CreateLoadBalancer{VipSubnetID: "s",
		Listeners: []lb.ListenerSpec{{Protocol: "HTTP", ProtocolPort: 80, DefaultPool: &lb.PoolSpec{Name: proto.String("nope")}}}})
	aggregatetest.ThenError(t, err, aggregates.KindInvalid, "Validation failure: Pool 'nope' was referenced but no full definition was found.")
}

func TestL7PolicyPositionsAndRules(t *testing.T) {
	t.Parallel()
	s := given(t, activeTree()...)
	dec, err := decide(t, s, lb.CreateL7Policy{ListenerID: lisID, L7PolicySpec: lb.L7PolicySpec{Action: "REJECT"}})
	if err != nil {
		t.Fatal(err)
	}
	first := dec.Events[0].(*eventsv1.L7PolicyCreated).L7Policy.Id
	aggregatetest.ApplyAll(t, s, []proto.Message{&eventsv1.ProvisioningStatusChanged{Changes: []*eventsv1.StatusChange{
		pending(eventsv1.ObjectKind_OBJECT_KIND_LOADBALANCER, lbID, lb.StatusActive),
		pending(eventsv1.ObjectKind_OBJECT_KIND_LISTENER, lisID, lb.StatusActive),
		pending(eventsv1.ObjectKind_OBJECT_KIND_L7POLICY, first, lb.StatusActive)}}})
	dec, err = decide(t, s, lb.CreateL7Policy{ListenerID: lisID, L7PolicySpec: lb.L7PolicySpec{ID: "pol2", Action: "REDIRECT_TO_URL", RedirectURL: proto.String("http://x"), Position: proto.Int32(1)}})
	if err != nil {
		t.Fatal(err)
	}
	created := dec.Events[0].(*eventsv1.L7PolicyCreated)
	if created.L7Policy.GetRedirectHttpCode() != 302 || created.Positions[first] != 2 || created.Positions[created.L7Policy.Id] != 1 {
		t.Fatalf("positions %v", created)
	}
	_, err = decide(t, s, lb.CreateL7Rule{L7PolicyID: first, L7RuleSpec: lb.L7RuleSpec{Type: "HEADER", CompareType: "EQUAL_TO", Value: "v"}})
	aggregatetest.ThenError(t, err, aggregates.KindConflict, "Load Balancer "+lbID+" is immutable and cannot be updated.")
	aggregatetest.ApplyAll(t, s, []proto.Message{&eventsv1.ProvisioningStatusChanged{Changes: []*eventsv1.StatusChange{
		pending(eventsv1.ObjectKind_OBJECT_KIND_LOADBALANCER, lbID, lb.StatusActive)}}})
	_, err = decide(t, s, lb.CreateL7Rule{L7PolicyID: first, L7RuleSpec: lb.L7RuleSpec{Type: "HEADER", CompareType: "EQUAL_TO", Value: "v"}})
	aggregatetest.ThenError(t, err, aggregates.KindInvalid, "Error parsing L7Rule: Invalid L7 Rule: key is required for header rules")
}

func TestBatchMembers(t *testing.T) {
	t.Parallel()
	s := given(t, activeTree()...)
	_, err := decide(t, s, lb.BatchUpdateMembers{PoolID: poolID, Members: []lb.MemberSpec{{Address: "10.0.0.9", ProtocolPort: 1}, {Address: "10.0.0.9", ProtocolPort: 1}}})
	aggregatetest.ThenError(t, err, aggregates.KindInvalid, "Member must be updated only once in the same request.")
	dec, err := decide(t, s, lb.BatchUpdateMembers{PoolID: poolID, Members: []lb.MemberSpec{{Address: "10.0.0.9", ProtocolPort: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	b := dec.Events[0].(*eventsv1.MembersBatchUpdated)
	if len(b.Created) != 1 || len(b.DeletedMemberIds) != 1 || b.DeletedMemberIds[0] != memID || dec.Usage.GetMember() != 1 {
		t.Fatalf("batch %v", b)
	}
	s2 := given(t, activeTree()...)
	dec, err = decide(t, s2, lb.BatchUpdateMembers{PoolID: poolID, AdditiveOnly: true, Members: []lb.MemberSpec{{Address: "10.0.0.5", ProtocolPort: 8080}}})
	if err != nil || len(dec.Events) != 2 {
		t.Fatalf("update-only batch: %v %s", err, aggregatetest.Format(dec.Events))
	}
}

func TestDeleteAlreadyDeletedIsNoop(t *testing.T) {
	t.Parallel()
	s := given(t, append(activeTree(), &eventsv1.ProvisioningStatusChanged{Changes: []*eventsv1.StatusChange{
		pending(eventsv1.ObjectKind_OBJECT_KIND_MEMBER, memID, lb.StatusDeleted)}})...)
	dec, err := decide(t, s, lb.DeleteMember{PoolID: poolID, MemberID: memID})
	aggregatetest.ThenEvents(t, dec.Events, err)
}

func TestReplayReproducesState(t *testing.T) {
	t.Parallel()
	s := given(t, activeTree()...)
	var all []proto.Message
	all = append(all, activeTree()...)
	for _, cmd := range []lb.Command{
		lb.UpdateListener{ListenerID: lisID, ConnectionLimit: aggregates.Value[int64](10), TimeoutClientData: aggregates.Null[int64]()},
		lb.CompleteProvisioning{},
		lb.CreateHealthMonitor{PoolID: poolID, HealthMonitorSpec: lb.HealthMonitorSpec{Type: "TCP", Delay: 1, Timeout: 1, MaxRetries: 1}},
		lb.CompleteProvisioning{},
		lb.DeleteHealthMonitor{HealthMonitorID: aggregatetest.ID(1)},
		lb.CompleteProvisioning{},
		lb.SetOperatingStatuses{Changes: []*eventsv1.StatusChange{{Kind: eventsv1.ObjectKind_OBJECT_KIND_LISTENER, Id: lisID, OperatingStatus: lb.OperatingOnline}}},
		lb.FailoverLoadBalancer{},
		lb.FailProvisioning{},
	} {
		dec, err := decide(t, s, cmd)
		if err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
		all = append(all, dec.Events...)
	}
	replayed := given(t, all...)
	if !proto.Equal(replayed.Snapshot(), s.Snapshot()) || replayed.Version != s.Version {
		t.Fatal("replay differs")
	}
	if s.LoadBalancer().ProvisioningStatus != lb.StatusError || s.Listener(lisID).ConnectionLimit != 10 {
		t.Fatalf("state %v", s.Snapshot())
	}
}

func TestApplyUnknownEvent(t *testing.T) {
	t.Parallel()
	if err := lb.New(lbID).Apply(&eventsv1.QuotaSet{}); err == nil {
		t.Fatal("want error")
	}
}

// TestBeginAmphoraFailover: the API's amphora failover locks only an ACTIVE
// load balancer; the health manager's (FromError) also one in ERROR; a
// PENDING_* load balancer is never locked twice.
func TestBeginAmphoraFailover(t *testing.T) {
	inError := func() *lb.State {
		return given(t, append(activeTree(), &eventsv1.ProvisioningStatusChanged{Changes: []*eventsv1.StatusChange{
			pending(eventsv1.ObjectKind_OBJECT_KIND_LOADBALANCER, lbID, lb.StatusError)}})...)
	}
	for _, tc := range []struct {
		name      string
		state     func() *lb.State
		fromError bool
		ok        bool
	}{
		{"active, API", func() *lb.State { return given(t, activeTree()...) }, false, true},
		{"error, API", inError, false, false},
		{"error, health manager", inError, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.state()
			_, err := decide(t, s, lb.BeginAmphoraFailover{AmphoraID: "a1", FromError: tc.fromError})
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				return
			}
			if got := s.LoadBalancer().ProvisioningStatus; got != lb.StatusPendingUpdate {
				t.Fatalf("status %s, want PENDING_UPDATE", got)
			}
			if _, err := decide(t, s, lb.BeginAmphoraFailover{AmphoraID: "a1", FromError: true}); err == nil {
				t.Fatal("a PENDING_UPDATE load balancer was locked again")
			}
		})
	}
}
