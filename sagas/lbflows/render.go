package lbflows

import (
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates/loadbalancer"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// RenderJSON is the default configuration renderer: the load balancer's
// tree without objects being deleted, as deterministic protobuf bytes. The
// real haproxy rendering (templates package) plugs in through
// Config.Render.
func RenderJSON(lb *loadbalancer.State) ([]byte, error) {
	snap := lb.Snapshot()
	if snap == nil {
		return nil, fmt.Errorf("load balancer %s has no state", lb.ID())
	}
	live := func(status string) bool {
		return status != loadbalancer.StatusPendingDelete && status != loadbalancer.StatusDeleted
	}
	out := &eventsv1.LoadBalancerCreated{Loadbalancer: snap.Loadbalancer}
	for _, l := range snap.Listeners {
		if live(l.ProvisioningStatus) {
			out.Listeners = append(out.Listeners, l)
		}
	}
	for _, p := range snap.Pools {
		if live(p.ProvisioningStatus) {
			out.Pools = append(out.Pools, p)
		}
	}
	for _, m := range snap.Members {
		if live(m.ProvisioningStatus) {
			out.Members = append(out.Members, m)
		}
	}
	for _, h := range snap.HealthMonitors {
		if live(h.ProvisioningStatus) {
			out.HealthMonitors = append(out.HealthMonitors, h)
		}
	}
	for _, p := range snap.L7Policies {
		if live(p.ProvisioningStatus) {
			out.L7Policies = append(out.L7Policies, p)
		}
	}
	for _, r := range snap.L7Rules {
		if live(r.ProvisioningStatus) {
			out.L7Rules = append(out.L7Rules, r)
		}
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("render load balancer %s: %w", lb.ID(), err)
	}
	return b, nil
}

// RenderKeepalived renders a minimal keepalived VRRP instance for one
// amphora of an ACTIVE_STANDBY pair.
func RenderKeepalived(s *LBState, self Amp, amps []Amp) []byte {
	var peers []string
	for _, a := range amps {
		if a.ID != self.ID && a.VrrpIP != "" {
			peers = append(peers, a.VrrpIP)
		}
	}
	sort.Strings(peers)
	state := "BACKUP"
	if self.Role == "MASTER" {
		state = "MASTER"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "vrrp_instance %s {\n  state %s\n  priority %d\n  virtual_router_id 1\n  unicast_src_ip %s\n",
		strings.ReplaceAll(s.LBID, "-", ""), state, priorityOf(self.Role), self.VrrpIP)
	fmt.Fprintf(&b, "  unicast_peer {\n")
	for _, p := range peers {
		fmt.Fprintf(&b, "    %s\n", p)
	}
	fmt.Fprintf(&b, "  }\n  virtual_ipaddress {\n    %s\n  }\n}\n", s.VipAddress)
	return []byte(b.String())
}
