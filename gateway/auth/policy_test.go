package auth

import (
	"errors"
	"net/http"
	"testing"

	"github.com/ostia/ostia/aggregates"
)

func TestPolicyMatrix(t *testing.T) {
	const own, other = "p1", "p2"
	users := map[string]*Credentials{
		"admin":          {ProjectID: "adm", Roles: []string{"admin", "member", "reader"}},
		"member":         {ProjectID: own, Roles: []string{"member", "reader"}},
		"reader":         {ProjectID: own, Roles: []string{"reader"}},
		"lb_member":      {ProjectID: own, Roles: []string{"load-balancer_member"}},
		"lb_observer":    {ProjectID: own, Roles: []string{"load-balancer_observer"}},
		"lb_global_obs":  {ProjectID: own, Roles: []string{"load-balancer_global_observer"}},
		"lb_quota_admin": {ProjectID: own, Roles: []string{"load-balancer_quota_admin"}},
		"lb_admin":       {ProjectID: own, Roles: []string{"load-balancer_admin"}},
		"service":        {ProjectID: "svc", Roles: []string{"service"}},
		"nobody":         {ProjectID: own},
		"noauth":         NoAuthCredentials(http.Header{}),
	}
	// action, target -> users allowed (legacy roles on)
	cases := []struct {
		action, target string
		allowed        []string
	}{
		{"loadbalancer:get_one", own, []string{"admin", "member", "reader", "lb_member", "lb_observer", "lb_global_obs", "lb_admin", "noauth"}},
		{"loadbalancer:get_one", other, []string{"admin", "lb_global_obs", "lb_admin", "noauth"}},
		{"listener:get_all-global", own, []string{"admin", "lb_global_obs", "lb_admin", "noauth"}},
		{"member:get_all", other, []string{"admin", "lb_global_obs", "lb_admin", "service", "noauth"}},
		{"pool:post", own, []string{"admin", "member", "lb_member", "lb_admin", "noauth"}},
		{"l7rule:delete", other, []string{"admin", "lb_admin", "noauth"}},
		{"loadbalancer:put:vip_sg_ids", own, []string{"admin", "member", "lb_member", "lb_admin", "noauth"}},
		{"loadbalancer:put_failover", own, []string{"admin", "lb_admin", "noauth"}},
		{"amphora:get_all", own, []string{"admin", "lb_admin", "noauth"}},
		{"quota:get_one", own, []string{"admin", "member", "reader", "lb_member", "lb_observer", "lb_global_obs", "lb_quota_admin", "lb_admin", "noauth"}},
		{"quota:get_all-global", own, []string{"admin", "lb_global_obs", "lb_quota_admin", "lb_admin", "noauth"}},
		{"quota:put", own, []string{"admin", "lb_quota_admin", "lb_admin", "noauth"}},
		{"provider:get_all", own, []string{"admin", "member", "reader", "lb_member", "lb_observer", "lb_global_obs", "lb_admin", "noauth"}},
		{"provider-flavor:get_all", own, []string{"admin", "lb_admin", "noauth"}},
		{"flavor:get_one", own, []string{"admin", "member", "reader", "lb_member", "lb_observer", "lb_global_obs", "lb_admin", "noauth"}},
		{"availability-zone:post", own, []string{"admin", "lb_admin", "noauth"}},
		{"os_load-balancer_api:flavor-profile:get_all", own, []string{"admin", "lb_admin", "noauth"}},
	}
	for _, c := range cases {
		allowed := map[string]bool{}
		for _, u := range c.allowed {
			allowed[u] = true
		}
		for name, u := range users {
			err := Authorize(u, c.action, c.target)
			if allowed[name] != (err == nil) {
				t.Errorf("%s on %s by %s: err=%v, want allowed=%v", c.action, c.target, name, err, allowed[name])
			}
			if err != nil {
				var ae *aggregates.Error
				if !errors.As(err, &ae) || ae.Kind.HTTPStatus() != 403 || ae.Message != ForbiddenMessage {
					t.Errorf("refusal %v", err)
				}
			}
		}
	}
	strict := Policy{EnforceNewDefaults: true}
	for _, name := range []string{"lb_member", "lb_observer", "lb_global_obs", "lb_quota_admin", "lb_admin"} {
		if err := strict.Authorize(users[name], "loadbalancer:get_one", own); err == nil {
			t.Errorf("%s allowed with enforce_new_defaults", name)
		}
	}
	if err := strict.Authorize(users["member"], "loadbalancer:post", own); err != nil {
		t.Errorf("member refused with enforce_new_defaults: %v", err)
	}
	if err := Authorize(users["admin"], "loadbalancer:explode", own); err == nil || errors.Is(err, aggregates.ErrForbidden) {
		t.Errorf("unknown action: %v", err)
	}
}

func TestNoAuthHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("X-Tenant-Id", "t1")
	h.Set("X-Roles", "member, reader")
	c := NoAuthCredentials(h)
	if c.ProjectID != "t1" || !c.IsAdmin || len(c.Roles) != 2 || c.Roles[1] != "reader" {
		t.Fatalf("%+v", c)
	}
}
