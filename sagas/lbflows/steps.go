package lbflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

type step = saga.Step[LBState]

// owned returns the resources among found that carry this load balancer's
// tag; a resource with our deterministic name but someone else's tag is a
// permanent error (never adopt what we do not control).
func ownedPorts(s *LBState, name string, found []ports.Port) ([]ports.Port, error) {
	var out []ports.Port
	for _, p := range found {
		if p.Tags[ports.TagLoadBalancerID] != s.LBID {
			return nil, saga.Permanent(fmt.Errorf("port %s named %q is not controlled by load balancer %s", p.ID, name, s.LBID))
		}
		out = append(out, p)
	}
	return out, nil
}

func (f *Flows) findPort(ctx context.Context, s *LBState, name string) (*ports.Port, error) {
	found, err := f.cfg.Network.FindPorts(ctx, name, nil)
	if err != nil {
		return nil, portErr("find port "+name, err)
	}
	own, err := ownedPorts(s, name, found)
	if err != nil || len(own) == 0 {
		return nil, err
	}
	if len(own) > 1 {
		saga.InfoFrom(ctx).Logger.Warn("several ports with one deterministic name; adopting the first", "name", name, "count", len(own))
	}
	return &own[0], nil
}

// deletePorts deletes every port of ours with a name (detaching it first).
func (f *Flows) deletePorts(ctx context.Context, s *LBState, name string) error {
	found, err := f.cfg.Network.FindPorts(ctx, name, map[string]string{ports.TagLoadBalancerID: s.LBID})
	if err != nil {
		return portErr("find port "+name, err)
	}
	for _, p := range found {
		if p.DeviceID != "" {
			if err := f.cfg.Network.UnplugPort(ctx, p.DeviceID, p.ID); err != nil {
				return portErr("unplug port "+p.ID, err)
			}
		}
		if err := f.cfg.Network.DeletePort(ctx, p.ID); err != nil {
			return portErr("delete port "+p.ID, err)
		}
	}
	return nil
}

func (f *Flows) findServer(ctx context.Context, s *LBState, ampID string) (*ports.Server, error) {
	name := serverName(ampID)
	found, err := f.cfg.Compute.FindServers(ctx, name, nil)
	if err != nil {
		return nil, portErr("find server "+name, err)
	}
	for _, srv := range found {
		if srv.Metadata[ports.TagLoadBalancerID] != s.LBID || srv.Metadata[ports.TagAmphoraID] != ampID {
			return nil, saga.Permanent(fmt.Errorf("server %s named %q is not controlled by load balancer %s", srv.ID, name, s.LBID))
		}
	}
	if len(found) == 0 {
		return nil, nil
	}
	return &found[0], nil
}

func (f *Flows) deleteServers(ctx context.Context, s *LBState, ampID, computeID string) error {
	ids := []string{}
	if computeID != "" {
		ids = append(ids, computeID)
	}
	found, err := f.cfg.Compute.FindServers(ctx, serverName(ampID), map[string]string{ports.TagLoadBalancerID: s.LBID})
	if err != nil {
		return portErr("find server", err)
	}
	for _, srv := range found {
		if !slices.Contains(ids, srv.ID) {
			ids = append(ids, srv.ID)
		}
	}
	for _, id := range ids {
		if err := f.cfg.Compute.DeleteServer(ctx, id); err != nil {
			return portErr("delete server "+id, err)
		}
	}
	return nil
}

// allocateVIP finds or creates the VIP port (or validates the user's).
func (f *Flows) allocateVIP() step {
	return step{
		Name: "allocate_vip",
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			var p *ports.Port
			if s.GivenVipPortID != "" {
				got, err := f.cfg.Network.GetPort(ctx, s.GivenVipPortID)
				if err != nil {
					return nil, portErr("get VIP port", err)
				}
				p = &got
			} else {
				var err error
				if p, err = f.findPort(ctx, s, vipPortName(s.LBID)); err != nil {
					return nil, err
				}
				if p == nil {
					created, err := f.cfg.Network.CreatePort(ctx, ports.PortSpec{Name: vipPortName(s.LBID), NetworkID: s.VipNetworkID,
						SubnetID: s.VipSubnetID, FixedIP: s.VipAddress, AdminStateUp: false, DeviceOwner: "Octavia",
						Tags: tags(ctx, s, "")})
					if err != nil {
						return nil, portErr("create VIP port", err)
					}
					p = &created
				}
			}
			return saga.Outputs{"port_id": p.ID, "ip": p.IP, "network_id": p.NetworkID, "subnet_id": p.SubnetID}, nil
		},
		Apply: func(s *LBState, out saga.Outputs) {
			s.VipPortID, s.VipAddress = out["port_id"], out["ip"]
			if out["network_id"] != "" {
				s.VipNetworkID = out["network_id"]
			}
			if out["subnet_id"] != "" {
				s.VipSubnetID = out["subnet_id"]
			}
		},
		Compensate: func(ctx context.Context, s *LBState) error {
			if s.GivenVipPortID != "" {
				return nil
			}
			return f.deletePorts(ctx, s, vipPortName(s.LBID))
		},
		Resources: func(s *LBState) map[string]string {
			return map[string]string{"port_name": vipPortName(s.LBID), "port_id": s.VipPortID}
		},
	}
}

// recordVIP sends AllocateVip unless the load balancer already has it.
func (f *Flows) recordVIP() step {
	return step{
		Name: "record_vip",
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			st, _, err := f.loadLB(ctx, s.LBID)
			if err != nil {
				return nil, err
			}
			if lb := st.LoadBalancer(); lb != nil && lb.VipPortId == s.VipPortID && lb.VipAddress == s.VipAddress {
				return nil, nil
			}
			_, _, err = f.cfg.Commands.LoadBalancer(ctx, md(ctx, s), s.LBID, loadbalancer.AllocateVip{VipAddress: s.VipAddress,
				VipPortID: s.VipPortID, VipSubnetID: s.VipSubnetID, VipNetworkID: s.VipNetworkID})
			return nil, cmdErr("record VIP", err)
		},
	}
}

func protoOf(listenerProtocol string) string {
	switch listenerProtocol {
	case "UDP":
		return "udp"
	case "SCTP":
		return "sctp"
	default:
		return "tcp"
	}
}

// securityRules are the ingress rules of the VIP security group (§8 of the
// flow notes): listener ports per allowed CIDR, VRRP and AH for
// ACTIVE_STANDBY.
func securityRules(lb *loadbalancer.State, topology string) []ports.Rule {
	var rules []ports.Rule
	for _, l := range lb.Listeners() {
		if l.ProvisioningStatus == loadbalancer.StatusPendingDelete {
			continue
		}
		cidrs := l.AllowedCidrs
		if len(cidrs) == 0 {
			cidrs = []string{""}
		}
		for _, c := range cidrs {
			rules = append(rules, ports.Rule{Protocol: protoOf(l.Protocol), Port: l.ProtocolPort, CIDR: c})
		}
	}
	if topology == TopologyActiveStandby {
		rules = append(rules, ports.Rule{Protocol: "112"}, ports.Rule{Protocol: "51"})
	}
	return rules
}

func (f *Flows) findSecurityGroup(ctx context.Context, s *LBState) (*ports.SecurityGroup, error) {
	found, err := f.cfg.Network.FindSecurityGroups(ctx, securityGroupName(s.LBID), nil)
	if err != nil {
		return nil, portErr("find security group", err)
	}
	for _, g := range found {
		if g.Tags[ports.TagLoadBalancerID] != s.LBID {
			return nil, saga.Permanent(fmt.Errorf("security group %s is not controlled by load balancer %s", g.ID, s.LBID))
		}
	}
	if len(found) == 0 {
		return nil, nil
	}
	return &found[0], nil
}

// createSecurityGroup finds or creates "lb-<id>", syncs its rules and
// attaches it to the VIP port.
func (f *Flows) createSecurityGroup() step {
	return step{
		Name: "create_security_group",
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			g, err := f.findSecurityGroup(ctx, s)
			if err != nil {
				return nil, err
			}
			if g == nil {
				created, err := f.cfg.Network.CreateSecurityGroup(ctx, securityGroupName(s.LBID), tags(ctx, s, ""))
				if err != nil {
					return nil, portErr("create security group", err)
				}
				g = &created
			}
			lb, _, err := f.loadLB(ctx, s.LBID)
			if err != nil {
				return nil, err
			}
			if err := f.cfg.Network.SetSecurityGroupRules(ctx, g.ID, securityRules(lb, s.Topology)); err != nil {
				return nil, portErr("sync security group rules", err)
			}
			if err := f.cfg.Network.SetPortSecurityGroups(ctx, s.VipPortID, []string{g.ID}); err != nil {
				return nil, portErr("attach security group to VIP port", err)
			}
			return saga.Outputs{"security_group_id": g.ID}, nil
		},
		Apply: func(s *LBState, out saga.Outputs) { s.SecurityGroupID = out["security_group_id"] },
		Compensate: func(ctx context.Context, s *LBState) error {
			return f.deleteSecurityGroups(ctx, s)
		},
		Resources: func(s *LBState) map[string]string {
			return map[string]string{"security_group_name": securityGroupName(s.LBID), "security_group_id": s.SecurityGroupID}
		},
	}
}

// deleteSecurityGroups detaches our groups from the VIP port and deletes them.
func (f *Flows) deleteSecurityGroups(ctx context.Context, s *LBState) error {
	found, err := f.cfg.Network.FindSecurityGroups(ctx, securityGroupName(s.LBID), map[string]string{ports.TagLoadBalancerID: s.LBID})
	if err != nil || len(found) == 0 {
		return portErr("find security group", err)
	}
	vipPorts := []string{}
	if s.VipPortID != "" {
		vipPorts = append(vipPorts, s.VipPortID)
	}
	if p, err := f.findPort(ctx, s, vipPortName(s.LBID)); err != nil {
		return err
	} else if p != nil && !slices.Contains(vipPorts, p.ID) {
		vipPorts = append(vipPorts, p.ID)
	}
	for _, id := range vipPorts {
		p, err := f.cfg.Network.GetPort(ctx, id)
		if errors.Is(err, ports.ErrNotFound) {
			continue
		}
		if err != nil {
			return portErr("get VIP port", err)
		}
		keep := slices.DeleteFunc(slices.Clone(p.SecurityGroupIDs), func(id string) bool {
			return slices.ContainsFunc(found, func(g ports.SecurityGroup) bool { return g.ID == id })
		})
		if len(keep) != len(p.SecurityGroupIDs) {
			if err := f.cfg.Network.SetPortSecurityGroups(ctx, p.ID, keep); err != nil {
				return portErr("detach security group", err)
			}
		}
	}
	for _, g := range found {
		if err := f.cfg.Network.DeleteSecurityGroup(ctx, g.ID); err != nil {
			return portErr("delete security group "+g.ID, err)
		}
	}
	return nil
}

// createServerGroup finds or creates the anti-affinity server group.
func (f *Flows) createServerGroup() step {
	return step{
		Name: "create_server_group",
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			found, err := f.cfg.Compute.FindServerGroups(ctx, serverGroupName(s.LBID))
			if err != nil {
				return nil, portErr("find server group", err)
			}
			if len(found) > 0 {
				return saga.Outputs{"server_group_id": found[0].ID}, nil
			}
			g, err := f.cfg.Compute.CreateServerGroup(ctx, serverGroupName(s.LBID), f.cfg.AntiAffinityPolicy)
			if err != nil {
				return nil, portErr("create server group", err)
			}
			return saga.Outputs{"server_group_id": g.ID}, nil
		},
		Apply:      func(s *LBState, out saga.Outputs) { s.ServerGroupID = out["server_group_id"] },
		Compensate: f.deleteServerGroups,
		Resources: func(s *LBState) map[string]string {
			return map[string]string{"server_group_name": serverGroupName(s.LBID), "server_group_id": s.ServerGroupID}
		},
	}
}

func (f *Flows) deleteServerGroups(ctx context.Context, s *LBState) error {
	found, err := f.cfg.Compute.FindServerGroups(ctx, serverGroupName(s.LBID))
	if err != nil {
		return portErr("find server group", err)
	}
	for _, g := range found {
		if err := f.cfg.Compute.DeleteServerGroup(ctx, g.ID); err != nil {
			return portErr("delete server group "+g.ID, err)
		}
	}
	return nil
}

func slot(i int, name string) string { return name + "_" + strconv.Itoa(i) }

// createAmphora records the amphora (PENDING_CREATE).
func (f *Flows) createAmphora(i int) step {
	return step{
		Name: slot(i, "create_amphora"),
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			a := s.Amps[i]
			st, err := f.loadAmp(ctx, a.ID)
			if err != nil {
				return nil, err
			}
			if st.Exists() {
				if st.Amphora().LoadbalancerId != s.LBID {
					return nil, saga.Permanent(fmt.Errorf("amphora %s belongs to another load balancer", a.ID))
				}
				return nil, nil
			}
			_, _, err = f.cfg.Commands.Amphora(ctx, md(ctx, s), a.ID, amphora.CreateAmphora{ID: a.ID, LoadBalancerID: s.LBID,
				ProjectID: s.ProjectID, Role: a.Role, ServerGroupID: s.ServerGroupID, ComputeFlavor: f.cfg.FlavorID})
			return nil, cmdErr("create amphora", err)
		},
		Compensate: func(ctx context.Context, s *LBState) error {
			a := s.Amps[i]
			st, err := f.loadAmp(ctx, a.ID)
			if err != nil || !st.Exists() || st.Status() == amphora.StatusDeleted {
				return err
			}
			_, _, err = f.cfg.Commands.Amphora(ctx, md(ctx, s), a.ID, amphora.MarkDeleted{Reason: "load balancer flow reverted"})
			return cmdErr("mark amphora deleted", err)
		},
	}
}

// bootAmphora finds or boots the amphora's server (with a fresh server
// certificate on its config drive) and records compute id and BOOTING.
func (f *Flows) bootAmphora(i int) step {
	return step{
		Name: slot(i, "boot_amphora"),
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			a := s.Amps[i]
			srv, err := f.findServer(ctx, s, a.ID)
			if err != nil {
				return nil, err
			}
			var cert *ports.Certificate
			if srv == nil {
				c, err := f.cfg.Certificates.IssueServerCert(ctx, a.ID, f.cfg.CertValidity)
				if err != nil {
					return nil, portErr("issue server certificate", err)
				}
				cert = &c
				meta := tags(ctx, s, a.ID)
				meta[ports.TagRole] = a.Role
				drive := maps.Clone(f.cfg.ConfigDrive)
				if drive == nil {
					drive = map[string][]byte{}
				}
				drive["/etc/octavia/certs/server.pem"] = c.PEM
				created, err := f.cfg.Compute.CreateServer(ctx, ports.ServerSpec{Name: serverName(a.ID), ImageTag: f.cfg.ImageTag,
					FlavorID: f.cfg.FlavorID, NetworkIDs: f.cfg.ManagementNetworkIDs, ServerGroupID: s.ServerGroupID, Metadata: meta,
					ConfigDrive: drive})
				if err != nil {
					return nil, portErr("boot amphora", err)
				}
				srv = &created
			}
			// Compute id, certificate and BOOTING in one command (one commit).
			st, err := f.loadAmp(ctx, a.ID)
			if err != nil {
				return nil, err
			}
			seq := amphora.Sequence{amphora.UpdateAmphora{ComputeID: aggregates.Value(srv.ID),
				ImageID: aggregates.Value(srv.ImageID), ComputeFlavor: aggregates.Value(srv.FlavorID)}}
			if cert != nil {
				seq = append(seq, amphora.RecordCertificate{ExpiresAt: cert.ExpiresAt, Serial: cert.Serial})
			}
			if st.Status() == amphora.StatusPendingCreate {
				seq = append(seq, amphora.ChangeStatus{Status: amphora.StatusBooting})
			}
			if _, _, err := f.cfg.Commands.Amphora(ctx, md(ctx, s), a.ID, seq); err != nil {
				return nil, cmdErr("record the booted server", err)
			}
			return saga.Outputs{"compute_id": srv.ID}, nil
		},
		Apply: func(s *LBState, out saga.Outputs) { s.Amps[i].ComputeID = out["compute_id"] },
		Compensate: func(ctx context.Context, s *LBState) error {
			return f.deleteServers(ctx, s, s.Amps[i].ID, s.Amps[i].ComputeID)
		},
		Resources: func(s *LBState) map[string]string {
			return map[string]string{"server_name": serverName(s.Amps[i].ID), "server_id": s.Amps[i].ComputeID}
		},
	}
}

// waitActive re-checks the server until Nova says ACTIVE, without holding
// a worker: it answers RetryAfter while the server builds.
func (f *Flows) waitActive(i int) step {
	return step{
		Name:    slot(i, "wait_amphora_active"),
		Timeout: f.cfg.BootTimeout,
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			a := s.Amps[i]
			srv, err := f.cfg.Compute.GetServer(ctx, a.ComputeID)
			if err != nil {
				return nil, portErr("get server", err)
			}
			switch srv.Status {
			case ports.ServerActive:
			case ports.ServerError:
				return nil, saga.Permanent(fmt.Errorf("amphora %s server %s went to ERROR: %s", a.ID, srv.ID, srv.Fault))
			default:
				return nil, saga.RetryAfter(f.cfg.BootPollInterval, "server "+srv.ID+" is "+srv.Status)
			}
			if _, _, err := f.cfg.Commands.Amphora(ctx, md(ctx, s), a.ID, amphora.UpdateAmphora{
				LBNetworkIP: aggregates.Value(srv.ManagementIP), CachedZone: aggregates.Value(srv.Zone)}); err != nil {
				return nil, cmdErr("record amphora network", err)
			}
			return saga.Outputs{"management_ip": srv.ManagementIP}, nil
		},
		Apply: func(s *LBState, out saga.Outputs) { s.Amps[i].ManagementIP = out["management_ip"] },
	}
}

// plugVIP finds or creates the amphora's base (VRRP) port on the VIP
// network, plugs it into the server and lets the VIP float onto it.
func (f *Flows) plugVIP(i int) step {
	return step{
		Name: slot(i, "plug_vip"),
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			a := s.Amps[i]
			name := vrrpPortName(a.ID)
			p, err := f.findPort(ctx, s, name)
			if err != nil {
				return nil, err
			}
			if p == nil {
				created, err := f.cfg.Network.CreatePort(ctx, ports.PortSpec{Name: name, NetworkID: s.VipNetworkID,
					SubnetID: s.VipSubnetID, AdminStateUp: true, DeviceOwner: "Octavia", Tags: tags(ctx, s, a.ID)})
				if err != nil {
					return nil, portErr("create VRRP port", err)
				}
				p = &created
			}
			if err := f.cfg.Network.PlugPort(ctx, a.ComputeID, p.ID); err != nil {
				return nil, portErr("plug VRRP port", err)
			}
			if err := f.cfg.Network.SetAllowedAddressPairs(ctx, p.ID, []string{s.VipAddress}); err != nil {
				return nil, portErr("allowed address pairs", err)
			}
			if s.SecurityGroupID != "" {
				if err := f.cfg.Network.SetPortSecurityGroups(ctx, p.ID, []string{s.SecurityGroupID}); err != nil {
					return nil, portErr("attach security group to VRRP port", err)
				}
			}
			if _, _, err := f.cfg.Commands.Amphora(ctx, md(ctx, s), a.ID, amphora.UpdateAmphora{
				VrrpIP: aggregates.Value(p.IP), VrrpPortID: aggregates.Value(p.ID), HaIP: aggregates.Value(s.VipAddress),
				HaPortID: aggregates.Value(s.VipPortID), VrrpID: aggregates.Value(int32(1))}); err != nil {
				return nil, cmdErr("record VIP data", err)
			}
			return saga.Outputs{"vrrp_port_id": p.ID, "vrrp_ip": p.IP}, nil
		},
		Apply: func(s *LBState, out saga.Outputs) {
			s.Amps[i].VrrpPortID, s.Amps[i].VrrpIP = out["vrrp_port_id"], out["vrrp_ip"]
		},
		Compensate: func(ctx context.Context, s *LBState) error {
			return f.deletePorts(ctx, s, vrrpPortName(s.Amps[i].ID))
		},
		Resources: func(s *LBState) map[string]string {
			return map[string]string{"port_name": vrrpPortName(s.Amps[i].ID), "port_id": s.Amps[i].VrrpPortID}
		},
	}
}

// postVIPPlug tells the agent to bring the VIP interface up.
func (f *Flows) postVIPPlug(i int) step {
	return step{
		Name: slot(i, "post_vip_plug"),
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			a := s.Amps[i]
			p, err := f.cfg.Network.GetPort(ctx, a.VrrpPortID)
			if err != nil {
				return nil, portErr("get VRRP port", err)
			}
			err = f.cfg.Agent.PlugVIP(ctx, a.ref(), ports.VIPPlug{VIP: s.VipAddress, SubnetCIDR: p.SubnetCIDR,
				GatewayIP: p.GatewayIP, MAC: p.MAC, MTU: p.MTU, VrrpIP: a.VrrpIP,
				ManagedByKeepalived: s.Topology == TopologyActiveStandby})
			return nil, portErr("agent plug VIP", err)
		},
	}
}

// allAmps are the amphorae whose configuration a step pushes.
func allAmps(s *LBState) []Amp {
	out := slices.Clone(s.Amps)
	for _, p := range s.Peers {
		if !slices.ContainsFunc(out, func(a Amp) bool { return a.ID == p.ID }) {
			out = append(out, p)
		}
	}
	return out
}

// configureVRRP uploads keepalived configuration to every amphora and
// starts VRRP (ACTIVE_STANDBY).
func (f *Flows) configureVRRP() step {
	return step{
		Name: "configure_vrrp",
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			lb, version, err := f.loadLB(ctx, s.LBID)
			if err != nil {
				return nil, err
			}
			vip, err := f.vipNetwork(ctx, s)
			if err != nil {
				return nil, err
			}
			amps := allAmps(s)
			for _, a := range amps {
				conf, err := f.cfg.Renderer.Keepalived(ctx, KeepalivedInput{LB: lb, Amphora: a, Amphorae: amps, VIP: vip})
				if err != nil {
					return nil, saga.Permanent(fmt.Errorf("render keepalived configuration: %w", err))
				}
				if err := f.cfg.Agent.UploadKeepalived(ctx, a.ref(), version, conf); err != nil {
					return nil, portErr("upload keepalived config to "+a.ID, err)
				}
				if err := f.cfg.Agent.StartKeepalived(ctx, a.ref()); err != nil {
					return nil, portErr("start keepalived on "+a.ID, err)
				}
			}
			return nil, nil
		},
	}
}

// vipNetwork reads the VIP's subnet from the VIP port.
func (f *Flows) vipNetwork(ctx context.Context, s *LBState) (VIPNetwork, error) {
	vip := VIPNetwork{Address: s.VipAddress}
	if s.VipPortID == "" {
		return vip, nil
	}
	p, err := f.cfg.Network.GetPort(ctx, s.VipPortID)
	if err != nil {
		return vip, portErr("get VIP port", err)
	}
	if vip.Address == "" {
		vip.Address = p.IP
	}
	vip.SubnetCIDR, vip.Gateway = p.SubnetCIDR, p.GatewayIP
	return vip, nil
}

// configureListeners renders the configuration of every amphora from the
// load balancer's current state and pushes it with a generation made from
// the stream version (ConfigGeneration), then reloads. The TLS files the
// configuration refers to (listener certificates and crt-lists, CAs, CRLs,
// pool client certificates) are fetched from the cert manager and
// uploaded first.
func (f *Flows) configureListeners() step {
	return step{
		Name: "configure_listeners",
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			lb, version, err := f.loadLB(ctx, s.LBID)
			if err != nil {
				return nil, err
			}
			amps := allAmps(s)
			gen := ConfigGeneration(version, f.cfg.Now())
			tls, err := f.fetchTLS(ctx, lb)
			if err != nil {
				return nil, err
			}
			certFiles := 0
			for _, a := range amps {
				conf, err := f.cfg.Renderer.HAProxy(ctx, HAProxyInput{LB: lb, Amphora: a, Amphorae: amps})
				if err != nil {
					return nil, saga.Permanent(fmt.Errorf("render configuration: %w", err))
				}
				n, err := f.uploadTLS(ctx, a, tls)
				if err != nil {
					return nil, err
				}
				certFiles += n
				if err := f.cfg.Agent.UploadConfig(ctx, a.ref(), s.LBID, gen, conf); err != nil {
					return nil, portErr("upload configuration to "+a.ID, err)
				}
				if err := f.cfg.Agent.ReloadListeners(ctx, a.ref(), s.LBID); err != nil {
					return nil, portErr("reload listeners on "+a.ID, err)
				}
			}
			out := saga.Outputs{"generation": strconv.FormatInt(gen, 10), "lb_version": strconv.FormatInt(version, 10),
				"amphorae": strconv.Itoa(len(amps))}
			if certFiles > 0 {
				out["certificate_files"] = strconv.Itoa(certFiles)
			}
			return out, nil
		},
	}
}

// markAllocated records the role and ALLOCATED.
func (f *Flows) markAllocated(i int) step {
	return step{
		Name: slot(i, "mark_amphora_allocated"),
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			a := s.Amps[i]
			m := md(ctx, s)
			upd := amphora.UpdateAmphora{Role: aggregates.Value(a.Role), LoadBalancerID: aggregates.Value(s.LBID)}
			if p := priorityOf(a.Role); p > 0 {
				upd.VrrpPriority = aggregates.Value(p)
			}
			if _, _, err := f.cfg.Commands.Amphora(ctx, m, a.ID, upd); err != nil {
				return nil, cmdErr("record amphora role", err)
			}
			_, _, err := f.cfg.Commands.Amphora(ctx, m, a.ID, amphora.ChangeStatus{Status: amphora.StatusAllocated})
			return nil, cmdErr("mark amphora ALLOCATED", err)
		},
	}
}

// completeProvisioning ends the load balancer's flow (ACTIVE, or
// LoadBalancerDeleted for a delete).
func (f *Flows) completeProvisioning(reason string) step {
	return step{
		Name: "complete_provisioning",
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			_, _, err := f.cfg.Commands.LoadBalancer(ctx, md(ctx, s), s.LBID, loadbalancer.CompleteProvisioning{Reason: reason})
			if errors.Is(err, aggregates.ErrNotFound) {
				// A re-run after the delete already went through: the
				// load balancer is gone, which is the goal.
				return nil, nil
			}
			return nil, cmdErr("complete provisioning", err)
		},
	}
}

// discoverAmphorae lists the load balancer's amphorae from their servers'
// ownership metadata (as Peers; ids in skip are left out).
func (f *Flows) discoverAmphorae(name string, skip func(s *LBState) []string) step {
	return step{
		Name: name,
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			found, err := f.cfg.Compute.FindServers(ctx, "", map[string]string{ports.TagLoadBalancerID: s.LBID})
			if err != nil {
				return nil, portErr("find amphora servers", err)
			}
			var skipIDs []string
			if skip != nil {
				skipIDs = skip(s)
			}
			var amps []Amp
			for _, srv := range found {
				id := srv.Metadata[ports.TagAmphoraID]
				if id == "" || slices.Contains(skipIDs, id) {
					continue
				}
				a := Amp{ID: id, Role: srv.Metadata[ports.TagRole], ComputeID: srv.ID, ManagementIP: srv.ManagementIP}
				st, err := f.loadAmp(ctx, id)
				if err != nil {
					return nil, err
				}
				if rec := st.Amphora(); rec != nil {
					if rec.Status == amphora.StatusDeleted {
						continue
					}
					a.VrrpIP, a.VrrpPortID = rec.VrrpIp, rec.VrrpPortId
					if rec.Role != "" {
						a.Role = rec.Role
					}
				}
				amps = append(amps, a)
			}
			b, err := json.Marshal(amps)
			if err != nil {
				return nil, saga.Permanent(err)
			}
			return saga.Outputs{"amphorae": string(b)}, nil
		},
		Apply: func(s *LBState, out saga.Outputs) {
			s.Peers = nil
			_ = json.Unmarshal([]byte(out["amphorae"]), &s.Peers)
		},
	}
}

func isVrrpPort(p ports.Port) bool { return strings.HasPrefix(p.Name, "octavia-lb-vrrp-") }
