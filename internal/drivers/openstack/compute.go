package openstack

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/attachinterfaces"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servergroups"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/ostia/ostia/sagas/ports"
)

// maxUserData is Nova's limit on base64-encoded user data.
const maxUserData = 65535

// serverGroupPageSize is the page size when listing server groups (Nova
// pages them with limit/offset and gives no next link).
const serverGroupPageSize = 500

// CreateServer implements ports.Compute: POST /servers with the image
// (resolved from the tag through Glance when an image client is set),
// flavor, management NICs, ownership metadata, availability zone,
// config_drive=true, the config-drive files as cloud-init write_files user
// data, and os:scheduler_hints.group for the server group.
func (d *Driver) CreateServer(ctx context.Context, spec ports.ServerSpec) (ports.Server, error) {
	if spec.Name == "" {
		return ports.Server{}, badInput("create server: a name is required")
	}
	imageID, err := d.resolveImage(ctx, spec.ImageTag)
	if err != nil {
		return ports.Server{}, err
	}
	userData, err := cloudConfig(spec.ConfigDrive)
	if err != nil {
		return ports.Server{}, err
	}
	nets := make([]servers.Network, 0, len(spec.NetworkIDs))
	for _, id := range spec.NetworkIDs {
		nets = append(nets, servers.Network{UUID: id})
	}
	configDrive := true
	opts := servers.CreateOpts{
		Name:             spec.Name,
		ImageRef:         imageID,
		FlavorRef:        spec.FlavorID,
		Networks:         nets,
		Metadata:         maps.Clone(spec.Metadata),
		AvailabilityZone: spec.Zone,
		ConfigDrive:      &configDrive,
		UserData:         userData,
	}
	if len(nets) == 0 {
		// Nova 2.37+ wants an explicit choice; no NIC is what was asked.
		opts.Networks = nil
		if microversionAtLeast(d.compute.Microversion, 2, 37) {
			opts.Networks = "none"
		}
	}
	var hints servers.SchedulerHintOptsBuilder
	if spec.ServerGroupID != "" {
		hints = servers.SchedulerHintOpts{Group: spec.ServerGroupID}
	}
	created, err := servers.Create(ctx, d.compute, opts, hints).Extract()
	if err != nil {
		return ports.Server{}, classify("create server "+spec.Name, err)
	}
	return ports.Server{ID: created.ID, Name: spec.Name, Status: ports.ServerBuild, Metadata: maps.Clone(spec.Metadata),
		Zone: spec.Zone, ImageID: imageID, FlavorID: spec.FlavorID}, nil
}

// resolveImage turns an image tag into an image ID: the newest active
// image with that tag (and owner, when configured).
func (d *Driver) resolveImage(ctx context.Context, tag string) (string, error) {
	if tag == "" {
		return "", badInput("create server: an image tag is required")
	}
	if d.image == nil {
		return tag, nil
	}
	pages, err := images.List(d.image, images.ListOpts{Tags: []string{tag}, Owner: d.cfg.ImageOwnerID,
		Status: images.ImageStatusActive, Sort: "created_at:desc"}).AllPages(ctx)
	if err != nil {
		return "", classify("list images tagged "+tag, err)
	}
	found, err := images.ExtractImages(pages)
	if err != nil {
		return "", classify("read images tagged "+tag, err)
	}
	if len(found) == 0 {
		return "", badInput("no active image tagged %q", tag)
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].CreatedAt.After(found[j].CreatedAt) })
	if len(found) > 1 {
		d.log.DebugContext(ctx, "several images carry the amphora tag; booting the newest", "tag", tag,
			"image", found[0].ID, "count", len(found))
	}
	return found[0].ID, nil
}

// cloudConfig renders config-drive files as a #cloud-config document whose
// write_files entries carry each file base64-encoded (mode 0600, they hold
// keys). With config_drive=true, Nova puts it on the config drive as user
// data; cloud-init in the amphora writes the files at first boot. (Nova's
// own file injection, "personality", is gone since microversion 2.57.)
func cloudConfig(files map[string][]byte) ([]byte, error) {
	if len(files) == 0 {
		return nil, nil
	}
	var b strings.Builder
	b.WriteString("#cloud-config\nwrite_files:\n")
	for _, path := range slices.Sorted(maps.Keys(files)) {
		if !strings.HasPrefix(path, "/") {
			return nil, badInput("config drive file %q: the path must be absolute", path)
		}
		fmt.Fprintf(&b, "- path: %s\n  encoding: b64\n  permissions: '0600'\n  owner: root:root\n  content: %s\n",
			strconv.Quote(path), base64.StdEncoding.EncodeToString(files[path]))
	}
	if base64.StdEncoding.EncodedLen(b.Len()) > maxUserData {
		return nil, badInput("config drive files make %d bytes of user data, more than Nova accepts", b.Len())
	}
	return []byte(b.String()), nil
}

// FindServers implements ports.Compute: GET /servers/detail filtered by
// the anchored, escaped name (Nova's name filter is a regular expression),
// then exact name and metadata matched here (Nova cannot filter on
// metadata).
func (d *Driver) FindServers(ctx context.Context, name string, metadata map[string]string) ([]ports.Server, error) {
	opts := servers.ListOpts{}
	if name != "" {
		opts.Name = "^" + regexp.QuoteMeta(name) + "$"
	}
	pages, err := servers.List(d.compute, opts).AllPages(ctx)
	if err != nil {
		return nil, classify("list servers named "+name, err)
	}
	all, err := servers.ExtractServers(pages)
	if err != nil {
		return nil, classify("read servers named "+name, err)
	}
	var out []ports.Server
	for i := range all {
		s := &all[i]
		if (name == "" || s.Name == name) && contains(s.Metadata, metadata) {
			out = append(out, d.toServer(s))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// GetServer implements ports.Compute: GET /servers/{id}; for an ACTIVE
// server with configured management networks, also GET
// /servers/{id}/os-interface for the management address.
func (d *Driver) GetServer(ctx context.Context, id string) (ports.Server, error) {
	if id == "" {
		return ports.Server{}, fmt.Errorf("openstack: get server with an empty id: %w", ports.ErrNotFound)
	}
	s, err := servers.Get(ctx, d.compute, id).Extract()
	if err != nil {
		return ports.Server{}, classify("get server "+id, err)
	}
	out := d.toServer(s)
	if s.Status == ports.ServerActive && len(d.cfg.ManagementNetworkIDs) > 0 {
		ip, err := d.managementIP(ctx, id)
		if err != nil {
			return ports.Server{}, err
		}
		out.ManagementIP = ip
	}
	return out, nil
}

func (d *Driver) managementIP(ctx context.Context, serverID string) (string, error) {
	pages, err := attachinterfaces.List(d.compute, serverID).AllPages(ctx)
	if err != nil {
		return "", classify("list interfaces of server "+serverID, err)
	}
	ifaces, err := attachinterfaces.ExtractInterfaces(pages)
	if err != nil {
		return "", classify("read interfaces of server "+serverID, err)
	}
	for _, net := range d.cfg.ManagementNetworkIDs {
		for _, iface := range ifaces {
			if iface.NetID == net && len(iface.FixedIPs) > 0 {
				return iface.FixedIPs[0].IPAddress, nil
			}
		}
	}
	return "", nil
}

func (d *Driver) toServer(s *servers.Server) ports.Server {
	out := ports.Server{ID: s.ID, Name: s.Name, Status: s.Status, Fault: s.Fault.Message, Metadata: maps.Clone(s.Metadata),
		Zone: s.AvailabilityZone, ManagementIP: firstFixedAddress(s.Addresses)}
	if out.Metadata == nil {
		out.Metadata = map[string]string{}
	}
	if id, ok := s.Image["id"].(string); ok {
		out.ImageID = id
	}
	if id, ok := s.Flavor["id"].(string); ok {
		out.FlavorID = id
	} else if name, ok := s.Flavor["original_name"].(string); ok {
		out.FlavorID = name // microversion 2.47+ embeds the flavor without its id
	}
	return out
}

// firstFixedAddress returns the first fixed (not floating) address Nova
// lists, taking networks in name order for a stable answer.
func firstFixedAddress(addresses map[string]any) string {
	for _, net := range slices.Sorted(maps.Keys(addresses)) {
		list, _ := addresses[net].([]any)
		for _, a := range list {
			m, _ := a.(map[string]any)
			if kind, _ := m["OS-EXT-IPS:type"].(string); kind == "floating" {
				continue
			}
			if addr, _ := m["addr"].(string); addr != "" {
				return addr
			}
		}
	}
	return ""
}

// DeleteServer implements ports.Compute: DELETE /servers/{id}; a missing
// server is fine.
func (d *Driver) DeleteServer(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	err := servers.Delete(ctx, d.compute, id).ExtractErr()
	if isStatus(err, 404) {
		return nil
	}
	return classify("delete server "+id, err)
}

// CreateServerGroup implements ports.Compute: POST /os-server-groups.
// Below microversion 2.64 the policy goes in "policies" (sent with 2.15,
// the first to accept soft-(anti-)affinity); from 2.64 in "policy".
func (d *Driver) CreateServerGroup(ctx context.Context, name, policy string) (ports.ServerGroup, error) {
	if name == "" || policy == "" {
		return ports.ServerGroup{}, badInput("create server group: name and policy are required")
	}
	client := *d.compute // a copy: the microversion is per request
	opts := servergroups.CreateOpts{Name: name}
	if microversionAtLeast(client.Microversion, 2, 64) {
		opts.Policy = policy
	} else {
		opts.Policies = []string{policy}
		if !microversionAtLeast(client.Microversion, 2, 15) {
			client.Microversion = "2.15"
		}
	}
	g, err := servergroups.Create(ctx, &client, opts).Extract()
	if err != nil {
		return ports.ServerGroup{}, classify("create server group "+name, err)
	}
	return toServerGroup(g), nil
}

func toServerGroup(g *servergroups.ServerGroup) ports.ServerGroup {
	out := ports.ServerGroup{ID: g.ID, Name: g.Name}
	switch {
	case g.Policy != nil:
		out.Policy = *g.Policy
	case len(g.Policies) > 0:
		out.Policy = g.Policies[0]
	}
	return out
}

// FindServerGroups implements ports.Compute: GET /os-server-groups (all
// pages; Nova has no name filter), matched by exact name here.
func (d *Driver) FindServerGroups(ctx context.Context, name string) ([]ports.ServerGroup, error) {
	var out []ports.ServerGroup
	for offset := 0; ; offset += serverGroupPageSize {
		page, err := servergroups.List(d.compute, servergroups.ListOpts{Limit: serverGroupPageSize, Offset: offset}).AllPages(ctx)
		if err != nil {
			return nil, classify("list server groups", err)
		}
		groups, err := servergroups.ExtractServerGroups(page)
		if err != nil {
			return nil, classify("read server groups", err)
		}
		for i := range groups {
			if groups[i].Name == name {
				out = append(out, toServerGroup(&groups[i]))
			}
		}
		if len(groups) < serverGroupPageSize {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// DeleteServerGroup implements ports.Compute: DELETE
// /os-server-groups/{id}; a missing group is fine.
func (d *Driver) DeleteServerGroup(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	err := servergroups.Delete(ctx, d.compute, id).ExtractErr()
	if isStatus(err, 404) {
		return nil
	}
	return classify("delete server group "+id, err)
}

// microversionAtLeast reports whether a "major.minor" microversion is at
// least major.minor (an empty one is the 2.1 base).
func microversionAtLeast(v string, major, minor int) bool {
	if v == "" {
		v = "2.1"
	}
	if v == "latest" {
		return true
	}
	ma, mi, ok := strings.Cut(v, ".")
	if !ok {
		return false
	}
	a, err1 := strconv.Atoi(ma)
	b, err2 := strconv.Atoi(mi)
	if err1 != nil || err2 != nil {
		return false
	}
	return a > major || (a == major && b >= minor)
}
