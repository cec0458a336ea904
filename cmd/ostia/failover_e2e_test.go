package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ostia/ostia/internal/testkit"
)

// TestLocalAmphoraFailoverEndToEnd runs `ostia up` with the local driver
// (amphorae are ostia-agent processes in network namespaces running real
// haproxy), builds a load balancer through the REST API with a real HTTP
// member, kills the amphora (agent and haproxy), and measures the time
// until the VIP serves again: heartbeats stop, the health manager finds the
// amphora stale, the failover saga builds a replacement. The heartbeat
// timeout is 3 s here (Octavia's default is 60 s).
func TestLocalAmphoraFailoverEndToEnd(t *testing.T) {
	requireLocalE2E(t, "ip", "haproxy")
	const gateway, vip = "172.30.9.1", "172.30.9.2"
	u := startLocalUp(t, "ostiafo0", "172.30.9.0/24", "127.43.0.0/16")
	// A member on the bridge's address (the bridge exists once up runs).
	memberPort := namedMember(t, gateway, "member-1")
	lb := u.call(t, "POST", "/loadbalancers", map[string]any{"loadbalancer": map[string]any{
		"vip_subnet_id": "8f0b8a61-5c2f-4b8b-9b8e-4a0bd1d0c0de", "listeners": []any{map[string]any{
			"protocol": "HTTP", "protocol_port": 80, "default_pool": map[string]any{
				"name": "p1", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": []any{map[string]any{
					"address": gateway, "protocol_port": memberPort}}}}}}})["loadbalancer"].(map[string]any)
	lbID := lb["id"].(string)
	u.waitActive(t, lbID, 60*time.Second)
	if got, _ := u.call(t, "GET", "/loadbalancers/"+lbID, nil)["loadbalancer"].(map[string]any)["vip_address"].(string); got != vip {
		t.Fatalf("VIP %q, want %s", got, vip)
	}
	serving := func() bool {
		a, err := getVIP("http://" + vip + "/")
		return err == nil && a.status == http.StatusOK && a.body == "member-1"
	}
	testkit.Eventually(t, 20*time.Second, 100*time.Millisecond, serving, "the VIP does not serve the member")

	// Kill the amphora: its agent and its haproxy.
	killed := killUnder(u.stateDir)
	if killed == 0 {
		t.Fatal("found no amphora process to kill")
	}
	start := time.Now()
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, func() bool { return !serving() }, "the VIP still answers after the amphora was killed")
	testkit.Eventually(t, 90*time.Second, 100*time.Millisecond, serving, "the VIP never served again after the amphora was killed")
	t.Logf("amphora killed (%d processes) -> replacement serving traffic: %s (heartbeat timeout 3 s, interval 1 s)",
		killed, time.Since(start).Round(10*time.Millisecond))
	u.waitActive(t, lbID, 60*time.Second)

	// Clean up through the API: nothing may be left behind.
	u.call(t, "DELETE", "/loadbalancers/"+lbID+"?cascade=true", nil)
	testkit.Eventually(t, 60*time.Second, 100*time.Millisecond, func() bool {
		req, _ := http.NewRequest("GET", u.api+"/loadbalancers/"+lbID, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 404
	}, "the load balancer was not deleted")
	testkit.Eventually(t, 20*time.Second, 100*time.Millisecond, func() bool { return amphoraeGone(u.stateDir) },
		"amphora processes, namespaces or directories left after the delete")
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// pidsUnder lists processes whose command line mentions dir (the amphora
// agents and their haproxy/keepalived).
func pidsUnder(dir string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(cmd), dir) {
			out = append(out, pid)
		}
	}
	return out
}

// amphoraeGone reports that the local driver removed every amphora under
// its state dir: no process, and no amphora directory (removed last, after
// the network namespace).
func amphoraeGone(stateDir string) bool {
	if len(pidsUnder(stateDir)) > 0 {
		return false
	}
	entries, err := os.ReadDir(filepath.Join(stateDir, "a"))
	return err == nil && len(entries) == 0
}

func killUnder(dir string) int {
	pids := pidsUnder(dir)
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	return len(pids)
}

// localUp is a running `ostia up` with the local driver.
type localUp struct {
	api      string // .../v2/lbaas
	stateDir string
	stderr   *testkit.SyncBuffer
}

var (
	agentOnce sync.Once
	agentPath string
	agentErr  error
)

// buildAgent builds ostia-agent once per test binary.
func buildAgent(t *testing.T) string {
	t.Helper()
	agentOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ostia-agent-build")
		if err != nil {
			agentErr = err
			return
		}
		agentPath = filepath.Join(dir, "ostia-agent")
		if out, err := exec.Command("go", "build", "-o", agentPath, "github.com/ostia/ostia/cmd/ostia-agent").CombinedOutput(); err != nil {
			agentErr = fmt.Errorf("build ostia-agent: %v\n%s", err, out)
		}
	})
	if agentErr != nil {
		t.Fatal(agentErr)
	}
	return agentPath
}

// startLocalUp runs `ostia up` with the local driver on its own bridge and
// VIP subnet, with a 1 s heartbeat interval and a 3 s timeout; extra are
// more OSTIA_* settings. Everything is stopped and removed at the end.
func startLocalUp(t *testing.T, bridge, subnet, mgmt string, extra ...string) *localUp {
	t.Helper()
	requireLocalE2E(t, "ip", "haproxy")
	agent := buildAgent(t)
	_, dbURL := testkit.NewDatabase(t)
	// haproxy's unix sockets live below the state dir: keep it short.
	stateDir, err := os.MkdirTemp("/tmp", "ofo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(stateDir) })
	stdout, stderr := &testkit.SyncBuffer{}, &testkit.SyncBuffer{}
	env := &environment{stdout: stdout, stderr: stderr, environ: []string{
		"OSTIA_DATABASE_URL=" + dbURL,
		"OSTIA_KAFKA_DATA_DIR=" + t.TempDir(),
		fmt.Sprintf("OSTIA_KAFKA_EMBEDDED_PORT=%d", testkit.FreePort(t)),
		"OSTIA_API_BIND=127.0.0.1:0",
		"OSTIA_METRICS_BIND=127.0.0.1:0",
		fmt.Sprintf("OSTIA_HEALTH_BIND=127.0.0.1:%d", freeUDPPort(t)),
		"OSTIA_HEALTH_HEARTBEAT_INTERVAL=1s",
		"OSTIA_HEALTH_HEARTBEAT_TIMEOUT=3s",
		"OSTIA_HEALTH_CHECK_INTERVAL=1s",
		"OSTIA_WORKER_DRIVER=local",
		"OSTIA_LOCAL_STATE_DIR=" + stateDir,
		"OSTIA_LOCAL_AGENT_BINARY=" + agent,
		"OSTIA_LOCAL_BRIDGE=" + bridge,
		"OSTIA_LOCAL_VIP_SUBNET=" + subnet,
		"OSTIA_LOCAL_MANAGEMENT_SUBNET=" + mgmt,
	}}
	env.environ = append(env.environ, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, env, []string{"up"}) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("ostia up exited %d; stderr:\n%s", code, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("ostia up did not stop after cancel")
		}
	}
	t.Cleanup(func() {
		stop()
		killUnder(stateDir)
		_ = exec.Command("ip", "link", "del", bridge).Run()
	})
	apiRe := regexp.MustCompile(`Octavia v2 API: (http://\S+)`)
	var api string
	testkit.Eventually(t, 60*time.Second, 50*time.Millisecond, func() bool {
		if m := apiRe.FindStringSubmatch(stdout.String()); m != nil {
			api = m[1] + "/v2/lbaas"
			return true
		}
		return false
	}, "ostia up never said where the API listens; stderr:\n%s", stderr.String())
	return &localUp{api: api, stateDir: stateDir, stderr: stderr}
}
