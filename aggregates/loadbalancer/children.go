package loadbalancer

import (
	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

func alive(st string) bool { return st != "" && st != StatusDeleted }

func (d *decider) listener(id string) (*eventsv1.Listener, error) {
	if l := d.s.listeners[id]; l != nil && alive(l.ProvisioningStatus) {
		return l, nil
	}
	return nil, notFound("Listener", id)
}

func (d *decider) pool(id string) (*eventsv1.Pool, error) {
	if p := d.s.pools[id]; p != nil && alive(p.ProvisioningStatus) {
		return p, nil
	}
	return nil, notFound("Pool", id)
}

// mutablePool returns a pool that must be ACTIVE for member/monitor changes.
func (d *decider) mutablePool(id string) (*eventsv1.Pool, error) {
	p, err := d.pool(id)
	if err != nil {
		return nil, err
	}
	if err := d.requireMutable(); err != nil {
		return nil, err
	}
	if p.ProvisioningStatus != StatusActive {
		return nil, immutable("Pool", id)
	}
	return p, nil
}

func (d *decider) policy(id string) (*eventsv1.L7Policy, error) {
	if p := d.s.policies[id]; p != nil && alive(p.ProvisioningStatus) {
		return p, nil
	}
	return nil, notFound("L7 Policy", id)
}

func (d *decider) createListener(c CreateListener) error {
	if c.LoadBalancerID != "" && c.LoadBalancerID != d.s.lb.Id {
		return notFound("Load Balancer", c.LoadBalancerID)
	}
	if err := d.requireMutable(); err != nil {
		return err
	}
	l, err := d.buildListener(d.s.lb, c.ListenerSpec, d.s.Listeners())
	if err != nil {
		return err
	}
	if c.DefaultPoolID != nil {
		p, err := d.pool(*c.DefaultPoolID)
		if err != nil {
			return err
		}
		if err := checkCompatible(l.Protocol, p.Protocol); err != nil {
			return err
		}
		l.DefaultPoolId = proto.String(p.Id)
	}
	d.count(func(u *eventsv1.QuotaUsage) { u.Listener++ })
	if err := d.emit(&eventsv1.ListenerCreated{Listener: l}); err != nil {
		return err
	}
	return d.lockParents(nil)
}

func (d *decider) updateListener(c UpdateListener) error {
	cur, err := d.listener(c.ListenerID)
	if err != nil {
		return err
	}
	if err := d.requireMutable(); err != nil {
		return err
	}
	l := proto.CloneOf(cur)
	var f []string
	if err := firstErr(setOptString(&l.Name, c.Name, "name", 255, &f), setOptString(&l.Description, c.Description, "description", 255, &f)); err != nil {
		return err
	}
	setBool(&l.AdminStateUp, c.AdminStateUp, true, "admin_state_up", &f)
	if c.ConnectionLimit.Set && !c.ConnectionLimit.Null {
		if err := checkRange("connection_limit", c.ConnectionLimit.Value, -1, 1<<31-1); err != nil {
			return err
		}
	}
	setInt64(&l.ConnectionLimit, c.ConnectionLimit, -1, "connection_limit", &f)
	for _, t := range []struct {
		name string
		fld  F[int64]
		dst  *int64
		def  int64
	}{
		{"timeout_client_data", c.TimeoutClientData, &l.TimeoutClientData, d.cfg.TimeoutClientData},
		{"timeout_member_connect", c.TimeoutMemberConnect, &l.TimeoutMemberConnect, d.cfg.TimeoutMemberConnect},
		{"timeout_member_data", c.TimeoutMemberData, &l.TimeoutMemberData, d.cfg.TimeoutMemberData},
		{"timeout_tcp_inspect", c.TimeoutTCPInspect, &l.TimeoutTcpInspect, d.cfg.TimeoutTCPInspect},
	} {
		if t.fld.Set && !t.fld.Null {
			if err := checkRange(t.name, t.fld.Value, 0, 2073600000); err != nil {
				return err
			}
		}
		setInt64(t.dst, t.fld, t.def, t.name, &f)
	}
	if c.DefaultPoolID.Set && !c.DefaultPoolID.Null {
		p, err := d.pool(c.DefaultPoolID.Value)
		if err != nil {
			return err
		}
		if err := checkCompatible(l.Protocol, p.Protocol); err != nil {
			return err
		}
	}
	_ = setOptString(&l.DefaultPoolId, c.DefaultPoolID, "default_pool_id", 36, &f)
	for _, s := range []struct {
		name string
		fld  F[string]
		dst  **string
	}{
		{"default_tls_container_ref", c.DefaultTLSContainerRef, &l.DefaultTlsContainerRef},
		{"client_ca_tls_container_ref", c.ClientCATLSContainerRef, &l.ClientCaTlsContainerRef},
		{"client_crl_container_ref", c.ClientCRLContainerRef, &l.ClientCrlContainerRef},
	} {
		if err := setOptString(s.dst, s.fld, s.name, 255, &f); err != nil {
			return err
		}
	}
	setList(&l.SniContainerRefs, c.SNIContainerRefs, "sni_container_refs", &f)
	if c.ClientAuthentication.Set {
		v := "NONE"
		if !c.ClientAuthentication.Null {
			v = c.ClientAuthentication.Value
		}
		if err := checkEnum("client_authentication", v, clientAuthModes); err != nil {
			return err
		}
		if l.ClientAuthentication != v {
			l.ClientAuthentication = v
			f = append(f, "client_authentication")
		}
	}
	if c.InsertHeaders.Set {
		l.InsertHeaders = c.InsertHeaders.Value
		f = append(f, "insert_headers")
	}
	tls := l.Protocol == "TERMINATED_HTTPS"
	var defCiphers *string
	var defVersions, defALPN []string
	if tls {
		defCiphers, defVersions, defALPN = proto.String(d.cfg.ListenerCiphers), d.cfg.ListenerTLSVersions, d.cfg.ListenerALPN
	}
	if c.TLSCiphers.Set && c.TLSCiphers.Null {
		l.TlsCiphers = defCiphers
		f = append(f, "tls_ciphers")
	} else if err := setOptString(&l.TlsCiphers, c.TLSCiphers, "tls_ciphers", 2048, &f); err != nil {
		return err
	}
	setListDefault(&l.TlsVersions, c.TLSVersions, defVersions, "tls_versions", &f)
	setListDefault(&l.AlpnProtocols, c.ALPNProtocols, defALPN, "alpn_protocols", &f)
	setList(&l.AllowedCidrs, c.AllowedCIDRs, "allowed_cidrs", &f)
	if c.HSTSMaxAge.Set {
		if !c.HSTSMaxAge.Null && !tls {
			return validation("The HSTS feature can only be used for listeners using the TERMINATED_HTTPS protocol.")
		}
		if c.HSTSMaxAge.Null {
			l.HstsMaxAge = nil
		} else {
			l.HstsMaxAge = proto.Int64(c.HSTSMaxAge.Value)
		}
		f = append(f, "hsts_max_age")
	}
	setBool(&l.HstsIncludeSubdomains, c.HSTSIncludeSubdomains, false, "hsts_include_subdomains", &f)
	setBool(&l.HstsPreload, c.HSTSPreload, false, "hsts_preload", &f)
	setList(&l.Tags, c.Tags, "tags", &f)
	if tls && l.DefaultTlsContainerRef == nil && len(l.SniContainerRefs) == 0 {
		return validation("An SNI or default certificate container reference must be provided for TERMINATED_HTTPS listeners.")
	}
	l.ProvisioningStatus = StatusPendingUpdate
	l.UpdatedAt = d.now
	if err := d.emit(&eventsv1.ListenerUpdated{Listener: l, UpdatedFields: f}); err != nil {
		return err
	}
	return d.lockParents(nil)
}

func (d *decider) deleteListener(c DeleteListener) error {
	l := d.s.listeners[c.ListenerID]
	if l == nil {
		return notFound("Listener", c.ListenerID)
	}
	if l.ProvisioningStatus == StatusDeleted {
		return nil
	}
	if err := d.requireMutable(); err != nil {
		return err
	}
	if err := d.emit(&eventsv1.ListenerDeleteRequested{ListenerId: l.Id}); err != nil {
		return err
	}
	return d.lockParents(nil)
}

func (d *decider) createPool(c CreatePool) error {
	if c.LoadBalancerID != "" && c.LoadBalancerID != d.s.lb.Id {
		return notFound("Load Balancer", c.LoadBalancerID)
	}
	var l *eventsv1.Listener
	if c.ListenerID != "" {
		var err error
		if l, err = d.listener(c.ListenerID); err != nil {
			return err
		}
	}
	// Octavia's order: the body's validations (protocol compatibility with
	// the listener, TLS, session persistence), then the lock (409 while
	// the load balancer is not ACTIVE), then the default-pool duplicate.
	if l != nil && l.Protocol == "PROMETHEUS" {
		return invalid("Protocol PROMETHEUS listeners cannot have pools or L7 policies.")
	}
	p, err := d.buildPool(d.s.lb, c.PoolSpec, l)
	if err != nil {
		return err
	}
	if err := d.requireMutable(); err != nil {
		return err
	}
	if l != nil && l.DefaultPoolId != nil {
		return aggregates.Errorf(aggregates.KindConflict, "This listener already has a default pool")
	}
	d.count(func(u *eventsv1.QuotaUsage) { u.Pool++ })
	if err := d.emit(&eventsv1.PoolCreated{Pool: p}); err != nil {
		return err
	}
	var ls []string
	if l != nil {
		ls = []string{l.Id}
	}
	return d.lockParents(ls)
}

func (d *decider) updatePool(c UpdatePool) error {
	cur, err := d.pool(c.PoolID)
	if err != nil {
		return err
	}
	if err := d.requireMutable(); err != nil {
		return err
	}
	p := proto.CloneOf(cur)
	var f []string
	if err := firstErr(setOptString(&p.Name, c.Name, "name", 255, &f), setOptString(&p.Description, c.Description, "description", 255, &f)); err != nil {
		return err
	}
	setBool(&p.AdminStateUp, c.AdminStateUp, true, "admin_state_up", &f)
	if c.LBAlgorithm.Set {
		if c.LBAlgorithm.Null {
			return fieldErr("lb_algorithm", "None", "Mandatory field missing.")
		}
		if err := checkEnum("lb_algorithm", c.LBAlgorithm.Value, lbAlgorithms); err != nil {
			return err
		}
		if p.LbAlgorithm != c.LBAlgorithm.Value {
			p.LbAlgorithm = c.LBAlgorithm.Value
			f = append(f, "lb_algorithm")
		}
	}
	if c.SessionPersistence.Set {
		sp := c.SessionPersistence.Value
		if c.SessionPersistence.Null {
			sp = nil
		} else if sp != nil && sp.Type == "" && p.SessionPersistence != nil {
			sp = proto.CloneOf(sp)
			sp.Type = p.SessionPersistence.Type
		}
		if err := checkPersistence(p.Protocol, sp); err != nil {
			return err
		}
		p.SessionPersistence = cloneOrNil(sp)
		f = append(f, "session_persistence")
	}
	setBool(&p.TlsEnabled, c.TLSEnabled, false, "tls_enabled", &f)
	for _, s := range []struct {
		name string
		fld  F[string]
		dst  **string
	}{
		{"tls_container_ref", c.TLSContainerRef, &p.TlsContainerRef},
		{"ca_tls_container_ref", c.CATLSContainerRef, &p.CaTlsContainerRef},
		{"crl_container_ref", c.CRLContainerRef, &p.CrlContainerRef},
		{"tls_ciphers", c.TLSCiphers, &p.TlsCiphers},
	} {
		if err := setOptString(s.dst, s.fld, s.name, 2048, &f); err != nil {
			return err
		}
	}
	if p.CrlContainerRef != nil && p.CaTlsContainerRef == nil {
		return validation("A CA reference cannot be removed when a certificate revocation list is present.")
	}
	setList(&p.TlsVersions, c.TLSVersions, "tls_versions", &f)
	setList(&p.AlpnProtocols, c.ALPNProtocols, "alpn_protocols", &f)
	setList(&p.Tags, c.Tags, "tags", &f)
	p.ProvisioningStatus = StatusPendingUpdate
	p.UpdatedAt = d.now
	if err := d.emit(&eventsv1.PoolUpdated{Pool: p, UpdatedFields: f}); err != nil {
		return err
	}
	return d.lockParents(d.s.poolListeners(p.Id))
}

func (d *decider) deletePool(c DeletePool) error {
	p := d.s.pools[c.PoolID]
	if p == nil {
		return notFound("Pool", c.PoolID)
	}
	if p.ProvisioningStatus == StatusDeleted {
		return nil
	}
	if err := d.requireMutable(); err != nil {
		return err
	}
	for _, id := range sortedIDs(d.s.policies, nil) {
		if d.s.policies[id].GetRedirectPoolId() == p.Id {
			return aggregates.Errorf(aggregates.KindConflict, "Pool %s is in use by L7 policy %s", p.Id, id)
		}
	}
	ls := d.s.poolListeners(p.Id)
	if err := d.emit(&eventsv1.PoolDeleteRequested{PoolId: p.Id}); err != nil {
		return err
	}
	return d.lockParents(ls)
}

func (d *decider) memberInPool(poolID, memberID string) (*eventsv1.Member, error) {
	if _, err := d.pool(poolID); err != nil {
		return nil, err
	}
	m := d.s.members[memberID]
	if m == nil || m.PoolId != poolID {
		return nil, notFound("Member", memberID)
	}
	return m, nil
}

func (d *decider) createMember(c CreateMember) error {
	p, err := d.mutablePool(c.PoolID)
	if err != nil {
		return err
	}
	for _, o := range d.s.Members(p.Id) {
		if o.Address == c.Address && o.ProtocolPort == c.ProtocolPort {
			return duplicateMember(c.Address, c.ProtocolPort)
		}
	}
	m, err := d.buildMember(d.s.lb, p, c.MemberSpec, d.s.poolHM(p.Id) != nil)
	if err != nil {
		return err
	}
	d.count(func(u *eventsv1.QuotaUsage) { u.Member++ })
	if err := d.emit(&eventsv1.MemberCreated{Member: m}); err != nil {
		return err
	}
	return d.lockParents(d.s.poolListeners(p.Id), &eventsv1.StatusChange{Kind: kindPool, Id: p.Id})
}

func (d *decider) updateMember(c UpdateMember) error {
	cur, err := d.memberInPool(c.PoolID, c.MemberID)
	if err != nil {
		return err
	}
	if _, err := d.mutablePool(c.PoolID); err != nil {
		return err
	}
	m := proto.CloneOf(cur)
	var f []string
	if err := d.applyMemberUpdate(m, c, &f); err != nil {
		return err
	}
	m.ProvisioningStatus = StatusPendingUpdate
	m.UpdatedAt = d.now
	if err := d.emit(&eventsv1.MemberUpdated{Member: m, UpdatedFields: f}); err != nil {
		return err
	}
	return d.lockParents(d.s.poolListeners(c.PoolID), &eventsv1.StatusChange{Kind: kindPool, Id: c.PoolID})
}

func (d *decider) applyMemberUpdate(m *eventsv1.Member, c UpdateMember, f *[]string) error {
	if err := setOptString(&m.Name, c.Name, "name", 255, f); err != nil {
		return err
	}
	setBool(&m.AdminStateUp, c.AdminStateUp, true, "admin_state_up", f)
	if c.Weight.Set && !c.Weight.Null {
		if err := checkRange("weight", int64(c.Weight.Value), 0, 256); err != nil {
			return err
		}
	}
	setInt32(&m.Weight, c.Weight, 1, "weight", f)
	setBool(&m.Backup, c.Backup, false, "backup", f)
	if c.MonitorAddress.Set && !c.MonitorAddress.Null {
		if err := checkIP("monitor_address", c.MonitorAddress.Value); err != nil {
			return err
		}
	}
	_ = setOptString(&m.MonitorAddress, c.MonitorAddress, "monitor_address", 64, f)
	if c.MonitorPort.Set {
		if c.MonitorPort.Null {
			m.MonitorPort = nil
		} else {
			if err := checkRange("monitor_port", int64(c.MonitorPort.Value), 1, 65535); err != nil {
				return err
			}
			m.MonitorPort = proto.Int32(c.MonitorPort.Value)
		}
		*f = append(*f, "monitor_port")
	}
	setList(&m.Tags, c.Tags, "tags", f)
	return nil
}

func (d *decider) deleteMember(c DeleteMember) error {
	m, err := d.memberInPool(c.PoolID, c.MemberID)
	if err != nil {
		return err
	}
	if m.ProvisioningStatus == StatusDeleted {
		return nil
	}
	if _, err := d.mutablePool(c.PoolID); err != nil {
		return err
	}
	if err := d.emit(&eventsv1.MemberDeleteRequested{MemberId: m.Id}); err != nil {
		return err
	}
	return d.lockParents(d.s.poolListeners(c.PoolID), &eventsv1.StatusChange{Kind: kindPool, Id: c.PoolID})
}

func (d *decider) batchMembers(c BatchUpdateMembers) error {
	p, err := d.mutablePool(c.PoolID)
	if err != nil {
		return err
	}
	type key struct {
		addr string
		port int32
	}
	existing := map[key]*eventsv1.Member{}
	for _, m := range d.s.Members(p.Id) {
		if m.ProvisioningStatus != StatusPendingDelete {
			existing[key{m.Address, m.ProtocolPort}] = m
		}
	}
	seen := map[key]bool{}
	ev := &eventsv1.MembersBatchUpdated{PoolId: p.Id}
	hasHM := d.s.poolHM(p.Id) != nil
	for _, ms := range c.Members {
		k := key{ms.Address, ms.ProtocolPort}
		if seen[k] {
			return invalid("Member must be updated only once in the same request.")
		}
		seen[k] = true
		cur := existing[k]
		if cur == nil {
			m, err := d.buildMember(d.s.lb, p, ms, hasHM)
			if err != nil {
				return err
			}
			ev.Created = append(ev.Created, m)
			continue
		}
		m := proto.CloneOf(cur)
		var f []string
		upd := UpdateMember{Name: optField(ms.Name), AdminStateUp: optField(ms.AdminStateUp), Weight: optField(ms.Weight),
			Backup: optField(ms.Backup), MonitorAddress: optField(ms.MonitorAddress), MonitorPort: optField(ms.MonitorPort)}
		if ms.Tags != nil {
			upd.Tags = aggregates.Value(ms.Tags)
		}
		if err := d.applyMemberUpdate(m, upd, &f); err != nil {
			return err
		}
		m.ProvisioningStatus = StatusPendingUpdate
		m.UpdatedAt = d.now
		ev.Updated = append(ev.Updated, m)
	}
	if !c.AdditiveOnly {
		for _, m := range d.s.Members(p.Id) {
			if m.ProvisioningStatus != StatusPendingDelete && !seen[key{m.Address, m.ProtocolPort}] {
				ev.DeletedMemberIds = append(ev.DeletedMemberIds, m.Id)
			}
		}
	}
	if len(ev.Created)+len(ev.Updated)+len(ev.DeletedMemberIds) == 0 {
		return nil
	}
	if n := int64(len(ev.Created)); n > 0 {
		d.count(func(u *eventsv1.QuotaUsage) { u.Member += n })
	}
	if err := d.emit(ev); err != nil {
		return err
	}
	return d.lockParents(d.s.poolListeners(p.Id), &eventsv1.StatusChange{Kind: kindPool, Id: p.Id})
}

func optField[T any](p *T) F[T] {
	if p == nil {
		return F[T]{}
	}
	return aggregates.Value(*p)
}

func (d *decider) createHealthMonitor(c CreateHealthMonitor) error {
	p, err := d.pool(c.PoolID)
	if err != nil {
		return err
	}
	if _, err := d.mutablePool(c.PoolID); err != nil {
		return err
	}
	if d.s.poolHM(p.Id) != nil {
		return aggregates.Errorf(aggregates.KindConflict, "This pool already has a health monitor")
	}
	h, err := d.buildHM(d.s.lb, p, c.HealthMonitorSpec)
	if err != nil {
		return err
	}
	d.count(func(u *eventsv1.QuotaUsage) { u.HealthMonitor++ })
	if err := d.emit(&eventsv1.HealthMonitorCreated{HealthMonitor: h}); err != nil {
		return err
	}
	return d.lockParents(d.s.poolListeners(p.Id), &eventsv1.StatusChange{Kind: kindPool, Id: p.Id})
}

func (d *decider) hm(id string) (*eventsv1.HealthMonitor, error) {
	if h := d.s.hms[id]; h != nil {
		return h, nil
	}
	return nil, notFound("Health Monitor", id)
}

func (d *decider) updateHealthMonitor(c UpdateHealthMonitor) error {
	cur, err := d.hm(c.HealthMonitorID)
	if err != nil {
		return err
	}
	if _, err := d.mutablePool(cur.PoolId); err != nil {
		return err
	}
	h := proto.CloneOf(cur)
	var f []string
	if err := setOptString(&h.Name, c.Name, "name", 255, &f); err != nil {
		return err
	}
	setBool(&h.AdminStateUp, c.AdminStateUp, true, "admin_state_up", &f)
	for _, n := range []struct {
		name   string
		fld    F[int32]
		dst    *int32
		lo, hi int64
		def    int32
	}{
		{"delay", c.Delay, &h.Delay, 0, 1<<31 - 1, -1},
		{"timeout", c.Timeout, &h.Timeout, 0, 1<<31 - 1, -1},
		{"max_retries", c.MaxRetries, &h.MaxRetries, 1, 10, -1},
		{"max_retries_down", c.MaxRetriesDown, &h.MaxRetriesDown, 1, 10, 3},
	} {
		if n.fld.Set && n.fld.Null && n.def < 0 {
			return fieldErr(n.name, "None", "Mandatory field missing.")
		}
		if n.fld.Set && !n.fld.Null {
			if err := checkRange(n.name, int64(n.fld.Value), n.lo, n.hi); err != nil {
				return err
			}
		}
		setInt32(n.dst, n.fld, n.def, n.name, &f)
	}
	isHTTP := h.Type == "HTTP" || h.Type == "HTTPS"
	for _, s := range []struct {
		name string
		fld  F[string]
		dst  **string
		def  string
	}{
		{"http_method", c.HTTPMethod, &h.HttpMethod, "GET"},
		{"url_path", c.URLPath, &h.UrlPath, "/"},
		{"expected_codes", c.ExpectedCodes, &h.ExpectedCodes, "200"},
	} {
		if !s.fld.Set {
			continue
		}
		if !isHTTP {
			return invalid("%s is not a valid option for health monitors of type %s", s.name, h.Type)
		}
		v := s.fld.Value
		if s.fld.Null {
			v = s.def
		}
		if s.name == "http_method" {
			if err := checkEnum("http_method", v, httpMethods); err != nil {
				return err
			}
		}
		if s.name == "url_path" && (v == "" || v[0] != '/') {
			return invalid("Not a valid URLPath: %s", v)
		}
		if s.name == "expected_codes" && !codesList.MatchString(v) && !codesRange.MatchString(v) {
			return fieldErr("expected_codes", v, "Value should match the pattern ^(\\d{3}(\\s*,\\s*\\d{3})*)$|^(\\d{3}-\\d{3})$")
		}
		*s.dst = proto.String(v)
		f = append(f, s.name)
	}
	if c.HTTPVersion.Set {
		if c.HTTPVersion.Null {
			h.HttpVersion = nil
		} else {
			h.HttpVersion = proto.Float64(c.HTTPVersion.Value)
		}
		f = append(f, "http_version")
	}
	_ = setOptString(&h.DomainName, c.DomainName, "domain_name", 255, &f)
	if h.DomainName != nil && (h.HttpVersion == nil || *h.HttpVersion < 1.1) {
		return validation("The following parameters are incompatible: http_version (must be 1.1) and domain_name.")
	}
	setList(&h.Tags, c.Tags, "tags", &f)
	h.ProvisioningStatus = StatusPendingUpdate
	h.UpdatedAt = d.now
	if err := d.emit(&eventsv1.HealthMonitorUpdated{HealthMonitor: h, UpdatedFields: f}); err != nil {
		return err
	}
	return d.lockParents(d.s.poolListeners(h.PoolId), &eventsv1.StatusChange{Kind: kindPool, Id: h.PoolId})
}

func (d *decider) deleteHealthMonitor(c DeleteHealthMonitor) error {
	h, err := d.hm(c.HealthMonitorID)
	if err != nil {
		return err
	}
	if h.ProvisioningStatus == StatusDeleted {
		return nil
	}
	if _, err := d.mutablePool(h.PoolId); err != nil {
		return err
	}
	if err := d.emit(&eventsv1.HealthMonitorDeleteRequested{HealthMonitorId: h.Id}); err != nil {
		return err
	}
	return d.lockParents(d.s.poolListeners(h.PoolId), &eventsv1.StatusChange{Kind: kindPool, Id: h.PoolId})
}

func (d *decider) createL7Policy(c CreateL7Policy) error {
	l, err := d.listener(c.ListenerID)
	if err != nil {
		return err
	}
	if err := d.requireMutable(); err != nil {
		return err
	}
	var redirect *eventsv1.Pool
	if c.RedirectPoolID != nil {
		if redirect, err = d.pool(*c.RedirectPoolID); err != nil {
			return err
		}
	}
	p, err := d.buildPolicy(d.s.lb, l, c.L7PolicySpec, redirect)
	if err != nil {
		return err
	}
	pos := int32(1<<31 - 1)
	if c.Position != nil {
		pos = *c.Position
	}
	positions := d.s.positionsWith(l.Id, p.Id, pos)
	p.Position = positions[p.Id]
	d.count(func(u *eventsv1.QuotaUsage) { u.L7Policy++ })
	if err := d.emit(&eventsv1.L7PolicyCreated{L7Policy: p, Positions: positions}); err != nil {
		return err
	}
	return d.lockParents([]string{l.Id})
}

func (d *decider) updateL7Policy(c UpdateL7Policy) error {
	cur, err := d.policy(c.L7PolicyID)
	if err != nil {
		return err
	}
	if err := d.requireMutable(); err != nil {
		return err
	}
	p := proto.CloneOf(cur)
	var f []string
	if err := firstErr(setOptString(&p.Name, c.Name, "name", 255, &f), setOptString(&p.Description, c.Description, "description", 255, &f)); err != nil {
		return err
	}
	setBool(&p.AdminStateUp, c.AdminStateUp, true, "admin_state_up", &f)
	if c.RedirectPoolID.Set && !c.RedirectPoolID.Null && (c.RedirectURL.Set && !c.RedirectURL.Null || c.RedirectPrefix.Set && !c.RedirectPrefix.Null) {
		return invalid("Invalid L7 Policy arguments: Cannot specify redirect_pool_id and redirect_url or redirect_prefix at the same time")
	}
	_ = setOptString(&p.RedirectPoolId, c.RedirectPoolID, "redirect_pool_id", 36, &f)
	if err := firstErr(setOptString(&p.RedirectUrl, c.RedirectURL, "redirect_url", 2048, &f),
		setOptString(&p.RedirectPrefix, c.RedirectPrefix, "redirect_prefix", 2048, &f)); err != nil {
		return err
	}
	if c.RedirectHTTPCode.Set {
		if c.RedirectHTTPCode.Null {
			p.RedirectHttpCode = nil
		} else {
			p.RedirectHttpCode = proto.Int32(c.RedirectHTTPCode.Value)
		}
		f = append(f, "redirect_http_code")
	}
	switch {
	case c.Action.Set && !c.Action.Null:
		p.Action = c.Action.Value
	case c.RedirectPoolID.Set && !c.RedirectPoolID.Null:
		p.Action = "REDIRECT_TO_POOL"
	case c.RedirectURL.Set && !c.RedirectURL.Null:
		p.Action = "REDIRECT_TO_URL"
	case c.RedirectPrefix.Set && !c.RedirectPrefix.Null:
		p.Action = "REDIRECT_PREFIX"
	}
	if p.Action != cur.Action {
		f = append(f, "action")
	}
	if err := sanitizePolicy(p); err != nil {
		return err
	}
	if p.RedirectPoolId != nil {
		pool, err := d.pool(*p.RedirectPoolId)
		if err != nil {
			return err
		}
		if err := checkCompatible(d.s.listeners[p.ListenerId].Protocol, pool.Protocol); err != nil {
			return err
		}
	}
	var positions map[string]int32
	if c.Position.Set {
		pos := int32(1<<31 - 1)
		if !c.Position.Null {
			if err := checkRange("position", int64(c.Position.Value), 1, 1<<31-1); err != nil {
				return err
			}
			pos = c.Position.Value
		}
		positions = d.s.positionsWith(p.ListenerId, p.Id, pos)
		p.Position = positions[p.Id]
		f = append(f, "position")
	}
	setList(&p.Tags, c.Tags, "tags", &f)
	if len(f) == 0 {
		return invalid("Invalid update options")
	}
	p.ProvisioningStatus = StatusPendingUpdate
	p.UpdatedAt = d.now
	if err := d.emit(&eventsv1.L7PolicyUpdated{L7Policy: p, UpdatedFields: f, Positions: positions}); err != nil {
		return err
	}
	return d.lockParents([]string{p.ListenerId})
}

func (d *decider) deleteL7Policy(c DeleteL7Policy) error {
	p := d.s.policies[c.L7PolicyID]
	if p == nil {
		return notFound("L7 Policy", c.L7PolicyID)
	}
	if p.ProvisioningStatus == StatusDeleted {
		return nil
	}
	if err := d.requireMutable(); err != nil {
		return err
	}
	if err := d.emit(&eventsv1.L7PolicyDeleteRequested{L7PolicyId: p.Id}); err != nil {
		return err
	}
	return d.lockParents([]string{p.ListenerId})
}

func (d *decider) mutablePolicy(id string) (*eventsv1.L7Policy, error) {
	p, err := d.policy(id)
	if err != nil {
		return nil, err
	}
	if err := d.requireMutable(); err != nil {
		return nil, err
	}
	if p.ProvisioningStatus != StatusActive {
		return nil, immutable("L7 Policy", id)
	}
	return p, nil
}

func (d *decider) ruleOf(policyID, ruleID string) (*eventsv1.L7Rule, error) {
	if _, err := d.policy(policyID); err != nil {
		return nil, err
	}
	r := d.s.rules[ruleID]
	if r == nil || r.L7PolicyId != policyID {
		return nil, notFound("L7 Rule", ruleID)
	}
	return r, nil
}

func (d *decider) createL7Rule(c CreateL7Rule) error {
	p, err := d.mutablePolicy(c.L7PolicyID)
	if err != nil {
		return err
	}
	if len(d.s.L7Rules(p.Id)) >= MaxRulesPerPolicy {
		return aggregates.Errorf(aggregates.KindConflict, "Too many rules on L7 policy %s", p.Id)
	}
	r, err := d.buildRule(d.s.lb, p, c.L7RuleSpec)
	if err != nil {
		return err
	}
	d.count(func(u *eventsv1.QuotaUsage) { u.L7Rule++ })
	if err := d.emit(&eventsv1.L7RuleCreated{L7Rule: r}); err != nil {
		return err
	}
	return d.lockParents([]string{p.ListenerId}, &eventsv1.StatusChange{Kind: kindPolicy, Id: p.Id})
}

func (d *decider) updateL7Rule(c UpdateL7Rule) error {
	cur, err := d.ruleOf(c.L7PolicyID, c.L7RuleID)
	if err != nil {
		return err
	}
	p, err := d.mutablePolicy(c.L7PolicyID)
	if err != nil {
		return err
	}
	r := proto.CloneOf(cur)
	var f []string
	setBool(&r.AdminStateUp, c.AdminStateUp, true, "admin_state_up", &f)
	for _, s := range []struct {
		name string
		fld  F[string]
		dst  *string
	}{{"type", c.Type, &r.Type}, {"compare_type", c.CompareType, &r.CompareType}, {"value", c.Value, &r.Value}} {
		if s.fld.Set && s.fld.Null {
			return fieldErr(s.name, "None", "Mandatory field missing.")
		}
		if s.fld.Set && *s.dst != s.fld.Value {
			*s.dst = s.fld.Value
			f = append(f, s.name)
		}
	}
	_ = setOptString(&r.Key, c.Key, "key", 255, &f)
	setBool(&r.Invert, c.Invert, false, "invert", &f)
	setList(&r.Tags, c.Tags, "tags", &f)
	if err := checkRule(r.Type, r.CompareType, r.Key, r.Value); err != nil {
		return err
	}
	r.ProvisioningStatus = StatusPendingUpdate
	r.UpdatedAt = d.now
	if err := d.emit(&eventsv1.L7RuleUpdated{L7Rule: r, UpdatedFields: f}); err != nil {
		return err
	}
	return d.lockParents([]string{p.ListenerId}, &eventsv1.StatusChange{Kind: kindPolicy, Id: p.Id})
}

func (d *decider) deleteL7Rule(c DeleteL7Rule) error {
	r, err := d.ruleOf(c.L7PolicyID, c.L7RuleID)
	if err != nil {
		return err
	}
	if r.ProvisioningStatus == StatusDeleted {
		return nil
	}
	p, err := d.mutablePolicy(c.L7PolicyID)
	if err != nil {
		return err
	}
	if err := d.emit(&eventsv1.L7RuleDeleteRequested{L7RuleId: r.Id}); err != nil {
		return err
	}
	return d.lockParents([]string{p.ListenerId}, &eventsv1.StatusChange{Kind: kindPolicy, Id: p.Id})
}
