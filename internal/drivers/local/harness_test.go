package local_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/commands"
	"github.com/ostia/ostia/aggregates/handler"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/aggregates/project"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/certmanager"
	"github.com/ostia/ostia/internal/drivers/agentclient"
	"github.com/ostia/ostia/internal/drivers/local"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/heartbeat"
	"github.com/ostia/ostia/internal/pki"
	"github.com/ostia/ostia/internal/testkit"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
	"github.com/ostia/ostia/sagas/lbflows"
	"github.com/ostia/ostia/sagas/saga"
	"github.com/ostia/ostia/templates"
)

// agentBinary builds cmd/ostia-agent once per test binary.
var agentBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "ostia-agent-bin")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "ostia-agent")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goBin, "build", "-o", out, "github.com/ostia/ostia/cmd/ostia-agent")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ostia-agent: %w: %s", err, b)
	}
	return out, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if p, err := agentBinary(); err == nil {
		os.RemoveAll(filepath.Dir(p))
	}
	os.Exit(code)
}

// requireNetns skips unless the machine can run amphorae in namespaces.
func requireNetns(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("local driver end-to-end tests need root (network namespaces, veths, a bridge); skipping")
	}
	for _, bin := range []string{"ip", "haproxy"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (run scripts/ensure-haproxy.sh); skipping", bin)
		}
	}
}

func requireKeepalived(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("keepalived"); err == nil {
		return
	}
	if _, err := os.Stat("/usr/sbin/keepalived"); err == nil {
		return
	}
	t.Skip("keepalived is not installed (run scripts/ensure-haproxy.sh); skipping")
}

func logger(t testing.TB) *slog.Logger {
	if os.Getenv("OSTIA_LOCAL_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// harness is the saga machinery of one worker (commands, saga store,
// flows, runner) on PostgreSQL with the local driver and the gRPC agent
// client; sagas are started directly from the command results, as the
// Kafka consumers would.
type harness struct {
	t        testing.TB
	pool     *pgxpool.Pool
	es       *eventstore.Store
	reg      *events.Registry
	h        *handler.Handler
	svc      *commands.Service
	sagas    *saga.Store
	flows    *lbflows.Flows
	runner   *saga.Runner
	drv      *local.Driver
	agents   *agentclient.Client
	stateDir string
	// certDir is the storage path of the local cert manager the flows
	// read listener certificates from.
	certDir    string
	heartbeats chan heartbeat.Heartbeat
	// port is the listener port of createLB (80; 8080 in host mode,
	// where haproxy may not bind ports below 1024).
	port int32
}

type harnessOptions struct {
	keepalived templates.KeepalivedSettings
	// mode is the driver's mode (default netns).
	mode local.Mode
}

func newHarness(t testing.TB, opts harnessOptions) *harness {
	t.Helper()
	if opts.mode == "" {
		opts.mode = local.ModeNetns
		requireNetns(t)
	}
	bin, err := agentBinary()
	if err != nil {
		t.Fatal(err)
	}
	pool, _ := testkit.NewDatabase(t)
	hs := &harness{t: t, pool: pool, es: eventstore.New(pool), reg: events.MustNewRegistry(),
		heartbeats: make(chan heartbeat.Heartbeat, 256), port: 80}
	if opts.mode == local.ModeHost {
		hs.port = 8080
	}
	if hs.h, err = handler.New(handler.Config{Store: hs.es, Registry: hs.reg, MaxAttempts: 100}); err != nil {
		t.Fatal(err)
	}
	if hs.svc, err = commands.New(commands.Config{Handler: hs.h, LoadBalancer: lb.DefaultConfig(),
		QuotaDefaults: project.DefaultLimits()}); err != nil {
		t.Fatal(err)
	}
	if hs.sagas, err = saga.NewStore(saga.StoreConfig{Pool: pool, Registry: hs.reg}); err != nil {
		t.Fatal(err)
	}

	ca, err := pki.NewCA("ostia test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := agentclient.NewAuthority(ca)
	if err != nil {
		t.Fatal(err)
	}
	hbKey := randHex(16)
	recv, err := heartbeat.NewReceiver(heartbeat.Config{Addr: "127.0.0.1:0", Key: []byte(hbKey), Logger: logger(t),
		Sink: func(_ context.Context, hb heartbeat.Heartbeat) error {
			select {
			case hs.heartbeats <- hb:
			default:
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	rdone := make(chan struct{})
	go func() { defer close(rdone); _ = recv.Run(rctx) }()
	t.Cleanup(func() { rcancel(); <-rdone })

	stateDir, err := os.MkdirTemp("", "ol")
	if err != nil {
		t.Fatal(err)
	}
	hs.stateDir = stateDir
	hs.certDir = t.TempDir()
	certs, err := certmanager.NewDir(hs.certDir)
	if err != nil {
		t.Fatal(err)
	}
	bridge := "ostt" + randHex(4)
	// A /24 of 172.31.100-249.0 that nothing on the machine uses.
	for attempt := 0; ; attempt++ {
		octet := 100 + int(randByte())%150
		subnet := netip.MustParsePrefix(fmt.Sprintf("172.31.%d.0/24", octet))
		if opts.mode == local.ModeHost {
			subnet = netip.MustParsePrefix(fmt.Sprintf("127.31.%d.0/24", octet))
		}
		hs.drv, err = local.New(context.Background(), local.Config{StateDir: stateDir, Mode: opts.mode,
			AgentBinary: bin, VIPSubnet: subnet, Bridge: bridge, ClientCAPEM: auth.CACertPEM(),
			// A /24 of 25600 choices: parallel harnesses (and other test
			// runs on the machine) rarely pick the same agent addresses.
			ManagementSubnet: netip.MustParsePrefix(fmt.Sprintf("127.%d.%d.0/24", 100+int(randByte())%100, randByte())),
			HeartbeatTargets: []string{recv.Addr().String()}, HeartbeatKey: hbKey, HeartbeatInterval: time.Second,
			StopTimeout: 10 * time.Second, Logger: logger(t)})
		if err == nil {
			break
		}
		if attempt > 5 || !strings.Contains(err.Error(), "overlaps") {
			os.RemoveAll(stateDir)
			t.Fatal(err)
		}
	}
	t.Cleanup(hs.destroy)

	if hs.agents, err = agentclient.New(agentclient.Config{ClientCertificate: auth.ClientCertificateFunc("ostia-controller", time.Hour),
		ServerCAs: auth.Pool(), Port: local.DefaultAgentPort, CallTimeout: 30 * time.Second, Logger: logger(t)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hs.agents.Close() })
	renderer, err := lbflows.NewTemplateRenderer(lbflows.RenderConfig{Keepalived: opts.keepalived,
		ForAmphora: func(a lbflows.Amp, s *templates.Settings, k *templates.KeepalivedSettings) {
			hs.drv.TemplateSettings(a.ComputeID, s, k)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if hs.flows, err = lbflows.New(lbflows.Config{Commands: hs.svc, Loader: hs.h, Compute: hs.drv, Network: hs.drv,
		Agent: hs.agents, Certificates: auth, CertManager: certs, Renderer: renderer, ImageTag: "amphora",
		BootPollInterval: 25 * time.Millisecond, BootTimeout: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	hs.runner, err = saga.NewRunner(saga.RunnerConfig{Store: hs.sagas, Flows: hs.flows.All(), WorkerID: "w1", Concurrency: 16,
		PollInterval: 20 * time.Millisecond, LeaseTTL: 10 * time.Second, CleanupInterval: 200 * time.Millisecond,
		MaxAttempts: 8, CompensationAttempts: 3, MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		CallTimeout: 30 * time.Second, Logger: logger(t), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.runner.Run(ctx) }()
	// Registered after destroy, so it runs first: no saga touches the
	// driver while it is being emptied.
	t.Cleanup(func() { cancel(); <-done })
	return hs
}

func randByte() byte {
	b := make([]byte, 1)
	_, _ = rand.Read(b)
	return b[0]
}

// destroy removes every amphora, veth, namespace and the bridge, and
// checks that nothing is left.
func (hs *harness) destroy() {
	t := hs.t
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	if err := hs.drv.Destroy(ctx); err != nil {
		t.Errorf("destroy local cloud: %v", err)
	}
	t.Logf("local cloud destroyed in %s", time.Since(start).Round(time.Millisecond))
	out, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "ostia-") {
			if _, err := os.Stat(filepath.Join(hs.stateDir, "a", strings.TrimPrefix(f[0], "ostia-"))); err == nil {
				t.Errorf("namespace %s left behind", f[0])
			}
		}
	}
	if left := processesUnder(hs.stateDir); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
	os.RemoveAll(hs.stateDir)
}

// processesUnder lists processes whose command line mentions dir.
func processesUnder(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == strconv.Itoa(os.Getpid()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), dir+"/") {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && strings.Contains(string(st), ") Z ") {
			continue
		}
		out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
	}
	return out
}

var md = events.Metadata{ProjectID: "proj-local", CorrelationID: "req-local", Actor: "user-1"}

// do sends a load-balancer command and starts the sagas it calls for.
func (hs *harness) do(lbID string, cmd lb.Command) {
	hs.t.Helper()
	_, envs, err := hs.svc.LoadBalancer(context.Background(), md, lbID, cmd)
	if err != nil {
		hs.t.Fatalf("%T: %v", cmd, err)
	}
	hs.trigger(envs)
}

func (hs *harness) trigger(envs []*eventsv1.Envelope) {
	hs.t.Helper()
	for _, env := range envs {
		p, err := hs.reg.Decode(env)
		if err != nil {
			hs.t.Fatal(err)
		}
		req, ok, err := hs.flows.StartFor(context.Background(), env, p)
		if err != nil {
			hs.t.Fatal(err)
		}
		if !ok {
			continue
		}
		if _, err := hs.sagas.Start(context.Background(), req); err != nil {
			hs.t.Fatal(err)
		}
	}
	hs.runner.Kick()
}

func (hs *harness) lbState(id string) *lb.State {
	hs.t.Helper()
	st := lb.New(id)
	if _, err := hs.h.Load(context.Background(), events.AggregateLoadBalancer, id, st); err != nil {
		hs.t.Fatal(err)
	}
	return st
}

func (hs *harness) amp(id string) *eventsv1.Amphora {
	hs.t.Helper()
	st := amphora.New(id)
	if _, err := hs.h.Load(context.Background(), events.AggregateAmphora, id, st); err != nil {
		hs.t.Fatal(err)
	}
	return st.Amphora()
}

// waitStatus waits until the load balancer's provisioning status is want
// (DELETED: gone), failing early on ERROR.
func (hs *harness) waitStatus(id, want string, timeout time.Duration) {
	hs.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := lb.StatusDeleted
		if l := hs.lbState(id).LoadBalancer(); l != nil {
			got = l.ProvisioningStatus
		}
		if got == want {
			return
		}
		if got == lb.StatusError && want != lb.StatusError {
			hs.t.Fatalf("load balancer %s went to ERROR (waiting for %s); sagas: %s", id, want, hs.sagaSummary(id))
		}
		if time.Now().After(deadline) {
			hs.t.Fatalf("load balancer %s is %s after %s, want %s; sagas: %s", id, got, timeout, want, hs.sagaSummary(id))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitSagas waits until every saga of a load balancer has ended,
// failing on a failed one.
func (hs *harness) waitSagas(lbID string, timeout time.Duration) {
	hs.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		list, err := hs.sagas.List(context.Background(), lbID)
		if err != nil {
			hs.t.Fatal(err)
		}
		running := 0
		for _, s := range list {
			switch s.Status {
			case saga.StatusCompleted:
			case saga.StatusFailed:
				hs.t.Fatalf("saga %s failed: %s", s.ID, hs.sagaSummary(lbID))
			default:
				running++
			}
		}
		if running == 0 {
			return
		}
		if time.Now().After(deadline) {
			hs.t.Fatalf("sagas still running after %s: %s", timeout, hs.sagaSummary(lbID))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (hs *harness) sagaSummary(lbID string) string {
	list, err := hs.sagas.List(context.Background(), lbID)
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, s := range list {
		parts = append(parts, fmt.Sprintf("%s=%s", s.ID, s.Status))
		envs, _ := hs.es.Load(context.Background(), events.AggregateSaga, s.ID, 0)
		for _, env := range envs {
			if p, err := hs.reg.Decode(env); err == nil && strings.Contains(env.Type, "failed") {
				parts = append(parts, fmt.Sprintf("  %s %v", env.Type, p))
			}
		}
	}
	return strings.Join(parts, "\n")
}

// member is a small HTTP server answering with its name; the X-Seen-From
// header tells which address the request came from (the amphora that
// proxied it).
type member struct {
	name string
	addr string
	port int32
}

func startMember(t testing.TB, host, name string) member {
	t.Helper()
	lis, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from, _, _ := net.SplitHostPort(r.RemoteAddr)
		w.Header().Set("X-Seen-From", from)
		_, _ = io.WriteString(w, name)
	})}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return member{name: name, addr: host, port: int32(lis.Addr().(*net.TCPAddr).Port)}
}

// client makes one new connection per request.
func client(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: (&net.Dialer{Timeout: timeout}).DialContext}}
}

type answer struct {
	body, from string
}

func get(c *http.Client, url string) (answer, error) {
	resp, err := c.Get(url)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return answer{}, fmt.Errorf("%s: status %d: %s", url, resp.StatusCode, b)
	}
	return answer{body: string(b), from: resp.Header.Get("X-Seen-From")}, nil
}

// waitAnswer polls url until check accepts an answer.
func waitAnswer(t testing.TB, url string, timeout time.Duration, check func(answer) bool) answer {
	t.Helper()
	c := client(time.Second)
	deadline := time.Now().Add(timeout)
	var last error
	for {
		a, err := get(c, url)
		if err == nil && check(a) {
			return a
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("unexpected answer %+v", a)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no expected answer within %s: %v", url, timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }
