package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"

	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// portMTU is the MTU of local ports (a bridge on one machine).
const portMTU = 1500

func clonePort(p *portRec) ports.Port {
	v := p.Port
	v.Tags = maps.Clone(p.Tags)
	v.AllowedAddressPairs = slices.Clone(p.AllowedAddressPairs)
	v.SecurityGroupIDs = slices.Clone(p.SecurityGroupIDs)
	return v
}

// portHash names a port's MAC and interfaces uniquely on this machine.
func (d *Driver) portHash(portID string) string {
	sum := sha256.Sum256([]byte(d.cfg.StateDir + "\x00" + portID))
	return hex.EncodeToString(sum[:])
}

// ifNames are the veth names of a port: the host end on the bridge and
// the NIC end the agent moves into the amphora (at most 15 characters).
func (d *Driver) ifNames(portID string) (host, nic string) {
	h := d.portHash(portID)[:10]
	return "ostp" + h, "ostn" + h
}

func (d *Driver) macFor(portID string) string {
	h := d.portHash(portID)
	return "fa:16:3e:" + h[10:12] + ":" + h[12:14] + ":" + h[14:16]
}

// usable reports whether an address of the VIP subnet may be given to a
// port: not the network or broadcast address, nor the gateway.
func (d *Driver) usable(a netip.Addr) bool {
	p := d.cfg.VIPSubnet
	if !p.Contains(a) || a == p.Addr() || a == p.Addr().Next() {
		return false
	}
	last := p.Addr().As4()
	hostBits := 32 - p.Bits()
	for i := 3; i >= 0 && hostBits > 0; i-- {
		n := min(hostBits, 8)
		last[i] |= byte(1<<n - 1)
		hostBits -= n
	}
	return a != netip.AddrFrom4(last)
}

func (d *Driver) allocIP(st *state, fixed string) (string, error) {
	used := map[netip.Addr]bool{}
	for _, p := range st.Ports {
		if a, err := netip.ParseAddr(p.IP); err == nil {
			used[a] = true
		}
	}
	if fixed != "" {
		a, err := netip.ParseAddr(fixed)
		if err != nil || !d.usable(a) {
			return "", saga.Permanent(fmt.Errorf("local: address %q is not usable in subnet %s", fixed, d.cfg.VIPSubnet))
		}
		if used[a] {
			return "", saga.Permanent(fmt.Errorf("local: address %s is already allocated", a))
		}
		return a.String(), nil
	}
	for a := d.cfg.VIPSubnet.Addr(); d.cfg.VIPSubnet.Contains(a); a = a.Next() {
		if d.usable(a) && !used[a] {
			return a.String(), nil
		}
	}
	return "", saga.Permanent(fmt.Errorf("local: VIP subnet %s is exhausted", d.cfg.VIPSubnet))
}

// GetSubnet implements ports.Network. The local cloud has one network and
// one subnet (VIPSubnet, behind the bridge): every subnet id names it, on
// the network of the ports already made on that subnet id (else
// NetworkID). Members on this machine are reachable through the VIP
// interface, so the flows find nothing to plug for them.
func (d *Driver) GetSubnet(ctx context.Context, id string) (ports.Subnet, error) {
	if id == "" {
		return ports.Subnet{}, notFound("subnet", id)
	}
	out := ports.Subnet{ID: id, NetworkID: NetworkID, CIDR: d.cfg.VIPSubnet.String()}
	if d.gateway.IsValid() {
		out.GatewayIP = d.gateway.String()
	}
	err := d.view(ctx, "GetSubnet", func(st *state) error {
		for _, p := range st.Ports {
			if p.SubnetID == id && p.NetworkID != "" {
				out.NetworkID = p.NetworkID
				break
			}
		}
		return nil
	})
	return out, err
}

// CreatePort implements ports.Network: an address of the VIP subnet
// (the requested one, or the first free one).
func (d *Driver) CreatePort(ctx context.Context, spec ports.PortSpec) (ports.Port, error) {
	var out ports.Port
	err := d.update(ctx, "CreatePort", func(st *state) error {
		ip, err := d.allocIP(st, spec.FixedIP)
		if err != nil {
			return err
		}
		id, err := uniqueID("port-", func(id string) bool { return st.Ports[id] != nil })
		if err != nil {
			return err
		}
		network, subnet := spec.NetworkID, spec.SubnetID
		if network == "" {
			network = NetworkID
		}
		if subnet == "" {
			subnet = SubnetID
		}
		rec := &portRec{Port: ports.Port{ID: id, Name: spec.Name, NetworkID: network, SubnetID: subnet, IP: ip,
			MAC: d.macFor(id), Tags: maps.Clone(spec.Tags), AdminStateUp: spec.AdminStateUp,
			SubnetCIDR: d.cfg.VIPSubnet.String(), MTU: portMTU}}
		if d.gateway.IsValid() {
			rec.GatewayIP = d.gateway.String()
		}
		st.Ports[id] = rec
		out = clonePort(rec)
		return nil
	})
	return out, err
}

// FindPorts implements ports.Network.
func (d *Driver) FindPorts(ctx context.Context, name string, tags map[string]string) ([]ports.Port, error) {
	var out []ports.Port
	err := d.view(ctx, "FindPorts", func(st *state) error {
		for _, p := range st.Ports {
			if (name == "" || p.Name == name) && contains(p.Tags, tags) {
				out = append(out, clonePort(p))
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// GetPort implements ports.Network.
func (d *Driver) GetPort(ctx context.Context, id string) (ports.Port, error) {
	var out ports.Port
	err := d.view(ctx, "GetPort", func(st *state) error {
		p, ok := st.Ports[id]
		if !ok {
			return notFound("port", id)
		}
		out = clonePort(p)
		return nil
	})
	return out, err
}

// DeletePort implements ports.Network (unplugging it first).
func (d *Driver) DeletePort(ctx context.Context, id string) error {
	return d.update(ctx, "DeletePort", func(st *state) error {
		p, ok := st.Ports[id]
		if !ok {
			return nil
		}
		if err := d.unplug(ctx, p); err != nil {
			return err
		}
		delete(st.Ports, id)
		return nil
	})
}

// PlugPort implements ports.Network: in netns mode a veth pair, one end on
// the bridge, the other (with the port's MAC) left for the agent, which
// moves it into the amphora's namespace.
func (d *Driver) PlugPort(ctx context.Context, serverID, portID string) error {
	return d.update(ctx, "PlugPort", func(st *state) error {
		p, ok := st.Ports[portID]
		if !ok {
			return saga.Permanent(notFound("port", portID))
		}
		if _, ok := st.Servers[serverID]; !ok {
			return saga.Permanent(notFound("server", serverID))
		}
		if p.DeviceID != "" && p.DeviceID != serverID {
			return saga.Permanent(fmt.Errorf("local: port %s is in use by server %s", portID, p.DeviceID))
		}
		if d.mode == ModeNetns {
			if err := d.ensureVeth(ctx, p); err != nil {
				return err
			}
		}
		p.DeviceID = serverID
		return nil
	})
}

func (d *Driver) ensureVeth(ctx context.Context, p *portRec) error {
	host, nic := d.ifNames(p.ID)
	if p.HostIf == host {
		ok, err := d.linkExists(ctx, host)
		if err != nil {
			return saga.Transient(fmt.Errorf("local: %w", err))
		}
		if ok {
			return nil
		}
	}
	if err := d.deleteLink(ctx, host); err != nil {
		return saga.Transient(err)
	}
	if err := d.deleteLink(ctx, nic); err != nil {
		return saga.Transient(err)
	}
	steps := [][]string{
		{"link", "add", nic, "address", p.MAC, "mtu", fmt.Sprint(portMTU), "type", "veth", "peer", "name", host},
		{"link", "set", "dev", host, "master", d.cfg.Bridge},
		{"link", "set", "dev", host, "up"},
	}
	for _, args := range steps {
		if _, err := d.ip(ctx, args...); err != nil {
			_ = d.deleteLink(context.WithoutCancel(ctx), host)
			return saga.Transient(fmt.Errorf("local: plug port %s: %w", p.ID, err))
		}
	}
	p.HostIf, p.NicIf = host, nic
	return nil
}

// unplug removes a port's veth pair (deleting one end deletes both, even
// when the agent moved the other one into an amphora namespace).
func (d *Driver) unplug(ctx context.Context, p *portRec) error {
	if p.HostIf != "" {
		if err := d.deleteLink(ctx, p.HostIf); err != nil {
			return saga.Transient(err)
		}
		if err := d.deleteLink(ctx, p.NicIf); err != nil {
			return saga.Transient(err)
		}
		d.forgetNeighbours(ctx, p)
	}
	p.HostIf, p.NicIf, p.DeviceID = "", "", ""
	return nil
}

// forgetNeighbours drops the host's ARP entries of a port's addresses (its
// own and the VIPs it was allowed to carry), so the next packet to a VIP
// that moved to another amphora resolves it at once instead of waiting
// for the stale entry to expire (the agent sends no gratuitous ARP for a
// SINGLE amphora).
func (d *Driver) forgetNeighbours(ctx context.Context, p *portRec) {
	for _, ip := range append([]string{p.IP}, p.AllowedAddressPairs...) {
		if _, err := d.ip(ctx, "neigh", "flush", "to", ip, "dev", d.cfg.Bridge); err != nil {
			d.log.DebugContext(ctx, "flush neighbour", "ip", ip, "err", err)
		}
	}
}

// UnplugPort implements ports.Network.
func (d *Driver) UnplugPort(ctx context.Context, serverID, portID string) error {
	return d.update(ctx, "UnplugPort", func(st *state) error {
		p, ok := st.Ports[portID]
		if !ok || p.DeviceID != serverID {
			return nil
		}
		return d.unplug(ctx, p)
	})
}

// SetAllowedAddressPairs implements ports.Network (recorded only: the
// bridge does not filter addresses).
func (d *Driver) SetAllowedAddressPairs(ctx context.Context, portID string, ips []string) error {
	return d.update(ctx, "SetAllowedAddressPairs", func(st *state) error {
		p, ok := st.Ports[portID]
		if !ok {
			return saga.Permanent(notFound("port", portID))
		}
		p.AllowedAddressPairs = slices.Clone(ips)
		return nil
	})
}

// CreateSecurityGroup implements ports.Network. Security groups are
// recorded, not enforced.
func (d *Driver) CreateSecurityGroup(ctx context.Context, name string, tags map[string]string) (ports.SecurityGroup, error) {
	var out ports.SecurityGroup
	err := d.update(ctx, "CreateSecurityGroup", func(st *state) error {
		id, err := uniqueID("sg-", func(id string) bool { return st.SGs[id] != nil })
		if err != nil {
			return err
		}
		g := &ports.SecurityGroup{ID: id, Name: name, Tags: maps.Clone(tags)}
		st.SGs[g.ID] = g
		out = *g
		out.Tags = maps.Clone(g.Tags)
		return nil
	})
	return out, err
}

// FindSecurityGroups implements ports.Network.
func (d *Driver) FindSecurityGroups(ctx context.Context, name string, tags map[string]string) ([]ports.SecurityGroup, error) {
	var out []ports.SecurityGroup
	err := d.view(ctx, "FindSecurityGroups", func(st *state) error {
		for _, g := range st.SGs {
			if (name == "" || g.Name == name) && contains(g.Tags, tags) {
				v := *g
				v.Tags, v.Rules = maps.Clone(g.Tags), slices.Clone(g.Rules)
				out = append(out, v)
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// SetSecurityGroupRules implements ports.Network.
func (d *Driver) SetSecurityGroupRules(ctx context.Context, groupID string, rules []ports.Rule) error {
	return d.update(ctx, "SetSecurityGroupRules", func(st *state) error {
		g, ok := st.SGs[groupID]
		if !ok {
			return saga.Permanent(notFound("security group", groupID))
		}
		g.Rules = slices.Clone(rules)
		return nil
	})
}

// SetPortSecurityGroups implements ports.Network.
func (d *Driver) SetPortSecurityGroups(ctx context.Context, portID string, groupIDs []string) error {
	return d.update(ctx, "SetPortSecurityGroups", func(st *state) error {
		p, ok := st.Ports[portID]
		if !ok {
			return saga.Permanent(notFound("port", portID))
		}
		p.SecurityGroupIDs = slices.Clone(groupIDs)
		return nil
	})
}

// DeleteSecurityGroup implements ports.Network; as Neutron, it refuses
// (transiently) while a port uses the group.
func (d *Driver) DeleteSecurityGroup(ctx context.Context, id string) error {
	return d.update(ctx, "DeleteSecurityGroup", func(st *state) error {
		for _, p := range st.Ports {
			if slices.Contains(p.SecurityGroupIDs, id) {
				return saga.Transient(fmt.Errorf("local: security group %s is in use by port %s", id, p.ID))
			}
		}
		delete(st.SGs, id)
		return nil
	})
}
