package openstack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/attachinterfaces"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	neutronports "github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// Neutron resource collections for the tag API.
const (
	tagResourcePorts          = "ports"
	tagResourceSecurityGroups = "security-groups"
)

// portCreateOpts adds what gophercloud's ports.CreateOpts lacks: tags
// (tag-creation extension) and a QoS policy (qos extension).
type portCreateOpts struct {
	neutronports.CreateOpts
	Tags        []string
	QosPolicyID string
}

func (o portCreateOpts) ToPortCreateMap() (map[string]any, error) {
	m, err := o.CreateOpts.ToPortCreateMap()
	if err != nil {
		return nil, err
	}
	port, ok := m["port"].(map[string]any)
	if !ok {
		return nil, errors.New("openstack: unexpected port create body")
	}
	if len(o.Tags) > 0 {
		port["tags"] = o.Tags
	}
	if o.QosPolicyID != "" {
		port["qos_policy_id"] = o.QosPolicyID
	}
	return m, nil
}

// CreatePort implements ports.Network: POST /v2.0/ports (name, network,
// fixed IP on the subnet, admin state, device owner, QoS policy), then PUT
// /v2.0/ports/{id}/tags with the ownership tags unless TagsOnCreate put
// them in the create body. When tagging fails the new port is deleted
// again, so no untagged port is left to trip up the next find.
func (d *Driver) CreatePort(ctx context.Context, spec ports.PortSpec) (ports.Port, error) {
	if spec.NetworkID == "" {
		return ports.Port{}, badInput("create port %q: a network is required", spec.Name)
	}
	tags, err := encodeTags(spec.Tags)
	if err != nil {
		return ports.Port{}, err
	}
	adminUp := spec.AdminStateUp
	opts := portCreateOpts{CreateOpts: neutronports.CreateOpts{Name: spec.Name, NetworkID: spec.NetworkID,
		AdminStateUp: &adminUp, DeviceOwner: spec.DeviceOwner}, QosPolicyID: spec.QosPolicyID}
	if spec.SubnetID != "" || spec.FixedIP != "" {
		opts.FixedIPs = []neutronports.IP{{SubnetID: spec.SubnetID, IPAddress: spec.FixedIP}}
	}
	if d.cfg.TagsOnCreate {
		opts.Tags = tags
	}
	p, err := neutronports.Create(ctx, d.network, opts).Extract()
	if err != nil {
		return ports.Port{}, classify("create port "+spec.Name, err)
	}
	if !d.cfg.TagsOnCreate && len(tags) > 0 {
		got, err := attributestags.ReplaceAll(ctx, d.network, tagResourcePorts, p.ID, attributestags.ReplaceAllOpts{Tags: tags}).Extract()
		if err != nil {
			d.rollback(ctx, "port", p.ID, func(ctx context.Context) error {
				return neutronports.Delete(ctx, d.network, p.ID).ExtractErr()
			})
			return ports.Port{}, classify("tag port "+p.ID, err)
		}
		p.Tags = got
	}
	return toPort(p), nil
}

// rollback undoes a create whose follow-up failed, on a context that
// survives the caller's; a failure is only logged.
func (d *Driver) rollback(ctx context.Context, kind, id string, undo func(context.Context) error) {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	if err := undo(cctx); err != nil && !isStatus(err, 404) {
		d.log.WarnContext(ctx, "could not delete a half-made resource", "kind", kind, "id", id, "error", err)
	}
}

func toPort(p *neutronports.Port) ports.Port {
	out := ports.Port{ID: p.ID, Name: p.Name, NetworkID: p.NetworkID, MAC: p.MACAddress, DeviceID: p.DeviceID,
		Tags: decodeTags(p.Tags), AdminStateUp: p.AdminStateUp, SecurityGroupIDs: slices.Clone(p.SecurityGroups)}
	if len(p.FixedIPs) > 0 {
		out.IP, out.SubnetID = p.FixedIPs[0].IPAddress, p.FixedIPs[0].SubnetID
	}
	for _, pair := range p.AllowedAddressPairs {
		out.AllowedAddressPairs = append(out.AllowedAddressPairs, pair.IPAddress)
	}
	return out
}

// FindPorts implements ports.Network: GET /v2.0/ports?name=...&tags=k=v,...
// (Neutron matches the name exactly and wants every listed tag); the
// result is checked again here.
func (d *Driver) FindPorts(ctx context.Context, name string, tags map[string]string) ([]ports.Port, error) {
	encoded, err := encodeTags(tags)
	if err != nil {
		return nil, err
	}
	pages, err := neutronports.List(d.network, neutronports.ListOpts{Name: name, Tags: strings.Join(encoded, ",")}).AllPages(ctx)
	if err != nil {
		return nil, classify("list ports named "+name, err)
	}
	all, err := neutronports.ExtractPorts(pages)
	if err != nil {
		return nil, classify("read ports named "+name, err)
	}
	var out []ports.Port
	for i := range all {
		p := toPort(&all[i])
		if (name == "" || p.Name == name) && contains(p.Tags, tags) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// GetPort implements ports.Network: GET /v2.0/ports/{id}, plus GET
// /v2.0/subnets/{subnet} (CIDR, gateway) and GET /v2.0/networks/{net}
// (MTU) for what the amphora needs to bring the interface up.
func (d *Driver) GetPort(ctx context.Context, id string) (ports.Port, error) {
	if id == "" {
		return ports.Port{}, fmt.Errorf("openstack: get port with an empty id: %w", ports.ErrNotFound)
	}
	p, err := neutronports.Get(ctx, d.network, id).Extract()
	if err != nil {
		return ports.Port{}, classify("get port "+id, err)
	}
	out := toPort(p)
	if out.SubnetID != "" {
		s, err := subnets.Get(ctx, d.network, out.SubnetID).Extract()
		if err != nil {
			return ports.Port{}, classify("get subnet "+out.SubnetID+" of port "+id, err)
		}
		out.SubnetCIDR, out.GatewayIP = s.CIDR, s.GatewayIP
	}
	var n struct {
		MTU int `json:"mtu"`
	}
	if err := networks.Get(ctx, d.network, p.NetworkID).ExtractInto(&n); err != nil {
		return ports.Port{}, classify("get network "+p.NetworkID+" of port "+id, err)
	}
	out.MTU = n.MTU
	return out, nil
}

// GetSubnet implements ports.Network: GET /v2.0/subnets/{id}.
func (d *Driver) GetSubnet(ctx context.Context, id string) (ports.Subnet, error) {
	if id == "" {
		return ports.Subnet{}, fmt.Errorf("openstack: get subnet with an empty id: %w", ports.ErrNotFound)
	}
	s, err := subnets.Get(ctx, d.network, id).Extract()
	if err != nil {
		return ports.Subnet{}, classify("get subnet "+id, err)
	}
	return ports.Subnet{ID: s.ID, NetworkID: s.NetworkID, CIDR: s.CIDR, GatewayIP: s.GatewayIP}, nil
}

// DeletePort implements ports.Network: DELETE /v2.0/ports/{id}; a missing
// port is fine.
func (d *Driver) DeletePort(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	err := neutronports.Delete(ctx, d.network, id).ExtractErr()
	if isStatus(err, 404) {
		return nil
	}
	return classify("delete port "+id, err)
}

// PlugPort implements ports.Network with Nova's interface attachment:
// GET /servers/{id}/os-interface and, when the port is not there yet,
// POST /servers/{id}/os-interface {"port_id"}. A 409 is looked into: the
// port on this server already (a lost reply, a race) is success, a port
// bound to another device is permanent, anything else (the server is busy)
// transient.
func (d *Driver) PlugPort(ctx context.Context, serverID, portID string) error {
	if serverID == "" || portID == "" {
		return badInput("plug port %q into server %q: both ids are required", portID, serverID)
	}
	attached, err := d.attached(ctx, serverID, portID)
	if err != nil || attached {
		return err
	}
	_, err = attachinterfaces.Create(ctx, d.compute, serverID, attachinterfaces.CreateOpts{PortID: portID}).Extract()
	switch {
	case err == nil:
		return nil
	case isStatus(err, 409):
		p, gerr := neutronports.Get(ctx, d.network, portID).Extract()
		if gerr != nil {
			return classify(fmt.Sprintf("attach port %s to server %s", portID, serverID), err)
		}
		switch p.DeviceID {
		case serverID:
			return nil
		case "":
			return classify(fmt.Sprintf("attach port %s to server %s", portID, serverID), err)
		default:
			return saga.Permanent(fmt.Errorf("openstack: attach port %s to server %s: the port is in use by %s: %w",
				portID, serverID, p.DeviceID, err))
		}
	default:
		return permanentNotFound(fmt.Sprintf("attach port %s to server %s", portID, serverID), err)
	}
}

func (d *Driver) attached(ctx context.Context, serverID, portID string) (bool, error) {
	pages, err := attachinterfaces.List(d.compute, serverID).AllPages(ctx)
	if err != nil {
		return false, permanentNotFound("list interfaces of server "+serverID, err)
	}
	ifaces, err := attachinterfaces.ExtractInterfaces(pages)
	if err != nil {
		return false, classify("read interfaces of server "+serverID, err)
	}
	return slices.ContainsFunc(ifaces, func(i attachinterfaces.Interface) bool { return i.PortID == portID }), nil
}

// UnplugPort implements ports.Network: DELETE
// /servers/{id}/os-interface/{port}; a port that is not attached, or a
// server that is gone, is fine.
func (d *Driver) UnplugPort(ctx context.Context, serverID, portID string) error {
	if serverID == "" || portID == "" {
		return nil
	}
	err := attachinterfaces.Delete(ctx, d.compute, serverID, portID).ExtractErr()
	if isStatus(err, 404) {
		return nil
	}
	return classify(fmt.Sprintf("detach port %s from server %s", portID, serverID), err)
}

// SetAllowedAddressPairs implements ports.Network: PUT /v2.0/ports/{id}
// {"allowed_address_pairs": [{"ip_address"}...]} (an empty list clears
// them), so the VIP may float onto the VRRP port.
func (d *Driver) SetAllowedAddressPairs(ctx context.Context, portID string, ips []string) error {
	pairs := make([]neutronports.AddressPair, 0, len(ips))
	for _, ip := range ips {
		pairs = append(pairs, neutronports.AddressPair{IPAddress: ip})
	}
	_, err := neutronports.Update(ctx, d.network, portID, neutronports.UpdateOpts{AllowedAddressPairs: &pairs}).Extract()
	return permanentNotFound("set allowed address pairs of port "+portID, err)
}

// SetPortSecurityGroups implements ports.Network: PUT /v2.0/ports/{id}
// {"security_groups": [...]}.
func (d *Driver) SetPortSecurityGroups(ctx context.Context, portID string, groupIDs []string) error {
	ids := slices.Clone(groupIDs)
	if ids == nil {
		ids = []string{}
	}
	_, err := neutronports.Update(ctx, d.network, portID, neutronports.UpdateOpts{SecurityGroups: &ids}).Extract()
	return permanentNotFound("set security groups of port "+portID, err)
}
