package templates

import (
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

type haproxyCase struct {
	name  string
	build func() LoadBalancerConfig
}

// haproxyCases is one case per feature; each has a golden file
// testdata/haproxy_<name>.golden and is validated with haproxy -c.
func haproxyCases() []haproxyCase {
	return []haproxyCase{
		{"http_basic", func() LoadBalancerConfig {
			cfg, l, _ := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
			l.InsertHeaders = map[string]string{"X-Forwarded-For": "true", "X-Forwarded-Port": "True", "X-Forwarded-Proto": "TRUE", "X-Real-IP": "true"}
			return cfg
		}},
		{"tcp", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolTCP, ProtocolTCP, AlgorithmLeastConnections, 3306)
			cfg.HealthMonitors = []*eventsv1.HealthMonitor{newMonitor(1, p, MonitorTCP)}
			return cfg
		}},
		{"https_passthrough", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolHTTPS, ProtocolHTTPS, AlgorithmSourceIP, 443)
			cfg.HealthMonitors = []*eventsv1.HealthMonitor{newMonitor(1, p, MonitorTLSHello)}
			return cfg
		}},
		{"terminated_https", func() LoadBalancerConfig {
			cfg, l, _ := simple(ProtocolTerminatedHTTPS, ProtocolHTTP, AlgorithmRoundRobin, 443)
			l.DefaultTlsContainerRef = ptr("https://barbican/v1/containers/default")
			l.SniContainerRefs = []string{"https://barbican/v1/containers/sni1", "https://barbican/v1/containers/sni2"}
			l.ClientCaTlsContainerRef = ptr("https://barbican/v1/secrets/client-ca")
			l.ClientCrlContainerRef = ptr("https://barbican/v1/secrets/client-crl")
			l.ClientAuthentication = "MANDATORY"
			l.TlsCiphers = ptr("ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256")
			l.TlsVersions = []string{"TLSv1.2", "TLSv1.3"}
			l.AlpnProtocols = []string{"h2", "http/1.1", "http/1.0"}
			l.HstsMaxAge = ptr(int64(31536000))
			l.HstsIncludeSubdomains = true
			l.HstsPreload = true
			l.InsertHeaders = map[string]string{
				"X-Forwarded-For": "true", "X-Forwarded-Port": "true", "X-Forwarded-Proto": "true",
				"X-SSL-Client-Verify": "true", "X-SSL-Client-Has-Cert": "true", "X-SSL-Client-DN": "true",
				"X-SSL-Client-CN": "true", "X-SSL-Issuer": "true", "X-SSL-Client-SHA1": "true",
				"X-SSL-Client-Not-Before": "true", "X-SSL-Client-Not-After": "true",
			}
			return cfg
		}},
		{"terminated_https_optional_auth_invalid_ciphers", func() LoadBalancerConfig {
			cfg, l, _ := simple(ProtocolTerminatedHTTPS, ProtocolHTTP, AlgorithmRoundRobin, 443)
			l.DefaultTlsContainerRef = ptr("https://barbican/v1/containers/default")
			l.ClientCaTlsContainerRef = ptr("https://barbican/v1/secrets/client-ca")
			l.ClientAuthentication = "OPTIONAL"
			l.TlsCiphers = ptr("ECDHE-RSA-AES256-GCM-SHA384; rm -rf /")
			l.TlsVersions = []string{"TLSv1.3"}
			return cfg
		}},
		{"prometheus", func() LoadBalancerConfig {
			cfg, _, _ := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
			cfg.Listeners = append(cfg.Listeners, newListener(2, ProtocolPrometheus, 9100))
			return cfg
		}},
		{"algorithm_round_robin", func() LoadBalancerConfig {
			cfg, _, _ := simple(ProtocolTCP, ProtocolTCP, AlgorithmRoundRobin, 80)
			return cfg
		}},
		{"algorithm_least_connections", func() LoadBalancerConfig {
			cfg, _, _ := simple(ProtocolTCP, ProtocolTCP, AlgorithmLeastConnections, 80)
			return cfg
		}},
		{"algorithm_source_ip", func() LoadBalancerConfig {
			cfg, _, _ := simple(ProtocolTCP, ProtocolTCP, AlgorithmSourceIP, 80)
			return cfg
		}},
		{"persistence_source_ip", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolTCP, ProtocolTCP, AlgorithmRoundRobin, 80)
			p.SessionPersistence = &eventsv1.SessionPersistence{Type: PersistenceSourceIP}
			return cfg
		}},
		{"persistence_http_cookie", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
			p.SessionPersistence = &eventsv1.SessionPersistence{Type: PersistenceHTTPCookie}
			cfg.HealthMonitors = []*eventsv1.HealthMonitor{newMonitor(1, p, MonitorHTTP)}
			return cfg
		}},
		{"persistence_app_cookie", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
			p.SessionPersistence = &eventsv1.SessionPersistence{Type: PersistenceAppCookie, CookieName: ptr("JSESSIONID")}
			return cfg
		}},
		{"monitor_http", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
			hm := newMonitor(1, p, MonitorHTTP)
			hm.HttpMethod = ptr("HEAD")
			hm.UrlPath = ptr("/healthz")
			hm.ExpectedCodes = ptr("200-204, 301,302")
			hm.HttpVersion = ptr(1.1)
			hm.DomainName = ptr("app.example.com")
			cfg.HealthMonitors = []*eventsv1.HealthMonitor{hm}
			return cfg
		}},
		{"monitor_http_1_0", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
			hm := newMonitor(1, p, MonitorHTTP)
			hm.HttpVersion = ptr(1.0)
			hm.DomainName = ptr("ignored.example.com")
			cfg.HealthMonitors = []*eventsv1.HealthMonitor{hm}
			return cfg
		}},
		{"monitor_https", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolHTTPS, ProtocolHTTPS, AlgorithmRoundRobin, 443)
			hm := newMonitor(1, p, MonitorHTTPS)
			hm.ExpectedCodes = ptr("200,202")
			cfg.HealthMonitors = []*eventsv1.HealthMonitor{hm}
			return cfg
		}},
		{"monitor_tcp", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolTCP, ProtocolTCP, AlgorithmRoundRobin, 80)
			cfg.HealthMonitors = []*eventsv1.HealthMonitor{newMonitor(1, p, MonitorTCP)}
			return cfg
		}},
		{"monitor_tls_hello", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolHTTPS, ProtocolHTTPS, AlgorithmRoundRobin, 443)
			cfg.HealthMonitors = []*eventsv1.HealthMonitor{newMonitor(1, p, MonitorTLSHello)}
			return cfg
		}},
		{"monitor_tls_hello_legacy", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolHTTPS, ProtocolHTTPS, AlgorithmRoundRobin, 443)
			cfg.HealthMonitors = []*eventsv1.HealthMonitor{newMonitor(1, p, MonitorTLSHello)}
			cfg.Settings.SSLHelloCheck = true
			return cfg
		}},
		{"monitor_ping", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolTCP, ProtocolTCP, AlgorithmRoundRobin, 80)
			cfg.HealthMonitors = []*eventsv1.HealthMonitor{newMonitor(1, p, MonitorPing)}
			return cfg
		}},
		{"monitor_disabled", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolTCP, ProtocolTCP, AlgorithmRoundRobin, 80)
			hm := newMonitor(1, p, MonitorTCP)
			hm.AdminStateUp = false
			cfg.HealthMonitors = []*eventsv1.HealthMonitor{hm}
			return cfg
		}},
		{"member_options", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
			cfg.HealthMonitors = []*eventsv1.HealthMonitor{newMonitor(1, p, MonitorHTTP)}
			backup := newMember(3, p, "192.0.2.13", 8080)
			backup.Backup = true
			disabled := newMember(4, p, "192.0.2.14", 8080)
			disabled.AdminStateUp = false
			drain := newMember(5, p, "192.0.2.15", 8080)
			drain.Weight = 0
			monitored := newMember(6, p, "192.0.2.16", 8080)
			monitored.Weight = 256
			monitored.MonitorAddress = ptr("192.0.2.116")
			monitored.MonitorPort = ptr(int32(9090))
			v6 := newMember(7, p, "2001:db8::16", 8080)
			deleting := newMember(8, p, "192.0.2.18", 8080)
			deleting.ProvisioningStatus = "PENDING_DELETE"
			cfg.Members = append(cfg.Members, backup, disabled, drain, monitored, v6, deleting)
			return cfg
		}},
		{"pool_tls", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
			p.TlsEnabled = true
			p.TlsContainerRef = ptr("https://barbican/v1/containers/pool-client")
			p.CaTlsContainerRef = ptr("https://barbican/v1/secrets/pool-ca")
			p.CrlContainerRef = ptr("https://barbican/v1/secrets/pool-crl")
			p.TlsCiphers = ptr("ECDHE-RSA-AES128-GCM-SHA256")
			p.TlsVersions = []string{"TLSv1.2", "TLSv1.3"}
			p.AlpnProtocols = []string{"h2", "http/1.1"}
			cfg.HealthMonitors = []*eventsv1.HealthMonitor{newMonitor(1, p, MonitorHTTPS)}
			return cfg
		}},
		{"pool_tls_no_ca", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
			p.TlsEnabled = true
			cfg.HealthMonitors = []*eventsv1.HealthMonitor{newMonitor(1, p, MonitorTLSHello)}
			return cfg
		}},
		{"pool_tls_ca_without_crl", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
			p.TlsEnabled = true
			p.CaTlsContainerRef = ptr("https://barbican/v1/secrets/pool-ca")
			return cfg
		}},
		{"pool_proxy_protocol", func() LoadBalancerConfig {
			cfg, _, _ := simple(ProtocolHTTP, ProtocolProxy, AlgorithmRoundRobin, 80)
			tcp := newListener(2, ProtocolTCP, 8443)
			p2 := newPool(2, ProtocolProxyV2, AlgorithmRoundRobin)
			tcp.DefaultPoolId = ptr(p2.GetId())
			tls := newListener(3, ProtocolTerminatedHTTPS, 443)
			tls.DefaultTlsContainerRef = ptr("https://barbican/v1/containers/default")
			p3 := newPool(3, ProtocolProxyV2, AlgorithmRoundRobin)
			tls.DefaultPoolId = ptr(p3.GetId())
			cfg.Listeners = append(cfg.Listeners, tcp, tls)
			cfg.Pools = append(cfg.Pools, p2, p3)
			cfg.Members = append(cfg.Members, newMember(3, p2, "192.0.2.31", 443), newMember(4, p3, "192.0.2.41", 80))
			return cfg
		}},
		{"l7_rule_host_name", func() LoadBalancerConfig {
			return ruleCase(RuleHostName, "", map[string]string{
				CompareEqualTo: "www.example.com", CompareStartsWith: "api.", CompareEndsWith: ".example.com",
				CompareContains: "example", CompareRegex: `^(www|api)\.example\.com$`,
			})
		}},
		{"l7_rule_path", func() LoadBalancerConfig {
			return ruleCase(RulePath, "", map[string]string{
				CompareEqualTo: "/index.html", CompareStartsWith: "/api/", CompareEndsWith: "/status",
				CompareContains: "admin", CompareRegex: `^/v[0-9]+/`,
			})
		}},
		{"l7_rule_file_type", func() LoadBalancerConfig {
			return ruleCase(RuleFileType, "", map[string]string{
				CompareEqualTo: "jpg", CompareRegex: `\.(png|gif)$`,
			})
		}},
		{"l7_rule_header", func() LoadBalancerConfig {
			return ruleCase(RuleHeader, "X-Tenant", map[string]string{
				CompareEqualTo: "gold customer", CompareStartsWith: "gold", CompareEndsWith: "silver",
				CompareContains: "bronze", CompareRegex: `^t[0-9]{3}\s#x$`,
			})
		}},
		{"l7_rule_cookie", func() LoadBalancerConfig {
			return ruleCase(RuleCookie, "session", map[string]string{
				CompareEqualTo: "abc", CompareStartsWith: "beta-", CompareEndsWith: "-canary",
				CompareContains: "test", CompareRegex: `^[a-f0-9]{8}$`,
			})
		}},
		{"l7_rule_ssl_conn_has_cert", func() LoadBalancerConfig {
			return ruleCase(RuleSSLConnHasCert, "", map[string]string{CompareEqualTo: "True"})
		}},
		{"l7_rule_ssl_verify_result", func() LoadBalancerConfig {
			return ruleCase(RuleSSLVerifyResult, "", map[string]string{CompareEqualTo: "0"})
		}},
		{"l7_rule_ssl_dn_field", func() LoadBalancerConfig {
			return ruleCase(RuleSSLDNField, "CN", map[string]string{
				CompareEqualTo: "client.example.com", CompareStartsWith: "client", CompareEndsWith: ".example.com",
				CompareContains: "example", CompareRegex: `^client[0-9]*\.example\.com$`,
			})
		}},
		{"l7_actions", func() LoadBalancerConfig {
			cfg, l, p2 := l7Config()
			toPool := newPolicy(1, l, ActionRedirectToPool, 1)
			toPool.RedirectPoolId = ptr(p2.GetId())
			reject := newPolicy(2, l, ActionReject, 2)
			toURL := newPolicy(3, l, ActionRedirectToURL, 3)
			toURL.RedirectUrl = ptr("https://www.example.com/moved")
			toURL.RedirectHttpCode = ptr(int32(301))
			prefix := newPolicy(4, l, ActionRedirectPrefix, 4)
			prefix.RedirectPrefix = ptr("https://secure.example.com")
			prefix.RedirectHttpCode = ptr(int32(308))
			noCode := newPolicy(5, l, ActionRedirectToURL, 5)
			noCode.RedirectUrl = ptr("http://other.example.com/")
			disabled := newPolicy(6, l, ActionReject, 6)
			disabled.AdminStateUp = false
			noRules := newPolicy(7, l, ActionReject, 7)
			badURL := newPolicy(8, l, ActionRedirectToURL, 8)
			badURL.RedirectUrl = ptr("http://evil.example.com/\r\nX: y")
			cfg.L7Policies = []*eventsv1.L7Policy{prefix, reject, toURL, toPool, noCode, disabled, noRules, badURL}
			disabledRule := newRule(10, noRules, RulePath, CompareStartsWith, "/never")
			disabledRule.AdminStateUp = false
			cfg.L7Rules = []*eventsv1.L7Rule{
				newRule(1, toPool, RulePath, CompareStartsWith, "/api"),
				newRule(2, toPool, RuleHostName, CompareEqualTo, "api.example.com"),
				newRule(3, reject, RuleHeader, CompareEqualTo, "bad-bot"),
				newRule(4, toURL, RulePath, CompareEqualTo, "/old"),
				newRule(5, prefix, RuleHostName, CompareEqualTo, "insecure.example.com"),
				newRule(6, noCode, RulePath, CompareEqualTo, "/other"),
				newRule(7, disabled, RulePath, CompareStartsWith, "/disabled"),
				newRule(8, badURL, RulePath, CompareStartsWith, "/bad"),
				disabledRule,
			}
			cfg.L7Rules[2].Key = ptr("User-Agent")
			return cfg
		}},
		{"allowed_cidrs", func() LoadBalancerConfig {
			cfg, l, _ := simple(ProtocolTCP, ProtocolTCP, AlgorithmRoundRobin, 22)
			l.AllowedCidrs = []string{"192.0.2.0/24", "198.51.100.0/24", "2001:db8::/32"}
			return cfg
		}},
		{"timeouts_connection_limit", func() LoadBalancerConfig {
			cfg, l, _ := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
			l.ConnectionLimit = 1000
			l.TimeoutClientData = 60000
			l.TimeoutMemberConnect = 3000
			l.TimeoutMemberData = 70000
			l.TimeoutTcpInspect = 1500
			tcp := newListener(2, ProtocolTCP, 8080)
			tcp.ConnectionLimit = 250
			cfg.Listeners = append(cfg.Listeners, tcp)
			return cfg
		}},
		{"active_standby", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolTCP, ProtocolTCP, AlgorithmRoundRobin, 80)
			cfg.LoadBalancer.Topology = TopologyActiveStandby
			p.SessionPersistence = &eventsv1.SessionPersistence{Type: PersistenceSourceIP}
			master := newAmphora(1, RoleMaster, "198.51.100.21", 100)
			backup := newAmphora(2, RoleBackup, "198.51.100.22", 90)
			gone := newAmphora(3, RoleBackup, "198.51.100.23", 90)
			gone.Status = "DELETED"
			cfg.Amphora = master
			cfg.Amphorae = []*eventsv1.Amphora{master, backup, gone}
			return cfg
		}},
		{"additional_vips_ipv6", func() LoadBalancerConfig {
			cfg, _, _ := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
			cfg.LoadBalancer.AdditionalVips = []*eventsv1.AdditionalVip{{IpAddress: "2001:db8:1::10"}, {IpAddress: "203.0.113.99"}}
			return cfg
		}},
		{"multi_listener_shared_pool", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
			l2 := newListener(2, ProtocolHTTP, 8080)
			l2.DefaultPoolId = ptr(p.GetId())
			disabled := newListener(3, ProtocolHTTP, 8081)
			disabled.AdminStateUp = false
			udp := newListener(4, ProtocolUDP, 53)
			cfg.Listeners = append(cfg.Listeners, l2, disabled, udp)
			return cfg
		}},
		{"disabled_pool", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
			p.AdminStateUp = false
			return cfg
		}},
		{"disabled_loadbalancer", func() LoadBalancerConfig {
			cfg, _, _ := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
			cfg.LoadBalancer.AdminStateUp = false
			return cfg
		}},
		{"no_connection_logging", func() LoadBalancerConfig {
			cfg, _, _ := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
			cfg.Settings.DisableConnectionLogging = true
			cfg.Settings.SkipAllowedCIDRs = true
			cfg.Listeners[0].AllowedCidrs = []string{"192.0.2.0/24"}
			return cfg
		}},
		{"amphora_details", func() LoadBalancerConfig {
			cfg, l, _ := simple(ProtocolTerminatedHTTPS, ProtocolHTTP, AlgorithmRoundRobin, 443)
			l.DefaultTlsContainerRef = ptr("https://barbican/v1/containers/default")
			l.ConnectionLimit = 10000
			cfg.Details = &AmphoraDetails{CPUCount: 4, ActiveTunedProfiles: "virtual-guest optimize-serial-console amphora", MemFree: 1500000, MemBuffers: 100000, MemCached: 400000}
			cfg.Settings.Group = "haproxy"
			return cfg
		}},
		{"old_haproxy", func() LoadBalancerConfig {
			cfg, _, p := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
			cfg.HealthMonitors = []*eventsv1.HealthMonitor{newMonitor(1, p, MonitorPing)}
			cfg.Listeners = append(cfg.Listeners, newListener(2, ProtocolPrometheus, 9100))
			cfg.Settings.HAProxyVersion = "1.8.8-1ubuntu0.13"
			return cfg
		}},
	}
}

type keepalivedCase struct {
	name  string
	build func() KeepalivedConfig
}

func keepalivedCases() []keepalivedCase {
	lb := func() *eventsv1.LoadBalancer {
		l := newLB()
		l.Topology = TopologyActiveStandby
		return l
	}
	amps := func() []*eventsv1.Amphora {
		return []*eventsv1.Amphora{
			newAmphora(1, RoleMaster, "198.51.100.21", 100),
			newAmphora(2, RoleBackup, "198.51.100.22", 90),
		}
	}
	vip := VIPNetwork{
		Address: "203.0.113.10", SubnetCIDR: "203.0.113.0/24", Gateway: "203.0.113.1",
		HostRoutes: []HostRoute{{Destination: "10.0.0.0/8", Nexthop: "203.0.113.254"}},
	}
	return []keepalivedCase{
		{"vrrp_master", func() KeepalivedConfig {
			a := amps()
			return KeepalivedConfig{LoadBalancer: lb(), Amphora: a[0], Amphorae: a, VIP: vip, AuthPass: "b3f0a1c"}
		}},
		{"vrrp_backup_role_priority", func() KeepalivedConfig {
			a := amps()
			a[1].VrrpPriority = 0
			a[1].VrrpInterface = ""
			a[1].VrrpId = 0
			return KeepalivedConfig{
				LoadBalancer: lb(), Amphora: a[1], Amphorae: a, VIP: vip, AuthPass: "b3f0a1c",
				Settings: KeepalivedSettings{AdvertInt: 2, CheckInterval: 3, FailCount: 4, SuccessCount: 5, GarpRefreshInterval: 10, GarpRefreshCount: 3},
			}
		}},
		{"vrrp_additional_vips_dual_stack", func() KeepalivedConfig {
			a := amps()
			return KeepalivedConfig{
				LoadBalancer: lb(), Amphora: a[0], Amphorae: a, VIP: vip, AuthPass: "b3f0a1c",
				AdditionalVIPs: []VIPNetwork{
					{Address: "2001:db8:1::10", SubnetCIDR: "2001:db8:1::/64", Gateway: "2001:db8:1::1"},
					{Address: "203.0.113.200", SubnetCIDR: "203.0.113.128/25"},
					{Address: "198.51.100.50", SubnetCIDR: "198.51.100.0/24", Gateway: "198.51.100.1"},
				},
			}
		}},
	}
}

type lvsCase struct {
	name       string
	listenerID string
	build      func() LoadBalancerConfig
}

func lvsCases() []lvsCase {
	udp := func(hmType string) LoadBalancerConfig {
		cfg, _, p := simple(ProtocolUDP, ProtocolUDP, AlgorithmRoundRobin, 53)
		for _, m := range cfg.Members {
			m.ProtocolPort = 53
		}
		if hmType != "" {
			cfg.HealthMonitors = []*eventsv1.HealthMonitor{newMonitor(1, p, hmType)}
		}
		return cfg
	}
	return []lvsCase{
		{"udp_connect", listenerID, func() LoadBalancerConfig {
			cfg := udp(MonitorUDPConnect)
			cfg.Listeners[0].ConnectionLimit = 5000
			disabled := newMember(3, cfg.Pools[0], "192.0.2.13", 53)
			disabled.AdminStateUp = false
			monitored := newMember(4, cfg.Pools[0], "192.0.2.14", 53)
			monitored.MonitorAddress = ptr("192.0.2.114")
			monitored.MonitorPort = ptr(int32(5353))
			monitored.Weight = 10
			cfg.Members = append(cfg.Members, disabled, monitored)
			return cfg
		}},
		{"udp_no_monitor_least_connections", listenerID, func() LoadBalancerConfig {
			cfg := udp("")
			cfg.Pools[0].LbAlgorithm = AlgorithmLeastConnections
			return cfg
		}},
		{"udp_source_ip_persistence_dual_stack", listenerID, func() LoadBalancerConfig {
			cfg := udp(MonitorTCP)
			cfg.Pools[0].LbAlgorithm = AlgorithmSourceIP
			cfg.Pools[0].SessionPersistence = &eventsv1.SessionPersistence{Type: PersistenceSourceIP, PersistenceTimeout: ptr(int64(120))}
			cfg.LoadBalancer.AdditionalVips = []*eventsv1.AdditionalVip{{IpAddress: "2001:db8:1::10"}}
			cfg.Members = append(cfg.Members, newMember(3, cfg.Pools[0], "2001:db8:2::5", 53))
			return cfg
		}},
		{"udp_http_monitor", listenerID, func() LoadBalancerConfig {
			cfg := udp(MonitorHTTP)
			cfg.HealthMonitors[0].UrlPath = ptr("/health")
			cfg.HealthMonitors[0].ExpectedCodes = ptr("200-202")
			return cfg
		}},
		{"sctp", listenerID, func() LoadBalancerConfig {
			cfg, l, p := simple(ProtocolSCTP, ProtocolSCTP, AlgorithmRoundRobin, 3868)
			_ = l
			cfg.HealthMonitors = []*eventsv1.HealthMonitor{newMonitor(1, p, MonitorSCTP)}
			return cfg
		}},
		{"udp_disabled_listener", listenerID, func() LoadBalancerConfig {
			cfg := udp(MonitorUDPConnect)
			cfg.Listeners[0].AdminStateUp = false
			return cfg
		}},
		{"udp_disabled_pool", listenerID, func() LoadBalancerConfig {
			cfg := udp(MonitorUDPConnect)
			cfg.Pools[0].AdminStateUp = false
			return cfg
		}},
	}
}
