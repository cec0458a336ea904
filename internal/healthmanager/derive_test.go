package healthmanager_test

import (
	"testing"

	"github.com/ostia/ostia/aggregates/aggregatetest"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/internal/healthmanager"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
	healthv1 "github.com/ostia/ostia/proto/ostia/health/v1"
)

// activeTree decides an ACTIVE load balancer with one listener, a monitored
// pool and two members, purely in memory.
func activeTree(t *testing.T) *lb.State {
	t.Helper()
	st := lb.New("lb-1")
	env := aggregatetest.Env()
	for _, cmd := range []lb.Command{
		lb.CreateLoadBalancer{ID: "lb-1", ProjectID: "p", VipSubnetID: "s", Listeners: []lb.ListenerSpec{{Protocol: "HTTP", ProtocolPort: 80,
			DefaultPool: &lb.PoolSpec{Name: ptr("p"), Protocol: "HTTP", LBAlgorithm: "ROUND_ROBIN",
				Members:       []lb.MemberSpec{{Address: "192.0.2.1", ProtocolPort: 80}, {Address: "192.0.2.2", ProtocolPort: 80}},
				HealthMonitor: &lb.HealthMonitorSpec{Type: "HTTP", Delay: 5, Timeout: 3, MaxRetries: 3}}}}},
		lb.CompleteProvisioning{},
	} {
		d, err := lb.Decide(st, cmd, env)
		if err != nil {
			t.Fatal(err)
		}
		aggregatetest.Given(t, st, d.Events...)
	}
	return st
}

func TestDerive(t *testing.T) {
	st := activeTree(t)
	l := st.Listeners()[0].Id
	p := st.Pools()[0].Id
	m0, m1 := st.Members(p)[0].Id, st.Members(p)[1].Id
	hb := func(lst string, pool string, members map[string]string) *healthv1.AmphoraHeartbeat {
		return &healthv1.AmphoraHeartbeat{AmphoraId: "a", Version: 3,
			Listeners: map[string]*healthv1.ListenerHealth{l: {Status: lst}},
			Pools:     map[string]*healthv1.PoolHealth{p: {Status: pool, Members: members}}}
	}
	get := func(d healthmanager.Derivation) map[string]string {
		out := map[string]string{}
		for _, c := range d.Changes {
			out[c.Kind.String()+"/"+c.Id] = c.OperatingStatus
		}
		return out
	}
	key := func(k eventsv1.ObjectKind, id string) string { return k.String() + "/" + id }
	L, P, M, B := eventsv1.ObjectKind_OBJECT_KIND_LISTENER, eventsv1.ObjectKind_OBJECT_KIND_POOL,
		eventsv1.ObjectKind_OBJECT_KIND_MEMBER, eventsv1.ObjectKind_OBJECT_KIND_LOADBALANCER

	cases := []struct {
		name string
		hb   *healthv1.AmphoraHeartbeat
		want map[string]string
	}{
		{"full listener degrades", hb("FULL", "UP", map[string]string{m0: "UP", m1: "UP 1/3"}),
			map[string]string{key(L, l): "DEGRADED", key(P, p): "ONLINE", key(M, m0): "ONLINE", key(M, m1): "ONLINE", key(B, "lb-1"): "DEGRADED"}},
		{"maint and restarting", hb("OPEN", "UP", map[string]string{m0: "MAINT", m1: "RESTARTING"}),
			map[string]string{key(L, l): "ONLINE", key(P, p): "ONLINE", key(B, "lb-1"): "ONLINE"}}, // MAINT: OFFLINE, as already
		{"down member in down pool", hb("OPEN", "DOWN", map[string]string{m0: "DOWN 1/2", m1: "UP"}),
			map[string]string{key(L, l): "ONLINE", key(P, p): "ERROR", key(M, m0): "ERROR", key(M, m1): "ONLINE", key(B, "lb-1"): "ERROR"}},
		{"unknown listener status left alone", hb("WEIRD", "UP", map[string]string{m0: "DRAIN", m1: "no check"}),
			map[string]string{key(P, p): "ONLINE", key(M, m0): "DRAINING", key(M, m1): "NO_MONITOR", key(B, "lb-1"): "ONLINE"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := healthmanager.Derive(st, tc.hb)
			got := get(d)
			if len(got) != len(tc.want) {
				t.Fatalf("changes %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("changes %v, want %v", got, tc.want)
				}
			}
			if !d.CountMatches(tc.hb) || d.ExpectedListeners != 1 {
				t.Fatalf("count check: %+v", d)
			}
		})
	}
	empty := &healthv1.AmphoraHeartbeat{AmphoraId: "a", Version: 3}
	if d := healthmanager.Derive(st, empty); d.CountMatches(empty) {
		t.Fatal("a heartbeat without the listener must not refresh liveness")
	}
}
