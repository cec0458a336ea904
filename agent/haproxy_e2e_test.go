package agent

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/ostia/ostia/proto/ostia/agent/v1"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
	"github.com/ostia/ostia/templates"
)

const (
	e2eLB       = "5a1e0f3c-0000-4000-8000-000000000001"
	e2eListener = "5a1e0f3c-0000-4000-8000-000000000002"
	e2eListen2  = "5a1e0f3c-0000-4000-8000-000000000003"
	e2ePool     = "5a1e0f3c-0000-4000-8000-000000000004"
	e2eMemberA  = "5a1e0f3c-0000-4000-8000-00000000000a"
	e2eMemberB  = "5a1e0f3c-0000-4000-8000-00000000000b"
)

// backend is a small HTTP server answering with its name.
func startBackend(t *testing.T, name string) (string, int32) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, name)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Close() })
	return "127.0.0.1", int32(lis.Addr().(*net.TCPAddr).Port)
}

func freePort(t *testing.T) int32 {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return int32(lis.Addr().(*net.TCPAddr).Port)
}

type e2eMember struct {
	id   string
	addr string
	port int32
}

// renderLB renders haproxy.cfg with the project templates: an HTTP listener
// on 127.0.0.1:port with a round-robin pool of the given members, plus an
// optional second listener on port2.
func renderLB(t *testing.T, base string, port, port2 int32, members ...e2eMember) string {
	t.Helper()
	r, err := templates.New()
	if err != nil {
		t.Fatal(err)
	}
	pool := e2ePool
	lb := &eventsv1.LoadBalancer{Id: e2eLB, ProjectId: "p1", AdminStateUp: true, ProvisioningStatus: "ACTIVE",
		VipAddress: "127.0.0.1", Topology: templates.TopologySingle}
	listener := func(id string, port int32) *eventsv1.Listener {
		return &eventsv1.Listener{Id: id, LoadbalancerId: e2eLB, ProjectId: "p1", AdminStateUp: true,
			ProvisioningStatus: "ACTIVE", Protocol: templates.ProtocolHTTP, ProtocolPort: port,
			ConnectionLimit: 2000, DefaultPoolId: &pool, InsertHeaders: map[string]string{}}
	}
	cfg := templates.LoadBalancerConfig{
		LoadBalancer: lb,
		Listeners:    []*eventsv1.Listener{listener(e2eListener, port)},
		Pools: []*eventsv1.Pool{{Id: pool, LoadbalancerId: e2eLB, ProjectId: "p1", AdminStateUp: true,
			ProvisioningStatus: "ACTIVE", Protocol: templates.ProtocolHTTP, LbAlgorithm: templates.AlgorithmRoundRobin}},
		Settings: templates.Settings{
			BasePath:  base,
			CertDir:   filepath.Join(base, "certs"),
			LogSocket: "127.0.0.1:5514", // UDP syslog nobody listens to
		},
	}
	if port2 != 0 {
		cfg.Listeners = append(cfg.Listeners, listener(e2eListen2, port2))
	}
	for _, m := range members {
		cfg.Members = append(cfg.Members, &eventsv1.Member{Id: m.id, PoolId: pool, ProjectId: "p1", AdminStateUp: true,
			ProvisioningStatus: "ACTIVE", Address: m.addr, ProtocolPort: m.port, Weight: 1})
	}
	text, err := r.RenderHAProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func httpGet(client *http.Client, port int32) (string, error) {
	resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(int(port)) + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return string(body), nil
}

// hits sends n requests, each on a new connection.
func hits(t *testing.T, port int32, n int) []string {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		body, err := httpGet(client, port)
		if err != nil {
			t.Fatalf("request %d through haproxy: %v", i, err)
		}
		out = append(out, body)
	}
	return out
}

func waitServing(t *testing.T, port int32) {
	t.Helper()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := httpGet(client, port)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not serve on %d: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// processesUsing lists live (non-zombie) processes whose command line
// mentions s.
func processesUsing(s string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmd), s) {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if f := strings.Fields(string(stat)); len(f) > 2 && f[2] == "Z" {
			continue
		}
		out = append(out, e.Name()+": "+strings.ReplaceAll(string(cmd), "\x00", " "))
	}
	return out
}

func TestHAProxyEndToEnd(t *testing.T) {
	bin := requireBinary(t, "haproxy")
	base := shortTempDir(t)
	t.Cleanup(func() {
		// Runs after the agent's cleanup (registered later, run earlier).
		deadline := time.Now().Add(5 * time.Second)
		for {
			left := processesUsing(base)
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("leaked processes: %v", left)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	env := startAgent(t, Config{BaseDir: base, HAProxyBin: bin})
	c := env.client
	ctx := rpcCtx(t)

	aAddr, aPort := startBackend(t, "A")
	bAddr, bPort := startBackend(t, "B")
	memberA := e2eMember{e2eMemberA, aAddr, aPort}
	memberB := e2eMember{e2eMemberB, bAddr, bPort}
	port := freePort(t)

	info, err := c.GetInfo(ctx, &agentv1.GetInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(info.GetHaproxyVersion(), "2.") && !strings.HasPrefix(info.GetHaproxyVersion(), "3.") {
		t.Fatalf("haproxy version %q", info.GetHaproxyVersion())
	}

	// Generation 1: two members.
	cfg1 := renderLB(t, base, port, 0, memberA, memberB)
	if v, err := c.ValidateHAProxyConfig(ctx, &agentv1.ValidateHAProxyConfigRequest{LoadbalancerId: e2eLB, Config: cfg1}); err != nil || !v.GetValid() {
		t.Fatalf("ValidateHAProxyConfig = %v, %v", v, err)
	}
	if _, err := c.StartHAProxy(ctx, &agentv1.StartHAProxyRequest{LoadbalancerId: e2eLB}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("start without config: want FailedPrecondition, got %v", err)
	}
	up, err := c.UploadHAProxyConfig(ctx, &agentv1.UploadHAProxyConfigRequest{LoadbalancerId: e2eLB, AmphoraId: testAmphoraID, Config: cfg1, Generation: 1})
	if err != nil {
		t.Fatal(err)
	}
	if up.GetMd5() != md5Hex([]byte(cfg1)) {
		t.Fatalf("md5 %s", up.GetMd5())
	}
	if _, err := os.Stat(filepath.Join(base, e2eLB, "haproxy.cfg")); err != nil {
		t.Fatalf("config not stored in the per-LB directory: %v", err)
	}
	st, err := c.StartHAProxy(ctx, &agentv1.StartHAProxyRequest{LoadbalancerId: e2eLB})
	if err != nil {
		t.Fatal(err)
	}
	masterPid := int(st.GetState().GetPid())
	if !st.GetState().GetRunning() || st.GetState().GetRunningGeneration() != 1 {
		t.Fatalf("start state %v", st.GetState())
	}
	if ppid := parentOf(masterPid); ppid != os.Getpid() {
		t.Fatalf("haproxy master %d has parent %d, want the agent (%d)", masterPid, ppid, os.Getpid())
	}
	waitServing(t, port)
	got := hits(t, port, 6)
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Fatalf("round robin did not alternate: %v", got)
		}
	}
	if n := strings.Count(strings.Join(got, ""), "A"); n != 3 {
		t.Fatalf("want 3 hits on A, got %v", got)
	}

	// Statistics and listener status from the stats socket.
	stats, err := c.GetStats(ctx, &agentv1.GetStatsRequest{LoadbalancerId: e2eLB})
	if err != nil {
		t.Fatal(err)
	}
	servers := map[string]*agentv1.StatsRow{}
	var fe, be *agentv1.StatsRow
	for _, r := range stats.GetRows() {
		switch r.GetType() {
		case agentv1.StatsRowType_STATS_ROW_TYPE_SERVER:
			servers[r.GetMemberId()] = r
		case agentv1.StatsRowType_STATS_ROW_TYPE_FRONTEND:
			fe = r
		case agentv1.StatsRowType_STATS_ROW_TYPE_BACKEND:
			be = r
		}
	}
	if fe == nil || fe.GetListenerId() != e2eListener || fe.GetStatus() != "OPEN" || fe.GetTotalSessions() < 6 {
		t.Fatalf("frontend row %v", fe)
	}
	if be == nil || be.GetPoolId() != e2ePool || be.GetListenerId() != e2eListener {
		t.Fatalf("backend row %v", be)
	}
	for _, id := range []string{e2eMemberA, e2eMemberB} {
		r := servers[id]
		if r == nil || r.GetPoolId() != e2ePool || r.GetSelectedTotal() < 3 || r.GetHttpResponses_2Xx() < 3 {
			t.Fatalf("member %s row %v (rows %v)", id, r, stats.GetRows())
		}
	}
	ls, err := c.ListenerStatuses(ctx, &agentv1.ListenerStatusesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.GetListeners()) != 1 || ls.GetListeners()[0].GetListenerId() != e2eListener ||
		ls.GetListeners()[0].GetStatus() != "ACTIVE" || ls.GetListeners()[0].GetType() != "HTTP" {
		t.Fatalf("listener statuses %v", ls.GetListeners())
	}
	d, err := c.GetDetails(ctx, &agentv1.GetDetailsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if d.GetHaproxyCount() != 1 || len(d.GetListeners()) != 1 {
		t.Fatalf("details %v", d)
	}

	// Generation 2: member A removed, hitless reload.
	cfg2 := renderLB(t, base, port, 0, memberB)
	if _, err := c.UploadHAProxyConfig(ctx, &agentv1.UploadHAProxyConfigRequest{LoadbalancerId: e2eLB, Config: cfg2, Generation: 2}); err != nil {
		t.Fatal(err)
	}
	rl, err := c.ReloadHAProxy(ctx, &agentv1.ReloadHAProxyRequest{LoadbalancerId: e2eLB})
	if err != nil {
		t.Fatal(err)
	}
	if int(rl.GetState().GetPid()) != masterPid || rl.GetState().GetRunningGeneration() != 2 {
		t.Fatalf("reload state %v (master pid was %d)", rl.GetState(), masterPid)
	}
	for _, b := range hits(t, port, 4) {
		if b != "B" {
			t.Fatalf("traffic reached %s after member A was removed", b)
		}
	}

	// Stale generation refused.
	_, err = c.UploadHAProxyConfig(ctx, &agentv1.UploadHAProxyConfigRequest{LoadbalancerId: e2eLB, Config: cfg1, Generation: 1})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("stale generation: want FailedPrecondition, got %v", err)
	}
	// Same generation, same text: idempotent.
	if _, err := c.UploadHAProxyConfig(ctx, &agentv1.UploadHAProxyConfigRequest{LoadbalancerId: e2eLB, Config: cfg2, Generation: 2}); err != nil {
		t.Fatalf("re-upload of the current generation: %v", err)
	}

	// Invalid configuration rejected; the old one keeps serving.
	bad := strings.Replace(cfg2, "balance roundrobin", "balance no-such-algorithm", 1)
	_, err = c.UploadHAProxyConfig(ctx, &agentv1.UploadHAProxyConfigRequest{LoadbalancerId: e2eLB, Config: bad, Generation: 3})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "balance only supports") {
		t.Fatalf("invalid config: want InvalidArgument with haproxy output, got %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(base, e2eLB, "haproxy.cfg")); string(data) != cfg2 {
		t.Fatal("stored configuration changed after a rejected upload")
	}
	if _, err := c.ReloadHAProxy(ctx, &agentv1.ReloadHAProxyRequest{LoadbalancerId: e2eLB}); err != nil {
		t.Fatal(err)
	}
	for _, b := range hits(t, port, 2) {
		if b != "B" {
			t.Fatalf("unexpected backend %s", b)
		}
	}

	// A configuration that validates but cannot be applied (its second
	// listener's port is taken): the reload fails, the agent rolls back to
	// generation 2 and keeps serving.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := int32(busy.Addr().(*net.TCPAddr).Port)
	cfg3 := renderLB(t, base, port, busyPort, memberA, memberB)
	up3, err := c.UploadHAProxyConfig(ctx, &agentv1.UploadHAProxyConfigRequest{LoadbalancerId: e2eLB, Config: cfg3, Generation: 3, Apply: true})
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "rolled back to generation 2") {
		t.Fatalf("unappliable config: want Internal with rollback, got %v, %v", up3, err)
	}
	for _, b := range hits(t, port, 4) {
		if b != "B" {
			t.Fatalf("traffic reached %s: rollback did not restore generation 2", b)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(base, e2eLB, "haproxy.cfg")); string(data) != cfg2 {
		t.Fatal("haproxy.cfg was not restored to the last good configuration")
	}
	// The failed generation stays consumed.
	_, err = c.UploadHAProxyConfig(ctx, &agentv1.UploadHAProxyConfigRequest{LoadbalancerId: e2eLB, Config: cfg2, Generation: 3})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("reuse of generation 3: want FailedPrecondition, got %v", err)
	}

	// Generation 4 with apply: both members again.
	cfg4 := renderLB(t, base, port, 0, memberA, memberB)
	up4, err := c.UploadHAProxyConfig(ctx, &agentv1.UploadHAProxyConfigRequest{LoadbalancerId: e2eLB, Config: cfg4, Generation: 4, Apply: true})
	if err != nil {
		t.Fatal(err)
	}
	if up4.GetState().GetRunningGeneration() != 4 || int(up4.GetState().GetPid()) != masterPid {
		t.Fatalf("apply state %v", up4.GetState())
	}
	if got := strings.Join(hits(t, port, 4), ""); strings.Count(got, "A") != 2 {
		t.Fatalf("want both members back, got %s", got)
	}

	// Stop: the master and its workers exit.
	sp, err := c.StopHAProxy(ctx, &agentv1.StopHAProxyRequest{LoadbalancerId: e2eLB})
	if err != nil || sp.GetState().GetRunning() {
		t.Fatalf("stop = %v, %v", sp, err)
	}
	if processAlive(masterPid) {
		t.Fatalf("haproxy master %d still alive after stop", masterPid)
	}
	if _, err := c.GetStats(ctx, &agentv1.GetStatsRequest{LoadbalancerId: e2eLB}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("stats of a stopped LB: want FailedPrecondition, got %v", err)
	}
	ls, err = c.ListenerStatuses(ctx, &agentv1.ListenerStatusesRequest{})
	if err != nil || len(ls.GetListeners()) != 1 || ls.GetListeners()[0].GetStatus() != "STOPPED" {
		t.Fatalf("listener statuses after stop = %v, %v", ls, err)
	}
	// Start again from the stored generation, then delete everything.
	if _, err := c.StartHAProxy(ctx, &agentv1.StartHAProxyRequest{LoadbalancerId: e2eLB}); err != nil {
		t.Fatal(err)
	}
	waitServing(t, port)
	if _, err := c.DeleteLoadBalancer(ctx, &agentv1.DeleteLoadBalancerRequest{LoadbalancerId: e2eLB}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, e2eLB)); !os.IsNotExist(err) {
		t.Fatalf("load balancer directory still there: %v", err)
	}
}

func parentOf(pid int) int {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// pid (comm) state ppid ...
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return -1
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
