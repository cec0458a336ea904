package gateway_test

import (
	"context"
	"testing"

	"github.com/ostia/ostia/gateway/auth"
)

// tokens is a token validator with fixed credentials per token.
type tokens map[string]*auth.Credentials

func (t tokens) Validate(_ context.Context, token string) (*auth.Credentials, error) {
	c, ok := t[token]
	if !ok {
		return nil, auth.ErrUnauthorized
	}
	cp := *c
	return &cp, nil
}

// TestRBACAndProjectScoping checks Octavia's default policy through the
// API with Keystone-style credentials: members write their own project,
// readers only read, other projects see nothing and get 403 on objects
// they do not own, admins see everything, and quotas are enforced.
func TestRBACAndProjectScoping(t *testing.T) {
	tok := tokens{
		"member-p1": {UserID: "u1", ProjectID: "p1", Roles: []string{"member", "reader"}},
		"reader-p1": {UserID: "u2", ProjectID: "p1", Roles: []string{"reader"}},
		"member-p2": {UserID: "u3", ProjectID: "p2", Roles: []string{"member", "reader"}},
		"admin":     {UserID: "u4", ProjectID: "admin", Roles: []string{"admin", "member", "reader"}, IsAdmin: true},
		"nobody-p1": {UserID: "u5", ProjectID: "p1"},
	}
	e := newAPIEnv(t, envOptions{validator: tok, enforceQuotas: true})
	as := func(token string) { e.headers.Set("X-Auth-Token", token) }
	L := "/v2/lbaas"
	lbBody := map[string]any{"loadbalancer": map[string]any{"vip_subnet_id": subnet}}

	e.must(401, "GET", L+"/loadbalancers", nil)
	as("bogus")
	e.must(401, "GET", L+"/loadbalancers", nil)

	as("member-p1")
	lbID := id(e.must(201, "POST", L+"/loadbalancers", lbBody), "loadbalancer")
	// A member may not create in another project.
	e.must(403, "POST", L+"/loadbalancers", map[string]any{"loadbalancer": map[string]any{
		"vip_subnet_id": subnet, "project_id": "p2"}})
	e.worker()

	as("reader-p1")
	e.must(200, "GET", L+"/loadbalancers/"+lbID, nil)
	if n := len(e.must(200, "GET", L+"/loadbalancers", nil).list("loadbalancers")); n != 1 {
		t.Fatalf("reader sees %d LBs", n)
	}
	r := e.must(403, "POST", L+"/loadbalancers", lbBody)
	if r.body["faultstring"] != auth.ForbiddenMessage {
		t.Fatalf("403 body %s", r.raw)
	}
	e.must(403, "PUT", L+"/loadbalancers/"+lbID, map[string]any{"loadbalancer": map[string]any{"name": "x"}})
	e.must(403, "DELETE", L+"/loadbalancers/"+lbID, nil)

	as("nobody-p1")
	e.must(403, "GET", L+"/loadbalancers", nil)

	as("member-p2")
	if n := len(e.must(200, "GET", L+"/loadbalancers", nil).list("loadbalancers")); n != 0 {
		t.Fatalf("another project sees %d LBs", n)
	}
	e.must(403, "GET", L+"/loadbalancers/"+lbID, nil)
	e.must(403, "GET", L+"/loadbalancers?project_id=p1", nil)
	e.must(403, "POST", L+"/listeners", map[string]any{"listener": map[string]any{
		"loadbalancer_id": lbID, "protocol": "HTTP", "protocol_port": 80}})
	// Failover and amphorae are admin only.
	as("member-p1")
	e.must(403, "PUT", L+"/loadbalancers/"+lbID+"/failover", nil)
	e.must(403, "GET", "/v2/octavia/amphorae", nil)
	e.must(403, "PUT", L+"/quotas/p1", map[string]any{"quota": map[string]any{"load_balancer": 1}})
	e.must(200, "GET", L+"/quotas/p1", nil)
	e.must(403, "GET", L+"/quotas/p2", nil)

	as("admin")
	e.must(202, "PUT", L+"/quotas/p1", map[string]any{"quota": map[string]any{"load_balancer": 1}})
	if n := len(e.must(200, "GET", "/v2/octavia/amphorae", nil).list("amphorae")); n != 1 {
		t.Fatalf("admin sees %d amphorae", n)
	}
	if n := len(e.must(200, "GET", L+"/loadbalancers", nil).list("loadbalancers")); n != 1 {
		t.Fatalf("admin sees %d LBs", n)
	}

	// The quota is met: 403 with Octavia's message, and nothing changes.
	as("member-p1")
	r = e.must(403, "POST", L+"/loadbalancers", lbBody)
	if want := "Quota has been met for resources: Load Balancer"; r.body["faultstring"] != want {
		t.Fatalf("quota fault %q, want %q", r.body["faultstring"], want)
	}
	as("admin")
	if n := len(e.must(200, "GET", L+"/loadbalancers", nil).list("loadbalancers")); n != 1 {
		t.Fatalf("after refused create: %d LBs", n)
	}
	e.must(202, "DELETE", L+"/quotas/p1", nil)
	as("member-p1")
	e.must(201, "POST", L+"/loadbalancers", lbBody)
}
