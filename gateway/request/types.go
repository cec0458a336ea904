package request

import (
	"github.com/ostia/ostia/aggregates"
)

// F is a tri-state body attribute: absent (Set false), null (Null) or a value.
type F[T any] = aggregates.Field[T]

// The structs below are Octavia's v2 request types (octavia/api/v2/types),
// attribute for attribute and in Octavia's declaration order, which is the
// order WSME checks them in. Types that carry project_id also accept
// tenant_id (Octavia's BaseMeta adds it; it overrides project_id).

// AdditionalVip is one entry of loadbalancer.additional_vips.
type AdditionalVip struct {
	SubnetID  F[string] `wsme:"subnet_id,uuid,mandatory"`
	IPAddress F[string] `wsme:"ip_address,ip"`
	PortID    F[string] `wsme:"port_id,uuid"`
}

// LoadBalancerCreate is LoadBalancerPOST, with the optional fully populated
// graph in Listeners and Pools.
type LoadBalancerCreate struct {
	Name             F[string]           `wsme:"name,string,maxlen=255"`
	Description      F[string]           `wsme:"description,string,maxlen=255"`
	AdminStateUp     F[bool]             `wsme:"admin_state_up,bool"`
	VipAddress       F[string]           `wsme:"vip_address,ip"`
	VipPortID        F[string]           `wsme:"vip_port_id,uuid"`
	VipSubnetID      F[string]           `wsme:"vip_subnet_id,uuid"`
	VipNetworkID     F[string]           `wsme:"vip_network_id,uuid"`
	VipQosPolicyID   F[string]           `wsme:"vip_qos_policy_id,uuid"`
	VipSgIDs         F[[]string]         `wsme:"vip_sg_ids,[]uuid"`
	AdditionalVips   F[[]AdditionalVip]  `wsme:"additional_vips,[]object"`
	ProjectID        F[string]           `wsme:"project_id,string,maxlen=36"`
	Listeners        F[[]ListenerCreate] `wsme:"listeners,[]object,schema=listener_single"`
	Pools            F[[]PoolCreate]     `wsme:"pools,[]object,schema=pool_single"`
	Provider         F[string]           `wsme:"provider,string,maxlen=64"`
	Tags             F[[]string]         `wsme:"tags,[]string,maxlen=255"`
	FlavorID         F[string]           `wsme:"flavor_id,uuid"`
	AvailabilityZone F[string]           `wsme:"availability_zone,string,maxlen=255"`
	TenantID         F[string]           `wsme:"tenant_id,string,maxlen=36"`
}

// LoadBalancerUpdate is LoadBalancerPUT.
type LoadBalancerUpdate struct {
	Name           F[string]   `wsme:"name,string,maxlen=255"`
	Description    F[string]   `wsme:"description,string,maxlen=255"`
	VipQosPolicyID F[string]   `wsme:"vip_qos_policy_id,uuid"`
	AdminStateUp   F[bool]     `wsme:"admin_state_up,bool"`
	VipSgIDs       F[[]string] `wsme:"vip_sg_ids,[]uuid"`
	Tags           F[[]string] `wsme:"tags,[]string,maxlen=255"`
}

// ListenerCreate is ListenerPOST; inside a load balancer graph
// (ListenerSingleCreate) LoadBalancerID and ProjectID are not accepted.
type ListenerCreate struct {
	Name                    F[string]            `wsme:"name,string,maxlen=255"`
	Description             F[string]            `wsme:"description,string,maxlen=255"`
	AdminStateUp            F[bool]              `wsme:"admin_state_up,bool"`
	Protocol                F[string]            `wsme:"protocol,enum,mandatory,enum=listener_protocol"`
	ProtocolPort            F[int32]             `wsme:"protocol_port,int,mandatory,min=1,max=65535"`
	ConnectionLimit         F[int64]             `wsme:"connection_limit,int,min=-1"`
	DefaultTLSContainerRef  F[string]            `wsme:"default_tls_container_ref,string,maxlen=255"`
	SNIContainerRefs        F[[]string]          `wsme:"sni_container_refs,[]string,maxlen=255"`
	ProjectID               F[string]            `wsme:"project_id,string,maxlen=36"`
	DefaultPoolID           F[string]            `wsme:"default_pool_id,uuid"`
	DefaultPool             F[PoolCreate]        `wsme:"default_pool,object,schema=pool_single"`
	L7Policies              F[[]L7PolicyCreate]  `wsme:"l7policies,[]object,schema=l7policy_single"`
	InsertHeaders           F[map[string]string] `wsme:"insert_headers,{}string,maxlen=255"`
	LoadBalancerID          F[string]            `wsme:"loadbalancer_id,uuid,mandatory"`
	TimeoutClientData       F[int64]             `wsme:"timeout_client_data,int,min=0,max=2073600000"`
	TimeoutMemberConnect    F[int64]             `wsme:"timeout_member_connect,int,min=0,max=2073600000"`
	TimeoutMemberData       F[int64]             `wsme:"timeout_member_data,int,min=0,max=2073600000"`
	TimeoutTCPInspect       F[int64]             `wsme:"timeout_tcp_inspect,int,min=0,max=2073600000"`
	Tags                    F[[]string]          `wsme:"tags,[]string,maxlen=255"`
	ClientCATLSContainerRef F[string]            `wsme:"client_ca_tls_container_ref,string,maxlen=255"`
	ClientAuthentication    F[string]            `wsme:"client_authentication,enum,enum=client_auth"`
	ClientCRLContainerRef   F[string]            `wsme:"client_crl_container_ref,string,maxlen=255"`
	AllowedCIDRs            F[[]string]          `wsme:"allowed_cidrs,[]cidr"`
	TLSCiphers              F[string]            `wsme:"tls_ciphers,string,maxlen=2048"`
	TLSVersions             F[[]string]          `wsme:"tls_versions,[]string,maxlen=32"`
	ALPNProtocols           F[[]string]          `wsme:"alpn_protocols,[]alpn"`
	HSTSMaxAge              F[int64]             `wsme:"hsts_max_age,int,min=0"`
	HSTSIncludeSubdomains   F[bool]              `wsme:"hsts_include_subdomains,bool"`
	HSTSPreload             F[bool]              `wsme:"hsts_preload,bool"`
	TenantID                F[string]            `wsme:"tenant_id,string,maxlen=36"`
}

// listenerSingleCreate is ListenerSingleCreate (graph listeners).
type listenerSingleCreate struct {
	Name                    F[string]            `wsme:"name,string,maxlen=255"`
	Description             F[string]            `wsme:"description,string,maxlen=255"`
	AdminStateUp            F[bool]              `wsme:"admin_state_up,bool"`
	Protocol                F[string]            `wsme:"protocol,enum,mandatory,enum=listener_protocol"`
	ProtocolPort            F[int32]             `wsme:"protocol_port,int,mandatory,min=1,max=65535"`
	ConnectionLimit         F[int64]             `wsme:"connection_limit,int,min=-1"`
	DefaultTLSContainerRef  F[string]            `wsme:"default_tls_container_ref,string,maxlen=255"`
	SNIContainerRefs        F[[]string]          `wsme:"sni_container_refs,[]string,maxlen=255"`
	DefaultPoolID           F[string]            `wsme:"default_pool_id,uuid"`
	DefaultPool             F[PoolCreate]        `wsme:"default_pool,object,schema=pool_single"`
	L7Policies              F[[]L7PolicyCreate]  `wsme:"l7policies,[]object,schema=l7policy_single"`
	InsertHeaders           F[map[string]string] `wsme:"insert_headers,{}string,maxlen=255"`
	TimeoutClientData       F[int64]             `wsme:"timeout_client_data,int,min=0,max=2073600000"`
	TimeoutMemberConnect    F[int64]             `wsme:"timeout_member_connect,int,min=0,max=2073600000"`
	TimeoutMemberData       F[int64]             `wsme:"timeout_member_data,int,min=0,max=2073600000"`
	TimeoutTCPInspect       F[int64]             `wsme:"timeout_tcp_inspect,int,min=0,max=2073600000"`
	Tags                    F[[]string]          `wsme:"tags,[]string,maxlen=255"`
	ClientCATLSContainerRef F[string]            `wsme:"client_ca_tls_container_ref,string,maxlen=255"`
	ClientAuthentication    F[string]            `wsme:"client_authentication,enum,enum=client_auth"`
	ClientCRLContainerRef   F[string]            `wsme:"client_crl_container_ref,string,maxlen=255"`
	AllowedCIDRs            F[[]string]          `wsme:"allowed_cidrs,[]cidr"`
	TLSCiphers              F[string]            `wsme:"tls_ciphers,string,maxlen=2048"`
	TLSVersions             F[[]string]          `wsme:"tls_versions,[]string,maxlen=32"`
	ALPNProtocols           F[[]string]          `wsme:"alpn_protocols,[]alpn"`
	HSTSMaxAge              F[int64]             `wsme:"hsts_max_age,int"`
	HSTSIncludeSubdomains   F[bool]              `wsme:"hsts_include_subdomains,bool"`
	HSTSPreload             F[bool]              `wsme:"hsts_preload,bool"`
}

// ListenerUpdate is ListenerPUT.
type ListenerUpdate struct {
	Name                    F[string]            `wsme:"name,string,maxlen=255"`
	Description             F[string]            `wsme:"description,string,maxlen=255"`
	AdminStateUp            F[bool]              `wsme:"admin_state_up,bool"`
	ConnectionLimit         F[int64]             `wsme:"connection_limit,int,min=-1"`
	DefaultTLSContainerRef  F[string]            `wsme:"default_tls_container_ref,string,maxlen=255"`
	SNIContainerRefs        F[[]string]          `wsme:"sni_container_refs,[]string,maxlen=255"`
	DefaultPoolID           F[string]            `wsme:"default_pool_id,uuid"`
	InsertHeaders           F[map[string]string] `wsme:"insert_headers,{}string,maxlen=255"`
	TimeoutClientData       F[int64]             `wsme:"timeout_client_data,int,min=0,max=2073600000"`
	TimeoutMemberConnect    F[int64]             `wsme:"timeout_member_connect,int,min=0,max=2073600000"`
	TimeoutMemberData       F[int64]             `wsme:"timeout_member_data,int,min=0,max=2073600000"`
	TimeoutTCPInspect       F[int64]             `wsme:"timeout_tcp_inspect,int,min=0,max=2073600000"`
	Tags                    F[[]string]          `wsme:"tags,[]string,maxlen=255"`
	ClientCATLSContainerRef F[string]            `wsme:"client_ca_tls_container_ref,string,maxlen=255"`
	ClientAuthentication    F[string]            `wsme:"client_authentication,enum,enum=client_auth"`
	ClientCRLContainerRef   F[string]            `wsme:"client_crl_container_ref,string,maxlen=255"`
	AllowedCIDRs            F[[]string]          `wsme:"allowed_cidrs,[]cidr"`
	TLSCiphers              F[string]            `wsme:"tls_ciphers,string,maxlen=2048"`
	TLSVersions             F[[]string]          `wsme:"tls_versions,[]string,maxlen=32"`
	ALPNProtocols           F[[]string]          `wsme:"alpn_protocols,[]alpn"`
	HSTSMaxAge              F[int64]             `wsme:"hsts_max_age,int,min=0"`
	HSTSIncludeSubdomains   F[bool]              `wsme:"hsts_include_subdomains,bool"`
	HSTSPreload             F[bool]              `wsme:"hsts_preload,bool"`
}

// SessionPersistence is SessionPersistencePOST / PUT (Type is mandatory on
// create only).
type SessionPersistence struct {
	Type                   F[string] `wsme:"type,enum,enum=sp_type"`
	CookieName             F[string] `wsme:"cookie_name,string,maxlen=255,pattern=cookie"`
	PersistenceTimeout     F[int64]  `wsme:"persistence_timeout,int"`
	PersistenceGranularity F[string] `wsme:"persistence_granularity,ip"`
}

type sessionPersistencePOST struct {
	Type                   F[string] `wsme:"type,enum,mandatory,enum=sp_type"`
	CookieName             F[string] `wsme:"cookie_name,string,maxlen=255,pattern=cookie"`
	PersistenceTimeout     F[int64]  `wsme:"persistence_timeout,int"`
	PersistenceGranularity F[string] `wsme:"persistence_granularity,ip"`
}

// PoolCreate is PoolPOST; in a graph (PoolSingleCreate) ListenerID,
// LoadBalancerID and ProjectID are not accepted and Protocol and
// LBAlgorithm are optional (a pool given only by name is a reference).
type PoolCreate struct {
	Name               F[string]              `wsme:"name,string,maxlen=255"`
	Description        F[string]              `wsme:"description,string,maxlen=255"`
	AdminStateUp       F[bool]                `wsme:"admin_state_up,bool"`
	ListenerID         F[string]              `wsme:"listener_id,uuid"`
	LoadBalancerID     F[string]              `wsme:"loadbalancer_id,uuid"`
	Protocol           F[string]              `wsme:"protocol,enum,mandatory,enum=pool_protocol"`
	LBAlgorithm        F[string]              `wsme:"lb_algorithm,enum,mandatory,enum=lb_algorithm"`
	SessionPersistence F[SessionPersistence]  `wsme:"session_persistence,object,schema=sp_post"`
	ProjectID          F[string]              `wsme:"project_id,string,maxlen=36"`
	HealthMonitor      F[HealthMonitorCreate] `wsme:"healthmonitor,object,schema=hm_single"`
	Members            F[[]MemberCreate]      `wsme:"members,[]object,schema=member_single"`
	Tags               F[[]string]            `wsme:"tags,[]string,maxlen=255"`
	TLSContainerRef    F[string]              `wsme:"tls_container_ref,string,maxlen=255"`
	CATLSContainerRef  F[string]              `wsme:"ca_tls_container_ref,string,maxlen=255"`
	CRLContainerRef    F[string]              `wsme:"crl_container_ref,string,maxlen=255"`
	TLSEnabled         F[bool]                `wsme:"tls_enabled,bool"`
	TLSCiphers         F[string]              `wsme:"tls_ciphers,string,maxlen=2048"`
	TLSVersions        F[[]string]            `wsme:"tls_versions,[]string,maxlen=32"`
	ALPNProtocols      F[[]string]            `wsme:"alpn_protocols,[]alpn"`
	TenantID           F[string]              `wsme:"tenant_id,string,maxlen=36"`
}

type poolSingleCreate struct {
	Name               F[string]              `wsme:"name,string,maxlen=255"`
	Description        F[string]              `wsme:"description,string,maxlen=255"`
	AdminStateUp       F[bool]                `wsme:"admin_state_up,bool"`
	Protocol           F[string]              `wsme:"protocol,enum,enum=pool_protocol"`
	LBAlgorithm        F[string]              `wsme:"lb_algorithm,enum,enum=lb_algorithm"`
	SessionPersistence F[SessionPersistence]  `wsme:"session_persistence,object,schema=sp_post"`
	HealthMonitor      F[HealthMonitorCreate] `wsme:"healthmonitor,object,schema=hm_single"`
	Members            F[[]MemberCreate]      `wsme:"members,[]object,schema=member_single"`
	Tags               F[[]string]            `wsme:"tags,[]string,maxlen=255"`
	TLSContainerRef    F[string]              `wsme:"tls_container_ref,string,maxlen=255"`
	CATLSContainerRef  F[string]              `wsme:"ca_tls_container_ref,string,maxlen=255"`
	CRLContainerRef    F[string]              `wsme:"crl_container_ref,string,maxlen=255"`
	TLSEnabled         F[bool]                `wsme:"tls_enabled,bool"`
	TLSCiphers         F[string]              `wsme:"tls_ciphers,string,maxlen=2048"`
	TLSVersions        F[[]string]            `wsme:"tls_versions,[]string,maxlen=32"`
	ALPNProtocols      F[[]string]            `wsme:"alpn_protocols,[]alpn"`
}

// PoolUpdate is PoolPUT.
type PoolUpdate struct {
	Name               F[string]             `wsme:"name,string,maxlen=255"`
	Description        F[string]             `wsme:"description,string,maxlen=255"`
	AdminStateUp       F[bool]               `wsme:"admin_state_up,bool"`
	LBAlgorithm        F[string]             `wsme:"lb_algorithm,enum,enum=lb_algorithm"`
	SessionPersistence F[SessionPersistence] `wsme:"session_persistence,object"`
	Tags               F[[]string]           `wsme:"tags,[]string,maxlen=255"`
	TLSContainerRef    F[string]             `wsme:"tls_container_ref,string,maxlen=255"`
	CATLSContainerRef  F[string]             `wsme:"ca_tls_container_ref,string,maxlen=255"`
	CRLContainerRef    F[string]             `wsme:"crl_container_ref,string,maxlen=255"`
	TLSEnabled         F[bool]               `wsme:"tls_enabled,bool"`
	TLSCiphers         F[string]             `wsme:"tls_ciphers,string,maxlen=2048"`
	TLSVersions        F[[]string]           `wsme:"tls_versions,[]string,maxlen=32"`
	ALPNProtocols      F[[]string]           `wsme:"alpn_protocols,[]alpn"`
}

// MemberCreate is MemberPOST (and the items of a batch update).
type MemberCreate struct {
	Name           F[string]   `wsme:"name,string,maxlen=255"`
	AdminStateUp   F[bool]     `wsme:"admin_state_up,bool"`
	Address        F[string]   `wsme:"address,ip,mandatory"`
	ProtocolPort   F[int32]    `wsme:"protocol_port,int,mandatory,min=1,max=65535"`
	Weight         F[int32]    `wsme:"weight,int,min=0,max=256"`
	Backup         F[bool]     `wsme:"backup,bool"`
	SubnetID       F[string]   `wsme:"subnet_id,uuid"`
	ProjectID      F[string]   `wsme:"project_id,string,maxlen=36"`
	MonitorPort    F[int32]    `wsme:"monitor_port,int,min=1,max=65535"`
	MonitorAddress F[string]   `wsme:"monitor_address,ip"`
	Tags           F[[]string] `wsme:"tags,[]string,maxlen=255"`
	RequestSRIOV   F[bool]     `wsme:"request_sriov,bool"`
	TenantID       F[string]   `wsme:"tenant_id,string,maxlen=36"`
}

type memberSingleCreate struct {
	Name           F[string]   `wsme:"name,string,maxlen=255"`
	AdminStateUp   F[bool]     `wsme:"admin_state_up,bool"`
	Address        F[string]   `wsme:"address,ip,mandatory"`
	ProtocolPort   F[int32]    `wsme:"protocol_port,int,mandatory,min=1,max=65535"`
	Weight         F[int32]    `wsme:"weight,int,min=0,max=256"`
	Backup         F[bool]     `wsme:"backup,bool"`
	SubnetID       F[string]   `wsme:"subnet_id,uuid"`
	MonitorPort    F[int32]    `wsme:"monitor_port,int,min=1,max=65535"`
	MonitorAddress F[string]   `wsme:"monitor_address,ip"`
	Tags           F[[]string] `wsme:"tags,[]string,maxlen=255"`
	RequestSRIOV   F[bool]     `wsme:"request_sriov,bool"`
}

// MemberUpdate is MemberPUT.
type MemberUpdate struct {
	Name           F[string]   `wsme:"name,string,maxlen=255"`
	AdminStateUp   F[bool]     `wsme:"admin_state_up,bool"`
	Weight         F[int32]    `wsme:"weight,int,min=0,max=256"`
	Backup         F[bool]     `wsme:"backup,bool"`
	MonitorPort    F[int32]    `wsme:"monitor_port,int,min=1,max=65535"`
	MonitorAddress F[string]   `wsme:"monitor_address,ip"`
	Tags           F[[]string] `wsme:"tags,[]string,maxlen=255"`
}

// HealthMonitorCreate is HealthMonitorPOST (PoolID and ProjectID are not
// accepted inside a graph).
type HealthMonitorCreate struct {
	Name           F[string]   `wsme:"name,string,maxlen=255"`
	Type           F[string]   `wsme:"type,enum,mandatory,enum=hm_type"`
	Delay          F[int32]    `wsme:"delay,int,mandatory,min=0"`
	Timeout        F[int32]    `wsme:"timeout,int,mandatory,min=0"`
	MaxRetriesDown F[int32]    `wsme:"max_retries_down,int,min=1,max=10"`
	MaxRetries     F[int32]    `wsme:"max_retries,int,mandatory,min=1,max=10"`
	HTTPMethod     F[string]   `wsme:"http_method,enum,enum=http_method"`
	URLPath        F[string]   `wsme:"url_path,urlpath"`
	ExpectedCodes  F[string]   `wsme:"expected_codes,string,pattern=codes"`
	AdminStateUp   F[bool]     `wsme:"admin_state_up,bool"`
	ProjectID      F[string]   `wsme:"project_id,string,maxlen=36"`
	PoolID         F[string]   `wsme:"pool_id,uuid,mandatory"`
	Tags           F[[]string] `wsme:"tags,[]string,maxlen=255"`
	HTTPVersion    F[float64]  `wsme:"http_version,floatenum,enum=http_version"`
	DomainName     F[string]   `wsme:"domain_name,string,minlen=1,maxlen=255,pattern=domain"`
	TenantID       F[string]   `wsme:"tenant_id,string,maxlen=36"`
}

type healthMonitorSingleCreate struct {
	Name           F[string]   `wsme:"name,string,maxlen=255"`
	Type           F[string]   `wsme:"type,enum,mandatory,enum=hm_type"`
	Delay          F[int32]    `wsme:"delay,int,mandatory,min=0"`
	Timeout        F[int32]    `wsme:"timeout,int,mandatory,min=0"`
	MaxRetriesDown F[int32]    `wsme:"max_retries_down,int,min=1,max=10"`
	MaxRetries     F[int32]    `wsme:"max_retries,int,mandatory,min=1,max=10"`
	HTTPMethod     F[string]   `wsme:"http_method,enum,enum=http_method"`
	URLPath        F[string]   `wsme:"url_path,urlpath"`
	ExpectedCodes  F[string]   `wsme:"expected_codes,string,pattern=codes"`
	AdminStateUp   F[bool]     `wsme:"admin_state_up,bool"`
	Tags           F[[]string] `wsme:"tags,[]string,maxlen=255"`
	HTTPVersion    F[float64]  `wsme:"http_version,floatenum,enum=http_version"`
	DomainName     F[string]   `wsme:"domain_name,string,minlen=1,maxlen=255,pattern=domain"`
}

// HealthMonitorUpdate is HealthMonitorPUT.
type HealthMonitorUpdate struct {
	Name           F[string]   `wsme:"name,string,maxlen=255"`
	Delay          F[int32]    `wsme:"delay,int,min=0"`
	Timeout        F[int32]    `wsme:"timeout,int,min=0"`
	MaxRetriesDown F[int32]    `wsme:"max_retries_down,int,min=1,max=10"`
	MaxRetries     F[int32]    `wsme:"max_retries,int,min=1,max=10"`
	HTTPMethod     F[string]   `wsme:"http_method,enum,enum=http_method"`
	URLPath        F[string]   `wsme:"url_path,urlpath"`
	ExpectedCodes  F[string]   `wsme:"expected_codes,string,pattern=codes"`
	AdminStateUp   F[bool]     `wsme:"admin_state_up,bool"`
	Tags           F[[]string] `wsme:"tags,[]string,maxlen=255"`
	HTTPVersion    F[float64]  `wsme:"http_version,floatenum,enum=http_version"`
	DomainName     F[string]   `wsme:"domain_name,string,minlen=1,maxlen=255,pattern=domain"`
}

// L7PolicyCreate is L7PolicyPOST; in a graph (L7PolicySingleCreate) the
// redirect pool comes as RedirectPool and ListenerID is not accepted.
type L7PolicyCreate struct {
	Name             F[string]         `wsme:"name,string,maxlen=255"`
	Description      F[string]         `wsme:"description,string,maxlen=255"`
	AdminStateUp     F[bool]           `wsme:"admin_state_up,bool"`
	ProjectID        F[string]         `wsme:"project_id,string,maxlen=36"`
	Action           F[string]         `wsme:"action,enum,mandatory,enum=l7policy_action"`
	RedirectPoolID   F[string]         `wsme:"redirect_pool_id,uuid"`
	RedirectPool     F[PoolCreate]     // graph create only (L7PolicySingleCreate)
	RedirectURL      F[string]         `wsme:"redirect_url,url"`
	RedirectPrefix   F[string]         `wsme:"redirect_prefix,url"`
	Position         F[int32]          `wsme:"position,int,min=1,max=2147483647"`
	ListenerID       F[string]         `wsme:"listener_id,uuid,mandatory"`
	Rules            F[[]L7RuleCreate] `wsme:"rules,[]object,schema=l7rule_single"`
	Tags             F[[]string]       `wsme:"tags,[]string,maxlen=255"`
	RedirectHTTPCode F[int32]          `wsme:"redirect_http_code,intenum,enum=redirect_code"`
	TenantID         F[string]         `wsme:"tenant_id,string,maxlen=36"`
}

type l7PolicySingleCreate struct {
	Name             F[string]         `wsme:"name,string,maxlen=255"`
	Description      F[string]         `wsme:"description,string,maxlen=255"`
	AdminStateUp     F[bool]           `wsme:"admin_state_up,bool"`
	Action           F[string]         `wsme:"action,enum,mandatory,enum=l7policy_action"`
	RedirectPool     F[PoolCreate]     `wsme:"redirect_pool,object,schema=pool_single"`
	RedirectURL      F[string]         `wsme:"redirect_url,url"`
	RedirectPrefix   F[string]         `wsme:"redirect_prefix,url"`
	Position         F[int32]          `wsme:"position,int,min=1,max=2147483647"`
	Rules            F[[]L7RuleCreate] `wsme:"rules,[]object,schema=l7rule_single"`
	Tags             F[[]string]       `wsme:"tags,[]string,maxlen=255"`
	RedirectHTTPCode F[int32]          `wsme:"redirect_http_code,intenum,enum=redirect_code"`
}

// L7PolicyUpdate is L7PolicyPUT.
type L7PolicyUpdate struct {
	Name             F[string]   `wsme:"name,string,maxlen=255"`
	Description      F[string]   `wsme:"description,string,maxlen=255"`
	AdminStateUp     F[bool]     `wsme:"admin_state_up,bool"`
	Action           F[string]   `wsme:"action,enum,enum=l7policy_action"`
	RedirectPoolID   F[string]   `wsme:"redirect_pool_id,uuid"`
	RedirectURL      F[string]   `wsme:"redirect_url,url"`
	RedirectPrefix   F[string]   `wsme:"redirect_prefix,url"`
	Position         F[int32]    `wsme:"position,int,min=1,max=2147483647"`
	Tags             F[[]string] `wsme:"tags,[]string,maxlen=255"`
	RedirectHTTPCode F[int32]    `wsme:"redirect_http_code,intenum,enum=redirect_code"`
}

// L7RuleCreate is L7RulePOST (ProjectID is not accepted inside a graph).
type L7RuleCreate struct {
	Type         F[string]   `wsme:"type,enum,mandatory,enum=l7rule_type"`
	CompareType  F[string]   `wsme:"compare_type,enum,mandatory,enum=compare_type"`
	Key          F[string]   `wsme:"key,string,maxlen=255,pattern=nocrlf"`
	Value        F[string]   `wsme:"value,string,mandatory,maxlen=255,pattern=nocrlf"`
	Invert       F[bool]     `wsme:"invert,bool"`
	AdminStateUp F[bool]     `wsme:"admin_state_up,bool"`
	ProjectID    F[string]   `wsme:"project_id,string,maxlen=36"`
	Tags         F[[]string] `wsme:"tags,[]string,maxlen=255"`
	TenantID     F[string]   `wsme:"tenant_id,string,maxlen=36"`
}

type l7RuleSingleCreate struct {
	Type         F[string]   `wsme:"type,enum,mandatory,enum=l7rule_type"`
	CompareType  F[string]   `wsme:"compare_type,enum,mandatory,enum=compare_type"`
	Key          F[string]   `wsme:"key,string,maxlen=255"`
	Value        F[string]   `wsme:"value,string,mandatory,maxlen=255"`
	Invert       F[bool]     `wsme:"invert,bool"`
	AdminStateUp F[bool]     `wsme:"admin_state_up,bool"`
	Tags         F[[]string] `wsme:"tags,[]string,maxlen=255"`
}

// L7RuleUpdate is L7RulePUT.
type L7RuleUpdate struct {
	Type         F[string]   `wsme:"type,enum,enum=l7rule_type"`
	CompareType  F[string]   `wsme:"compare_type,enum,enum=compare_type"`
	Key          F[string]   `wsme:"key,string,maxlen=255,pattern=nocrlf"`
	Value        F[string]   `wsme:"value,string,maxlen=255,pattern=nocrlf"`
	Invert       F[bool]     `wsme:"invert,bool"`
	AdminStateUp F[bool]     `wsme:"admin_state_up,bool"`
	Tags         F[[]string] `wsme:"tags,[]string,maxlen=255"`
}

// QuotaUpdate is QuotaPUT; loadbalancer/load_balancer and
// healthmonitor/health_monitor are aliases.
type QuotaUpdate struct {
	Loadbalancer  F[int64] `wsme:"loadbalancer,int,min=-1,max=2000000000"`
	LoadBalancer  F[int64] `wsme:"load_balancer,int,min=-1,max=2000000000"`
	Listener      F[int64] `wsme:"listener,int,min=-1,max=2000000000"`
	Member        F[int64] `wsme:"member,int,min=-1,max=2000000000"`
	Pool          F[int64] `wsme:"pool,int,min=-1,max=2000000000"`
	Healthmonitor F[int64] `wsme:"healthmonitor,int,min=-1,max=2000000000"`
	HealthMonitor F[int64] `wsme:"health_monitor,int,min=-1,max=2000000000"`
	L7Policy      F[int64] `wsme:"l7policy,int,min=-1,max=2000000000"`
	L7Rule        F[int64] `wsme:"l7rule,int,min=-1,max=2000000000"`
}

// FlavorCreate is FlavorPOST.
type FlavorCreate struct {
	Name            F[string] `wsme:"name,string,mandatory,maxlen=255"`
	Description     F[string] `wsme:"description,string,maxlen=255"`
	Enabled         F[bool]   `wsme:"enabled,bool"`
	FlavorProfileID F[string] `wsme:"flavor_profile_id,uuid,mandatory"`
}

// FlavorUpdate is FlavorPUT.
type FlavorUpdate struct {
	Name        F[string] `wsme:"name,string,maxlen=255"`
	Description F[string] `wsme:"description,string,maxlen=255"`
	Enabled     F[bool]   `wsme:"enabled,bool"`
}

// FlavorProfileCreate is FlavorProfilePOST.
type FlavorProfileCreate struct {
	Name         F[string] `wsme:"name,string,mandatory,maxlen=255"`
	ProviderName F[string] `wsme:"provider_name,string,mandatory,maxlen=255"`
	FlavorData   F[string] `wsme:"flavor_data,string,mandatory,maxlen=4096"`
}

// FlavorProfileUpdate is FlavorProfilePUT.
type FlavorProfileUpdate struct {
	Name         F[string] `wsme:"name,string,maxlen=255"`
	ProviderName F[string] `wsme:"provider_name,string,maxlen=255"`
	FlavorData   F[string] `wsme:"flavor_data,string,maxlen=4096"`
}

// AvailabilityZoneCreate is AvailabilityZonePOST.
type AvailabilityZoneCreate struct {
	Name                      F[string] `wsme:"name,string,mandatory,maxlen=255"`
	Description               F[string] `wsme:"description,string,maxlen=255"`
	Enabled                   F[bool]   `wsme:"enabled,bool"`
	AvailabilityZoneProfileID F[string] `wsme:"availability_zone_profile_id,uuid,mandatory"`
}

// AvailabilityZoneUpdate is AvailabilityZonePUT.
type AvailabilityZoneUpdate struct {
	Description F[string] `wsme:"description,string,maxlen=255"`
	Enabled     F[bool]   `wsme:"enabled,bool"`
}

// AvailabilityZoneProfileCreate is AvailabilityZoneProfilePOST.
type AvailabilityZoneProfileCreate struct {
	Name                 F[string] `wsme:"name,string,mandatory,maxlen=255"`
	ProviderName         F[string] `wsme:"provider_name,string,mandatory,maxlen=255"`
	AvailabilityZoneData F[string] `wsme:"availability_zone_data,string,mandatory,maxlen=4096"`
}

// AvailabilityZoneProfileUpdate is AvailabilityZoneProfilePUT.
type AvailabilityZoneProfileUpdate struct {
	Name                 F[string] `wsme:"name,string,maxlen=255"`
	ProviderName         F[string] `wsme:"provider_name,string,maxlen=255"`
	AvailabilityZoneData F[string] `wsme:"availability_zone_data,string,maxlen=4096"`
}
