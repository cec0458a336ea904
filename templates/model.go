// Package templates renders the configuration files an amphora runs with:
// haproxy.cfg (one per load balancer, every TCP-family listener), the
// keepalived VRRP configuration (ACTIVE_STANDBY) and the keepalived LVS
// configuration of UDP/SCTP listeners. The output follows the semantics of
// Octavia's amphora templates (as described in the shared spec templates.md):
// objects are named by id, defaults come from octavia.conf.
//
// Rendering is split in two steps: pure Go functions turn Ostia's resource
// model (eventsv1 messages) into a view model holding the final directive
// values, and text/template files embedded in the package only lay those
// values out.
package templates

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"path"
	"strings"

	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// Octavia protocol, algorithm, persistence, monitor and L7 names.
const (
	ProtocolTCP             = "TCP"
	ProtocolHTTP            = "HTTP"
	ProtocolHTTPS           = "HTTPS"
	ProtocolTerminatedHTTPS = "TERMINATED_HTTPS"
	ProtocolPrometheus      = "PROMETHEUS"
	ProtocolUDP             = "UDP"
	ProtocolSCTP            = "SCTP"
	ProtocolProxy           = "PROXY"
	ProtocolProxyV2         = "PROXYV2"

	AlgorithmRoundRobin       = "ROUND_ROBIN"
	AlgorithmLeastConnections = "LEAST_CONNECTIONS"
	AlgorithmSourceIP         = "SOURCE_IP"

	PersistenceSourceIP   = "SOURCE_IP"
	PersistenceHTTPCookie = "HTTP_COOKIE"
	PersistenceAppCookie  = "APP_COOKIE"

	MonitorHTTP       = "HTTP"
	MonitorHTTPS      = "HTTPS"
	MonitorTCP        = "TCP"
	MonitorPing       = "PING"
	MonitorTLSHello   = "TLS-HELLO"
	MonitorUDPConnect = "UDP-CONNECT"
	MonitorSCTP       = "SCTP"

	ActionReject          = "REJECT"
	ActionRedirectToURL   = "REDIRECT_TO_URL"
	ActionRedirectPrefix  = "REDIRECT_PREFIX"
	ActionRedirectToPool  = "REDIRECT_TO_POOL"
	RuleHostName          = "HOST_NAME"
	RulePath              = "PATH"
	RuleFileType          = "FILE_TYPE"
	RuleHeader            = "HEADER"
	RuleCookie            = "COOKIE"
	RuleSSLConnHasCert    = "SSL_CONN_HAS_CERT"
	RuleSSLVerifyResult   = "SSL_VERIFY_RESULT"
	RuleSSLDNField        = "SSL_DN_FIELD"
	CompareRegex          = "REGEX"
	CompareStartsWith     = "STARTS_WITH"
	CompareEndsWith       = "ENDS_WITH"
	CompareContains       = "CONTAINS"
	CompareEqualTo        = "EQUAL_TO"
	TopologyActiveStandby = "ACTIVE_STANDBY"
	TopologySingle        = "SINGLE"

	RoleMaster = "MASTER"
	RoleBackup = "BACKUP"

	statusPendingDelete = "PENDING_DELETE"
	statusAllocated     = "ALLOCATED"
)

// Octavia constants used by the templates.
const (
	// PeerPort is haproxy's base peer port on amphorae.
	PeerPort = 1025
	// MaxGlobalConnections caps the global maxconn.
	MaxGlobalConnections = 1000000
	// PriorityMaster and PriorityBackup are the VRRP priorities of the roles.
	PriorityMaster = 100
	PriorityBackup = 90
	// PrometheusInternalBackend is the backend PROMETHEUS listeners use.
	PrometheusInternalBackend = "prometheus-exporter-internal"
	// PrometheusInternalFrontend serves haproxy's own exporter to the
	// amphora's prometheus proxy.
	PrometheusInternalFrontend = "prometheus-exporter-internal-endpoint"
)

// DefaultUserLogFormat is [haproxy_amphora] user_log_format.
const DefaultUserLogFormat = "{{ project_id }} {{ lb_id }} %f %ci %cp %t %{+Q}r %ST %B %U %[ssl_c_verify] %{+Q}[ssl_c_s_dn] %b %s %Tt %tsc"

// DefaultCiphers is the default of [api_settings] default_listener_ciphers
// and default_pool_ciphers.
const DefaultCiphers = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:" +
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" +
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" +
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"

// Settings are the octavia.conf options feeding haproxy.cfg. Zero-valued
// fields take Octavia's defaults (see DefaultSettings); booleans are named so
// that false is Octavia's behaviour.
type Settings struct {
	// BasePath is [haproxy_amphora] base_path (/var/lib/octavia).
	BasePath string
	// CertDir is [haproxy_amphora] base_cert_dir (/var/lib/octavia/certs).
	CertDir string
	// StatsSocketPath defaults to <BasePath>/<lb_id>.sock.
	StatsSocketPath string
	// StatsSocketLevel is the stats socket access level (Octavia: user).
	StatsSocketLevel string
	// ServerStateFile defaults to <BasePath>/<lb_id>/servers-state.
	ServerStateFile string
	// User and Group run haproxy (Octavia: nobody; the group comes from a
	// separate file on the amphora, so Group is empty by default).
	User  string
	Group string
	// LogSocket is where haproxy sends syslog (/run/rsyslog/octavia/log).
	LogSocket string
	// UserLogFacility and AdminLogFacility are syslog facilities
	// (local0, local1).
	UserLogFacility  string
	AdminLogFacility string
	// DisableConnectionLogging is the inverse of [haproxy_amphora]
	// connection_logging.
	DisableConnectionLogging bool
	// UserLogFormat is [haproxy_amphora] user_log_format.
	UserLogFormat string
	// Listener timeout defaults in milliseconds; a listener value of 0
	// means "use the default".
	TimeoutClientData    int64
	TimeoutMemberConnect int64
	TimeoutMemberData    int64
	TimeoutTCPInspect    int64
	// DefaultConnectionLimit is the maxconn of unlimited listeners (50000).
	DefaultConnectionLimit int64
	// MaxGlobalConnections caps the global maxconn (0: Octavia's
	// MaxGlobalConnections); for hosts whose open-files limit is lower
	// than haproxy needs for a million connections.
	MaxGlobalConnections int64
	// StickSize is the stick-table size (10k).
	StickSize string
	// DefaultListenerCiphers and DefaultPoolCiphers replace invalid or
	// missing cipher strings.
	DefaultListenerCiphers string
	DefaultPoolCiphers     string
	// HAProxyVersion is the amphora's haproxy version as reported by the
	// agent's /info (2.6 when empty); it enables version dependent features.
	HAProxyVersion string
	// PeerPort is haproxy's peer port (1025).
	PeerPort int
	// PingScriptPath is the external-check command of PING monitors
	// (<BasePath>/ping-wrapper.sh).
	PingScriptPath string
	// NetNamespace is the amphora namespace LVS configurations run in
	// (amphora-haproxy).
	NetNamespace string
	// UDPCheckScriptPath is the UDP-CONNECT check of LVS listeners
	// (<BasePath>/lvs/check/udp_check.sh).
	UDPCheckScriptPath string
	// SCTPCheckCommand is the SCTP check command of LVS listeners
	// (amphora-health-checker).
	SCTPCheckCommand string
	// SkipAllowedCIDRs leaves listener allowed_cidrs to the security groups
	// (as Octavia does) instead of also rendering a source ACL.
	SkipAllowedCIDRs bool
	// SSLHelloCheck renders `option ssl-hello-chk` for TLS-HELLO monitors of
	// pools without TLS (older Octavia). By default a TLS-HELLO monitor is a
	// plain connect check, or a TLS handshake when the pool uses TLS.
	SSLHelloCheck bool
}

// DefaultSettings returns Octavia's defaults.
func DefaultSettings() Settings {
	return Settings{
		BasePath:               "/var/lib/octavia",
		CertDir:                "/var/lib/octavia/certs",
		StatsSocketLevel:       "user",
		User:                   "nobody",
		LogSocket:              "/run/rsyslog/octavia/log",
		UserLogFacility:        "local0",
		AdminLogFacility:       "local1",
		UserLogFormat:          DefaultUserLogFormat,
		TimeoutClientData:      50000,
		TimeoutMemberConnect:   5000,
		TimeoutMemberData:      50000,
		TimeoutTCPInspect:      0,
		DefaultConnectionLimit: 50000,
		StickSize:              "10k",
		DefaultListenerCiphers: DefaultCiphers,
		DefaultPoolCiphers:     DefaultCiphers,
		HAProxyVersion:         "2.6",
		PeerPort:               PeerPort,
		NetNamespace:           "amphora-haproxy",
		SCTPCheckCommand:       "amphora-health-checker",
	}
}

// withDefaults fills the zero fields of s.
func (s Settings) withDefaults() Settings {
	d := DefaultSettings()
	str := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	num := func(v *int64, def int64) {
		if *v <= 0 {
			*v = def
		}
	}
	str(&s.BasePath, d.BasePath)
	str(&s.CertDir, d.CertDir)
	str(&s.StatsSocketLevel, d.StatsSocketLevel)
	str(&s.User, d.User)
	str(&s.LogSocket, d.LogSocket)
	str(&s.UserLogFacility, d.UserLogFacility)
	str(&s.AdminLogFacility, d.AdminLogFacility)
	str(&s.UserLogFormat, d.UserLogFormat)
	str(&s.StickSize, d.StickSize)
	str(&s.DefaultListenerCiphers, d.DefaultListenerCiphers)
	str(&s.DefaultPoolCiphers, d.DefaultPoolCiphers)
	str(&s.HAProxyVersion, d.HAProxyVersion)
	num(&s.TimeoutClientData, d.TimeoutClientData)
	num(&s.TimeoutMemberConnect, d.TimeoutMemberConnect)
	num(&s.TimeoutMemberData, d.TimeoutMemberData)
	if s.TimeoutTCPInspect < 0 {
		s.TimeoutTCPInspect = 0
	}
	num(&s.DefaultConnectionLimit, d.DefaultConnectionLimit)
	if s.PeerPort <= 0 {
		s.PeerPort = d.PeerPort
	}
	str(&s.NetNamespace, d.NetNamespace)
	str(&s.SCTPCheckCommand, d.SCTPCheckCommand)
	if s.UDPCheckScriptPath == "" {
		s.UDPCheckScriptPath = path.Join(s.BasePath, "lvs", "check", "udp_check.sh")
	}
	if s.PingScriptPath == "" {
		s.PingScriptPath = path.Join(s.BasePath, "ping-wrapper.sh")
	}
	return s
}

// AmphoraDetails is the part of the agent's GET /details answer that tunes
// haproxy (all memory values in KiB).
type AmphoraDetails struct {
	CPUCount            int
	ActiveTunedProfiles string
	MemFree             int64
	MemBuffers          int64
	MemCached           int64
}

// Peer is one haproxy peer (an amphora of an ACTIVE_STANDBY load balancer).
type Peer struct {
	// Name is the haproxy local peer name (PeerName of the amphora id).
	Name    string
	Address string
	Port    int
}

// CertFiles overrides where TLS material lives on the amphora. Paths not
// given follow Octavia's naming (see CrtListPath, SecretPath, PoolCertPath).
type CertFiles struct {
	// CrtLists maps a listener id to its crt-list file.
	CrtLists map[string]string
	// Secrets maps a container ref (client CA, CRL, pool CA, pool CRL) to
	// its PEM file.
	Secrets map[string]string
	// PoolCerts maps a pool id to its client certificate PEM (cert + key).
	PoolCerts map[string]string
}

// LoadBalancerConfig is everything haproxy.cfg (and the LVS configurations)
// of one load balancer are rendered from. Objects are matched by their ids
// (listener.default_pool_id, member.pool_id, monitor.pool_id,
// policy.listener_id, rule.l7policy_id); objects of other load balancers are
// ignored by the matching.
type LoadBalancerConfig struct {
	LoadBalancer   *eventsv1.LoadBalancer
	Listeners      []*eventsv1.Listener
	Pools          []*eventsv1.Pool
	Members        []*eventsv1.Member
	HealthMonitors []*eventsv1.HealthMonitor
	L7Policies     []*eventsv1.L7Policy
	L7Rules        []*eventsv1.L7Rule
	// Amphora is the amphora the configuration is rendered for (optional).
	Amphora *eventsv1.Amphora
	// Amphorae are all amphorae of the load balancer; the ALLOCATED ones
	// with a VRRP address become haproxy peers in ACTIVE_STANDBY.
	Amphorae []*eventsv1.Amphora
	// Peers, when not nil, replaces the peers derived from Amphorae.
	Peers []Peer
	// Details tunes threads and the TLS session cache (optional).
	Details *AmphoraDetails
	// Certs overrides certificate file locations.
	Certs    CertFiles
	Settings Settings
}

// PeerName is the haproxy peer name of an amphora: base64 of the SHA-1 of
// its id without padding (the agent runs haproxy with -L <PeerName>). As
// Octavia's base64_sha1_string, it uses the alphabet with "_" and "-" for
// "+" and "/" (haproxy refuses "+" and "/" in peer names) and replaces a
// leading "-" with "x" (haproxy issue 644).
func PeerName(amphoraID string) string {
	sum := sha1.Sum([]byte(amphoraID))
	enc := base64.StdEncoding.EncodeToString(sum[:])
	enc = strings.NewReplacer("+", "_", "/", "-").Replace(enc)
	if strings.HasPrefix(enc, "-") {
		enc = "x" + enc[1:]
	}
	return strings.TrimRight(enc, "=")
}

// PeersSectionName is the name of the peers section of a load balancer.
func PeersSectionName(lbID string) string {
	return strings.ReplaceAll(lbID, "-", "") + "_peers"
}

// BackendName is the haproxy backend of a pool used by a listener.
func BackendName(poolID, listenerID string) string {
	return poolID + ":" + listenerID
}

// CertDir is the directory of a load balancer's TLS files on the amphora
// (base_cert_dir/<lb_id>); CrtListPath, SecretPath and PoolCertPath are in
// it.
func CertDir(s Settings, lbID string) string {
	s = s.withDefaults()
	return path.Join(s.CertDir, lbID)
}

// CrtListPath is where Octavia puts the crt-list of a TLS listener.
func CrtListPath(s Settings, lbID, listenerID string) string {
	s = s.withDefaults()
	return path.Join(s.CertDir, lbID, listenerID+".pem")
}

// SecretPath is where Octavia puts a CA or CRL secret: its file name is the
// SHA-1 of the container ref.
func SecretPath(s Settings, lbID, ref string) string {
	s = s.withDefaults()
	sum := sha1.Sum([]byte(ref))
	return path.Join(s.CertDir, lbID, hex.EncodeToString(sum[:])+".pem")
}

// PoolCertPath is where the client certificate of a TLS pool is stored.
func PoolCertPath(s Settings, lbID, poolID string) string {
	s = s.withDefaults()
	return path.Join(s.CertDir, lbID, poolID+".pem")
}

// CrtList renders a crt-list file: one PEM (certificate + key) per line,
// the default certificate first, then the SNI certificates.
func CrtList(pemPaths ...string) string {
	var b strings.Builder
	for _, p := range pemPaths {
		b.WriteString(p)
		b.WriteByte('\n')
	}
	return b.String()
}

// HostRoute is a Neutron subnet host route.
type HostRoute struct {
	Destination string
	Nexthop     string
}

// VIPNetwork is a VIP address with its subnet.
type VIPNetwork struct {
	Address    string
	SubnetCIDR string
	Gateway    string
	HostRoutes []HostRoute
}

// KeepalivedSettings are the [keepalived_vrrp] options. Zero fields take
// Octavia's defaults.
type KeepalivedSettings struct {
	// BasePath is [haproxy_amphora] base_path (/var/lib/octavia).
	BasePath string
	// CheckScriptPath defaults to <BasePath>/vrrp/check_script.sh.
	CheckScriptPath string
	// AdvertInt is vrrp_advert_int (1).
	AdvertInt int
	// CheckInterval is vrrp_check_interval (5).
	CheckInterval int
	// FailCount is vrrp_fail_count (2).
	FailCount int
	// SuccessCount is vrrp_success_count (2).
	SuccessCount int
	// GarpRefreshInterval is vrrp_garp_refresh_interval (5).
	GarpRefreshInterval int
	// GarpRefreshCount is vrrp_garp_refresh_count (2).
	GarpRefreshCount int
	// Interface is used when the amphora has no vrrp_interface (eth1).
	Interface string
	// RouteTable is the policy routing table of VIP traffic (1).
	RouteTable int
}

// DefaultKeepalivedSettings returns Octavia's defaults.
func DefaultKeepalivedSettings() KeepalivedSettings {
	return KeepalivedSettings{
		BasePath:            "/var/lib/octavia",
		AdvertInt:           1,
		CheckInterval:       5,
		FailCount:           2,
		SuccessCount:        2,
		GarpRefreshInterval: 5,
		GarpRefreshCount:    2,
		Interface:           "eth1",
		RouteTable:          1,
	}
}

func (k KeepalivedSettings) withDefaults() KeepalivedSettings {
	d := DefaultKeepalivedSettings()
	if k.BasePath == "" {
		k.BasePath = d.BasePath
	}
	if k.CheckScriptPath == "" {
		k.CheckScriptPath = path.Join(k.BasePath, "vrrp", "check_script.sh")
	}
	ints := []struct {
		v   *int
		def int
	}{
		{&k.AdvertInt, d.AdvertInt}, {&k.CheckInterval, d.CheckInterval}, {&k.FailCount, d.FailCount},
		{&k.SuccessCount, d.SuccessCount}, {&k.GarpRefreshInterval, d.GarpRefreshInterval},
		{&k.GarpRefreshCount, d.GarpRefreshCount}, {&k.RouteTable, d.RouteTable},
	}
	for _, i := range ints {
		if *i.v <= 0 {
			*i.v = i.def
		}
	}
	if k.Interface == "" {
		k.Interface = d.Interface
	}
	return k
}

// KeepalivedConfig is the input of the VRRP configuration of one amphora of
// an ACTIVE_STANDBY load balancer.
type KeepalivedConfig struct {
	LoadBalancer *eventsv1.LoadBalancer
	// Amphora is the amphora the file is rendered for.
	Amphora *eventsv1.Amphora
	// Amphorae are all amphorae of the load balancer; every other
	// ALLOCATED one with a VRRP address is a unicast peer.
	Amphorae []*eventsv1.Amphora
	// VIP is the primary VIP, AdditionalVIPs the others (rendered sorted by
	// address).
	VIP            VIPNetwork
	AdditionalVIPs []VIPNetwork
	// AuthPass is the VRRP group password (Octavia: 7 random characters
	// stored with the VRRP group). Required.
	AuthPass string
	Settings KeepalivedSettings
}
