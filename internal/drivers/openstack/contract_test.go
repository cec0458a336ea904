package openstack

import (
	"context"
	"errors"
	"slices"
	"sort"
	"testing"

	th "github.com/gophercloud/gophercloud/v2/testhelper"

	"github.com/ostia/ostia/internal/drivers/noop"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// cloud is what the sagas see of the outside world's compute and network.
type cloud interface {
	ports.Compute
	ports.Network
}

// TestContract runs one behaviour suite against the in-memory noop cloud
// and against this driver talking to the fake Nova/Neutron, so both keep
// the semantics the sagas rely on.
func TestContract(t *testing.T) {
	t.Parallel()
	impls := map[string]func(t *testing.T) (cloud, string){
		"noop": func(*testing.T) (cloud, string) {
			c := noop.New(noop.Config{})
			c.AddSubnet(ports.Subnet{ID: memberSubnet, NetworkID: memberNetwork, CIDR: "192.168.50.0/24", GatewayIP: "192.168.50.1"})
			return c, "net-1"
		},
		"openstack": func(t *testing.T) (cloud, string) {
			fs := th.SetupHTTP()
			t.Cleanup(fs.Teardown)
			newFakeCloud(t, fs).addSubnet(memberSubnet, memberNetwork, "192.168.50.0/24", "192.168.50.1")
			compute, network, _ := clients(fs)
			d, err := New(Config{Compute: compute, Network: network})
			if err != nil {
				t.Fatal(err)
			}
			return d, "4e8e5957-649f-477b-9e5b-f1f75b21c03c"
		},
	}
	for name, mk := range impls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			t.Run("server groups", func(t *testing.T) { c, _ := mk(t); contractServerGroups(t, c) })
			t.Run("servers", func(t *testing.T) { c, net := mk(t); contractServers(t, c, net) })
			t.Run("ports", func(t *testing.T) { c, net := mk(t); contractPorts(t, c, net) })
			t.Run("security groups", func(t *testing.T) { c, net := mk(t); contractSecurityGroups(t, c, net) })
			t.Run("find or create", func(t *testing.T) { c, net := mk(t); contractFindOrCreate(t, c, net) })
			t.Run("member ports", func(t *testing.T) { c, net := mk(t); contractMemberPorts(t, c, net) })
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func contractServerGroups(t *testing.T, c cloud) {
	ctx := context.Background()
	g, err := c.CreateServerGroup(ctx, "octavia-lb-1", "anti-affinity")
	must(t, err)
	if g.ID == "" || g.Name != "octavia-lb-1" || g.Policy != "anti-affinity" {
		t.Fatalf("created %+v", g)
	}
	_, err = c.CreateServerGroup(ctx, "octavia-lb-10", "anti-affinity")
	must(t, err)
	found, err := c.FindServerGroups(ctx, "octavia-lb-1")
	must(t, err)
	if len(found) != 1 || found[0] != g {
		t.Fatalf("found %+v, want only %+v", found, g)
	}
	must(t, c.DeleteServerGroup(ctx, g.ID))
	must(t, c.DeleteServerGroup(ctx, g.ID)) // missing is fine
	if found, err := c.FindServerGroups(ctx, "octavia-lb-1"); err != nil || len(found) != 0 {
		t.Fatalf("after delete: %+v %v", found, err)
	}
}

func contractServers(t *testing.T, c cloud, net string) {
	ctx := context.Background()
	g, err := c.CreateServerGroup(ctx, "octavia-lb-1", "anti-affinity")
	must(t, err)
	meta := map[string]string{ports.TagLoadBalancerID: "lb-1", ports.TagAmphoraID: "amp-1", ports.TagSagaID: "saga-1"}
	s, err := c.CreateServer(ctx, ports.ServerSpec{Name: "amphora-amp-1", ImageTag: "amphora", FlavorID: "flavor-1",
		NetworkIDs: []string{net}, ServerGroupID: g.ID, Metadata: meta,
		ConfigDrive: map[string][]byte{"/etc/octavia/certs/server.pem": []byte("PEM")}})
	must(t, err)
	if s.ID == "" || s.Name != "amphora-amp-1" || s.Status != ports.ServerBuild || s.FlavorID != "flavor-1" || s.ImageID == "" {
		t.Fatalf("created %+v", s)
	}
	other, err := c.CreateServer(ctx, ports.ServerSpec{Name: "amphora-amp-10", ImageTag: "amphora", FlavorID: "flavor-1",
		NetworkIDs: []string{net}, Metadata: map[string]string{ports.TagLoadBalancerID: "lb-2"}})
	must(t, err)

	for _, tc := range []struct {
		name string
		meta map[string]string
		want []string
	}{
		{"amphora-amp-1", nil, []string{s.ID}},
		{"amphora-amp", nil, nil},
		{"amphora-amp-1", map[string]string{ports.TagLoadBalancerID: "lb-1"}, []string{s.ID}},
		{"amphora-amp-1", map[string]string{ports.TagLoadBalancerID: "lb-2"}, nil},
		{"", map[string]string{ports.TagLoadBalancerID: "lb-2"}, []string{other.ID}},
		{"", nil, []string{s.ID, other.ID}},
	} {
		found, err := c.FindServers(ctx, tc.name, tc.meta)
		must(t, err)
		var ids []string
		for _, f := range found {
			ids = append(ids, f.ID)
		}
		sort.Strings(ids)
		want := slices.Clone(tc.want)
		sort.Strings(want)
		if !slices.Equal(ids, want) {
			t.Errorf("FindServers(%q, %v) = %v, want %v", tc.name, tc.meta, ids, want)
		}
		if len(found) == 1 && found[0].ID == s.ID && found[0].Metadata[ports.TagAmphoraID] != "amp-1" {
			t.Errorf("metadata lost: %+v", found[0])
		}
	}

	var got ports.Server
	for range 5 {
		got, err = c.GetServer(ctx, s.ID)
		must(t, err)
		if got.Status == ports.ServerActive {
			break
		}
	}
	if got.Status != ports.ServerActive || got.ManagementIP == "" || got.Metadata[ports.TagLoadBalancerID] != "lb-1" {
		t.Fatalf("server never became usable: %+v", got)
	}
	if _, err := c.GetServer(ctx, "9f0c1a8e-0000-4000-8000-000000000999"); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("get missing server: %v", err)
	}
	must(t, c.DeleteServer(ctx, s.ID))
	must(t, c.DeleteServer(ctx, s.ID))
	if _, err := c.GetServer(ctx, s.ID); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("get deleted server: %v", err)
	}
}

func contractPorts(t *testing.T, c cloud, net string) {
	ctx := context.Background()
	tags := map[string]string{ports.TagLoadBalancerID: "lb-1", ports.TagAmphoraID: "amp-1"}
	p, err := c.CreatePort(ctx, ports.PortSpec{Name: "octavia-lb-vrrp-amp-1", NetworkID: net, SubnetID: "subnet-1",
		AdminStateUp: true, DeviceOwner: "Octavia", Tags: tags})
	must(t, err)
	if p.ID == "" || p.IP == "" || p.Tags[ports.TagLoadBalancerID] != "lb-1" || p.NetworkID != net {
		t.Fatalf("created %+v", p)
	}
	_, err = c.CreatePort(ctx, ports.PortSpec{Name: "octavia-lb-vrrp-amp-2", NetworkID: net, SubnetID: "subnet-1",
		Tags: map[string]string{ports.TagLoadBalancerID: "lb-2"}})
	must(t, err)
	for _, tc := range []struct {
		name string
		tags map[string]string
		want int
	}{
		{"octavia-lb-vrrp-amp-1", nil, 1},
		{"octavia-lb-vrrp-amp", nil, 0},
		{"", map[string]string{ports.TagLoadBalancerID: "lb-1"}, 1},
		{"octavia-lb-vrrp-amp-1", map[string]string{ports.TagLoadBalancerID: "lb-2"}, 0},
		{"", nil, 2},
	} {
		found, err := c.FindPorts(ctx, tc.name, tc.tags)
		must(t, err)
		if len(found) != tc.want {
			t.Errorf("FindPorts(%q, %v) = %d ports, want %d", tc.name, tc.tags, len(found), tc.want)
		}
	}
	got, err := c.GetPort(ctx, p.ID)
	must(t, err)
	if got.IP != p.IP || got.MAC == "" || got.SubnetCIDR == "" || got.GatewayIP == "" || got.MTU == 0 {
		t.Fatalf("get port %+v", got)
	}

	srv, err := c.CreateServer(ctx, ports.ServerSpec{Name: "amphora-amp-1", ImageTag: "amphora", FlavorID: "f", NetworkIDs: []string{net}})
	must(t, err)
	must(t, c.PlugPort(ctx, srv.ID, p.ID))
	must(t, c.PlugPort(ctx, srv.ID, p.ID)) // already there: fine
	if got, _ := c.GetPort(ctx, p.ID); got.DeviceID != srv.ID {
		t.Fatalf("plugged port device %q", got.DeviceID)
	}
	err = c.PlugPort(ctx, "9f0c1a8e-0000-4000-8000-000000000999", p.ID)
	if err == nil || saga.Classify(err) != saga.KindPermanent {
		t.Fatalf("plug into a missing server: %v", err)
	}
	must(t, c.SetAllowedAddressPairs(ctx, p.ID, []string{"10.0.0.100"}))
	if got, _ := c.GetPort(ctx, p.ID); !slices.Equal(got.AllowedAddressPairs, []string{"10.0.0.100"}) {
		t.Fatalf("pairs %v", got.AllowedAddressPairs)
	}
	must(t, c.UnplugPort(ctx, srv.ID, p.ID))
	must(t, c.UnplugPort(ctx, srv.ID, p.ID)) // not attached: fine
	if got, _ := c.GetPort(ctx, p.ID); got.DeviceID != "" {
		t.Fatalf("unplugged port device %q", got.DeviceID)
	}
	must(t, c.DeletePort(ctx, p.ID))
	must(t, c.DeletePort(ctx, p.ID))
	if _, err := c.GetPort(ctx, p.ID); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("get deleted port: %v", err)
	}
	if err := c.SetAllowedAddressPairs(ctx, p.ID, nil); !errors.Is(err, ports.ErrNotFound) || saga.Classify(err) != saga.KindPermanent {
		t.Fatalf("pairs on a deleted port: %v", err)
	}
}

func sortRules(r []ports.Rule) []ports.Rule {
	out := slices.Clone(r)
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.CIDR < b.CIDR
	})
	return out
}

func contractSecurityGroups(t *testing.T, c cloud, net string) {
	ctx := context.Background()
	tags := map[string]string{ports.TagLoadBalancerID: "lb-1"}
	g, err := c.CreateSecurityGroup(ctx, "lb-lb-1", tags)
	must(t, err)
	if g.ID == "" || g.Name != "lb-lb-1" || g.Tags[ports.TagLoadBalancerID] != "lb-1" || len(g.Rules) != 0 {
		t.Fatalf("created %+v", g)
	}
	check := func(want []ports.Rule) {
		t.Helper()
		found, err := c.FindSecurityGroups(ctx, "lb-lb-1", tags)
		must(t, err)
		if len(found) != 1 || found[0].ID != g.ID {
			t.Fatalf("found %+v", found)
		}
		if got := sortRules(found[0].Rules); !slices.Equal(got, sortRules(want)) {
			t.Fatalf("rules %v, want %v", got, sortRules(want))
		}
	}
	first := []ports.Rule{{Protocol: "tcp", Port: 80}, {Protocol: "tcp", Port: 443, CIDR: "10.0.0.0/8"}, {Protocol: "112"}}
	must(t, c.SetSecurityGroupRules(ctx, g.ID, first))
	check(first)
	must(t, c.SetSecurityGroupRules(ctx, g.ID, first)) // again: nothing changes
	check(first)
	second := []ports.Rule{{Protocol: "udp", Port: 53}, {Protocol: "tcp", Port: 443, CIDR: "10.0.0.0/8"}}
	must(t, c.SetSecurityGroupRules(ctx, g.ID, second))
	check(second)
	if found, _ := c.FindSecurityGroups(ctx, "lb-lb-1", map[string]string{ports.TagLoadBalancerID: "lb-2"}); len(found) != 0 {
		t.Fatalf("found a group by someone else's tag: %+v", found)
	}
	if err := c.SetSecurityGroupRules(ctx, "9f0c1a8e-0000-4000-8000-000000000999", second); saga.Classify(err) != saga.KindPermanent {
		t.Fatalf("rules of a missing group: %v", err)
	}

	p, err := c.CreatePort(ctx, ports.PortSpec{Name: "vip", NetworkID: net, SubnetID: "subnet-1", Tags: tags})
	must(t, err)
	must(t, c.SetPortSecurityGroups(ctx, p.ID, []string{g.ID}))
	if got, _ := c.GetPort(ctx, p.ID); !slices.Equal(got.SecurityGroupIDs, []string{g.ID}) {
		t.Fatalf("port groups %v", got.SecurityGroupIDs)
	}
	if err := c.DeleteSecurityGroup(ctx, g.ID); saga.Classify(err) != saga.KindTransient {
		t.Fatalf("delete a group in use: %v", err)
	}
	must(t, c.SetPortSecurityGroups(ctx, p.ID, nil))
	must(t, c.DeleteSecurityGroup(ctx, g.ID))
	must(t, c.DeleteSecurityGroup(ctx, g.ID))
}

// contractFindOrCreate is the sagas' idempotent step shape: find by
// deterministic name, adopt what carries our tag, create only when nothing
// is there. Running it twice must leave one port and one server.
func contractFindOrCreate(t *testing.T, c cloud, net string) {
	ctx := context.Background()
	tags := map[string]string{ports.TagLoadBalancerID: "lb-1", ports.TagSagaID: "saga-1"}
	ensurePort := func() string {
		found, err := c.FindPorts(ctx, "octavia-lb-lb-1", nil)
		must(t, err)
		for _, p := range found {
			if p.Tags[ports.TagLoadBalancerID] != "lb-1" {
				t.Fatalf("port %s is not ours", p.ID)
			}
			return p.ID
		}
		p, err := c.CreatePort(ctx, ports.PortSpec{Name: "octavia-lb-lb-1", NetworkID: net, SubnetID: "subnet-1",
			FixedIP: "10.0.0.50", DeviceOwner: "Octavia", Tags: tags})
		must(t, err)
		return p.ID
	}
	ensureServer := func() string {
		found, err := c.FindServers(ctx, "amphora-a1", nil)
		must(t, err)
		if len(found) > 0 {
			return found[0].ID
		}
		s, err := c.CreateServer(ctx, ports.ServerSpec{Name: "amphora-a1", ImageTag: "amphora", FlavorID: "f",
			NetworkIDs: []string{net}, Metadata: tags})
		must(t, err)
		return s.ID
	}
	p1, p2 := ensurePort(), ensurePort()
	s1, s2 := ensureServer(), ensureServer()
	if p1 != p2 || s1 != s2 {
		t.Fatalf("find-or-create made duplicates: ports %s %s, servers %s %s", p1, p2, s1, s2)
	}
	if got, _ := c.GetPort(ctx, p1); got.IP != "10.0.0.50" {
		t.Fatalf("fixed IP %q", got.IP)
	}
	all, err := c.FindPorts(ctx, "", map[string]string{ports.TagSagaID: "saga-1"})
	must(t, err)
	if len(all) != 1 {
		t.Fatalf("%d ports", len(all))
	}
}

// A member subnet with a network of its own, known to both clouds.
const (
	memberSubnet  = "5c1e2d3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
	memberNetwork = "0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d"
)

// contractMemberPorts is what the member network delta does: resolve the
// member subnet to its network, create a port there tagged with the
// amphora and the subnet, find it again by tags, attach, detach, delete.
func contractMemberPorts(t *testing.T, c cloud, net string) {
	ctx := context.Background()
	sn, err := c.GetSubnet(ctx, memberSubnet)
	must(t, err)
	if sn.ID != memberSubnet || sn.NetworkID != memberNetwork || sn.CIDR != "192.168.50.0/24" || sn.GatewayIP != "192.168.50.1" {
		t.Fatalf("subnet %+v", sn)
	}
	if _, err := c.GetSubnet(ctx, ""); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("subnet without id: %v", err)
	}
	srv, err := c.CreateServer(ctx, ports.ServerSpec{Name: "amphora-amp-1", ImageTag: "amphora", FlavorID: "f", NetworkIDs: []string{net}})
	must(t, err)
	tags := map[string]string{ports.TagLoadBalancerID: "lb-1", ports.TagAmphoraID: "amp-1", ports.TagMemberSubnet: sn.ID}
	p, err := c.CreatePort(ctx, ports.PortSpec{Name: "octavia-lb-member-amp-1-" + sn.ID, NetworkID: sn.NetworkID, SubnetID: sn.ID,
		AdminStateUp: true, DeviceOwner: "Octavia", Tags: tags})
	must(t, err)
	if p.NetworkID != memberNetwork || p.SubnetID != memberSubnet || p.MAC == "" || p.IP == "" {
		t.Fatalf("member port %+v", p)
	}
	for _, tc := range []struct {
		tags map[string]string
		want int
	}{
		{map[string]string{ports.TagLoadBalancerID: "lb-1", ports.TagAmphoraID: "amp-1"}, 1},
		{tags, 1},
		{map[string]string{ports.TagLoadBalancerID: "lb-1", ports.TagMemberSubnet: "another-subnet"}, 0},
		{map[string]string{ports.TagLoadBalancerID: "lb-1", ports.TagAmphoraID: "amp-2"}, 0},
	} {
		found, err := c.FindPorts(ctx, "", tc.tags)
		must(t, err)
		if len(found) != tc.want || (tc.want == 1 && (found[0].ID != p.ID || found[0].Tags[ports.TagMemberSubnet] != sn.ID)) {
			t.Errorf("FindPorts(%v) = %+v, want %d", tc.tags, found, tc.want)
		}
	}
	must(t, c.PlugPort(ctx, srv.ID, p.ID))
	got, err := c.GetPort(ctx, p.ID)
	must(t, err)
	if got.DeviceID != srv.ID || got.SubnetCIDR != "192.168.50.0/24" || got.GatewayIP != "192.168.50.1" || got.MTU == 0 {
		t.Fatalf("plugged member port %+v", got)
	}
	must(t, c.UnplugPort(ctx, srv.ID, p.ID))
	must(t, c.DeletePort(ctx, p.ID))
	if found, err := c.FindPorts(ctx, "", tags); err != nil || len(found) != 0 {
		t.Fatalf("after delete: %+v %v", found, err)
	}
}
