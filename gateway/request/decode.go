// Package request decodes Octavia v2 request bodies the way Octavia's WSME
// type layer does, with the same 400 fault strings, and converts them into
// the aggregate commands.
//
// Every Decode function returns *aggregates.Error of KindInvalid (HTTP 400)
// for a refused body; the message is Octavia's faultstring:
//
//	Request is not in valid JSON format
//	Unknown attribute for argument load_balancer.loadbalancer: bogus
//	Invalid input for field/attribute vip_subnet_id. Value: 'x'. Value should be UUID format
//	Invalid input for field/attribute protocol_port. Value: '0'. Value should be greater or equal to 1
//	Invalid input for field/attribute protocol. Value: 'None'. Mandatory field missing.
//
// Deviations from Octavia, all for bodies Octavia answers with 500: a body
// that is JSON but not an object is "Request is not in valid JSON format";
// a missing or null resource key is reported as a missing mandatory field;
// a mandatory attribute given as null is reported as missing (WSME lets it
// through); null items in lists are refused.
package request

import (
	"context"
)

type lbCreateRoot struct {
	LoadBalancer F[LoadBalancerCreate] `wsme:"loadbalancer,object,mandatory"`
}
type lbUpdateRoot struct {
	LoadBalancer F[LoadBalancerUpdate] `wsme:"loadbalancer,object,mandatory"`
}
type listenerCreateRoot struct {
	Listener F[ListenerCreate] `wsme:"listener,object,mandatory"`
}
type listenerUpdateRoot struct {
	Listener F[ListenerUpdate] `wsme:"listener,object,mandatory"`
}
type poolCreateRoot struct {
	Pool F[PoolCreate] `wsme:"pool,object,mandatory"`
}
type poolUpdateRoot struct {
	Pool F[PoolUpdate] `wsme:"pool,object,mandatory"`
}
type memberCreateRoot struct {
	Member F[MemberCreate] `wsme:"member,object,mandatory"`
}
type memberUpdateRoot struct {
	Member F[MemberUpdate] `wsme:"member,object,mandatory"`
}
type membersRoot struct {
	Members F[[]MemberCreate] `wsme:"members,[]object,mandatory"`
}
type hmCreateRoot struct {
	HealthMonitor F[HealthMonitorCreate] `wsme:"healthmonitor,object,mandatory"`
}
type hmUpdateRoot struct {
	HealthMonitor F[HealthMonitorUpdate] `wsme:"healthmonitor,object,mandatory"`
}
type l7PolicyCreateRoot struct {
	L7Policy F[L7PolicyCreate] `wsme:"l7policy,object,mandatory"`
}
type l7PolicyUpdateRoot struct {
	L7Policy F[L7PolicyUpdate] `wsme:"l7policy,object,mandatory"`
}
type l7RuleCreateRoot struct {
	Rule F[L7RuleCreate] `wsme:"rule,object,mandatory"`
}
type l7RuleUpdateRoot struct {
	Rule F[L7RuleUpdate] `wsme:"rule,object,mandatory"`
}
type quotaRoot struct {
	Quota F[QuotaUpdate] `wsme:"quota,object,mandatory"`
}
type flavorCreateRoot struct {
	Flavor F[FlavorCreate] `wsme:"flavor,object,mandatory"`
}
type flavorUpdateRoot struct {
	Flavor F[FlavorUpdate] `wsme:"flavor,object,mandatory"`
}
type flavorProfileCreateRoot struct {
	FlavorProfile F[FlavorProfileCreate] `wsme:"flavorprofile,object,mandatory"`
}
type flavorProfileUpdateRoot struct {
	FlavorProfile F[FlavorProfileUpdate] `wsme:"flavorprofile,object,mandatory"`
}
type azCreateRoot struct {
	AZ F[AvailabilityZoneCreate] `wsme:"availability_zone,object,mandatory"`
}
type azUpdateRoot struct {
	AZ F[AvailabilityZoneUpdate] `wsme:"availability_zone,object,mandatory"`
}
type azProfileCreateRoot struct {
	Profile F[AvailabilityZoneProfileCreate] `wsme:"availability_zone_profile,object,mandatory"`
}
type azProfileUpdateRoot struct {
	Profile F[AvailabilityZoneProfileUpdate] `wsme:"availability_zone_profile,object,mandatory"`
}

// decodeInto decodes body into a root struct and returns it.
func decodeInto[R any](ctx context.Context, body []byte, arg string) (*R, error) {
	var root R
	if err := decode(ctx, body, arg, &root); err != nil {
		return nil, err
	}
	return &root, nil
}

// tenantToProject applies BaseMeta's tenant_id alias.
func tenantToProject(project *F[string], tenant F[string]) {
	if tenant.Set {
		*project = tenant
	}
}

// DecodeLoadBalancerCreate decodes POST /v2/lbaas/loadbalancers.
func DecodeLoadBalancerCreate(ctx context.Context, body []byte) (*LoadBalancerCreate, error) {
	r, err := decodeInto[lbCreateRoot](ctx, body, "load_balancer")
	if err != nil {
		return nil, err
	}
	b := r.LoadBalancer.Value
	tenantToProject(&b.ProjectID, b.TenantID)
	return &b, nil
}

// DecodeLoadBalancerUpdate decodes PUT /v2/lbaas/loadbalancers/{id}.
func DecodeLoadBalancerUpdate(ctx context.Context, body []byte) (*LoadBalancerUpdate, error) {
	r, err := decodeInto[lbUpdateRoot](ctx, body, "load_balancer")
	if err != nil {
		return nil, err
	}
	return &r.LoadBalancer.Value, nil
}

// DecodeListenerCreate decodes POST /v2/lbaas/listeners.
func DecodeListenerCreate(ctx context.Context, body []byte) (*ListenerCreate, error) {
	r, err := decodeInto[listenerCreateRoot](ctx, body, "listener_")
	if err != nil {
		return nil, err
	}
	b := r.Listener.Value
	tenantToProject(&b.ProjectID, b.TenantID)
	return &b, nil
}

// DecodeListenerUpdate decodes PUT /v2/lbaas/listeners/{id}.
func DecodeListenerUpdate(ctx context.Context, body []byte) (*ListenerUpdate, error) {
	r, err := decodeInto[listenerUpdateRoot](ctx, body, "listener_")
	if err != nil {
		return nil, err
	}
	return &r.Listener.Value, nil
}

// DecodePoolCreate decodes POST /v2/lbaas/pools.
func DecodePoolCreate(ctx context.Context, body []byte) (*PoolCreate, error) {
	r, err := decodeInto[poolCreateRoot](ctx, body, "pool_")
	if err != nil {
		return nil, err
	}
	b := r.Pool.Value
	tenantToProject(&b.ProjectID, b.TenantID)
	return &b, nil
}

// DecodePoolUpdate decodes PUT /v2/lbaas/pools/{id}.
func DecodePoolUpdate(ctx context.Context, body []byte) (*PoolUpdate, error) {
	r, err := decodeInto[poolUpdateRoot](ctx, body, "pool_")
	if err != nil {
		return nil, err
	}
	return &r.Pool.Value, nil
}

// DecodeMemberCreate decodes POST /v2/lbaas/pools/{pool_id}/members.
func DecodeMemberCreate(ctx context.Context, body []byte) (*MemberCreate, error) {
	r, err := decodeInto[memberCreateRoot](ctx, body, "member_")
	if err != nil {
		return nil, err
	}
	b := r.Member.Value
	tenantToProject(&b.ProjectID, b.TenantID)
	return &b, nil
}

// DecodeMemberUpdate decodes PUT /v2/lbaas/pools/{pool_id}/members/{id}.
func DecodeMemberUpdate(ctx context.Context, body []byte) (*MemberUpdate, error) {
	r, err := decodeInto[memberUpdateRoot](ctx, body, "member_")
	if err != nil {
		return nil, err
	}
	return &r.Member.Value, nil
}

// DecodeMembersBatch decodes PUT /v2/lbaas/pools/{pool_id}/members.
func DecodeMembersBatch(ctx context.Context, body []byte) ([]MemberCreate, error) {
	r, err := decodeInto[membersRoot](ctx, body, "members_")
	if err != nil {
		return nil, err
	}
	out := r.Members.Value
	for i := range out {
		tenantToProject(&out[i].ProjectID, out[i].TenantID)
	}
	return out, nil
}

// DecodeHealthMonitorCreate decodes POST /v2/lbaas/healthmonitors.
func DecodeHealthMonitorCreate(ctx context.Context, body []byte) (*HealthMonitorCreate, error) {
	r, err := decodeInto[hmCreateRoot](ctx, body, "health_monitor_")
	if err != nil {
		return nil, err
	}
	b := r.HealthMonitor.Value
	tenantToProject(&b.ProjectID, b.TenantID)
	return &b, nil
}

// DecodeHealthMonitorUpdate decodes PUT /v2/lbaas/healthmonitors/{id}.
func DecodeHealthMonitorUpdate(ctx context.Context, body []byte) (*HealthMonitorUpdate, error) {
	r, err := decodeInto[hmUpdateRoot](ctx, body, "health_monitor_")
	if err != nil {
		return nil, err
	}
	return &r.HealthMonitor.Value, nil
}

// DecodeL7PolicyCreate decodes POST /v2/lbaas/l7policies.
func DecodeL7PolicyCreate(ctx context.Context, body []byte) (*L7PolicyCreate, error) {
	r, err := decodeInto[l7PolicyCreateRoot](ctx, body, "l7policy_")
	if err != nil {
		return nil, err
	}
	b := r.L7Policy.Value
	tenantToProject(&b.ProjectID, b.TenantID)
	return &b, nil
}

// DecodeL7PolicyUpdate decodes PUT /v2/lbaas/l7policies/{id}.
func DecodeL7PolicyUpdate(ctx context.Context, body []byte) (*L7PolicyUpdate, error) {
	r, err := decodeInto[l7PolicyUpdateRoot](ctx, body, "l7policy_")
	if err != nil {
		return nil, err
	}
	return &r.L7Policy.Value, nil
}

// DecodeL7RuleCreate decodes POST /v2/lbaas/l7policies/{id}/rules.
func DecodeL7RuleCreate(ctx context.Context, body []byte) (*L7RuleCreate, error) {
	r, err := decodeInto[l7RuleCreateRoot](ctx, body, "rule_")
	if err != nil {
		return nil, err
	}
	b := r.Rule.Value
	tenantToProject(&b.ProjectID, b.TenantID)
	return &b, nil
}

// DecodeL7RuleUpdate decodes PUT /v2/lbaas/l7policies/{id}/rules/{rule_id}.
func DecodeL7RuleUpdate(ctx context.Context, body []byte) (*L7RuleUpdate, error) {
	r, err := decodeInto[l7RuleUpdateRoot](ctx, body, "l7rule_")
	if err != nil {
		return nil, err
	}
	return &r.Rule.Value, nil
}

// DecodeQuotaUpdate decodes PUT /v2/lbaas/quotas/{project_id}.
func DecodeQuotaUpdate(ctx context.Context, body []byte) (*QuotaUpdate, error) {
	r, err := decodeInto[quotaRoot](ctx, body, "quotas")
	if err != nil {
		return nil, err
	}
	return &r.Quota.Value, nil
}

// DecodeFlavorCreate decodes POST /v2/lbaas/flavors.
func DecodeFlavorCreate(ctx context.Context, body []byte) (*FlavorCreate, error) {
	r, err := decodeInto[flavorCreateRoot](ctx, body, "flavor_")
	if err != nil {
		return nil, err
	}
	return &r.Flavor.Value, nil
}

// DecodeFlavorUpdate decodes PUT /v2/lbaas/flavors/{id}.
func DecodeFlavorUpdate(ctx context.Context, body []byte) (*FlavorUpdate, error) {
	r, err := decodeInto[flavorUpdateRoot](ctx, body, "flavor_")
	if err != nil {
		return nil, err
	}
	return &r.Flavor.Value, nil
}

// DecodeFlavorProfileCreate decodes POST /v2/lbaas/flavorprofiles.
func DecodeFlavorProfileCreate(ctx context.Context, body []byte) (*FlavorProfileCreate, error) {
	r, err := decodeInto[flavorProfileCreateRoot](ctx, body, "flavor_profile_")
	if err != nil {
		return nil, err
	}
	return &r.FlavorProfile.Value, nil
}

// DecodeFlavorProfileUpdate decodes PUT /v2/lbaas/flavorprofiles/{id}.
func DecodeFlavorProfileUpdate(ctx context.Context, body []byte) (*FlavorProfileUpdate, error) {
	r, err := decodeInto[flavorProfileUpdateRoot](ctx, body, "flavor_profile_")
	if err != nil {
		return nil, err
	}
	return &r.FlavorProfile.Value, nil
}

// DecodeAvailabilityZoneCreate decodes POST /v2/lbaas/availabilityzones.
func DecodeAvailabilityZoneCreate(ctx context.Context, body []byte) (*AvailabilityZoneCreate, error) {
	r, err := decodeInto[azCreateRoot](ctx, body, "availability_zone_")
	if err != nil {
		return nil, err
	}
	return &r.AZ.Value, nil
}

// DecodeAvailabilityZoneUpdate decodes PUT /v2/lbaas/availabilityzones/{name}.
func DecodeAvailabilityZoneUpdate(ctx context.Context, body []byte) (*AvailabilityZoneUpdate, error) {
	r, err := decodeInto[azUpdateRoot](ctx, body, "availability_zone_")
	if err != nil {
		return nil, err
	}
	return &r.AZ.Value, nil
}

// DecodeAvailabilityZoneProfileCreate decodes POST /v2/lbaas/availabilityzoneprofiles.
func DecodeAvailabilityZoneProfileCreate(ctx context.Context, body []byte) (*AvailabilityZoneProfileCreate, error) {
	r, err := decodeInto[azProfileCreateRoot](ctx, body, "availability_zone_profile_")
	if err != nil {
		return nil, err
	}
	return &r.Profile.Value, nil
}

// DecodeAvailabilityZoneProfileUpdate decodes PUT /v2/lbaas/availabilityzoneprofiles/{id}.
func DecodeAvailabilityZoneProfileUpdate(ctx context.Context, body []byte) (*AvailabilityZoneProfileUpdate, error) {
	r, err := decodeInto[azProfileUpdateRoot](ctx, body, "availability_zone_profile_")
	if err != nil {
		return nil, err
	}
	return &r.Profile.Value, nil
}

// ReadLimit is the largest request body the gateway should read.
const ReadLimit = 1 << 20
