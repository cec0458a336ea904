package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Limits Octavia applies (see octavia/common/constants.py).
const (
	maxListenerTimeoutMS = 2073600000 // 24 days
	maxQuota             = 2000000000
)

// Validate checks every value and returns all problems joined, each a
// *KeyError naming its section and key; nil when the configuration is usable.
func (c Config) Validate() error {
	var errs []error
	for _, e := range c.validate() {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// checker collects problems.
type checker struct{ errs []*KeyError }

func (ch *checker) bad(section, name, format string, args ...any) {
	ch.errs = append(ch.errs, &KeyError{Section: section, Key: name, Problem: fmt.Sprintf(format, args...)})
}

func (ch *checker) oneOf(section, name, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	ch.bad(section, name, "must be one of %s, got %q", strings.Join(quoted, ", "), v)
}

func (ch *checker) atLeast(section, name string, v, lo int) {
	if v < lo {
		ch.bad(section, name, "must be at least %d, got %d", lo, v)
	}
}

func (ch *checker) between(section, name string, v, lo, hi int) {
	if v < lo || v > hi {
		ch.bad(section, name, "must be between %d and %d, got %d", lo, hi, v)
	}
}

// hostPort checks a host:port address. minPort is 0 for listen addresses
// (0 asks the kernel for a free port) and 1 for addresses to dial.
func (ch *checker) hostPort(section, name, v string, minPort int) {
	if problem := hostPortProblem(v, minPort); problem != "" {
		ch.bad(section, name, "%s", problem)
	}
}

func hostPortProblem(v string, minPort int) string {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Sprintf("must be a host:port address, got %q", v)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < minPort || p > 65535 {
		return fmt.Sprintf("port of %q must be a number from %d to 65535", v, minPort)
	}
	return ""
}

func (c Config) validate() []*KeyError {
	ch := &checker{}

	// [database]
	if u, err := url.Parse(c.Database.URL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// The URL may hold a password: never echo it.
		ch.bad("database", "url", "must be a postgres:// or postgresql:// URL")
	}
	ch.atLeast("database", "max_conns", c.Database.MaxConns, 1)
	ch.oneOf("database", "dialect", c.Database.Dialect, DialectPostgres, DialectCockroach)

	// [kafka]
	for _, b := range c.Kafka.Brokers {
		if problem := hostPortProblem(b, 1); problem != "" {
			ch.bad("kafka", "brokers", "%s", problem)
		}
	}
	switch {
	case c.Kafka.Embedded && len(c.Kafka.Brokers) > 0:
		ch.bad("kafka", "embedded", "must be false when brokers is set")
	case !c.Kafka.Embedded && len(c.Kafka.Brokers) == 0:
		ch.bad("kafka", "brokers", "must list at least one host:port when embedded is false")
	}
	if c.Kafka.Embedded && strings.TrimSpace(c.Kafka.DataDir) == "" {
		ch.bad("kafka", "data_dir", "must be set when the embedded broker is used")
	}
	ch.between("kafka", "embedded_port", c.Kafka.EmbeddedPort, 1, 65535)
	if strings.TrimSpace(c.Kafka.ClientID) == "" {
		ch.bad("kafka", "client_id", "must not be empty")
	}
	ch.atLeast("kafka", "partitions", c.Kafka.Partitions, 1)

	// [api]
	ch.hostPort("api", "bind", c.API.Bind, 0)
	ch.oneOf("api", "auth_strategy", c.API.AuthStrategy, AuthNoAuth, AuthKeystone)
	if c.API.KeystoneURL != "" {
		if u, err := url.Parse(c.API.KeystoneURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ch.bad("api", "keystone_url", "must be an http:// or https:// URL, got %q", c.API.KeystoneURL)
		}
	}
	if c.API.AuthStrategy == AuthKeystone {
		for _, req := range []struct{ name, v string }{
			{"keystone_url", c.API.KeystoneURL},
			{"keystone_service_user", c.API.KeystoneServiceUser},
			{"keystone_service_password", c.API.KeystoneServicePassword},
			{"keystone_service_project", c.API.KeystoneServiceProject},
		} {
			if req.v == "" {
				ch.bad("api", req.name, "must be set when auth_strategy is %q", AuthKeystone)
			}
		}
	}
	ch.atLeast("api", "token_cache_seconds", c.API.TokenCacheSeconds, 0)
	if strings.TrimSpace(c.API.DefaultProvider) == "" {
		ch.bad("api", "default_provider", "must not be empty")
	}

	// [relay]
	if c.Relay.PollInterval <= 0 {
		ch.bad("relay", "poll_interval", "must be positive, got %s", c.Relay.PollInterval)
	}
	ch.atLeast("relay", "batch_size", c.Relay.BatchSize, 1)
	switch {
	case c.Relay.LeaseTTL <= 0:
		ch.bad("relay", "lease_ttl", "must be positive, got %s", c.Relay.LeaseTTL)
	case c.Relay.PollInterval > 0 && c.Relay.LeaseTTL <= c.Relay.PollInterval:
		ch.bad("relay", "lease_ttl", "must be longer than poll_interval (%s), got %s", c.Relay.PollInterval, c.Relay.LeaseTTL)
	}

	// [worker]
	ch.oneOf("worker", "driver", c.Worker.Driver, DriverLocal, DriverNoop, DriverOpenStack)
	ch.atLeast("worker", "amp_active_retries", c.Worker.AmpActiveRetries, 1)
	if c.Worker.APIPriorityWait < 0 {
		ch.bad("worker", "api_priority_wait", "must not be negative, got %s", c.Worker.APIPriorityWait)
	}
	if c.Worker.AmpActiveWait <= 0 {
		ch.bad("worker", "amp_active_wait", "must be positive, got %s", c.Worker.AmpActiveWait)
	}
	ch.oneOf("worker", "topology", c.Worker.Topology, TopologySingle, TopologyActiveStandby)
	ch.between("worker", "agent_port", c.Worker.AgentPort, 1, 65535)
	if c.Worker.Driver == DriverOpenStack {
		if c.Worker.AmpImageTag == "" {
			ch.bad("worker", "amp_image_tag", "must be set with the %q driver", DriverOpenStack)
		}
		if c.Worker.AmpFlavorID == "" {
			ch.bad("worker", "amp_flavor_id", "must be set with the %q driver", DriverOpenStack)
		}
		if len(c.Worker.AmpBootNetworkList) == 0 {
			ch.bad("worker", "amp_boot_network_list", "must list the management network with the %q driver", DriverOpenStack)
		}
	}

	// [vrrp]
	ch.between("vrrp", "advert_int", c.VRRP.AdvertInt, 1, 255)
	ch.atLeast("vrrp", "check_interval", c.VRRP.CheckInterval, 1)
	ch.atLeast("vrrp", "fail_count", c.VRRP.FailCount, 1)
	ch.atLeast("vrrp", "success_count", c.VRRP.SuccessCount, 1)

	// [local]
	ch.oneOf("local", "mode", c.Local.Mode, LocalModeAuto, LocalModeNetns, LocalModeHost)
	for _, sub := range []struct{ name, v string }{{"vip_subnet", c.Local.VIPSubnet}, {"management_subnet", c.Local.ManagementSubnet}} {
		if sub.v == "" {
			continue
		}
		if p, err := netip.ParsePrefix(sub.v); err != nil || !p.Addr().Is4() {
			ch.bad("local", sub.name, "must be an IPv4 CIDR such as 172.31.0.0/24, got %q", sub.v)
		}
	}
	if c.Worker.Driver == DriverLocal {
		if strings.TrimSpace(c.Local.StateDir) == "" {
			ch.bad("local", "state_dir", "must be set with the %q driver", DriverLocal)
		}
		if c.Local.Bridge == "" || len(c.Local.Bridge) > 15 {
			ch.bad("local", "bridge", "must be an interface name of 1 to 15 characters, got %q", c.Local.Bridge)
		}
		if c.Local.ManagementSubnet == "" {
			ch.bad("local", "management_subnet", "must be set with the %q driver", DriverLocal)
		}
	}

	// [openstack]
	ch.oneOf("openstack", "interface", c.OpenStack.Interface, "public", "internal", "admin")
	if c.OpenStack.AuthURL != "" {
		if u, err := url.Parse(c.OpenStack.AuthURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ch.bad("openstack", "auth_url", "must be an http:// or https:// URL, got %q", c.OpenStack.AuthURL)
		}
	}
	if c.Worker.Driver == DriverOpenStack {
		for _, req := range []struct{ name, v string }{
			{"auth_url", c.OpenStack.AuthURL}, {"username", c.OpenStack.Username},
			{"password", c.OpenStack.Password}, {"project_name", c.OpenStack.ProjectName},
		} {
			if req.v == "" {
				ch.bad("openstack", req.name, "must be set with the %q driver", DriverOpenStack)
			}
		}
	}

	// [certificates]
	if c.Worker.Driver != DriverNoop {
		if c.Certificates.CACertificate == "" {
			ch.bad("certificates", "ca_certificate", "must be set with the %q driver", c.Worker.Driver)
		}
		if c.Certificates.CAPrivateKey == "" {
			ch.bad("certificates", "ca_private_key", "must be set with the %q driver", c.Worker.Driver)
		}
	}
	if c.Certificates.CertValidity <= 0 {
		ch.bad("certificates", "cert_validity", "must be positive, got %s", c.Certificates.CertValidity)
	}
	ch.oneOf("certificates", "cert_manager", c.Certificates.CertManager, CertManagerLocal, CertManagerBarbican)
	switch c.Certificates.CertManager {
	case CertManagerLocal:
		if strings.TrimSpace(c.Certificates.StoragePath) == "" {
			ch.bad("certificates", "storage_path", "must be set with the %q cert manager", CertManagerLocal)
		}
	case CertManagerBarbican:
		for _, req := range []struct{ name, v string }{
			{"auth_url", c.OpenStack.AuthURL}, {"username", c.OpenStack.Username},
			{"password", c.OpenStack.Password}, {"project_name", c.OpenStack.ProjectName},
		} {
			if req.v == "" && c.Worker.Driver != DriverOpenStack { // reported once above with the openstack driver
				ch.bad("openstack", req.name, "must be set with the %q cert manager", CertManagerBarbican)
			}
		}
	}

	// [health]
	ch.hostPort("health", "bind", c.Health.Bind, 0)
	if c.Health.HeartbeatInterval <= 0 {
		ch.bad("health", "heartbeat_interval", "must be positive, got %s", c.Health.HeartbeatInterval)
	}
	if c.Health.HeartbeatTimeout <= c.Health.HeartbeatInterval {
		ch.bad("health", "heartbeat_timeout", "must be longer than heartbeat_interval (%s), got %s", c.Health.HeartbeatInterval, c.Health.HeartbeatTimeout)
	}
	if c.Health.CheckInterval <= 0 {
		ch.bad("health", "check_interval", "must be positive, got %s", c.Health.CheckInterval)
	}
	ch.atLeast("health", "failover_threshold", c.Health.FailoverThreshold, 0)

	// [projector]
	ch.atLeast("projector", "replay_batch_size", c.Projector.ReplayBatchSize, 1)
	// [house_keeping]
	if c.HouseKeeping.CertInterval < 0 {
		ch.bad("house_keeping", "cert_interval", "must not be negative, got %s", c.HouseKeeping.CertInterval)
	}
	if c.HouseKeeping.CertExpiryBuffer <= 0 {
		ch.bad("house_keeping", "cert_expiry_buffer", "must be positive, got %s", c.HouseKeeping.CertExpiryBuffer)
	} else if c.HouseKeeping.CertInterval > 0 && c.HouseKeeping.CertExpiryBuffer <= c.HouseKeeping.CertInterval {
		ch.bad("house_keeping", "cert_expiry_buffer", "must be longer than cert_interval (%s), or a certificate may expire between two scans, got %s",
			c.HouseKeeping.CertInterval, c.HouseKeeping.CertExpiryBuffer)
	}
	if c.HouseKeeping.CertInterval > 0 && c.Certificates.CertValidity <= c.HouseKeeping.CertExpiryBuffer {
		ch.bad("house_keeping", "cert_expiry_buffer", "must be shorter than [certificates] cert_validity (%s), or every new certificate is rotated at once, got %s",
			c.Certificates.CertValidity, c.HouseKeeping.CertExpiryBuffer)
	}
	ch.atLeast("house_keeping", "cert_rotate_threads", c.HouseKeeping.CertRotateThreads, 1)
	if c.HouseKeeping.OrphanVIPInterval < 0 {
		ch.bad("house_keeping", "orphan_vip_interval", "must not be negative, got %s", c.HouseKeeping.OrphanVIPInterval)
	}
	if c.HouseKeeping.OrphanVIPGrace < time.Minute {
		ch.bad("house_keeping", "orphan_vip_grace", "must be at least 1m (an API request may be between allocating a port and storing its load balancer), got %s",
			c.HouseKeeping.OrphanVIPGrace)
	}

	// [haproxy]
	ch.between("haproxy", "timeout_client_data", c.HAProxy.TimeoutClientData, 0, maxListenerTimeoutMS)
	ch.between("haproxy", "timeout_member_connect", c.HAProxy.TimeoutMemberConnect, 0, maxListenerTimeoutMS)
	ch.between("haproxy", "timeout_member_data", c.HAProxy.TimeoutMemberData, 0, maxListenerTimeoutMS)
	ch.between("haproxy", "timeout_tcp_inspect", c.HAProxy.TimeoutTCPInspect, 0, maxListenerTimeoutMS)

	// [quotas]
	for _, q := range []struct {
		name string
		v    int
	}{
		{"default_load_balancer_quota", c.Quotas.LoadBalancer},
		{"default_listener_quota", c.Quotas.Listener},
		{"default_pool_quota", c.Quotas.Pool},
		{"default_health_monitor_quota", c.Quotas.HealthMonitor},
		{"default_member_quota", c.Quotas.Member},
		{"default_l7policy_quota", c.Quotas.L7Policy},
		{"default_l7rule_quota", c.Quotas.L7Rule},
	} {
		ch.between("quotas", q.name, q.v, -1, maxQuota)
	}

	// [log]
	ch.oneOf("log", "level", c.Log.Level, "debug", "info", "warn", "error")
	ch.oneOf("log", "format", c.Log.Format, "text", "json")

	// [metrics]
	ch.hostPort("metrics", "bind", c.Metrics.Bind, 0)

	return ch.errs
}
