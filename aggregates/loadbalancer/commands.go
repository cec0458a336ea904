package loadbalancer

import (
	"github.com/ostia/ostia/aggregates"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// Command is a command on a load balancer tree.
type Command interface{ isCommand() }

// F is a tri-state update field.
type F[T any] = aggregates.Field[T]

// CreateLoadBalancer accepts a load balancer, optionally with a fully
// populated graph of listeners and pools.
type CreateLoadBalancer struct {
	ID               string
	ProjectID        string
	Name             *string
	Description      *string
	AdminStateUp     *bool
	VipAddress       string
	VipPortID        string
	VipSubnetID      string
	VipNetworkID     string
	VipQosPolicyID   *string
	VipSgIDs         []string
	VipVnicType      string
	AdditionalVips   []*eventsv1.AdditionalVip
	Provider         string
	FlavorID         *string
	AvailabilityZone *string
	Topology         string
	Tags             []string
	Listeners        []ListenerSpec
	Pools            []PoolSpec
	// AllocatedVip, when set, is the VIP port the API allocated for this
	// load balancer before accepting it (as Octavia's API does): it is
	// recorded with the create (a VipAllocated event after the Created
	// one), so the answer to the POST already shows it. The user's own
	// vip_port_id stays in VipPortID.
	AllocatedVip *AllocateVip
}

// ListenerSpec is a listener definition (create or graph create).
type ListenerSpec struct {
	ID                      string
	Name                    *string
	Description             *string
	AdminStateUp            *bool
	Protocol                string
	ProtocolPort            int32
	ConnectionLimit         *int64
	DefaultPoolID           *string
	DefaultPool             *PoolSpec // graph create only
	DefaultTLSContainerRef  *string
	SNIContainerRefs        []string
	ClientCATLSContainerRef *string
	ClientAuthentication    string
	ClientCRLContainerRef   *string
	InsertHeaders           map[string]string
	TimeoutClientData       *int64
	TimeoutMemberConnect    *int64
	TimeoutMemberData       *int64
	TimeoutTCPInspect       *int64
	AllowedCIDRs            []string
	TLSCiphers              *string
	TLSVersions             []string
	ALPNProtocols           []string
	HSTSMaxAge              *int64
	HSTSIncludeSubdomains   bool
	HSTSPreload             bool
	Tags                    []string
	L7Policies              []L7PolicySpec // graph create only
}

// PoolSpec is a pool definition. In a graph create a spec with only a Name
// (no protocol, algorithm, members or health monitor) refers to a pool of
// CreateLoadBalancer.Pools.
type PoolSpec struct {
	ID                 string
	Name               *string
	Description        *string
	AdminStateUp       *bool
	Protocol           string
	LBAlgorithm        string
	SessionPersistence *eventsv1.SessionPersistence
	TLSEnabled         bool
	TLSContainerRef    *string
	CATLSContainerRef  *string
	CRLContainerRef    *string
	TLSCiphers         *string
	TLSVersions        []string
	ALPNProtocols      []string
	Tags               []string
	Members            []MemberSpec       // graph create only
	HealthMonitor      *HealthMonitorSpec // graph create only
}

// MemberSpec is a member definition.
type MemberSpec struct {
	ID             string
	Name           *string
	AdminStateUp   *bool
	Address        string
	ProtocolPort   int32
	Weight         *int32
	Backup         *bool
	SubnetID       *string
	MonitorAddress *string
	MonitorPort    *int32
	RequestSRIOV   bool
	Tags           []string
}

// HealthMonitorSpec is a health monitor definition.
type HealthMonitorSpec struct {
	ID             string
	Name           *string
	AdminStateUp   *bool
	Type           string
	Delay          int32
	Timeout        int32
	MaxRetries     int32
	MaxRetriesDown *int32
	HTTPMethod     *string
	URLPath        *string
	ExpectedCodes  *string
	HTTPVersion    *float64
	DomainName     *string
	Tags           []string
}

// L7PolicySpec is an L7 policy definition.
type L7PolicySpec struct {
	ID               string
	Name             *string
	Description      *string
	AdminStateUp     *bool
	Action           string
	RedirectPoolID   *string
	RedirectPool     *PoolSpec // graph create only
	RedirectURL      *string
	RedirectPrefix   *string
	RedirectHTTPCode *int32
	Position         *int32
	Tags             []string
	Rules            []L7RuleSpec // graph create only
}

// L7RuleSpec is an L7 rule definition.
type L7RuleSpec struct {
	ID           string
	AdminStateUp *bool
	Type         string
	CompareType  string
	Key          *string
	Value        string
	Invert       bool
	Tags         []string
}

// UpdateLoadBalancer changes the load balancer's own attributes.
type UpdateLoadBalancer struct {
	Name           F[string]
	Description    F[string]
	AdminStateUp   F[bool]
	VipQosPolicyID F[string]
	VipSgIDs       F[[]string]
	Tags           F[[]string]
}

// DeleteLoadBalancer deletes the load balancer (with Cascade its children).
type DeleteLoadBalancer struct{ Cascade bool }

// FailoverLoadBalancer replaces the load balancer's amphorae.
type FailoverLoadBalancer struct{ Reason string }

// BeginAmphoraFailover locks the load balancer (PENDING_UPDATE) for the
// failover of one of its amphorae; the failover saga returns it to ACTIVE
// (or ERROR). Through the API only an ACTIVE load balancer can be locked;
// the health manager (FromError) also fails over the amphorae of a load
// balancer in ERROR, as Octavia's does, since a failover can repair it.
type BeginAmphoraFailover struct {
	AmphoraID string
	Reason    string
	FromError bool
}

// CreateListener adds a listener to the load balancer.
type CreateListener struct {
	LoadBalancerID string
	ListenerSpec
}

// UpdateListener changes a listener.
type UpdateListener struct {
	ListenerID              string
	Name                    F[string]
	Description             F[string]
	AdminStateUp            F[bool]
	ConnectionLimit         F[int64]
	DefaultPoolID           F[string]
	DefaultTLSContainerRef  F[string]
	SNIContainerRefs        F[[]string]
	ClientCATLSContainerRef F[string]
	ClientAuthentication    F[string]
	ClientCRLContainerRef   F[string]
	InsertHeaders           F[map[string]string]
	TimeoutClientData       F[int64]
	TimeoutMemberConnect    F[int64]
	TimeoutMemberData       F[int64]
	TimeoutTCPInspect       F[int64]
	AllowedCIDRs            F[[]string]
	TLSCiphers              F[string]
	TLSVersions             F[[]string]
	ALPNProtocols           F[[]string]
	HSTSMaxAge              F[int64]
	HSTSIncludeSubdomains   F[bool]
	HSTSPreload             F[bool]
	Tags                    F[[]string]
}

// DeleteListener deletes a listener.
type DeleteListener struct{ ListenerID string }

// CreatePool adds a pool, to the load balancer or as a listener's default
// pool.
type CreatePool struct {
	LoadBalancerID string
	ListenerID     string
	PoolSpec
}

// UpdatePool changes a pool.
type UpdatePool struct {
	PoolID             string
	Name               F[string]
	Description        F[string]
	AdminStateUp       F[bool]
	LBAlgorithm        F[string]
	SessionPersistence F[*eventsv1.SessionPersistence]
	TLSEnabled         F[bool]
	TLSContainerRef    F[string]
	CATLSContainerRef  F[string]
	CRLContainerRef    F[string]
	TLSCiphers         F[string]
	TLSVersions        F[[]string]
	ALPNProtocols      F[[]string]
	Tags               F[[]string]
}

// DeletePool deletes a pool with its members and health monitor.
type DeletePool struct{ PoolID string }

// CreateMember adds a member to a pool.
type CreateMember struct {
	PoolID string
	MemberSpec
}

// UpdateMember changes a member.
type UpdateMember struct {
	PoolID         string
	MemberID       string
	Name           F[string]
	AdminStateUp   F[bool]
	Weight         F[int32]
	Backup         F[bool]
	MonitorAddress F[string]
	MonitorPort    F[int32]
	Tags           F[[]string]
}

// DeleteMember deletes a member.
type DeleteMember struct{ PoolID, MemberID string }

// BatchUpdateMembers replaces the members of a pool, matching members by
// (address, protocol_port).
type BatchUpdateMembers struct {
	PoolID       string
	Members      []MemberSpec
	AdditiveOnly bool
}

// CreateHealthMonitor adds the health monitor of a pool.
type CreateHealthMonitor struct {
	PoolID string
	HealthMonitorSpec
}

// UpdateHealthMonitor changes a health monitor.
type UpdateHealthMonitor struct {
	HealthMonitorID string
	Name            F[string]
	AdminStateUp    F[bool]
	Delay           F[int32]
	Timeout         F[int32]
	MaxRetries      F[int32]
	MaxRetriesDown  F[int32]
	HTTPMethod      F[string]
	URLPath         F[string]
	ExpectedCodes   F[string]
	HTTPVersion     F[float64]
	DomainName      F[string]
	Tags            F[[]string]
}

// DeleteHealthMonitor deletes a health monitor.
type DeleteHealthMonitor struct{ HealthMonitorID string }

// CreateL7Policy adds an L7 policy to a listener.
type CreateL7Policy struct {
	ListenerID string
	L7PolicySpec
}

// UpdateL7Policy changes an L7 policy.
type UpdateL7Policy struct {
	L7PolicyID       string
	Name             F[string]
	Description      F[string]
	AdminStateUp     F[bool]
	Action           F[string]
	RedirectPoolID   F[string]
	RedirectURL      F[string]
	RedirectPrefix   F[string]
	RedirectHTTPCode F[int32]
	Position         F[int32]
	Tags             F[[]string]
}

// DeleteL7Policy deletes an L7 policy with its rules.
type DeleteL7Policy struct{ L7PolicyID string }

// CreateL7Rule adds a rule to an L7 policy.
type CreateL7Rule struct {
	L7PolicyID string
	L7RuleSpec
}

// UpdateL7Rule changes an L7 rule.
type UpdateL7Rule struct {
	L7PolicyID   string
	L7RuleID     string
	AdminStateUp F[bool]
	Type         F[string]
	CompareType  F[string]
	Key          F[string]
	Value        F[string]
	Invert       F[bool]
	Tags         F[[]string]
}

// DeleteL7Rule deletes an L7 rule.
type DeleteL7Rule struct{ L7PolicyID, L7RuleID string }

// AllocateVip records the allocated VIP port (control plane).
type AllocateVip struct {
	VipAddress     string
	VipPortID      string
	VipSubnetID    string
	VipNetworkID   string
	AdditionalVips []*eventsv1.AdditionalVip
}

// CompleteProvisioning records that the running flow finished.
type CompleteProvisioning struct{ Reason string }

// FailProvisioning records that the running flow failed.
type FailProvisioning struct {
	Reason string
	// LoadBalancerError also sends a load balancer that is not pending
	// (an amphora failover started by the health manager) to ERROR.
	LoadBalancerError bool
}

// SetOperatingStatuses records operating statuses (health manager). Changes
// of objects that are not in the tree any more are ignored.
type SetOperatingStatuses struct{ Changes []*eventsv1.StatusChange }

func (CreateLoadBalancer) isCommand()   {}
func (BeginAmphoraFailover) isCommand() {}
func (UpdateLoadBalancer) isCommand()   {}
func (DeleteLoadBalancer) isCommand()   {}
func (FailoverLoadBalancer) isCommand() {}
func (CreateListener) isCommand()       {}
func (UpdateListener) isCommand()       {}
func (DeleteListener) isCommand()       {}
func (CreatePool) isCommand()           {}
func (UpdatePool) isCommand()           {}
func (DeletePool) isCommand()           {}
func (CreateMember) isCommand()         {}
func (UpdateMember) isCommand()         {}
func (DeleteMember) isCommand()         {}
func (BatchUpdateMembers) isCommand()   {}
func (CreateHealthMonitor) isCommand()  {}
func (UpdateHealthMonitor) isCommand()  {}
func (DeleteHealthMonitor) isCommand()  {}
func (CreateL7Policy) isCommand()       {}
func (UpdateL7Policy) isCommand()       {}
func (DeleteL7Policy) isCommand()       {}
func (CreateL7Rule) isCommand()         {}
func (UpdateL7Rule) isCommand()         {}
func (DeleteL7Rule) isCommand()         {}
func (AllocateVip) isCommand()          {}
func (CompleteProvisioning) isCommand() {}
func (FailProvisioning) isCommand()     {}
func (SetOperatingStatuses) isCommand() {}
