package views_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/aggregates/project"
	"github.com/ostia/ostia/projections/views"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// goldenDir holds real Octavia responses.
const goldenDir = "/work/shared/golden"

const (
	projectID = "e3cd678b11784734bc366148aa37580e"
	lbID      = "3cf8b617-ac09-4318-a4bd-7a4f934c139c"
	listID    = "36ff41c5-b287-4acc-aefe-363ab81980c6"
	poolID    = "f02954f6-1458-4ebf-8f96-7a13f65ead0f"
	pool2ID   = "9553fa8b-b83c-40eb-994a-5a4a82de7887"
	m1ID      = "111bcb43-679f-4bf4-91b9-212a0e0dd38f"
	m2ID      = "df68f5ad-4d29-4524-a051-3c12a3d98aee"
	hmID      = "7cdfed93-9f0c-42a0-a884-8c981d355182"
	polID     = "f3d4a782-0d49-4070-807d-b7dcf0a26ff8"
	ruleID    = "1151a6bd-d588-46f4-9c07-d16de56f2d8d"
	subnetID  = "8f0b8a61-5c2f-4b8b-9b8e-4a0bd1d0c0de"
)

// golden returns body_json[key] of a golden file, or the body itself when
// key is empty.
func golden(t *testing.T, prefix, key string) any {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(goldenDir, prefix+"-*.json"))
	if err != nil || len(matches) != 1 {
		t.Skipf("golden %s not available (%v)", prefix, err)
	}
	b, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Response struct {
			BodyJSON map[string]any `json:"body_json"`
		} `json:"response"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if key == "" {
		return f.Response.BodyJSON
	}
	return f.Response.BodyJSON[key]
}

// normalize round-trips a rendered object through JSON, so it compares with
// a decoded golden body.
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func compare(t *testing.T, name string, got, want any) {
	t.Helper()
	g := normalize(t, got)
	if reflect.DeepEqual(g, want) {
		return
	}
	gm, _ := g.(map[string]any)
	wm, _ := want.(map[string]any)
	keys := map[string]bool{}
	for k := range gm {
		keys[k] = true
	}
	for k := range wm {
		keys[k] = true
	}
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		gv, gok := gm[k]
		wv, wok := wm[k]
		switch {
		case !gok:
			t.Errorf("%s: missing field %q (golden %v)", name, k, wv)
		case !wok:
			t.Errorf("%s: extra field %q = %v", name, k, gv)
		case !reflect.DeepEqual(gv, wv):
			t.Errorf("%s: field %q = %#v, golden %#v", name, k, gv, wv)
		}
	}
}

func at(s string) *timestamppb.Timestamp {
	tm, err := time.Parse(views.TimeLayout, s)
	if err != nil {
		panic(err)
	}
	return timestamppb.New(tm)
}

// scenario is the golden scenario's tree as one LoadBalancerCreated event;
// each test adjusts the objects to the moment its golden file was taken.
type scenario struct {
	lb       *eventsv1.LoadBalancer
	listener *eventsv1.Listener
	pool     *eventsv1.Pool
	pool2    *eventsv1.Pool
	m1, m2   *eventsv1.Member
	hm       *eventsv1.HealthMonitor
	policy   *eventsv1.L7Policy
	rule     *eventsv1.L7Rule
}

func newScenario() *scenario {
	return &scenario{
		lb: &eventsv1.LoadBalancer{Id: lbID, Name: proto.String("golden-lb"), Description: proto.String("golden scenario LB"),
			AdminStateUp: true, ProjectId: projectID, ProvisioningStatus: "ACTIVE", OperatingStatus: "OFFLINE",
			VipAddress: "198.51.100.1", VipPortId: "ce4f72f9-6362-431e-8f13-fa15bc4001df", VipSubnetId: subnetID,
			VipNetworkId: "4eb35ae9-3a65-48ec-9012-1e5f9f40c640", VipVnicType: "normal", Provider: "amphora",
			Tags: []string{"golden", "t1"}, CreatedAt: at("2026-11-23T03:39:12"), UpdatedAt: at("2026-11-23T03:39:22"),
			Topology: "SINGLE"},
		listener: &eventsv1.Listener{Id: listID, LoadbalancerId: lbID, Name: proto.String("golden-listener"), AdminStateUp: true,
			ProjectId: projectID, ProvisioningStatus: "ACTIVE", OperatingStatus: "OFFLINE", Protocol: "HTTP", ProtocolPort: 80,
			ConnectionLimit: -1, DefaultPoolId: proto.String(poolID), ClientAuthentication: "NONE",
			TimeoutClientData: 50000, TimeoutMemberConnect: 5000, TimeoutMemberData: 50000, Tags: []string{"golden"},
			CreatedAt: at("2026-11-23T03:39:15"), UpdatedAt: at("2026-11-23T03:39:22")},
		pool: &eventsv1.Pool{Id: poolID, LoadbalancerId: lbID, Name: proto.String("golden-pool"), AdminStateUp: true,
			ProjectId: projectID, ProvisioningStatus: "ACTIVE", OperatingStatus: "OFFLINE", Protocol: "HTTP",
			LbAlgorithm: "ROUND_ROBIN", SessionPersistence: &eventsv1.SessionPersistence{Type: "HTTP_COOKIE"},
			CreatedAt: at("2026-11-23T03:39:15"), UpdatedAt: at("2026-11-23T03:39:19"),
			CreatedForListenerId: proto.String(listID)},
		pool2: &eventsv1.Pool{Id: pool2ID, LoadbalancerId: lbID, Name: proto.String("golden-pool-api"), AdminStateUp: true,
			ProjectId: projectID, ProvisioningStatus: "ACTIVE", OperatingStatus: "OFFLINE", Protocol: "HTTP",
			LbAlgorithm: "LEAST_CONNECTIONS", CreatedAt: at("2026-11-23T03:39:19"), UpdatedAt: at("2026-11-23T03:39:19")},
		m1: &eventsv1.Member{Id: m1ID, PoolId: poolID, Name: proto.String("golden-m1"), AdminStateUp: true, ProjectId: projectID,
			ProvisioningStatus: "ACTIVE", OperatingStatus: "NO_MONITOR", Address: "192.0.2.10", ProtocolPort: 8080, Weight: 1,
			SubnetId: proto.String(subnetID), VnicType: "normal", CreatedAt: at("2026-11-23T03:39:17"), UpdatedAt: at("2026-11-23T03:39:17")},
		m2: &eventsv1.Member{Id: m2ID, PoolId: poolID, Name: proto.String("golden-m2"), AdminStateUp: true, ProjectId: projectID,
			ProvisioningStatus: "ACTIVE", OperatingStatus: "NO_MONITOR", Address: "192.0.2.11", ProtocolPort: 8080, Weight: 5,
			MonitorPort: proto.Int32(8081), VnicType: "normal", CreatedAt: at("2026-11-23T03:39:18"), UpdatedAt: at("2026-11-23T03:39:18")},
		hm: &eventsv1.HealthMonitor{Id: hmID, PoolId: poolID, Name: proto.String("golden-hm"), AdminStateUp: true,
			ProjectId: projectID, ProvisioningStatus: "ACTIVE", OperatingStatus: "ONLINE", Type: "HTTP", Delay: 5, Timeout: 3,
			MaxRetries: 3, MaxRetriesDown: 3, HttpMethod: proto.String("GET"), UrlPath: proto.String("/health"),
			ExpectedCodes: proto.String("200-204"), CreatedAt: at("2026-11-23T03:39:19"), UpdatedAt: at("2026-11-23T03:39:19")},
		policy: &eventsv1.L7Policy{Id: polID, ListenerId: listID, Name: proto.String("golden-l7p"), AdminStateUp: true,
			ProjectId: projectID, ProvisioningStatus: "ACTIVE", OperatingStatus: "ONLINE", Action: "REDIRECT_TO_POOL",
			RedirectPoolId: proto.String(pool2ID), Position: 1, CreatedAt: at("2026-11-23T03:39:20"), UpdatedAt: at("2026-11-23T03:39:22")},
		rule: &eventsv1.L7Rule{Id: ruleID, L7PolicyId: polID, AdminStateUp: true, ProjectId: projectID,
			ProvisioningStatus: "ACTIVE", OperatingStatus: "ONLINE", Type: "PATH", CompareType: "STARTS_WITH", Value: "/api",
			CreatedAt: at("2026-11-23T03:39:21"), UpdatedAt: at("2026-11-23T03:39:22")},
	}
}

// state builds the load balancer state from the scenario's objects (nil
// objects are left out) with one LoadBalancerCreated event.
func (s *scenario) state(t *testing.T) *loadbalancer.State {
	t.Helper()
	ev := &eventsv1.LoadBalancerCreated{Loadbalancer: s.lb}
	if s.listener != nil {
		ev.Listeners = append(ev.Listeners, s.listener)
	}
	for _, p := range []*eventsv1.Pool{s.pool, s.pool2} {
		if p != nil {
			ev.Pools = append(ev.Pools, p)
		}
	}
	for _, m := range []*eventsv1.Member{s.m1, s.m2} {
		if m != nil {
			ev.Members = append(ev.Members, m)
		}
	}
	if s.hm != nil {
		ev.HealthMonitors = append(ev.HealthMonitors, s.hm)
	}
	if s.policy != nil {
		ev.L7Policies = append(ev.L7Policies, s.policy)
	}
	if s.rule != nil {
		ev.L7Rules = append(ev.L7Rules, s.rule)
	}
	st := loadbalancer.New(lbID)
	if err := st.Apply(ev); err != nil {
		t.Fatal(err)
	}
	return st
}

func listItem(t *testing.T, prefix, key, id string) any {
	t.Helper()
	for _, o := range golden(t, prefix, key).([]any) {
		if o.(map[string]any)["id"] == id {
			return o
		}
	}
	t.Fatalf("%s: no %s in %s", prefix, id, key)
	return nil
}

func TestGoldenLoadBalancerShowPending(t *testing.T) {
	t.Parallel()
	s := &scenario{lb: newScenario().lb}
	s.lb.ProvisioningStatus, s.lb.UpdatedAt = "PENDING_CREATE", nil
	compare(t, "009", views.LoadBalancer(s.state(t)), golden(t, "009", "loadbalancer"))
}

func TestGoldenLoadBalancerListAndUpdate(t *testing.T) {
	t.Parallel()
	s := newScenario()
	compare(t, "029", views.LoadBalancer(s.state(t)), listItem(t, "029", "loadbalancers", lbID))

	s.lb.Name, s.lb.Description = proto.String("golden-lb-renamed"), proto.String("updated")
	s.lb.Tags, s.lb.ProvisioningStatus, s.lb.UpdatedAt = []string{"golden", "t2"}, "PENDING_UPDATE", at("2026-11-23T03:39:29")
	compare(t, "061", views.LoadBalancer(s.state(t)), golden(t, "061", "loadbalancer"))
}

func TestGoldenLoadBalancerCreateResponse(t *testing.T) {
	t.Parallel()
	st := loadbalancer.New("1114c39e-d93a-4bec-92a5-4f10c65a6fef")
	if err := st.Apply(&eventsv1.LoadBalancerCreated{Loadbalancer: &eventsv1.LoadBalancer{
		Id: "1114c39e-d93a-4bec-92a5-4f10c65a6fef", Name: proto.String("golden-lb-extra-1"), AdminStateUp: true,
		ProjectId: projectID, ProvisioningStatus: "PENDING_CREATE", OperatingStatus: "OFFLINE", VipAddress: "198.51.100.1",
		VipPortId: "0995d478-45f8-44aa-9129-3232c01c4cdd", VipSubnetId: subnetID,
		VipNetworkId: "74a06865-a9bd-4aa0-8aaf-44a3cb4f7573", Provider: "amphora", CreatedAt: at("2026-11-23T03:39:23"),
	}}); err != nil {
		t.Fatal(err)
	}
	compare(t, "027", views.FullLoadBalancer(st), golden(t, "027", "loadbalancer"))
}

func TestGoldenListener(t *testing.T) {
	t.Parallel()
	// 011: just created, before its pool and policy existed.
	s := &scenario{lb: newScenario().lb, listener: newScenario().listener}
	s.listener.DefaultPoolId, s.listener.ProvisioningStatus, s.listener.UpdatedAt = nil, "PENDING_CREATE", nil
	compare(t, "011", views.Listener(s.state(t), listID), golden(t, "011", "listener"))

	// 013: ACTIVE; updated_at comes from the status change.
	s.listener.ProvisioningStatus = "ACTIVE"
	tree := views.NewTree(s.state(t), map[string]time.Time{listID: at("2026-11-23T03:39:15").AsTime()})
	compare(t, "013", tree.Listener(listID), golden(t, "013", "listener"))

	full := newScenario()
	compare(t, "043", views.Listener(full.state(t), listID), listItem(t, "043", "listeners", listID))

	full.listener.ConnectionLimit, full.listener.TimeoutClientData = 1000, 30000
	full.listener.InsertHeaders = map[string]string{"X-Forwarded-For": "true"}
	full.listener.ProvisioningStatus, full.listener.UpdatedAt = "PENDING_UPDATE", at("2026-11-23T03:39:30")
	compare(t, "063", views.Listener(full.state(t), listID), golden(t, "063", "listener"))
}

func TestGoldenPool(t *testing.T) {
	t.Parallel()
	base := newScenario()
	s := &scenario{lb: base.lb, listener: base.listener, pool: base.pool}
	s.pool.UpdatedAt = at("2026-11-23T03:39:16")
	compare(t, "015", views.Pool(s.state(t), poolID), golden(t, "015", "pool"))

	s = &scenario{lb: base.lb, listener: base.listener, pool: newScenario().pool, pool2: base.pool2}
	s.pool2.ProvisioningStatus, s.pool2.UpdatedAt = "PENDING_CREATE", nil
	compare(t, "021", views.Pool(s.state(t), pool2ID), golden(t, "021", "pool"))

	full := newScenario()
	st := full.state(t)
	compare(t, "045 pool", views.Pool(st, poolID), listItem(t, "045", "pools", poolID))
	compare(t, "045 pool2", views.Pool(st, pool2ID), listItem(t, "045", "pools", pool2ID))
}

func TestGoldenMember(t *testing.T) {
	t.Parallel()
	s := newScenario()
	s.m2.ProvisioningStatus, s.m2.UpdatedAt = "PENDING_CREATE", nil
	compare(t, "017", views.Member(s.state(t), m2ID), golden(t, "017", "member"))

	s = newScenario()
	compare(t, "047", views.Member(s.state(t), m2ID), listItem(t, "047", "members", m2ID))

	s.m1.Weight, s.m1.AdminStateUp, s.m1.ProvisioningStatus = 10, false, "PENDING_UPDATE"
	s.m1.UpdatedAt = at("2026-11-23T03:39:35")
	compare(t, "065", views.Member(s.state(t), m1ID), golden(t, "065", "member"))
}

func TestGoldenHealthMonitor(t *testing.T) {
	t.Parallel()
	s := newScenario()
	s.hm.ProvisioningStatus, s.hm.OperatingStatus, s.hm.UpdatedAt = "PENDING_CREATE", "OFFLINE", nil
	compare(t, "019", views.HealthMonitor(s.state(t), hmID), golden(t, "019", "healthmonitor"))

	s = newScenario()
	compare(t, "049", views.HealthMonitor(s.state(t), hmID), listItem(t, "049", "healthmonitors", hmID))
}

func TestGoldenL7PolicyAndRule(t *testing.T) {
	t.Parallel()
	s := newScenario()
	s.policy.Name, s.policy.ProvisioningStatus = proto.String("golden-l7p-renamed"), "PENDING_UPDATE"
	s.policy.UpdatedAt = at("2026-11-23T03:39:37")
	compare(t, "067", views.L7Policy(s.state(t), polID), golden(t, "067", "l7policy"))

	s = newScenario()
	compare(t, "025", views.L7Rule(s.state(t), ruleID), golden(t, "025", "rule"))
	compare(t, "051", views.L7Rule(s.state(t), ruleID), listItem(t, "051", "rules", ruleID))
	s.rule.ProvisioningStatus, s.rule.OperatingStatus, s.rule.UpdatedAt = "PENDING_CREATE", "OFFLINE", nil
	compare(t, "023", views.L7Rule(s.state(t), ruleID), golden(t, "023", "rule"))
}

func TestGoldenAmphora(t *testing.T) {
	t.Parallel()
	st := amphora.New("7d9822f2-6908-40e8-af9b-245c4cca59a0")
	if err := st.Apply(&eventsv1.AmphoraCreated{Amphora: &eventsv1.Amphora{
		Id: "7d9822f2-6908-40e8-af9b-245c4cca59a0", LoadbalancerId: lbID, ComputeId: "6506ea3f-8839-4fb2-adaf-f022adfb0f95",
		LbNetworkIp: "192.0.2.1", VrrpIp: "198.51.100.1", HaIp: "198.51.100.1", VrrpPortId: "10d3276a-d25a-4161-9005-a80ce72b4cd1",
		HaPortId: "99b15d24-9cda-43ab-8847-78f447dcb4e1", CertExpiration: at("2026-12-23T03:39:14"), Role: "STANDALONE",
		Status: "ALLOCATED", VrrpId: 1, ProjectId: projectID, CreatedAt: at("2026-11-23T03:39:14"), UpdatedAt: at("2026-11-23T03:39:14"),
	}}); err != nil {
		t.Fatal(err)
	}
	compare(t, "059", views.Amphora(st), golden(t, "059", "amphora"))
}

func TestGoldenQuotas(t *testing.T) {
	t.Parallel()
	list := golden(t, "055", "quotas").([]any)
	compare(t, "055 unset", views.QuotaListItem("0c0ffee0000000000000000000000001", nil), list[0])
	compare(t, "055 admin", views.QuotaListItem("admin", &eventsv1.Quota{LoadBalancer: proto.Int64(25), Listener: proto.Int64(45),
		Member: proto.Int64(205), Pool: proto.Int64(25), HealthMonitor: proto.Int64(5), L7Policy: proto.Int64(55),
		L7Rule: proto.Int64(105)}), list[1])
	compare(t, "057", views.QuotaDefaults(project.DefaultLimits()), golden(t, "057", "quota"))
	compare(t, "105", views.Quota(&eventsv1.Quota{LoadBalancer: proto.Int64(1), Listener: proto.Int64(1),
		Member: proto.Int64(5)}, project.DefaultLimits()), golden(t, "105", "quota"))
	compare(t, "053", views.EmptyStats(), golden(t, "053", "stats"))
}

func TestStatusTree(t *testing.T) {
	t.Parallel()
	got := normalize(t, views.StatusTree(newScenario().state(t)))
	lb := got.(map[string]any)["loadbalancer"].(map[string]any)
	listeners := lb["listeners"].([]any)
	if len(listeners) != 1 {
		t.Fatalf("listeners %v", listeners)
	}
	pools := listeners[0].(map[string]any)["pools"].([]any)
	if len(pools) != 2 {
		t.Fatalf("listener pools %v, want the default pool and the redirect pool", pools)
	}
	first := pools[0].(map[string]any)
	if first["id"] != poolID || first["health_monitor"].(map[string]any)["id"] != hmID || len(first["members"].([]any)) != 2 {
		t.Fatalf("default pool %v", first)
	}
	if _, ok := pools[1].(map[string]any)["health_monitor"]; ok {
		t.Fatalf("redirect pool has no monitor: %v", pools[1])
	}
	m := first["members"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "name", "provisioning_status", "operating_status", "address", "protocol_port"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("member status lacks %s: %v", k, m)
		}
	}
}

func TestFieldsMatchRenderedObjects(t *testing.T) {
	t.Parallel()
	st := newScenario().state(t)
	check := func(k views.Kind, o views.Object) {
		for name := range o {
			if !views.HasField(k, name) {
				t.Errorf("%s renders %q but Fields does not list it", k, name)
			}
		}
	}
	check(views.KindLoadBalancer, views.LoadBalancer(st))
	check(views.KindListener, views.Listener(st, listID))
	check(views.KindPool, views.Pool(st, poolID))
	check(views.KindMember, views.Member(st, m1ID))
	check(views.KindHealthMonitor, views.HealthMonitor(st, hmID))
	check(views.KindL7Policy, views.L7Policy(st, polID))
	check(views.KindL7Rule, views.L7Rule(st, ruleID))
	check(views.KindQuota, views.QuotaListItem("p", nil))
}
