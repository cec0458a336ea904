package templates

import (
	"reflect"
	"strings"
	"testing"

	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

func TestPeerNameMatchesOctavia(t *testing.T) {
	// base64(sha1(id)) without padding, computed independently.
	if got := PeerName("aaaa0007-0000-4000-8000-000000000001"); got != "spHa4tGDVXl21pHxeWIPoCWoXe8" {
		t.Fatalf("PeerName = %q", got)
	}
	if got := PeersSectionName("ab-cd-ef"); got != "abcdef_peers" {
		t.Fatalf("PeersSectionName = %q", got)
	}
}

func TestCertificatePaths(t *testing.T) {
	s := Settings{}
	if got := CrtListPath(s, "lb", "l1"); got != "/var/lib/octavia/certs/lb/l1.pem" {
		t.Errorf("CrtListPath = %q", got)
	}
	want := "/var/lib/octavia/certs/lb/466f1e89f1854306c592e3113ccc4c0aa696ec90.pem"
	if got := SecretPath(s, "lb", "https://barbican/v1/secrets/client-ca"); got != want {
		t.Errorf("SecretPath = %q, want %q", got, want)
	}
	if got := PoolCertPath(Settings{CertDir: "/c"}, "lb", "p"); got != "/c/lb/p.pem" {
		t.Errorf("PoolCertPath = %q", got)
	}
	if got := CrtList("/a.pem", "/b.pem"); got != "/a.pem\n/b.pem\n" {
		t.Errorf("CrtList = %q", got)
	}
}

func TestExpandExpectedCodes(t *testing.T) {
	cases := map[string][]string{
		"200":          {"200"},
		"200-204":      {"200", "201", "202", "203", "204"},
		"200, 202":     {"200", "202"},
		"200,301-302 ": {"200", "301", "302"},
	}
	for in, want := range cases {
		if got := expandExpectedCodes(in); !reflect.DeepEqual(got, want) {
			t.Errorf("expandExpectedCodes(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestEscapeValue(t *testing.T) {
	if got := escapeValue(`a b\c"d'e#f`); got != `a\ b\\c\"d\'e\#f` {
		t.Fatalf("escapeValue = %q", got)
	}
}

func TestTLSVersionFlags(t *testing.T) {
	if got := tlsVersionFlags([]string{"TLSv1.2", "TLSv1.3"}); got != "no-sslv3 no-tlsv10 no-tlsv11" {
		t.Errorf("got %q", got)
	}
	if got := tlsVersionFlags(nil); got != "" {
		t.Errorf("got %q", got)
	}
}

func TestHAProxyVersionFeatures(t *testing.T) {
	for in, want := range map[string]features{
		"1.5.18":            {},
		"1.8.8-1ubuntu0.13": {httpReuse: true, serverState: true},
		"2.0.33":            {httpReuse: true, serverState: true, poolALPN: true, prometheus: true},
		"2.6.12-1+deb12u4":  {httpReuse: true, serverState: true, poolALPN: true, prometheus: true, insecureFork: true},
	} {
		v, err := parseHAProxyVersion(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := featuresOf(v); got != want {
			t.Errorf("%s: %+v, want %+v", in, got, want)
		}
	}
	if _, err := parseHAProxyVersion("two"); err == nil {
		t.Error("want error for a bad version")
	}
}

func TestGlobalMaxconnIsCapped(t *testing.T) {
	cfg, l, _ := simple(ProtocolTCP, ProtocolTCP, AlgorithmRoundRobin, 80)
	l.ConnectionLimit = 900000
	l2 := newListener(2, ProtocolTCP, 81)
	l2.ConnectionLimit = 200000
	cfg.Listeners = append(cfg.Listeners, l2)
	v, err := buildHAProxyView(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v.Global.MaxConn != MaxGlobalConnections {
		t.Fatalf("maxconn = %d", v.Global.MaxConn)
	}
}

func TestGlobalMaxconnCapIsConfigurable(t *testing.T) {
	cfg, _, _ := simple(ProtocolTCP, ProtocolTCP, AlgorithmRoundRobin, 80)
	cfg.Listeners = nil // a load balancer without listeners yet
	cfg.Settings.MaxGlobalConnections = 7000
	v, err := buildHAProxyView(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v.Global.MaxConn != 7000 {
		t.Fatalf("maxconn = %d, want the configured cap 7000", v.Global.MaxConn)
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	r := newRenderer(t)
	cfg := haproxyCases()[3].build() // terminated_https: many insert_headers
	first, err := r.RenderHAProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		again, err := r.RenderHAProxy(cfg)
		if err != nil || again != first {
			t.Fatalf("render %d differs (err %v)", i, err)
		}
	}
}

func TestCertFileOverrides(t *testing.T) {
	r := newRenderer(t)
	cfg, l, p := simple(ProtocolTerminatedHTTPS, ProtocolHTTP, AlgorithmRoundRobin, 443)
	l.DefaultTlsContainerRef = ptr("ref-default")
	l.ClientCaTlsContainerRef = ptr("ref-ca")
	l.ClientAuthentication = "NONE"
	p.TlsEnabled = true
	p.TlsContainerRef = ptr("ref-client")
	cfg.Certs = CertFiles{
		CrtLists:  map[string]string{l.GetId(): "/etc/x/list"},
		Secrets:   map[string]string{"ref-ca": "/etc/x/ca.pem"},
		PoolCerts: map[string]string{p.GetId(): "/etc/x/client.pem"},
	}
	out, err := r.RenderHAProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ssl crt-list /etc/x/list ca-file /etc/x/ca.pem verify none", " ssl crt /etc/x/client.pem verify none sni ssl_fc_sni"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRejectsBadInput(t *testing.T) {
	r := newRenderer(t)
	mutations := map[string]func(*LoadBalancerConfig){
		"no load balancer":   func(c *LoadBalancerConfig) { c.LoadBalancer = nil },
		"member address":     func(c *LoadBalancerConfig) { c.Members[0].Address = "192.0.2.1\n    server x" },
		"rule value newline": func(c *LoadBalancerConfig) { c.L7Rules = []*eventsv1.L7Rule{{Id: "r", Value: "a\nb"}} },
		"header key space":   func(c *LoadBalancerConfig) { c.L7Rules = []*eventsv1.L7Rule{{Id: "r", Key: ptr("X Y")}} },
		"cookie name": func(c *LoadBalancerConfig) {
			c.Pools[0].SessionPersistence = &eventsv1.SessionPersistence{Type: PersistenceAppCookie, CookieName: ptr("a b")}
		},
		"monitor url": func(c *LoadBalancerConfig) {
			c.HealthMonitors = []*eventsv1.HealthMonitor{{Id: "h", UrlPath: ptr("/ x")}}
		},
		"expected codes": func(c *LoadBalancerConfig) {
			c.HealthMonitors = []*eventsv1.HealthMonitor{{Id: "h", ExpectedCodes: ptr("200|x")}}
		},
		"allowed cidr":    func(c *LoadBalancerConfig) { c.Listeners[0].AllowedCidrs = []string{"10.0.0.0/8 1.2.3.4"} },
		"port":            func(c *LoadBalancerConfig) { c.Listeners[0].ProtocolPort = 0 },
		"settings path":   func(c *LoadBalancerConfig) { c.Settings.BasePath = "/var/lib/oct avia" },
		"haproxy version": func(c *LoadBalancerConfig) { c.Settings.HAProxyVersion = "latest" },
		"missing VIP":     func(c *LoadBalancerConfig) { c.LoadBalancer.VipAddress = "" },
		"bad additional VIP": func(c *LoadBalancerConfig) {
			c.LoadBalancer.AdditionalVips = []*eventsv1.AdditionalVip{{IpAddress: "x"}}
		},
		"peer address":            func(c *LoadBalancerConfig) { c.Peers = []Peer{{Name: "a", Address: "nope"}} },
		"certificate path":        func(c *LoadBalancerConfig) { c.Certs.Secrets = map[string]string{"r": "/a b"} },
		"user log format newline": func(c *LoadBalancerConfig) { c.Settings.UserLogFormat = "%ci\nlisten x" },
	}
	for name, mutate := range mutations {
		cfg, _, _ := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
		mutate(&cfg)
		if _, err := r.RenderHAProxy(cfg); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestKeepalivedRejectsBadInput(t *testing.T) {
	r := newRenderer(t)
	base := keepalivedCases()[0].build
	mutations := map[string]func(*KeepalivedConfig){
		"no amphora":      func(c *KeepalivedConfig) { c.Amphora = nil },
		"no auth":         func(c *KeepalivedConfig) { c.AuthPass = "" },
		"auth with space": func(c *KeepalivedConfig) { c.AuthPass = "a b" },
		"no priority":     func(c *KeepalivedConfig) { c.Amphora.VrrpPriority = 0; c.Amphora.Role = "" },
		"bad vrrp ip":     func(c *KeepalivedConfig) { c.Amphora.VrrpIp = "x" },
		"bad vip":         func(c *KeepalivedConfig) { c.VIP.Address = "" },
		"bad route":       func(c *KeepalivedConfig) { c.VIP.HostRoutes = []HostRoute{{Destination: "10.0.0.0/8", Nexthop: "x"}} },
		"bad gateway":     func(c *KeepalivedConfig) { c.VIP.Gateway = "gw" },
		"no lb":           func(c *KeepalivedConfig) { c.LoadBalancer = nil },
	}
	for name, mutate := range mutations {
		cfg := base()
		mutate(&cfg)
		if _, err := r.RenderKeepalived(cfg); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestKeepalivedLVSRejectsBadInput(t *testing.T) {
	r := newRenderer(t)
	cfg, _, _ := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
	if _, err := r.RenderKeepalivedLVS(cfg, listenerID); err == nil {
		t.Error("HTTP listener: want an error")
	}
	if _, err := r.RenderKeepalivedLVS(cfg, "missing"); err == nil {
		t.Error("unknown listener: want an error")
	}
}

func TestUDPListenersAreNotInHAProxy(t *testing.T) {
	r := newRenderer(t)
	cfg, _, _ := simple(ProtocolUDP, ProtocolUDP, AlgorithmRoundRobin, 53)
	out, err := r.RenderHAProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "frontend") || strings.Contains(out, "backend") {
		t.Fatalf("UDP listener rendered into haproxy.cfg:\n%s", out)
	}
}
