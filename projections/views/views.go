// Package views renders Ostia's state as the Octavia v2 JSON objects the
// real Octavia API (v2.26) returns: the same field set, the same nulls, ""
// for unnamed objects, "tenant_id" next to "project_id", timestamps without
// zone and relationship lists of {"id": ...}.
//
// The gateway renders write responses with these functions from the state
// after the decision, and the projections store the very same objects, so a
// GET returns what the write returned. Every function returns the inner
// object; the caller wraps it in its envelope key ("loadbalancer", "rule",
// "statuses", ...).
package views

import (
	"sort"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/aggregates/project"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// TimeLayout is Octavia's timestamp format: ISO 8601, seconds, no zone (UTC).
const TimeLayout = "2006-01-02T15:04:05"

// Object is one rendered JSON object.
type Object = map[string]any

// FormatTime renders a time as Octavia does.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

func ts(t *timestamppb.Timestamp) any {
	if t == nil {
		return nil
	}
	return FormatTime(t.AsTime())
}

// latest renders the later of a stored timestamp and an overlay time.
func latest(t *timestamppb.Timestamp, touched time.Time) any {
	if touched.IsZero() {
		return ts(t)
	}
	if t != nil && t.AsTime().After(touched) {
		return ts(t)
	}
	return FormatTime(touched)
}

func strOrNull(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

// emptyNull renders "" as null (fields Octavia keeps NULL when unset).
func emptyNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nameOf renders an optional name or description: Octavia shows "" for null.
func nameOf(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func strList(v []string) []string {
	if v == nil {
		return []string{}
	}
	return append([]string{}, v...)
}

// listOrNull renders an empty list as null (allowed_cidrs, tls_versions,
// alpn_protocols: Octavia stores NULL for "not set").
func listOrNull(v []string) any {
	if len(v) == 0 {
		return nil
	}
	return append([]string{}, v...)
}

func refs(ids []string) []Object {
	out := make([]Object, 0, len(ids))
	for _, id := range ids {
		out = append(out, Object{"id": id})
	}
	return out
}

func int32OrNull(p *int32) any {
	if p == nil {
		return nil
	}
	return *p
}

func int64OrNull(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func zeroNull(v int32) any {
	if v == 0 {
		return nil
	}
	return v
}

// Tree renders the objects of one load balancer. Touched optionally holds,
// per object id, when an event without timestamps of its own (a status
// change) last changed the object; Octavia bumps updated_at on every row
// update, so the later of the object's updated_at and that time is shown.
// A nil Touched renders the state's own timestamps.
type Tree struct {
	State   *loadbalancer.State
	Touched map[string]time.Time

	idx *index
}

type index struct {
	lb                 *eventsv1.LoadBalancer
	listeners          []*eventsv1.Listener
	pools              []*eventsv1.Pool
	listenerByID       map[string]*eventsv1.Listener
	poolByID           map[string]*eventsv1.Pool
	memberByID         map[string]*eventsv1.Member
	hmByID             map[string]*eventsv1.HealthMonitor
	policyByID         map[string]*eventsv1.L7Policy
	ruleByID           map[string]*eventsv1.L7Rule
	membersByPool      map[string][]*eventsv1.Member
	hmByPool           map[string]*eventsv1.HealthMonitor
	policiesByListener map[string][]*eventsv1.L7Policy
	rulesByPolicy      map[string][]*eventsv1.L7Rule
	hms                []*eventsv1.HealthMonitor
	members            []*eventsv1.Member
	policies           []*eventsv1.L7Policy
	rules              []*eventsv1.L7Rule
}

func live(status string) bool { return status != loadbalancer.StatusDeleted }

// NewTree returns a renderer of the state's objects.
func NewTree(st *loadbalancer.State, touched map[string]time.Time) *Tree {
	return &Tree{State: st, Touched: touched}
}

func (t *Tree) index() *index {
	if t.idx != nil {
		return t.idx
	}
	snap := t.State.Snapshot()
	x := &index{
		lb:                 snap.GetLoadbalancer(),
		listenerByID:       map[string]*eventsv1.Listener{},
		poolByID:           map[string]*eventsv1.Pool{},
		memberByID:         map[string]*eventsv1.Member{},
		hmByID:             map[string]*eventsv1.HealthMonitor{},
		policyByID:         map[string]*eventsv1.L7Policy{},
		ruleByID:           map[string]*eventsv1.L7Rule{},
		membersByPool:      map[string][]*eventsv1.Member{},
		hmByPool:           map[string]*eventsv1.HealthMonitor{},
		policiesByListener: map[string][]*eventsv1.L7Policy{},
		rulesByPolicy:      map[string][]*eventsv1.L7Rule{},
	}
	for _, l := range snap.GetListeners() {
		if live(l.ProvisioningStatus) {
			x.listeners = append(x.listeners, l)
			x.listenerByID[l.Id] = l
		}
	}
	for _, p := range snap.GetPools() {
		if live(p.ProvisioningStatus) {
			x.pools = append(x.pools, p)
			x.poolByID[p.Id] = p
		}
	}
	for _, m := range snap.GetMembers() {
		if live(m.ProvisioningStatus) {
			x.members = append(x.members, m)
			x.memberByID[m.Id] = m
			x.membersByPool[m.PoolId] = append(x.membersByPool[m.PoolId], m)
		}
	}
	for _, h := range snap.GetHealthMonitors() {
		if live(h.ProvisioningStatus) {
			x.hms = append(x.hms, h)
			x.hmByID[h.Id] = h
			if x.hmByPool[h.PoolId] == nil {
				x.hmByPool[h.PoolId] = h
			}
		}
	}
	for _, p := range snap.GetL7Policies() {
		if live(p.ProvisioningStatus) {
			x.policies = append(x.policies, p)
			x.policyByID[p.Id] = p
			x.policiesByListener[p.ListenerId] = append(x.policiesByListener[p.ListenerId], p)
		}
	}
	for _, ps := range x.policiesByListener {
		sort.SliceStable(ps, func(i, j int) bool { return ps[i].Position < ps[j].Position })
	}
	for _, r := range snap.GetL7Rules() {
		if live(r.ProvisioningStatus) {
			x.rules = append(x.rules, r)
			x.ruleByID[r.Id] = r
			x.rulesByPolicy[r.L7PolicyId] = append(x.rulesByPolicy[r.L7PolicyId], r)
		}
	}
	t.idx = x
	return x
}

func (t *Tree) touched(id string) time.Time {
	if t.Touched == nil {
		return time.Time{}
	}
	return t.Touched[id]
}

// Exists reports whether the load balancer exists and is not DELETED.
func (t *Tree) Exists() bool { return t.State != nil && t.State.Exists() }

// LoadBalancerIDs, ListenerIDs, ... list the ids of the live objects.
func (t *Tree) ListenerIDs() []string { return idsOf(t.index().listeners, (*eventsv1.Listener).GetId) }

// PoolIDs lists the live pools.
func (t *Tree) PoolIDs() []string { return idsOf(t.index().pools, (*eventsv1.Pool).GetId) }

// MemberIDs lists the live members.
func (t *Tree) MemberIDs() []string { return idsOf(t.index().members, (*eventsv1.Member).GetId) }

// HealthMonitorIDs lists the live health monitors.
func (t *Tree) HealthMonitorIDs() []string {
	return idsOf(t.index().hms, (*eventsv1.HealthMonitor).GetId)
}

// L7PolicyIDs lists the live L7 policies.
func (t *Tree) L7PolicyIDs() []string { return idsOf(t.index().policies, (*eventsv1.L7Policy).GetId) }

// L7RuleIDs lists the live L7 rules.
func (t *Tree) L7RuleIDs() []string { return idsOf(t.index().rules, (*eventsv1.L7Rule).GetId) }

func idsOf[M any](ms []M, id func(M) string) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, id(m))
	}
	return out
}

// LoadBalancer renders the load balancer; nil when it does not exist.
func (t *Tree) LoadBalancer() Object {
	x := t.index()
	lb := x.lb
	if lb == nil || !live(lb.ProvisioningStatus) {
		return nil
	}
	provider := lb.Provider
	if provider == "" {
		provider = "octavia"
	}
	vips := make([]Object, 0, len(lb.AdditionalVips))
	for _, v := range lb.AdditionalVips {
		vips = append(vips, Object{"subnet_id": v.SubnetId, "ip_address": emptyNull(v.IpAddress), "port_id": emptyNull(v.PortId)})
	}
	return Object{
		"id":                  lb.Id,
		"name":                nameOf(lb.Name),
		"description":         nameOf(lb.Description),
		"provisioning_status": lb.ProvisioningStatus,
		"operating_status":    lb.OperatingStatus,
		"admin_state_up":      lb.AdminStateUp,
		"project_id":          lb.ProjectId,
		"tenant_id":           lb.ProjectId,
		"created_at":          ts(lb.CreatedAt),
		"updated_at":          latest(lb.UpdatedAt, t.touched(lb.Id)),
		"vip_address":         emptyNull(lb.VipAddress),
		"vip_port_id":         emptyNull(lb.VipPortId),
		"vip_subnet_id":       emptyNull(lb.VipSubnetId),
		"vip_network_id":      emptyNull(lb.VipNetworkId),
		"vip_qos_policy_id":   strOrNull(lb.VipQosPolicyId),
		"additional_vips":     vips,
		"listeners":           refs(t.ListenerIDs()),
		"pools":               refs(t.PoolIDs()),
		"provider":            provider,
		"flavor_id":           strOrNull(lb.FlavorId),
		"availability_zone":   strOrNull(lb.AvailabilityZone),
		"tags":                strList(lb.Tags),
	}
}

// Listener renders a listener; nil when unknown.
func (t *Tree) Listener(id string) Object {
	x := t.index()
	l := x.listenerByID[id]
	if l == nil {
		return nil
	}
	headers := map[string]string{}
	for k, v := range l.InsertHeaders {
		headers[k] = v
	}
	clientAuth := l.ClientAuthentication
	if clientAuth == "" {
		clientAuth = "NONE"
	}
	var defaultPool any
	if l.DefaultPoolId != nil && x.poolByID[*l.DefaultPoolId] != nil {
		defaultPool = *l.DefaultPoolId
	}
	return Object{
		"id":                          l.Id,
		"name":                        nameOf(l.Name),
		"description":                 nameOf(l.Description),
		"provisioning_status":         l.ProvisioningStatus,
		"operating_status":            l.OperatingStatus,
		"admin_state_up":              l.AdminStateUp,
		"protocol":                    l.Protocol,
		"protocol_port":               l.ProtocolPort,
		"connection_limit":            l.ConnectionLimit,
		"default_tls_container_ref":   strOrNull(l.DefaultTlsContainerRef),
		"sni_container_refs":          strList(l.SniContainerRefs),
		"project_id":                  l.ProjectId,
		"tenant_id":                   l.ProjectId,
		"default_pool_id":             defaultPool,
		"l7policies":                  refs(idsOf(x.policiesByListener[l.Id], (*eventsv1.L7Policy).GetId)),
		"insert_headers":              headers,
		"created_at":                  ts(l.CreatedAt),
		"updated_at":                  latest(l.UpdatedAt, t.touched(l.Id)),
		"loadbalancers":               refs([]string{l.LoadbalancerId}),
		"timeout_client_data":         l.TimeoutClientData,
		"timeout_member_connect":      l.TimeoutMemberConnect,
		"timeout_member_data":         l.TimeoutMemberData,
		"timeout_tcp_inspect":         l.TimeoutTcpInspect,
		"tags":                        strList(l.Tags),
		"client_ca_tls_container_ref": strOrNull(l.ClientCaTlsContainerRef),
		"client_authentication":       clientAuth,
		"client_crl_container_ref":    strOrNull(l.ClientCrlContainerRef),
		"allowed_cidrs":               listOrNull(l.AllowedCidrs),
		"tls_ciphers":                 strOrNull(l.TlsCiphers),
		"tls_versions":                listOrNull(l.TlsVersions),
		"alpn_protocols":              listOrNull(l.AlpnProtocols),
	}
}

// poolListeners is Octavia's Pool.listeners: listeners with the pool as
// default pool, then listeners of enabled L7 policies with rules that
// redirect to it; sorted by id.
func (x *index) poolListeners(poolID string) []string {
	set := map[string]bool{}
	for _, l := range x.listeners {
		if l.GetDefaultPoolId() == poolID {
			set[l.Id] = true
		}
	}
	for _, p := range x.policies {
		if p.GetRedirectPoolId() == poolID && p.AdminStateUp && len(x.rulesByPolicy[p.Id]) > 0 && x.listenerByID[p.ListenerId] != nil {
			set[p.ListenerId] = true
		}
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Pool renders a pool; nil when unknown.
func (t *Tree) Pool(id string) Object {
	x := t.index()
	p := x.poolByID[id]
	if p == nil {
		return nil
	}
	var sp any
	if s := p.SessionPersistence; s != nil && s.Type != "" {
		sp = Object{
			"type":                    s.Type,
			"cookie_name":             strOrNull(s.CookieName),
			"persistence_timeout":     int64OrNull(s.PersistenceTimeout),
			"persistence_granularity": strOrNull(s.PersistenceGranularity),
		}
	}
	o := Object{
		"id":                   p.Id,
		"name":                 nameOf(p.Name),
		"description":          nameOf(p.Description),
		"provisioning_status":  p.ProvisioningStatus,
		"operating_status":     p.OperatingStatus,
		"admin_state_up":       p.AdminStateUp,
		"protocol":             p.Protocol,
		"lb_algorithm":         p.LbAlgorithm,
		"session_persistence":  sp,
		"project_id":           p.ProjectId,
		"tenant_id":            p.ProjectId,
		"loadbalancers":        refs([]string{p.LoadbalancerId}),
		"listeners":            refs(x.poolListeners(p.Id)),
		"created_at":           ts(p.CreatedAt),
		"updated_at":           latest(p.UpdatedAt, t.touched(p.Id)),
		"members":              refs(idsOf(x.membersByPool[p.Id], (*eventsv1.Member).GetId)),
		"tags":                 strList(p.Tags),
		"tls_container_ref":    strOrNull(p.TlsContainerRef),
		"ca_tls_container_ref": strOrNull(p.CaTlsContainerRef),
		"crl_container_ref":    strOrNull(p.CrlContainerRef),
		"tls_enabled":          p.TlsEnabled,
		"tls_ciphers":          strOrNull(p.TlsCiphers),
		"tls_versions":         listOrNull(p.TlsVersions),
		"alpn_protocols":       listOrNull(p.AlpnProtocols),
	}
	// Octavia leaves healthmonitor_id out (not null) when there is none.
	if h := x.hmByPool[p.Id]; h != nil {
		o["healthmonitor_id"] = h.Id
	}
	return o
}

// Member renders a member; nil when unknown.
func (t *Tree) Member(id string) Object {
	m := t.index().memberByID[id]
	if m == nil {
		return nil
	}
	return Object{
		"id":                  m.Id,
		"name":                nameOf(m.Name),
		"operating_status":    m.OperatingStatus,
		"provisioning_status": m.ProvisioningStatus,
		"admin_state_up":      m.AdminStateUp,
		"address":             m.Address,
		"protocol_port":       m.ProtocolPort,
		"weight":              m.Weight,
		"backup":              m.Backup,
		"subnet_id":           strOrNull(m.SubnetId),
		"project_id":          m.ProjectId,
		"tenant_id":           m.ProjectId,
		"created_at":          ts(m.CreatedAt),
		"updated_at":          latest(m.UpdatedAt, t.touched(m.Id)),
		"monitor_address":     strOrNull(m.MonitorAddress),
		"monitor_port":        int32OrNull(m.MonitorPort),
		"tags":                strList(m.Tags),
	}
}

// HealthMonitor renders a health monitor; nil when unknown.
func (t *Tree) HealthMonitor(id string) Object {
	h := t.index().hmByID[id]
	if h == nil {
		return nil
	}
	var httpVersion any
	if h.HttpVersion != nil {
		httpVersion = *h.HttpVersion
	}
	return Object{
		"id":                  h.Id,
		"name":                nameOf(h.Name),
		"type":                h.Type,
		"delay":               h.Delay,
		"timeout":             h.Timeout,
		"max_retries":         h.MaxRetries,
		"max_retries_down":    h.MaxRetriesDown,
		"http_method":         strOrNull(h.HttpMethod),
		"url_path":            strOrNull(h.UrlPath),
		"expected_codes":      strOrNull(h.ExpectedCodes),
		"admin_state_up":      h.AdminStateUp,
		"project_id":          h.ProjectId,
		"tenant_id":           h.ProjectId,
		"pools":               refs([]string{h.PoolId}),
		"provisioning_status": h.ProvisioningStatus,
		"operating_status":    h.OperatingStatus,
		"created_at":          ts(h.CreatedAt),
		"updated_at":          latest(h.UpdatedAt, t.touched(h.Id)),
		"tags":                strList(h.Tags),
		"http_version":        httpVersion,
		"domain_name":         strOrNull(h.DomainName),
	}
}

// L7Policy renders an L7 policy; nil when unknown.
func (t *Tree) L7Policy(id string) Object {
	x := t.index()
	p := x.policyByID[id]
	if p == nil {
		return nil
	}
	return Object{
		"id":                  p.Id,
		"name":                nameOf(p.Name),
		"description":         nameOf(p.Description),
		"provisioning_status": p.ProvisioningStatus,
		"operating_status":    p.OperatingStatus,
		"admin_state_up":      p.AdminStateUp,
		"project_id":          p.ProjectId,
		"tenant_id":           p.ProjectId,
		"action":              p.Action,
		"listener_id":         p.ListenerId,
		"redirect_pool_id":    strOrNull(p.RedirectPoolId),
		"redirect_url":        strOrNull(p.RedirectUrl),
		"redirect_prefix":     strOrNull(p.RedirectPrefix),
		"redirect_http_code":  int32OrNull(p.RedirectHttpCode),
		"position":            p.Position,
		"rules":               refs(idsOf(x.rulesByPolicy[p.Id], (*eventsv1.L7Rule).GetId)),
		"created_at":          ts(p.CreatedAt),
		"updated_at":          latest(p.UpdatedAt, t.touched(p.Id)),
		"tags":                strList(p.Tags),
	}
}

// L7Rule renders an L7 rule (envelope key "rule"); nil when unknown.
func (t *Tree) L7Rule(id string) Object {
	r := t.index().ruleByID[id]
	if r == nil {
		return nil
	}
	return Object{
		"id":                  r.Id,
		"type":                r.Type,
		"compare_type":        r.CompareType,
		"key":                 strOrNull(r.Key),
		"value":               r.Value,
		"invert":              r.Invert,
		"provisioning_status": r.ProvisioningStatus,
		"operating_status":    r.OperatingStatus,
		"created_at":          ts(r.CreatedAt),
		"updated_at":          latest(r.UpdatedAt, t.touched(r.Id)),
		"project_id":          r.ProjectId,
		"tenant_id":           r.ProjectId,
		"admin_state_up":      r.AdminStateUp,
		"tags":                strList(r.Tags),
	}
}

// StatusTree renders GET /loadbalancers/{id}/status (the value of
// "statuses"); nil when the load balancer does not exist.
func (t *Tree) StatusTree() Object {
	x := t.index()
	lb := x.lb
	if lb == nil || !live(lb.ProvisioningStatus) {
		return nil
	}
	listeners := make([]Object, 0, len(x.listeners))
	for _, l := range x.listeners {
		var poolIDs []string
		seen := map[string]bool{}
		if d := l.GetDefaultPoolId(); d != "" && x.poolByID[d] != nil {
			poolIDs = append(poolIDs, d)
			seen[d] = true
		}
		for _, p := range x.policiesByListener[l.Id] {
			rp := p.GetRedirectPoolId()
			if rp == "" || seen[rp] || x.poolByID[rp] == nil || !p.AdminStateUp || len(x.rulesByPolicy[p.Id]) == 0 {
				continue
			}
			poolIDs = append(poolIDs, rp)
			seen[rp] = true
		}
		pools := make([]Object, 0, len(poolIDs))
		for _, pid := range poolIDs {
			p := x.poolByID[pid]
			members := make([]Object, 0, len(x.membersByPool[pid]))
			for _, m := range x.membersByPool[pid] {
				members = append(members, Object{
					"id": m.Id, "name": nameOf(m.Name), "provisioning_status": m.ProvisioningStatus,
					"operating_status": m.OperatingStatus, "address": m.Address, "protocol_port": m.ProtocolPort,
				})
			}
			po := Object{"id": p.Id, "name": nameOf(p.Name), "provisioning_status": p.ProvisioningStatus,
				"operating_status": p.OperatingStatus, "members": members}
			if h := x.hmByPool[pid]; h != nil {
				po["health_monitor"] = Object{"id": h.Id, "name": nameOf(h.Name), "type": h.Type,
					"provisioning_status": h.ProvisioningStatus, "operating_status": h.OperatingStatus}
			}
			pools = append(pools, po)
		}
		listeners = append(listeners, Object{"id": l.Id, "name": nameOf(l.Name),
			"provisioning_status": l.ProvisioningStatus, "operating_status": l.OperatingStatus, "pools": pools})
	}
	return Object{"loadbalancer": Object{"id": lb.Id, "name": nameOf(lb.Name),
		"provisioning_status": lb.ProvisioningStatus, "operating_status": lb.OperatingStatus, "listeners": listeners}}
}

// LoadBalancer renders a load balancer from its state (nil when it does not
// exist).
func LoadBalancer(st *loadbalancer.State) Object { return NewTree(st, nil).LoadBalancer() }

// Listener renders one listener of a load balancer's state.
func Listener(st *loadbalancer.State, id string) Object { return NewTree(st, nil).Listener(id) }

// Pool renders one pool of a load balancer's state.
func Pool(st *loadbalancer.State, id string) Object { return NewTree(st, nil).Pool(id) }

// Member renders one member of a load balancer's state.
func Member(st *loadbalancer.State, id string) Object { return NewTree(st, nil).Member(id) }

// HealthMonitor renders one health monitor of a load balancer's state.
func HealthMonitor(st *loadbalancer.State, id string) Object {
	return NewTree(st, nil).HealthMonitor(id)
}

// L7Policy renders one L7 policy of a load balancer's state.
func L7Policy(st *loadbalancer.State, id string) Object { return NewTree(st, nil).L7Policy(id) }

// L7Rule renders one L7 rule of a load balancer's state (key "rule").
func L7Rule(st *loadbalancer.State, id string) Object { return NewTree(st, nil).L7Rule(id) }

// StatusTree renders the status tree of a load balancer (key "statuses").
func StatusTree(st *loadbalancer.State) Object { return NewTree(st, nil).StatusTree() }

// FullLoadBalancer renders the 201 response of a load-balancer create:
// Octavia expands listeners and pools there (fully populated graph).
func FullLoadBalancer(st *loadbalancer.State) Object {
	t := NewTree(st, nil)
	o := t.LoadBalancer()
	if o == nil {
		return nil
	}
	listeners := make([]Object, 0)
	for _, id := range t.ListenerIDs() {
		l := t.Listener(id)
		pols := make([]Object, 0)
		for _, pid := range idsOf(t.index().policiesByListener[id], (*eventsv1.L7Policy).GetId) {
			p := t.L7Policy(pid)
			rules := make([]Object, 0)
			for _, r := range t.index().rulesByPolicy[pid] {
				rules = append(rules, t.L7Rule(r.Id))
			}
			p["rules"] = rules
			pols = append(pols, p)
		}
		l["l7policies"] = pols
		listeners = append(listeners, l)
	}
	pools := make([]Object, 0)
	for _, id := range t.PoolIDs() {
		p := t.Pool(id)
		members := make([]Object, 0)
		for _, m := range t.index().membersByPool[id] {
			members = append(members, t.Member(m.Id))
		}
		p["members"] = members
		if h := t.index().hmByPool[id]; h != nil {
			p["healthmonitor"] = t.HealthMonitor(h.Id)
		} else {
			p["healthmonitor"] = nil
		}
		pools = append(pools, p)
	}
	o["listeners"] = listeners
	o["pools"] = pools
	return o
}

// EmptyStats is the statistics object of a load balancer or listener with
// no traffic (key "stats").
func EmptyStats() Object {
	return Object{"bytes_in": 0, "bytes_out": 0, "active_connections": 0, "total_connections": 0, "request_errors": 0}
}

// Amphora renders an amphora (nil when unknown or DELETED).
func Amphora(st *amphora.State) Object {
	if st == nil {
		return nil
	}
	return AmphoraObject(st.Amphora())
}

// AmphoraObject renders an amphora record (nil when nil or DELETED).
func AmphoraObject(a *eventsv1.Amphora) Object {
	if a == nil || a.Status == amphora.StatusDeleted {
		return nil
	}
	return Object{
		"id":              a.Id,
		"loadbalancer_id": emptyNull(a.LoadbalancerId),
		"compute_id":      emptyNull(a.ComputeId),
		"lb_network_ip":   emptyNull(a.LbNetworkIp),
		"vrrp_ip":         emptyNull(a.VrrpIp),
		"ha_ip":           emptyNull(a.HaIp),
		"vrrp_port_id":    emptyNull(a.VrrpPortId),
		"ha_port_id":      emptyNull(a.HaPortId),
		"cert_expiration": ts(a.CertExpiration),
		"cert_busy":       a.CertBusy,
		"role":            emptyNull(a.Role),
		"status":          a.Status,
		"vrrp_interface":  emptyNull(a.VrrpInterface),
		"vrrp_id":         zeroNull(a.VrrpId),
		"vrrp_priority":   zeroNull(a.VrrpPriority),
		"cached_zone":     emptyNull(a.CachedZone),
		"created_at":      ts(a.CreatedAt),
		"updated_at":      ts(a.UpdatedAt),
		"image_id":        emptyNull(a.ImageId),
		"compute_flavor":  emptyNull(a.ComputeFlavor),
	}
}

// QuotaListItem renders one entry of GET /quotas: the project's own limits
// (null = the configured default) in both spellings, with project_id and
// tenant_id.
func QuotaListItem(projectID string, q *eventsv1.Quota) Object {
	if q == nil {
		q = &eventsv1.Quota{}
	}
	return Object{
		"project_id":     projectID,
		"tenant_id":      projectID,
		"loadbalancer":   int64OrNull(q.LoadBalancer),
		"load_balancer":  int64OrNull(q.LoadBalancer),
		"listener":       int64OrNull(q.Listener),
		"pool":           int64OrNull(q.Pool),
		"healthmonitor":  int64OrNull(q.HealthMonitor),
		"health_monitor": int64OrNull(q.HealthMonitor),
		"member":         int64OrNull(q.Member),
		"l7policy":       int64OrNull(q.L7Policy),
		"l7rule":         int64OrNull(q.L7Rule),
	}
}

// Quota renders GET/PUT /quotas/{project_id} (key "quota"): the effective
// limits, unset values taken from the defaults. Real Octavia shows only the
// underscore spellings here.
func Quota(q *eventsv1.Quota, defaults project.Limits) Object {
	st := project.New()
	if q != nil {
		_ = st.Apply(&eventsv1.QuotaSet{Quota: q})
	}
	return limitsObject(st.EffectiveLimits(defaults))
}

// QuotaDefaults renders GET /quotas/defaults (key "quota").
func QuotaDefaults(defaults project.Limits) Object { return limitsObject(defaults) }

func limitsObject(l project.Limits) Object {
	return Object{
		"load_balancer":  l.LoadBalancer,
		"listener":       l.Listener,
		"pool":           l.Pool,
		"health_monitor": l.HealthMonitor,
		"member":         l.Member,
		"l7policy":       l.L7Policy,
		"l7rule":         l.L7Rule,
	}
}

// Flavor renders a flavor.
func Flavor(f *eventsv1.Flavor) Object {
	return Object{"id": f.Id, "name": f.Name, "description": f.Description, "enabled": f.Enabled,
		"flavor_profile_id": f.FlavorProfileId}
}

// FlavorProfile renders a flavor profile.
func FlavorProfile(p *eventsv1.FlavorProfile) Object {
	return Object{"id": p.Id, "name": p.Name, "provider_name": p.ProviderName, "flavor_data": p.FlavorData}
}

// AvailabilityZone renders an availability zone (key "availability_zone").
func AvailabilityZone(z *eventsv1.AvailabilityZone) Object {
	return Object{"name": z.Name, "description": z.Description, "enabled": z.Enabled,
		"availability_zone_profile_id": z.AvailabilityZoneProfileId}
}

// AvailabilityZoneProfile renders an availability zone profile (key
// "availability_zone_profile").
func AvailabilityZoneProfile(p *eventsv1.AvailabilityZoneProfile) Object {
	return Object{"id": p.Id, "name": p.Name, "provider_name": p.ProviderName,
		"availability_zone_data": p.AvailabilityZoneData}
}
