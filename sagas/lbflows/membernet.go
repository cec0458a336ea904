package lbflows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// Member networks (Octavia's CalculateDelta → HandleNetworkDeltas →
// AmphoraePostNetworkPlug). Every amphora of a load balancer gets one port
// on each distinct member subnet, named octavia-lb-member-<amphora>-<subnet>
// and tagged with the load balancer, the amphora, the saga that made it and
// the subnet (ports.TagMemberSubnet), so that the next run finds it by tags.
// Members without a subnet, and subnets on the VIP network, are reached
// through the VIP interface and get no port. Ports whose subnet no member
// uses any more are detached and deleted.
//
// Neutron is the record of which ports an amphora has: the tags say
// everything the flows need, so the amphora aggregate does not repeat it.

const memberPortPrefix = "octavia-lb-member-"

func memberPortName(ampID, subnetID string) string { return memberPortPrefix + ampID + "-" + subnetID }

func isMemberPort(p ports.Port) bool {
	return p.Tags[ports.TagMemberSubnet] != "" || strings.HasPrefix(p.Name, memberPortPrefix)
}

// memberSubnets are the distinct subnets of the load balancer's members
// that stay (not being deleted, in a pool that stays), sorted; the VIP
// subnet is left out.
func memberSubnets(lb *loadbalancer.State, vipSubnet string) []string {
	var out []string
	for _, pool := range lb.Pools() {
		if gone(pool.GetProvisioningStatus()) {
			continue
		}
		for _, m := range lb.Members(pool.GetId()) {
			id := m.GetSubnetId()
			if id == "" || id == vipSubnet || gone(m.GetProvisioningStatus()) || slices.Contains(out, id) {
				continue
			}
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func gone(status string) bool {
	return status == loadbalancer.StatusPendingDelete || status == loadbalancer.StatusDeleted
}

// memberPorts lists the member ports of one amphora (of this load
// balancer), by subnet.
func (f *Flows) memberPorts(ctx context.Context, s *LBState, ampID string) (map[string][]ports.Port, error) {
	found, err := f.cfg.Network.FindPorts(ctx, "", map[string]string{ports.TagLoadBalancerID: s.LBID, ports.TagAmphoraID: ampID})
	if err != nil {
		return nil, portErr("find member ports of amphora "+ampID, err)
	}
	out := map[string][]ports.Port{}
	for _, p := range found {
		if sn := p.Tags[ports.TagMemberSubnet]; sn != "" {
			out[sn] = append(out[sn], p)
		}
	}
	return out, nil
}

// removePort detaches a port from its server and deletes it.
func (f *Flows) removePort(ctx context.Context, p ports.Port) error {
	if p.DeviceID != "" {
		if err := f.cfg.Network.UnplugPort(ctx, p.DeviceID, p.ID); err != nil {
			return portErr("unplug port "+p.ID, err)
		}
	}
	if err := f.cfg.Network.DeletePort(ctx, p.ID); err != nil {
		return portErr("delete port "+p.ID, err)
	}
	return nil
}

// deleteMemberPorts removes the member ports carrying every tag of match
// (always scoped to this load balancer).
func (f *Flows) deleteMemberPorts(ctx context.Context, s *LBState, match map[string]string) error {
	tags := map[string]string{ports.TagLoadBalancerID: s.LBID}
	for k, v := range match {
		tags[k] = v
	}
	found, err := f.cfg.Network.FindPorts(ctx, "", tags)
	if err != nil {
		return portErr("find member ports", err)
	}
	for _, p := range found {
		if !isMemberPort(p) {
			continue
		}
		if err := f.removePort(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// plugMemberNetworks brings every amphora of the saga (Amps and Peers) to
// one port per member subnet. Find-or-create by tags makes it safe to run
// again; the agent is told about the ports this saga made (again on every
// run, as a crash may have come between the attach and the agent call).
// The compensation removes the ports this saga made; ports it deleted stay
// deleted (their subnets had no member left).
func (f *Flows) plugMemberNetworks() step {
	return step{
		Name: "plug_member_networks",
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			lb, _, err := f.loadLB(ctx, s.LBID)
			if err != nil {
				return nil, err
			}
			vipSubnet, vipNetwork := s.VipSubnetID, s.VipNetworkID
			if l := lb.LoadBalancer(); l != nil {
				if vipSubnet == "" {
					vipSubnet = l.VipSubnetId
				}
				if vipNetwork == "" {
					vipNetwork = l.VipNetworkId
				}
			}
			log := saga.InfoFrom(ctx).Logger
			var wanted []ports.Subnet
			for _, id := range memberSubnets(lb, vipSubnet) {
				sn, err := f.cfg.Network.GetSubnet(ctx, id)
				if errors.Is(err, ports.ErrNotFound) && !errors.Is(err, saga.ErrTransient) {
					return nil, saga.Permanent(fmt.Errorf("member subnet %s: %w", id, err))
				}
				if err != nil {
					return nil, portErr("get member subnet "+id, err)
				}
				if vipNetwork != "" && sn.NetworkID == vipNetwork {
					log.Debug("member subnet is on the VIP network; reached through the VIP interface", "subnet_id", id)
					continue
				}
				wanted = append(wanted, sn)
			}
			sagaID := saga.InfoFrom(ctx).SagaID
			var plugged, removed int
			var subnetIDs []string
			for _, sn := range wanted {
				subnetIDs = append(subnetIDs, sn.ID)
			}
			for _, a := range allAmps(s) {
				if a.ComputeID == "" {
					return nil, saga.Permanent(fmt.Errorf("amphora %s has no server to plug member networks into", a.ID))
				}
				have, err := f.memberPorts(ctx, s, a.ID)
				if err != nil {
					return nil, err
				}
				for _, sn := range wanted {
					n, err := f.plugMemberPort(ctx, s, a, sn, have[sn.ID], sagaID)
					if err != nil {
						return nil, err
					}
					plugged += n
				}
				for subnet, list := range have {
					if slices.Contains(subnetIDs, subnet) {
						continue
					}
					for _, p := range list {
						if err := f.removePort(ctx, p); err != nil {
							return nil, err
						}
						removed++
						log.Info("member network unplugged", "amphora_id", a.ID, "subnet_id", subnet, "port_id", p.ID)
					}
				}
			}
			return saga.Outputs{"subnets": strings.Join(subnetIDs, ","), "plugged": strconv.Itoa(plugged),
				"removed": strconv.Itoa(removed)}, nil
		},
		Compensate: func(ctx context.Context, s *LBState) error {
			return f.deleteMemberPorts(ctx, s, map[string]string{ports.TagSagaID: saga.InfoFrom(ctx).SagaID})
		},
		Resources: func(s *LBState) map[string]string {
			return map[string]string{"member_ports_of_load_balancer": s.LBID}
		},
	}
}

// plugMemberPort makes sure amphora a has exactly one port on subnet sn,
// attached to its server, and tells the agent about a port this saga made.
// It returns 1 when it created the port.
func (f *Flows) plugMemberPort(ctx context.Context, s *LBState, a Amp, sn ports.Subnet, have []ports.Port, sagaID string) (int, error) {
	created := 0
	var p ports.Port
	if len(have) == 0 {
		t := tags(ctx, s, a.ID)
		t[ports.TagMemberSubnet] = sn.ID
		np, err := f.cfg.Network.CreatePort(ctx, ports.PortSpec{Name: memberPortName(a.ID, sn.ID), NetworkID: sn.NetworkID,
			SubnetID: sn.ID, AdminStateUp: true, DeviceOwner: "Octavia", Tags: t})
		if err != nil {
			return 0, portErr("create member port on subnet "+sn.ID, err)
		}
		p, created = np, 1
	} else {
		p = have[0]
		// A second port on one subnet (two runs raced): keep the first.
		for _, extra := range have[1:] {
			if err := f.removePort(ctx, extra); err != nil {
				return 0, err
			}
		}
	}
	if err := f.cfg.Network.PlugPort(ctx, a.ComputeID, p.ID); err != nil {
		return 0, portErr("plug member port "+p.ID, err)
	}
	if created == 0 && p.Tags[ports.TagSagaID] != sagaID && p.DeviceID == a.ComputeID {
		// Made and configured by an earlier flow: nothing to tell the agent.
		return 0, nil
	}
	full, err := f.cfg.Network.GetPort(ctx, p.ID)
	if err != nil {
		return 0, portErr("get member port "+p.ID, err)
	}
	plug := ports.NetworkPlug{MAC: full.MAC, MTU: full.MTU, FixedIPs: []ports.FixedIP{{IP: full.IP,
		SubnetCIDR: firstNonEmpty(full.SubnetCIDR, sn.CIDR), GatewayIP: firstNonEmpty(full.GatewayIP, sn.GatewayIP)}}}
	if err := f.cfg.Agent.PlugNetwork(ctx, a.ref(), plug); err != nil {
		return 0, portErr("agent plug member network on "+a.ID, err)
	}
	saga.InfoFrom(ctx).Logger.Info("member network plugged", "amphora_id", a.ID, "subnet_id", sn.ID, "port_id", p.ID,
		"ip", full.IP)
	return created, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
