package openstack

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	th "github.com/gophercloud/gophercloud/v2/testhelper"

	"github.com/ostia/ostia/sagas/ports"
)

// TestNewFromCloud authenticates against a fake Keystone v3 whose catalog
// points back at the fake server, then uses the built clients.
func TestNewFromCloud(t *testing.T) {
	t.Parallel()
	fs := th.SetupHTTP()
	t.Cleanup(fs.Teardown)
	base := fs.Server.URL
	fs.Mux.HandleFunc("/identity/v3/auth/tokens", func(w http.ResponseWriter, r *http.Request) {
		th.TestMethod(t, r, "POST")
		th.TestJSONRequest(t, r, `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "octavia",
		  "password": "secret", "domain": {"name": "Default"}}}}, "scope": {"project": {"name": "service", "domain": {"name": "Default"}}}}}`)
		w.Header().Set("X-Subject-Token", "token-1")
		endpoint := func(typ, path string) string {
			return fmt.Sprintf(`{"type": %q, "name": %q, "endpoints": [
			  {"interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": "%s%s"},
			  {"interface": "public", "region": "RegionTwo", "region_id": "RegionTwo", "url": "http://elsewhere.invalid%s"}]}`,
				typ, typ, base, path, path)
		}
		jsonReply(w, 201, `{"token": {"methods": ["password"], "expires_at": "2099-01-01T00:00:00.000000Z",
		  "user": {"id": "u1", "name": "octavia", "domain": {"id": "default", "name": "Default"}},
		  "project": {"id": "p1", "name": "service", "domain": {"id": "default", "name": "Default"}},
		  "catalog": [`+endpoint("compute", "/compute/v2.1")+`,`+endpoint("network", "/network")+`,`+endpoint("image", "/image")+`]}}`)
	})
	// Version discovery of the unversioned catalog URLs, as gophercloud
	// does it when building the clients.
	fs.Mux.HandleFunc("GET /network/{$}", func(w http.ResponseWriter, r *http.Request) {
		jsonReply(w, 200, `{"versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": "`+base+`/network/v2.0/"}]}]}`)
	})
	fs.Mux.HandleFunc("GET /image/{$}", func(w http.ResponseWriter, r *http.Request) {
		jsonReply(w, 300, `{"versions": [{"id": "v2.16", "status": "CURRENT", "links": [{"rel": "self", "href": "`+base+`/image/v2/"}]},
		  {"id": "v2.15", "status": "SUPPORTED", "links": [{"rel": "self", "href": "`+base+`/image/v2/"}]}]}`)
	})
	fs.Mux.HandleFunc("GET /network/v2.0/ports", func(w http.ResponseWriter, r *http.Request) {
		th.TestHeader(t, r, "X-Auth-Token", "token-1")
		jsonReply(w, 200, `{"ports": []}`)
	})
	fs.Mux.HandleFunc("GET /compute/v2.1/servers/detail", func(w http.ResponseWriter, r *http.Request) {
		th.TestHeader(t, r, "X-Auth-Token", "token-1")
		jsonReply(w, 200, `{"servers": []}`)
	})
	ctx := context.Background()
	d, err := NewFromCloud(ctx, AuthOptions{AuthURL: base + "/identity/v3/", Username: "octavia", Password: "secret",
		ProjectName: "service", DomainName: "Default", Region: "RegionOne"},
		func(c *Config) { c.ManagementNetworkIDs = []string{"mgmt"} })
	if err != nil {
		t.Fatal(err)
	}
	if d.image == nil || d.cfg.ManagementNetworkIDs[0] != "mgmt" {
		t.Fatalf("config %+v", d.cfg)
	}
	var c interface {
		ports.Compute
		ports.Network
	} = d
	if _, err := c.FindPorts(ctx, "x", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindServers(ctx, "x", nil); err != nil {
		t.Fatal(err)
	}
}
