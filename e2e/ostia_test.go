package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ostia/ostia/internal/testkit"
)

// ostia is one `ostia up` process started by a test.
type ostia struct {
	// URL is the Octavia v2 API, e.g. http://127.0.0.1:41234.
	URL string
	// HealthAddr is the UDP address heartbeats go to; HeartbeatKey their key.
	HealthAddr   string
	HeartbeatKey string
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

var apiLine = regexp.MustCompile(`Octavia v2 API: (http://\S+)`)

// startOstia runs `ostia up` on a fresh database with the single-machine
// defaults (embedded broker) and the noop compute driver, the API and metrics on
// free ports, plus env (OSTIA_<SECTION>_<KEY>=value entries). The process
// is stopped (SIGTERM, then SIGKILL) and the database dropped when the test
// ends.
func startOstia(t *testing.T, env ...string) *ostia {
	t.Helper()
	bin := ostiaBinary(t)
	_, dbURL := testkit.NewDatabase(t) // skips (fails under CI) without PostgreSQL
	dir := t.TempDir()
	var lastErr string
	for attempt := 1; attempt <= 3; attempt++ {
		o, err := runOstia(t, bin, dir, dbURL, env)
		if err == nil {
			return o
		}
		lastErr = err.Error()
		// A port picked free may be taken before ostia binds it; retry then.
		if !strings.Contains(lastErr, "address already in use") {
			break
		}
	}
	t.Fatalf("ostia up did not start: %s", lastErr)
	return nil
}

func runOstia(t *testing.T, bin, dir, dbURL string, extra []string) (*ostia, error) {
	t.Helper()
	healthPort := freeUDPPort(t)
	o := &ostia{HealthAddr: fmt.Sprintf("127.0.0.1:%d", healthPort), HeartbeatKey: "e2e-heartbeat-key"}
	env := []string{}
	for _, kv := range os.Environ() {
		// Only the configuration given here: no OSTIA_ section variable of
		// the caller's shell leaks into the instance.
		if !strings.HasPrefix(kv, "OSTIA_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"OSTIA_DATABASE_URL="+dbURL,
		"OSTIA_KAFKA_DATA_DIR="+filepath.Join(dir, "kafka"),
		fmt.Sprintf("OSTIA_KAFKA_EMBEDDED_PORT=%d", testkit.FreePort(t)),
		"OSTIA_API_BIND=127.0.0.1:0",
		"OSTIA_METRICS_BIND=127.0.0.1:0",
		"OSTIA_HEALTH_BIND="+o.HealthAddr,
		"OSTIA_HEALTH_HEARTBEAT_KEY="+o.HeartbeatKey,
		// Amphorae are bookkeeping only (the default "local" driver runs
		// haproxy processes).
		"OSTIA_WORKER_DRIVER=noop",
	)
	env = append(env, extra...)

	logPath := filepath.Join(dir, fmt.Sprintf("ostia-%d.log", time.Now().UnixNano()))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	stdout := &testkit.SyncBuffer{}
	cmd := exec.Command(bin, "up")
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = io.MultiWriter(stdout, logFile)
	cmd.Stderr = logFile
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s up: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			t.Logf("ostia (pid %d) did not stop within 20s of SIGTERM; killing it", cmd.Process.Pid)
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
	}
	readLog := func() string {
		b, _ := os.ReadFile(logPath)
		return tail(string(b), 60)
	}

	deadline := time.After(90 * time.Second)
	for o.URL == "" {
		if m := apiLine.FindStringSubmatch(stdout.String()); m != nil {
			o.URL = m[1]
			break
		}
		select {
		case err := <-exited:
			logFile.Close()
			return nil, fmt.Errorf("ostia up exited (%v) before announcing the API; log:\n%s", err, readLog())
		case <-deadline:
			stop()
			return nil, fmt.Errorf("ostia up did not announce the API within 90s; log:\n%s", readLog())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Cleanup(func() {
		stop()
		b, _ := os.ReadFile(logPath)
		var warnings, errs []string
		for _, l := range strings.Split(string(b), "\n") {
			switch {
			case strings.Contains(l, "level=ERROR"):
				errs = append(errs, l)
				warnings = append(warnings, l)
			case strings.Contains(l, "level=WARN"):
				warnings = append(warnings, l)
			}
		}
		switch {
		case t.Failed():
			t.Logf("ostia log (%s): warnings and errors:\n%s\nlast lines:\n%s", logPath,
				tail(strings.Join(warnings, "\n"), 40), readLog())
		case len(errs) > 0:
			// A passing test can still have made Ostia log errors (an API
			// 500 the test retried through, a failed saga): show them.
			t.Logf("ostia logged %d errors:\n%s", len(errs), tail(strings.Join(errs, "\n"), 20))
		}
	})
	t.Logf("ostia up (pid %d): API %s, log %s", cmd.Process.Pid, o.URL, logPath)
	return o, nil
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// restClient is a small JSON client for direct API checks and waits.
type restClient struct {
	base    string
	headers map[string]string
}

// do sends a request and decodes a JSON answer into out (when not nil). It
// returns the status code.
func (c *restClient) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode %q: %w", method, path, b, err)
		}
	}
	return resp.StatusCode, nil
}

// waitLBActive polls the load balancer until its provisioning status is
// ACTIVE, failing the test after a minute.
func (c *restClient) waitLBActive(t *testing.T, id string) {
	t.Helper()
	if err := waitActive(c, id); err != nil {
		t.Fatal(err)
	}
}

// get reads one object ({"<key>": {...}}) that must exist.
func (c *restClient) get(t *testing.T, path, key string) obj {
	t.Helper()
	var body map[string]obj
	code, err := c.do(context.Background(), "GET", path, nil, &body)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %v", path, code, err)
	}
	return body[key]
}
