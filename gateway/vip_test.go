package gateway_test

import (
	"testing"

	"github.com/ostia/ostia/internal/drivers/noop"
	"github.com/ostia/ostia/sagas/lbflows"
)

// With a VIP allocator the API allocates the VIP port before it stores the
// create, as Octavia's API does: the 201 shows the VIP. A create refused by
// validation allocates nothing; one refused after the allocation (quota)
// gives the port back.
func TestCreateAllocatesTheVIPInTheAPI(t *testing.T) {
	t.Parallel()
	cloud := noop.New(noop.Config{})
	tok := tokens{
		"admin":     {UserID: "u4", ProjectID: "admin", Roles: []string{"admin", "member", "reader"}, IsAdmin: true},
		"member-p1": {UserID: "u1", ProjectID: "p1", Roles: []string{"member", "reader"}},
	}
	e := newAPIEnv(t, envOptions{validator: tok, enforceQuotas: true, vips: &lbflows.VIPAllocator{Network: cloud}})
	L := "/v2/lbaas"
	e.headers.Set("X-Auth-Token", "member-p1")

	r := e.must(201, "POST", L+"/loadbalancers", map[string]any{"loadbalancer": map[string]any{"vip_subnet_id": subnet}})
	lb := r.body["loadbalancer"].(map[string]any)
	ps := cloud.Ports()
	if len(ps) != 1 {
		t.Fatalf("%d ports after one create", len(ps))
	}
	p := ps[0]
	if lb["vip_port_id"] != p.ID || lb["vip_address"] != p.IP || lb["vip_network_id"] != p.NetworkID || p.NetworkID == "" {
		t.Fatalf("201 VIP %v %v %v, port %+v", lb["vip_port_id"], lb["vip_address"], lb["vip_network_id"], p)
	}
	if p.Name != "octavia-lb-"+lb["id"].(string) {
		t.Fatalf("VIP port named %q", p.Name)
	}
	got := e.must(200, "GET", L+"/loadbalancers/"+lb["id"].(string), nil).body["loadbalancer"].(map[string]any)
	if got["vip_address"] != p.IP {
		t.Fatalf("GET right after: vip_address %v", got["vip_address"])
	}

	// Refused by validation: nothing allocated.
	e.must(400, "POST", L+"/loadbalancers", map[string]any{"loadbalancer": map[string]any{"vip_subnet_id": subnet,
		"listeners": []any{map[string]any{"protocol": "HTTP", "protocol_port": 99999}}}})
	if n := len(cloud.Ports()); n != 1 {
		t.Fatalf("%d ports after a create refused by validation", n)
	}

	// Refused by the quota after the allocation: the port is given back.
	e.headers.Set("X-Auth-Token", "admin")
	e.must(202, "PUT", L+"/quotas/p1", map[string]any{"quota": map[string]any{"load_balancer": 1}})
	e.headers.Set("X-Auth-Token", "member-p1")
	e.must(403, "POST", L+"/loadbalancers", map[string]any{"loadbalancer": map[string]any{"vip_subnet_id": subnet}})
	if n := len(cloud.Ports()); n != 1 {
		t.Fatalf("%d ports after a create refused by the quota", n)
	}
}
