package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ostia/ostia/internal/pki"
	agentv1 "github.com/ostia/ostia/proto/ostia/agent/v1"
)

// Error classes mapped to gRPC codes by toStatus.
var (
	errInvalid  = errors.New("invalid argument")
	errStale    = errors.New("stale generation")
	errNoConfig = errors.New("not configured")
	errNotFound = errors.New("not found")
	errExists   = errors.New("already exists")
)

func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, errInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, errStale), errors.Is(err, errNoConfig):
		code = codes.FailedPrecondition
	case errors.Is(err, errNotFound):
		code = codes.NotFound
	case errors.Is(err, errExists):
		code = codes.AlreadyExists
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Error(code, err.Error())
}

func stateProto(s haproxyState) *agentv1.HAProxyState {
	return &agentv1.HAProxyState{
		Running:           s.Running,
		Pid:               int32(s.Pid),
		RunningGeneration: s.RunningGen,
		StoredGeneration:  s.StoredGen,
		Details:           s.Details,
	}
}

// GetInfo implements agentv1.AmphoraAgentServer.
func (a *Agent) GetInfo(ctx context.Context, _ *agentv1.GetInfoRequest) (*agentv1.GetInfoResponse, error) {
	hv, kv := a.versions(ctx)
	return &agentv1.GetInfoResponse{
		ApiVersion:        APIVersion,
		AgentVersion:      Version,
		Hostname:          a.hostname(),
		HaproxyVersion:    hv,
		KeepalivedVersion: kv,
		AmphoraId:         a.cfg.AmphoraID,
	}, nil
}

// GetDetails implements agentv1.AmphoraAgentServer.
func (a *Agent) GetDetails(ctx context.Context, _ *agentv1.GetDetailsRequest) (*agentv1.GetDetailsResponse, error) {
	hv, kv := a.versions(ctx)
	resp := &agentv1.GetDetailsResponse{
		Hostname:          a.hostname(),
		ApiVersion:        APIVersion,
		HaproxyVersion:    hv,
		KeepalivedVersion: kv,
		CpuCount:          int32(runtime.NumCPU()),
		Load:              readLoadAvg(),
		Memory:            readMemInfo(),
		Disk:              diskUsage(a.cfg.BaseDir),
		KeepalivedRunning: a.keepalivedRunning(),
	}
	ifaces, err := a.plumb.Interfaces(ctx)
	if err != nil {
		a.log.WarnContext(ctx, "cannot list interfaces", "err", err)
	}
	for _, i := range ifaces {
		resp.Interfaces = append(resp.Interfaces, &agentv1.InterfaceDetails{
			Name: i.Name, MacAddress: i.MAC, Mtu: int32(i.MTU), Addresses: i.Addresses,
			RxBytes: i.RxBytes, TxBytes: i.TxBytes, Up: i.Up,
		})
	}
	statuses, err := a.listenerStatuses(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	running := map[string]bool{}
	for _, s := range statuses {
		if s.Status == "ACTIVE" {
			resp.Listeners = append(resp.Listeners, s.ListenerId)
			running[s.LoadbalancerId] = true
		}
	}
	resp.HaproxyCount = int32(len(running))
	if resp.Loadbalancers, err = a.listLBIDs(); err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

func parseMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	if err != nil {
		return nil, fmt.Errorf("%w: mac_address %q: %v", errInvalid, s, err)
	}
	return mac, nil
}

func parseAddr(field, s string, required bool) (netip.Addr, error) {
	if s == "" && !required {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: %s %q: %v", errInvalid, field, s, err)
	}
	return a.Unmap(), nil
}

func parsePrefix(field, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%w: %s %q: %v", errInvalid, field, s, err)
	}
	return p, nil
}

func parseRoutes(rs []*agentv1.HostRoute) ([]Route, error) {
	out := make([]Route, 0, len(rs))
	for _, r := range rs {
		d, err := parsePrefix("host_routes.destination", r.GetDestination())
		if err != nil {
			return nil, err
		}
		n, err := parseAddr("host_routes.nexthop", r.GetNexthop(), true)
		if err != nil {
			return nil, err
		}
		out = append(out, Route{Destination: d, Nexthop: n})
	}
	return out, nil
}

func checkMTU(mtu int32) error {
	if mtu != 0 && (mtu < 68 || mtu > 65535) {
		return fmt.Errorf("%w: mtu %d out of range", errInvalid, mtu)
	}
	return nil
}

func parseVIP(addr, cidr, gw string, routes []*agentv1.HostRoute) (VIP, error) {
	var v VIP
	var err error
	if v.Address, err = parseAddr("vip address", addr, true); err != nil {
		return v, err
	}
	if v.Subnet, err = parsePrefix("subnet_cidr", cidr); err != nil {
		return v, err
	}
	if !v.Subnet.Contains(v.Address) {
		return v, fmt.Errorf("%w: %s is not in subnet %s", errInvalid, v.Address, v.Subnet)
	}
	if v.Gateway, err = parseAddr("gateway", gw, false); err != nil {
		return v, err
	}
	v.HostRoutes, err = parseRoutes(routes)
	return v, err
}

func parseVIPPlug(r *agentv1.PlugVipRequest) (VIPPlug, error) {
	var p VIPPlug
	var err error
	if p.MAC, err = parseMAC(r.GetMacAddress()); err != nil {
		return p, err
	}
	if err := checkMTU(r.GetMtu()); err != nil {
		return p, err
	}
	p.MTU = int(r.GetMtu())
	if p.Primary, err = parseVIP(r.GetVipAddress(), r.GetSubnetCidr(), r.GetGateway(), r.GetHostRoutes()); err != nil {
		return p, err
	}
	if p.VRRPIP, err = parseAddr("vrrp_ip", r.GetVrrpIp(), false); err != nil {
		return p, err
	}
	for _, av := range r.GetAdditionalVips() {
		v, err := parseVIP(av.GetIpAddress(), av.GetSubnetCidr(), av.GetGateway(), av.GetHostRoutes())
		if err != nil {
			return p, err
		}
		p.Additional = append(p.Additional, v)
	}
	p.ManagedByKeepalived = r.GetVipManagedByKeepalived()
	p.SRIOV = r.GetIsSriov()
	return p, nil
}

// PlugVip implements agentv1.AmphoraAgentServer.
func (a *Agent) PlugVip(ctx context.Context, req *agentv1.PlugVipRequest) (*agentv1.PlugVipResponse, error) {
	p, err := parseVIPPlug(req)
	if err != nil {
		return nil, toStatus(err)
	}
	ifname, err := a.plumb.PlugVIP(ctx, p)
	if err != nil {
		return nil, toStatus(fmt.Errorf("plug vip %s: %w", p.Primary.Address, err))
	}
	vips := []string{p.Primary.Address.String()}
	for _, v := range p.Additional {
		vips = append(vips, v.Address.String())
	}
	a.log.InfoContext(ctx, "plugged VIP", "interface", ifname, "vips", vips, "mac", p.MAC.String())
	return &agentv1.PlugVipResponse{
		Interface: ifname,
		Details:   fmt.Sprintf("VIPs plugged on interface %s: %s", ifname, strings.Join(vips, " ")),
	}, nil
}

// PlugNetwork implements agentv1.AmphoraAgentServer.
func (a *Agent) PlugNetwork(ctx context.Context, req *agentv1.PlugNetworkRequest) (*agentv1.PlugNetworkResponse, error) {
	var n NetworkPlug
	var err error
	if n.MAC, err = parseMAC(req.GetMacAddress()); err != nil {
		return nil, toStatus(err)
	}
	if err := checkMTU(req.GetMtu()); err != nil {
		return nil, toStatus(err)
	}
	n.MTU, n.SRIOV = int(req.GetMtu()), req.GetIsSriov()
	for _, f := range req.GetFixedIps() {
		v, err := parseVIP(f.GetIpAddress(), f.GetSubnetCidr(), f.GetGateway(), f.GetHostRoutes())
		if err != nil {
			return nil, toStatus(err)
		}
		n.FixedIPs = append(n.FixedIPs, FixedIP(v))
	}
	if req.GetVipNetInfo() != nil {
		vi := req.GetVipNetInfo()
		if vi.GetMacAddress() == "" {
			vi.MacAddress = req.GetMacAddress()
		}
		vp, err := parseVIPPlug(vi)
		if err != nil {
			return nil, toStatus(err)
		}
		n.VIP = &vp
	}
	ifname, updated, err := a.plumb.PlugNetwork(ctx, n)
	if err != nil {
		return nil, toStatus(fmt.Errorf("plug network %s: %w", n.MAC, err))
	}
	details := "Plugged on interface " + ifname
	if updated {
		details = "Updated existing interface " + ifname
	}
	a.log.InfoContext(ctx, "plugged network", "interface", ifname, "updated", updated, "mac", n.MAC.String())
	return &agentv1.PlugNetworkResponse{Interface: ifname, Updated: updated, Details: details}, nil
}

// GetInterface implements agentv1.AmphoraAgentServer.
func (a *Agent) GetInterface(ctx context.Context, req *agentv1.GetInterfaceRequest) (*agentv1.GetInterfaceResponse, error) {
	ip, err := parseAddr("ip_address", req.GetIpAddress(), true)
	if err != nil {
		return nil, toStatus(err)
	}
	name, err := a.plumb.InterfaceForIP(ctx, ip)
	if err != nil {
		return nil, toStatus(err)
	}
	return &agentv1.GetInterfaceResponse{Interface: name}, nil
}

// UploadHAProxyConfig implements agentv1.AmphoraAgentServer.
func (a *Agent) UploadHAProxyConfig(ctx context.Context, req *agentv1.UploadHAProxyConfigRequest) (*agentv1.UploadHAProxyConfigResponse, error) {
	if req.GetAmphoraId() != "" && !validID(req.GetAmphoraId()) {
		return nil, status.Errorf(codes.InvalidArgument, "invalid amphora id %q", req.GetAmphoraId())
	}
	lb, err := a.lockLB(ctx, req.GetLoadbalancerId())
	if err != nil {
		return nil, toStatus(err)
	}
	defer lb.mu.Unlock()
	sum, out, err := a.uploadHAProxy(ctx, lb, req.GetAmphoraId(), req.GetConfig(), req.GetGeneration())
	if err != nil {
		return nil, toStatus(fmt.Errorf("load balancer %s: %w", lb.id, err))
	}
	resp := &agentv1.UploadHAProxyConfigResponse{Md5: sum, Generation: req.GetGeneration(), ValidationOutput: out}
	if req.GetApply() {
		details, err := a.reloadHAProxyLocked(ctx, lb)
		if err != nil {
			return nil, toStatus(fmt.Errorf("load balancer %s: %w", lb.id, err))
		}
		resp.State = stateProto(lb.state(details))
	}
	return resp, nil
}

// ValidateHAProxyConfig implements agentv1.AmphoraAgentServer.
func (a *Agent) ValidateHAProxyConfig(ctx context.Context, req *agentv1.ValidateHAProxyConfigRequest) (*agentv1.ValidateHAProxyConfigResponse, error) {
	if req.GetLoadbalancerId() != "" && !validID(req.GetLoadbalancerId()) {
		return nil, status.Errorf(codes.InvalidArgument, "invalid load balancer id %q", req.GetLoadbalancerId())
	}
	dir := filepath.Join(a.cfg.BaseDir, "tmp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, toStatus(fmt.Errorf("create %s: %w", dir, err))
	}
	f, err := os.CreateTemp(dir, "validate-*.cfg")
	if err != nil {
		return nil, toStatus(fmt.Errorf("temp config: %w", err))
	}
	defer os.Remove(f.Name())
	_, werr := f.WriteString(req.GetConfig())
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, toStatus(fmt.Errorf("write temp config: %w", werr))
	}
	out, err := a.validateHAProxy(ctx, f.Name(), a.cfg.AmphoraID)
	if errors.Is(err, errInvalid) {
		return &agentv1.ValidateHAProxyConfigResponse{Valid: false, Output: out}, nil
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &agentv1.ValidateHAProxyConfigResponse{Valid: true, Output: out}, nil
}

func (a *Agent) withLB(ctx context.Context, id string, op func(*lbState) (string, error)) (*agentv1.HAProxyState, error) {
	lb, err := a.lockLB(ctx, id)
	if err != nil {
		return nil, toStatus(err)
	}
	defer lb.mu.Unlock()
	details, err := op(lb)
	if err != nil {
		return nil, toStatus(fmt.Errorf("load balancer %s: %w", id, err))
	}
	return stateProto(lb.state(details)), nil
}

// ReloadHAProxy implements agentv1.AmphoraAgentServer.
func (a *Agent) ReloadHAProxy(ctx context.Context, req *agentv1.ReloadHAProxyRequest) (*agentv1.ReloadHAProxyResponse, error) {
	st, err := a.withLB(ctx, req.GetLoadbalancerId(), func(lb *lbState) (string, error) {
		return a.reloadHAProxyLocked(ctx, lb)
	})
	if err != nil {
		return nil, err
	}
	return &agentv1.ReloadHAProxyResponse{State: st}, nil
}

// StartHAProxy implements agentv1.AmphoraAgentServer.
func (a *Agent) StartHAProxy(ctx context.Context, req *agentv1.StartHAProxyRequest) (*agentv1.StartHAProxyResponse, error) {
	st, err := a.withLB(ctx, req.GetLoadbalancerId(), func(lb *lbState) (string, error) {
		return a.startHAProxyLocked(ctx, lb)
	})
	if err != nil {
		return nil, err
	}
	return &agentv1.StartHAProxyResponse{State: st}, nil
}

// StopHAProxy implements agentv1.AmphoraAgentServer.
func (a *Agent) StopHAProxy(ctx context.Context, req *agentv1.StopHAProxyRequest) (*agentv1.StopHAProxyResponse, error) {
	st, err := a.withLB(ctx, req.GetLoadbalancerId(), func(lb *lbState) (string, error) {
		if err := a.stopHAProxyLocked(ctx, lb); err != nil {
			return "", err
		}
		return "haproxy stopped", nil
	})
	if err != nil {
		return nil, err
	}
	return &agentv1.StopHAProxyResponse{State: st}, nil
}

// DeleteLoadBalancer implements agentv1.AmphoraAgentServer.
func (a *Agent) DeleteLoadBalancer(ctx context.Context, req *agentv1.DeleteLoadBalancerRequest) (*agentv1.DeleteLoadBalancerResponse, error) {
	_, err := a.withLB(ctx, req.GetLoadbalancerId(), func(lb *lbState) (string, error) {
		return "deleted", a.deleteLBLocked(ctx, lb)
	})
	if err != nil {
		return nil, err
	}
	return &agentv1.DeleteLoadBalancerResponse{}, nil
}

func (a *Agent) certPath(lbID, name string) (string, error) {
	if !validID(lbID) {
		return "", fmt.Errorf("%w: invalid load balancer id %q", errInvalid, lbID)
	}
	if !validCertName(name) {
		return "", fmt.Errorf("%w: invalid certificate file name %q", errInvalid, name)
	}
	return filepath.Join(a.cfg.CertDir, lbID, name), nil
}

// UploadCertificate implements agentv1.AmphoraAgentServer.
func (a *Agent) UploadCertificate(ctx context.Context, req *agentv1.UploadCertificateRequest) (*agentv1.UploadCertificateResponse, error) {
	path, err := a.certPath(req.GetLoadbalancerId(), req.GetFilename())
	if err != nil {
		return nil, toStatus(err)
	}
	if len(req.GetPem()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "empty pem")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, toStatus(fmt.Errorf("create cert dir: %w", err))
	}
	if err := pki.WriteFileAtomic(path, req.GetPem(), 0o600); err != nil {
		return nil, toStatus(err)
	}
	a.log.InfoContext(ctx, "stored certificate", "lb", req.GetLoadbalancerId(), "file", req.GetFilename())
	return &agentv1.UploadCertificateResponse{Md5: md5Hex(req.GetPem()), Path: path}, nil
}

// DeleteCertificate implements agentv1.AmphoraAgentServer.
func (a *Agent) DeleteCertificate(ctx context.Context, req *agentv1.DeleteCertificateRequest) (*agentv1.DeleteCertificateResponse, error) {
	path, err := a.certPath(req.GetLoadbalancerId(), req.GetFilename())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, toStatus(fmt.Errorf("delete certificate: %w", err))
	}
	a.log.InfoContext(ctx, "deleted certificate", "lb", req.GetLoadbalancerId(), "file", req.GetFilename())
	return &agentv1.DeleteCertificateResponse{}, nil
}

// UploadKeepalivedConfig implements agentv1.AmphoraAgentServer.
func (a *Agent) UploadKeepalivedConfig(ctx context.Context, req *agentv1.UploadKeepalivedConfigRequest) (*agentv1.UploadKeepalivedConfigResponse, error) {
	sum, out, err := a.uploadKeepalived(ctx, req.GetConfig())
	if err != nil {
		return nil, toStatus(err)
	}
	return &agentv1.UploadKeepalivedConfigResponse{Md5: sum, ValidationOutput: out}, nil
}

// KeepalivedAction implements agentv1.AmphoraAgentServer.
func (a *Agent) KeepalivedAction(ctx context.Context, req *agentv1.KeepalivedActionRequest) (*agentv1.KeepalivedActionResponse, error) {
	var action KeepalivedAction
	switch req.GetAction() {
	case agentv1.KeepalivedActionType_KEEPALIVED_ACTION_TYPE_START:
		action = KeepalivedStart
	case agentv1.KeepalivedActionType_KEEPALIVED_ACTION_TYPE_STOP:
		action = KeepalivedStop
	case agentv1.KeepalivedActionType_KEEPALIVED_ACTION_TYPE_RELOAD:
		action = KeepalivedReload
	default:
		return nil, status.Errorf(codes.InvalidArgument, "unknown keepalived action %v", req.GetAction())
	}
	details, err := a.keepalivedAction(ctx, action)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &agentv1.KeepalivedActionResponse{Details: details}
	if err := a.lockVRRP(ctx); err == nil {
		if a.vrrp.running() {
			resp.Running, resp.Pid = true, int32(a.vrrp.proc.Pid())
		}
		a.vrrp.mu.Unlock()
	}
	return resp, nil
}

func (a *Agent) listenerStatuses(ctx context.Context) ([]*agentv1.ListenerStatus, error) {
	ids, err := a.listLBIDs()
	if err != nil {
		return nil, err
	}
	var out []*agentv1.ListenerStatus
	for _, id := range ids {
		lb, err := a.lockLB(ctx, id)
		if err != nil {
			return nil, err
		}
		st := "STOPPED"
		switch {
		case lb.running():
			st = "ACTIVE"
		case lb.crashed:
			st = "ERROR"
		}
		data, err := os.ReadFile(lb.cfgPath())
		lb.mu.Unlock()
		if err != nil {
			continue // deleted meanwhile
		}
		for _, fe := range parseFrontends(string(data)) {
			out = append(out, &agentv1.ListenerStatus{
				ListenerId: fe.name, LoadbalancerId: id, Status: st, Type: strings.ToUpper(fe.mode),
			})
		}
	}
	return out, nil
}

// ListenerStatuses implements agentv1.AmphoraAgentServer.
func (a *Agent) ListenerStatuses(ctx context.Context, _ *agentv1.ListenerStatusesRequest) (*agentv1.ListenerStatusesResponse, error) {
	ls, err := a.listenerStatuses(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &agentv1.ListenerStatusesResponse{Listeners: ls}, nil
}

// GetStats implements agentv1.AmphoraAgentServer.
func (a *Agent) GetStats(ctx context.Context, req *agentv1.GetStatsRequest) (*agentv1.GetStatsResponse, error) {
	var ids []string
	if id := req.GetLoadbalancerId(); id != "" {
		if !validID(id) {
			return nil, status.Errorf(codes.InvalidArgument, "invalid load balancer id %q", id)
		}
		ids = []string{id}
	} else {
		var err error
		if ids, err = a.listLBIDs(); err != nil {
			return nil, toStatus(err)
		}
	}
	resp := &agentv1.GetStatsResponse{}
	for _, id := range ids {
		lb, err := a.lockLB(ctx, id)
		if err != nil {
			return nil, toStatus(err)
		}
		running, sock := lb.running(), a.statsSocketPath(lb)
		lb.mu.Unlock()
		if !running {
			if req.GetLoadbalancerId() != "" {
				return nil, status.Errorf(codes.FailedPrecondition, "haproxy of load balancer %s is not running", id)
			}
			continue
		}
		rows, err := ShowStat(ctx, sock)
		if err != nil {
			return nil, toStatus(fmt.Errorf("stats of load balancer %s: %w", id, err))
		}
		for _, r := range rows {
			resp.Rows = append(resp.Rows, statsRowProto(id, r))
		}
	}
	return resp, nil
}

func statsRowProto(lbID string, r StatRow) *agentv1.StatsRow {
	out := &agentv1.StatsRow{
		LoadbalancerId:    lbID,
		ProxyName:         r.ProxyName,
		ServiceName:       r.ServiceName,
		Status:            r.Fields["status"],
		CurrentSessions:   r.Uint("scur"),
		MaxSessions:       r.Uint("smax"),
		TotalSessions:     r.Uint("stot"),
		BytesIn:           r.Uint("bin"),
		BytesOut:          r.Uint("bout"),
		RequestErrors:     r.Uint("ereq"),
		ConnectionErrors:  r.Uint("econ"),
		ResponseErrors:    r.Uint("eresp"),
		Weight:            r.Int("weight"),
		CheckStatus:       r.Fields["check_status"],
		HttpResponses_2Xx: r.Uint("hrsp_2xx"),
		HttpResponses_5Xx: r.Uint("hrsp_5xx"),
		SelectedTotal:     r.Uint("lbtot"),
		Address:           r.Fields["addr"],
	}
	pool, listener, isBackend := strings.Cut(r.ProxyName, ":")
	switch r.Type {
	case 0:
		out.Type = agentv1.StatsRowType_STATS_ROW_TYPE_FRONTEND
		out.ListenerId = r.ProxyName
	case 1:
		out.Type = agentv1.StatsRowType_STATS_ROW_TYPE_BACKEND
	case 2:
		out.Type = agentv1.StatsRowType_STATS_ROW_TYPE_SERVER
		out.MemberId = r.ServiceName
	case 3:
		out.Type = agentv1.StatsRowType_STATS_ROW_TYPE_LISTENER
		out.ListenerId = r.ProxyName
	}
	if isBackend && (r.Type == 1 || r.Type == 2) {
		out.PoolId, out.ListenerId = pool, listener
	}
	return out
}

// UpdateServerCertificate implements agentv1.AmphoraAgentServer.
func (a *Agent) UpdateServerCertificate(ctx context.Context, req *agentv1.UpdateServerCertificateRequest) (*agentv1.UpdateServerCertificateResponse, error) {
	if a.cfg.ServerCertFile == "" || a.cfg.ServerKeyFile == "" {
		return nil, status.Error(codes.FailedPrecondition, "agent has no server certificate files configured")
	}
	certPEM, keyPEM, err := pki.SplitCombinedPEM(req.GetPem())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	leaf, err := pki.ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if a.cfg.AmphoraID != "" && leaf.Subject.CommonName != a.cfg.AmphoraID {
		return nil, status.Errorf(codes.InvalidArgument, "certificate CN %q is not this amphora (%s)", leaf.Subject.CommonName, a.cfg.AmphoraID)
	}
	if time.Now().After(leaf.NotAfter) {
		return nil, status.Error(codes.InvalidArgument, "certificate has expired")
	}
	// A key that does not belong to the certificate would be written, then
	// never served (the reloader keeps the previous pair), and the agent
	// could not start again with its files: refuse it before writing.
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "certificate and key do not match: %v", err)
	}
	if a.cfg.ServerCertFile == a.cfg.ServerKeyFile {
		err = pki.WriteFileAtomic(a.cfg.ServerCertFile, append(append([]byte{}, certPEM...), keyPEM...), 0o600)
	} else if err = pki.WriteFileAtomic(a.cfg.ServerKeyFile, keyPEM, 0o600); err == nil {
		err = pki.WriteFileAtomic(a.cfg.ServerCertFile, certPEM, 0o644)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	a.log.InfoContext(ctx, "server certificate replaced", "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter)
	return &agentv1.UpdateServerCertificateResponse{
		Serial:   leaf.SerialNumber.Text(16),
		NotAfter: leaf.NotAfter.UTC().Format(time.RFC3339),
	}, nil
}
