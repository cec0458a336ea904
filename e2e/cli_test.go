package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// osc runs the openstack CLI as one cloud of a clouds.yaml.
type osc struct {
	bin   string
	env   []string
	cloud string // "" for the noauth variant, which passes global flags instead
	flags []string
}

var (
	cliOnce sync.Once
	cliBin  string
	cliErr  error
)

// requireCLI finds the openstack CLI with the Octavia plugin, or skips the
// test (fails under CI).
func requireCLI(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		cliBin, cliErr = exec.LookPath("openstack")
		if cliErr != nil {
			return
		}
		// The load-balancer commands come from python3-octaviaclient.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, cliBin, "loadbalancer", "list", "--help").CombinedOutput()
		if err != nil {
			cliErr = fmt.Errorf("`openstack loadbalancer list --help` failed (is python3-octaviaclient installed?): %v\n%s", err, out)
		}
	})
	if cliErr != nil {
		unavailable(t, "the openstack CLI with the Octavia plugin is not available (run scripts/ensure-openstack-cli.sh): %v", cliErr)
	}
	return cliBin
}

// cliEnv is the environment of CLI runs: no OS_* variable of the caller's
// shell, the given clouds.yaml, and a private HOME for the CLI's caches.
func cliEnv(t *testing.T, clouds string) []string {
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OS_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	home := t.TempDir()
	env = append(env, "HOME="+home, "PYTHONWARNINGS=ignore")
	if clouds != "" {
		env = append(env, "OS_CLIENT_CONFIG_FILE="+clouds)
	}
	return env
}

// run runs `openstack <args>` and returns stdout, or an error carrying the
// exit status and stderr.
func (c *osc) run(args ...string) (string, error) {
	full := append([]string{}, c.flags...)
	if c.cloud != "" {
		full = append(full, "--os-cloud", c.cloud)
	}
	full = append(full, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, full...)
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &cliError{args: args, err: err, stderr: strings.TrimSpace(stderr.String())}
	}
	return stdout.String(), nil
}

type cliError struct {
	args   []string
	err    error
	stderr string
}

func (e *cliError) Error() string {
	return fmt.Sprintf("openstack %s: %v: %s", strings.Join(e.args, " "), e.err, e.stderr)
}

func (c *osc) who() string {
	if c.cloud != "" {
		return c.cloud
	}
	return "noauth"
}

// ok runs a command that must succeed and returns its stdout.
func (c *osc) ok(t *testing.T, args ...string) string {
	t.Helper()
	start := time.Now()
	out, err := c.run(args...)
	t.Logf("[%s] openstack %s (%.1fs)", c.who(), strings.Join(args, " "), time.Since(start).Seconds())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// json runs a command with -f json that must succeed and decodes stdout.
func (c *osc) json(t *testing.T, out any, args ...string) {
	t.Helper()
	s := c.ok(t, append(args, "-f", "json")...)
	if err := json.Unmarshal([]byte(s), out); err != nil {
		t.Fatalf("openstack %s: decode %q: %v", strings.Join(args, " "), s, err)
	}
}

// fails checks that a command fails with stderr containing want (e.g.
// "HTTP 403"). It returns an error instead of failing so that checks can run
// concurrently.
func (c *osc) fails(want string, args ...string) error {
	out, err := c.run(args...)
	if err == nil {
		return fmt.Errorf("[%s] openstack %s succeeded, want an error containing %q; stdout:\n%s",
			c.who(), strings.Join(args, " "), want, out)
	}
	if !strings.Contains(err.Error(), want) {
		return fmt.Errorf("[%s] want an error containing %q, got: %v", c.who(), want, err)
	}
	return nil
}

// concurrently runs independent checks at once (each CLI call costs a
// Python start and a Keystone login) and reports every error.
func concurrently(t *testing.T, checks ...func() error) {
	t.Helper()
	start := time.Now()
	defer func() { t.Logf("%d concurrent checks (%.1fs)", len(checks), time.Since(start).Seconds()) }()
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, check := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = check()
		}()
	}
	wg.Wait()
	failed := false
	for _, err := range errs {
		if err != nil {
			t.Error(err)
			failed = true
		}
	}
	if failed {
		t.FailNow()
	}
}

// obj is one object as printed by `openstack ... show -f json`.
type obj map[string]any

func (o obj) str(key string) string {
	v, ok := o[key]
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// num reads a number attribute (the CLI prints numbers as JSON numbers);
// NaN when it is missing or not a number.
func (o obj) num(key string) float64 {
	if f, ok := o[key].(float64); ok {
		return f
	}
	return math.NaN()
}

// tags reads the CLI's tags column: a newline or comma separated string.
func (o obj) tags() []string {
	var out []string
	switch v := o["tags"].(type) {
	case string:
		for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == ',' }) {
			out = append(out, strings.TrimSpace(s))
		}
	case []any:
		for _, s := range v {
			out = append(out, fmt.Sprint(s))
		}
	}
	sort.Strings(out)
	return out
}

func ids(list []obj) []string {
	out := make([]string, 0, len(list))
	for _, o := range list {
		out = append(out, o.str("id"))
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func expect(t *testing.T, what string, got, want any) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

const testSubnet = "8a2c3e4f-5b6d-4e7f-8a9b-0c1d2e3f4a5b"

// writeClouds writes a clouds.yaml with one cloud per user, all in region.
func writeClouds(t *testing.T, authURL, region string, users map[string]ksUser) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("clouds:\n")
	names := make([]string, 0, len(users))
	for n := range users {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		u := users[n]
		fmt.Fprintf(&b, "  %s:\n    auth: {auth_url: %q, username: %q, password: %q, project_name: %q, user_domain_name: Default, project_domain_name: Default}\n",
			n, authURL, u.name, u.password, u.project)
		fmt.Fprintf(&b, "    region_name: %q\n    interface: public\n    identity_api_version: 3\n", region)
	}
	p := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
