// Package config loads the configuration shared by every ostia service.
//
// Settings come from three layers, later ones winning:
//
//  1. built-in defaults (Default),
//  2. an optional INI-style file: "[section]" headers and "key = value"
//     lines, the shape Octavia operators know from oslo.config,
//  3. environment variables named OSTIA_<SECTION>_<KEY> in upper case,
//     for example OSTIA_DATABASE_URL or OSTIA_KAFKA_BROKERS.
//
// Load reports every problem it finds at once (joined with errors.Join), and
// each message names the offending section and key. The package keeps no
// package-level state: the key table is built on demand by keys().
package config

import (
	"time"
)

// Config is the whole configuration of an ostia process.
type Config struct {
	Database     Database
	Kafka        Kafka
	API          API
	Relay        Relay
	Worker       Worker
	Health       Health
	HouseKeeping HouseKeeping
	Projector    Projector
	HAProxy      HAProxy
	VRRP         VRRP
	Local        Local
	OpenStack    OpenStack
	Certificates Certificates
	Quotas       Quotas
	Log          Log
	Metrics      Metrics
}

// Dialects of SQL database the event store can talk to.
const (
	DialectPostgres  = "postgres"
	DialectCockroach = "cockroach"
)

// Database is the [database] section: the event store's SQL database.
type Database struct {
	// URL is a postgres:// or postgresql:// connection string.
	URL string
	// MaxConns caps the connection pool.
	MaxConns int
	// Dialect is DialectPostgres or DialectCockroach.
	Dialect string
}

// Kafka is the [kafka] section: the log the relay publishes to and every
// consumer reads from.
type Kafka struct {
	// Brokers are host:port seed addresses of an external cluster. Empty
	// means the embedded broker.
	Brokers []string
	// Embedded runs a Kafka-protocol broker inside the process. Unless set
	// explicitly it is true exactly when Brokers is empty.
	Embedded bool
	// DataDir is where the embedded broker keeps its data.
	DataDir string
	// EmbeddedPort is the port the embedded broker listens on.
	EmbeddedPort int
	// ClientID is sent to the brokers with every request.
	ClientID string
	// Partitions is the partition count of topics ostia creates.
	Partitions int
}

// Authentication strategies of the API.
const (
	AuthNoAuth   = "noauth"
	AuthKeystone = "keystone"
)

// API is the [api] section: the Octavia v2 REST API (`ostia api`).
type API struct {
	// Bind is the host:port the API listens on.
	Bind string
	// AuthStrategy is AuthNoAuth or AuthKeystone.
	AuthStrategy string
	// KeystoneURL is the identity endpoint tokens are validated against.
	KeystoneURL string
	// KeystoneServiceUser, KeystoneServicePassword and
	// KeystoneServiceProject are the service credentials used to validate
	// user tokens.
	KeystoneServiceUser     string
	KeystoneServicePassword string
	KeystoneServiceProject  string
	// TokenCacheSeconds is how long a validated token is cached; 0 disables
	// the cache.
	TokenCacheSeconds int
	// DefaultProvider is the provider used when neither the flavor nor the
	// request names one (Octavia's default_provider_driver).
	DefaultProvider string
	// EnabledProviderDrivers are Octavia's enabled_provider_drivers, each
	// "name:description".
	EnabledProviderDrivers []string
	// PaginationMaxLimit is the largest page size; "infinite" means none.
	PaginationMaxLimit string
	// APIBaseURI is used in pagination links instead of the request URL.
	APIBaseURI string
}

// Relay is the [relay] section: the outbox-to-Kafka publisher.
type Relay struct {
	// PollInterval is the pause between outbox scans when it was empty.
	PollInterval time.Duration
	// BatchSize is the most outbox rows published per transaction.
	BatchSize int
	// LeaseTTL is how long a relay instance holds the outbox lease.
	LeaseTTL time.Duration
}

// Worker drivers.
const (
	DriverLocal     = "local"
	DriverNoop      = "noop"
	DriverOpenStack = "openstack"
)

// Load-balancer topologies.
const (
	TopologySingle        = "SINGLE"
	TopologyActiveStandby = "ACTIVE_STANDBY"
)

// Projector is the [projector] section: the read-model projector of
// `ostia projector`, `ostia up` and `ostia replay`.
type Projector struct {
	// CacheSize is how many aggregate states the projector keeps in memory
	// (a miss re-reads the aggregate's events); negative keeps none.
	CacheSize int
	// Brokers overrides [kafka] brokers for `ostia projector`.
	Brokers []string
	// ReplayBatchSize is how many events `ostia replay` reads at a time.
	ReplayBatchSize int
}

// Worker is the [worker] section: the sagas that build amphorae.
type Worker struct {
	// Driver is DriverLocal, DriverNoop or DriverOpenStack.
	Driver string
	// AmpActiveRetries and AmpActiveWait bound the wait for a new amphora
	// to become ACTIVE (Octavia's amp_active_retries / amp_active_wait_sec).
	AmpActiveRetries int
	AmpActiveWait    time.Duration
	// Topology is the default topology, TopologySingle or
	// TopologyActiveStandby; a flavor may override it per load balancer.
	Topology string
	// AmpImageTag, AmpFlavorID and AmpBootNetworkList describe the amphora
	// servers (Octavia's amp_image_tag, amp_flavor_id,
	// amp_boot_network_list); the openstack driver needs them.
	AmpImageTag        string
	AmpFlavorID        string
	AmpBootNetworkList []string
	// AgentPort is the port of the amphora agents (Octavia's
	// [haproxy_amphora] bind_port).
	AgentPort int
	// APIPriorityWait: in `ostia up` (API and worker in one process), a
	// saga step waits while API writes are being served, at most this long
	// (0 turns it off).
	APIPriorityWait time.Duration
}

// VRRP is the [vrrp] section: keepalived settings of ACTIVE_STANDBY load
// balancers (Octavia's [keepalived_vrrp] vrrp_* options).
type VRRP struct {
	AdvertInt     int
	CheckInterval int
	FailCount     int
	SuccessCount  int
}

// Local-driver modes.
const (
	LocalModeAuto  = "auto"
	LocalModeNetns = "netns"
	LocalModeHost  = "host"
)

// Local is the [local] section: the local driver, amphorae as processes
// on this machine.
type Local struct {
	// StateDir holds the driver's state and the amphora directories.
	StateDir string
	// Mode is LocalModeAuto, LocalModeNetns or LocalModeHost.
	Mode string
	// AgentBinary is the ostia-agent executable (empty: next to ostia, or
	// on PATH).
	AgentBinary string
	// VIPSubnet is the range VIPs and amphora addresses come from (empty:
	// 172.31.0.0/24 in netns mode, 127.31.0.0/24 in host mode).
	VIPSubnet string
	// Bridge is the host bridge of netns mode.
	Bridge string
	// ManagementSubnet is the loopback range the agents listen in.
	ManagementSubnet string
}

// OpenStack is the [openstack] section: Keystone credentials of the
// openstack driver (Nova, Neutron, Glance).
type OpenStack struct {
	AuthURL      string
	Username     string
	Password     string
	ProjectName  string
	DomainName   string
	Region       string
	Interface    string
	ImageOwnerID string
	TagsOnCreate bool
}

// Certificates is the [certificates] section: the CA that signs the
// amphora agents' server certificates and the controller's client
// certificate.
type Certificates struct {
	// CACertificate and CAPrivateKey are PEM files; both are created on
	// first start when neither exists.
	CACertificate string
	CAPrivateKey  string
	// CertValidity is the validity of amphora server certificates.
	CertValidity time.Duration
	// CertManager is where the tenant TLS material of listeners and pools
	// (default_tls_container_ref, client CA, CRL, pool certificates) is
	// read: CertManagerLocal (files in StoragePath) or CertManagerBarbican
	// (Barbican, with the [openstack] credentials).
	CertManager string
	// StoragePath is the directory of the local cert manager.
	StoragePath string
}

// Cert managers.
const (
	CertManagerLocal    = "local"
	CertManagerBarbican = "barbican"
)

// Health is the [health] section: the health manager (`ostia health`).
type Health struct {
	// Bind is the UDP host:port heartbeats arrive on.
	Bind string
	// HeartbeatKey is the HMAC-SHA256 key of amphora heartbeats.
	HeartbeatKey string
	// HeartbeatInterval is how often amphorae send a heartbeat.
	HeartbeatInterval time.Duration
	// HeartbeatTimeout is how old the last heartbeat may be before an
	// amphora counts as stale.
	HeartbeatTimeout time.Duration
	// CheckInterval is the period of the stale-amphora scan.
	CheckInterval time.Duration
	// FailoverThreshold: when at least this many amphorae are stale at
	// once, none is failed over. 0 turns the guard off.
	FailoverThreshold int
}

// HouseKeeping is the [house_keeping] section: periodic work of the
// worker. Amphora server certificates that expire within CertExpiryBuffer
// are replaced every CertInterval, by at most CertRotateThreads rotations
// at a time (Octavia's housekeeping certificate rotation).
type HouseKeeping struct {
	// CertInterval is the period of the certificate scan; 0 turns
	// rotation off.
	CertInterval time.Duration
	// CertExpiryBuffer: a certificate expiring sooner than this is
	// replaced.
	CertExpiryBuffer time.Duration
	// CertRotateThreads bounds the rotations started by one scan.
	CertRotateThreads int
	// OrphanVIPInterval is the period of the sweep for VIP ports the API
	// allocated for a load balancer it then never stored (it died in
	// between); 0 turns the sweep off.
	OrphanVIPInterval time.Duration
	// OrphanVIPGrace is how long such a port must have been seen orphaned
	// before it is deleted.
	OrphanVIPGrace time.Duration
}

// HAProxy is the [haproxy] section: listener timeout defaults in
// milliseconds, applied when a listener leaves them unset.
type HAProxy struct {
	TimeoutClientData    int
	TimeoutMemberConnect int
	TimeoutMemberData    int
	TimeoutTCPInspect    int
}

// Quotas is the [quotas] section: per-project defaults; -1 is unlimited.
type Quotas struct {
	LoadBalancer  int
	Listener      int
	Pool          int
	HealthMonitor int
	Member        int
	L7Policy      int
	L7Rule        int
}

// Log is the [log] section.
type Log struct {
	// Level is debug, info, warn or error.
	Level string
	// Format is text or json.
	Format string
}

// Metrics is the [metrics] section: the HTTP server with /metrics and
// /healthz that every service runs.
type Metrics struct {
	// Bind is the host:port of the metrics server.
	Bind string
	// Profiling serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/ on the metrics server.
	Profiling bool
}

// Default returns the built-in configuration: one machine, local
// PostgreSQL, the embedded broker, no authentication.
func Default() Config {
	return Config{
		Database: Database{
			URL:      "postgres://postgres:postgres@127.0.0.1:5432/ostia?sslmode=disable",
			MaxConns: 10,
			Dialect:  DialectPostgres,
		},
		Kafka: Kafka{
			Embedded:     true,
			DataDir:      "./data/kafka",
			EmbeddedPort: 9092,
			ClientID:     "ostia",
			Partitions:   6,
		},
		API: API{
			Bind:              "127.0.0.1:9876",
			AuthStrategy:      AuthNoAuth,
			TokenCacheSeconds: 300,
			DefaultProvider:   "amphora",
			EnabledProviderDrivers: []string{"amphora:The Octavia Amphora driver.",
				"octavia:Deprecated alias of the Octavia Amphora driver."},
			PaginationMaxLimit: "1000",
		},
		Relay: Relay{
			PollInterval: 20 * time.Millisecond,
			BatchSize:    500,
			LeaseTTL:     10 * time.Second,
		},
		Worker: Worker{
			Driver:           DriverLocal,
			AmpActiveRetries: 30,
			AmpActiveWait:    10 * time.Second,
			APIPriorityWait:  250 * time.Millisecond,
			Topology:         TopologySingle,
			AgentPort:        9443,
		},
		VRRP: VRRP{AdvertInt: 1, CheckInterval: 5, FailCount: 2, SuccessCount: 2},
		Local: Local{
			StateDir:         "./data/local",
			Mode:             LocalModeAuto,
			Bridge:           "ostia0",
			ManagementSubnet: "127.42.0.0/16",
		},
		OpenStack: OpenStack{DomainName: "Default", Interface: "public"},
		Certificates: Certificates{
			CACertificate: "./data/pki/ca.pem",
			CAPrivateKey:  "./data/pki/ca.key",
			CertValidity:  2 * 365 * 24 * time.Hour,
			CertManager:   CertManagerLocal,
			StoragePath:   "./data/certificates",
		},
		Health: Health{
			Bind:              "127.0.0.1:5555",
			HeartbeatInterval: 10 * time.Second,
			HeartbeatTimeout:  60 * time.Second,
			CheckInterval:     3 * time.Second,
		},
		Projector: Projector{CacheSize: 10000, ReplayBatchSize: 5000},
		HouseKeeping: HouseKeeping{
			CertInterval:      time.Hour,
			CertExpiryBuffer:  14 * 24 * time.Hour,
			OrphanVIPInterval: time.Minute,
			OrphanVIPGrace:    5 * time.Minute,
			CertRotateThreads: 10,
		},
		HAProxy: HAProxy{
			TimeoutClientData:    50000,
			TimeoutMemberConnect: 5000,
			TimeoutMemberData:    50000,
			TimeoutTCPInspect:    0,
		},
		Quotas: Quotas{
			LoadBalancer:  -1,
			Listener:      -1,
			Pool:          -1,
			HealthMonitor: -1,
			Member:        -1,
			L7Policy:      -1,
			L7Rule:        -1,
		},
		Log:     Log{Level: "info", Format: "text"},
		Metrics: Metrics{Bind: "127.0.0.1:9100"},
	}
}
