package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Key describes one configuration key, for documentation and tooling.
type Key struct {
	Section string // e.g. "database"
	Name    string // e.g. "url"
	Env     string // e.g. "OSTIA_DATABASE_URL"
	Default string // the default, formatted as it would be written in a file
	Secret  bool   // the value is a credential and is never echoed in errors
}

// key is one entry of the key table: how to parse a value into a Config and
// how to format it back.
type key struct {
	section, name string
	secret        bool
	set           func(c *Config, v string) error
	get           func(c *Config) string
}

// envPrefix starts every environment variable the package reads.
const envPrefix = "OSTIA_"

// envName is the environment variable of section/name.
func envName(section, name string) string {
	return envPrefix + strings.ToUpper(section) + "_" + strings.ToUpper(name)
}

// keys is the table of every known key, in documentation order. It is built
// on each call so that nothing at package level can be mutated.
func keys() []key {
	return []key{
		strKey("database", "url", func(c *Config) *string { return &c.Database.URL }).secretKey(),
		intKey("database", "max_conns", func(c *Config) *int { return &c.Database.MaxConns }),
		strKey("database", "dialect", func(c *Config) *string { return &c.Database.Dialect }),

		listKey("kafka", "brokers", func(c *Config) *[]string { return &c.Kafka.Brokers }),
		boolKey("kafka", "embedded", func(c *Config) *bool { return &c.Kafka.Embedded }),
		strKey("kafka", "data_dir", func(c *Config) *string { return &c.Kafka.DataDir }),
		intKey("kafka", "embedded_port", func(c *Config) *int { return &c.Kafka.EmbeddedPort }),
		strKey("kafka", "client_id", func(c *Config) *string { return &c.Kafka.ClientID }),
		intKey("kafka", "partitions", func(c *Config) *int { return &c.Kafka.Partitions }),

		strKey("api", "bind", func(c *Config) *string { return &c.API.Bind }),
		strKey("api", "auth_strategy", func(c *Config) *string { return &c.API.AuthStrategy }),
		strKey("api", "keystone_url", func(c *Config) *string { return &c.API.KeystoneURL }),
		strKey("api", "keystone_service_user", func(c *Config) *string { return &c.API.KeystoneServiceUser }),
		strKey("api", "keystone_service_password", func(c *Config) *string { return &c.API.KeystoneServicePassword }).secretKey(),
		strKey("api", "keystone_service_project", func(c *Config) *string { return &c.API.KeystoneServiceProject }),
		intKey("api", "token_cache_seconds", func(c *Config) *int { return &c.API.TokenCacheSeconds }),
		strKey("api", "default_provider", func(c *Config) *string { return &c.API.DefaultProvider }),
		listKey("api", "enabled_provider_drivers", func(c *Config) *[]string { return &c.API.EnabledProviderDrivers }),
		strKey("api", "pagination_max_limit", func(c *Config) *string { return &c.API.PaginationMaxLimit }),
		strKey("api", "api_base_uri", func(c *Config) *string { return &c.API.APIBaseURI }),

		durKey("relay", "poll_interval", func(c *Config) *time.Duration { return &c.Relay.PollInterval }),
		intKey("relay", "batch_size", func(c *Config) *int { return &c.Relay.BatchSize }),
		durKey("relay", "lease_ttl", func(c *Config) *time.Duration { return &c.Relay.LeaseTTL }),

		strKey("worker", "driver", func(c *Config) *string { return &c.Worker.Driver }),
		intKey("worker", "amp_active_retries", func(c *Config) *int { return &c.Worker.AmpActiveRetries }),
		durKey("worker", "amp_active_wait", func(c *Config) *time.Duration { return &c.Worker.AmpActiveWait }),
		strKey("worker", "topology", func(c *Config) *string { return &c.Worker.Topology }),
		strKey("worker", "amp_image_tag", func(c *Config) *string { return &c.Worker.AmpImageTag }),
		strKey("worker", "amp_flavor_id", func(c *Config) *string { return &c.Worker.AmpFlavorID }),
		listKey("worker", "amp_boot_network_list", func(c *Config) *[]string { return &c.Worker.AmpBootNetworkList }),
		intKey("worker", "agent_port", func(c *Config) *int { return &c.Worker.AgentPort }),
		durKey("worker", "api_priority_wait", func(c *Config) *time.Duration { return &c.Worker.APIPriorityWait }),

		intKey("vrrp", "advert_int", func(c *Config) *int { return &c.VRRP.AdvertInt }),
		intKey("vrrp", "check_interval", func(c *Config) *int { return &c.VRRP.CheckInterval }),
		intKey("vrrp", "fail_count", func(c *Config) *int { return &c.VRRP.FailCount }),
		intKey("vrrp", "success_count", func(c *Config) *int { return &c.VRRP.SuccessCount }),

		strKey("local", "state_dir", func(c *Config) *string { return &c.Local.StateDir }),
		strKey("local", "mode", func(c *Config) *string { return &c.Local.Mode }),
		strKey("local", "agent_binary", func(c *Config) *string { return &c.Local.AgentBinary }),
		strKey("local", "vip_subnet", func(c *Config) *string { return &c.Local.VIPSubnet }),
		strKey("local", "bridge", func(c *Config) *string { return &c.Local.Bridge }),
		strKey("local", "management_subnet", func(c *Config) *string { return &c.Local.ManagementSubnet }),

		strKey("openstack", "auth_url", func(c *Config) *string { return &c.OpenStack.AuthURL }),
		strKey("openstack", "username", func(c *Config) *string { return &c.OpenStack.Username }),
		strKey("openstack", "password", func(c *Config) *string { return &c.OpenStack.Password }).secretKey(),
		strKey("openstack", "project_name", func(c *Config) *string { return &c.OpenStack.ProjectName }),
		strKey("openstack", "domain_name", func(c *Config) *string { return &c.OpenStack.DomainName }),
		strKey("openstack", "region", func(c *Config) *string { return &c.OpenStack.Region }),
		strKey("openstack", "interface", func(c *Config) *string { return &c.OpenStack.Interface }),
		strKey("openstack", "image_owner_id", func(c *Config) *string { return &c.OpenStack.ImageOwnerID }),
		boolKey("openstack", "tags_on_create", func(c *Config) *bool { return &c.OpenStack.TagsOnCreate }),

		strKey("certificates", "ca_certificate", func(c *Config) *string { return &c.Certificates.CACertificate }),
		strKey("certificates", "ca_private_key", func(c *Config) *string { return &c.Certificates.CAPrivateKey }),
		durKey("certificates", "cert_validity", func(c *Config) *time.Duration { return &c.Certificates.CertValidity }),
		strKey("certificates", "cert_manager", func(c *Config) *string { return &c.Certificates.CertManager }),
		strKey("certificates", "storage_path", func(c *Config) *string { return &c.Certificates.StoragePath }),

		strKey("health", "bind", func(c *Config) *string { return &c.Health.Bind }),
		strKey("health", "heartbeat_key", func(c *Config) *string { return &c.Health.HeartbeatKey }).secretKey(),
		durKey("health", "heartbeat_interval", func(c *Config) *time.Duration { return &c.Health.HeartbeatInterval }),
		durKey("health", "heartbeat_timeout", func(c *Config) *time.Duration { return &c.Health.HeartbeatTimeout }),
		durKey("health", "check_interval", func(c *Config) *time.Duration { return &c.Health.CheckInterval }),
		intKey("health", "failover_threshold", func(c *Config) *int { return &c.Health.FailoverThreshold }),

		intKey("projector", "cache_size", func(c *Config) *int { return &c.Projector.CacheSize }),
		listKey("projector", "brokers", func(c *Config) *[]string { return &c.Projector.Brokers }),
		intKey("projector", "replay_batch_size", func(c *Config) *int { return &c.Projector.ReplayBatchSize }),
		durKey("house_keeping", "cert_interval", func(c *Config) *time.Duration { return &c.HouseKeeping.CertInterval }),
		durKey("house_keeping", "cert_expiry_buffer", func(c *Config) *time.Duration { return &c.HouseKeeping.CertExpiryBuffer }),
		intKey("house_keeping", "cert_rotate_threads", func(c *Config) *int { return &c.HouseKeeping.CertRotateThreads }),
		durKey("house_keeping", "orphan_vip_interval", func(c *Config) *time.Duration { return &c.HouseKeeping.OrphanVIPInterval }),
		durKey("house_keeping", "orphan_vip_grace", func(c *Config) *time.Duration { return &c.HouseKeeping.OrphanVIPGrace }),

		intKey("haproxy", "timeout_client_data", func(c *Config) *int { return &c.HAProxy.TimeoutClientData }),
		intKey("haproxy", "timeout_member_connect", func(c *Config) *int { return &c.HAProxy.TimeoutMemberConnect }),
		intKey("haproxy", "timeout_member_data", func(c *Config) *int { return &c.HAProxy.TimeoutMemberData }),
		intKey("haproxy", "timeout_tcp_inspect", func(c *Config) *int { return &c.HAProxy.TimeoutTCPInspect }),

		intKey("quotas", "default_load_balancer_quota", func(c *Config) *int { return &c.Quotas.LoadBalancer }),
		intKey("quotas", "default_listener_quota", func(c *Config) *int { return &c.Quotas.Listener }),
		intKey("quotas", "default_pool_quota", func(c *Config) *int { return &c.Quotas.Pool }),
		intKey("quotas", "default_health_monitor_quota", func(c *Config) *int { return &c.Quotas.HealthMonitor }),
		intKey("quotas", "default_member_quota", func(c *Config) *int { return &c.Quotas.Member }),
		intKey("quotas", "default_l7policy_quota", func(c *Config) *int { return &c.Quotas.L7Policy }),
		intKey("quotas", "default_l7rule_quota", func(c *Config) *int { return &c.Quotas.L7Rule }),

		strKey("log", "level", func(c *Config) *string { return &c.Log.Level }),
		strKey("log", "format", func(c *Config) *string { return &c.Log.Format }),

		strKey("metrics", "bind", func(c *Config) *string { return &c.Metrics.Bind }),
		boolKey("metrics", "profiling", func(c *Config) *bool { return &c.Metrics.Profiling }),
	}
}

func (k key) secretKey() key { k.secret = true; return k }

func strKey(section, name string, p func(*Config) *string) key {
	return key{
		section: section, name: name,
		set: func(c *Config, v string) error { *p(c) = v; return nil },
		get: func(c *Config) string { return *p(c) },
	}
}

func intKey(section, name string, p func(*Config) *int) key {
	return key{
		section: section, name: name,
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("must be an integer")
			}
			*p(c) = n
			return nil
		},
		get: func(c *Config) string { return strconv.Itoa(*p(c)) },
	}
}

func boolKey(section, name string, p func(*Config) *bool) key {
	return key{
		section: section, name: name,
		set: func(c *Config, v string) error {
			b, ok := parseBool(v)
			if !ok {
				return fmt.Errorf("must be true or false")
			}
			*p(c) = b
			return nil
		},
		get: func(c *Config) string { return strconv.FormatBool(*p(c)) },
	}
}

// parseBool accepts the spellings oslo.config accepts.
func parseBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true, true
	case "false", "no", "off", "0":
		return false, true
	}
	return false, false
}

func durKey(section, name string, p func(*Config) *time.Duration) key {
	return key{
		section: section, name: name,
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("must be a duration with a unit, such as 250ms, 10s or 1m")
			}
			*p(c) = d
			return nil
		},
		get: func(c *Config) string { return formatDuration(*p(c)) },
	}
}

// formatDuration writes d in the shortest whole unit ("1m", "10s",
// "20ms"), falling back to Go's notation ("1m30s").
func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0 && d < time.Second:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
	return d.String()
}

func listKey(section, name string, p func(*Config) *[]string) key {
	return key{
		section: section, name: name,
		set: func(c *Config, v string) error {
			var out []string
			for _, item := range strings.Split(v, ",") {
				if item = strings.TrimSpace(item); item != "" {
					out = append(out, item)
				}
			}
			*p(c) = out
			return nil
		},
		get: func(c *Config) string { return strings.Join(*p(c), ",") },
	}
}

// Keys describes every key the package knows, in documentation order, with
// the defaults of Default.
func Keys() []Key {
	def := Default()
	ks := keys()
	out := make([]Key, len(ks))
	for i, k := range ks {
		out[i] = Key{Section: k.section, Name: k.name, Env: envName(k.section, k.name), Default: k.get(&def), Secret: k.secret}
	}
	return out
}

// KnownEnv lists, sorted, every environment variable Load reads.
func KnownEnv() []string {
	ks := keys()
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = envName(k.section, k.name)
	}
	sort.Strings(out)
	return out
}
