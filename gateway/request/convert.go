package request

import (
	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/catalog"
	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/aggregates/project"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// ptr is the attribute's value, nil when absent or null.
func ptr[T any](f F[T]) *T {
	if !f.Set || f.Null {
		return nil
	}
	v := f.Value
	return &v
}

// val is the attribute's value, the zero value when absent or null.
func val[T any](f F[T]) T {
	if !f.Set || f.Null {
		var zero T
		return zero
	}
	return f.Value
}

// adminState follows Octavia's to_dict: admin_state_up null means false.
func adminState(f F[bool]) *bool {
	if !f.Set {
		return nil
	}
	v := f.Value && !f.Null
	return &v
}

// adminUpdate is adminState for an update field.
func adminUpdate(f F[bool]) F[bool] {
	if f.Set && f.Null {
		return aggregates.Value(false)
	}
	return f
}

func convertSlice[S, D any](in []S, conv func(*S) D) []D {
	if in == nil {
		return nil
	}
	out := make([]D, len(in))
	for i := range in {
		out[i] = conv(&in[i])
	}
	return out
}

// Command converts the body into the aggregate command. ID is left empty
// and ProjectID is the body's (the caller fills both from the request).
func (b *LoadBalancerCreate) Command() loadbalancer.CreateLoadBalancer {
	return loadbalancer.CreateLoadBalancer{
		ProjectID:      val(b.ProjectID),
		Name:           ptr(b.Name),
		Description:    ptr(b.Description),
		AdminStateUp:   adminState(b.AdminStateUp),
		VipAddress:     val(b.VipAddress),
		VipPortID:      val(b.VipPortID),
		VipSubnetID:    val(b.VipSubnetID),
		VipNetworkID:   val(b.VipNetworkID),
		VipQosPolicyID: ptr(b.VipQosPolicyID),
		VipSgIDs:       val(b.VipSgIDs),
		AdditionalVips: convertSlice(val(b.AdditionalVips), func(a *AdditionalVip) *eventsv1.AdditionalVip {
			return &eventsv1.AdditionalVip{SubnetId: val(a.SubnetID), IpAddress: val(a.IPAddress), PortId: val(a.PortID)}
		}),
		Provider:         val(b.Provider),
		FlavorID:         ptr(b.FlavorID),
		AvailabilityZone: ptr(b.AvailabilityZone),
		Tags:             val(b.Tags),
		Listeners:        convertSlice(val(b.Listeners), (*ListenerCreate).Spec),
		Pools:            convertSlice(val(b.Pools), (*PoolCreate).Spec),
	}
}

// Command converts the body into the aggregate command.
func (b *LoadBalancerUpdate) Command() loadbalancer.UpdateLoadBalancer {
	return loadbalancer.UpdateLoadBalancer{
		Name:           b.Name,
		Description:    b.Description,
		AdminStateUp:   adminUpdate(b.AdminStateUp),
		VipQosPolicyID: b.VipQosPolicyID,
		VipSgIDs:       b.VipSgIDs,
		Tags:           b.Tags,
	}
}

// Spec is the listener definition (graph create or create).
func (b *ListenerCreate) Spec() loadbalancer.ListenerSpec {
	return loadbalancer.ListenerSpec{
		Name:                    ptr(b.Name),
		Description:             ptr(b.Description),
		AdminStateUp:            adminState(b.AdminStateUp),
		Protocol:                val(b.Protocol),
		ProtocolPort:            val(b.ProtocolPort),
		ConnectionLimit:         ptr(b.ConnectionLimit),
		DefaultPoolID:           ptr(b.DefaultPoolID),
		DefaultPool:             poolSpecPtr(b.DefaultPool),
		DefaultTLSContainerRef:  ptr(b.DefaultTLSContainerRef),
		SNIContainerRefs:        val(b.SNIContainerRefs),
		ClientCATLSContainerRef: ptr(b.ClientCATLSContainerRef),
		ClientAuthentication:    val(b.ClientAuthentication),
		ClientCRLContainerRef:   ptr(b.ClientCRLContainerRef),
		InsertHeaders:           val(b.InsertHeaders),
		TimeoutClientData:       ptr(b.TimeoutClientData),
		TimeoutMemberConnect:    ptr(b.TimeoutMemberConnect),
		TimeoutMemberData:       ptr(b.TimeoutMemberData),
		TimeoutTCPInspect:       ptr(b.TimeoutTCPInspect),
		AllowedCIDRs:            val(b.AllowedCIDRs),
		TLSCiphers:              ptr(b.TLSCiphers),
		TLSVersions:             val(b.TLSVersions),
		ALPNProtocols:           val(b.ALPNProtocols),
		HSTSMaxAge:              ptr(b.HSTSMaxAge),
		HSTSIncludeSubdomains:   val(b.HSTSIncludeSubdomains),
		HSTSPreload:             val(b.HSTSPreload),
		Tags:                    val(b.Tags),
		L7Policies:              convertSlice(val(b.L7Policies), (*L7PolicyCreate).Spec),
	}
}

// Command converts the body into the aggregate command.
func (b *ListenerCreate) Command() loadbalancer.CreateListener {
	return loadbalancer.CreateListener{LoadBalancerID: val(b.LoadBalancerID), ListenerSpec: b.Spec()}
}

// Command converts the body into the aggregate command for listener id.
func (b *ListenerUpdate) Command(id string) loadbalancer.UpdateListener {
	return loadbalancer.UpdateListener{
		ListenerID:              id,
		Name:                    b.Name,
		Description:             b.Description,
		AdminStateUp:            adminUpdate(b.AdminStateUp),
		ConnectionLimit:         b.ConnectionLimit,
		DefaultPoolID:           b.DefaultPoolID,
		DefaultTLSContainerRef:  b.DefaultTLSContainerRef,
		SNIContainerRefs:        b.SNIContainerRefs,
		ClientCATLSContainerRef: b.ClientCATLSContainerRef,
		ClientAuthentication:    b.ClientAuthentication,
		ClientCRLContainerRef:   b.ClientCRLContainerRef,
		InsertHeaders:           b.InsertHeaders,
		TimeoutClientData:       b.TimeoutClientData,
		TimeoutMemberConnect:    b.TimeoutMemberConnect,
		TimeoutMemberData:       b.TimeoutMemberData,
		TimeoutTCPInspect:       b.TimeoutTCPInspect,
		AllowedCIDRs:            b.AllowedCIDRs,
		TLSCiphers:              b.TLSCiphers,
		TLSVersions:             b.TLSVersions,
		ALPNProtocols:           b.ALPNProtocols,
		HSTSMaxAge:              b.HSTSMaxAge,
		HSTSIncludeSubdomains:   b.HSTSIncludeSubdomains,
		HSTSPreload:             b.HSTSPreload,
		Tags:                    b.Tags,
	}
}

func poolSpecPtr(f F[PoolCreate]) *loadbalancer.PoolSpec {
	if !f.Set || f.Null {
		return nil
	}
	s := f.Value.Spec()
	return &s
}

// Proto is the session persistence as the events carry it.
func (s *SessionPersistence) Proto() *eventsv1.SessionPersistence {
	return &eventsv1.SessionPersistence{
		Type:                   val(s.Type),
		CookieName:             ptr(s.CookieName),
		PersistenceTimeout:     ptr(s.PersistenceTimeout),
		PersistenceGranularity: ptr(s.PersistenceGranularity),
	}
}

// Spec is the pool definition (graph create or create).
func (b *PoolCreate) Spec() loadbalancer.PoolSpec {
	var sp *eventsv1.SessionPersistence
	if s := ptr(b.SessionPersistence); s != nil {
		sp = s.Proto()
	}
	var hm *loadbalancer.HealthMonitorSpec
	if h := ptr(b.HealthMonitor); h != nil {
		s := h.Spec()
		hm = &s
	}
	return loadbalancer.PoolSpec{
		Name:               ptr(b.Name),
		Description:        ptr(b.Description),
		AdminStateUp:       adminState(b.AdminStateUp),
		Protocol:           val(b.Protocol),
		LBAlgorithm:        val(b.LBAlgorithm),
		SessionPersistence: sp,
		TLSEnabled:         val(b.TLSEnabled),
		TLSContainerRef:    ptr(b.TLSContainerRef),
		CATLSContainerRef:  ptr(b.CATLSContainerRef),
		CRLContainerRef:    ptr(b.CRLContainerRef),
		TLSCiphers:         ptr(b.TLSCiphers),
		TLSVersions:        val(b.TLSVersions),
		ALPNProtocols:      val(b.ALPNProtocols),
		Tags:               val(b.Tags),
		Members:            convertSlice(val(b.Members), (*MemberCreate).Spec),
		HealthMonitor:      hm,
	}
}

// Command converts the body into the aggregate command.
func (b *PoolCreate) Command() loadbalancer.CreatePool {
	return loadbalancer.CreatePool{LoadBalancerID: val(b.LoadBalancerID), ListenerID: val(b.ListenerID), PoolSpec: b.Spec()}
}

// Command converts the body into the aggregate command for pool id.
func (b *PoolUpdate) Command(id string) loadbalancer.UpdatePool {
	sp := aggregates.Field[*eventsv1.SessionPersistence]{Set: b.SessionPersistence.Set, Null: b.SessionPersistence.Null}
	if s := ptr(b.SessionPersistence); s != nil {
		sp.Value = s.Proto()
	}
	return loadbalancer.UpdatePool{
		PoolID:             id,
		Name:               b.Name,
		Description:        b.Description,
		AdminStateUp:       adminUpdate(b.AdminStateUp),
		LBAlgorithm:        b.LBAlgorithm,
		SessionPersistence: sp,
		TLSEnabled:         b.TLSEnabled,
		TLSContainerRef:    b.TLSContainerRef,
		CATLSContainerRef:  b.CATLSContainerRef,
		CRLContainerRef:    b.CRLContainerRef,
		TLSCiphers:         b.TLSCiphers,
		TLSVersions:        b.TLSVersions,
		ALPNProtocols:      b.ALPNProtocols,
		Tags:               b.Tags,
	}
}

// Spec is the member definition.
func (b *MemberCreate) Spec() loadbalancer.MemberSpec {
	return loadbalancer.MemberSpec{
		Name:           ptr(b.Name),
		AdminStateUp:   adminState(b.AdminStateUp),
		Address:        val(b.Address),
		ProtocolPort:   val(b.ProtocolPort),
		Weight:         ptr(b.Weight),
		Backup:         ptr(b.Backup),
		SubnetID:       ptr(b.SubnetID),
		MonitorAddress: ptr(b.MonitorAddress),
		MonitorPort:    ptr(b.MonitorPort),
		RequestSRIOV:   val(b.RequestSRIOV),
		Tags:           val(b.Tags),
	}
}

// Command converts the body into the aggregate command for a pool.
func (b *MemberCreate) Command(poolID string) loadbalancer.CreateMember {
	return loadbalancer.CreateMember{PoolID: poolID, MemberSpec: b.Spec()}
}

// Command converts the body into the aggregate command.
func (b *MemberUpdate) Command(poolID, memberID string) loadbalancer.UpdateMember {
	return loadbalancer.UpdateMember{
		PoolID:         poolID,
		MemberID:       memberID,
		Name:           b.Name,
		AdminStateUp:   adminUpdate(b.AdminStateUp),
		Weight:         b.Weight,
		Backup:         b.Backup,
		MonitorAddress: b.MonitorAddress,
		MonitorPort:    b.MonitorPort,
		Tags:           b.Tags,
	}
}

// BatchCommand converts a member batch into the aggregate command.
func BatchCommand(poolID string, members []MemberCreate, additiveOnly bool) loadbalancer.BatchUpdateMembers {
	specs := convertSlice(members, (*MemberCreate).Spec)
	if specs == nil {
		specs = []loadbalancer.MemberSpec{}
	}
	return loadbalancer.BatchUpdateMembers{PoolID: poolID, Members: specs, AdditiveOnly: additiveOnly}
}

// Spec is the health monitor definition.
func (b *HealthMonitorCreate) Spec() loadbalancer.HealthMonitorSpec {
	return loadbalancer.HealthMonitorSpec{
		Name:           ptr(b.Name),
		AdminStateUp:   adminState(b.AdminStateUp),
		Type:           val(b.Type),
		Delay:          val(b.Delay),
		Timeout:        val(b.Timeout),
		MaxRetries:     val(b.MaxRetries),
		MaxRetriesDown: ptr(b.MaxRetriesDown),
		HTTPMethod:     ptr(b.HTTPMethod),
		URLPath:        ptr(b.URLPath),
		ExpectedCodes:  ptr(b.ExpectedCodes),
		HTTPVersion:    ptr(b.HTTPVersion),
		DomainName:     ptr(b.DomainName),
		Tags:           val(b.Tags),
	}
}

// Command converts the body into the aggregate command.
func (b *HealthMonitorCreate) Command() loadbalancer.CreateHealthMonitor {
	return loadbalancer.CreateHealthMonitor{PoolID: val(b.PoolID), HealthMonitorSpec: b.Spec()}
}

// Command converts the body into the aggregate command.
func (b *HealthMonitorUpdate) Command(id string) loadbalancer.UpdateHealthMonitor {
	return loadbalancer.UpdateHealthMonitor{
		HealthMonitorID: id,
		Name:            b.Name,
		AdminStateUp:    adminUpdate(b.AdminStateUp),
		Delay:           b.Delay,
		Timeout:         b.Timeout,
		MaxRetries:      b.MaxRetries,
		MaxRetriesDown:  b.MaxRetriesDown,
		HTTPMethod:      b.HTTPMethod,
		URLPath:         b.URLPath,
		ExpectedCodes:   b.ExpectedCodes,
		HTTPVersion:     b.HTTPVersion,
		DomainName:      b.DomainName,
		Tags:            b.Tags,
	}
}

// Spec is the L7 policy definition.
func (b *L7PolicyCreate) Spec() loadbalancer.L7PolicySpec {
	return loadbalancer.L7PolicySpec{
		Name:             ptr(b.Name),
		Description:      ptr(b.Description),
		AdminStateUp:     adminState(b.AdminStateUp),
		Action:           val(b.Action),
		RedirectPoolID:   ptr(b.RedirectPoolID),
		RedirectPool:     poolSpecPtr(b.RedirectPool),
		RedirectURL:      ptr(b.RedirectURL),
		RedirectPrefix:   ptr(b.RedirectPrefix),
		RedirectHTTPCode: ptr(b.RedirectHTTPCode),
		Position:         ptr(b.Position),
		Tags:             val(b.Tags),
		Rules:            convertSlice(val(b.Rules), (*L7RuleCreate).Spec),
	}
}

// Command converts the body into the aggregate command.
func (b *L7PolicyCreate) Command() loadbalancer.CreateL7Policy {
	return loadbalancer.CreateL7Policy{ListenerID: val(b.ListenerID), L7PolicySpec: b.Spec()}
}

// Command converts the body into the aggregate command.
func (b *L7PolicyUpdate) Command(id string) loadbalancer.UpdateL7Policy {
	return loadbalancer.UpdateL7Policy{
		L7PolicyID:       id,
		Name:             b.Name,
		Description:      b.Description,
		AdminStateUp:     adminUpdate(b.AdminStateUp),
		Action:           b.Action,
		RedirectPoolID:   b.RedirectPoolID,
		RedirectURL:      b.RedirectURL,
		RedirectPrefix:   b.RedirectPrefix,
		RedirectHTTPCode: b.RedirectHTTPCode,
		Position:         b.Position,
		Tags:             b.Tags,
	}
}

// Spec is the L7 rule definition.
func (b *L7RuleCreate) Spec() loadbalancer.L7RuleSpec {
	return loadbalancer.L7RuleSpec{
		AdminStateUp: adminState(b.AdminStateUp),
		Type:         val(b.Type),
		CompareType:  val(b.CompareType),
		Key:          ptr(b.Key),
		Value:        val(b.Value),
		Invert:       val(b.Invert),
		Tags:         val(b.Tags),
	}
}

// Command converts the body into the aggregate command.
func (b *L7RuleCreate) Command(policyID string) loadbalancer.CreateL7Rule {
	return loadbalancer.CreateL7Rule{L7PolicyID: policyID, L7RuleSpec: b.Spec()}
}

// Command converts the body into the aggregate command.
func (b *L7RuleUpdate) Command(policyID, ruleID string) loadbalancer.UpdateL7Rule {
	return loadbalancer.UpdateL7Rule{
		L7PolicyID:   policyID,
		L7RuleID:     ruleID,
		AdminStateUp: adminUpdate(b.AdminStateUp),
		Type:         b.Type,
		CompareType:  b.CompareType,
		Key:          b.Key,
		Value:        b.Value,
		Invert:       b.Invert,
		Tags:         b.Tags,
	}
}

// alias merges the two spellings of a quota attribute; like Octavia's
// to_dict (which renames loadbalancer to load_balancer after both are
// read) the plain spelling wins when both are given.
func alias(plain, underscored F[int64]) F[int64] {
	if plain.Set {
		return plain
	}
	return underscored
}

// Command converts the body into the project aggregate's command.
func (b *QuotaUpdate) Command() project.SetQuota {
	return project.SetQuota{
		LoadBalancer:  alias(b.Loadbalancer, b.LoadBalancer),
		Listener:      b.Listener,
		Pool:          b.Pool,
		HealthMonitor: alias(b.Healthmonitor, b.HealthMonitor),
		Member:        b.Member,
		L7Policy:      b.L7Policy,
		L7Rule:        b.L7Rule,
	}
}

// Command converts the body into the catalog command (ID empty: a new id).
func (b *FlavorCreate) Command() catalog.CreateFlavor {
	return catalog.CreateFlavor{Name: val(b.Name), Description: val(b.Description),
		FlavorProfileID: val(b.FlavorProfileID), Enabled: adminState(b.Enabled)}
}

// Command converts the body into the catalog command.
func (b *FlavorUpdate) Command(id string) catalog.UpdateFlavor {
	return catalog.UpdateFlavor{ID: id, Name: b.Name, Description: b.Description, Enabled: b.Enabled}
}

// Command converts the body into the catalog command (ID empty: a new id).
func (b *FlavorProfileCreate) Command() catalog.CreateFlavorProfile {
	return catalog.CreateFlavorProfile{Name: val(b.Name), ProviderName: val(b.ProviderName), FlavorData: val(b.FlavorData)}
}

// Command converts the body into the catalog command.
func (b *FlavorProfileUpdate) Command(id string) catalog.UpdateFlavorProfile {
	return catalog.UpdateFlavorProfile{ID: id, Name: b.Name, ProviderName: b.ProviderName, FlavorData: b.FlavorData}
}

// Command converts the body into the catalog command.
func (b *AvailabilityZoneCreate) Command() catalog.CreateAvailabilityZone {
	return catalog.CreateAvailabilityZone{Name: val(b.Name), Description: val(b.Description),
		AvailabilityZoneProfileID: val(b.AvailabilityZoneProfileID), Enabled: adminState(b.Enabled)}
}

// Command converts the body into the catalog command.
func (b *AvailabilityZoneUpdate) Command(name string) catalog.UpdateAvailabilityZone {
	return catalog.UpdateAvailabilityZone{Name: name, Description: b.Description, Enabled: b.Enabled}
}

// Command converts the body into the catalog command (ID empty: a new id).
func (b *AvailabilityZoneProfileCreate) Command() catalog.CreateAvailabilityZoneProfile {
	return catalog.CreateAvailabilityZoneProfile{Name: val(b.Name), ProviderName: val(b.ProviderName),
		AvailabilityZoneData: val(b.AvailabilityZoneData)}
}

// Command converts the body into the catalog command.
func (b *AvailabilityZoneProfileUpdate) Command(id string) catalog.UpdateAvailabilityZoneProfile {
	return catalog.UpdateAvailabilityZoneProfile{ID: id, Name: b.Name, ProviderName: b.ProviderName,
		AvailabilityZoneData: b.AvailabilityZoneData}
}
