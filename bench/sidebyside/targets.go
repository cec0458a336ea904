package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// target is one server under test.
type target struct {
	Name       string
	Base       string
	MetricsURL string                // Ostia only
	LogPath    string                // Ostia only, when started here
	groups     func() map[string]int // process groups to measure: name → pgid
	// infra lists the processes of the target's database and message
	// broker (MariaDB and RabbitMQ for Octavia; for Ostia the PostgreSQL
	// backends serving its database — the embedded broker is in-process).
	infra func() []int
	stop  func()
}

func (t *target) rss() map[string]rssInfo {
	out := map[string]rssInfo{}
	if t.groups == nil {
		return out
	}
	for name, pgid := range t.groups() {
		out[name] = groupRSS(pgid)
	}
	return out
}

func (t *target) cpuSeconds() float64 {
	if t.groups == nil {
		return 0
	}
	var s float64
	for _, pgid := range t.groups() {
		s += groupCPUSeconds(pgid)
	}
	return s
}

func (t *target) infraTicks() cpuTicks {
	if t.infra == nil {
		return nil
	}
	return ticksOf(t.infra())
}

func totalMiB(m map[string]rssInfo) float64 {
	var kb int64
	for _, r := range m {
		kb += r.TotalKB
	}
	return float64(kb) / 1024
}

func up(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
	resp, err := (&http.Client{Transport: newTransport(false, 1)}).Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// ---------------------------------------------------------------- Ostia

// startOstia builds cmd/ostia, creates a fresh database and runs `ostia up`
// (embedded broker, noauth, noop driver) on free local ports.
func startOstia(ctx context.Context, o *options) (*target, error) {
	if o.ostiaURL != "" {
		t := &target{Name: "Ostia", Base: strings.TrimRight(o.ostiaURL, "/"), MetricsURL: o.ostiaMetrics, stop: func() {}}
		if o.ostiaPID > 0 {
			pgid, err := syscall.Getpgid(o.ostiaPID)
			if err != nil {
				return nil, fmt.Errorf("--ostia-pid %d: %w", o.ostiaPID, err)
			}
			t.groups = func() map[string]int { return map[string]int{"ostia": pgid} }
		}
		if !up(ctx, t.Base) {
			return nil, fmt.Errorf("Ostia does not answer at %s", t.Base)
		}
		return t, nil
	}

	dir := o.workDir
	if dir == "" {
		d, err := os.MkdirTemp("", "ostia-sidebyside-")
		if err != nil {
			return nil, err
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cleanup := []func(){}
	fail := func(err error) (*target, error) {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
		return nil, err
	}
	if !o.keep && o.workDir == "" {
		cleanup = append(cleanup, func() { _ = os.RemoveAll(dir) })
	}

	bin := o.ostiaBin
	if bin == "" {
		bin = filepath.Join(dir, "ostia")
		var err error
		for attempt := 1; ; attempt++ {
			logf("ostia: go build -o %s ./cmd/ostia (attempt %d)", bin, attempt)
			cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ostia")
			cmd.Dir = o.repo
			out, e := cmd.CombinedOutput()
			if e == nil {
				err = nil
				break
			}
			err = fmt.Errorf("go build ./cmd/ostia: %v\n%s", e, out)
			if attempt > o.buildRetries {
				break
			}
			logf("ostia: build failed (others may be editing); retrying in %s:\n%s", o.buildRetryWait, truncate(string(out), 2000))
			if e := sleep(ctx, o.buildRetryWait); e != nil {
				return fail(e)
			}
		}
		if err != nil {
			return fail(err)
		}
	}

	dbName := fmt.Sprintf("ostia_sidebyside_%d", time.Now().Unix())
	dbURL, err := createDatabase(ctx, o.adminDB, dbName)
	if err != nil {
		return fail(err)
	}
	logf("ostia: created database %s", dbName)
	if !o.keep {
		cleanup = append(cleanup, func() {
			if err := dropDatabase(context.Background(), o.adminDB, dbName); err != nil {
				logf("ostia: drop database %s: %v", dbName, err)
			}
		})
	}

	ports, err := freePorts(3)
	if err != nil {
		return fail(err)
	}
	apiAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", ports[1])
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OSTIA_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"OSTIA_DATABASE_URL="+dbURL,
		"OSTIA_KAFKA_DATA_DIR="+filepath.Join(dir, "data", "kafka"),
		fmt.Sprintf("OSTIA_KAFKA_EMBEDDED_PORT=%d", ports[2]),
		"OSTIA_API_BIND="+apiAddr,
		"OSTIA_API_AUTH_STRATEGY=noauth",
		"OSTIA_METRICS_BIND="+metricsAddr,
		"OSTIA_HEALTH_BIND=127.0.0.1:0",
		"OSTIA_WORKER_DRIVER=noop",
	)
	env = append(env, o.ostiaEnv...)
	logPath := filepath.Join(dir, "ostia.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fail(err)
	}
	cmd := exec.Command(bin, "up")
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fail(err)
	}
	pid := cmd.Process.Pid
	logf("ostia: `ostia up` pid %d, API http://%s, metrics http://%s/metrics, log %s", pid, apiAddr, metricsAddr, logPath)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopProc := func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			logf("ostia: still running 20 s after SIGTERM; killing process group %d", pid)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-exited
		}
		logFile.Close()
		if o.ostiaLog != "" {
			if b, err := os.ReadFile(logPath); err == nil {
				_ = os.WriteFile(o.ostiaLog, b, 0o644)
			}
		}
	}
	// Stop the process before dropping its database and removing its dir.
	cleanup = append(cleanup, stopProc)
	t := &target{Name: "Ostia", Base: "http://" + apiAddr, MetricsURL: "http://" + metricsAddr + "/metrics", LogPath: logPath,
		groups: func() map[string]int { return map[string]int{"ostia up": pid} },
		infra:  func() []int { return backendPids(o.adminDB, dbName) }}
	t.stop = func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for !up(ctx, t.Base) {
		select {
		case err := <-exited:
			exited <- err
			b, _ := os.ReadFile(logPath)
			t.stop()
			return nil, fmt.Errorf("ostia up exited (%v):\n%s", err, tail(string(b), 40))
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.stop()
			return nil, fmt.Errorf("ostia API not up after 90 s:\n%s", tail(string(b), 40))
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			t.stop()
			return nil, err
		}
	}
	return t, nil
}

// backendPids lists the PostgreSQL backends connected to database name.
func backendPids(adminURL, name string) []int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return nil
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = $1", name)
	if err != nil {
		return nil
	}
	var out []int
	for rows.Next() {
		var pid int32
		if rows.Scan(&pid) == nil {
			out = append(out, int(pid))
		}
	}
	return out
}

func createDatabase(ctx context.Context, adminURL, name string) (string, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("connect %s (is PostgreSQL up? bash scripts/ensure-postgres.sh): %w", redact(adminURL), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

func dropDatabase(ctx context.Context, adminURL, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(database URL)"
	}
	return p.Redacted()
}

// freePorts finds n distinct free TCP ports on 127.0.0.1 below the
// ephemeral range (32768+), so that a client socket cannot take one
// between the check and `ostia up` binding it.
func freePorts(n int) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for tries := 0; len(out) < n && tries < 1000; tries++ {
		p := 20000 + rand.IntN(12000)
		if seen[p] {
			continue
		}
		seen[p] = true
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		out = append(out, p)
	}
	if len(out) < n {
		return nil, errors.New("no free ports between 20000 and 32000")
	}
	return out, nil
}

// logPatterns are counted in Ostia's log at the end of a run.
var logPatterns = []string{"level=WARN", "level=ERROR", "SQLSTATE 40001", "CONSUMER STUCK", "api request failed"}

func countLog(path string) map[string]int {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	out := map[string]int{}
	for _, l := range strings.Split(string(b), "\n") {
		for _, p := range logPatterns {
			if strings.Contains(l, p) {
				out[p]++
			}
		}
	}
	return out
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// -------------------------------------------------------------- Octavia

// startOctavia uses the Octavia at --octavia, or, with --start-octavia,
// runs the anchor's setup.sh from a copy in --octavia-state (the shared
// anchor directory stays untouched) and stop.sh at the end.
func startOctavia(ctx context.Context, o *options) (*target, error) {
	base := strings.TrimRight(o.octaviaURL, "/")
	t := &target{Name: "Octavia", Base: base, stop: func() {},
		infra: func() []int { return pidsByComm("mariadbd", "beam.smp") }}
	pidsFile := o.octaviaPids
	started := false
	if !up(ctx, base) {
		if !o.startOctavia {
			return nil, fmt.Errorf("Octavia does not answer at %s; start it (%s/setup.sh) or pass --start-octavia", base, o.octaviaDir)
		}
		if base != "http://127.0.0.1:9876" {
			return nil, fmt.Errorf("--start-octavia runs the anchor, which listens on http://127.0.0.1:9876, not %s", base)
		}
		if err := os.MkdirAll(o.octaviaState, 0o755); err != nil {
			return nil, err
		}
		for _, f := range []string{"setup.sh", "stop.sh", "cli-stub.py"} {
			b, err := os.ReadFile(filepath.Join(o.octaviaDir, f))
			if err != nil {
				return nil, fmt.Errorf("--octavia-dir: %w", err)
			}
			if err := os.WriteFile(filepath.Join(o.octaviaState, f), b, 0o755); err != nil {
				return nil, err
			}
		}
		logf("octavia: running %s/setup.sh (copied from %s; the first run installs packages and takes minutes)", o.octaviaState, o.octaviaDir)
		out, err := os.Create(filepath.Join(o.octaviaState, "setup.out"))
		if err != nil {
			return nil, err
		}
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(o.octaviaState, "setup.sh"))
		cmd.Dir = o.octaviaState
		cmd.Stdout = io.MultiWriter(out, prefixWriter{"octavia setup: "})
		cmd.Stderr = cmd.Stdout
		err = cmd.Run()
		out.Close()
		if err != nil {
			return nil, fmt.Errorf("setup.sh: %w (see %s/setup.out and %s/logs)", err, o.octaviaState, o.octaviaState)
		}
		started = true
		if pidsFile == "" {
			pidsFile = filepath.Join(o.octaviaState, "run", "pids")
		}
	} else if o.startOctavia {
		logf("octavia: already answering at %s; using it and leaving it running", base)
	}
	if pidsFile == "" {
		for _, p := range []string{filepath.Join(o.octaviaState, "run", "pids"), filepath.Join(o.octaviaDir, "run", "pids")} {
			if pids, err := readPidsFile(p); err == nil && pids["api"] > 0 && syscall.Kill(pids["api"], 0) == nil {
				pidsFile = p
				break
			}
		}
	}
	if pidsFile != "" {
		pids, err := readPidsFile(pidsFile)
		if err != nil {
			return nil, err
		}
		logf("octavia: process groups from %s: api %d, worker %d", pidsFile, pids["api"], pids["worker"])
		t.groups = func() map[string]int {
			// bench.py measures the API (uwsgi master + workers) and the
			// worker (cotyledon master + consumers); cli-stub is a client helper.
			return map[string]int{"api": pids["api"], "worker": pids["worker"]}
		}
	} else {
		logf("octavia: no run/pids found; RSS and CPU of Octavia will be missing (pass --octavia-pids)")
	}
	if started {
		t.stop = func() {
			logf("octavia: stop.sh")
			cmd := exec.Command("bash", filepath.Join(o.octaviaState, "stop.sh"))
			cmd.Dir = o.octaviaState
			cmd.Stdout, cmd.Stderr = prefixWriter{"octavia stop: "}, prefixWriter{"octavia stop: "}
			if err := cmd.Run(); err != nil {
				logf("octavia: stop.sh: %v", err)
			}
		}
	}
	return t, nil
}

type prefixWriter struct{ prefix string }

func (p prefixWriter) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		logf("%s%s", p.prefix, l)
	}
	return len(b), nil
}
