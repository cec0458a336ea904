package openstack

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"

	"github.com/ostia/ostia/sagas/ports"
)

// groupDescription marks the security groups this driver makes.
const groupDescription = "Ostia load balancer security group"

// groupCreateOpts adds tags (tag-creation extension) to the create body.
type groupCreateOpts struct {
	groups.CreateOpts
	Tags []string
}

func (o groupCreateOpts) ToSecGroupCreateMap() (map[string]any, error) {
	m, err := o.CreateOpts.ToSecGroupCreateMap()
	if err != nil {
		return nil, err
	}
	g, ok := m["security_group"].(map[string]any)
	if !ok {
		return nil, errors.New("openstack: unexpected security group create body")
	}
	if len(o.Tags) > 0 {
		g["tags"] = o.Tags
	}
	return m, nil
}

// CreateSecurityGroup implements ports.Network: POST
// /v2.0/security-groups, then PUT /v2.0/security-groups/{id}/tags (unless
// TagsOnCreate). Neutron adds its default egress rules; ingress starts
// empty.
func (d *Driver) CreateSecurityGroup(ctx context.Context, name string, tags map[string]string) (ports.SecurityGroup, error) {
	if name == "" {
		return ports.SecurityGroup{}, badInput("create security group: a name is required")
	}
	encoded, err := encodeTags(tags)
	if err != nil {
		return ports.SecurityGroup{}, err
	}
	opts := groupCreateOpts{CreateOpts: groups.CreateOpts{Name: name, Description: groupDescription}}
	if d.cfg.TagsOnCreate {
		opts.Tags = encoded
	}
	g, err := groups.Create(ctx, d.network, opts).Extract()
	if err != nil {
		return ports.SecurityGroup{}, classify("create security group "+name, err)
	}
	if !d.cfg.TagsOnCreate && len(encoded) > 0 {
		got, err := attributestags.ReplaceAll(ctx, d.network, tagResourceSecurityGroups, g.ID,
			attributestags.ReplaceAllOpts{Tags: encoded}).Extract()
		if err != nil {
			d.rollback(ctx, "security group", g.ID, func(ctx context.Context) error {
				return groups.Delete(ctx, d.network, g.ID).ExtractErr()
			})
			return ports.SecurityGroup{}, classify("tag security group "+g.ID, err)
		}
		g.Tags = got
	}
	return toSecurityGroup(g), nil
}

func toSecurityGroup(g *groups.SecGroup) ports.SecurityGroup {
	return ports.SecurityGroup{ID: g.ID, Name: g.Name, Tags: decodeTags(g.Tags), Rules: ingressRules(g.Rules)}
}

// ingressRules reports a group's ingress rules as port rules; the IPv4 and
// IPv6 pair made for one "any source" rule reads back as that one rule.
func ingressRules(in []rules.SecGroupRule) []ports.Rule {
	var out []ports.Rule
	for _, r := range in {
		if r.Direction != string(rules.DirIngress) {
			continue
		}
		pr := ports.Rule{Protocol: strings.ToLower(r.Protocol), CIDR: r.RemoteIPPrefix}
		if r.PortRangeMin == r.PortRangeMax {
			pr.Port = int32(r.PortRangeMin)
		}
		if p, err := netip.ParsePrefix(pr.CIDR); err == nil && p.Bits() == 0 {
			pr.CIDR = ""
		}
		if !slices.Contains(out, pr) {
			out = append(out, pr)
		}
	}
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

// FindSecurityGroups implements ports.Network: GET
// /v2.0/security-groups?name=...&tags=..., checked again here.
func (d *Driver) FindSecurityGroups(ctx context.Context, name string, tags map[string]string) ([]ports.SecurityGroup, error) {
	encoded, err := encodeTags(tags)
	if err != nil {
		return nil, err
	}
	pages, err := groups.List(d.network, groups.ListOpts{Name: name, Tags: strings.Join(encoded, ",")}).AllPages(ctx)
	if err != nil {
		return nil, classify("list security groups named "+name, err)
	}
	all, err := groups.ExtractGroups(pages)
	if err != nil {
		return nil, classify("read security groups named "+name, err)
	}
	var out []ports.SecurityGroup
	for i := range all {
		g := toSecurityGroup(&all[i])
		if (name == "" || g.Name == name) && contains(g.Tags, tags) {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ruleKey identifies an ingress rule for comparison.
type ruleKey struct {
	etherType  string
	protocol   string // normalised: tcp/udp/... or the number
	min, max   int
	prefix     string // canonical; "" for any
	remoteOpts string // remote group / address group: never ours
}

// wantRule is a rule to create.
type wantRule struct {
	key  ruleKey
	opts rules.CreateOpts
}

// normProtocol maps protocol names and their IANA numbers to one spelling
// (the name Neutron knows), so "112" and "vrrp" compare equal.
func normProtocol(p string) string {
	p = strings.ToLower(strings.TrimSpace(p))
	switch p {
	case "", "any", "null":
		return ""
	case "1":
		return "icmp"
	case "6":
		return "tcp"
	case "17":
		return "udp"
	case "132":
		return "sctp"
	case "112":
		return "vrrp"
	case "51":
		return "ah"
	case "58", "icmpv6":
		return "ipv6-icmp"
	}
	return p
}

func hasPorts(protocol string) bool {
	switch normProtocol(protocol) {
	case "tcp", "udp", "sctp", "udplite", "dccp":
		return true
	}
	return false
}

// desiredRules expands port rules into Neutron ingress rules: a CIDR gives
// one rule of its family, no CIDR gives an IPv4 and an IPv6 rule.
func desiredRules(groupID string, in []ports.Rule) ([]wantRule, error) {
	var out []wantRule
	for _, r := range in {
		proto := strings.ToLower(strings.TrimSpace(r.Protocol))
		if proto != "" && normProtocol(proto) == proto {
			if _, err := strconv.Atoi(proto); err != nil && !isProtocolName(proto) {
				return nil, badInput("security group %s: unknown protocol %q", groupID, r.Protocol)
			}
		}
		minPort, maxPort := 0, 0
		if r.Port != 0 {
			if !hasPorts(proto) {
				return nil, badInput("security group %s: protocol %q has no ports (port %d)", groupID, r.Protocol, r.Port)
			}
			if r.Port < 1 || r.Port > 65535 {
				return nil, badInput("security group %s: port %d out of range", groupID, r.Port)
			}
			minPort, maxPort = int(r.Port), int(r.Port)
		}
		families := []string{string(rules.EtherType4), string(rules.EtherType6)}
		prefix := ""
		if r.CIDR != "" {
			p, err := netip.ParsePrefix(r.CIDR)
			if err != nil {
				return nil, badInput("security group %s: bad CIDR %q: %v", groupID, r.CIDR, err)
			}
			p = p.Masked()
			families = families[:1]
			if p.Addr().Is6() {
				families = []string{string(rules.EtherType6)}
			}
			if p.Bits() != 0 {
				prefix = p.String()
			}
		}
		for _, fam := range families {
			w := wantRule{key: ruleKey{etherType: fam, protocol: normProtocol(proto), min: minPort, max: maxPort, prefix: prefix},
				opts: rules.CreateOpts{Direction: rules.DirIngress, EtherType: rules.RuleEtherType(fam), SecGroupID: groupID,
					Protocol: rules.RuleProtocol(proto), PortRangeMin: minPort, PortRangeMax: maxPort, RemoteIPPrefix: prefix}}
			if !slices.ContainsFunc(out, func(o wantRule) bool { return o.key == w.key }) {
				out = append(out, w)
			}
		}
	}
	return out, nil
}

func isProtocolName(p string) bool {
	switch p {
	case "ah", "dccp", "egp", "esp", "gre", "hopopt", "icmp", "igmp", "ipip", "ipv6-encap", "ipv6-frag", "ipv6-icmp",
		"ipv6-nonxt", "ipv6-opts", "ipv6-route", "ospf", "pgm", "rsvp", "sctp", "tcp", "udp", "udplite", "vrrp":
		return true
	}
	return false
}

func existingKey(r rules.SecGroupRule) ruleKey {
	k := ruleKey{etherType: r.EtherType, protocol: normProtocol(r.Protocol), min: r.PortRangeMin, max: r.PortRangeMax,
		remoteOpts: r.RemoteGroupID + "/" + r.RemoteAddressGroupID}
	if k.remoteOpts == "/" {
		k.remoteOpts = ""
	}
	if r.RemoteIPPrefix != "" {
		if p, err := netip.ParsePrefix(r.RemoteIPPrefix); err == nil {
			if p.Bits() != 0 {
				k.prefix = p.Masked().String()
			}
		} else {
			k.prefix = r.RemoteIPPrefix
		}
	}
	return k
}

// SetSecurityGroupRules implements ports.Network: GET
// /v2.0/security-groups/{id} for the current rules, POST
// /v2.0/security-group-rules for each missing ingress rule (a 409 "rule
// exists" is fine), then DELETE /v2.0/security-group-rules/{id} for each
// ingress rule not wanted (a 404 is fine). Egress rules are left alone.
// Adding before removing keeps wanted traffic flowing during the change.
func (d *Driver) SetSecurityGroupRules(ctx context.Context, groupID string, want []ports.Rule) error {
	desired, err := desiredRules(groupID, want)
	if err != nil {
		return err
	}
	g, err := groups.Get(ctx, d.network, groupID).Extract()
	if err != nil {
		return permanentNotFound("get security group "+groupID, err)
	}
	have := map[ruleKey]bool{}
	var extra []string
	for _, r := range g.Rules {
		if r.Direction != string(rules.DirIngress) {
			continue
		}
		k := existingKey(r)
		wanted := slices.ContainsFunc(desired, func(w wantRule) bool { return w.key == k })
		if !wanted || have[k] {
			extra = append(extra, r.ID)
			continue
		}
		have[k] = true
	}
	for _, w := range desired {
		if have[w.key] {
			continue
		}
		_, err := rules.Create(ctx, d.network, w.opts).Extract()
		if err != nil && !isStatus(err, 409) {
			return permanentNotFound(fmt.Sprintf("create %s %s/%d rule in security group %s", w.key.etherType, w.opts.Protocol,
				w.key.min, groupID), err)
		}
	}
	for _, id := range extra {
		err := rules.Delete(ctx, d.network, id).ExtractErr()
		if err != nil && !isStatus(err, 404) {
			return classify("delete rule "+id+" of security group "+groupID, err)
		}
	}
	return nil
}

// DeleteSecurityGroup implements ports.Network: DELETE
// /v2.0/security-groups/{id}; a missing group is fine, a group still in
// use by a port is a (transient) conflict.
func (d *Driver) DeleteSecurityGroup(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	err := groups.Delete(ctx, d.network, id).ExtractErr()
	if isStatus(err, 404) {
		return nil
	}
	return classify("delete security group "+id, err)
}
