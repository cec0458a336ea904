package loadbalancer

import (
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

func boolOr(p *bool, d bool) bool {
	if p == nil {
		return d
	}
	return *p
}

func int64Or(p *int64, d int64) int64 {
	if p == nil {
		return d
	}
	return *p
}

func (d *decider) createLoadBalancer(c CreateLoadBalancer) error {
	if d.s.lb != nil {
		return aggregates.Errorf(aggregates.KindConflict, "Already an entity with that specified id.")
	}
	if c.VipPortID == "" && c.VipNetworkID == "" && c.VipSubnetID == "" {
		return invalid("Validation failure: VIP must contain one of: vip_port_id, vip_network_id, vip_subnet_id.")
	}
	if err := firstErr(checkOptLen("name", c.Name, 255), checkOptLen("description", c.Description, 255)); err != nil {
		return err
	}
	if c.VipAddress != "" {
		if err := checkIP("vip_address", c.VipAddress); err != nil {
			return err
		}
	}
	id := d.s.id
	if id == "" {
		id = d.newID(c.ID)
	}
	provider, topology, vnic := c.Provider, c.Topology, c.VipVnicType
	if provider == "" {
		provider = d.cfg.Provider
	}
	if topology == "" {
		topology = d.cfg.Topology
	}
	if vnic == "" {
		vnic = "normal"
	}
	lb := &eventsv1.LoadBalancer{
		Id: id, Name: c.Name, Description: c.Description, AdminStateUp: boolOr(c.AdminStateUp, true),
		ProjectId: c.ProjectID, ProvisioningStatus: StatusPendingCreate, OperatingStatus: OperatingOffline,
		VipAddress: c.VipAddress, VipPortId: c.VipPortID, VipSubnetId: c.VipSubnetID, VipNetworkId: c.VipNetworkID,
		VipQosPolicyId: c.VipQosPolicyID, VipSgIds: slices.Clone(c.VipSgIDs), VipVnicType: vnic,
		AdditionalVips: cloneAll(c.AdditionalVips), Provider: provider, FlavorId: c.FlavorID,
		AvailabilityZone: c.AvailabilityZone, Tags: slices.Clone(c.Tags), CreatedAt: d.now, Topology: topology,
	}
	g := &graph{d: d, lb: lb, ev: &eventsv1.LoadBalancerCreated{Loadbalancer: lb}, byName: map[string]*eventsv1.Pool{}}
	if err := g.build(c); err != nil {
		return err
	}
	ev := g.ev
	d.count(func(u *eventsv1.QuotaUsage) {
		u.LoadBalancer = 1
		u.Listener = int64(len(ev.Listeners))
		u.Pool = int64(len(ev.Pools))
		u.Member = int64(len(ev.Members))
		u.HealthMonitor = int64(len(ev.HealthMonitors))
		u.L7Policy = int64(len(ev.L7Policies))
		u.L7Rule = int64(len(ev.L7Rules))
	})
	if err := d.emit(ev); err != nil {
		return err
	}
	if c.AllocatedVip != nil {
		return d.allocateVip(*c.AllocatedVip)
	}
	return nil
}

// graph builds the objects of a fully populated create.
type graph struct {
	d      *decider
	lb     *eventsv1.LoadBalancer
	ev     *eventsv1.LoadBalancerCreated
	byName map[string]*eventsv1.Pool
	specs  []PoolSpec
}

func isReference(p *PoolSpec) bool {
	return p.Protocol == "" && p.LBAlgorithm == "" && len(p.Members) == 0 && p.HealthMonitor == nil && p.ID == ""
}

func (g *graph) build(c CreateLoadBalancer) error {
	// full definitions: top-level pools, listeners' default pools and
	// policies' redirect pools that are not references
	g.specs = append(g.specs, c.Pools...)
	for _, l := range c.Listeners {
		if l.DefaultPool != nil && !isReference(l.DefaultPool) {
			g.specs = append(g.specs, *l.DefaultPool)
		}
		for _, p := range l.L7Policies {
			if p.RedirectPool != nil && !isReference(p.RedirectPool) {
				g.specs = append(g.specs, *p.RedirectPool)
			}
		}
	}
	for i := range g.specs {
		sp := &g.specs[i]
		if sp.Name == nil || *sp.Name == "" {
			if len(c.Listeners) > 0 {
				return validation("Pools must be named when creating a fully populated loadbalancer.")
			}
		} else if _, dup := g.byName[*sp.Name]; dup {
			return validation("Pool names must be unique when creating a fully populated loadbalancer.")
		}
		name := ""
		if sp.Name != nil {
			name = *sp.Name
		}
		if sp.Protocol == "" {
			return validation("Pool definition for '%s' missing required attribute: protocol", name)
		}
		if sp.LBAlgorithm == "" {
			return validation("Pool definition for '%s' missing required attribute: lb_algorithm", name)
		}
		pool, err := g.d.buildPool(g.lb, *sp, nil)
		if err != nil {
			return err
		}
		g.byName[name] = pool
		g.ev.Pools = append(g.ev.Pools, pool)
		if err := g.addPoolChildren(pool, *sp); err != nil {
			return err
		}
	}
	for _, ls := range c.Listeners {
		if err := g.addListener(ls); err != nil {
			return err
		}
	}
	return nil
}

func (g *graph) resolve(p *PoolSpec) (*eventsv1.Pool, error) {
	name := ""
	if p.Name != nil {
		name = *p.Name
	}
	pool := g.byName[name]
	if pool == nil {
		return nil, validation("Pool '%s' was referenced but no full definition was found.", name)
	}
	return pool, nil
}

func (g *graph) addPoolChildren(pool *eventsv1.Pool, sp PoolSpec) error {
	if sp.HealthMonitor != nil {
		hm, err := g.d.buildHM(g.lb, pool, *sp.HealthMonitor)
		if err != nil {
			return err
		}
		g.ev.HealthMonitors = append(g.ev.HealthMonitors, hm)
	}
	for _, ms := range sp.Members {
		for _, other := range g.ev.Members {
			if other.PoolId == pool.Id && other.Address == ms.Address && other.ProtocolPort == ms.ProtocolPort {
				return duplicateMember(ms.Address, ms.ProtocolPort)
			}
		}
		m, err := g.d.buildMember(g.lb, pool, ms, sp.HealthMonitor != nil)
		if err != nil {
			return err
		}
		g.ev.Members = append(g.ev.Members, m)
	}
	return nil
}

func (g *graph) addListener(ls ListenerSpec) error {
	l, err := g.d.buildListener(g.lb, ls, g.ev.Listeners)
	if err != nil {
		return err
	}
	if ls.DefaultPool != nil {
		pool, err := g.resolve(ls.DefaultPool)
		if err != nil {
			return err
		}
		if err := checkCompatible(l.Protocol, pool.Protocol); err != nil {
			return err
		}
		l.DefaultPoolId = proto.String(pool.Id)
	}
	g.ev.Listeners = append(g.ev.Listeners, l)
	var order []string
	for _, ps := range ls.L7Policies {
		if ps.RedirectPool != nil {
			pool, err := g.resolve(ps.RedirectPool)
			if err != nil {
				return err
			}
			ps.RedirectPoolID = proto.String(pool.Id)
		}
		var redirect *eventsv1.Pool
		if ps.RedirectPoolID != nil {
			for _, p := range g.ev.Pools {
				if p.Id == *ps.RedirectPoolID {
					redirect = p
				}
			}
			if redirect == nil {
				return notFound("Pool", *ps.RedirectPoolID)
			}
		}
		pol, err := g.d.buildPolicy(g.lb, l, ps, redirect)
		if err != nil {
			return err
		}
		at := len(order)
		if ps.Position != nil && *ps.Position >= 1 && int(*ps.Position-1) < len(order) {
			at = int(*ps.Position - 1)
		}
		order = slices.Insert(order, at, pol.Id)
		g.ev.L7Policies = append(g.ev.L7Policies, pol)
		if len(ps.Rules) > MaxRulesPerPolicy {
			return aggregates.Errorf(aggregates.KindConflict, "Too many rules on L7 policy %s", pol.Id)
		}
		for _, rs := range ps.Rules {
			r, err := g.d.buildRule(g.lb, pol, rs)
			if err != nil {
				return err
			}
			g.ev.L7Rules = append(g.ev.L7Rules, r)
		}
	}
	pos := numbered(order)
	for _, p := range g.ev.L7Policies {
		if v, ok := pos[p.Id]; ok && p.ListenerId == l.Id {
			p.Position = v
		}
	}
	return nil
}

func duplicateMember(addr string, port int32) error {
	return aggregates.Errorf(aggregates.KindConflict,
		"Another member on this pool is already using ip %s on protocol_port %d", addr, port)
}

// buildListener validates a listener spec against the other listeners and
// returns the new listener (PENDING_CREATE, OFFLINE).
func (d *decider) buildListener(lb *eventsv1.LoadBalancer, ls ListenerSpec, others []*eventsv1.Listener) (*eventsv1.Listener, error) {
	if err := firstErr(
		checkEnum("protocol", ls.Protocol, listenerProtocols),
		checkRange("protocol_port", int64(ls.ProtocolPort), 1, 65535),
		checkOptLen("name", ls.Name, 255), checkOptLen("description", ls.Description, 255),
		checkRange("connection_limit", int64Or(ls.ConnectionLimit, -1), -1, 1<<31-1),
	); err != nil {
		return nil, err
	}
	for _, t := range []struct {
		name string
		v    *int64
	}{{"timeout_client_data", ls.TimeoutClientData}, {"timeout_member_connect", ls.TimeoutMemberConnect},
		{"timeout_member_data", ls.TimeoutMemberData}, {"timeout_tcp_inspect", ls.TimeoutTCPInspect}} {
		if t.v != nil {
			if err := checkRange(t.name, *t.v, 0, 2073600000); err != nil {
				return nil, err
			}
		}
	}
	for _, o := range others {
		if o.ProvisioningStatus != StatusDeleted && o.ProtocolPort == ls.ProtocolPort && l4(o.Protocol) == l4(ls.Protocol) {
			return nil, aggregates.Errorf(aggregates.KindConflict,
				"Another Listener on this Load Balancer is already using protocol %s and protocol_port %d", ls.Protocol, ls.ProtocolPort)
		}
	}
	tlsOffload := ls.Protocol == "TERMINATED_HTTPS" || ls.Protocol == "PROMETHEUS"
	hasCert := ls.DefaultTLSContainerRef != nil || len(ls.SNIContainerRefs) > 0
	if (ls.Protocol == "UDP" || ls.Protocol == "SCTP") && (hasCert || len(ls.InsertHeaders) > 0) {
		return nil, validation("%s protocol listener does not support TLS.", ls.Protocol)
	}
	if !tlsOffload && (hasCert || ls.ClientCATLSContainerRef != nil) {
		return nil, validation("Certificate container references are not allowed on %s protocol listeners.", ls.Protocol)
	}
	if ls.Protocol == "TERMINATED_HTTPS" && !hasCert {
		return nil, validation("An SNI or default certificate container reference must be provided for TERMINATED_HTTPS listeners.")
	}
	if len(ls.InsertHeaders) > 0 && ls.Protocol != "HTTP" && ls.Protocol != "TERMINATED_HTTPS" {
		return nil, invalid("%s is not a valid option for insert-headers on a %s protocol listener.", "insert_headers", ls.Protocol)
	}
	auth := ls.ClientAuthentication
	if auth == "" {
		auth = "NONE"
	}
	if err := checkEnum("client_authentication", auth, clientAuthModes); err != nil {
		return nil, err
	}
	for _, v := range ls.TLSVersions {
		if err := checkEnum("tls_versions", v, tlsVersions); err != nil {
			return nil, err
		}
	}
	for _, v := range ls.ALPNProtocols {
		if err := checkEnum("alpn_protocols", v, alpnProtocols); err != nil {
			return nil, err
		}
	}
	if ls.HSTSMaxAge != nil && ls.Protocol != "TERMINATED_HTTPS" {
		return nil, validation("The HSTS feature can only be used for listeners using the TERMINATED_HTTPS protocol.")
	}
	if ls.Protocol == "PROMETHEUS" && (ls.DefaultPoolID != nil || ls.DefaultPool != nil || len(ls.L7Policies) > 0) {
		return nil, invalid("Protocol PROMETHEUS listeners cannot have pools or L7 policies.")
	}
	l := &eventsv1.Listener{
		Id: d.newID(ls.ID), LoadbalancerId: lb.Id, Name: ls.Name, Description: ls.Description,
		AdminStateUp: boolOr(ls.AdminStateUp, true), ProjectId: lb.ProjectId,
		ProvisioningStatus: StatusPendingCreate, OperatingStatus: OperatingOffline,
		Protocol: ls.Protocol, ProtocolPort: ls.ProtocolPort, ConnectionLimit: int64Or(ls.ConnectionLimit, -1),
		DefaultTlsContainerRef: ls.DefaultTLSContainerRef, SniContainerRefs: slices.Clone(ls.SNIContainerRefs),
		ClientCaTlsContainerRef: ls.ClientCATLSContainerRef, ClientAuthentication: auth,
		ClientCrlContainerRef: ls.ClientCRLContainerRef, InsertHeaders: ls.InsertHeaders,
		TimeoutClientData:    int64Or(ls.TimeoutClientData, d.cfg.TimeoutClientData),
		TimeoutMemberConnect: int64Or(ls.TimeoutMemberConnect, d.cfg.TimeoutMemberConnect),
		TimeoutMemberData:    int64Or(ls.TimeoutMemberData, d.cfg.TimeoutMemberData),
		TimeoutTcpInspect:    int64Or(ls.TimeoutTCPInspect, d.cfg.TimeoutTCPInspect),
		AllowedCidrs:         slices.Clone(ls.AllowedCIDRs), TlsCiphers: ls.TLSCiphers,
		TlsVersions: slices.Clone(ls.TLSVersions), AlpnProtocols: slices.Clone(ls.ALPNProtocols),
		HstsMaxAge: ls.HSTSMaxAge, HstsIncludeSubdomains: ls.HSTSIncludeSubdomains, HstsPreload: ls.HSTSPreload,
		Tags: slices.Clone(ls.Tags), CreatedAt: d.now,
	}
	if ls.Protocol == "TERMINATED_HTTPS" {
		if l.TlsCiphers == nil {
			l.TlsCiphers = proto.String(d.cfg.ListenerCiphers)
		}
		if len(l.TlsVersions) == 0 {
			l.TlsVersions = slices.Clone(d.cfg.ListenerTLSVersions)
		}
		if len(l.AlpnProtocols) == 0 {
			l.AlpnProtocols = slices.Clone(d.cfg.ListenerALPN)
		}
	}
	return l, nil
}

func (d *decider) buildPool(lb *eventsv1.LoadBalancer, ps PoolSpec, listener *eventsv1.Listener) (*eventsv1.Pool, error) {
	if err := firstErr(
		checkEnum("protocol", ps.Protocol, poolProtocols),
		checkEnum("lb_algorithm", ps.LBAlgorithm, lbAlgorithms),
		checkOptLen("name", ps.Name, 255), checkOptLen("description", ps.Description, 255),
	); err != nil {
		return nil, err
	}
	if listener != nil {
		if err := checkCompatible(listener.Protocol, ps.Protocol); err != nil {
			return nil, err
		}
	}
	if err := checkPersistence(ps.Protocol, ps.SessionPersistence); err != nil {
		return nil, err
	}
	if ps.CRLContainerRef != nil && ps.CATLSContainerRef == nil {
		return nil, validation("A CA certificate reference is required to specify a revocation list.")
	}
	p := &eventsv1.Pool{
		Id: d.newID(ps.ID), LoadbalancerId: lb.Id, Name: ps.Name, Description: ps.Description,
		AdminStateUp: boolOr(ps.AdminStateUp, true), ProjectId: lb.ProjectId,
		ProvisioningStatus: StatusPendingCreate, OperatingStatus: OperatingOffline,
		Protocol: ps.Protocol, LbAlgorithm: ps.LBAlgorithm, SessionPersistence: cloneOrNil(ps.SessionPersistence),
		TlsEnabled: ps.TLSEnabled, TlsContainerRef: ps.TLSContainerRef, CaTlsContainerRef: ps.CATLSContainerRef,
		CrlContainerRef: ps.CRLContainerRef, TlsCiphers: ps.TLSCiphers, TlsVersions: slices.Clone(ps.TLSVersions),
		AlpnProtocols: slices.Clone(ps.ALPNProtocols), Tags: slices.Clone(ps.Tags), CreatedAt: d.now,
	}
	if listener != nil {
		p.CreatedForListenerId = proto.String(listener.Id)
	}
	if ps.TLSEnabled {
		if p.TlsCiphers == nil {
			p.TlsCiphers = proto.String(d.cfg.PoolCiphers)
		}
		if len(p.TlsVersions) == 0 {
			p.TlsVersions = slices.Clone(d.cfg.PoolTLSVersions)
		}
		if len(p.AlpnProtocols) == 0 {
			p.AlpnProtocols = slices.Clone(d.cfg.PoolALPN)
		}
	}
	return p, nil
}

func checkPersistence(protocol string, sp *eventsv1.SessionPersistence) error {
	if sp == nil {
		return nil
	}
	if err := checkEnum("type", sp.Type, []string{"APP_COOKIE", "HTTP_COOKIE", "SOURCE_IP"}); err != nil {
		return err
	}
	udp := protocol == "UDP" || protocol == "SCTP"
	if udp && sp.Type != "SOURCE_IP" {
		return validation("Session persistence of type %s is not supported for %s protocol pools.", sp.Type, protocol)
	}
	if !udp && (sp.PersistenceTimeout != nil || sp.PersistenceGranularity != nil) {
		return validation("persistence_timeout and persistence_granularity is only for UDP and SCTP protocol pools.")
	}
	if sp.Type == "APP_COOKIE" && sp.GetCookieName() == "" {
		return validation("Field \"cookie_name\" must be specified when using the \"APP_COOKIE\" session persistence type.")
	}
	if sp.Type != "APP_COOKIE" && sp.CookieName != nil {
		return validation("Field \"cookie_name\" can only be specified when using the \"APP_COOKIE\" session persistence type.")
	}
	return nil
}

func (d *decider) buildMember(lb *eventsv1.LoadBalancer, pool *eventsv1.Pool, ms MemberSpec, hasHM bool) (*eventsv1.Member, error) {
	if err := firstErr(
		checkIP("address", ms.Address),
		checkRange("protocol_port", int64(ms.ProtocolPort), 1, 65535),
		checkOptLen("name", ms.Name, 255),
	); err != nil {
		return nil, err
	}
	if ms.Weight != nil {
		if err := checkRange("weight", int64(*ms.Weight), 0, 256); err != nil {
			return nil, err
		}
	}
	if ms.MonitorPort != nil {
		if err := checkRange("monitor_port", int64(*ms.MonitorPort), 1, 65535); err != nil {
			return nil, err
		}
	}
	if ms.MonitorAddress != nil {
		if err := checkIP("monitor_address", *ms.MonitorAddress); err != nil {
			return nil, err
		}
	}
	if slices.Contains(d.cfg.ReservedIPs, ms.Address) {
		return nil, invalid("%s is not a valid option for member address", ms.Address)
	}
	oper := OperatingNoMonitor
	if hasHM {
		oper = OperatingOffline
	}
	w := int32(1)
	if ms.Weight != nil {
		w = *ms.Weight
	}
	vnic := "normal"
	if ms.RequestSRIOV {
		vnic = "direct"
	}
	return &eventsv1.Member{
		Id: d.newID(ms.ID), PoolId: pool.Id, Name: ms.Name, AdminStateUp: boolOr(ms.AdminStateUp, true),
		ProjectId: lb.ProjectId, ProvisioningStatus: StatusPendingCreate, OperatingStatus: oper,
		Address: ms.Address, ProtocolPort: ms.ProtocolPort, Weight: w, Backup: boolOr(ms.Backup, false),
		SubnetId: ms.SubnetID, MonitorAddress: ms.MonitorAddress, MonitorPort: ms.MonitorPort,
		RequestSriov: ms.RequestSRIOV, VnicType: vnic, Tags: slices.Clone(ms.Tags), CreatedAt: d.now,
	}, nil
}

func (d *decider) buildHM(lb *eventsv1.LoadBalancer, pool *eventsv1.Pool, hs HealthMonitorSpec) (*eventsv1.HealthMonitor, error) {
	if err := firstErr(
		checkEnum("type", hs.Type, hmTypes),
		checkRange("delay", int64(hs.Delay), 0, 1<<31-1),
		checkRange("timeout", int64(hs.Timeout), 0, 1<<31-1),
		checkRange("max_retries", int64(hs.MaxRetries), 1, 10),
		checkOptLen("name", hs.Name, 255),
	); err != nil {
		return nil, err
	}
	down := int32(3)
	if hs.MaxRetriesDown != nil {
		down = *hs.MaxRetriesDown
		if err := checkRange("max_retries_down", int64(down), 1, 10); err != nil {
			return nil, err
		}
	}
	udp := pool.Protocol == "UDP" || pool.Protocol == "SCTP"
	if udp && !slices.Contains([]string{"UDP-CONNECT", "SCTP", "TCP", "HTTP"}, hs.Type) {
		return nil, validation("The associated pool protocol is %s, so only a UDP-CONNECT, SCTP, TCP or HTTP type health monitor is supported.", pool.Protocol)
	}
	if !udp && (hs.Type == "UDP-CONNECT" || hs.Type == "SCTP") {
		return nil, validation("The %s type is only supported for pools of type UDP/SCTP.", hs.Type)
	}
	if hs.Type == "UDP-CONNECT" && hs.Delay < d.cfg.UDPConnectMinInterval {
		return nil, validation("The request delay value %d should be larger than %d for %s health monitor type.", hs.Delay, d.cfg.UDPConnectMinInterval, hs.Type)
	}
	if hs.Type == "PING" && !d.cfg.AllowPingHealthMonitors {
		return nil, invalid("The selected %s is not allowed in this deployment: %s", "health monitor type", "PING")
	}
	isHTTP := hs.Type == "HTTP" || hs.Type == "HTTPS"
	h := &eventsv1.HealthMonitor{
		Id: d.newID(hs.ID), PoolId: pool.Id, Name: hs.Name, AdminStateUp: boolOr(hs.AdminStateUp, true),
		ProjectId: lb.ProjectId, ProvisioningStatus: StatusPendingCreate, OperatingStatus: OperatingOffline,
		Type: hs.Type, Delay: hs.Delay, Timeout: hs.Timeout, MaxRetries: hs.MaxRetries, MaxRetriesDown: down,
		HttpVersion: hs.HTTPVersion, DomainName: hs.DomainName, Tags: slices.Clone(hs.Tags), CreatedAt: d.now,
	}
	if !isHTTP {
		for _, f := range []struct {
			name string
			set  bool
		}{{"http_method", hs.HTTPMethod != nil}, {"url_path", hs.URLPath != nil}, {"expected_codes", hs.ExpectedCodes != nil}} {
			if f.set {
				return nil, invalid("%s is not a valid option for health monitors of type %s", f.name, hs.Type)
			}
		}
		return h, nil
	}
	h.HttpMethod, h.UrlPath, h.ExpectedCodes = proto.String("GET"), proto.String("/"), proto.String("200")
	if hs.HTTPMethod != nil {
		if err := checkEnum("http_method", *hs.HTTPMethod, httpMethods); err != nil {
			return nil, err
		}
		h.HttpMethod = proto.String(*hs.HTTPMethod)
	}
	if hs.URLPath != nil {
		if len(*hs.URLPath) == 0 || (*hs.URLPath)[0] != '/' {
			return nil, invalid("Not a valid URLPath: %s", *hs.URLPath)
		}
		h.UrlPath = proto.String(*hs.URLPath)
	}
	if hs.ExpectedCodes != nil {
		if !codesList.MatchString(*hs.ExpectedCodes) && !codesRange.MatchString(*hs.ExpectedCodes) {
			return nil, fieldErr("expected_codes", *hs.ExpectedCodes, "Value should match the pattern ^(\\d{3}(\\s*,\\s*\\d{3})*)$|^(\\d{3}-\\d{3})$")
		}
		h.ExpectedCodes = proto.String(*hs.ExpectedCodes)
	}
	if hs.DomainName != nil && (hs.HTTPVersion == nil || *hs.HTTPVersion < 1.1) {
		return nil, validation("The following parameters are incompatible: http_version (must be 1.1) and domain_name.")
	}
	return h, nil
}

// sanitizePolicy applies Octavia's action/argument rules to a policy.
func sanitizePolicy(p *eventsv1.L7Policy) error {
	if err := checkEnum("action", p.Action, policyActions); err != nil {
		return err
	}
	switch p.Action {
	case "REJECT":
		p.RedirectUrl, p.RedirectPoolId, p.RedirectPrefix, p.RedirectHttpCode = nil, nil, nil, nil
	case "REDIRECT_TO_URL":
		if p.RedirectUrl == nil {
			return invalid("Invalid L7 Policy arguments: redirect_url must not be None")
		}
		p.RedirectPoolId, p.RedirectPrefix = nil, nil
	case "REDIRECT_PREFIX":
		if p.RedirectPrefix == nil {
			return invalid("Invalid L7 Policy arguments: redirect_prefix must not be None")
		}
		p.RedirectPoolId, p.RedirectUrl = nil, nil
	case "REDIRECT_TO_POOL":
		if p.RedirectPoolId == nil {
			return invalid("Invalid L7 Policy arguments: redirect_pool_id or redirect_pool must not be None")
		}
		p.RedirectUrl, p.RedirectPrefix, p.RedirectHttpCode = nil, nil, nil
	}
	if p.RedirectUrl != nil || p.RedirectPrefix != nil {
		if p.RedirectHttpCode == nil {
			p.RedirectHttpCode = proto.Int32(302)
		} else if !slices.Contains(redirectCodes, *p.RedirectHttpCode) {
			return fieldErr("redirect_http_code", *p.RedirectHttpCode, "Value should be one of: 301, 302, 303, 307, 308")
		}
	}
	return nil
}

// impliedAction derives the action from the redirect arguments.
func impliedAction(ps L7PolicySpec) (string, error) {
	if ps.RedirectPoolID != nil || ps.RedirectPool != nil {
		if ps.RedirectURL != nil || ps.RedirectPrefix != nil {
			return "", invalid("Invalid L7 Policy arguments: Cannot specify redirect_pool_id and redirect_url or redirect_prefix at the same time")
		}
		return "REDIRECT_TO_POOL", nil
	}
	if ps.RedirectURL != nil {
		return "REDIRECT_TO_URL", nil
	}
	if ps.RedirectPrefix != nil {
		return "REDIRECT_PREFIX", nil
	}
	return ps.Action, nil
}

func (d *decider) buildPolicy(lb *eventsv1.LoadBalancer, l *eventsv1.Listener, ps L7PolicySpec, redirect *eventsv1.Pool) (*eventsv1.L7Policy, error) {
	if ps.Action == "" {
		return nil, invalid("Invalid L7 Policy action specified: %s", "None")
	}
	if err := firstErr(checkOptLen("name", ps.Name, 255), checkOptLen("description", ps.Description, 255)); err != nil {
		return nil, err
	}
	if ps.Position != nil {
		if err := checkRange("position", int64(*ps.Position), 1, 1<<31-1); err != nil {
			return nil, err
		}
	}
	if l.Protocol == "PROMETHEUS" {
		return nil, invalid("Protocol PROMETHEUS listeners cannot have pools or L7 policies.")
	}
	action, err := impliedAction(ps)
	if err != nil {
		return nil, err
	}
	if ps.Action != "" && action != ps.Action && ps.Action != "REJECT" {
		action = ps.Action
	}
	p := &eventsv1.L7Policy{
		Id: d.newID(ps.ID), ListenerId: l.Id, Name: ps.Name, Description: ps.Description,
		AdminStateUp: boolOr(ps.AdminStateUp, true), ProjectId: lb.ProjectId,
		ProvisioningStatus: StatusPendingCreate, OperatingStatus: OperatingOffline, Action: action,
		RedirectPoolId: ps.RedirectPoolID, RedirectUrl: ps.RedirectURL, RedirectPrefix: ps.RedirectPrefix,
		RedirectHttpCode: ps.RedirectHTTPCode, Tags: slices.Clone(ps.Tags), CreatedAt: d.now,
	}
	if err := sanitizePolicy(p); err != nil {
		return nil, err
	}
	if redirect != nil && p.RedirectPoolId != nil {
		if err := checkCompatible(l.Protocol, redirect.Protocol); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (d *decider) buildRule(lb *eventsv1.LoadBalancer, p *eventsv1.L7Policy, rs L7RuleSpec) (*eventsv1.L7Rule, error) {
	if err := checkRule(rs.Type, rs.CompareType, rs.Key, rs.Value); err != nil {
		return nil, err
	}
	return &eventsv1.L7Rule{
		Id: d.newID(rs.ID), L7PolicyId: p.Id, AdminStateUp: boolOr(rs.AdminStateUp, true), ProjectId: lb.ProjectId,
		ProvisioningStatus: StatusPendingCreate, OperatingStatus: OperatingOffline, Type: rs.Type,
		CompareType: rs.CompareType, Key: rs.Key, Value: rs.Value, Invert: rs.Invert,
		Tags: slices.Clone(rs.Tags), CreatedAt: d.now,
	}, nil
}
