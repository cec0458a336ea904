package openstack

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	th "github.com/gophercloud/gophercloud/v2/testhelper"
	fake "github.com/gophercloud/gophercloud/v2/testhelper/client"
)

// Endpoint prefixes of the fake services, as a catalog would give them.
const (
	computePrefix = "/compute/v2.1"
	networkPrefix = "/network/v2.0"
	imagePrefix   = "/image/v2"
)

// clients returns compute, network and image clients aimed at the fake
// server the way openstack.NewComputeV2 / NewNetworkV2 / NewImageV2 would.
func clients(fs th.FakeServer) (compute, network, image *gophercloud.ServiceClient) {
	c := fake.ServiceClient(fs)
	c.Endpoint = fs.Endpoint() + "compute/v2.1/"
	c.Type = "compute"
	n := fake.ServiceClient(fs)
	n.Endpoint = fs.Endpoint() + "network/"
	n.ResourceBase = n.Endpoint + "v2.0/"
	n.Type = "network"
	i := fake.ServiceClient(fs)
	i.Endpoint = fs.Endpoint() + "image/"
	i.ResourceBase = i.Endpoint + "v2/"
	i.Type = "image"
	return c, n, i
}

// fakeCloud is a small stateful Nova + Neutron on a testhelper server: just
// enough of both APIs for the behaviour suite, with Nova's and Neutron's
// status codes for the cases the driver cares about.
type fakeCloud struct {
	t  *testing.T
	mu sync.Mutex
	n  int

	servers map[string]map[string]any // Nova server documents
	polls   map[string]int
	groups  map[string]map[string]any
	ports   map[string]map[string]any
	sgs     map[string]map[string]any
	rules   map[string]map[string]any // rule id -> rule (security_group_id inside)
	// subnets are subnets with their own network; any other id is a
	// subnet of net-1 (10.0.0.0/24), except ids starting "missing-" (404).
	subnets map[string]map[string]any
}

func newFakeCloud(t *testing.T, fs th.FakeServer) *fakeCloud {
	f := &fakeCloud{t: t, servers: map[string]map[string]any{}, polls: map[string]int{}, groups: map[string]map[string]any{},
		ports: map[string]map[string]any{}, sgs: map[string]map[string]any{}, rules: map[string]map[string]any{}}
	m := fs.Mux
	m.HandleFunc("POST "+computePrefix+"/servers", f.createServer)
	m.HandleFunc("GET "+computePrefix+"/servers/detail", f.listServers)
	m.HandleFunc("GET "+computePrefix+"/servers/{id}", f.getServer)
	m.HandleFunc("DELETE "+computePrefix+"/servers/{id}", f.deleteServer)
	m.HandleFunc("GET "+computePrefix+"/servers/{id}/os-interface", f.listInterfaces)
	m.HandleFunc("POST "+computePrefix+"/servers/{id}/os-interface", f.attach)
	m.HandleFunc("DELETE "+computePrefix+"/servers/{id}/os-interface/{port}", f.detach)
	m.HandleFunc("POST "+computePrefix+"/os-server-groups", f.createGroup)
	m.HandleFunc("GET "+computePrefix+"/os-server-groups", f.listGroups)
	m.HandleFunc("DELETE "+computePrefix+"/os-server-groups/{id}", f.deleteGroup)
	m.HandleFunc("POST "+networkPrefix+"/ports", f.createPort)
	m.HandleFunc("GET "+networkPrefix+"/ports", f.listPorts)
	m.HandleFunc("GET "+networkPrefix+"/ports/{id}", f.getPort)
	m.HandleFunc("PUT "+networkPrefix+"/ports/{id}", f.updatePort)
	m.HandleFunc("DELETE "+networkPrefix+"/ports/{id}", f.deletePort)
	m.HandleFunc("PUT "+networkPrefix+"/{kind}/{id}/tags", f.replaceTags)
	m.HandleFunc("GET "+networkPrefix+"/subnets/{id}", f.getSubnet)
	m.HandleFunc("GET "+networkPrefix+"/networks/{id}", f.getNetwork)
	m.HandleFunc("POST "+networkPrefix+"/security-groups", f.createSG)
	m.HandleFunc("GET "+networkPrefix+"/security-groups", f.listSGs)
	m.HandleFunc("GET "+networkPrefix+"/security-groups/{id}", f.getSG)
	m.HandleFunc("DELETE "+networkPrefix+"/security-groups/{id}", f.deleteSG)
	m.HandleFunc("POST "+networkPrefix+"/security-group-rules", f.createRule)
	m.HandleFunc("DELETE "+networkPrefix+"/security-group-rules/{id}", f.deleteRule)
	return f
}

// uuid returns the next id in a UUID v4 shape (gophercloud checks the
// shape of scheduler-hint group ids).
func (f *fakeCloud) uuid() string {
	f.n++
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", f.n, f.n)
}

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if body != nil {
		_ = json.NewEncoder(w).Encode(body)
	}
}

func novaError(w http.ResponseWriter, status int, kind, msg string) {
	reply(w, status, map[string]any{kind: map[string]any{"code": status, "message": msg}})
}

func neutronError(w http.ResponseWriter, status int, kind, msg string) {
	reply(w, status, map[string]any{"NeutronError": map[string]any{"type": kind, "message": msg, "detail": ""}})
}

func (f *fakeCloud) decode(r *http.Request, key string) map[string]any {
	var body map[string]map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.t.Errorf("%s %s: bad JSON: %v", r.Method, r.URL.Path, err)
	}
	return body[key]
}

func strs(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func (f *fakeCloud) createServer(w http.ResponseWriter, r *http.Request) {
	var body map[string]map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.t.Errorf("create server: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := body["server"]
	if g, ok := body["os:scheduler_hints"]["group"].(string); ok {
		if _, ok := f.groups[g]; !ok {
			novaError(w, 400, "badRequest", "Invalid server group "+g)
			return
		}
	}
	id := f.uuid()
	meta := map[string]any{}
	if m, ok := s["metadata"].(map[string]any); ok {
		meta = m
	}
	addresses := map[string]any{}
	if nets, ok := s["networks"].([]any); ok && len(nets) > 0 {
		addresses["lb-mgmt-net"] = []any{map[string]any{"version": 4, "addr": fmt.Sprintf("192.168.0.%d", f.n),
			"OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}}
	}
	f.servers[id] = map[string]any{"id": id, "name": s["name"], "status": "BUILD", "metadata": meta, "addresses": addresses,
		"image": map[string]any{"id": s["imageRef"], "links": []any{}}, "flavor": map[string]any{"id": s["flavorRef"], "links": []any{}},
		"OS-EXT-AZ:availability_zone": s["availability_zone"], "created": "2025-01-01T00:00:00Z", "updated": "2025-01-01T00:00:00Z",
		"config_drive": "True", "tenant_id": "p1", "user_id": "u1"}
	reply(w, 202, map[string]any{"server": map[string]any{"id": id, "OS-DCF:diskConfig": "MANUAL", "adminPass": "secret",
		"security_groups": []any{map[string]any{"name": "default"}}, "links": []any{}}})
}

func (f *fakeCloud) listServers(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var re *regexp.Regexp
	if n := r.URL.Query().Get("name"); n != "" {
		re = regexp.MustCompile(n) // Nova: a regular expression search
	}
	out := []any{}
	for _, id := range sortedKeys(f.servers) {
		s := f.servers[id]
		if re == nil || re.MatchString(s["name"].(string)) {
			out = append(out, s)
		}
	}
	reply(w, 200, map[string]any{"servers": out})
}

func (f *fakeCloud) getServer(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	s, ok := f.servers[id]
	if !ok {
		novaError(w, 404, "itemNotFound", "Instance "+id+" could not be found.")
		return
	}
	f.polls[id]++
	if f.polls[id] > 1 {
		s["status"] = "ACTIVE"
	}
	reply(w, 200, map[string]any{"server": s})
}

func (f *fakeCloud) deleteServer(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	if _, ok := f.servers[id]; !ok {
		novaError(w, 404, "itemNotFound", "Instance "+id+" could not be found.")
		return
	}
	delete(f.servers, id)
	for _, p := range f.ports {
		if p["device_id"] == id {
			p["device_id"], p["device_owner"] = "", ""
		}
	}
	w.WriteHeader(204)
}

func (f *fakeCloud) iface(p map[string]any) map[string]any {
	return map[string]any{"port_id": p["id"], "net_id": p["network_id"], "mac_addr": p["mac_address"], "port_state": "ACTIVE",
		"fixed_ips": p["fixed_ips"]}
}

func (f *fakeCloud) listInterfaces(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	if _, ok := f.servers[id]; !ok {
		novaError(w, 404, "itemNotFound", "Instance "+id+" could not be found.")
		return
	}
	out := []any{}
	for _, pid := range sortedKeys(f.ports) {
		if p := f.ports[pid]; p["device_id"] == id {
			out = append(out, f.iface(p))
		}
	}
	reply(w, 200, map[string]any{"interfaceAttachments": out})
}

func (f *fakeCloud) attach(w http.ResponseWriter, r *http.Request) {
	body := f.decode(r, "interfaceAttachment")
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	if _, ok := f.servers[id]; !ok {
		novaError(w, 404, "itemNotFound", "Instance "+id+" could not be found.")
		return
	}
	pid, _ := body["port_id"].(string)
	p, ok := f.ports[pid]
	if !ok {
		novaError(w, 404, "itemNotFound", "Port "+pid+" could not be found.")
		return
	}
	if p["device_id"] != "" {
		novaError(w, 409, "conflictingRequest", "Port "+pid+" is still in use.")
		return
	}
	p["device_id"], p["device_owner"] = id, "compute:nova"
	reply(w, 200, map[string]any{"interfaceAttachment": f.iface(p)})
}

func (f *fakeCloud) detach(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, pid := r.PathValue("id"), r.PathValue("port")
	p, ok := f.ports[pid]
	if _, sok := f.servers[id]; !sok || !ok || p["device_id"] != id {
		novaError(w, 404, "itemNotFound", "Port "+pid+" is not attached")
		return
	}
	p["device_id"], p["device_owner"] = "", ""
	w.WriteHeader(202)
}

func (f *fakeCloud) createGroup(w http.ResponseWriter, r *http.Request) {
	body := f.decode(r, "server_group")
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.uuid()
	g := map[string]any{"id": id, "name": body["name"], "policies": body["policies"], "members": []any{}, "metadata": map[string]any{}}
	f.groups[id] = g
	reply(w, 200, map[string]any{"server_group": g})
}

func (f *fakeCloud) listGroups(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	out := []any{}
	for i, id := range sortedKeys(f.groups) {
		if i >= offset && (limit == 0 || len(out) < limit) {
			out = append(out, f.groups[id])
		}
	}
	reply(w, 200, map[string]any{"server_groups": out})
}

func (f *fakeCloud) deleteGroup(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	if _, ok := f.groups[id]; !ok {
		novaError(w, 404, "itemNotFound", "Server group "+id+" could not be found.")
		return
	}
	delete(f.groups, id)
	w.WriteHeader(204)
}

func (f *fakeCloud) createPort(w http.ResponseWriter, r *http.Request) {
	body := f.decode(r, "port")
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.uuid()
	ip := fmt.Sprintf("10.0.0.%d", f.n)
	subnet := "subnet-1"
	if fips, ok := body["fixed_ips"].([]any); ok && len(fips) > 0 {
		fip := fips[0].(map[string]any)
		if s, ok := fip["subnet_id"].(string); ok {
			subnet = s
		}
		if a, ok := fip["ip_address"].(string); ok {
			ip = a
		}
	}
	tags := strs(body["tags"])
	if tags == nil {
		tags = []string{}
	}
	p := map[string]any{"id": id, "name": body["name"], "network_id": body["network_id"], "admin_state_up": body["admin_state_up"],
		"status": "DOWN", "mac_address": fmt.Sprintf("fa:16:3e:00:00:%02x", f.n%256),
		"fixed_ips": []any{map[string]any{"subnet_id": subnet, "ip_address": ip}}, "device_id": "", "device_owner": body["device_owner"],
		"security_groups": []any{}, "allowed_address_pairs": []any{}, "tags": tags, "project_id": "p1",
		"created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z", "revision_number": 1}
	f.ports[id] = p
	reply(w, 201, map[string]any{"port": p})
}

func hasTags(have []string, want string) bool {
	if want == "" {
		return true
	}
	for _, t := range strings.Split(want, ",") {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

func (f *fakeCloud) listPorts(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	out := []any{}
	for _, id := range sortedKeys(f.ports) {
		p := f.ports[id]
		if (q.Get("name") == "" || p["name"] == q.Get("name")) && hasTags(toStrings(p["tags"]), q.Get("tags")) {
			out = append(out, p)
		}
	}
	reply(w, 200, map[string]any{"ports": out})
}

func toStrings(v any) []string {
	if s, ok := v.([]string); ok {
		return s
	}
	return strs(v)
}

func (f *fakeCloud) getPort(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.ports[r.PathValue("id")]
	if !ok {
		neutronError(w, 404, "PortNotFound", "Port "+r.PathValue("id")+" could not be found.")
		return
	}
	reply(w, 200, map[string]any{"port": p})
}

func (f *fakeCloud) updatePort(w http.ResponseWriter, r *http.Request) {
	body := f.decode(r, "port")
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.ports[r.PathValue("id")]
	if !ok {
		neutronError(w, 404, "PortNotFound", "Port "+r.PathValue("id")+" could not be found.")
		return
	}
	for k, v := range body {
		p[k] = v
	}
	reply(w, 200, map[string]any{"port": p})
}

func (f *fakeCloud) deletePort(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.ports[r.PathValue("id")]; !ok {
		neutronError(w, 404, "PortNotFound", "Port "+r.PathValue("id")+" could not be found.")
		return
	}
	delete(f.ports, r.PathValue("id"))
	w.WriteHeader(204)
}

func (f *fakeCloud) replaceTags(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Tags []string `json:"tags"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.t.Errorf("replace tags: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var res map[string]any
	switch r.PathValue("kind") {
	case "ports":
		res = f.ports[r.PathValue("id")]
	case "security-groups":
		res = f.sgs[r.PathValue("id")]
	}
	if res == nil {
		neutronError(w, 404, "NotFound", "resource not found")
		return
	}
	res["tags"] = body.Tags
	reply(w, 200, map[string]any{"tags": body.Tags})
}

func (f *fakeCloud) getSubnet(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	if sn, ok := f.subnets[id]; ok {
		reply(w, 200, map[string]any{"subnet": sn})
		return
	}
	if strings.HasPrefix(id, "missing-") {
		neutronError(w, 404, "SubnetNotFound", "Subnet "+id+" could not be found.")
		return
	}
	reply(w, 200, map[string]any{"subnet": map[string]any{"id": id, "network_id": "net-1", "cidr": "10.0.0.0/24",
		"gateway_ip": "10.0.0.1", "ip_version": 4, "enable_dhcp": true}})
}

// addSubnet registers a subnet of its own network.
func (f *fakeCloud) addSubnet(id, network, cidr, gateway string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subnets == nil {
		f.subnets = map[string]map[string]any{}
	}
	f.subnets[id] = map[string]any{"id": id, "network_id": network, "cidr": cidr, "gateway_ip": gateway, "ip_version": 4,
		"enable_dhcp": true}
}

func (f *fakeCloud) getNetwork(w http.ResponseWriter, r *http.Request) {
	reply(w, 200, map[string]any{"network": map[string]any{"id": r.PathValue("id"), "name": "vip-net", "mtu": 1450,
		"status": "ACTIVE", "admin_state_up": true}})
}

func (f *fakeCloud) sgDoc(id string) map[string]any {
	g := f.sgs[id]
	rs := []any{}
	for _, rid := range sortedKeys(f.rules) {
		if f.rules[rid]["security_group_id"] == id {
			rs = append(rs, f.rules[rid])
		}
	}
	g["security_group_rules"] = rs
	return g
}

func (f *fakeCloud) createSG(w http.ResponseWriter, r *http.Request) {
	body := f.decode(r, "security_group")
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.uuid()
	tags := strs(body["tags"])
	if tags == nil {
		tags = []string{}
	}
	f.sgs[id] = map[string]any{"id": id, "name": body["name"], "description": body["description"], "tags": tags, "stateful": true,
		"project_id": "p1", "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"}
	for _, fam := range []string{"IPv4", "IPv6"} {
		rid := f.uuid()
		f.rules[rid] = map[string]any{"id": rid, "security_group_id": id, "direction": "egress", "ethertype": fam, "protocol": nil,
			"port_range_min": nil, "port_range_max": nil, "remote_ip_prefix": nil, "remote_group_id": nil}
	}
	reply(w, 201, map[string]any{"security_group": f.sgDoc(id)})
}

func (f *fakeCloud) listSGs(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	out := []any{}
	for _, id := range sortedKeys(f.sgs) {
		g := f.sgDoc(id)
		if (q.Get("name") == "" || g["name"] == q.Get("name")) && hasTags(toStrings(g["tags"]), q.Get("tags")) {
			out = append(out, g)
		}
	}
	reply(w, 200, map[string]any{"security_groups": out})
}

func (f *fakeCloud) getSG(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sgs[r.PathValue("id")]; !ok {
		neutronError(w, 404, "SecurityGroupNotFound", "Security group "+r.PathValue("id")+" does not exist")
		return
	}
	reply(w, 200, map[string]any{"security_group": f.sgDoc(r.PathValue("id"))})
}

func (f *fakeCloud) deleteSG(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	if _, ok := f.sgs[id]; !ok {
		neutronError(w, 404, "SecurityGroupNotFound", "Security group "+id+" does not exist")
		return
	}
	for _, p := range f.ports {
		if slices.Contains(toStrings(p["security_groups"]), id) {
			neutronError(w, 409, "SecurityGroupInUse", "Security Group "+id+" in use.")
			return
		}
	}
	delete(f.sgs, id)
	for rid, rule := range f.rules {
		if rule["security_group_id"] == id {
			delete(f.rules, rid)
		}
	}
	w.WriteHeader(204)
}

func (f *fakeCloud) createRule(w http.ResponseWriter, r *http.Request) {
	body := f.decode(r, "security_group_rule")
	f.mu.Lock()
	defer f.mu.Unlock()
	gid, _ := body["security_group_id"].(string)
	if _, ok := f.sgs[gid]; !ok {
		neutronError(w, 404, "SecurityGroupNotFound", "Security group "+gid+" does not exist")
		return
	}
	rule := map[string]any{"security_group_id": gid, "direction": body["direction"], "ethertype": body["ethertype"],
		"protocol": body["protocol"], "port_range_min": body["port_range_min"], "port_range_max": body["port_range_max"],
		"remote_ip_prefix": body["remote_ip_prefix"], "remote_group_id": nil}
	for _, old := range f.rules {
		same := true
		for k, v := range rule {
			if fmt.Sprint(old[k]) != fmt.Sprint(v) {
				same = false
			}
		}
		if same {
			neutronError(w, 409, "SecurityGroupRuleExists", "Security group rule already exists. Rule id is "+old["id"].(string)+".")
			return
		}
	}
	rule["id"] = f.uuid()
	f.rules[rule["id"].(string)] = rule
	reply(w, 201, map[string]any{"security_group_rule": rule})
}

func (f *fakeCloud) deleteRule(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.rules[r.PathValue("id")]; !ok {
		neutronError(w, 404, "SecurityGroupRuleNotFound", "Security group rule "+r.PathValue("id")+" does not exist")
		return
	}
	delete(f.rules, r.PathValue("id"))
	w.WriteHeader(204)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
