package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ostia/ostia/internal/drivers/agentclient"
	"github.com/ostia/ostia/internal/drivers/local"
	"github.com/ostia/ostia/internal/pki"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ou")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func hostConfig(t testing.TB, dir, agent string) local.Config {
	return local.Config{StateDir: dir, Mode: local.ModeHost, AgentBinary: agent,
		VIPSubnet:        netip.MustParsePrefix(fmt.Sprintf("127.31.%d.0/29", randByte())),
		ManagementSubnet: netip.MustParsePrefix(fmt.Sprintf("127.%d.0.0/16", 200+int(randByte())%50)),
		ClientCAPEM:      []byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), Logger: logger(t)}
}

func mustNew(t testing.TB, cfg local.Config) *local.Driver {
	t.Helper()
	d, err := local.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConfigChecks(t *testing.T) {
	t.Parallel()
	dir := shortDir(t)
	ctx := context.Background()
	cases := map[string]local.Config{
		"no state dir":     {ClientCAPEM: []byte("x"), AgentBinary: "/bin/true"},
		"long state dir":   {StateDir: "/tmp/" + string(make([]byte, 60)), ClientCAPEM: []byte("x"), AgentBinary: "/bin/true"},
		"no client CA":     {StateDir: dir, AgentBinary: "/bin/true"},
		"bad mode":         {StateDir: dir, Mode: "vm", ClientCAPEM: []byte("x"), AgentBinary: "/bin/true"},
		"no agent":         {StateDir: dir, ClientCAPEM: []byte("x"), AgentBinary: "/nonexistent/ostia-agent"},
		"host mode subnet": {StateDir: dir, Mode: local.ModeHost, VIPSubnet: netip.MustParsePrefix("10.1.0.0/24"), ClientCAPEM: []byte("x"), AgentBinary: "/bin/true"},
		"heartbeat key":    {StateDir: dir, Mode: local.ModeHost, HeartbeatTargets: []string{"127.0.0.1:5555"}, ClientCAPEM: []byte("x"), AgentBinary: "/bin/true"},
	}
	for name, cfg := range cases {
		if _, err := local.New(ctx, cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// TestPortsAreAllocationsThatPersist checks the network port in host mode
// (no root needed): addresses of the VIP subnet, find by name and tags,
// persistence across driver restarts, exhaustion and fixed addresses.
func TestPortsAreAllocationsThatPersist(t *testing.T) {
	t.Parallel()
	dir := shortDir(t)
	cfg := hostConfig(t, dir, "/bin/true")
	d := mustNew(t, cfg)
	ctx := context.Background()
	subnet := d.VIPSubnet()

	var made []ports.Port
	for i := range 5 { // a /29 has 5 usable addresses besides the gateway
		p, err := d.CreatePort(ctx, ports.PortSpec{Name: fmt.Sprintf("p%d", i), Tags: map[string]string{"lb_id": "lb1", "i": fmt.Sprint(i)}})
		if err != nil {
			t.Fatal(err)
		}
		a := netip.MustParseAddr(p.IP)
		if !subnet.Contains(a) || a == subnet.Addr() || a == subnet.Addr().Next() {
			t.Fatalf("port address %s in %s", a, subnet)
		}
		if p.SubnetCIDR != subnet.String() || p.MAC == "" || p.NetworkID != local.NetworkID || p.MTU == 0 {
			t.Fatalf("port %+v", p)
		}
		made = append(made, p)
	}
	if _, err := d.CreatePort(ctx, ports.PortSpec{Name: "extra"}); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("exhausted subnet: want a permanent error, got %v", err)
	}

	// A restarted driver finds everything.
	d2 := mustNew(t, cfg)
	found, err := d2.FindPorts(ctx, "p3", map[string]string{"lb_id": "lb1"})
	if err != nil || len(found) != 1 || found[0].ID != made[3].ID || found[0].IP != made[3].IP {
		t.Fatalf("find after restart: %+v %v", found, err)
	}
	all, err := d2.FindPorts(ctx, "", map[string]string{"lb_id": "lb1"})
	if err != nil || len(all) != 5 {
		t.Fatalf("find by tag: %d %v", len(all), err)
	}
	if none, _ := d2.FindPorts(ctx, "", map[string]string{"lb_id": "lb2"}); len(none) != 0 {
		t.Fatalf("find by another tag: %+v", none)
	}

	// Deleting frees the address; a fixed address can be asked for.
	if err := d2.DeletePort(ctx, made[1].ID); err != nil {
		t.Fatal(err)
	}
	if err := d2.DeletePort(ctx, made[1].ID); err != nil {
		t.Fatalf("deleting a missing port must succeed: %v", err)
	}
	if _, err := d2.GetPort(ctx, made[1].ID); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("deleted port: %v", err)
	}
	if _, err := d2.CreatePort(ctx, ports.PortSpec{FixedIP: made[2].IP}); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("address in use: want permanent, got %v", err)
	}
	if _, err := d2.CreatePort(ctx, ports.PortSpec{FixedIP: "10.9.9.9"}); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("address outside the subnet: want permanent, got %v", err)
	}
	p, err := d2.CreatePort(ctx, ports.PortSpec{FixedIP: made[1].IP})
	if err != nil || p.IP != made[1].IP {
		t.Fatalf("fixed address: %+v %v", p, err)
	}

	// Plugging needs a server; allowed address pairs and groups are kept.
	if err := d2.PlugPort(ctx, "nosuch", p.ID); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("plug into a missing server: %v", err)
	}
	if err := d2.SetAllowedAddressPairs(ctx, p.ID, []string{"127.31.0.9"}); err != nil {
		t.Fatal(err)
	}
	g, err := d2.CreateSecurityGroup(ctx, "lb-1", map[string]string{"lb_id": "lb1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.SetSecurityGroupRules(ctx, g.ID, []ports.Rule{{Protocol: "tcp", Port: 80}}); err != nil {
		t.Fatal(err)
	}
	if err := d2.SetPortSecurityGroups(ctx, p.ID, []string{g.ID}); err != nil {
		t.Fatal(err)
	}
	if err := d2.DeleteSecurityGroup(ctx, g.ID); !errors.Is(err, saga.ErrTransient) {
		t.Fatalf("deleting a group in use: want transient, got %v", err)
	}
	got, _ := d2.GetPort(ctx, p.ID)
	if len(got.AllowedAddressPairs) != 1 || len(got.SecurityGroupIDs) != 1 {
		t.Fatalf("port %+v", got)
	}
	if err := d2.SetPortSecurityGroups(ctx, p.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := d2.DeleteSecurityGroup(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	if gs, _ := d2.FindSecurityGroups(ctx, "lb-1", nil); len(gs) != 0 {
		t.Fatalf("groups after delete: %+v", gs)
	}
	sg, err := d2.CreateServerGroup(ctx, "octavia-lb-1", "anti-affinity")
	if err != nil {
		t.Fatal(err)
	}
	if gs, _ := d2.FindServerGroups(ctx, "octavia-lb-1"); len(gs) != 1 || gs[0] != sg {
		t.Fatalf("server groups %+v", gs)
	}
	if err := d2.DeleteServerGroup(ctx, sg.ID); err != nil {
		t.Fatal(err)
	}
}

func TestFaultHook(t *testing.T) {
	t.Parallel()
	cfg := hostConfig(t, shortDir(t), "/bin/true")
	boom := errors.New("boom")
	cfg.Fault = func(_ context.Context, op string) error {
		if op == "CreatePort" {
			return saga.Transient(boom)
		}
		return nil
	}
	d := mustNew(t, cfg)
	if _, err := d.CreatePort(context.Background(), ports.PortSpec{}); !errors.Is(err, boom) || !errors.Is(err, saga.ErrTransient) {
		t.Fatalf("injected fault: %v", err)
	}
	if ps, err := d.FindPorts(context.Background(), "", nil); err != nil || len(ps) != 0 {
		t.Fatalf("a failed call must change nothing: %+v %v", ps, err)
	}
}

// TestAmphoraLifecycleInHostMode boots an amphora (an ostia-agent process)
// in host mode, talks to it over mutual TLS, restarts the driver, and
// checks that deleting it, or a crash that lost its record, leaves no
// process or directory behind.
func TestAmphoraLifecycleInHostMode(t *testing.T) {
	t.Parallel()
	bin, err := agentBinary()
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := agentclient.NewAuthority(ca)
	if err != nil {
		t.Fatal(err)
	}
	dir := shortDir(t)
	cfg := hostConfig(t, dir, bin)
	cfg.ClientCAPEM = auth.CACertPEM()
	cfg.AgentPort = 19443
	d := mustNew(t, cfg)
	t.Cleanup(func() { _ = d.Destroy(context.Background()) })
	ctx := context.Background()

	boot := func(ampID string) ports.Server {
		t.Helper()
		cert, err := auth.IssueServerCert(ctx, ampID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := d.CreateServer(ctx, ports.ServerSpec{Name: "amphora-" + ampID,
			Metadata:    map[string]string{ports.TagAmphoraID: ampID, ports.TagLoadBalancerID: "lb1"},
			ConfigDrive: map[string][]byte{"/etc/octavia/certs/server.pem": cert.PEM}})
		if err != nil {
			t.Fatal(err)
		}
		if srv.Status != ports.ServerBuild || srv.ManagementIP == "" {
			t.Fatalf("new server %+v", srv)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, err := d.GetServer(ctx, srv.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status == ports.ServerActive {
				return got
			}
			if got.Status == ports.ServerError || time.Now().After(deadline) {
				t.Fatalf("server %s is %s: %s", srv.ID, got.Status, got.Fault)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	a := boot("amp-a")
	client, err := agentclient.New(agentclient.Config{ClientCertificate: auth.ClientCertificateFunc("ostia-controller", time.Hour),
		ServerCAs: auth.Pool(), Port: cfg.AgentPort})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	info, err := client.Info(ctx, ports.Amphora{ID: "amp-a", ManagementIP: a.ManagementIP})
	if err != nil || info.GetAmphoraId() != "amp-a" {
		t.Fatalf("agent info: %v %v", info, err)
	}
	// Host mode: plugging is recorded, the agent plugs nothing.
	p, err := d.CreatePort(ctx, ports.PortSpec{Name: "octavia-lb-vrrp-amp-a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.PlugPort(ctx, a.ID, p.ID); err != nil {
		t.Fatal(err)
	}
	if err := client.PlugVIP(ctx, ports.Amphora{ID: "amp-a", ManagementIP: a.ManagementIP}, ports.VIPPlug{VIP: p.IP,
		SubnetCIDR: p.SubnetCIDR, MAC: p.MAC, VrrpIP: p.IP}); err != nil {
		t.Fatalf("plug VIP in host mode: %v", err)
	}

	// A restarted driver still knows the amphora, which kept running.
	d2 := mustNew(t, cfg)
	found, err := d2.FindServers(ctx, "amphora-amp-a", map[string]string{ports.TagLoadBalancerID: "lb1"})
	if err != nil || len(found) != 1 || found[0].ID != a.ID {
		t.Fatalf("find after restart: %+v %v", found, err)
	}
	if got, err := d2.GetServer(ctx, a.ID); err != nil || got.Status != ports.ServerActive {
		t.Fatalf("after restart: %+v %v", got, err)
	}

	// Delete: no process, no directory, the port is unplugged.
	if err := d2.DeleteServer(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if left := processesUnder(dir); len(left) > 0 {
		t.Fatalf("processes after delete: %v", left)
	}
	if _, err := os.Stat(d2.ServerDir(a.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("server directory after delete: %v", err)
	}
	if got, _ := d2.GetPort(ctx, p.ID); got.DeviceID != "" {
		t.Fatalf("port still plugged into the deleted server: %+v", got)
	}
	if _, err := d2.GetServer(ctx, a.ID); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("deleted server: %v", err)
	}
	if err := d2.DeleteServer(ctx, a.ID); err != nil {
		t.Fatalf("deleting again must succeed: %v", err)
	}

	// A crash after the agent started but before its record was saved:
	// the next start of the driver removes the orphan.
	b := boot("amp-b")
	forgetServer(t, dir, b.ID)
	if left := processesUnder(dir); len(left) == 0 {
		t.Fatal("the amphora should still run before the sweep")
	}
	mustNew(t, cfg)
	if left := processesUnder(dir); len(left) > 0 {
		t.Fatalf("orphaned amphora not swept: %v", left)
	}
	if _, err := os.Stat(d.ServerDir(b.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("orphan directory: %v", err)
	}

	// An agent that cannot start makes the server ERROR.
	bad := cfg
	bad.AgentBinary = "/bin/false"
	db := mustNew(t, bad)
	cert, _ := auth.IssueServerCert(ctx, "amp-c", time.Hour)
	srv, err := db.CreateServer(ctx, ports.ServerSpec{Name: "amphora-amp-c", Metadata: map[string]string{ports.TagAmphoraID: "amp-c"},
		ConfigDrive: map[string][]byte{"/etc/octavia/certs/server.pem": cert.PEM}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := db.GetServer(ctx, srv.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == ports.ServerError {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server with a failing agent is %s", got.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := db.CreateServer(ctx, ports.ServerSpec{Name: "no-cert"}); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("server without a certificate: %v", err)
	}
}

// forgetServer removes a server's record from state.json, as if the
// driver crashed before saving it.
func forgetServer(t *testing.T, dir, id string) {
	t.Helper()
	path := filepath.Join(dir, "state.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	delete(st["servers"].(map[string]any), id)
	b, _ = json.Marshal(st)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
