// Package agent is the Ostia amphora agent: the daemon running on every
// amphora that receives haproxy and keepalived configurations from the
// controller, applies them safely and reports status and statistics. It
// implements the gRPC service ostia.agent.v1.AmphoraAgent, the counterpart
// of Octavia's amphora agent REST API 1.0.
//
// Layout under Config.BaseDir (Octavia's /var/lib/octavia):
//
//	<lb_id>/haproxy.cfg            configuration haproxy runs with
//	<lb_id>/haproxy.cfg.last-good  last configuration that ran successfully
//	<lb_id>/state.json             generations and md5 of the stored config
//	<lb_id>/<lb_id>.pid            haproxy master pid
//	<lb_id>/master.sock            haproxy master CLI
//	<lb_id>/servers-state          server state saved before reloads
//	<lb_id>.sock                   haproxy stats socket (from haproxy.cfg)
//	certs/<lb_id>/<name>.pem       uploaded TLS material
//	vrrp/octavia-keepalived.conf   keepalived VRRP configuration
//	vrrp/check_script.sh           VRRP check, runs vrrp/check_scripts/*
//
// haproxy runs in master-worker mode in the foreground (-W -db) as a direct
// child of the agent; reloads are hitless (SIGUSR2 to the master, which
// re-executes and hands the listening sockets to a new worker while old
// workers finish their connections).
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"google.golang.org/grpc"

	agentv1 "github.com/ostia/ostia/proto/ostia/agent/v1"
)

// Version is the agent version reported by GetInfo.
const Version = "0.1.0"

// APIVersion is the agent API version (Octavia's amphora API 1.0).
const APIVersion = "1.0"

// Config configures an Agent. Zero values take the documented defaults.
type Config struct {
	// BaseDir holds per-LB directories, certificates and the VRRP files
	// (required; Octavia: /var/lib/octavia).
	BaseDir string
	// CertDir holds uploaded TLS material (default <BaseDir>/certs).
	CertDir string
	// HAProxyBin and KeepalivedBin are the daemons (default "haproxy" and
	// "keepalived", looked up in PATH).
	HAProxyBin    string
	KeepalivedBin string
	// Runner runs validation commands and daemons (default ExecRunner in
	// NetNamespace).
	Runner Runner
	// Logger receives structured logs (default: discard).
	Logger *slog.Logger
	// NetNamespace is the amphora network namespace (Octavia:
	// amphora-haproxy). Empty runs everything in the agent's namespace.
	NetNamespace string
	// Plumber configures interfaces (default LinuxPlumber in NetNamespace).
	Plumber NetPlumber
	// AmphoraID is this amphora's id (reported by GetInfo; checked against
	// upload requests and used as haproxy's local peer name).
	AmphoraID string
	// ServerCertFile and ServerKeyFile are the agent's own TLS files, which
	// UpdateServerCertificate overwrites (they may be the same file).
	ServerCertFile string
	ServerKeyFile  string
	// VRRPCheckCommand is the program the VRRP check script runs with the
	// stats sockets of all running load balancers as arguments
	// (default: this executable with the argument "vrrp-check").
	VRRPCheckCommand []string
	// Hostname overrides os.Hostname.
	Hostname string
	// StartTimeout, ReloadTimeout and StopTimeout bound process
	// operations (10 s each by default).
	StartTimeout  time.Duration
	ReloadTimeout time.Duration
	StopTimeout   time.Duration
}

// Agent implements agentv1.AmphoraAgentServer.
type Agent struct {
	agentv1.UnimplementedAmphoraAgentServer

	cfg    Config
	log    *slog.Logger
	runner Runner
	plumb  NetPlumber

	mu     sync.Mutex
	lbs    map[string]*lbState
	closed bool

	vrrp keepalivedState

	versionsOnce sync.Once
	haproxyVer   string
	keepalivedV  string
}

// New validates the configuration and prepares the base directory.
func New(cfg Config) (*Agent, error) {
	if cfg.BaseDir == "" {
		return nil, errors.New("agent: BaseDir is required")
	}
	abs, err := filepath.Abs(cfg.BaseDir)
	if err != nil {
		return nil, fmt.Errorf("agent: base dir: %w", err)
	}
	cfg.BaseDir = abs
	if cfg.CertDir == "" {
		cfg.CertDir = filepath.Join(cfg.BaseDir, "certs")
	}
	if cfg.HAProxyBin == "" {
		cfg.HAProxyBin = "haproxy"
	}
	if cfg.KeepalivedBin == "" {
		cfg.KeepalivedBin = "keepalived"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Runner == nil {
		cfg.Runner = &ExecRunner{NetNamespace: cfg.NetNamespace}
	}
	if cfg.Plumber == nil {
		cfg.Plumber = &LinuxPlumber{Namespace: cfg.NetNamespace, StateFile: filepath.Join(cfg.BaseDir, "plugged_interfaces")}
	}
	if len(cfg.VRRPCheckCommand) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("agent: executable path: %w", err)
		}
		cfg.VRRPCheckCommand = []string{exe, "vrrp-check"}
	}
	for _, d := range []*time.Duration{&cfg.StartTimeout, &cfg.ReloadTimeout, &cfg.StopTimeout} {
		if *d <= 0 {
			*d = 10 * time.Second
		}
	}
	for _, dir := range []string{cfg.BaseDir, cfg.CertDir, filepath.Join(cfg.BaseDir, "vrrp", "check_scripts")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("agent: create %s: %w", dir, err)
		}
	}
	a := &Agent{
		cfg:    cfg,
		log:    cfg.Logger,
		runner: cfg.Runner,
		plumb:  cfg.Plumber,
		lbs:    map[string]*lbState{},
	}
	a.vrrp.dir = filepath.Join(cfg.BaseDir, "vrrp")
	a.vrrp.mu.init()
	return a, nil
}

// Register adds the AmphoraAgent service to a gRPC server.
func (a *Agent) Register(s grpc.ServiceRegistrar) {
	agentv1.RegisterAmphoraAgentServer(s, a)
}

// Close stops every haproxy and keepalived the agent started. The agent
// refuses further process operations afterwards.
func (a *Agent) Close(ctx context.Context) error {
	a.mu.Lock()
	a.closed = true
	lbs := make([]*lbState, 0, len(a.lbs))
	for _, lb := range a.lbs {
		lbs = append(lbs, lb)
	}
	a.mu.Unlock()
	var errs []error
	for _, lb := range lbs {
		lb.mu.Lock()
		if err := a.stopHAProxyLocked(ctx, lb); err != nil {
			errs = append(errs, err)
		}
		lb.mu.Unlock()
	}
	if err := a.stopKeepalived(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// UnaryLoggingInterceptor logs every RPC with its duration and status.
func UnaryLoggingInterceptor(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		attrs := []any{"method", info.FullMethod, "duration", time.Since(start)}
		if err != nil {
			logger.WarnContext(ctx, "rpc failed", append(attrs, "err", err)...)
		} else {
			logger.DebugContext(ctx, "rpc", attrs...)
		}
		return resp, err
	}
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// validID accepts ids that are safe as a single path component.
func validID(id string) bool {
	return idPattern.MatchString(id) && id != "." && id != ".."
}

var certNamePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,250}\.pem$`)

func validCertName(name string) bool {
	return certNamePattern.MatchString(name)
}

func (a *Agent) isClosed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed
}
