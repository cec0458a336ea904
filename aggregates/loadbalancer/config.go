package loadbalancer

// Provisioning and operating statuses.
const (
	StatusActive        = "ACTIVE"
	StatusPendingCreate = "PENDING_CREATE"
	StatusPendingUpdate = "PENDING_UPDATE"
	StatusPendingDelete = "PENDING_DELETE"
	StatusDeleted       = "DELETED"
	StatusError         = "ERROR"

	OperatingOnline    = "ONLINE"
	OperatingOffline   = "OFFLINE"
	OperatingDegraded  = "DEGRADED"
	OperatingError     = "ERROR"
	OperatingDraining  = "DRAINING"
	OperatingNoMonitor = "NO_MONITOR"
)

// MaxRulesPerPolicy is Octavia's limit of L7 rules on one policy.
const MaxRulesPerPolicy = 50

// Config holds the deployment settings decisions depend on (octavia.conf
// defaults in DefaultConfig).
type Config struct {
	TimeoutClientData    int64
	TimeoutMemberConnect int64
	TimeoutMemberData    int64
	TimeoutTCPInspect    int64

	ListenerCiphers     string
	ListenerTLSVersions []string
	ListenerALPN        []string
	PoolCiphers         string
	PoolTLSVersions     []string
	PoolALPN            []string

	AllowPingHealthMonitors bool
	UDPConnectMinInterval   int32
	// ReservedIPs are member addresses that are refused.
	ReservedIPs []string
	// Topology is the default topology (SINGLE or ACTIVE_STANDBY).
	Topology string
	// Provider is the default provider driver.
	Provider string
}

// DefaultConfig returns Octavia's defaults.
func DefaultConfig() Config {
	suiteB := "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:" +
		"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:" +
		"ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
	return Config{
		TimeoutClientData:       50000,
		TimeoutMemberConnect:    5000,
		TimeoutMemberData:       50000,
		TimeoutTCPInspect:       0,
		ListenerCiphers:         suiteB,
		ListenerTLSVersions:     []string{"TLSv1.2", "TLSv1.3"},
		ListenerALPN:            []string{"h2", "http/1.1", "http/1.0"},
		PoolCiphers:             suiteB,
		PoolTLSVersions:         []string{"TLSv1.2", "TLSv1.3"},
		PoolALPN:                []string{"h2", "http/1.1", "http/1.0"},
		AllowPingHealthMonitors: true,
		UDPConnectMinInterval:   3,
		ReservedIPs:             []string{"169.254.169.254"},
		Topology:                "SINGLE",
		Provider:                "amphora",
	}
}
