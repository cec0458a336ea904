package views

// Kind names a resource kind of the Octavia API.
type Kind string

// The resource kinds.
const (
	KindLoadBalancer            Kind = "loadbalancer"
	KindListener                Kind = "listener"
	KindPool                    Kind = "pool"
	KindMember                  Kind = "member"
	KindHealthMonitor           Kind = "healthmonitor"
	KindL7Policy                Kind = "l7policy"
	KindL7Rule                  Kind = "l7rule"
	KindAmphora                 Kind = "amphora"
	KindQuota                   Kind = "quota"
	KindFlavor                  Kind = "flavor"
	KindFlavorProfile           Kind = "flavorprofile"
	KindAvailabilityZone        Kind = "availabilityzone"
	KindAvailabilityZoneProfile Kind = "availabilityzoneprofile"
)

// Kinds lists every kind, parents before children.
func Kinds() []Kind {
	return []Kind{KindLoadBalancer, KindListener, KindPool, KindMember, KindHealthMonitor, KindL7Policy, KindL7Rule,
		KindAmphora, KindQuota, KindFlavor, KindFlavorProfile, KindAvailabilityZone, KindAvailabilityZoneProfile}
}

// fieldTable lists the attributes of each kind's object.
func fieldTable() map[Kind][]string {
	return map[Kind][]string{
		KindLoadBalancer: {"id", "name", "description", "provisioning_status", "operating_status", "admin_state_up",
			"project_id", "tenant_id", "created_at", "updated_at", "vip_address", "vip_port_id", "vip_subnet_id",
			"vip_network_id", "vip_qos_policy_id", "additional_vips", "listeners", "pools", "provider", "flavor_id",
			"availability_zone", "tags"},
		KindListener: {"id", "name", "description", "provisioning_status", "operating_status", "admin_state_up", "protocol",
			"protocol_port", "connection_limit", "default_tls_container_ref", "sni_container_refs", "project_id", "tenant_id",
			"default_pool_id", "l7policies", "insert_headers", "created_at", "updated_at", "loadbalancers",
			"timeout_client_data", "timeout_member_connect", "timeout_member_data", "timeout_tcp_inspect", "tags",
			"client_ca_tls_container_ref", "client_authentication", "client_crl_container_ref", "allowed_cidrs",
			"tls_ciphers", "tls_versions", "alpn_protocols"},
		KindPool: {"id", "name", "description", "provisioning_status", "operating_status", "admin_state_up", "protocol",
			"lb_algorithm", "session_persistence", "project_id", "tenant_id", "loadbalancers", "listeners", "created_at",
			"updated_at", "healthmonitor_id", "members", "tags", "tls_container_ref", "ca_tls_container_ref",
			"crl_container_ref", "tls_enabled", "tls_ciphers", "tls_versions", "alpn_protocols"},
		KindMember: {"id", "name", "operating_status", "provisioning_status", "admin_state_up", "address", "protocol_port",
			"weight", "backup", "subnet_id", "project_id", "tenant_id", "created_at", "updated_at", "monitor_address",
			"monitor_port", "tags"},
		KindHealthMonitor: {"id", "name", "type", "delay", "timeout", "max_retries", "max_retries_down", "http_method",
			"url_path", "expected_codes", "admin_state_up", "project_id", "tenant_id", "pools", "provisioning_status",
			"operating_status", "created_at", "updated_at", "tags", "http_version", "domain_name"},
		KindL7Policy: {"id", "name", "description", "provisioning_status", "operating_status", "admin_state_up",
			"project_id", "tenant_id", "action", "listener_id", "redirect_pool_id", "redirect_url", "redirect_prefix",
			"redirect_http_code", "position", "rules", "created_at", "updated_at", "tags"},
		KindL7Rule: {"id", "type", "compare_type", "key", "value", "invert", "provisioning_status", "operating_status",
			"created_at", "updated_at", "project_id", "tenant_id", "admin_state_up", "tags"},
		KindAmphora: {"id", "loadbalancer_id", "compute_id", "lb_network_ip", "vrrp_ip", "ha_ip", "vrrp_port_id",
			"ha_port_id", "cert_expiration", "cert_busy", "role", "status", "vrrp_interface", "vrrp_id", "vrrp_priority",
			"cached_zone", "created_at", "updated_at", "image_id", "compute_flavor"},
		KindQuota: {"project_id", "tenant_id", "loadbalancer", "load_balancer", "listener", "pool", "healthmonitor",
			"health_monitor", "member", "l7policy", "l7rule"},
		KindFlavor:                  {"id", "name", "description", "enabled", "flavor_profile_id"},
		KindFlavorProfile:           {"id", "name", "provider_name", "flavor_data"},
		KindAvailabilityZone:        {"name", "description", "enabled", "availability_zone_profile_id"},
		KindAvailabilityZoneProfile: {"id", "name", "provider_name", "availability_zone_data"},
	}
}

// Fields returns the attribute names of a kind's object (nil for an unknown
// kind).
func Fields(k Kind) []string { return fieldTable()[k] }

// HasField reports whether the kind's object has the attribute.
func HasField(k Kind, name string) bool {
	for _, f := range fieldTable()[k] {
		if f == name {
			return true
		}
	}
	return false
}

// HasTags reports whether objects of the kind carry tags.
func HasTags(k Kind) bool { return HasField(k, "tags") }
