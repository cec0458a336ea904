package e2e

import (
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
)

// fakeNeutron answers the few Neutron (and, in noauth mode, Keystone)
// lookups the openstack CLI makes before it calls the load-balancer API:
// `--vip-subnet-id X` and `member create --subnet-id X` list
// /v2.0/subnets?id=X, and `quota set PROJECT` resolves the project. Any
// UUID exists (Ostia's noop network driver never checks them, as with
// Octavia's network_noop_driver). Other requests go to next, when set: in
// noauth mode the CLI sends every service to the single --os-endpoint, so
// the fake sits in front of Ostia there.
type fakeNeutron struct {
	next http.Handler

	mu   sync.Mutex
	seen []string
}

var neutronResources = map[string]string{"subnets": "subnet", "networks": "network", "ports": "port", "policies": "policy"}

func (f *fakeNeutron) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.FieldsFunc(r.URL.Path, func(c rune) bool { return c == '/' })
	switch {
	case len(parts) >= 2 && parts[0] == "v2.0" && parts[1] != "lbaas" && parts[1] != "octavia":
		f.neutron(w, r, parts[1:])
	case len(parts) == 2 && parts[0] == "projects":
		// keystoneclient with the none auth plugin: GET <endpoint>/projects/<id>.
		f.record(r)
		writeTestJSON(w, http.StatusOK, map[string]any{"project": map[string]any{
			"id": parts[1], "name": parts[1], "domain_id": "default", "enabled": true}})
	case f.next != nil:
		f.next.ServeHTTP(w, r)
	case len(parts) == 0:
		writeTestJSON(w, http.StatusOK, map[string]any{"versions": []map[string]any{{"id": "v2.0", "status": "CURRENT",
			"links": []map[string]string{{"href": "http://" + r.Host + "/v2.0/", "rel": "self"}}}}})
	default:
		neutronNotFound(w)
	}
}

func (f *fakeNeutron) record(r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, r.Method+" "+r.URL.RequestURI())
}

// requests returns the requests the fake answered itself.
func (f *fakeNeutron) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

func (f *fakeNeutron) neutron(w http.ResponseWriter, r *http.Request, parts []string) {
	f.record(r)
	if parts[0] == "qos" {
		parts = parts[1:]
	}
	if len(parts) == 0 || r.Method != http.MethodGet {
		neutronNotFound(w)
		return
	}
	res := strings.TrimSuffix(parts[0], ".json")
	single, ok := neutronResources[res]
	if !ok {
		neutronNotFound(w)
		return
	}
	if len(parts) == 2 {
		if o := neutronObject(res, parts[1]); o != nil {
			writeTestJSON(w, http.StatusOK, map[string]any{single: o})
			return
		}
		neutronNotFound(w)
		return
	}
	items := []map[string]any{}
	for _, id := range r.URL.Query()["id"] {
		if o := neutronObject(res, id); o != nil {
			items = append(items, o)
		}
	}
	writeTestJSON(w, http.StatusOK, map[string]any{res: items})
}

// neutronObject synthesizes the object with a UUID id.
func neutronObject(res, id string) map[string]any {
	if _, err := uuid.Parse(id); err != nil {
		return nil
	}
	o := map[string]any{"id": id, "name": "", "project_id": "fake", "tenant_id": "fake", "status": "ACTIVE"}
	if res == "subnets" {
		h := sha1.Sum([]byte(id))
		o["network_id"] = uuid.NewSHA1(uuid.NameSpaceOID, h[:]).String()
		o["ip_version"] = 4
		o["cidr"] = "198.51.100.0/24"
		o["gateway_ip"] = "198.51.100.1"
	}
	return o
}

func neutronNotFound(w http.ResponseWriter) {
	writeTestJSON(w, http.StatusNotFound, map[string]any{"NeutronError": map[string]string{
		"type": "NotFound", "message": "not found", "detail": ""}})
}

func writeTestJSON(w http.ResponseWriter, status int, body any) {
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// startFakeNeutron serves a fake Neutron; with next != "" it forwards every
// other request to that URL (see fakeNeutron).
func startFakeNeutron(t *testing.T, next string) (*fakeNeutron, string) {
	t.Helper()
	f := &fakeNeutron{}
	if next != "" {
		u, err := url.Parse(next)
		if err != nil {
			t.Fatal(err)
		}
		f.next = httputil.NewSingleHostReverseProxy(u)
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}
