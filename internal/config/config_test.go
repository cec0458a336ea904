package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ostia/ostia/internal/config"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ostia.conf")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// keyErrors unpacks the *KeyError values of a joined error.
func keyErrors(err error) []*config.KeyError {
	var out []*config.KeyError
	var walk func(error)
	walk = func(e error) {
		if ke, ok := e.(*config.KeyError); ok {
			out = append(out, ke)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range j.Unwrap() {
				walk(inner)
			}
		}
	}
	walk(err)
	return out
}

func TestDefaultIsValid(t *testing.T) {
	if err := config.Default().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatalf("Load with nothing: %v", err)
	}
	if !reflect.DeepEqual(cfg, config.Default()) {
		t.Fatalf("Load(\"\", nil) = %+v, want Default()", cfg)
	}
}

func TestDefaultsFollowOctavia(t *testing.T) {
	d := config.Default()
	checks := []struct {
		name      string
		got, want any
	}{
		{"api bind", d.API.Bind, "127.0.0.1:9876"},
		{"health bind", d.Health.Bind, "127.0.0.1:5555"},
		{"heartbeat_timeout", d.Health.HeartbeatTimeout, 60 * time.Second},
		{"timeout_client_data", d.HAProxy.TimeoutClientData, 50000},
		{"timeout_member_connect", d.HAProxy.TimeoutMemberConnect, 5000},
		{"timeout_member_data", d.HAProxy.TimeoutMemberData, 50000},
		{"timeout_tcp_inspect", d.HAProxy.TimeoutTCPInspect, 0},
		{"lb quota", d.Quotas.LoadBalancer, -1},
		{"l7rule quota", d.Quotas.L7Rule, -1},
		{"topology", d.Worker.Topology, config.TopologySingle},
		{"provider", d.API.DefaultProvider, "amphora"},
		{"embedded", d.Kafka.Embedded, true},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadFile(t *testing.T) {
	p := writeFile(t, `
# Ostia test configuration
; both comment styles work

[database]
url = postgresql://root@db:26257/ostia?sslmode=disable
dialect = cockroach
max_conns = 25

[kafka]
brokers = k1:9092, k2:9092 ,

[api]
bind = 0.0.0.0:9876
auth_strategy = keystone
keystone_url = https://keystone.example:5000/v3
keystone_service_user = octavia
keystone_service_password = "p#ss = word "
keystone_service_project = service

[relay]
poll_interval = 50ms
lease_ttl = 30s

[worker]
topology = ACTIVE_STANDBY
amp_active_wait = 2s

[health]
heartbeat_key = insecure
failover_threshold = 3

[quotas]
default_member_quota = 100

[log]
format = json
`)
	cfg, err := config.Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	want.Database = config.Database{URL: "postgresql://root@db:26257/ostia?sslmode=disable", Dialect: "cockroach", MaxConns: 25}
	want.Kafka.Brokers = []string{"k1:9092", "k2:9092"}
	want.Kafka.Embedded = false // follows brokers when not set
	want.API.Bind = "0.0.0.0:9876"
	want.API.AuthStrategy = "keystone"
	want.API.KeystoneURL = "https://keystone.example:5000/v3"
	want.API.KeystoneServiceUser = "octavia"
	want.API.KeystoneServicePassword = "p#ss = word "
	want.API.KeystoneServiceProject = "service"
	want.Relay.PollInterval = 50 * time.Millisecond
	want.Relay.LeaseTTL = 30 * time.Second
	want.Worker.Topology = "ACTIVE_STANDBY"
	want.Worker.AmpActiveWait = 2 * time.Second
	want.Health.HeartbeatKey = "insecure"
	want.Health.FailoverThreshold = 3
	want.Quotas.Member = 100
	want.Log.Format = "json"
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", cfg, want)
	}
}

func TestEnvOverridesFile(t *testing.T) {
	p := writeFile(t, "[database]\nmax_conns = 25\ndialect = cockroach\n[log]\nlevel = debug\n")
	cfg, err := config.Load(p, []string{
		"PATH=/usr/bin",
		"OSTIA_DATABASE_MAX_CONNS=7",
		"OSTIA_KAFKA_BROKERS=kafka:9092",
		"OSTIA_KAFKA_EMBEDDED=false",
		"OSTIA_RELAY_POLL_INTERVAL=1s",
		// Not configuration: OSTIA_ followed by something that is no section.
		"OSTIA_TEST_DATABASE_URL=postgres://elsewhere/x",
		"OSTIA_LONG=1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database.MaxConns != 7 {
		t.Errorf("max_conns = %d, want 7 from the environment", cfg.Database.MaxConns)
	}
	if cfg.Database.Dialect != "cockroach" || cfg.Log.Level != "debug" {
		t.Errorf("file values lost: dialect %q level %q", cfg.Database.Dialect, cfg.Log.Level)
	}
	if cfg.Kafka.Embedded || !reflect.DeepEqual(cfg.Kafka.Brokers, []string{"kafka:9092"}) {
		t.Errorf("kafka = %+v", cfg.Kafka)
	}
	if cfg.Relay.PollInterval != time.Second {
		t.Errorf("poll_interval = %s", cfg.Relay.PollInterval)
	}
	if cfg.Database.URL != config.Default().Database.URL {
		t.Errorf("OSTIA_TEST_DATABASE_URL must not be read, url = %q", cfg.Database.URL)
	}
}

func TestUnknownKeyIsNamed(t *testing.T) {
	p := writeFile(t, "[api]\nbind_hots = 0.0.0.0:1\n")
	_, err := config.Load(p, nil)
	if err == nil {
		t.Fatal("want an error for a misspelled key")
	}
	if !strings.Contains(err.Error(), "config: unknown key [api] bind_hots") || !strings.Contains(err.Error(), ":2") {
		t.Fatalf("error %q does not name the key and line", err)
	}

	_, err = config.Load("", []string{"OSTIA_API_BIND_HOTS=0.0.0.0:1"})
	if err == nil || !strings.Contains(err.Error(), "unknown key [api] bind_hots (environment variable OSTIA_API_BIND_HOTS)") {
		t.Fatalf("env: got %v", err)
	}

	_, err = config.Load(writeFile(t, "[databse]\nurl = x\nmax_conns = 1\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "unknown section [databse]") || strings.Count(err.Error(), "databse") != 1 {
		t.Fatalf("unknown section: got %v", err)
	}
}

func TestBadValueIsNamed(t *testing.T) {
	cases := []struct {
		body, want string
	}{
		{"[database]\nurl = mysql://x/y\n", "config: [database] url: must be a postgres:// or postgresql:// URL"},
		{"[database]\nmax_conns = ten\n", `config: [database] max_conns: must be an integer, got "ten"`},
		{"[database]\ndialect = mysql\n", `config: [database] dialect: must be one of "postgres", "cockroach", got "mysql"`},
		{"[kafka]\nembedded = maybe\n", "config: [kafka] embedded: must be true or false"},
		{"[kafka]\nembedded = false\n", "config: [kafka] brokers: must list at least one host:port"},
		{"[kafka]\nbrokers = kafka\n", `config: [kafka] brokers: must be a host:port address, got "kafka"`},
		{"[relay]\npoll_interval = 20\n", "config: [relay] poll_interval: must be a duration with a unit"},
		{"[api]\nauth_strategy = keystone\n", "config: [api] keystone_url: must be set when auth_strategy is \"keystone\""},
		{"[api]\nbind = localhost\n", "config: [api] bind: must be a host:port address"},
		{"[worker]\ntopology = single\n", "config: [worker] topology: must be one of"},
		{"[haproxy]\ntimeout_client_data = -5\n", "config: [haproxy] timeout_client_data: must be between 0 and 2073600000, got -5"},
		{"[quotas]\ndefault_pool_quota = -2\n", "config: [quotas] default_pool_quota: must be between -1 and 2000000000"},
		{"[health]\nheartbeat_timeout = 5s\n", "config: [health] heartbeat_timeout: must be longer than heartbeat_interval"},
		{"[log]\nformat = xml\n", "config: [log] format: must be one of \"text\", \"json\""},
	}
	for _, c := range cases {
		_, err := config.Load(writeFile(t, c.body), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want it to contain %q", c.body, err, c.want)
		}
	}
}

func TestSecretsAreNotEchoed(t *testing.T) {
	_, err := config.Load("", []string{"OSTIA_DATABASE_URL=mysql://u:hunter2@h/db"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "(environment variable OSTIA_DATABASE_URL)") {
		t.Fatalf("validation error lacks its source: %v", err)
	}
}

func TestErrorsAreJoined(t *testing.T) {
	p := writeFile(t, `[database]
max_conns = 0
dialect = oracle
[api]
bind_hots = x
auth_strategy = ldap
not a key value line
`)
	_, err := config.Load(p, []string{"OSTIA_LOG_LEVEL=loud"})
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{
		"[database] max_conns: must be at least 1",
		"[database] dialect:",
		"unknown key [api] bind_hots",
		"[api] auth_strategy:",
		`expected "key = value"`,
		"[log] level:",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("joined error lacks %q:\n%v", want, err)
		}
	}
	kes := keyErrors(err)
	if len(kes) != 5 {
		t.Errorf("got %d key errors, want 5: %v", len(kes), err)
	}
	var ke *config.KeyError
	if !errors.As(err, &ke) || ke.Section == "" {
		t.Errorf("errors.As found no *KeyError in %v", err)
	}
	// Validate alone also joins everything.
	bad := config.Default()
	bad.Relay.BatchSize = 0
	bad.Metrics.Bind = "nowhere"
	if got := len(keyErrors(bad.Validate())); got != 2 {
		t.Errorf("Validate: %d errors, want 2: %v", got, bad.Validate())
	}
}

func TestFileSyntax(t *testing.T) {
	cases := []struct{ body, want string }{
		{"url = x\n", "comes before any [section] header"},
		{"[database\n", "lacks a closing ]"},
		{"[database]\nmax_conns = 1\nmax_conns = 2\n", "[database] max_conns: set twice, first at line 2"},
		{"[api]\nbind = \"unterminated\\\"\n", "[api] bind: malformed quoted value"},
	}
	for _, c := range cases {
		_, err := config.Load(writeFile(t, c.body), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.body, err, c.want)
		}
	}
	if _, err := config.Load(filepath.Join(t.TempDir(), "missing.conf"), nil); err == nil {
		t.Error("a missing file must be an error")
	}
}

func TestKafkaEmbeddedResolution(t *testing.T) {
	_, err := config.Load("", []string{"OSTIA_KAFKA_BROKERS=k:9092", "OSTIA_KAFKA_EMBEDDED=true"})
	if err == nil || !strings.Contains(err.Error(), "[kafka] embedded: must be false when brokers is set") {
		t.Fatalf("got %v", err)
	}
	cfg, err := config.Load("", []string{"OSTIA_KAFKA_BROKERS="})
	if err != nil || !cfg.Kafka.Embedded {
		t.Fatalf("empty brokers should mean embedded: %+v %v", cfg.Kafka, err)
	}
}

func TestKnownEnvMatchesKeys(t *testing.T) {
	env := config.KnownEnv()
	keys := config.Keys()
	if len(env) != len(keys) {
		t.Fatalf("%d env names for %d keys", len(env), len(keys))
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if k.Env != "OSTIA_"+strings.ToUpper(k.Section)+"_"+strings.ToUpper(k.Name) {
			t.Errorf("key %s.%s has env %s", k.Section, k.Name, k.Env)
		}
		if seen[k.Env] {
			t.Errorf("duplicate %s", k.Env)
		}
		seen[k.Env] = true
		// Every documented key must round-trip through the environment.
		if _, err := config.Load("", []string{k.Env + "=" + k.Default}); err != nil && !k.Secret {
			t.Errorf("%s=%q (its default) rejected: %v", k.Env, k.Default, err)
		}
	}
	for _, e := range env {
		if !seen[e] {
			t.Errorf("KnownEnv has %s, Keys does not", e)
		}
	}
}

// The reference documentation must mention every key, so the two cannot
// drift apart.
func TestDocsListEveryKey(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range config.Keys() {
		if !strings.Contains(string(doc), "`"+k.Env+"`") {
			t.Errorf("docs/configuration.md does not document %s", k.Env)
		}
		if !strings.Contains(string(doc), "`"+k.Name+"`") {
			t.Errorf("docs/configuration.md does not document [%s] %s", k.Section, k.Name)
		}
	}
}

func TestCertManagerValidation(t *testing.T) {
	c := config.Default()
	if c.Certificates.CertManager != config.CertManagerLocal || c.Certificates.StoragePath == "" {
		t.Fatalf("default cert manager %q in %q", c.Certificates.CertManager, c.Certificates.StoragePath)
	}
	c.Certificates.CertManager = "castellan"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "[certificates] cert_manager:") {
		t.Fatalf("unknown cert manager: %v", err)
	}
	c.Certificates.CertManager, c.Certificates.StoragePath = config.CertManagerLocal, " "
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "[certificates] storage_path:") {
		t.Fatalf("empty storage path: %v", err)
	}
	c = config.Default()
	c.Certificates.CertManager = config.CertManagerBarbican
	err := c.Validate()
	for _, key := range []string{"auth_url", "username", "password", "project_name"} {
		if err == nil || !strings.Contains(err.Error(), "[openstack] "+key+": must be set with the \"barbican\" cert manager") {
			t.Fatalf("barbican without %s: %v", key, err)
		}
	}
	c.OpenStack.AuthURL, c.OpenStack.Username, c.OpenStack.Password, c.OpenStack.ProjectName = "https://keystone:5000/v3", "ostia", "pw", "service"
	if err := c.Validate(); err != nil {
		t.Fatalf("barbican with credentials: %v", err)
	}
	p := writeFile(t, "[certificates]\ncert_manager = barbican\nstorage_path = /srv/certs\n")
	got, err := config.Load(p, []string{"OSTIA_CERTIFICATES_CERT_MANAGER=local"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Certificates.CertManager != config.CertManagerLocal || got.Certificates.StoragePath != "/srv/certs" {
		t.Fatalf("loaded %+v", got.Certificates)
	}
}
