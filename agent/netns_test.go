package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/ostia/ostia/proto/ostia/agent/v1"
)

// testNetns creates a network namespace owned by the test (deleted at the
// end). It skips unless running as root with namespace support; nothing is
// ever changed in the host namespace.
func testNetns(t *testing.T, prefix string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) is not installed")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("delete namespace %s: %v: %s", name, err, out)
		}
	})
	ipIn(t, name, "link", "set", "lo", "up")
	return name
}

func ipIn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestLinuxPlumberInNamespaces(t *testing.T) {
	src := testNetns(t, "ostsrc")
	dst := testNetns(t, "ostdst")
	// Two "Nova NICs" (veth ends) appear in the source namespace.
	ipIn(t, src, "link", "add", "nicA", "address", "fa:16:3e:00:00:0a", "type", "veth", "peer", "name", "peerA")
	ipIn(t, src, "link", "add", "nicB", "address", "fa:16:3e:00:00:0b", "type", "veth", "peer", "name", "peerB")
	ipIn(t, src, "link", "set", "peerA", "up")
	ipIn(t, src, "link", "set", "peerB", "up")

	base := shortTempDir(t)
	plumber := &LinuxPlumber{Namespace: dst, SourceNamespace: src, StateFile: filepath.Join(base, "plugged_interfaces")}
	env := startAgent(t, Config{BaseDir: base, Plumber: plumber})
	c, ctx := env.client, rpcCtx(t)

	vip := &agentv1.PlugVipRequest{
		VipAddress: "203.0.113.10", SubnetCidr: "203.0.113.0/24", Gateway: "203.0.113.1",
		MacAddress: "fa:16:3e:00:00:0a", Mtu: 1450, VrrpIp: "203.0.113.7",
		HostRoutes:     []*agentv1.HostRoute{{Destination: "10.20.0.0/16", Nexthop: "203.0.113.254"}},
		AdditionalVips: []*agentv1.AdditionalVip{{IpAddress: "203.0.113.11", SubnetCidr: "203.0.113.0/24", Gateway: "203.0.113.1"}},
	}
	r, err := c.PlugVip(ctx, vip)
	if err != nil {
		t.Fatal(err)
	}
	if r.GetInterface() != "eth1" {
		t.Fatalf("VIP interface %q", r.GetInterface())
	}
	addrs := ipIn(t, dst, "-br", "addr", "show", "dev", "eth1")
	for _, want := range []string{"203.0.113.7/24", "203.0.113.10/32", "203.0.113.11/32"} {
		if !strings.Contains(addrs, want) {
			t.Fatalf("eth1 lacks %s: %s", want, addrs)
		}
	}
	if link := ipIn(t, dst, "link", "show", "dev", "eth1"); !strings.Contains(link, "mtu 1450") || !strings.Contains(link, "fa:16:3e:00:00:0a") {
		t.Fatalf("eth1 link: %s", link)
	}
	if rules := ipIn(t, dst, "rule", "show"); !strings.Contains(rules, "from 203.0.113.10 lookup 1") || !strings.Contains(rules, "from 203.0.113.11 lookup 1") {
		t.Fatalf("policy rules: %s", rules)
	}
	table := ipIn(t, dst, "route", "show", "table", "1")
	for _, want := range []string{"default via 203.0.113.1 dev eth1", "10.20.0.0/16 via 203.0.113.254 dev eth1", "203.0.113.0/24 dev eth1 scope link src 203.0.113.10"} {
		if !strings.Contains(table, want) {
			t.Fatalf("table 1 lacks %q: %s", want, table)
		}
	}
	if left := ipIn(t, src, "-br", "link"); strings.Contains(left, "nicA") {
		t.Fatalf("nicA still in the source namespace: %s", left)
	}
	if _, err := c.PlugVip(ctx, vip); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("second PlugVip: want AlreadyExists, got %v", err)
	}

	member := &agentv1.PlugNetworkRequest{MacAddress: "fa:16:3e:00:00:0b", Mtu: 1400,
		FixedIps: []*agentv1.FixedIp{{IpAddress: "10.0.0.12", SubnetCidr: "10.0.0.0/24"}}}
	n, err := c.PlugNetwork(ctx, member)
	if err != nil || n.GetInterface() != "eth2" || n.GetUpdated() {
		t.Fatalf("PlugNetwork = %v, %v", n, err)
	}
	member.FixedIps = []*agentv1.FixedIp{{IpAddress: "10.0.1.12", SubnetCidr: "10.0.1.0/24"}}
	if n, err = c.PlugNetwork(ctx, member); err != nil || n.GetInterface() != "eth2" || !n.GetUpdated() {
		t.Fatalf("PlugNetwork update = %v, %v", n, err)
	}
	if a := ipIn(t, dst, "-br", "addr", "show", "dev", "eth2"); !strings.Contains(a, "10.0.1.12/24") || strings.Contains(a, "10.0.0.12") {
		t.Fatalf("eth2 after update: %s", a)
	}
	for ip, want := range map[string]string{"203.0.113.7": "eth1", "10.0.1.12": "eth2"} {
		got, err := c.GetInterface(ctx, &agentv1.GetInterfaceRequest{IpAddress: ip})
		if err != nil || got.GetInterface() != want {
			t.Fatalf("GetInterface(%s) = %v, %v", ip, got, err)
		}
	}
	if _, err := c.PlugNetwork(ctx, &agentv1.PlugNetworkRequest{MacAddress: "fa:16:3e:00:00:ff"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown MAC: want NotFound, got %v", err)
	}
	d, err := c.GetDetails(ctx, &agentv1.GetDetailsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, i := range d.GetInterfaces() {
		names[i.GetName()] = true
	}
	if !names["eth1"] || !names["eth2"] || !names["lo"] {
		t.Fatalf("details interfaces %v", d.GetInterfaces())
	}
	if rec, _ := os.ReadFile(plumber.StateFile); !strings.Contains(string(rec), "fa:16:3e:00:00:0a eth1") || !strings.Contains(string(rec), "fa:16:3e:00:00:0b eth2") {
		t.Fatalf("plugged_interfaces: %s", rec)
	}
}

func TestKeepalivedInNamespace(t *testing.T) {
	bin := requireBinary(t, "keepalived")
	ns := testNetns(t, "ostka")
	ipIn(t, ns, "link", "add", "vrrp0", "type", "veth", "peer", "name", "vrrp1")
	ipIn(t, ns, "addr", "add", "10.203.77.1/24", "dev", "vrrp0")
	ipIn(t, ns, "link", "set", "vrrp0", "up")
	ipIn(t, ns, "link", "set", "vrrp1", "up")

	base := shortTempDir(t)
	env := startAgent(t, Config{BaseDir: base, KeepalivedBin: bin, Runner: &ExecRunner{NetNamespace: ns}})
	c, ctx := env.client, rpcCtx(t)

	if _, err := c.UploadKeepalivedConfig(ctx, &agentv1.UploadKeepalivedConfigRequest{Config: "vrrp_instance x {\n interface nosuch0\n virtual_router_id 999\n"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("invalid keepalived config: want InvalidArgument, got %v", err)
	}
	if _, err := c.KeepalivedAction(ctx, &agentv1.KeepalivedActionRequest{Action: agentv1.KeepalivedActionType_KEEPALIVED_ACTION_TYPE_START}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("start without config: want FailedPrecondition, got %v", err)
	}
	conf := `vrrp_instance VI_1 {
    state MASTER
    interface vrrp0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        10.203.77.100/24 dev vrrp0
    }
}
`
	if _, err := c.UploadKeepalivedConfig(ctx, &agentv1.UploadKeepalivedConfigRequest{Config: conf}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"vrrp/octavia-keepalived.conf", "vrrp/check_script.sh", "vrrp/check_scripts/haproxy_check_script.sh"} {
		if _, err := os.Stat(filepath.Join(base, f)); err != nil {
			t.Fatalf("missing %s: %v", f, err)
		}
	}
	start, err := c.KeepalivedAction(ctx, &agentv1.KeepalivedActionRequest{Action: agentv1.KeepalivedActionType_KEEPALIVED_ACTION_TYPE_START})
	if err != nil || !start.GetRunning() {
		t.Fatalf("start = %v, %v", start, err)
	}
	pid := int(start.GetPid())
	if ppid := parentOf(pid); ppid != os.Getpid() {
		t.Fatalf("keepalived %d has parent %d, want the agent", pid, ppid)
	}
	waitFor(t, 8*time.Second, "VIP on vrrp0", func() bool {
		return strings.Contains(ipIn(t, ns, "-br", "addr", "show", "dev", "vrrp0"), "10.203.77.100/24")
	})
	rl, err := c.KeepalivedAction(ctx, &agentv1.KeepalivedActionRequest{Action: agentv1.KeepalivedActionType_KEEPALIVED_ACTION_TYPE_RELOAD})
	if err != nil || int(rl.GetPid()) != pid || rl.GetDetails() != "keepalived reloaded" {
		t.Fatalf("reload = %v, %v", rl, err)
	}
	st, err := c.KeepalivedAction(ctx, &agentv1.KeepalivedActionRequest{Action: agentv1.KeepalivedActionType_KEEPALIVED_ACTION_TYPE_STOP})
	if err != nil || st.GetRunning() {
		t.Fatalf("stop = %v, %v", st, err)
	}
	if processAlive(pid) {
		t.Fatalf("keepalived %d alive after stop", pid)
	}
	waitFor(t, 5*time.Second, "VIP removed", func() bool {
		return !strings.Contains(ipIn(t, ns, "-br", "addr", "show", "dev", "vrrp0"), "10.203.77.100")
	})
	waitFor(t, 5*time.Second, "keepalived children gone", func() bool { return len(processesUsing(base)) == 0 })
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
