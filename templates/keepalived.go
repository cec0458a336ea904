package templates

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// vrrpView is the view model of the VRRP keepalived.conf.
type vrrpView struct {
	CheckScript   string
	CheckInterval int
	Fall          int
	Rise          int
	Name          string
	Interface     string
	RouterID      int32
	Priority      int32
	GarpRefresh   int
	GarpRepeat    int
	AdvertInt     int
	AuthPass      string
	SourceIP      string
	PeerIPs       []string
	VIPs          []string
	ExcludedVIPs  []string
	Routes        []string
	Rules         []string
}

func isIPv4(addr string) bool {
	ip := net.ParseIP(addr)
	return ip != nil && ip.To4() != nil
}

func buildVRRPView(cfg KeepalivedConfig) (*vrrpView, error) {
	if cfg.LoadBalancer == nil || cfg.LoadBalancer.GetId() == "" {
		return nil, errors.New("templates: keepalived: LoadBalancer with an id is required")
	}
	amp := cfg.Amphora
	if amp == nil {
		return nil, errors.New("templates: keepalived: Amphora is required")
	}
	if net.ParseIP(amp.GetVrrpIp()) == nil {
		return nil, fmt.Errorf("templates: keepalived: amphora %s has no valid vrrp_ip (%q)", amp.GetId(), amp.GetVrrpIp())
	}
	if cfg.AuthPass == "" || strings.ContainsAny(cfg.AuthPass, " \t\r\n\"#!") {
		return nil, errors.New("templates: keepalived: AuthPass must be a non-empty single word")
	}
	if net.ParseIP(cfg.VIP.Address) == nil {
		return nil, fmt.Errorf("templates: keepalived: invalid VIP address %q", cfg.VIP.Address)
	}
	s := cfg.Settings.withDefaults()
	if err := cfg.validate(s); err != nil {
		return nil, err
	}

	priority := amp.GetVrrpPriority()
	if priority <= 0 {
		switch amp.GetRole() {
		case RoleMaster:
			priority = PriorityMaster
		case RoleBackup:
			priority = PriorityBackup
		default:
			return nil, fmt.Errorf("templates: keepalived: amphora %s has neither a VRRP priority nor a MASTER/BACKUP role", amp.GetId())
		}
	}
	routerID := amp.GetVrrpId()
	if routerID <= 0 {
		routerID = 1
	}
	intf := amp.GetVrrpInterface()
	if intf == "" {
		intf = s.Interface
	}
	v := &vrrpView{
		CheckScript:   s.CheckScriptPath,
		CheckInterval: s.CheckInterval,
		Fall:          s.FailCount,
		Rise:          s.SuccessCount,
		Name:          strings.ReplaceAll(cfg.LoadBalancer.GetId(), "-", ""),
		Interface:     intf,
		RouterID:      routerID,
		Priority:      priority,
		GarpRefresh:   s.GarpRefreshInterval,
		GarpRepeat:    s.GarpRefreshCount,
		AdvertInt:     s.AdvertInt,
		AuthPass:      cfg.AuthPass,
		SourceIP:      amp.GetVrrpIp(),
	}
	for _, a := range cfg.Amphorae {
		if a == nil || a.GetId() == amp.GetId() || a.GetStatus() != statusAllocated || a.GetVrrpIp() == "" {
			continue
		}
		v.PeerIPs = append(v.PeerIPs, a.GetVrrpIp())
	}

	extra := append([]VIPNetwork(nil), cfg.AdditionalVIPs...)
	for _, av := range extra {
		if net.ParseIP(av.Address) == nil {
			return nil, fmt.Errorf("templates: keepalived: invalid additional VIP address %q", av.Address)
		}
	}
	sort.SliceStable(extra, func(i, j int) bool {
		return bytes.Compare(net.ParseIP(extra[i].Address).To16(), net.ParseIP(extra[j].Address).To16()) < 0
	})
	v4 := isIPv4(amp.GetVrrpIp())
	table := strconv.Itoa(s.RouteTable)
	for _, vip := range append([]VIPNetwork{cfg.VIP}, extra...) {
		if isIPv4(vip.Address) == v4 {
			v.VIPs = append(v.VIPs, vip.Address)
		} else {
			v.ExcludedVIPs = append(v.ExcludedVIPs, vip.Address)
		}
		if vip.SubnetCIDR != "" {
			v.Routes = append(v.Routes, fmt.Sprintf("%s dev %s src %s scope link table %s", vip.SubnetCIDR, intf, vip.Address, table))
		}
		if vip.Gateway != "" {
			v.Routes = append(v.Routes, fmt.Sprintf("default via %s dev %s onlink table %s", vip.Gateway, intf, table))
		}
		for _, hr := range vip.HostRoutes {
			v.Routes = append(v.Routes, fmt.Sprintf("%s via %s dev %s onlink table %s", hr.Destination, hr.Nexthop, intf, table))
		}
		prefix := "/128"
		if isIPv4(vip.Address) {
			prefix = "/32"
		}
		v.Rules = append(v.Rules, fmt.Sprintf("from %s%s table %s priority 100", vip.Address, prefix, table))
	}
	return v, nil
}

// lvsView is the view model of the keepalived LVS configuration of one
// UDP or SCTP listener.
type lvsView struct {
	LoadBalancerID string
	ListenerID     string
	Enabled        bool
	NetNamespace   string
	Groups         []lvsGroupView
}

type lvsGroupView struct {
	Name                   string
	Endpoints              []string
	Algorithm              string
	Protocol               string
	PersistenceTimeout     int64
	PersistenceGranularity string
	DelayLoop              int32
	Retry                  int32
	PoolID                 string
	PoolEnabled            bool
	MonitorID              string
	RealServers            []realServerView
	DisabledMembers        []string
}

type realServerView struct {
	MemberID   string
	Address    string
	Port       int32
	Weight     int32
	UThreshold int64
	Check      []string
}

func lvsAlgorithm(algorithm string) string {
	switch algorithm {
	case AlgorithmLeastConnections:
		return "lc"
	case AlgorithmSourceIP:
		return "sh"
	default:
		return "wrr"
	}
}

func buildLVSView(cfg LoadBalancerConfig, listenerID string) (*lvsView, error) {
	lb := cfg.LoadBalancer
	if lb == nil || lb.GetId() == "" {
		return nil, errors.New("templates: LoadBalancer with an id is required")
	}
	var l *eventsv1.Listener
	for _, x := range cfg.Listeners {
		if x != nil && x.GetId() == listenerID {
			l = x
		}
	}
	if l == nil {
		return nil, fmt.Errorf("templates: listener %s not found", listenerID)
	}
	if l.GetProtocol() != ProtocolUDP && l.GetProtocol() != ProtocolSCTP {
		return nil, fmt.Errorf("templates: listener %s is %s, not UDP or SCTP", listenerID, l.GetProtocol())
	}
	s := cfg.Settings.withDefaults()
	if err := cfg.validate(s); err != nil {
		return nil, err
	}
	ix := newIndex(&cfg)
	v := &lvsView{
		LoadBalancerID: lb.GetId(),
		ListenerID:     l.GetId(),
		Enabled:        l.GetAdminStateUp(),
		NetNamespace:   s.NetNamespace,
	}
	if !lb.GetAdminStateUp() || !l.GetAdminStateUp() || l.DefaultPoolId == nil {
		return v, nil
	}
	pool := ix.pools[l.GetDefaultPoolId()]
	if pool == nil {
		return v, nil
	}
	hm := ix.enabledMonitor(pool.GetId())

	vips := []string{lb.GetVipAddress()}
	for _, av := range lb.GetAdditionalVips() {
		vips = append(vips, av.GetIpAddress())
	}
	for _, family := range []int{4, 6} {
		g := lvsGroupView{
			Name:        fmt.Sprintf("ipv%d-group", family),
			Algorithm:   lvsAlgorithm(pool.GetLbAlgorithm()),
			Protocol:    l.GetProtocol(),
			PoolID:      pool.GetId(),
			PoolEnabled: pool.GetAdminStateUp(),
		}
		for _, a := range vips {
			if net.ParseIP(a) == nil {
				return nil, fmt.Errorf("templates: invalid VIP address %q", a)
			}
			if isIPv4(a) == (family == 4) {
				g.Endpoints = append(g.Endpoints, fmt.Sprintf("%s %d", a, l.GetProtocolPort()))
			}
		}
		if len(g.Endpoints) == 0 {
			continue
		}
		if sp := pool.GetSessionPersistence(); sp.GetType() == PersistenceSourceIP {
			g.PersistenceTimeout = 360
			if sp.PersistenceTimeout != nil && sp.GetPersistenceTimeout() > 0 {
				g.PersistenceTimeout = sp.GetPersistenceTimeout()
			}
			g.PersistenceGranularity = sp.GetPersistenceGranularity()
			if g.PersistenceGranularity == "" {
				if family == 4 {
					g.PersistenceGranularity = "255.255.255.255"
				} else {
					g.PersistenceGranularity = "128"
				}
			}
		}
		if hm != nil {
			g.MonitorID = hm.GetId()
			g.DelayLoop = hm.GetDelay()
			g.Retry = hm.GetMaxRetriesDown()
			if g.Retry <= 0 {
				g.Retry = 3
			}
		}
		if pool.GetAdminStateUp() {
			for _, m := range ix.members[pool.GetId()] {
				if isIPv4(m.GetAddress()) != (family == 4) {
					continue
				}
				if !m.GetAdminStateUp() {
					g.DisabledMembers = append(g.DisabledMembers, m.GetId())
					continue
				}
				rs := realServerView{
					MemberID: m.GetId(),
					Address:  m.GetAddress(),
					Port:     m.GetProtocolPort(),
					Weight:   m.GetWeight(),
				}
				if l.GetConnectionLimit() > 0 {
					rs.UThreshold = l.GetConnectionLimit()
				}
				rs.Check = lvsCheck(s, hm, m)
				g.RealServers = append(g.RealServers, rs)
			}
		}
		v.Groups = append(v.Groups, g)
	}
	return v, nil
}

// lvsCheck returns the check block lines of a real server.
func lvsCheck(s Settings, hm *eventsv1.HealthMonitor, m *eventsv1.Member) []string {
	if hm == nil {
		return nil
	}
	addr := m.GetAddress()
	if m.GetMonitorAddress() != "" {
		addr = m.GetMonitorAddress()
	}
	port := m.GetProtocolPort()
	if m.MonitorPort != nil && m.GetMonitorPort() > 0 {
		port = m.GetMonitorPort()
	}
	connect := []string{
		"    connect_ip " + addr,
		fmt.Sprintf("    connect_port %d", port),
		fmt.Sprintf("    connect_timeout %d", hm.GetTimeout()),
	}
	switch hm.GetType() {
	case MonitorUDPConnect:
		return []string{
			"MISC_CHECK {",
			fmt.Sprintf("    misc_path \"%s %s %d\"", s.UDPCheckScriptPath, addr, port),
			fmt.Sprintf("    misc_timeout %d", hm.GetTimeout()),
			"}",
		}
	case MonitorSCTP:
		return []string{
			"MISC_CHECK {",
			fmt.Sprintf("    misc_path \"%s sctp -t %d %s %d\"", s.SCTPCheckCommand, hm.GetTimeout(), addr, port),
			fmt.Sprintf("    misc_timeout %d", hm.GetTimeout()+1),
			"}",
		}
	case MonitorHTTP:
		if hm.HttpMethod != nil && hm.GetHttpMethod() != "GET" {
			return nil
		}
		path := hm.GetUrlPath()
		if path == "" {
			path = "/"
		}
		codes := hm.GetExpectedCodes()
		if codes == "" {
			codes = "200"
		}
		lines := []string{"HTTP_GET {"}
		for _, c := range expandExpectedCodes(codes) {
			lines = append(lines, "    url {", "        path "+path, "        status_code "+c, "    }")
		}
		lines = append(lines, connect...)
		return append(lines, "}")
	case MonitorTCP:
		lines := append([]string{"TCP_CHECK {"}, connect...)
		return append(lines, "}")
	}
	return nil
}
