package openstack

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	th "github.com/gophercloud/gophercloud/v2/testhelper"

	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

const (
	serverID = "6e6a7f8c-3c4f-4a0e-9d1e-5a0f8a5b2c11"
	groupID  = "a1b2c3d4-1111-4222-8333-444455556666"
	portID   = "7b2f1c9e-2d3a-4b5c-8d6e-7f8091a2b3c4"
	netID    = "4e8e5957-649f-477b-9e5b-f1f75b21c03c"
	subnetID = "d1f1e7a0-5b5c-4c2d-9e3f-0a1b2c3d4e5f"
	sgID     = "0f9e8d7c-6b5a-4433-9221-100f0e0d0c0b"
)

type env struct {
	fs th.FakeServer
	d  *Driver
}

func setup(t *testing.T, mutate ...func(*Config)) env {
	t.Helper()
	fs := th.SetupHTTP()
	t.Cleanup(fs.Teardown)
	compute, network, image := clients(fs)
	cfg := Config{Compute: compute, Network: network, Image: image}
	for _, m := range mutate {
		m(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return env{fs: fs, d: d}
}

// handle registers a handler that also fails the test on a second,
// unexpected path: every request must be one the test expects.
func (e env) handle(pattern string, h http.HandlerFunc) { e.fs.Mux.HandleFunc(pattern, h) }

func jsonReply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

// query checks the query string exactly.
func query(t *testing.T, r *http.Request, want map[string]string) {
	t.Helper()
	got := r.URL.Query()
	if len(got) != len(want) {
		t.Errorf("%s %s: query %v, want %v", r.Method, r.URL.Path, got, want)
	}
	for k, v := range want {
		if got.Get(k) != v || len(got[k]) != 1 {
			t.Errorf("%s %s: query %s=%q, want %q", r.Method, r.URL.Path, k, got[k], v)
		}
	}
}

const serverJSON = `{"server": {"id": "` + serverID + `", "name": "amphora-a1", "status": "%s", "tenant_id": "p1", "user_id": "u1",
 "metadata": {"lb_id": "lb-1", "amphora_id": "a1"}, "created": "2025-01-01T00:00:00Z", "updated": "2025-01-01T00:00:05Z",
 "addresses": {"lb-mgmt-net": [{"version": 4, "addr": "192.168.0.7", "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:11:22:33"}],
   "vip-net": [{"version": 4, "addr": "10.0.0.9", "OS-EXT-IPS:type": "fixed"}]},
 "image": {"id": "img-2", "links": []}, "flavor": {"id": "amp-flavor", "links": []}, "OS-EXT-AZ:availability_zone": "az1",
 "config_drive": "True", "fault": {"code": 500, "message": "%s", "created": "2025-01-01T00:00:05Z"}}}`

func TestCreateServer(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *Config) { c.ImageOwnerID = "owner-1" })
	e.handle("/image/v2/images", func(w http.ResponseWriter, r *http.Request) {
		th.TestMethod(t, r, "GET")
		query(t, r, map[string]string{"tag": "amphora", "owner": "owner-1", "status": "active", "sort": "created_at:desc"})
		jsonReply(w, 200, `{"images": [
		  {"id": "img-1", "name": "amp-old", "status": "active", "tags": ["amphora"], "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"},
		  {"id": "img-2", "name": "amp-new", "status": "active", "tags": ["amphora"], "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"}],
		  "first": "/v2/images"}`)
	})
	e.handle("/compute/v2.1/servers", func(w http.ResponseWriter, r *http.Request) {
		th.TestMethod(t, r, "POST")
		th.TestHeader(t, r, "X-Auth-Token", "cbc36478b0bd8e67e89469c7749d4127")
		var body map[string]map[string]any
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatal(err)
		}
		ud, _ := body["server"]["user_data"].(string)
		delete(body["server"], "user_data")
		th.CheckJSONEquals(t, `{
		  "server": {"name": "amphora-a1", "imageRef": "img-2", "flavorRef": "amp-flavor", "availability_zone": "az1",
		    "networks": [{"uuid": "`+netID+`"}], "config_drive": true,
		    "metadata": {"lb_id": "lb-1", "amphora_id": "a1", "saga_id": "s1"}},
		  "os:scheduler_hints": {"group": "`+groupID+`"}}`, body)
		raw, err := base64.StdEncoding.DecodeString(ud)
		if err != nil {
			t.Fatalf("user_data is not base64: %v", err)
		}
		want := "#cloud-config\nwrite_files:\n" +
			"- path: \"/etc/octavia/amphora-agent.conf\"\n  encoding: b64\n  permissions: '0600'\n  owner: root:root\n  content: " +
			base64.StdEncoding.EncodeToString([]byte("[DEFAULT]\n")) + "\n" +
			"- path: \"/etc/octavia/certs/server.pem\"\n  encoding: b64\n  permissions: '0600'\n  owner: root:root\n  content: " +
			base64.StdEncoding.EncodeToString([]byte("-----BEGIN CERTIFICATE-----\n")) + "\n"
		if string(raw) != want {
			t.Errorf("user data:\n%s\nwant:\n%s", raw, want)
		}
		jsonReply(w, 202, `{"server": {"id": "`+serverID+`", "OS-DCF:diskConfig": "MANUAL", "adminPass": "x",
		  "security_groups": [{"name": "default"}], "links": []}}`)
	})
	s, err := e.d.CreateServer(context.Background(), ports.ServerSpec{Name: "amphora-a1", ImageTag: "amphora", FlavorID: "amp-flavor",
		NetworkIDs: []string{netID}, ServerGroupID: groupID, Zone: "az1",
		Metadata: map[string]string{"lb_id": "lb-1", "amphora_id": "a1", "saga_id": "s1"},
		ConfigDrive: map[string][]byte{"/etc/octavia/certs/server.pem": []byte("-----BEGIN CERTIFICATE-----\n"),
			"/etc/octavia/amphora-agent.conf": []byte("[DEFAULT]\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != serverID || s.Status != ports.ServerBuild || s.ImageID != "img-2" || s.Zone != "az1" || s.Metadata["saga_id"] != "s1" {
		t.Fatalf("server %+v", s)
	}
}

func TestCreateServerNoImage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.handle("GET /image/v2/images", func(w http.ResponseWriter, r *http.Request) { jsonReply(w, 200, `{"images": []}`) })
	_, err := e.d.CreateServer(context.Background(), ports.ServerSpec{Name: "amphora-a1", ImageTag: "amphora", FlavorID: "f"})
	if saga.Classify(err) != saga.KindPermanent {
		t.Fatalf("no image: %v", err)
	}
}

func TestFindServersExactName(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.handle("/compute/v2.1/servers/detail", func(w http.ResponseWriter, r *http.Request) {
		th.TestMethod(t, r, "GET")
		query(t, r, map[string]string{"name": `^amphora\.a1$`})
		// A Nova whose database ignores the anchors: the driver must
		// still only return the exact name.
		jsonReply(w, 200, `{"servers": [
		  {"id": "s1", "name": "amphora.a1", "status": "ACTIVE", "metadata": {"lb_id": "lb-1"}},
		  {"id": "s2", "name": "amphora.a10", "status": "ACTIVE", "metadata": {"lb_id": "lb-1"}},
		  {"id": "s3", "name": "amphora.a1", "status": "ERROR", "metadata": {"lb_id": "lb-9"}}]}`)
	})
	found, err := e.d.FindServers(context.Background(), "amphora.a1", map[string]string{"lb_id": "lb-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].ID != "s1" {
		t.Fatalf("found %+v", found)
	}
}

func TestGetServer(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *Config) { c.ManagementNetworkIDs = []string{"mgmt-net"} })
	e.handle("/compute/v2.1/servers/"+serverID, func(w http.ResponseWriter, r *http.Request) {
		th.TestMethod(t, r, "GET")
		query(t, r, map[string]string{})
		jsonReply(w, 200, fmt.Sprintf(serverJSON, "ACTIVE", ""))
	})
	e.handle("/compute/v2.1/servers/"+serverID+"/os-interface", func(w http.ResponseWriter, r *http.Request) {
		th.TestMethod(t, r, "GET")
		jsonReply(w, 200, `{"interfaceAttachments": [
		  {"port_id": "p-vip", "net_id": "vip-net", "mac_addr": "fa:16:3e:00:00:02", "port_state": "ACTIVE", "fixed_ips": [{"subnet_id": "s", "ip_address": "10.0.0.9"}]},
		  {"port_id": "p-mgmt", "net_id": "mgmt-net", "mac_addr": "fa:16:3e:00:00:01", "port_state": "ACTIVE", "fixed_ips": [{"subnet_id": "m", "ip_address": "192.168.0.7"}]}]}`)
	})
	s, err := e.d.GetServer(context.Background(), serverID)
	if err != nil {
		t.Fatal(err)
	}
	want := ports.Server{ID: serverID, Name: "amphora-a1", Status: "ACTIVE", Metadata: map[string]string{"lb_id": "lb-1", "amphora_id": "a1"},
		ManagementIP: "192.168.0.7", Zone: "az1", ImageID: "img-2", FlavorID: "amp-flavor"}
	if fmt.Sprint(s) != fmt.Sprint(want) {
		t.Fatalf("server\n%+v\nwant\n%+v", s, want)
	}
}

func TestGetServerFault(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.handle("GET /compute/v2.1/servers/"+serverID, func(w http.ResponseWriter, r *http.Request) {
		jsonReply(w, 200, fmt.Sprintf(serverJSON, "ERROR", "No valid host was found."))
	})
	s, err := e.d.GetServer(context.Background(), serverID)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != ports.ServerError || s.Fault != "No valid host was found." || s.ManagementIP != "192.168.0.7" {
		t.Fatalf("server %+v", s)
	}
}

func TestDeleteServer(t *testing.T) {
	t.Parallel()
	for status, ok := range map[int]bool{204: true, 404: true, 409: false, 500: false} {
		e := setup(t)
		e.handle("/compute/v2.1/servers/"+serverID, func(w http.ResponseWriter, r *http.Request) {
			th.TestMethod(t, r, "DELETE")
			if status == 204 {
				w.WriteHeader(204)
				return
			}
			jsonReply(w, status, `{"itemNotFound": {"code": 404, "message": "Instance could not be found."}}`)
		})
		err := e.d.DeleteServer(context.Background(), serverID)
		if (err == nil) != ok || (!ok && saga.Classify(err) != saga.KindTransient) {
			t.Errorf("delete answered %d: %v", status, err)
		}
	}
}

func TestServerGroups(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.handle("/compute/v2.1/os-server-groups", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case "POST":
			th.TestHeader(t, r, "X-OpenStack-Nova-API-Version", "2.15")
			th.TestJSONRequest(t, r, `{"server_group": {"name": "octavia-lb-1", "policies": ["soft-anti-affinity"]}}`)
			jsonReply(w, 200, `{"server_group": {"id": "`+groupID+`", "name": "octavia-lb-1", "policies": ["soft-anti-affinity"], "members": [], "metadata": {}}}`)
		case "GET":
			// Two pages by limit/offset; the first is full.
			switch r.URL.Query().Get("offset") {
			case "":
				query(t, r, map[string]string{"limit": "500"})
				var b strings.Builder
				b.WriteString(`{"server_groups": [`)
				for i := range 500 {
					if i > 0 {
						b.WriteString(",")
					}
					fmt.Fprintf(&b, `{"id": "g%d", "name": "other-%d", "policies": ["anti-affinity"]}`, i, i)
				}
				b.WriteString(`]}`)
				jsonReply(w, 200, b.String())
			case "500":
				query(t, r, map[string]string{"limit": "500", "offset": "500"})
				jsonReply(w, 200, `{"server_groups": [{"id": "`+groupID+`", "name": "octavia-lb-1", "policies": ["anti-affinity"]},
				  {"id": "g-x", "name": "octavia-lb-10", "policies": ["anti-affinity"]}]}`)
			default:
				t.Errorf("unexpected query %v", r.URL.Query())
			}
		default:
			t.Errorf("unexpected %s", r.Method)
		}
	})
	e.handle("DELETE /compute/v2.1/os-server-groups/"+groupID, func(w http.ResponseWriter, r *http.Request) {
		jsonReply(w, 404, `{"itemNotFound": {"code": 404, "message": "Server group could not be found"}}`)
	})
	ctx := context.Background()
	g, err := e.d.CreateServerGroup(ctx, "octavia-lb-1", "soft-anti-affinity")
	if err != nil || g != (ports.ServerGroup{ID: groupID, Name: "octavia-lb-1", Policy: "soft-anti-affinity"}) {
		t.Fatalf("create: %+v %v", g, err)
	}
	found, err := e.d.FindServerGroups(ctx, "octavia-lb-1")
	if err != nil || len(found) != 1 || found[0].ID != groupID {
		t.Fatalf("find: %+v %v", found, err)
	}
	if err := e.d.DeleteServerGroup(ctx, groupID); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
}

func TestServerGroupNewMicroversion(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *Config) { c.Compute.Microversion = "2.64" })
	e.handle("POST /compute/v2.1/os-server-groups", func(w http.ResponseWriter, r *http.Request) {
		th.TestHeader(t, r, "X-OpenStack-Nova-API-Version", "2.64")
		th.TestJSONRequest(t, r, `{"server_group": {"name": "g", "policy": "anti-affinity"}}`)
		jsonReply(w, 200, `{"server_group": {"id": "`+groupID+`", "name": "g", "policy": "anti-affinity", "rules": {}}}`)
	})
	g, err := e.d.CreateServerGroup(context.Background(), "g", "anti-affinity")
	if err != nil || g.Policy != "anti-affinity" {
		t.Fatalf("%+v %v", g, err)
	}
}

const portJSON = `{"port": {"id": "` + portID + `", "name": "octavia-lb-vrrp-a1", "network_id": "` + netID + `",
 "admin_state_up": true, "status": "DOWN", "mac_address": "fa:16:3e:aa:bb:cc", "device_id": "%s", "device_owner": "Octavia",
 "fixed_ips": [{"subnet_id": "` + subnetID + `", "ip_address": "10.0.0.12"}], "security_groups": ["` + sgID + `"],
 "allowed_address_pairs": [{"ip_address": "10.0.0.100", "mac_address": "fa:16:3e:aa:bb:cc"}],
 "tags": %s, "project_id": "p1", "revision_number": 3, "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"}}`

func TestCreatePortTagsAfterCreate(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var tagged atomic.Bool
	e.handle("/network/v2.0/ports", func(w http.ResponseWriter, r *http.Request) {
		th.TestMethod(t, r, "POST")
		th.TestJSONRequest(t, r, `{"port": {"name": "octavia-lb-vrrp-a1", "network_id": "`+netID+`", "admin_state_up": true,
		  "device_owner": "Octavia", "fixed_ips": [{"subnet_id": "`+subnetID+`", "ip_address": "10.0.0.12"}],
		  "qos_policy_id": "qos-1"}}`)
		jsonReply(w, 201, fmt.Sprintf(portJSON, "", `[]`))
	})
	e.handle("/network/v2.0/ports/"+portID+"/tags", func(w http.ResponseWriter, r *http.Request) {
		th.TestMethod(t, r, "PUT")
		th.TestJSONRequest(t, r, `{"tags": ["amphora_id=a1", "lb_id=lb-1"]}`)
		tagged.Store(true)
		jsonReply(w, 200, `{"tags": ["amphora_id=a1", "lb_id=lb-1"]}`)
	})
	p, err := e.d.CreatePort(context.Background(), ports.PortSpec{Name: "octavia-lb-vrrp-a1", NetworkID: netID, SubnetID: subnetID,
		FixedIP: "10.0.0.12", AdminStateUp: true, DeviceOwner: "Octavia", QosPolicyID: "qos-1",
		Tags: map[string]string{"lb_id": "lb-1", "amphora_id": "a1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !tagged.Load() || p.ID != portID || p.IP != "10.0.0.12" || p.SubnetID != subnetID || p.Tags["lb_id"] != "lb-1" ||
		p.MAC != "fa:16:3e:aa:bb:cc" {
		t.Fatalf("port %+v", p)
	}
}

func TestCreatePortTagsOnCreate(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *Config) { c.TagsOnCreate = true })
	e.handle("/network/v2.0/ports", func(w http.ResponseWriter, r *http.Request) {
		th.TestMethod(t, r, "POST")
		th.TestJSONRequest(t, r, `{"port": {"name": "octavia-lb-lb-1", "network_id": "`+netID+`", "admin_state_up": false,
		  "device_owner": "Octavia", "fixed_ips": [{"subnet_id": "`+subnetID+`"}], "tags": ["lb_id=lb-1"]}}`)
		jsonReply(w, 201, fmt.Sprintf(portJSON, "", `["lb_id=lb-1"]`))
	})
	p, err := e.d.CreatePort(context.Background(), ports.PortSpec{Name: "octavia-lb-lb-1", NetworkID: netID, SubnetID: subnetID,
		DeviceOwner: "Octavia", Tags: map[string]string{"lb_id": "lb-1"}})
	if err != nil || p.Tags["lb_id"] != "lb-1" {
		t.Fatalf("%+v %v", p, err)
	}
}

func TestCreatePortTagFailureRollsBack(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var deleted atomic.Bool
	e.handle("POST /network/v2.0/ports", func(w http.ResponseWriter, r *http.Request) {
		jsonReply(w, 201, fmt.Sprintf(portJSON, "", `[]`))
	})
	e.handle("PUT /network/v2.0/ports/"+portID+"/tags", func(w http.ResponseWriter, r *http.Request) {
		jsonReply(w, 503, `{"NeutronError": {"type": "ServiceUnavailable", "message": "try later", "detail": ""}}`)
	})
	e.handle("DELETE /network/v2.0/ports/"+portID, func(w http.ResponseWriter, r *http.Request) {
		deleted.Store(true)
		w.WriteHeader(204)
	})
	_, err := e.d.CreatePort(context.Background(), ports.PortSpec{Name: "p", NetworkID: netID, Tags: map[string]string{"lb_id": "x"}})
	if saga.Classify(err) != saga.KindTransient || !deleted.Load() {
		t.Fatalf("err %v, rolled back %v", err, deleted.Load())
	}
}

func TestCreatePortBadTag(t *testing.T) {
	t.Parallel()
	e := setup(t)
	_, err := e.d.CreatePort(context.Background(), ports.PortSpec{Name: "p", NetworkID: netID, Tags: map[string]string{"lb_id": "a,b"}})
	if saga.Classify(err) != saga.KindPermanent {
		t.Fatalf("%v", err)
	}
}

func TestFindPorts(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.handle("/network/v2.0/ports", func(w http.ResponseWriter, r *http.Request) {
		th.TestMethod(t, r, "GET")
		query(t, r, map[string]string{"name": "octavia-lb-vrrp-a1", "tags": "amphora_id=a1,lb_id=lb-1"})
		jsonReply(w, 200, `{"ports": [`+strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf(portJSON, serverID,
			`["lb_id=lb-1", "amphora_id=a1", "foreign"]`), `{"port": `), "}")+`]}`)
	})
	found, err := e.d.FindPorts(context.Background(), "octavia-lb-vrrp-a1", map[string]string{"lb_id": "lb-1", "amphora_id": "a1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].DeviceID != serverID || len(found[0].Tags) != 2 || found[0].AllowedAddressPairs[0] != "10.0.0.100" ||
		found[0].SecurityGroupIDs[0] != sgID {
		t.Fatalf("found %+v", found)
	}
}

func TestGetPort(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.handle("GET /network/v2.0/ports/"+portID, func(w http.ResponseWriter, r *http.Request) {
		jsonReply(w, 200, fmt.Sprintf(portJSON, serverID, `["lb_id=lb-1"]`))
	})
	e.handle("GET /network/v2.0/subnets/"+subnetID, func(w http.ResponseWriter, r *http.Request) {
		jsonReply(w, 200, `{"subnet": {"id": "`+subnetID+`", "network_id": "`+netID+`", "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1", "ip_version": 4}}`)
	})
	e.handle("GET /network/v2.0/networks/"+netID, func(w http.ResponseWriter, r *http.Request) {
		jsonReply(w, 200, `{"network": {"id": "`+netID+`", "name": "vip", "mtu": 1442, "status": "ACTIVE"}}`)
	})
	p, err := e.d.GetPort(context.Background(), portID)
	if err != nil {
		t.Fatal(err)
	}
	if p.SubnetCIDR != "10.0.0.0/24" || p.GatewayIP != "10.0.0.1" || p.MTU != 1442 || p.DeviceID != serverID || !p.AdminStateUp {
		t.Fatalf("port %+v", p)
	}
}

func TestGetSubnet(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.handle("GET /network/v2.0/subnets/"+subnetID, func(w http.ResponseWriter, r *http.Request) {
		jsonReply(w, 200, `{"subnet": {"id": "`+subnetID+`", "network_id": "`+netID+`", "cidr": "192.168.7.0/24", "gateway_ip": "192.168.7.1", "ip_version": 4}}`)
	})
	e.handle("GET /network/v2.0/subnets/missing", func(w http.ResponseWriter, r *http.Request) {
		jsonReply(w, 404, `{"NeutronError": {"type": "SubnetNotFound", "message": "Subnet missing could not be found.", "detail": ""}}`)
	})
	sn, err := e.d.GetSubnet(context.Background(), subnetID)
	if err != nil {
		t.Fatal(err)
	}
	if sn != (ports.Subnet{ID: subnetID, NetworkID: netID, CIDR: "192.168.7.0/24", GatewayIP: "192.168.7.1"}) {
		t.Fatalf("subnet %+v", sn)
	}
	if _, err := e.d.GetSubnet(context.Background(), "missing"); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("missing subnet: %v", err)
	}
	if _, err := e.d.GetSubnet(context.Background(), ""); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("empty subnet id: %v", err)
	}
}

func TestPlugPort(t *testing.T) {
	t.Parallel()
	ifaces := func(ids ...string) string {
		var parts []string
		for _, id := range ids {
			parts = append(parts, `{"port_id": "`+id+`", "net_id": "n", "mac_addr": "m", "port_state": "ACTIVE", "fixed_ips": []}`)
		}
		return `{"interfaceAttachments": [` + strings.Join(parts, ",") + `]}`
	}
	t.Run("attaches", func(t *testing.T) {
		e := setup(t)
		var posted atomic.Bool
		e.handle("/compute/v2.1/servers/"+serverID+"/os-interface", func(w http.ResponseWriter, r *http.Request) {
			switch r.Method {
			case "GET":
				jsonReply(w, 200, ifaces("mgmt-port"))
			case "POST":
				th.TestJSONRequest(t, r, `{"interfaceAttachment": {"port_id": "`+portID+`"}}`)
				posted.Store(true)
				jsonReply(w, 200, `{"interfaceAttachment": {"port_id": "`+portID+`", "net_id": "n", "mac_addr": "m", "port_state": "ACTIVE", "fixed_ips": []}}`)
			}
		})
		if err := e.d.PlugPort(context.Background(), serverID, portID); err != nil || !posted.Load() {
			t.Fatalf("%v posted=%v", err, posted.Load())
		}
	})
	t.Run("already attached", func(t *testing.T) {
		e := setup(t)
		e.handle("/compute/v2.1/servers/"+serverID+"/os-interface", func(w http.ResponseWriter, r *http.Request) {
			th.TestMethod(t, r, "GET")
			jsonReply(w, 200, ifaces("mgmt-port", portID))
		})
		if err := e.d.PlugPort(context.Background(), serverID, portID); err != nil {
			t.Fatal(err)
		}
	})
	for name, tc := range map[string]struct {
		device string
		kind   saga.Kind
	}{"conflict but ours": {serverID, saga.KindNone}, "in use elsewhere": {"other-server", saga.KindPermanent},
		"server busy": {"", saga.KindTransient}} {
		t.Run(name, func(t *testing.T) {
			e := setup(t)
			e.handle("GET /compute/v2.1/servers/"+serverID+"/os-interface", func(w http.ResponseWriter, r *http.Request) {
				jsonReply(w, 200, ifaces())
			})
			e.handle("POST /compute/v2.1/servers/"+serverID+"/os-interface", func(w http.ResponseWriter, r *http.Request) {
				jsonReply(w, 409, `{"conflictingRequest": {"code": 409, "message": "Port is still in use."}}`)
			})
			e.handle("GET /network/v2.0/ports/"+portID, func(w http.ResponseWriter, r *http.Request) {
				jsonReply(w, 200, fmt.Sprintf(portJSON, tc.device, `[]`))
			})
			if got := saga.Classify(e.d.PlugPort(context.Background(), serverID, portID)); got != tc.kind {
				t.Fatalf("kind %v, want %v", got, tc.kind)
			}
		})
	}
	t.Run("server missing", func(t *testing.T) {
		e := setup(t)
		e.handle("GET /compute/v2.1/servers/"+serverID+"/os-interface", func(w http.ResponseWriter, r *http.Request) {
			jsonReply(w, 404, `{"itemNotFound": {"code": 404, "message": "Instance could not be found."}}`)
		})
		err := e.d.PlugPort(context.Background(), serverID, portID)
		if !errors.Is(err, ports.ErrNotFound) || saga.Classify(err) != saga.KindPermanent {
			t.Fatalf("%v", err)
		}
	})
}

func TestUnplugPort(t *testing.T) {
	t.Parallel()
	for status, ok := range map[int]bool{202: true, 404: true, 409: false} {
		e := setup(t)
		e.handle("/compute/v2.1/servers/"+serverID+"/os-interface/"+portID, func(w http.ResponseWriter, r *http.Request) {
			th.TestMethod(t, r, "DELETE")
			if status == 202 {
				w.WriteHeader(202)
				return
			}
			jsonReply(w, status, `{"itemNotFound": {"code": 404, "message": "Port is not attached"}}`)
		})
		err := e.d.UnplugPort(context.Background(), serverID, portID)
		if (err == nil) != ok {
			t.Errorf("detach answered %d: %v", status, err)
		}
	}
}

func TestPortUpdates(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var want atomic.Value
	e.handle("/network/v2.0/ports/"+portID, func(w http.ResponseWriter, r *http.Request) {
		th.TestMethod(t, r, "PUT")
		th.TestJSONRequest(t, r, want.Load().(string))
		jsonReply(w, 200, fmt.Sprintf(portJSON, "", `[]`))
	})
	ctx := context.Background()
	want.Store(`{"port": {"allowed_address_pairs": [{"ip_address": "10.0.0.100"}]}}`)
	if err := e.d.SetAllowedAddressPairs(ctx, portID, []string{"10.0.0.100"}); err != nil {
		t.Fatal(err)
	}
	want.Store(`{"port": {"allowed_address_pairs": []}}`)
	if err := e.d.SetAllowedAddressPairs(ctx, portID, nil); err != nil {
		t.Fatal(err)
	}
	want.Store(`{"port": {"security_groups": ["` + sgID + `"]}}`)
	if err := e.d.SetPortSecurityGroups(ctx, portID, []string{sgID}); err != nil {
		t.Fatal(err)
	}
	want.Store(`{"port": {"security_groups": []}}`)
	if err := e.d.SetPortSecurityGroups(ctx, portID, nil); err != nil {
		t.Fatal(err)
	}
}

func TestSecurityGroupCreateAndFind(t *testing.T) {
	t.Parallel()
	e := setup(t)
	group := `{"id": "` + sgID + `", "name": "lb-lb-1", "description": "Ostia load balancer security group", "tags": %s,
	  "security_group_rules": [
	    {"id": "r1", "direction": "egress", "ethertype": "IPv4", "security_group_id": "` + sgID + `", "protocol": null, "port_range_min": null, "port_range_max": null, "remote_ip_prefix": null},
	    {"id": "r2", "direction": "ingress", "ethertype": "IPv4", "security_group_id": "` + sgID + `", "protocol": "tcp", "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"},
	    {"id": "r3", "direction": "ingress", "ethertype": "IPv6", "security_group_id": "` + sgID + `", "protocol": "tcp", "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": null}],
	  "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"}`
	e.handle("/network/v2.0/security-groups", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case "POST":
			th.TestJSONRequest(t, r, `{"security_group": {"name": "lb-lb-1", "description": "Ostia load balancer security group"}}`)
			jsonReply(w, 201, `{"security_group": `+fmt.Sprintf(group, `[]`)+`}`)
		case "GET":
			query(t, r, map[string]string{"name": "lb-lb-1", "tags": "lb_id=lb-1"})
			jsonReply(w, 200, `{"security_groups": [`+fmt.Sprintf(group, `["lb_id=lb-1"]`)+`]}`)
		}
	})
	e.handle("PUT /network/v2.0/security-groups/"+sgID+"/tags", func(w http.ResponseWriter, r *http.Request) {
		th.TestJSONRequest(t, r, `{"tags": ["lb_id=lb-1"]}`)
		jsonReply(w, 200, `{"tags": ["lb_id=lb-1"]}`)
	})
	ctx := context.Background()
	g, err := e.d.CreateSecurityGroup(ctx, "lb-lb-1", map[string]string{"lb_id": "lb-1"})
	if err != nil || g.ID != sgID || g.Tags["lb_id"] != "lb-1" {
		t.Fatalf("%+v %v", g, err)
	}
	found, err := e.d.FindSecurityGroups(ctx, "lb-lb-1", map[string]string{"lb_id": "lb-1"})
	if err != nil || len(found) != 1 {
		t.Fatalf("%+v %v", found, err)
	}
	if fmt.Sprint(found[0].Rules) != fmt.Sprint([]ports.Rule{{Protocol: "tcp", Port: 80}}) {
		t.Fatalf("rules %+v", found[0].Rules)
	}
}

func TestSetSecurityGroupRules(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.handle("GET /network/v2.0/security-groups/"+sgID, func(w http.ResponseWriter, r *http.Request) {
		rule := func(id, dir, eth, proto string, port int, prefix string) string {
			p, pr := "null", "null"
			if port != 0 {
				p = fmt.Sprint(port)
			}
			if prefix != "" {
				pr = `"` + prefix + `"`
			}
			pj := "null"
			if proto != "" {
				pj = `"` + proto + `"`
			}
			return fmt.Sprintf(`{"id": %q, "direction": %q, "ethertype": %q, "security_group_id": %q, "protocol": %s,
			  "port_range_min": %s, "port_range_max": %s, "remote_ip_prefix": %s}`, id, dir, eth, sgID, pj, p, p, pr)
		}
		jsonReply(w, 200, `{"security_group": {"id": "`+sgID+`", "name": "lb-lb-1", "tags": [], "security_group_rules": [`+
			strings.Join([]string{
				rule("egress4", "egress", "IPv4", "", 0, ""),
				rule("keep-80-v4", "ingress", "IPv4", "tcp", 80, "0.0.0.0/0"),
				rule("drop-22", "ingress", "IPv4", "tcp", 22, ""),
				rule("keep-vrrp-v4", "ingress", "IPv4", "vrrp", 0, ""),
				rule("dup-80-v4", "ingress", "IPv4", "6", 80, ""),
			}, ",")+`]}}`)
	})
	var created []string
	var deleted []string
	var mu sync.Mutex
	e.handle("POST /network/v2.0/security-group-rules", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		created = append(created, string(b))
		mu.Unlock()
		status := 201
		if strings.Contains(string(b), `"IPv6"`) && strings.Contains(string(b), `"112"`) {
			status = 409 // as if a concurrent sync made it: fine
		}
		jsonReply(w, status, `{"security_group_rule": {"id": "new"}}`)
	})
	e.handle("DELETE /network/v2.0/security-group-rules/{id}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		deleted = append(deleted, r.PathValue("id"))
		mu.Unlock()
		status := 204
		if r.PathValue("id") == "dup-80-v4" {
			status = 404
		}
		w.WriteHeader(status)
	})
	err := e.d.SetSecurityGroupRules(context.Background(), sgID, []ports.Rule{{Protocol: "tcp", Port: 80},
		{Protocol: "tcp", Port: 443, CIDR: "10.1.2.0/24"}, {Protocol: "112"}})
	if err != nil {
		t.Fatal(err)
	}
	wantCreated := []string{
		`{"security_group_rule":{"direction":"ingress","ethertype":"IPv6","port_range_max":80,"port_range_min":80,"protocol":"tcp","security_group_id":"` + sgID + `"}}`,
		`{"security_group_rule":{"direction":"ingress","ethertype":"IPv4","port_range_max":443,"port_range_min":443,"protocol":"tcp","remote_ip_prefix":"10.1.2.0/24","security_group_id":"` + sgID + `"}}`,
		`{"security_group_rule":{"direction":"ingress","ethertype":"IPv6","protocol":"112","security_group_id":"` + sgID + `"}}`,
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(created, "\n") != strings.Join(wantCreated, "\n") {
		t.Errorf("created\n%s\nwant\n%s", strings.Join(created, "\n"), strings.Join(wantCreated, "\n"))
	}
	if strings.Join(deleted, ",") != "drop-22,dup-80-v4" {
		t.Errorf("deleted %v", deleted)
	}
}

func TestDeleteSecurityGroup(t *testing.T) {
	t.Parallel()
	for status, kind := range map[int]saga.Kind{204: saga.KindNone, 404: saga.KindNone, 409: saga.KindTransient} {
		e := setup(t)
		e.handle("DELETE /network/v2.0/security-groups/"+sgID, func(w http.ResponseWriter, r *http.Request) {
			if status == 204 {
				w.WriteHeader(204)
				return
			}
			jsonReply(w, status, `{"NeutronError": {"type": "SecurityGroupInUse", "message": "in use", "detail": ""}}`)
		})
		if got := saga.Classify(e.d.DeleteSecurityGroup(context.Background(), sgID)); got != kind {
			t.Errorf("answered %d: kind %v, want %v", status, got, kind)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status   int
		notFound bool
		kind     saga.Kind
	}{
		{400, false, saga.KindPermanent},
		{403, false, saga.KindPermanent},
		{404, true, saga.KindTransient}, // not-found only: the caller decides
		{409, false, saga.KindTransient},
		{429, false, saga.KindTransient},
		{500, false, saga.KindTransient},
		{503, false, saga.KindTransient},
	} {
		e := setup(t)
		e.handle("GET /compute/v2.1/servers/"+serverID, func(w http.ResponseWriter, r *http.Request) {
			jsonReply(w, tc.status, `{"badRequest": {"code": 400, "message": "nope"}}`)
		})
		_, err := e.d.GetServer(context.Background(), serverID)
		if errors.Is(err, ports.ErrNotFound) != tc.notFound || saga.Classify(err) != tc.kind {
			t.Errorf("%d: %v (kind %v)", tc.status, err, saga.Classify(err))
		}
		if tc.kind == saga.KindPermanent && !errors.Is(err, saga.ErrPermanent) {
			t.Errorf("%d: not wrapped as permanent: %v", tc.status, err)
		}
		if tc.kind == saga.KindTransient && !tc.notFound && !errors.Is(err, saga.ErrTransient) {
			t.Errorf("%d: not wrapped as transient: %v", tc.status, err)
		}
		var code gophercloud.ErrUnexpectedResponseCode
		if !errors.As(err, &code) || !strings.Contains(err.Error(), "get server "+serverID) {
			t.Errorf("%d: the cause or context is lost: %v", tc.status, err)
		}
	}
}

func TestTimeoutsAreTransient(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.handle("GET /network/v2.0/ports/"+portID, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.d.GetPort(ctx, portID)
	if !errors.Is(err, saga.ErrTransient) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v", err)
	}

	// A cloud that is not there at all.
	fs := th.SetupHTTP()
	compute, network, _ := clients(fs)
	fs.Teardown()
	d, _ := New(Config{Compute: compute, Network: network})
	if _, err := d.GetServer(context.Background(), serverID); !errors.Is(err, saga.ErrTransient) {
		t.Fatalf("connection refused: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without clients")
	}
}
