// Package agentclient is the controller side of the amphora agent channel.
// Client implements sagas/ports.Agent over the Ostia agent gRPC API
// (ostia.agent.v1.AmphoraAgent, see agent/ and cmd/ostia-agent) with mutual
// TLS: the controller presents a client certificate issued by Ostia's CA
// (internal/pki) and accepts an amphora only when its server certificate
// chains to the CA and names the amphora id (DNS SAN and CN, checked by
// pki.ClientTLSConfig). Authority implements ports.Certificates with the
// same CA.
//
// The sagas only see ports.Agent, which is protocol neutral. An Octavia
// amphora REST API 1.0 driver (HTTPS + JSON: PUT /1.0/plug/vip/{ip},
// PUT /1.0/loadbalancer/{amphora_id}/{lb_id}/haproxy,
// PUT /1.0/loadbalancer/{lb_id}/reload, PUT /1.0/vrrp/upload,
// PUT /1.0/vrrp/start; spec amphora-agent-api.md) can be added later as a
// second ports.Agent in its own package, for amphora images running
// Octavia's own agent. It would reuse Authority for the TLS material (the
// same client certificate and server CA, with the amphora id as the
// expected server name) and the error classification of classify
// (connection failures and 5xx transient, 4xx permanent, 404 retried while
// the amphora boots); the worker would choose between the two per
// amphora image.
package agentclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/ostia/ostia/internal/pki"
	agentv1 "github.com/ostia/ostia/proto/ostia/agent/v1"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// DefaultPort is the agent's port (Octavia's [haproxy_amphora] bind_port).
const DefaultPort = 9443

// Config configures a Client.
type Config struct {
	// ClientCertificate returns the controller's client certificate; it is
	// called for every TLS handshake, so a rotating source works
	// (Authority.ClientCertificateFunc, pki.KeyPairReloader). Required.
	ClientCertificate func(*tls.CertificateRequestInfo) (*tls.Certificate, error)
	// ServerCAs verify the amphora server certificates. Required.
	ServerCAs *x509.CertPool
	// Port is the agent port used by the default Address (DefaultPort).
	Port int
	// Address returns the host:port of an amphora's agent (default: the
	// management address and Port).
	Address func(ports.Amphora) (string, error)
	// CallTimeout bounds every call (default 60 s, Octavia's
	// rest_request_read_timeout); the caller's context may be shorter.
	CallTimeout time.Duration
	// ConnectTimeout bounds the connection set-up of a call (default 10 s,
	// rest_request_conn_timeout).
	ConnectTimeout time.Duration
	// MaxConns bounds the cached connections (default 256); the least
	// recently used one is closed beyond it.
	MaxConns int
	// Logger receives debug logs of ignored answers (default: discard).
	Logger *slog.Logger
}

// Validate reports every missing or invalid setting.
func (c Config) Validate() error {
	var errs []error
	if c.ClientCertificate == nil {
		errs = append(errs, errors.New("agentclient: ClientCertificate is required"))
	}
	if c.ServerCAs == nil {
		errs = append(errs, errors.New("agentclient: ServerCAs is required"))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("agentclient: Port %d is out of range", c.Port))
	}
	return errors.Join(errs...)
}

// Client implements ports.Agent. It keeps one gRPC connection per amphora
// and is safe for concurrent use.
type Client struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	conns  map[string]*conn // by amphora id
	closed bool
}

type conn struct {
	addr     string
	cc       *grpc.ClientConn
	client   agentv1.AmphoraAgentClient
	lastUsed time.Time
}

var _ ports.Agent = (*Client)(nil)

// New returns a Client.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 60 * time.Second
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 256
	}
	if cfg.Address == nil {
		port := strconv.Itoa(cfg.Port)
		cfg.Address = func(a ports.Amphora) (string, error) {
			if a.ManagementIP == "" {
				return "", fmt.Errorf("amphora %s has no management address", a.ID)
			}
			return net.JoinHostPort(a.ManagementIP, port), nil
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, log: log, conns: map[string]*conn{}}, nil
}

// Close closes every connection. Calls after Close fail.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for id, cn := range c.conns {
		if err := cn.cc.Close(); err != nil {
			errs = append(errs, err)
		}
		delete(c.conns, id)
	}
	return errors.Join(errs...)
}

// Forget closes the cached connection of an amphora (after its deletion).
func (c *Client) Forget(amphoraID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cn, ok := c.conns[amphoraID]; ok {
		_ = cn.cc.Close()
		delete(c.conns, amphoraID)
	}
}

// tlsConfig is the TLS configuration for one amphora: TLS 1.3, the client
// certificate, and the server certificate checked against the CA with the
// amphora id as name and CN.
func (c *Client) tlsConfig(amphoraID string) *tls.Config {
	cfg := pki.ClientTLSConfig(tls.Certificate{}, c.cfg.ServerCAs, amphoraID)
	cfg.Certificates = nil
	cfg.GetClientCertificate = c.cfg.ClientCertificate
	return cfg
}

// agent returns the client of an amphora's agent.
func (c *Client) agent(amp ports.Amphora) (agentv1.AmphoraAgentClient, error) {
	if amp.ID == "" {
		return nil, saga.Permanent(errors.New("agentclient: amphora id is empty"))
	}
	addr, err := c.cfg.Address(amp)
	if err != nil {
		return nil, saga.Permanent(fmt.Errorf("agentclient: %w", err))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, saga.Transient(errors.New("agentclient: client is closed"))
	}
	if cn, ok := c.conns[amp.ID]; ok {
		if cn.addr == addr {
			cn.lastUsed = time.Now()
			return cn.client, nil
		}
		_ = cn.cc.Close()
		delete(c.conns, amp.ID)
	}
	// Short reconnect backoff: an amphora that was not reachable a moment
	// ago (booting, restarting its agent) is retried by the saga within
	// seconds, not after gRPC's default of up to two minutes.
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(c.tlsConfig(amp.ID))),
		grpc.WithUserAgent("ostia-controller"),
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: c.cfg.ConnectTimeout,
			Backoff: backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second}}))
	if err != nil {
		return nil, saga.Permanent(fmt.Errorf("agentclient: connect amphora %s at %s: %w", amp.ID, addr, err))
	}
	if len(c.conns) >= c.cfg.MaxConns {
		c.evictLocked()
	}
	cn := &conn{addr: addr, cc: cc, client: agentv1.NewAmphoraAgentClient(cc), lastUsed: time.Now()}
	c.conns[amp.ID] = cn
	return cn.client, nil
}

func (c *Client) evictLocked() {
	var oldest string
	var at time.Time
	for id, cn := range c.conns {
		if oldest == "" || cn.lastUsed.Before(at) {
			oldest, at = id, cn.lastUsed
		}
	}
	if oldest != "" {
		_ = c.conns[oldest].cc.Close()
		delete(c.conns, oldest)
	}
}

// call runs one RPC with the client's timeouts and sorts its error.
func call[R any](ctx context.Context, c *Client, amp ports.Amphora, what string, rpc func(context.Context, agentv1.AmphoraAgentClient) (R, error)) (R, error) {
	var zero R
	cl, err := c.agent(amp)
	if err != nil {
		return zero, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	resp, err := rpc(ctx, cl)
	if err != nil {
		return zero, classify(fmt.Sprintf("agentclient: %s on amphora %s", what, amp.ID), err)
	}
	return resp, nil
}

// classify sorts an RPC error into the saga error kinds: what retrying can
// fix (the agent is unreachable or still booting, timeouts, internal
// trouble) is transient, what the agent refuses is permanent.
func classify(what string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return saga.Transient(fmt.Errorf("%s: %w", what, err))
	}
	wrapped := fmt.Errorf("%s: %s: %s", what, st.Code(), st.Message())
	switch st.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.PermissionDenied, codes.Unauthenticated,
		codes.Unimplemented, codes.OutOfRange, codes.AlreadyExists:
		return saga.Permanent(wrapped)
	case codes.NotFound:
		// Octavia retries 404s: a NIC that Nova attached may not be
		// visible inside the amphora yet.
		return saga.Transient(fmt.Errorf("%w: %w", wrapped, ports.ErrNotFound))
	default:
		return saga.Transient(wrapped)
	}
}

// PlugVIP implements ports.Agent. A VIP interface that is already plugged
// counts as done.
func (c *Client) PlugVIP(ctx context.Context, amp ports.Amphora, plug ports.VIPPlug) error {
	req := &agentv1.PlugVipRequest{VipAddress: plug.VIP, SubnetCidr: plug.SubnetCIDR, Gateway: plug.GatewayIP,
		MacAddress: plug.MAC, Mtu: int32(plug.MTU), VrrpIp: plug.VrrpIP, VipManagedByKeepalived: plug.ManagedByKeepalived}
	for _, ip := range plug.Additional {
		req.AdditionalVips = append(req.AdditionalVips, &agentv1.AdditionalVip{IpAddress: ip, SubnetCidr: plug.SubnetCIDR,
			Gateway: plug.GatewayIP})
	}
	resp, err := call(ctx, c, amp, "plug VIP", func(ctx context.Context, a agentv1.AmphoraAgentClient) (*agentv1.PlugVipResponse, error) {
		resp, err := a.PlugVip(ctx, req)
		if status.Code(err) == codes.AlreadyExists {
			c.log.DebugContext(ctx, "VIP already plugged", "amphora_id", amp.ID, "vip", plug.VIP)
			return &agentv1.PlugVipResponse{}, nil
		}
		return resp, err
	})
	if err != nil {
		return err
	}
	c.log.DebugContext(ctx, "VIP plugged", "amphora_id", amp.ID, "interface", resp.GetInterface())
	return nil
}

// UploadConfig implements ports.Agent: the agent validates the
// configuration with haproxy -c and stores it. A configuration older than
// the one the agent holds is ignored (a late upload), as the port promises.
func (c *Client) UploadConfig(ctx context.Context, amp ports.Amphora, lbID string, generation int64, config []byte) error {
	if generation <= 0 {
		return saga.Permanent(fmt.Errorf("agentclient: upload to amphora %s: generation %d must be positive", amp.ID, generation))
	}
	_, err := call(ctx, c, amp, "upload haproxy configuration", func(ctx context.Context, a agentv1.AmphoraAgentClient) (*agentv1.UploadHAProxyConfigResponse, error) {
		resp, err := a.UploadHAProxyConfig(ctx, &agentv1.UploadHAProxyConfigRequest{LoadbalancerId: lbID, AmphoraId: amp.ID,
			Config: string(config), Generation: uint64(generation)})
		if st, ok := status.FromError(err); ok && st.Code() == codes.FailedPrecondition && strings.Contains(st.Message(), "older than") {
			c.log.InfoContext(ctx, "agent holds a newer configuration; upload ignored", "amphora_id", amp.ID, "lb_id", lbID,
				"generation", generation, "details", st.Message())
			return &agentv1.UploadHAProxyConfigResponse{}, nil
		}
		return resp, err
	})
	return err
}

// ReloadListeners implements ports.Agent: a hitless haproxy reload with the
// stored configuration (or a start), rolled back by the agent on failure.
func (c *Client) ReloadListeners(ctx context.Context, amp ports.Amphora, lbID string) error {
	_, err := call(ctx, c, amp, "reload haproxy", func(ctx context.Context, a agentv1.AmphoraAgentClient) (*agentv1.ReloadHAProxyResponse, error) {
		return a.ReloadHAProxy(ctx, &agentv1.ReloadHAProxyRequest{LoadbalancerId: lbID})
	})
	return err
}

// UploadKeepalived implements ports.Agent. The agent validates the file
// with keepalived -t; it keeps no generation for VRRP, which is rendered
// from the amphorae only and so carries no stale load-balancer state.
func (c *Client) UploadKeepalived(ctx context.Context, amp ports.Amphora, _ int64, config []byte) error {
	_, err := call(ctx, c, amp, "upload keepalived configuration", func(ctx context.Context, a agentv1.AmphoraAgentClient) (*agentv1.UploadKeepalivedConfigResponse, error) {
		return a.UploadKeepalivedConfig(ctx, &agentv1.UploadKeepalivedConfigRequest{Config: string(config)})
	})
	return err
}

// StartKeepalived implements ports.Agent (a running keepalived reloads).
func (c *Client) StartKeepalived(ctx context.Context, amp ports.Amphora) error {
	_, err := call(ctx, c, amp, "start keepalived", func(ctx context.Context, a agentv1.AmphoraAgentClient) (*agentv1.KeepalivedActionResponse, error) {
		return a.KeepalivedAction(ctx, &agentv1.KeepalivedActionRequest{Action: agentv1.KeepalivedActionType_KEEPALIVED_ACTION_TYPE_START})
	})
	return err
}

// PlugNetwork implements ports.Agent: the agent finds the NIC by its MAC,
// moves it into the amphora namespace and gives it the port's addresses;
// a NIC plugged before is reconfigured in place.
func (c *Client) PlugNetwork(ctx context.Context, amp ports.Amphora, plug ports.NetworkPlug) error {
	req := &agentv1.PlugNetworkRequest{MacAddress: plug.MAC, Mtu: int32(plug.MTU)}
	for _, f := range plug.FixedIPs {
		req.FixedIps = append(req.FixedIps, &agentv1.FixedIp{IpAddress: f.IP, SubnetCidr: f.SubnetCIDR, Gateway: f.GatewayIP})
	}
	resp, err := call(ctx, c, amp, "plug network", func(ctx context.Context, a agentv1.AmphoraAgentClient) (*agentv1.PlugNetworkResponse, error) {
		return a.PlugNetwork(ctx, req)
	})
	if err != nil {
		return err
	}
	c.log.DebugContext(ctx, "member network plugged", "amphora_id", amp.ID, "mac", plug.MAC, "interface", resp.GetInterface(),
		"updated", resp.GetUpdated())
	return nil
}

// UpdateServerCertificate implements ports.Agent. The agent checks that the
// certificate names it and matches the key, stores both and serves them to
// new connections. Cached connections keep their session, so the client
// drops the amphora's connection: the next call shakes hands again and
// checks the new certificate.
func (c *Client) UpdateServerCertificate(ctx context.Context, amp ports.Amphora, pem []byte) error {
	resp, err := call(ctx, c, amp, "update server certificate", func(ctx context.Context, a agentv1.AmphoraAgentClient) (*agentv1.UpdateServerCertificateResponse, error) {
		return a.UpdateServerCertificate(ctx, &agentv1.UpdateServerCertificateRequest{Pem: pem})
	})
	if err != nil {
		return err
	}
	c.Forget(amp.ID)
	c.log.InfoContext(ctx, "amphora server certificate replaced", "amphora_id", amp.ID, "serial", resp.GetSerial(),
		"not_after", resp.GetNotAfter())
	return nil
}

// UploadCertificate implements ports.Agent: the agent stores the file
// under its certificate directory of the load balancer, mode 0600.
func (c *Client) UploadCertificate(ctx context.Context, amp ports.Amphora, lbID, filename string, pem []byte) error {
	resp, err := call(ctx, c, amp, "upload certificate "+filename, func(ctx context.Context, a agentv1.AmphoraAgentClient) (*agentv1.UploadCertificateResponse, error) {
		return a.UploadCertificate(ctx, &agentv1.UploadCertificateRequest{LoadbalancerId: lbID, Filename: filename, Pem: pem})
	})
	if err != nil {
		return err
	}
	c.log.DebugContext(ctx, "certificate uploaded", "amphora_id", amp.ID, "lb_id", lbID, "path", resp.GetPath(),
		"md5", resp.GetMd5())
	return nil
}

// Info returns the agent's GetInfo answer (versions and amphora id).
func (c *Client) Info(ctx context.Context, amp ports.Amphora) (*agentv1.GetInfoResponse, error) {
	return call(ctx, c, amp, "get info", func(ctx context.Context, a agentv1.AmphoraAgentClient) (*agentv1.GetInfoResponse, error) {
		return a.GetInfo(ctx, &agentv1.GetInfoRequest{})
	})
}

// Stats returns the haproxy statistics rows of a load balancer on an
// amphora.
func (c *Client) Stats(ctx context.Context, amp ports.Amphora, lbID string) ([]*agentv1.StatsRow, error) {
	resp, err := call(ctx, c, amp, "get stats", func(ctx context.Context, a agentv1.AmphoraAgentClient) (*agentv1.GetStatsResponse, error) {
		return a.GetStats(ctx, &agentv1.GetStatsRequest{LoadbalancerId: lbID})
	})
	if err != nil {
		return nil, err
	}
	return resp.GetRows(), nil
}
