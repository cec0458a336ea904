package lbflows

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// planCreate: allocate VIP → record it → security group → server group
// (ACTIVE_STANDBY) → per amphora: record, boot, wait ACTIVE, plug VIP,
// post-VIP-plug → VRRP (ACTIVE_STANDBY) → listeners → ALLOCATED with roles →
// CompleteProvisioning.
func (f *Flows) planCreate(s *LBState) []step {
	steps := []step{f.allocateVIP(), f.recordVIP(), f.createSecurityGroup()}
	if s.Topology == TopologyActiveStandby {
		steps = append(steps, f.createServerGroup())
	}
	for i := range s.Amps {
		steps = append(steps, f.createAmphora(i), f.bootAmphora(i), f.waitActive(i), f.plugVIP(i), f.postVIPPlug(i))
	}
	if s.Topology == TopologyActiveStandby {
		steps = append(steps, f.configureVRRP())
	}
	// A fully populated create may bring members on their own subnets.
	steps = append(steps, f.plugMemberNetworks(), f.configureListeners())
	for i := range s.Amps {
		steps = append(steps, f.markAllocated(i))
	}
	return append(steps, f.completeProvisioning("load balancer created"))
}

// planUpdate applies a child object change: sync the security group,
// (for member changes) plug and unplug member networks, push the
// configuration to every amphora, CompleteProvisioning.
func (f *Flows) planUpdate(s *LBState) []step {
	steps := []step{f.syncSecurityGroup(), f.discoverAmphorae("discover_amphorae", nil)}
	if s.MemberNetworks {
		steps = append(steps, f.plugMemberNetworks())
	}
	return append(steps, f.configureListeners(), f.completeProvisioning("configuration applied"))
}

func (f *Flows) syncSecurityGroup() step {
	return step{
		Name: "sync_security_group",
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			g, err := f.findSecurityGroup(ctx, s)
			if err != nil || g == nil {
				return nil, err
			}
			lb, _, err := f.loadLB(ctx, s.LBID)
			if err != nil {
				return nil, err
			}
			topology := s.Topology
			if l := lb.LoadBalancer(); l != nil {
				topology = l.Topology
			}
			return nil, portErr("sync security group rules", f.cfg.Network.SetSecurityGroupRules(ctx, g.ID, securityRules(lb, topology)))
		},
	}
}

// planDelete: discover the amphorae → unplug and delete their VRRP and
// member ports →
// deallocate the VIP (security group, owned VIP port) → delete servers →
// amphorae DELETED → server group → CompleteProvisioning (deleted).
// Nothing here can be undone; a step that keeps failing ends the load
// balancer in ERROR.
func (f *Flows) planDelete(*LBState) []step {
	return []step{
		f.discoverAmphorae("discover_amphorae", nil),
		{Name: "unplug_vip", Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			found, err := f.cfg.Network.FindPorts(ctx, "", map[string]string{ports.TagLoadBalancerID: s.LBID})
			if err != nil {
				return nil, portErr("find ports", err)
			}
			for _, p := range found {
				switch {
				case isVrrpPort(p):
					if err := f.deletePorts(ctx, s, p.Name); err != nil {
						return nil, err
					}
				case isMemberPort(p):
					if err := f.removePort(ctx, p); err != nil {
						return nil, err
					}
				}
			}
			return nil, nil
		}},
		{Name: "deallocate_vip", Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			lb, _, err := f.loadLB(ctx, s.LBID)
			if err != nil {
				return nil, err
			}
			if l := lb.LoadBalancer(); l != nil {
				s.VipPortID = l.VipPortId
			}
			if err := f.deleteSecurityGroups(ctx, s); err != nil {
				return nil, err
			}
			// Only a port Ostia made (ours by tag) is deleted; a user's port stays.
			return nil, f.deletePorts(ctx, s, vipPortName(s.LBID))
		}},
		{Name: "delete_amphorae", Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			for _, a := range s.Peers {
				if err := f.deleteServers(ctx, s, a.ID, a.ComputeID); err != nil {
					return nil, err
				}
			}
			// Anything else carrying our tag (an amphora already marked deleted).
			rest, err := f.cfg.Compute.FindServers(ctx, "", map[string]string{ports.TagLoadBalancerID: s.LBID})
			if err != nil {
				return nil, portErr("find amphora servers", err)
			}
			for _, srv := range rest {
				if err := f.cfg.Compute.DeleteServer(ctx, srv.ID); err != nil {
					return nil, portErr("delete server "+srv.ID, err)
				}
			}
			return nil, nil
		}},
		{Name: "mark_amphorae_deleted", Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			for _, a := range s.Peers {
				if err := f.markAmpDeleted(ctx, s, a.ID, "load balancer deleted"); err != nil {
					return nil, err
				}
			}
			return nil, nil
		}},
		{Name: "delete_server_group", Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			return nil, f.deleteServerGroups(ctx, s)
		}},
		f.completeProvisioning("load balancer deleted"),
	}
}

func (f *Flows) markAmpDeleted(ctx context.Context, s *LBState, id, reason string) error {
	st, err := f.loadAmp(ctx, id)
	if err != nil || !st.Exists() || st.Status() == amphora.StatusDeleted {
		return err
	}
	_, _, err = f.cfg.Commands.Amphora(ctx, md(ctx, s), id, amphora.MarkDeleted{Reason: reason})
	return cmdErr("mark amphora deleted", err)
}

// planFailover replaces the amphorae in Old one at a time: build the
// replacement (record, boot, wait, plug VIP, post-plug), then remove the
// old one; then VRRP, listeners, roles and CompleteProvisioning.
func (f *Flows) planFailover(s *LBState) []step {
	steps := []step{f.loadFailoverContext(), f.discoverAmphorae("discover_peers", func(s *LBState) []string {
		var ids []string
		for _, a := range s.Old {
			ids = append(ids, a.ID)
		}
		for _, a := range s.Amps {
			ids = append(ids, a.ID)
		}
		return ids
	})}
	for i := range s.Amps {
		steps = append(steps, f.createAmphora(i), f.bootAmphora(i), f.waitActive(i), f.plugVIP(i), f.postVIPPlug(i),
			f.deleteOldAmphora(i))
	}
	// The replacements get the member networks of the amphorae they replace.
	steps = append(steps, f.plugMemberNetworks())
	if s.Topology == TopologyActiveStandby {
		steps = append(steps, f.configureVRRP())
	}
	steps = append(steps, f.configureListeners())
	for i := range s.Amps {
		steps = append(steps, f.markAllocated(i))
	}
	return append(steps, f.completeProvisioning("failover complete"))
}

// failoverContext is what loadFailoverContext finds.
type failoverContext struct {
	Topology        string `json:"topology"`
	VipPortID       string `json:"vip_port_id"`
	VipAddress      string `json:"vip_address"`
	VipSubnetID     string `json:"vip_subnet_id"`
	VipNetworkID    string `json:"vip_network_id"`
	SecurityGroupID string `json:"security_group_id"`
	ServerGroupID   string `json:"server_group_id"`
	Old             []Amp  `json:"old"`
}

// loadFailoverContext reads the load balancer's VIP, its groups and the
// amphorae to replace (slots without an id are found by role).
func (f *Flows) loadFailoverContext() step {
	return step{
		Name: "load_context",
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			st, _, err := f.loadLB(ctx, s.LBID)
			if err != nil {
				return nil, err
			}
			lb := st.LoadBalancer()
			if lb == nil {
				return nil, saga.Permanent(fmt.Errorf("load balancer %s not found", s.LBID))
			}
			fc := failoverContext{Topology: lb.Topology, VipPortID: lb.VipPortId, VipAddress: lb.VipAddress,
				VipSubnetID: lb.VipSubnetId, VipNetworkID: lb.VipNetworkId}
			if g, err := f.findSecurityGroup(ctx, s); err != nil {
				return nil, err
			} else if g != nil {
				fc.SecurityGroupID = g.ID
			}
			groups, err := f.cfg.Compute.FindServerGroups(ctx, serverGroupName(s.LBID))
			if err != nil {
				return nil, portErr("find server group", err)
			}
			if len(groups) > 0 {
				fc.ServerGroupID = groups[0].ID
			}
			roles := rolesFor(lb.Topology)
			for i, old := range s.Old {
				if old.ID == "" && i < len(roles) {
					found, err := f.cfg.Compute.FindServers(ctx, "", map[string]string{ports.TagLoadBalancerID: s.LBID,
						ports.TagRole: roles[i]})
					if err != nil {
						return nil, portErr("find amphora servers", err)
					}
					found = slices.DeleteFunc(found, func(srv ports.Server) bool {
						return slices.ContainsFunc(s.Amps, func(a Amp) bool { return a.ID == srv.Metadata[ports.TagAmphoraID] })
					})
					if len(found) > 0 {
						old.ID = found[0].Metadata[ports.TagAmphoraID]
					}
				}
				if old.ID != "" {
					as, err := f.loadAmp(ctx, old.ID)
					if err != nil {
						return nil, err
					}
					if a := as.Amphora(); a != nil {
						old.ComputeID, old.Role, old.VrrpPortID = a.ComputeId, a.Role, a.VrrpPortId
					}
				}
				if old.Role == "" && i < len(roles) {
					old.Role = roles[i]
				}
				fc.Old = append(fc.Old, old)
			}
			b, err := json.Marshal(fc)
			if err != nil {
				return nil, saga.Permanent(err)
			}
			return saga.Outputs{"context": string(b)}, nil
		},
		Apply: func(s *LBState, out saga.Outputs) {
			var fc failoverContext
			if json.Unmarshal([]byte(out["context"]), &fc) != nil {
				return
			}
			s.Topology, s.VipPortID, s.VipAddress = fc.Topology, fc.VipPortID, fc.VipAddress
			s.VipSubnetID, s.VipNetworkID = fc.VipSubnetID, fc.VipNetworkID
			s.SecurityGroupID, s.ServerGroupID = fc.SecurityGroupID, fc.ServerGroupID
			s.Old = fc.Old
			for i := range s.Amps {
				if i < len(fc.Old) {
					s.Amps[i].Role = fc.Old[i].Role
				}
			}
		},
	}
}

// deleteOldAmphora removes the replaced amphora: its VRRP and member
// ports, its server and its record. It cannot be undone and has no compensation.
func (f *Flows) deleteOldAmphora(i int) step {
	return step{
		Name: slot(i, "delete_old_amphora"),
		Do: func(ctx context.Context, s *LBState) (saga.Outputs, error) {
			if i >= len(s.Old) || s.Old[i].ID == "" {
				return nil, nil
			}
			old := s.Old[i]
			if err := f.deletePorts(ctx, s, vrrpPortName(old.ID)); err != nil {
				return nil, err
			}
			if err := f.deleteMemberPorts(ctx, s, map[string]string{ports.TagAmphoraID: old.ID}); err != nil {
				return nil, err
			}
			if err := f.deleteServers(ctx, s, old.ID, old.ComputeID); err != nil {
				return nil, err
			}
			return nil, f.markAmpDeleted(ctx, s, old.ID, "replaced by failover")
		},
	}
}
