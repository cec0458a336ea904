package lbflows_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ostia/ostia/aggregates/amphora"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/internal/drivers/noop"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
	"github.com/ostia/ostia/sagas/lbflows"
	"github.com/ostia/ostia/sagas/saga"
	"github.com/ostia/ostia/templates"
)

const (
	rLB       = "0f6a3c1e-1b2c-4d5e-8f90-a1b2c3d4e5f6"
	rListener = "1f6a3c1e-1b2c-4d5e-8f90-a1b2c3d4e5f6"
	rPool     = "2f6a3c1e-1b2c-4d5e-8f90-a1b2c3d4e5f6"
	rMember   = "3f6a3c1e-1b2c-4d5e-8f90-a1b2c3d4e5f6"
	rGone     = "4f6a3c1e-1b2c-4d5e-8f90-a1b2c3d4e5f6"
)

// tree is a load balancer with one HTTP listener, a pool with one live
// member and one being deleted.
func tree(t *testing.T, topology string) *lb.State {
	t.Helper()
	pool := rPool
	st := lb.New(rLB)
	err := st.Apply(&eventsv1.LoadBalancerCreated{
		Loadbalancer: &eventsv1.LoadBalancer{Id: rLB, ProjectId: "p1", AdminStateUp: true, ProvisioningStatus: lb.StatusActive,
			VipAddress: "10.0.0.10", Topology: topology},
		Listeners: []*eventsv1.Listener{{Id: rListener, LoadbalancerId: rLB, ProjectId: "p1", AdminStateUp: true,
			ProvisioningStatus: lb.StatusActive, Protocol: "HTTP", ProtocolPort: 80, ConnectionLimit: -1, DefaultPoolId: &pool}},
		Pools: []*eventsv1.Pool{{Id: rPool, LoadbalancerId: rLB, ProjectId: "p1", AdminStateUp: true,
			ProvisioningStatus: lb.StatusActive, Protocol: "HTTP", LbAlgorithm: "ROUND_ROBIN"}},
		Members: []*eventsv1.Member{
			{Id: rMember, PoolId: rPool, ProjectId: "p1", AdminStateUp: true, ProvisioningStatus: lb.StatusActive,
				Address: "10.0.1.5", ProtocolPort: 8080, Weight: 1},
			{Id: rGone, PoolId: rPool, ProjectId: "p1", AdminStateUp: true, ProvisioningStatus: lb.StatusPendingDelete,
				Address: "10.0.1.6", ProtocolPort: 8080, Weight: 1},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

var amps = []lbflows.Amp{
	{ID: "b-amphora", Role: amphora.RoleBackup, ComputeID: "srv-b", VrrpIP: "10.0.0.12"},
	{ID: "a-amphora", Role: amphora.RoleMaster, ComputeID: "srv-a", VrrpIP: "10.0.0.11"},
}

func renderer(t *testing.T) *lbflows.TemplateRenderer {
	t.Helper()
	r, err := lbflows.NewTemplateRenderer(lbflows.RenderConfig{
		Keepalived: templates.KeepalivedSettings{CheckInterval: 1},
		ForAmphora: func(a lbflows.Amp, s *templates.Settings, k *templates.KeepalivedSettings) {
			s.BasePath = "/var/lib/ostia/" + a.ComputeID
			k.BasePath = "/var/lib/ostia/" + a.ComputeID
		}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRenderHAProxyFromTheAggregate(t *testing.T) {
	t.Parallel()
	r := renderer(t)
	ctx := context.Background()
	st := tree(t, lbflows.TopologyActiveStandby)
	a, err := r.HAProxy(ctx, lbflows.HAProxyInput{LB: st, Amphora: amps[1], Amphorae: amps})
	if err != nil {
		t.Fatal(err)
	}
	conf := string(a)
	for _, want := range []string{
		"frontend " + rListener, "bind 10.0.0.10:80", "default_backend " + rPool + ":" + rListener,
		"backend " + rPool + ":" + rListener, "server " + rMember + " 10.0.1.5:8080",
		"stats socket /var/lib/ostia/srv-a/" + rLB + ".sock",
		"peers " + strings.ReplaceAll(rLB, "-", "") + "_peers",
		"peer " + templates.PeerName("a-amphora") + " 10.0.0.11:1025",
		"peer " + templates.PeerName("b-amphora") + " 10.0.0.12:1025",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("haproxy.cfg lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, rGone) {
		t.Errorf("a member being deleted is rendered:\n%s", conf)
	}
	if strings.Index(conf, templates.PeerName("a-amphora")) > strings.Index(conf, templates.PeerName("b-amphora")) {
		t.Error("peers must be sorted by amphora id, whatever the flow's order")
	}
	again, _ := r.HAProxy(ctx, lbflows.HAProxyInput{LB: st, Amphora: amps[1], Amphorae: []lbflows.Amp{amps[1], amps[0]}})
	if !bytes.Equal(a, again) {
		t.Error("rendering is not deterministic")
	}
	b, _ := r.HAProxy(ctx, lbflows.HAProxyInput{LB: st, Amphora: amps[0], Amphorae: amps})
	if !strings.Contains(string(b), "/var/lib/ostia/srv-b/") {
		t.Error("per-amphora settings are not applied")
	}
	single, _ := r.HAProxy(ctx, lbflows.HAProxyInput{LB: tree(t, lbflows.TopologySingle), Amphora: amps[1], Amphorae: amps[1:]})
	if strings.Contains(string(single), "peers ") {
		t.Errorf("SINGLE has no peers:\n%s", single)
	}
	validateHAProxy(t, single, "")
	validateHAProxy(t, a, templates.PeerName("a-amphora"))
}

// validateHAProxy runs haproxy -c when haproxy is installed.
func validateHAProxy(t *testing.T, conf []byte, peer string) {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return
	}
	// A short directory: haproxy's unix socket paths are limited to 97 bytes.
	dir, err := os.MkdirTemp("", "rt")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// Point the paths into the test directory.
	text := strings.ReplaceAll(string(conf), "/var/lib/ostia/", dir+"/")
	file := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-c", "-f", file}
	if peer != "" {
		args = append(args, "-L", peer)
	}
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, text)
	}
}

func TestRenderKeepalivedPerAmphora(t *testing.T) {
	t.Parallel()
	r := renderer(t)
	ctx := context.Background()
	st := tree(t, lbflows.TopologyActiveStandby)
	vip := lbflows.VIPNetwork{Address: "10.0.0.10", SubnetCIDR: "10.0.0.0/24", Gateway: "10.0.0.1"}
	master, err := r.Keepalived(ctx, lbflows.KeepalivedInput{LB: st, Amphora: amps[1], Amphorae: amps, VIP: vip})
	if err != nil {
		t.Fatal(err)
	}
	backup, err := r.Keepalived(ctx, lbflows.KeepalivedInput{LB: st, Amphora: amps[0], Amphorae: amps, VIP: vip})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		conf        string
		self, other string
		priority    string
	}{{string(master), "10.0.0.11", "10.0.0.12", "priority 100"}, {string(backup), "10.0.0.12", "10.0.0.11", "priority 90"}} {
		for _, want := range []string{"unicast_src_ip " + c.self, c.priority, "10.0.0.10", "interval 1",
			"default via 10.0.0.1 dev eth1 onlink table 1", "/var/lib/ostia/srv-"} {
			if !strings.Contains(c.conf, want) {
				t.Errorf("keepalived.conf of %s lacks %q:\n%s", c.self, want, c.conf)
			}
		}
		peers := c.conf[strings.Index(c.conf, "unicast_peer"):]
		peers = peers[:strings.Index(peers, "}")]
		if !strings.Contains(peers, c.other) || strings.Contains(peers, c.self) {
			t.Errorf("unicast peers of %s: %s", c.self, peers)
		}
	}
	pass := regexp.MustCompile(`auth_pass (\S+)`)
	pm, pb := pass.FindStringSubmatch(string(master)), pass.FindStringSubmatch(string(backup))
	if pm == nil || pb == nil || pm[1] != pb[1] || len(pm[1]) != 7 {
		t.Fatalf("VRRP passwords %v / %v", pm, pb)
	}
	other, _ := lbflows.NewTemplateRenderer(lbflows.RenderConfig{VRRPAuthKey: []byte("secret")})
	keyed, _ := other.Keepalived(ctx, lbflows.KeepalivedInput{LB: st, Amphora: amps[1], Amphorae: amps, VIP: vip})
	if pk := pass.FindStringSubmatch(string(keyed)); pk == nil || pk[1] == pm[1] {
		t.Fatalf("a keyed VRRP password must differ from the unkeyed one: %v", pk)
	}
}

func TestConfigGeneration(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	g := lbflows.ConfigGeneration(7, t0)
	if lbflows.GenerationVersion(g) != 7 {
		t.Fatalf("version of %d is %d", g, lbflows.GenerationVersion(g))
	}
	if later := lbflows.ConfigGeneration(7, t0.Add(time.Millisecond)); later <= g {
		t.Fatal("a later render of the same version must have a higher generation")
	}
	// A newer version wins even when rendered earlier (a slow saga that
	// loaded an older state loses).
	if newer := lbflows.ConfigGeneration(8, t0.Add(-time.Hour)); newer <= lbflows.ConfigGeneration(7, t0.Add(time.Hour)) {
		t.Fatal("a newer load-balancer version must have a higher generation")
	}
	if lbflows.ConfigGeneration(1, time.Unix(0, 0)) <= 0 {
		t.Fatal("generations must be positive")
	}
}

// TestFlowsPushRenderedTemplates checks the flows push real haproxy and
// keepalived configurations, per amphora, with increasing generations.
func TestFlowsPushRenderedTemplates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noop.Config{})
	lbID, envs := e.createLB(lbflows.TopologyActiveStandby, 1)
	ids := e.trigger(envs)
	e.startRunner(e.runnerConfig("w1"))
	e.waitSaga(ids[0], saga.StatusCompleted, waitFor)
	in := e.input(ids[0])
	var gens []int64
	for _, a := range in.Amps {
		rec := e.amp(a.ID)
		av, _ := e.cloud.Agent(a.ID)
		conf := string(av.Config)
		if !strings.Contains(conf, "frontend ") || !strings.Contains(conf, "peers "+strings.ReplaceAll(lbID, "-", "")+"_peers") {
			t.Fatalf("amphora %s got no haproxy.cfg with peers:\n%s", a.ID, conf)
		}
		if !strings.Contains(string(av.Keepalived), "unicast_src_ip "+rec.VrrpIp) {
			t.Fatalf("amphora %s keepalived:\n%s", a.ID, av.Keepalived)
		}
		if !av.VIP.ManagedByKeepalived {
			t.Fatalf("ACTIVE_STANDBY VIP plug must leave the VIP to keepalived: %+v", av.VIP)
		}
		gens = append(gens, av.Generation)
	}
	// A child change pushes a newer generation.
	_, envs2, err := e.svc.LoadBalancer(context.Background(), md, lbID, lb.CreatePool{LoadBalancerID: lbID,
		PoolSpec: lb.PoolSpec{Protocol: "HTTP", LBAlgorithm: "ROUND_ROBIN"}})
	if err != nil {
		t.Fatal(err)
	}
	ids2 := e.trigger(envs2)
	e.waitSaga(ids2[0], saga.StatusCompleted, waitFor)
	for i, a := range in.Amps {
		av, _ := e.cloud.Agent(a.ID)
		if av.Generation <= gens[i] {
			t.Fatalf("generation did not grow: %d -> %d", gens[i], av.Generation)
		}
	}
}
