package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The Keystone users scripts/ensure-keystone.sh creates.
type ksUser struct{ name, password, project string }

var (
	ksAdmin   = ksUser{"admin", "admin", "admin"}
	ksDemo    = ksUser{"demo", "demo", "demo"}     // member + load-balancer_member
	ksReader  = ksUser{"reader", "reader", "demo"} // reader + load-balancer_observer
	ksAlt     = ksUser{"alt", "alt", "alt"}        // member of a second project
	ksService = ksUser{"octavia", "octavia", "service"}
)

// keystone talks to Keystone's v3 API with an admin token.
type keystone struct {
	url        string // http://127.0.0.1:5000/v3
	adminToken string
	client     *http.Client

	mu     sync.Mutex
	tokens map[ksUser][2]string // token, project id
}

func keystoneURL() string {
	if u := os.Getenv("OSTIA_E2E_KEYSTONE_URL"); u != "" {
		return strings.TrimRight(u, "/")
	}
	return "http://127.0.0.1:5000/v3"
}

// requireKeystone returns a client for the Keystone the tests use, or skips
// the test (fails under CI) when it is not running with the expected users.
func requireKeystone(t *testing.T) *keystone {
	t.Helper()
	k := &keystone{url: keystoneURL(), client: &http.Client{Timeout: 60 * time.Second}}
	const hint = "run scripts/ensure-keystone.sh (or set OSTIA_E2E_KEYSTONE_URL)"
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(k.url)
	if err != nil {
		unavailable(t, "Keystone is not reachable at %s: %v; %s", k.url, err, hint)
	}
	resp.Body.Close()
	for _, u := range []ksUser{ksAdmin, ksDemo, ksReader, ksAlt, ksService} {
		tok, _, err := k.token(u)
		if err != nil {
			unavailable(t, "Keystone at %s does not issue a token for %s in project %s: %v; %s",
				k.url, u.name, u.project, err, hint)
		}
		if u == ksAdmin {
			k.adminToken = tok
		}
	}
	return k
}

// token returns a project-scoped token for u (issued once per test) and
// the project's id.
func (k *keystone) token(u ksUser) (string, string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if t, ok := k.tokens[u]; ok {
		return t[0], t[1], nil
	}
	tok, project, err := k.issueToken(u)
	if err != nil {
		return "", "", err
	}
	if k.tokens == nil {
		k.tokens = map[ksUser][2]string{}
	}
	k.tokens[u] = [2]string{tok, project}
	return tok, project, nil
}

func (k *keystone) issueToken(u ksUser) (string, string, error) {
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": u.name, "domain": map[string]string{"id": "default"}, "password": u.password}}},
		"scope": map[string]any{"project": map[string]any{"name": u.project, "domain": map[string]string{"id": "default"}}},
	}}
	b, _ := json.Marshal(body)
	resp, err := k.client.Post(k.url+"/auth/tokens", "application/json", bytes.NewReader(b))
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", "", fmt.Errorf("POST /auth/tokens: HTTP %d: %s", resp.StatusCode, raw)
	}
	var out struct {
		Token struct {
			Project struct{ ID string } `json:"project"`
		} `json:"token"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", "", err
	}
	return resp.Header.Get("X-Subject-Token"), out.Token.Project.ID, nil
}

// call sends an admin request to Keystone and decodes the answer.
func (k *keystone) call(method, path string, body, out any, want ...int) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, k.url+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-Auth-Token", k.adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	ok := false
	for _, c := range want {
		ok = ok || resp.StatusCode == c
	}
	if !ok {
		return fmt.Errorf("keystone %s %s: HTTP %d: %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// serviceID returns the id of the catalog service of a type, creating it
// when missing (the network service is not created by keystone-setup.sh).
func (k *keystone) serviceID(typ, name string) (string, error) {
	var list struct {
		Services []struct{ ID string } `json:"services"`
	}
	if err := k.call("GET", "/services?type="+typ, nil, &list, 200); err != nil {
		return "", err
	}
	if len(list.Services) > 0 {
		return list.Services[0].ID, nil
	}
	var created struct {
		Service struct{ ID string } `json:"service"`
	}
	err := k.call("POST", "/services", map[string]any{"service": map[string]any{"type": typ, "name": name, "enabled": true}},
		&created, 201)
	return created.Service.ID, err
}

const regionPrefix = "ostia-e2e-"

// registerRegion creates a catalog region of its own for one test, with
// public endpoints for the load-balancer service (the Ostia the test
// started), the network service (the test's fake Neutron, which the CLI
// asks to resolve subnets) and identity. The CLI selects it with
// region_name, so concurrent runs and the RegionOne endpoints of a `make
// up` do not interfere. Everything is removed when the test ends.
func (k *keystone) registerRegion(t *testing.T, lbURL, neutronURL string) string {
	t.Helper()
	k.removeStaleRegions(t)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	region := regionPrefix + hex.EncodeToString(suffix)
	desc := "ostia e2e test, created " + time.Now().UTC().Format(time.RFC3339)
	if err := k.call("POST", "/regions", map[string]any{"region": map[string]any{"id": region, "description": desc}}, nil, 201); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.removeRegion(t, region) })
	for _, e := range []struct{ typ, name, url string }{
		{"load-balancer", "octavia", lbURL},
		{"network", "neutron", neutronURL},
		{"identity", "keystone", k.url},
	} {
		sid, err := k.serviceID(e.typ, e.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := k.call("POST", "/endpoints", map[string]any{"endpoint": map[string]any{
			"interface": "public", "region_id": region, "service_id": sid, "url": e.url, "enabled": true}}, nil, 201); err != nil {
			t.Fatal(err)
		}
	}
	return region
}

func (k *keystone) removeRegion(t *testing.T, region string) {
	var eps struct {
		Endpoints []struct{ ID string } `json:"endpoints"`
	}
	if err := k.call("GET", "/endpoints?region_id="+region, nil, &eps, 200); err != nil {
		t.Logf("cleanup region %s: %v", region, err)
		return
	}
	for _, e := range eps.Endpoints {
		if err := k.call("DELETE", "/endpoints/"+e.ID, nil, nil, 204, 404); err != nil {
			t.Logf("cleanup region %s: %v", region, err)
		}
	}
	if err := k.call("DELETE", "/regions/"+region, nil, nil, 204, 404); err != nil {
		t.Logf("cleanup region %s: %v", region, err)
	}
}

// removeStaleRegions deletes the regions of test runs that were killed
// before their cleanup (older than an hour).
func (k *keystone) removeStaleRegions(t *testing.T) {
	var list struct {
		Regions []struct {
			ID          string `json:"id"`
			Description string `json:"description"`
		} `json:"regions"`
	}
	if err := k.call("GET", "/regions", nil, &list, 200); err != nil {
		t.Logf("list regions: %v", err)
		return
	}
	for _, r := range list.Regions {
		if !strings.HasPrefix(r.ID, regionPrefix) {
			continue
		}
		_, ts, _ := strings.Cut(r.Description, "created ")
		created, err := time.Parse(time.RFC3339, ts)
		if err == nil && time.Since(created) > time.Hour {
			k.removeRegion(t, r.ID)
		}
	}
}
