// Package local is a cloud on one machine: it implements the compute and
// network ports of the sagas (sagas/ports.Compute and ports.Network) so a
// load balancer created through Ostia really serves traffic here.
//
// An amphora "server" is an ostia-agent process (cmd/ostia-agent) started
// by CreateServer, with its own directory under StateDir/a/<server id>
// (certificates from the config drive, the agent's base directory and log).
// The agent serves its gRPC API on a management address of its own,
// 127.x.y.z:AgentPort in ManagementSubnet, and runs the real haproxy and
// keepalived processes. Two modes exist:
//
//   - netns (default when running as root): every amphora gets a network
//     namespace "ostia-<server id>" where haproxy and keepalived run. A port
//     is an address of VIPSubnet; plugging it into a server creates a veth
//     pair whose host end joins the bridge (Bridge, holding the subnet's
//     first address, the gateway) and whose other end, carrying the port's
//     MAC, the agent moves into the namespace as eth1 (as Nova attaching a
//     NIC and Octavia's agent moving it into amphora-haproxy). VIPs are
//     reachable from the host through the bridge; members on the host are
//     reachable from the amphorae at HostAddress (the gateway).
//     ACTIVE_STANDBY works: keepalived moves the VIP between namespaces
//     with unicast VRRP over the bridge.
//   - host (without root): everything runs in the host namespace. Ports
//     are loopback addresses (VIPSubnet defaults to 127.31.0.0/24) and
//     plugging changes nothing on the host (the agent runs with
//     -plumbing none). Limits: listener ports must be ≥ 1024 (haproxy cannot
//     bind lower ones), haproxy runs as the invoking user, and
//     ACTIVE_STANDBY does not work (keepalived needs root and both
//     amphorae would bind the same VIP).
//
// State (servers, ports, groups, security groups) is persisted in
// StateDir/state.json under a file lock, so a restarted worker finds what
// it made and find-by-name/tag calls stay idempotent. Security groups are
// recorded but not enforced. DeleteServer stops the agent (which stops its
// haproxy and keepalived), kills whatever process still runs from the
// amphora's directory, removes its veths and namespace and its directory:
// nothing is left behind. Amphorae are not stopped when the driver is
// closed; like virtual machines they outlive a worker restart (Destroy
// removes everything, for tests).
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/templates"
)

// Mode selects how amphorae are isolated.
type Mode string

// Modes.
const (
	// ModeAuto is ModeNetns when running as root, else ModeHost.
	ModeAuto  Mode = "auto"
	ModeNetns Mode = "netns"
	ModeHost  Mode = "host"
)

// Defaults.
const (
	DefaultBridge           = "ostia0"
	DefaultAgentPort        = 9443
	DefaultNetnsVIPSubnet   = "172.31.0.0/24"
	DefaultHostVIPSubnet    = "127.31.0.0/24"
	DefaultManagementSubnet = "127.42.0.0/16"
	// NetworkID and SubnetID are reported for ports created without them.
	NetworkID = "local"
	SubnetID  = "local-subnet"
)

// maxStateDirLen keeps the unix socket paths under the amphora
// directories (<state>/a/<8 hex server id>/<lb id>/master.sock, 60 bytes
// after the state directory) within haproxy's limit of 97 bytes.
const maxStateDirLen = 37

// Config configures a Driver.
type Config struct {
	// StateDir holds state.json and the amphora directories (required;
	// at most 37 bytes as an absolute path, because haproxy's unix
	// sockets live below it).
	StateDir string
	// Mode is ModeAuto (default), ModeNetns or ModeHost.
	Mode Mode
	// AgentBinary is the ostia-agent executable (default: ostia-agent next
	// to the running executable, else on PATH).
	AgentBinary string
	// HAProxyBinary and KeepalivedBinary default to the binaries on PATH
	// (or in /usr/sbin).
	HAProxyBinary    string
	KeepalivedBinary string
	// VIPSubnet is the range ports are allocated from (default
	// 172.31.0.0/24 in netns mode, 127.31.0.0/24 in host mode). In netns
	// mode its first address is the bridge's (the gateway).
	VIPSubnet netip.Prefix
	// Bridge is the host bridge of netns mode (default ostia0, at most 15
	// characters).
	Bridge string
	// ManagementSubnet is the loopback range agents listen in (default
	// 127.42.0.0/16).
	ManagementSubnet netip.Prefix
	// AgentPort is the agents' port (default 9443).
	AgentPort int
	// ClientCAPEM is the CA the agents trust for the controller's client
	// certificate (their client_ca.pem). Required.
	ClientCAPEM []byte
	// HeartbeatTargets are the health managers' UDP addresses the agents
	// send heartbeats to, with HeartbeatKey; none: no heartbeats.
	HeartbeatTargets  []string
	HeartbeatKey      string
	HeartbeatInterval time.Duration
	// StopTimeout bounds the graceful stop of an agent in DeleteServer
	// (default 15 s), after which its processes are killed.
	StopTimeout time.Duration
	// Fault, when set, is called first by every operation with its name
	// (the port method name); an error it returns fails the call before
	// it does anything. For failure-injection tests.
	Fault func(ctx context.Context, op string) error
	// Logger receives the driver's logs (default: discard).
	Logger *slog.Logger
}

// Driver is the local cloud. It is safe for concurrent use, also by
// several processes sharing one StateDir.
type Driver struct {
	cfg      Config
	log      *slog.Logger
	mode     Mode
	gateway  netip.Addr // netns mode: the bridge address
	userName string     // host mode without root: haproxy's user
	// connLimit is the maxconn of listeners without a connection limit
	// (0: Octavia's default), see connectionLimit.
	connLimit int64

	mu sync.Mutex // serialises state changes within the process
}

var (
	_ ports.Compute = (*Driver)(nil)
	_ ports.Network = (*Driver)(nil)
)

// New checks the configuration, prepares StateDir and, in netns mode, the
// bridge. It does not touch existing amphorae.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("local: StateDir is required")
	}
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("local: state dir: %w", err)
	}
	if len(abs) > maxStateDirLen {
		return nil, fmt.Errorf("local: state dir %s is longer than %d bytes (haproxy's unix sockets live below it)", abs, maxStateDirLen)
	}
	cfg.StateDir = abs
	if len(cfg.ClientCAPEM) == 0 {
		return nil, errors.New("local: ClientCAPEM is required")
	}
	d := &Driver{cfg: cfg, log: cfg.Logger}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("driver", "local")
	switch cfg.Mode {
	case "", ModeAuto:
		d.mode = ModeHost
		if os.Geteuid() == 0 {
			d.mode = ModeNetns
		}
	case ModeNetns:
		if os.Geteuid() != 0 {
			return nil, errors.New("local: netns mode needs root")
		}
		d.mode = ModeNetns
	case ModeHost:
		d.mode = ModeHost
	default:
		return nil, fmt.Errorf("local: unknown mode %q (auto, netns or host)", cfg.Mode)
	}
	if !d.cfg.VIPSubnet.IsValid() {
		def := DefaultNetnsVIPSubnet
		if d.mode == ModeHost {
			def = DefaultHostVIPSubnet
		}
		d.cfg.VIPSubnet = netip.MustParsePrefix(def)
	}
	d.cfg.VIPSubnet = d.cfg.VIPSubnet.Masked()
	if !d.cfg.VIPSubnet.Addr().Is4() || d.cfg.VIPSubnet.Bits() > 29 {
		return nil, fmt.Errorf("local: VIP subnet %s must be IPv4 with at least 8 addresses", d.cfg.VIPSubnet)
	}
	if d.mode == ModeHost && !d.cfg.VIPSubnet.Addr().IsLoopback() {
		return nil, fmt.Errorf("local: host mode needs a loopback VIP subnet (such as %s), got %s", DefaultHostVIPSubnet, d.cfg.VIPSubnet)
	}
	if !d.cfg.ManagementSubnet.IsValid() {
		d.cfg.ManagementSubnet = netip.MustParsePrefix(DefaultManagementSubnet)
	}
	d.cfg.ManagementSubnet = d.cfg.ManagementSubnet.Masked()
	if !d.cfg.ManagementSubnet.Addr().Is4() || !d.cfg.ManagementSubnet.Addr().IsLoopback() {
		return nil, fmt.Errorf("local: management subnet %s must be an IPv4 loopback range", d.cfg.ManagementSubnet)
	}
	if d.cfg.ManagementSubnet.Overlaps(d.cfg.VIPSubnet) {
		return nil, fmt.Errorf("local: management subnet %s overlaps the VIP subnet %s", d.cfg.ManagementSubnet, d.cfg.VIPSubnet)
	}
	if d.cfg.Bridge == "" {
		d.cfg.Bridge = DefaultBridge
	}
	if len(d.cfg.Bridge) > 15 {
		return nil, fmt.Errorf("local: bridge name %q is longer than 15 characters", d.cfg.Bridge)
	}
	if d.cfg.AgentPort == 0 {
		d.cfg.AgentPort = DefaultAgentPort
	}
	if d.cfg.StopTimeout <= 0 {
		d.cfg.StopTimeout = 15 * time.Second
	}
	if len(d.cfg.HeartbeatTargets) > 0 && d.cfg.HeartbeatKey == "" {
		return nil, errors.New("local: HeartbeatKey is required with HeartbeatTargets")
	}
	if d.cfg.AgentBinary, err = findAgent(d.cfg.AgentBinary); err != nil {
		return nil, err
	}
	d.cfg.HAProxyBinary = findDaemon(d.cfg.HAProxyBinary, "haproxy")
	d.cfg.KeepalivedBinary = findDaemon(d.cfg.KeepalivedBinary, "keepalived")
	if d.mode == ModeHost && os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("local: current user: %w", err)
		}
		d.userName = u.Username
	}
	d.connLimit = connectionLimit()
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, "a"), 0o755); err != nil {
		return nil, fmt.Errorf("local: create state dir: %w", err)
	}
	if d.mode == ModeNetns {
		d.gateway = d.cfg.VIPSubnet.Addr().Next()
		if err := d.ensureBridge(ctx); err != nil {
			return nil, err
		}
	}
	if err := d.sweep(ctx); err != nil {
		return nil, err
	}
	d.log.Info("local cloud ready", "mode", d.mode, "state_dir", cfg.StateDir, "vip_subnet", d.cfg.VIPSubnet.String(),
		"bridge", d.bridgeName(), "agent", d.cfg.AgentBinary)
	return d, nil
}

// findAgent resolves the ostia-agent executable.
func findAgent(configured string) (string, error) {
	if configured != "" {
		p, err := exec.LookPath(configured)
		if err != nil {
			return "", fmt.Errorf("local: agent binary %s: %w", configured, err)
		}
		return filepath.Abs(p)
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "ostia-agent")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath("ostia-agent"); err == nil {
		return filepath.Abs(p)
	}
	return "", errors.New("local: the ostia-agent binary was not found next to this executable or on PATH " +
		"(build it with `go build -o bin/ostia-agent ./cmd/ostia-agent` or set [local] agent_binary)")
}

// findDaemon resolves haproxy or keepalived (Debian puts keepalived in
// /usr/sbin, which is not on every user's PATH).
func findDaemon(configured, name string) string {
	if configured != "" {
		return configured
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil && !st.IsDir() {
			return filepath.Join(dir, name)
		}
	}
	return name
}

// Mode is the mode the driver runs in.
func (d *Driver) Mode() Mode { return d.mode }

// VIPSubnet is the range ports are allocated from.
func (d *Driver) VIPSubnet() netip.Prefix { return d.cfg.VIPSubnet }

// HostAddress is the address of this machine as the amphorae see it: the
// bridge address in netns mode, 127.0.0.1 in host mode. Members served by
// the host listen there.
func (d *Driver) HostAddress() string {
	if d.mode == ModeNetns {
		return d.gateway.String()
	}
	return "127.0.0.1"
}

func (d *Driver) bridgeName() string {
	if d.mode == ModeNetns {
		return d.cfg.Bridge
	}
	return ""
}

// ServerDir is the directory of an amphora server: the agent's base
// directory (its haproxy and keepalived files, sockets and log).
func (d *Driver) ServerDir(serverID string) string {
	return filepath.Join(d.cfg.StateDir, "a", serverID)
}

// TemplateSettings adapts the haproxy and keepalived template settings to
// one amphora server: its own base directory (sockets, state files, VRRP
// check script), a log target that exists everywhere, and in host mode
// without root the invoking user instead of nobody.
func (d *Driver) TemplateSettings(serverID string, s *templates.Settings, k *templates.KeepalivedSettings) {
	dir := d.ServerDir(serverID)
	s.BasePath, s.CertDir = dir, filepath.Join(dir, "certs")
	s.StatsSocketPath, s.ServerStateFile, s.PingScriptPath, s.UDPCheckScriptPath = "", "", "", ""
	if s.LogSocket == "" {
		// Nothing listens there; haproxy drops its logs without complaint
		// (there is no rsyslog socket as on an amphora image).
		s.LogSocket = "127.0.0.1:514"
	}
	if d.userName != "" {
		s.User, s.Group = d.userName, ""
	}
	if d.connLimit > 0 && (s.DefaultConnectionLimit <= 0 || s.DefaultConnectionLimit > d.connLimit) {
		s.DefaultConnectionLimit = d.connLimit
	}
	if d.connLimit > 0 {
		// A load balancer without listeners yet gets the global cap as its
		// maxconn; keep it within the open-files limit too.
		s.MaxGlobalConnections = 4 * d.connLimit
	}
	if d.mode == ModeNetns {
		s.NetNamespace = netnsName(serverID)
	}
	k.BasePath, k.CheckScriptPath = dir, ""
	if k.Interface == "" {
		k.Interface = "eth1"
	}
}

func (d *Driver) fault(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local %s: %w", op, err)
	}
	if d.cfg.Fault == nil {
		return nil
	}
	if err := d.cfg.Fault(ctx, op); err != nil {
		return fmt.Errorf("local %s (injected): %w", op, err)
	}
	return nil
}

// Close releases nothing but is there for symmetry: amphorae keep running
// (see Destroy).
func (d *Driver) Close() error { return nil }

// Destroy deletes every server, port, group and security group of the
// driver and, in netns mode, the bridge. Tests use it to leave nothing
// behind.
func (d *Driver) Destroy(ctx context.Context) error {
	var servers, portIDs []string
	if err := d.view(ctx, "Destroy", func(st *state) error {
		for id := range st.Servers {
			servers = append(servers, id)
		}
		for id := range st.Ports {
			portIDs = append(portIDs, id)
		}
		return nil
	}); err != nil {
		return err
	}
	var errs []error
	for _, id := range servers {
		if err := d.DeleteServer(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	for _, id := range portIDs {
		if err := d.DeletePort(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := d.update(ctx, "Destroy", func(st *state) error {
		clear(st.Groups)
		clear(st.SGs)
		return nil
	}); err != nil {
		errs = append(errs, err)
	}
	if d.mode == ModeNetns {
		if err := d.deleteLink(ctx, d.cfg.Bridge); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// connectionLimit is the connection limit of listeners without one that
// fits the machine's open-files limit, which amphorae inherit: haproxy
// needs about 2.5 descriptors per connection (both sides plus splice
// pipes) and refuses to start when the hard limit is too low for its
// global maxconn, the sum over the listeners. Octavia's default of 50000
// per listener needs more than the 20000 some containers allow; the limit
// leaves room for four unlimited listeners. 0 means the default fits.
func connectionLimit() int64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max == ^uint64(0) {
		return 0
	}
	const octaviaDefault, listeners, reserve = 50000, 4, 1024
	if lim.Max <= reserve {
		return 1
	}
	per := int64(lim.Max-reserve) * 2 / 5 / listeners
	if per >= octaviaDefault {
		return 0
	}
	return max(per, 1)
}

func netnsName(serverID string) string { return "ostia-" + serverID }

func trimOutput(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}
