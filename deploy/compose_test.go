package deploy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/config"
)

// Long-running Ostia services and the subcommand each runs.
var ostiaServices = map[string]string{
	"api":       "api",
	"relay":     "relay",
	"worker":    "worker",
	"projector": "projector",
	"health":    "health",
}

// Services that must run at least this many replicas.
var replicated = []string{"worker", "projector"}

func composePath(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func loadProject(t *testing.T, path string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{path}, cli.WithOsEnv, cli.WithName("ostia"))
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

// environ turns a service's environment into os.Environ form.
func environ(svc types.ServiceConfig) []string {
	var out []string
	for k, v := range svc.Environment {
		if v != nil {
			out = append(out, k+"="+*v)
		} else {
			out = append(out, k+"=")
		}
	}
	sort.Strings(out)
	return out
}

func envValue(svc types.ServiceConfig, name string) string {
	if v := svc.Environment[name]; v != nil {
		return *v
	}
	return ""
}

// checkProject returns every way the project departs from the production
// shape; empty means it conforms.
func checkProject(p *types.Project) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	known := config.KnownEnv()

	for _, name := range []string{"kafka", "cockroach", "db-init"} {
		if _, ok := p.Services[name]; !ok {
			bad("service %s is missing", name)
		}
	}
	for _, infra := range []string{"kafka", "cockroach"} {
		if svc, ok := p.Services[infra]; ok && (svc.HealthCheck == nil || svc.HealthCheck.Disable || len(svc.HealthCheck.Test) == 0) {
			bad("%s has no healthcheck", infra)
		}
	}
	if k, ok := p.Services["kafka"]; ok && !strings.HasPrefix(k.Image, "apache/kafka") {
		bad("kafka image %q is not apache/kafka", k.Image)
	}
	if c, ok := p.Services["cockroach"]; ok {
		if !strings.HasPrefix(c.Image, "cockroachdb/cockroach") {
			bad("cockroach image %q is not cockroachdb/cockroach", c.Image)
		}
		if cmd := strings.Join(c.Command, " "); !strings.Contains(cmd, "start-single-node") || !strings.Contains(cmd, "--insecure") {
			bad("cockroach command %q is not start-single-node --insecure", cmd)
		}
	}
	if db, ok := p.Services["db-init"]; ok {
		if !slices.Equal([]string(db.Command), []string{"migrate"}) {
			bad("db-init runs %q, want ostia migrate", db.Command)
		}
		if d := db.DependsOn["cockroach"]; d.Condition != types.ServiceConditionHealthy {
			bad("db-init must wait for cockroach to be healthy, condition %q", d.Condition)
		}
	}
	for _, v := range []string{"kafka-data", "cockroach-data"} {
		if _, ok := p.Volumes[v]; !ok {
			bad("volume %s is missing", v)
		}
	}

	// Every container built from this repository runs ostia: check its
	// configuration against internal/config.
	for name, svc := range p.Services {
		if svc.Build == nil {
			continue
		}
		_, long := ostiaServices[name]
		if !long && name != "db-init" {
			bad("service %s builds the ostia image but is not a known ostia service", name)
		}
		for _, kv := range environ(svc) {
			k, _, _ := strings.Cut(kv, "=")
			if strings.HasPrefix(k, "OSTIA_") && !slices.Contains(known, k) {
				bad("%s sets %s, which internal/config does not know", name, k)
			}
		}
		cfg, err := config.Load("", environ(svc))
		if err != nil {
			bad("%s: its environment is not a valid configuration: %v", name, err)
			continue
		}
		if cfg.Kafka.Embedded || envValue(svc, "OSTIA_KAFKA_EMBEDDED") != "false" || len(cfg.Kafka.Brokers) == 0 {
			bad("%s uses the embedded broker (brokers %v, embedded %v)", name, cfg.Kafka.Brokers, cfg.Kafka.Embedded)
		}
		if cfg.Database.Dialect != config.DialectCockroach || !strings.Contains(cfg.Database.URL, "@cockroach:26257/") {
			bad("%s does not use the cockroach service (dialect %q)", name, cfg.Database.Dialect)
		}
	}

	for name, cmd := range ostiaServices {
		svc, ok := p.Services[name]
		if !ok {
			bad("service %s is missing", name)
			continue
		}
		if svc.Build == nil {
			bad("%s is not built from the repository", name)
		}
		if !slices.Equal([]string(svc.Command), []string{cmd}) {
			bad("%s runs %q, want ostia %s", name, svc.Command, cmd)
		}
		hc := svc.HealthCheck
		if hc == nil || hc.Disable || !strings.Contains(strings.Join(hc.Test, " "), "ostia healthcheck --url http://127.0.0.1:9100/healthz") {
			bad("%s has no `ostia healthcheck` healthcheck", name)
		}
		if svc.Restart == "" || svc.Restart == "no" {
			bad("%s has no restart policy", name)
		}
		for dep, want := range map[string]string{
			"kafka":     types.ServiceConditionHealthy,
			"cockroach": types.ServiceConditionHealthy,
			"db-init":   types.ServiceConditionCompletedSuccessfully,
		} {
			if got := svc.DependsOn[dep].Condition; got != want {
				bad("%s: depends_on %s has condition %q, want %q", name, dep, got, want)
			}
		}
		if envValue(svc, "OSTIA_METRICS_BIND") == "" || !strings.HasSuffix(envValue(svc, "OSTIA_METRICS_BIND"), ":9100") {
			bad("%s: the metrics server must listen on port 9100 for the healthcheck", name)
		}
	}
	for _, name := range replicated {
		if svc, ok := p.Services[name]; ok && svc.GetScale() < 2 {
			bad("%s runs %d replica(s), want at least 2", name, svc.GetScale())
		}
	}
	if api, ok := p.Services["api"]; ok && !publishes(api, 9876, "tcp") {
		bad("api does not publish 9876/tcp")
	}
	if h, ok := p.Services["health"]; ok && !publishes(h, 5555, "udp") {
		bad("health does not publish 5555/udp")
	}
	return problems
}

func publishes(svc types.ServiceConfig, port uint32, proto string) bool {
	for _, p := range svc.Ports {
		if p.Target == port && (p.Protocol == proto || (p.Protocol == "" && proto == "tcp")) {
			return true
		}
	}
	return false
}

func TestComposeFile(t *testing.T) {
	p, err := loadProject(t, composePath(t))
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	if p.Name != "ostia" {
		t.Errorf("project name %q", p.Name)
	}
	for _, problem := range checkProject(p) {
		t.Error(problem)
	}
}

// The topic-creation one-shot must create the topic of every aggregate type.
func TestComposeCreatesEveryTopic(t *testing.T) {
	p, err := loadProject(t, composePath(t))
	if err != nil {
		t.Fatal(err)
	}
	svc, ok := p.Services["kafka-topics"]
	if !ok {
		t.Skip("no kafka-topics service")
	}
	script := strings.Join(svc.Command, " ")
	if !strings.Contains(script, events.Topic("$t")) {
		t.Errorf("kafka-topics does not create %s topics:\n%s", events.Topic("$t"), script)
	}
	for _, a := range events.AggregateTypes() {
		if !strings.Contains(script, " "+a+" ") && !strings.Contains(script, " "+a+";") {
			t.Errorf("kafka-topics does not create the topic of %q", a)
		}
	}
	for name := range ostiaServices {
		if c := p.Services[name].DependsOn["kafka-topics"].Condition; c != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s does not wait for kafka-topics (condition %q)", name, c)
		}
	}
}

// A misspelled key must be rejected by the loader; otherwise the test above
// could never fail on typos.
func TestComposeRejectsMisspelledKey(t *testing.T) {
	src, err := os.ReadFile(composePath(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, to string }{
		{"    command: start-single-node --insecure", "    comand: start-single-node --insecure"},
		{"        condition: service_healthy", "        condtion: service_healthy"},
		{"    deploy:\n      replicas: 2", "    deploy:\n      replica: 2"},
	} {
		if !strings.Contains(string(src), c.from) {
			t.Fatalf("docker-compose.yml no longer contains %q; update the test", c.from)
		}
		bad := filepath.Join(t.TempDir(), "docker-compose.yml")
		if err := os.WriteFile(bad, []byte(strings.Replace(string(src), c.from, c.to, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadProject(t, bad); err == nil {
			t.Errorf("a copy with %q loaded without error", strings.TrimSpace(c.to))
		} else {
			t.Logf("rejected as expected: %v", err)
		}
	}
}

// The structural checks must catch a service that drifts from the shape.
func TestCheckProjectCatchesDrift(t *testing.T) {
	p, err := loadProject(t, composePath(t))
	if err != nil {
		t.Fatal(err)
	}
	w := p.Services["worker"]
	w.HealthCheck = nil
	one := 1
	w.Deploy = &types.DeployConfig{Replicas: &one}
	env := types.MappingWithEquals{}
	for k, v := range w.Environment {
		env[k] = v
	}
	embedded, typo := "true", "x"
	env["OSTIA_KAFKA_EMBEDDED"] = &embedded
	env["OSTIA_KAFKA_BROKRES"] = &typo
	w.Environment = env
	w.DependsOn = types.DependsOnConfig{"kafka": {Condition: types.ServiceConditionStarted}}
	p.Services["worker"] = w

	problems := strings.Join(checkProject(p), "\n")
	for _, want := range []string{
		"worker has no `ostia healthcheck` healthcheck",
		"worker runs 1 replica(s)",
		"worker sets OSTIA_KAFKA_BROKRES",
		"worker: its environment is not a valid configuration",
		`worker: depends_on kafka has condition "service_started"`,
		`worker: depends_on cockroach has condition ""`,
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("drift not reported: %q\nproblems:\n%s", want, problems)
		}
	}
}
