package agent

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/ostia/ostia/internal/pki"
	agentv1 "github.com/ostia/ostia/proto/ostia/agent/v1"
)

func TestMutualTLS(t *testing.T) {
	env := startAgent(t, Config{})
	ctx := rpcCtx(t)

	var p peer.Peer
	info, err := env.client.GetInfo(ctx, &agentv1.GetInfoRequest{}, grpcPeer(&p))
	if err != nil {
		t.Fatalf("GetInfo with a valid client certificate: %v", err)
	}
	if info.GetApiVersion() != APIVersion || info.GetAmphoraId() != testAmphoraID || info.GetAgentVersion() != Version {
		t.Fatalf("unexpected info %v", info)
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || ti.State.Version != tls.VersionTLS13 {
		t.Fatalf("connection is not TLS 1.3: %#v", p.AuthInfo)
	}
	if cn := ti.State.PeerCertificates[0].Subject.CommonName; cn != testAmphoraID {
		t.Fatalf("server CN %q", cn)
	}

	otherCA, err := pki.NewCA("rogue CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := otherCA.IssueClient("ostia-controller", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rogueCert, err := rogue.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	noCert := pki.ClientTLSConfig(tls.Certificate{}, env.pki.serverCA.Pool(), testAmphoraID)
	noCert.Certificates = nil
	cases := []struct {
		name string
		cfg  *tls.Config
		want string
	}{
		{"no client certificate", noCert, ""},
		{"client certificate from another CA", pki.ClientTLSConfig(rogueCert, env.pki.serverCA.Pool(), testAmphoraID), ""},
		{"client expects another amphora id", pki.ClientTLSConfig(env.pki.client, env.pki.serverCA.Pool(), "another-amphora"), "another-amphora"},
		{"client does not trust the server CA", pki.ClientTLSConfig(env.pki.client, env.pki.clientCA.Pool(), testAmphoraID), "unknown authority"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := agentv1.NewAmphoraAgentClient(dialAgent(t, env.addr, tc.cfg))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := c.GetInfo(ctx, &agentv1.GetInfoRequest{})
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("want Unavailable, got %v", err)
			}
			if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestServerCertificateRotation(t *testing.T) {
	env := startAgent(t, Config{})
	serial := func() string {
		t.Helper()
		// A new connection per call, so the handshake sees the current cert.
		c := agentv1.NewAmphoraAgentClient(dialAgent(t, env.addr, pki.ClientTLSConfig(env.pki.client, env.pki.serverCA.Pool(), testAmphoraID)))
		var p peer.Peer
		if _, err := c.GetInfo(rpcCtx(t), &agentv1.GetInfoRequest{}, grpcPeer(&p)); err != nil {
			t.Fatal(err)
		}
		return p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].SerialNumber.Text(16)
	}
	before := serial()
	next, err := env.pki.serverCA.IssueServer(testAmphoraID, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := env.client.UpdateServerCertificate(rpcCtx(t), &agentv1.UpdateServerCertificateRequest{Pem: next.CombinedPEM()})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetSerial() != next.Cert.SerialNumber.Text(16) {
		t.Fatalf("response serial %s, want %s", resp.GetSerial(), next.Cert.SerialNumber.Text(16))
	}
	if after := serial(); after == before || after != resp.GetSerial() {
		t.Fatalf("serial before %s after %s, want %s", before, after, resp.GetSerial())
	}
	// A certificate for another amphora is refused.
	wrong, err := env.pki.serverCA.IssueServer("another-amphora", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.client.UpdateServerCertificate(rpcCtx(t), &agentv1.UpdateServerCertificateRequest{Pem: wrong.CombinedPEM()})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("want InvalidArgument, got %v", err)
	}
	// A certificate with another certificate's key is refused, and the
	// agent keeps serving the pair it had.
	third, err := env.pki.serverCA.IssueServer(testAmphoraID, 3*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	thirdCert, _, err := pki.SplitCombinedPEM(third.CombinedPEM())
	if err != nil {
		t.Fatal(err)
	}
	_, nextKey, err := pki.SplitCombinedPEM(next.CombinedPEM())
	if err != nil {
		t.Fatal(err)
	}
	mismatched := append(append([]byte{}, thirdCert...), nextKey...)
	_, err = env.client.UpdateServerCertificate(rpcCtx(t), &agentv1.UpdateServerCertificateRequest{Pem: mismatched})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "do not match") {
		t.Fatalf("mismatched key: want InvalidArgument, got %v", err)
	}
	if got := serial(); got != resp.GetSerial() {
		t.Fatalf("after a refused update the agent serves %s, want %s", got, resp.GetSerial())
	}
}

func TestPlugWithRecordingPlumber(t *testing.T) {
	rec := &RecordingPlumber{Missing: map[string]bool{"fa:16:3e:00:00:99": true}}
	env := startAgent(t, Config{Plumber: rec})
	ctx := rpcCtx(t)
	vip := &agentv1.PlugVipRequest{
		VipAddress: "203.0.113.10", SubnetCidr: "203.0.113.0/24", Gateway: "203.0.113.1",
		MacAddress: "fa:16:3e:00:00:01", Mtu: 1450, VrrpIp: "203.0.113.7",
		HostRoutes: []*agentv1.HostRoute{{Destination: "10.0.0.0/8", Nexthop: "203.0.113.254"}},
	}
	r, err := env.client.PlugVip(ctx, vip)
	if err != nil {
		t.Fatal(err)
	}
	if r.GetInterface() != "eth1" {
		t.Fatalf("vip interface %q", r.GetInterface())
	}
	if _, err := env.client.PlugVip(ctx, vip); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("second PlugVip: want AlreadyExists, got %v", err)
	}
	net1 := &agentv1.PlugNetworkRequest{MacAddress: "fa:16:3e:00:00:02", Mtu: 1450,
		FixedIps: []*agentv1.FixedIp{{IpAddress: "10.0.0.12", SubnetCidr: "10.0.0.0/24"}}}
	n, err := env.client.PlugNetwork(ctx, net1)
	if err != nil || n.GetInterface() != "eth2" || n.GetUpdated() {
		t.Fatalf("PlugNetwork = %v, %v", n, err)
	}
	net1.FixedIps = append(net1.FixedIps, &agentv1.FixedIp{IpAddress: "10.0.1.12", SubnetCidr: "10.0.1.0/24"})
	if n, err = env.client.PlugNetwork(ctx, net1); err != nil || n.GetInterface() != "eth2" || !n.GetUpdated() {
		t.Fatalf("PlugNetwork update = %v, %v", n, err)
	}
	for ip, want := range map[string]string{"203.0.113.7": "eth1", "203.0.113.10": "eth1", "10.0.1.12": "eth2"} {
		got, err := env.client.GetInterface(ctx, &agentv1.GetInterfaceRequest{IpAddress: ip})
		if err != nil || got.GetInterface() != want {
			t.Fatalf("GetInterface(%s) = %v, %v; want %s", ip, got, err, want)
		}
	}
	if _, err := env.client.GetInterface(ctx, &agentv1.GetInterfaceRequest{IpAddress: "192.0.2.1"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown IP: want NotFound, got %v", err)
	}
	if _, err := env.client.GetInterface(ctx, &agentv1.GetInterfaceRequest{IpAddress: "nope"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad IP: want InvalidArgument, got %v", err)
	}
	bad := []*agentv1.PlugVipRequest{
		{VipAddress: "203.0.113.10", SubnetCidr: "203.0.113.0/24", MacAddress: "zz"},
		{VipAddress: "198.51.100.1", SubnetCidr: "203.0.113.0/24", MacAddress: "fa:16:3e:00:00:03"},
		{VipAddress: "203.0.113.10", SubnetCidr: "203.0.113.0/24", MacAddress: "fa:16:3e:00:00:03", Mtu: 10},
	}
	for _, b := range bad {
		if _, err := env.client.PlugVip(ctx, b); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("PlugVip(%v): want InvalidArgument, got %v", b, err)
		}
	}
	missing := &agentv1.PlugNetworkRequest{MacAddress: "fa:16:3e:00:00:99"}
	if _, err := env.client.PlugNetwork(ctx, missing); status.Code(err) != codes.NotFound {
		t.Fatalf("missing NIC: want NotFound, got %v", err)
	}
	d, err := env.client.GetDetails(ctx, &agentv1.GetDetailsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.GetInterfaces()) != 2 || d.GetCpuCount() < 1 || d.GetMemory().GetTotal() == 0 {
		t.Fatalf("details %v", d)
	}
}

func TestCertificates(t *testing.T) {
	env := startAgent(t, Config{})
	ctx := rpcCtx(t)
	lb := "0b8a3f6e-1111-4222-8333-444455556666"
	pemData := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	r, err := env.client.UploadCertificate(ctx, &agentv1.UploadCertificateRequest{LoadbalancerId: lb, Filename: "listener-1.pem", Pem: pemData})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetMd5() != md5Hex(pemData) || !strings.HasPrefix(r.GetPath(), env.base) {
		t.Fatalf("upload response %v", r)
	}
	for _, name := range []string{"../x.pem", "a/b.pem", "x.crt", ".pem", ""} {
		_, err := env.client.UploadCertificate(ctx, &agentv1.UploadCertificateRequest{LoadbalancerId: lb, Filename: name, Pem: pemData})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("filename %q: want InvalidArgument, got %v", name, err)
		}
	}
	if _, err := env.client.UploadCertificate(ctx, &agentv1.UploadCertificateRequest{LoadbalancerId: "../etc", Filename: "a.pem", Pem: pemData}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad lb id: want InvalidArgument, got %v", err)
	}
	for i := 0; i < 2; i++ { // idempotent
		if _, err := env.client.DeleteCertificate(ctx, &agentv1.DeleteCertificateRequest{LoadbalancerId: lb, Filename: "listener-1.pem"}); err != nil {
			t.Fatal(err)
		}
	}
}
