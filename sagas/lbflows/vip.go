package lbflows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// VIPAllocator allocates a new load balancer's VIP port when the API accepts
// it, as Octavia's API does, so the answer to the POST already carries
// vip_address and vip_port_id. The port has the name and load-balancer tag
// the create flow looks for, so the flow adopts it (and its compensation
// and the delete flow remove it); a port left behind by an API that died
// between allocating it and storing the create is removed by Sweep.
type VIPAllocator struct {
	Network ports.Network
	Logger  *slog.Logger
}

// Allocate finds or creates the VIP port of the load balancer c creates and
// returns what the create records with it. A VIP port the user gave
// (vip_port_id) is checked as Octavia's API does (it must exist and be
// unused; a requested vip_address must be its address) and recorded, but
// stays the user's: neither Release nor the delete flow removes it.
func (v *VIPAllocator) Allocate(ctx context.Context, c loadbalancer.CreateLoadBalancer) (*loadbalancer.AllocateVip, error) {
	if c.VipPortID != "" {
		return v.given(ctx, c)
	}
	if c.ID == "" {
		return nil, errors.New("allocate VIP: the load balancer has no id yet")
	}
	name := vipPortName(c.ID)
	found, err := v.Network.FindPorts(ctx, name, map[string]string{ports.TagLoadBalancerID: c.ID})
	if err != nil {
		return nil, fmt.Errorf("allocate VIP: find port %s: %w", name, err)
	}
	var p ports.Port
	if len(found) > 0 {
		p = found[0]
	} else {
		p, err = v.Network.CreatePort(ctx, ports.PortSpec{Name: name, NetworkID: c.VipNetworkID, SubnetID: c.VipSubnetID,
			FixedIP: c.VipAddress, AdminStateUp: false, DeviceOwner: "Octavia",
			Tags: map[string]string{ports.TagLoadBalancerID: c.ID, ports.TagAllocatedBy: ports.AllocatedByAPI}})
		if err != nil {
			if errors.Is(err, saga.ErrPermanent) {
				// The request cannot be served (address in use or not in
				// the subnet, subnet exhausted): Octavia answers 409.
				return nil, aggregates.Errorf(aggregates.KindConflict, "Unable to allocate the VIP port: %v", err)
			}
			return nil, fmt.Errorf("allocate VIP: create port %s: %w", name, err)
		}
	}
	return vipOf(p, c), nil
}

func (v *VIPAllocator) given(ctx context.Context, c loadbalancer.CreateLoadBalancer) (*loadbalancer.AllocateVip, error) {
	p, err := v.Network.GetPort(ctx, c.VipPortID)
	if errors.Is(err, ports.ErrNotFound) {
		return nil, aggregates.Errorf(aggregates.KindInvalid, "Port %s not found.", c.VipPortID)
	}
	if err != nil {
		return nil, fmt.Errorf("check VIP port %s: %w", c.VipPortID, err)
	}
	if p.DeviceID != "" {
		return nil, aggregates.Errorf(aggregates.KindInvalid, "Port %s is already used by device %s.", p.ID, p.DeviceID)
	}
	if c.VipAddress != "" && c.VipAddress != p.IP {
		return nil, aggregates.Errorf(aggregates.KindInvalid,
			"Validation failure: The VIP address %s is not an address of port %s.", c.VipAddress, p.ID)
	}
	if c.VipSubnetID != "" && p.SubnetID != "" && c.VipSubnetID != p.SubnetID {
		return nil, aggregates.Errorf(aggregates.KindInvalid,
			"Validation failure: Port %s has no address on subnet %s.", p.ID, c.VipSubnetID)
	}
	if c.VipNetworkID != "" && p.NetworkID != "" && c.VipNetworkID != p.NetworkID {
		return nil, aggregates.Errorf(aggregates.KindInvalid,
			"Validation failure: Port %s is not on network %s.", p.ID, c.VipNetworkID)
	}
	return vipOf(p, c), nil
}

// vipOf is what a create records of its VIP port; subnet and network the
// port does not tell come from the request.
func vipOf(p ports.Port, c loadbalancer.CreateLoadBalancer) *loadbalancer.AllocateVip {
	out := &loadbalancer.AllocateVip{VipAddress: p.IP, VipPortID: p.ID, VipSubnetID: p.SubnetID, VipNetworkID: p.NetworkID}
	if out.VipSubnetID == "" {
		out.VipSubnetID = c.VipSubnetID
	}
	if out.VipNetworkID == "" {
		out.VipNetworkID = c.VipNetworkID
	}
	return out
}

// Release deletes the VIP port Allocate made for a load balancer the API
// then did not accept (the create was refused or failed).
func (v *VIPAllocator) Release(ctx context.Context, lbID string) error {
	found, err := v.Network.FindPorts(ctx, vipPortName(lbID),
		map[string]string{ports.TagLoadBalancerID: lbID, ports.TagAllocatedBy: ports.AllocatedByAPI})
	if err != nil {
		return fmt.Errorf("release VIP of %s: %w", lbID, err)
	}
	for _, p := range found {
		if err := v.Network.DeletePort(ctx, p.ID); err != nil && !errors.Is(err, ports.ErrNotFound) {
			return fmt.Errorf("release VIP of %s: delete port %s: %w", lbID, p.ID, err)
		}
	}
	return nil
}

// Sweep deletes the VIP ports the API allocated for load balancers that
// were never stored (exists reports false) and that an earlier sweep at
// least grace ago already saw orphaned; seen carries those sightings from
// one sweep to the next (port id to first sighting). It returns the ports
// deleted.
func (v *VIPAllocator) Sweep(ctx context.Context, exists func(ctx context.Context, lbID string) (bool, error),
	seen map[string]time.Time, grace time.Duration, now time.Time) (int, error) {
	found, err := v.Network.FindPorts(ctx, "", map[string]string{ports.TagAllocatedBy: ports.AllocatedByAPI})
	if err != nil {
		return 0, fmt.Errorf("sweep VIP ports: %w", err)
	}
	current := make(map[string]bool, len(found))
	deleted := 0
	for _, p := range found {
		lbID := p.Tags[ports.TagLoadBalancerID]
		if lbID == "" || p.Name != vipPortName(lbID) {
			continue
		}
		ok, err := exists(ctx, lbID)
		if err != nil {
			return deleted, fmt.Errorf("sweep VIP ports: does load balancer %s exist: %w", lbID, err)
		}
		if ok {
			delete(seen, p.ID)
			continue
		}
		current[p.ID] = true
		first, had := seen[p.ID]
		if !had {
			seen[p.ID] = now
			continue
		}
		if now.Sub(first) < grace {
			continue
		}
		if err := v.Network.DeletePort(ctx, p.ID); err != nil && !errors.Is(err, ports.ErrNotFound) {
			return deleted, fmt.Errorf("sweep VIP ports: delete port %s of load balancer %s: %w", p.ID, lbID, err)
		}
		if v.Logger != nil {
			v.Logger.InfoContext(ctx, "deleted a VIP port allocated for a load balancer that was never stored",
				"port_id", p.ID, "lb_id", lbID, "orphaned_since", first)
		}
		delete(seen, p.ID)
		deleted++
	}
	for id := range seen {
		if !current[id] {
			delete(seen, id)
		}
	}
	return deleted, nil
}
