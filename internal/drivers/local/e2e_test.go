package local_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ostia/ostia/aggregates/amphora"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/internal/drivers/local"
	"github.com/ostia/ostia/sagas/lbflows"
	"github.com/ostia/ostia/templates"
)

// createLB creates a load balancer with one HTTP listener on port 80 and a
// round-robin default pool holding members, and waits until it is ACTIVE.
func (hs *harness) createLB(topology string, members ...member) (lbID, listenerID, poolID string, memberIDs []string) {
	hs.t.Helper()
	lbID, listenerID, poolID = uuid.NewString(), uuid.NewString(), uuid.NewString()
	pool := &lb.PoolSpec{ID: poolID, Name: ptr("pool1"), Protocol: "HTTP", LBAlgorithm: "ROUND_ROBIN"}
	for _, m := range members {
		id := uuid.NewString()
		memberIDs = append(memberIDs, id)
		pool.Members = append(pool.Members, lb.MemberSpec{ID: id, Name: ptr(m.name), Address: m.addr, ProtocolPort: m.port})
	}
	start := time.Now()
	hs.do(lbID, lb.CreateLoadBalancer{ID: lbID, ProjectID: md.ProjectID, VipSubnetID: "local-subnet",
		VipNetworkID: "local", Topology: topology, Listeners: []lb.ListenerSpec{{ID: listenerID, Protocol: "HTTP",
			ProtocolPort: hs.port, DefaultPool: pool}}})
	hs.waitStatus(lbID, lb.StatusActive, 60*time.Second)
	hs.t.Logf("%s load balancer ACTIVE after %s", topology, time.Since(start).Round(time.Millisecond))
	return lbID, listenerID, poolID, memberIDs
}

func (hs *harness) vipURL(lbID, path string) string {
	return "http://" + net.JoinHostPort(hs.lbState(lbID).LoadBalancer().VipAddress, strconv.Itoa(int(hs.port))) + path
}

// TestSingleServesTraffic creates a SINGLE load balancer with two members
// through the command service and the sagas, and checks real traffic
// through the VIP: round robin, a deleted member, an L7 redirect to a
// second pool; then deletes it and checks nothing is left.
func TestSingleServesTraffic(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, harnessOptions{})
	host := hs.drv.HostAddress()
	m1, m2, m3 := startMember(t, host, "m1"), startMember(t, host, "m2"), startMember(t, host, "m3")
	lbID, listenerID, poolID, memberIDs := hs.createLB(lbflows.TopologySingle, m1, m2)
	url := hs.vipURL(lbID, "/")

	// Round robin: answers alternate between the two members.
	waitAnswer(t, url, 10*time.Second, func(answer) bool { return true })
	c := client(2 * time.Second)
	var seq []string
	for range 8 {
		a, err := get(c, url)
		if err != nil {
			t.Fatal(err)
		}
		seq = append(seq, a.body)
	}
	for i := 1; i < len(seq); i++ {
		if seq[i] == seq[i-1] {
			t.Fatalf("answers do not alternate: %v", seq)
		}
	}
	if !strings.Contains(strings.Join(seq, ","), "m1") || !strings.Contains(strings.Join(seq, ","), "m2") {
		t.Fatalf("answers %v", seq)
	}
	t.Logf("round robin: %v", seq)

	// Heartbeats from the amphora reach the health manager's receiver.
	hb := waitHeartbeat(t, hs, func(m map[string]bool) bool { return m[listenerID] })
	t.Logf("heartbeat from amphora %s lists listener %s", hb, listenerID)

	// Delete m1: only m2 answers.
	start := time.Now()
	hs.do(lbID, lb.DeleteMember{PoolID: poolID, MemberID: memberIDs[0]})
	hs.waitStatus(lbID, lb.StatusActive, 30*time.Second)
	t.Logf("member delete applied after %s", time.Since(start).Round(time.Millisecond))
	for range 6 {
		a, err := get(c, url)
		if err != nil {
			t.Fatal(err)
		}
		if a.body != "m2" {
			t.Fatalf("after deleting m1, %s answered", a.body)
		}
	}

	// A second pool and an L7 policy routing /api to it.
	pool2, policyID := uuid.NewString(), uuid.NewString()
	hs.do(lbID, lb.CreatePool{LoadBalancerID: lbID, PoolSpec: lb.PoolSpec{ID: pool2, Protocol: "HTTP", LBAlgorithm: "ROUND_ROBIN"}})
	hs.waitStatus(lbID, lb.StatusActive, 30*time.Second)
	hs.do(lbID, lb.CreateMember{PoolID: pool2, MemberSpec: lb.MemberSpec{ID: uuid.NewString(), Address: m3.addr, ProtocolPort: m3.port}})
	hs.waitStatus(lbID, lb.StatusActive, 30*time.Second)
	hs.do(lbID, lb.CreateL7Policy{ListenerID: listenerID, L7PolicySpec: lb.L7PolicySpec{ID: policyID,
		Action: templates.ActionRedirectToPool, RedirectPoolID: ptr(pool2), Position: ptr(int32(1))}})
	hs.waitStatus(lbID, lb.StatusActive, 30*time.Second)
	hs.do(lbID, lb.CreateL7Rule{L7PolicyID: policyID, L7RuleSpec: lb.L7RuleSpec{ID: uuid.NewString(),
		Type: templates.RulePath, CompareType: templates.CompareStartsWith, Value: "/api"}})
	hs.waitStatus(lbID, lb.StatusActive, 30*time.Second)
	for _, tc := range []struct{ path, want string }{{"/api/users", "m3"}, {"/api", "m3"}, {"/", "m2"}, {"/web/api", "m2"}} {
		a, err := get(c, hs.vipURL(lbID, tc.path))
		if err != nil {
			t.Fatal(err)
		}
		if a.body != tc.want {
			t.Fatalf("GET %s answered by %s, want %s", tc.path, a.body, tc.want)
		}
	}

	// Fail the amphora over (as the health manager does for a silent one):
	// a new amphora takes the VIP and serves the same configuration.
	before, err := hs.drv.FindServers(context.Background(), "", map[string]string{"lb_id": lbID})
	if err != nil || len(before) != 1 {
		t.Fatalf("servers of the load balancer: %v %v", before, err)
	}
	start = time.Now()
	_, envs, err := hs.svc.Amphora(context.Background(), md, before[0].Metadata["amphora_id"], amphora.RequestFailover{Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	hs.trigger(envs)
	hs.waitSagas(lbID, 60*time.Second)
	after, err := hs.drv.FindServers(context.Background(), "", map[string]string{"lb_id": lbID})
	if err != nil || len(after) != 1 || after[0].ID == before[0].ID {
		t.Fatalf("servers after failover: %v %v", after, err)
	}
	waitAnswer(t, hs.vipURL(lbID, "/api/x"), 10*time.Second, func(a answer) bool { return a.body == "m3" })
	t.Logf("amphora failover done and serving after %s", time.Since(start).Round(time.Millisecond))
	if a, err := get(c, hs.vipURL(lbID, "/")); err != nil || a.body != "m2" {
		t.Fatalf("after failover GET / = %+v, %v", a, err)
	}

	// Delete the load balancer: its amphora, ports and processes go away.
	hs.do(lbID, lb.DeleteLoadBalancer{Cascade: true})
	hs.waitStatus(lbID, lb.StatusDeleted, 30*time.Second)
	servers, err := hs.drv.FindServers(context.Background(), "", nil)
	if err != nil || len(servers) != 0 {
		t.Fatalf("servers after delete: %v %v", servers, err)
	}
	left, err := hs.drv.FindPorts(context.Background(), "", nil)
	if err != nil || len(left) != 0 {
		t.Fatalf("ports after delete: %v %v", left, err)
	}
	if p := processesUnder(hs.stateDir); len(p) > 0 {
		t.Fatalf("processes after delete: %v", p)
	}
}

// TestHostModeServesTraffic runs a SINGLE load balancer in host mode (the
// mode used without root): loopback VIP, agent without interface plumbing.
func TestHostModeServesTraffic(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy is not installed (run scripts/ensure-haproxy.sh); skipping")
	}
	hs := newHarness(t, harnessOptions{mode: local.ModeHost})
	host := hs.drv.HostAddress()
	m1, m2 := startMember(t, host, "m1"), startMember(t, host, "m2")
	lbID, _, _, _ := hs.createLB(lbflows.TopologySingle, m1, m2)
	url := hs.vipURL(lbID, "/")
	seen := map[string]bool{}
	c := client(2 * time.Second)
	waitAnswer(t, url, 10*time.Second, func(answer) bool { return true })
	for range 4 {
		a, err := get(c, url)
		if err != nil {
			t.Fatal(err)
		}
		seen[a.body] = true
	}
	if !seen["m1"] || !seen["m2"] {
		t.Fatalf("answers from %v", seen)
	}
	hs.do(lbID, lb.DeleteLoadBalancer{Cascade: true})
	hs.waitStatus(lbID, lb.StatusDeleted, 30*time.Second)
	if p := processesUnder(hs.stateDir); len(p) > 0 {
		t.Fatalf("processes after delete: %v", p)
	}
}

// waitHeartbeat waits for a heartbeat whose listeners satisfy check and
// returns the amphora id.
func waitHeartbeat(t *testing.T, hs *harness, check func(map[string]bool) bool) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case hb := <-hs.heartbeats:
			ls := map[string]bool{}
			for id := range hb.Message.Listeners {
				ls[id] = true
			}
			if check(ls) {
				return hb.Message.ID
			}
		case <-timeout:
			t.Fatal("no matching heartbeat within 10s")
		}
	}
}

// TestActiveStandbyFailsOver creates an ACTIVE_STANDBY load balancer,
// kills haproxy on the amphora that serves the VIP and measures how long
// until the VIP answers again, through the other amphora.
func TestActiveStandbyFailsOver(t *testing.T) {
	t.Parallel()
	requireKeepalived(t)
	// vrrp_check_interval 1 s (Octavia: 5 s) so the test measures
	// failover, not the check period.
	hs := newHarness(t, harnessOptions{keepalived: templates.KeepalivedSettings{CheckInterval: 1, FailCount: 2, SuccessCount: 2}})
	host := hs.drv.HostAddress()
	m1, m2 := startMember(t, host, "m1"), startMember(t, host, "m2")
	lbID, _, _, _ := hs.createLB(lbflows.TopologyActiveStandby, m1, m2)
	url := hs.vipURL(lbID, "/")

	servers, err := hs.drv.FindServers(context.Background(), "", map[string]string{"lb_id": lbID})
	if err != nil || len(servers) != 2 {
		t.Fatalf("servers of the load balancer: %v %v", servers, err)
	}
	type ampInfo struct{ id, computeID, vrrpIP, role string }
	byIP := map[string]ampInfo{}
	for _, s := range servers {
		a := hs.amp(s.Metadata["amphora_id"])
		byIP[a.VrrpIp] = ampInfo{id: a.Id, computeID: a.ComputeId, vrrpIP: a.VrrpIp, role: a.Role}
	}

	// The VIP answers once keepalived elected a MASTER.
	start := time.Now()
	first := waitAnswer(t, url, 30*time.Second, func(a answer) bool { _, ok := byIP[a.from]; return ok })
	serving := byIP[first.from]
	t.Logf("VIP served by the %s amphora %s (%s) %s after ACTIVE", serving.role, serving.id, serving.vrrpIP,
		time.Since(start).Round(time.Millisecond))

	// Kill the serving amphora's haproxy (master and workers).
	pidFile := filepath.Join(hs.drv.ServerDir(serving.computeID), lbID, lbID+".pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill haproxy process group %d: %v", pid, err)
	}
	next := waitAnswer(t, url, 15*time.Second, func(a answer) bool {
		other, ok := byIP[a.from]
		return ok && other.id != serving.id
	})
	took := time.Since(killed)
	t.Logf("VIP answered again by amphora %s (%s) %s after haproxy was killed on %s", byIP[next.from].id, next.from,
		took.Round(time.Millisecond), serving.id)
	if took > 5*time.Second {
		t.Fatalf("failover took %s, want at most 5s", took)
	}
	// Traffic keeps flowing through the new MASTER.
	c := client(2 * time.Second)
	for range 4 {
		a, err := get(c, url)
		if err != nil {
			t.Fatal(err)
		}
		if a.from != next.from {
			t.Fatalf("answer came through %s, want %s", a.from, next.from)
		}
	}
}
