package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ostia/ostia/internal/testkit"
)

// call is one REST call to the local `ostia up`; it fails the test on a
// status of 300 or more.
func (u *localUp) call(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	url := u.api + path
	if strings.HasPrefix(path, "http") {
		url = path
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Project-Id", "p1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}

func (u *localUp) waitActive(t *testing.T, lbID string, timeout time.Duration) {
	t.Helper()
	testkit.Eventually(t, timeout, 50*time.Millisecond, func() bool {
		lb, _ := u.call(t, "GET", "/loadbalancers/"+lbID, nil)["loadbalancer"].(map[string]any)
		switch lb["provisioning_status"] {
		case "ERROR":
			t.Fatalf("load balancer %s went to ERROR; stderr:\n%s", lbID, u.stderr.String())
		case "ACTIVE":
			return true
		}
		return false
	}, "load balancer %s did not become ACTIVE", lbID)
}

// namedMember is an HTTP server answering "<name> <path>" and telling in
// X-Seen-From which address the request came from (which amphora).
func namedMember(t *testing.T, host, name string) int {
	t.Helper()
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from, _, _ := net.SplitHostPort(r.RemoteAddr)
		w.Header().Set("X-Seen-From", from)
		_, _ = io.WriteString(w, name)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

type vipAnswer struct {
	status     int
	body, from string
}

func getVIP(url string) (vipAnswer, error) {
	c := &http.Client{Timeout: 500 * time.Millisecond}
	resp, err := c.Get(url)
	if err != nil {
		return vipAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return vipAnswer{}, err
	}
	return vipAnswer{status: resp.StatusCode, body: string(b), from: resp.Header.Get("X-Seen-From")}, nil
}

// requireLocalE2E skips (fails under CI when a tool is missing) unless
// the machine can run local amphorae with the given tools.
func requireLocalE2E(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces; skipping")
	}
	for _, bin := range tools {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing (scripts/ensure-haproxy.sh installs it)", bin)
			}
			t.Skipf("%s is not installed; skipping", bin)
		}
	}
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
}

// TestLocalTrafficThroughTheAPI builds a load balancer through the REST
// API with the local driver and checks real traffic: round robin over two
// members, a removed member gets nothing more, and an L7 policy sends a
// path prefix to a second pool.
func TestLocalTrafficThroughTheAPI(t *testing.T) {
	requireLocalE2E(t, "ip", "haproxy", "keepalived")
	const gateway, vip = "172.30.10.1", "172.30.10.2"
	u := startLocalUp(t, "ostiatr0", "172.30.10.0/24", "127.44.0.0/16")
	p1, p2, p3 := namedMember(t, gateway, "m1"), namedMember(t, gateway, "m2"), namedMember(t, gateway, "api")

	lb := u.call(t, "POST", "/loadbalancers", map[string]any{"loadbalancer": map[string]any{
		"vip_subnet_id": "8f0b8a61-5c2f-4b8b-9b8e-4a0bd1d0c0de"}})["loadbalancer"].(map[string]any)
	lbID := lb["id"].(string)
	u.waitActive(t, lbID, 90*time.Second)
	lis := u.call(t, "POST", "/listeners", map[string]any{"listener": map[string]any{
		"loadbalancer_id": lbID, "protocol": "HTTP", "protocol_port": 80}})["listener"].(map[string]any)
	u.waitActive(t, lbID, 90*time.Second)
	pool := u.call(t, "POST", "/pools", map[string]any{"pool": map[string]any{
		"listener_id": lis["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})["pool"].(map[string]any)
	u.waitActive(t, lbID, 90*time.Second)
	poolID := pool["id"].(string)
	var memberIDs []string
	for _, port := range []int{p1, p2} {
		m := u.call(t, "POST", "/pools/"+poolID+"/members", map[string]any{"member": map[string]any{
			"address": gateway, "protocol_port": port}})["member"].(map[string]any)
		memberIDs = append(memberIDs, m["id"].(string))
		u.waitActive(t, lbID, 90*time.Second)
	}
	url := "http://" + vip + "/"
	// Round robin: consecutive answers alternate between the members.
	var seq []string
	testkit.Eventually(t, 20*time.Second, 100*time.Millisecond, func() bool {
		seq = seq[:0]
		for range 6 {
			a, err := getVIP(url)
			if err != nil {
				return false
			}
			seq = append(seq, a.body)
		}
		for i := 1; i < len(seq); i++ {
			if seq[i] == seq[i-1] {
				return false
			}
		}
		return true
	}, "answers through the VIP do not alternate between m1 and m2: %v", seq)
	t.Logf("round robin through the VIP: %v", seq)

	// L7: /api goes to a second pool.
	apiPool := u.call(t, "POST", "/pools", map[string]any{"pool": map[string]any{
		"loadbalancer_id": lbID, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})["pool"].(map[string]any)
	u.waitActive(t, lbID, 90*time.Second)
	u.call(t, "POST", "/pools/"+apiPool["id"].(string)+"/members", map[string]any{"member": map[string]any{
		"address": gateway, "protocol_port": p3}})
	u.waitActive(t, lbID, 90*time.Second)
	pol := u.call(t, "POST", "/l7policies", map[string]any{"l7policy": map[string]any{
		"listener_id": lis["id"], "action": "REDIRECT_TO_POOL", "redirect_pool_id": apiPool["id"]}})["l7policy"].(map[string]any)
	u.waitActive(t, lbID, 90*time.Second)
	u.call(t, "POST", "/l7policies/"+pol["id"].(string)+"/rules", map[string]any{"rule": map[string]any{
		"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"}})
	u.waitActive(t, lbID, 90*time.Second)
	testkit.Eventually(t, 20*time.Second, 100*time.Millisecond, func() bool {
		a, err := getVIP("http://" + vip + "/api/v1")
		b, err2 := getVIP(url)
		return err == nil && err2 == nil && a.body == "api" && b.body != "api"
	}, "the L7 rule does not route /api to the second pool")

	// Remove m2: only m1 answers.
	u.call(t, "DELETE", "/pools/"+poolID+"/members/"+memberIDs[1], nil)
	u.waitActive(t, lbID, 90*time.Second)
	testkit.Eventually(t, 20*time.Second, 100*time.Millisecond, func() bool {
		for range 6 {
			a, err := getVIP(url)
			if err != nil || a.body != "m1" {
				return false
			}
		}
		return true
	}, "traffic still reaches the removed member")

	u.call(t, "DELETE", "/loadbalancers/"+lbID+"?cascade=true", nil)
	testkit.Eventually(t, 60*time.Second, 100*time.Millisecond, func() bool { return amphoraeGone(u.stateDir) },
		"amphora processes, namespaces or directories left after the delete")
}

// TestLocalActiveStandbyThroughTheAPI makes an ACTIVE_STANDBY load balancer
// (flavor with loadbalancer_topology) through the REST API, kills the
// MASTER amphora's haproxy, and measures how long until the VIP answers
// again, from the BACKUP (seen by the member as the requests' source).
func TestLocalActiveStandbyThroughTheAPI(t *testing.T) {
	requireLocalE2E(t, "ip", "haproxy", "keepalived")
	const gateway, vip = "172.30.11.1", "172.30.11.2"
	// VRRP checks every second, two failures (Octavia: 5 s), so the test
	// measures the failover, not the check period.
	u := startLocalUp(t, "ostiaas0", "172.30.11.0/24", "127.45.0.0/16",
		"OSTIA_VRRP_CHECK_INTERVAL=1", "OSTIA_VRRP_FAIL_COUNT=2", "OSTIA_VRRP_SUCCESS_COUNT=2",
		// Keep the health manager from replacing the amphora while the
		// BACKUP takes over: this test measures VRRP.
		"OSTIA_HEALTH_HEARTBEAT_TIMEOUT=10m")
	port := namedMember(t, gateway, "m1")
	fp := u.call(t, "POST", "/flavorprofiles", map[string]any{"flavorprofile": map[string]any{
		"name": "as", "provider_name": "amphora", "flavor_data": `{"loadbalancer_topology": "ACTIVE_STANDBY"}`}})["flavorprofile"].(map[string]any)
	fl := u.call(t, "POST", "/flavors", map[string]any{"flavor": map[string]any{
		"name": "as", "flavor_profile_id": fp["id"]}})["flavor"].(map[string]any)
	lb := u.call(t, "POST", "/loadbalancers", map[string]any{"loadbalancer": map[string]any{
		"vip_subnet_id": "8f0b8a61-5c2f-4b8b-9b8e-4a0bd1d0c0de", "flavor_id": fl["id"], "listeners": []any{map[string]any{
			"protocol": "HTTP", "protocol_port": 80, "default_pool": map[string]any{
				"name": "p1", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": []any{map[string]any{
					"address": gateway, "protocol_port": port}}}}}}})["loadbalancer"].(map[string]any)
	lbID := lb["id"].(string)
	u.waitActive(t, lbID, 90*time.Second)
	amps, _ := u.call(t, "GET", strings.TrimSuffix(u.api, "/lbaas")+"/octavia/amphorae?loadbalancer_id="+lbID, nil)["amphorae"].([]any)
	if len(amps) != 2 {
		t.Fatalf("%d amphorae for an ACTIVE_STANDBY load balancer", len(amps))
	}
	byRole := map[string]map[string]any{}
	for _, a := range amps {
		m := a.(map[string]any)
		role, _ := m["role"].(string)
		byRole[role] = m
	}
	master, backup := byRole["MASTER"], byRole["BACKUP"]
	if master == nil || backup == nil {
		t.Fatalf("roles: %v", byRole)
	}
	url := "http://" + vip + "/"
	var first vipAnswer
	testkit.Eventually(t, 30*time.Second, 100*time.Millisecond, func() bool {
		a, err := getVIP(url)
		first = a
		return err == nil && a.body == "m1"
	}, "the VIP does not answer")
	if first.from != master["vrrp_ip"] {
		t.Logf("the first answer came through %s (MASTER vrrp_ip %v, BACKUP %v)", first.from, master["vrrp_ip"], backup["vrrp_ip"])
	}

	// Kill the MASTER's haproxy (its agent stays up).
	dir := filepath.Join(u.stateDir, "a", master["compute_id"].(string))
	var killed int
	for _, pid := range pidsUnder(dir) {
		cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if strings.Contains(string(cmd), "haproxy") {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed++
		}
	}
	if killed == 0 {
		t.Fatalf("no haproxy process of the MASTER under %s", dir)
	}
	start := time.Now()
	var took time.Duration
	testkit.Eventually(t, 15*time.Second, 50*time.Millisecond, func() bool {
		a, err := getVIP(url)
		if err == nil && a.body == "m1" && a.from == backup["vrrp_ip"] {
			took = time.Since(start)
			return true
		}
		return false
	}, "the BACKUP never answered on the VIP after the MASTER's haproxy was killed")
	t.Logf("MASTER haproxy killed -> VIP answered through the BACKUP (%v) after %s", backup["vrrp_ip"], took.Round(10*time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("failover to the BACKUP took %s, want at most 5 s", took)
	}
	// No failed request after that.
	for range 20 {
		if a, err := getVIP(url); err != nil || a.body != "m1" {
			t.Fatalf("request failed after the failover: %v %+v", err, a)
		}
	}
	u.call(t, "DELETE", "/loadbalancers/"+lbID+"?cascade=true", nil)
	testkit.Eventually(t, 60*time.Second, 100*time.Millisecond, func() bool { return amphoraeGone(u.stateDir) },
		"amphora processes, namespaces or directories left after the delete")
}
