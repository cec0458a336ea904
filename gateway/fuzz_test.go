package gateway_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
)

// Fuzzing the API: `go test ./gateway -run '^$' -fuzz FuzzCreateBodies`
// (and FuzzListQueries). The seeds run in every default test run. The
// properties: never a 5xx or a dropped connection, every error is
// Octavia's fault body, and a refused request changes nothing (no event
// is stored).

func eventCount(t *testing.T, e *apiEnv) int64 {
	t.Helper()
	var n int64
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// fuzzTargets are the create endpoints, with a parent the test made.
func fuzzSetup(t testing.TB) (*apiEnv, map[string]string) {
	e := newAPIEnv(t, envOptions{})
	e.headers.Set("X-Project-Id", "p1")
	L := "/v2/lbaas"
	lbID := id(e.must(201, "POST", L+"/loadbalancers", map[string]any{"loadbalancer": map[string]any{"vip_subnet_id": subnet}}), "loadbalancer")
	e.worker()
	lisID := id(e.must(201, "POST", L+"/listeners", map[string]any{"listener": map[string]any{
		"loadbalancer_id": lbID, "protocol": "HTTP", "protocol_port": 80}}), "listener")
	e.worker()
	poolID := id(e.must(201, "POST", L+"/pools", map[string]any{"pool": map[string]any{
		"listener_id": lisID, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}}), "pool")
	e.worker()
	polID := id(e.must(201, "POST", L+"/l7policies", map[string]any{"l7policy": map[string]any{
		"listener_id": lisID, "action": "REJECT"}}), "l7policy")
	e.worker()
	return e, map[string]string{"LB": lbID, "LIS": lisID, "POOL": poolID, "POL": polID}
}

func FuzzCreateBodies(f *testing.F) {
	seeds := []struct {
		target int
		body   string
	}{
		{0, `{"loadbalancer": {"vip_subnet_id": "8f0b8a61-5c2f-4b8b-9b8e-4a0bd1d0c0de"}}`},
		{0, `{"loadbalancer": {"vip_subnet_id": "not-a-uuid"}}`},
		{0, `{"loadbalancer": {"vip_subnet_id": "8f0b8a61-5c2f-4b8b-9b8e-4a0bd1d0c0de", "listeners": [{"protocol": "HTTP", "protocol_port": 80, "default_pool": {"name": "p"}}], "pools": [{"name": "p", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [{"address": "10.0.0.1", "protocol_port": 80}]}]}}`},
		{1, `{"listener": {"loadbalancer_id": "LB", "protocol": "TCP", "protocol_port": 70000}}`},
		{1, `{"listener": {"loadbalancer_id": "LB", "protocol": "HTTP", "protocol_port": 8080, "insert_headers": {"X-Forwarded-For": true}}}`},
		{2, `{"pool": {"loadbalancer_id": "LB", "protocol": "UDP", "lb_algorithm": "SOURCE_IP", "session_persistence": {"type": "APP_COOKIE"}}}`},
		{3, `{"member": {"address": "2001:db8::1", "protocol_port": 1, "weight": 257}}`},
		{4, `{"healthmonitor": {"pool_id": "POOL", "type": "HTTP", "delay": -1, "timeout": 1e99, "max_retries": 3}}`},
		{5, `{"rule": {"type": "HEADER", "compare_type": "REGEX", "key": "X", "value": "(("}}`},
		{6, `{"members": [{"address": "10.0.0.1", "protocol_port": 80}, {"address": "10.0.0.1", "protocol_port": 80}]}`},
		{7, `{"quota": {"load_balancer": -2, "healthmonitor": "x"}}`},
		{0, `{"loadbalancer": {"vip_subnet_id": "8f0b8a61-5c2f-4b8b-9b8e-4a0bd1d0c0de", "name": "a\u0000b"}}`},
		{0, `{"loadbalancer": {"vip_subnet_id": "8f0b8a61-5c2f-4b8b-9b8e-4a0bd1d0c0de", "tags": ["\ud800"]}}`},
		{1, `{"listener": {"loadbalancer_id": "LB", "protocol": "HTTP", "protocol_port": 81, "insert_headers": {"X-Forwarded-For": "\u0000"}}}`},
		{0, `[]`}, {1, `null`}, {2, `{"pool": null}`}, {3, `{"member": {"address": null}}`}, {0, "\xff\xfe"},
		{8, `{"flavorprofile": {"name": "fp", "provider_name": "amphora", "flavor_data": "{\"loadbalancer_topology\": \"SINGLE\"}"}}`},
		{9, `{"l7policy": {"listener_id": "LIS", "action": "REDIRECT_TO_URL", "redirect_url": "ftp://x y", "position": 0}}`},
	}
	for _, s := range seeds {
		f.Add(s.target, s.body)
	}
	e, ids := fuzzSetup(f)
	f.Fuzz(func(t *testing.T, target int, body string) {
		e.t = t
		L := "/v2/lbaas"
		targets := []struct{ method, path string }{
			{"POST", L + "/loadbalancers"}, {"POST", L + "/listeners"}, {"POST", L + "/pools"},
			{"POST", L + "/pools/POOL/members"}, {"POST", L + "/healthmonitors"}, {"POST", L + "/l7policies/POL/rules"},
			{"PUT", L + "/pools/POOL/members"}, {"PUT", L + "/quotas/p1"}, {"POST", L + "/flavorprofiles"},
			{"POST", L + "/l7policies"}, {"PUT", L + "/loadbalancers/LB"}, {"PUT", L + "/listeners/LIS"},
		}
		if target < 0 {
			target = -target
		}
		tg := targets[target%len(targets)]
		path := tg.path
		for k, v := range ids {
			path = strings.ReplaceAll(path, k, v)
			body = strings.ReplaceAll(body, `"`+k+`"`, `"`+v+`"`)
		}
		before := eventCount(t, e)
		r := e.do(tg.method, path, body)
		if r.status >= 500 {
			t.Fatalf("%s %s %q: %d %s", tg.method, path, body, r.status, r.raw)
		}
		if r.status >= 400 {
			if _, ok := r.body["faultstring"]; !ok {
				t.Fatalf("%s %s %q: %d without a fault body: %s", tg.method, path, body, r.status, r.raw)
			}
			if after := eventCount(t, e); after != before {
				t.Fatalf("%s %s %q: refused with %d but %d events were stored", tg.method, path, body, r.status, after-before)
			}
		}
		// Whatever was accepted is finished, so the next input meets an
		// ACTIVE load balancer again.
		e.worker()
	})
}

func FuzzListQueries(f *testing.F) {
	for _, q := range []string{
		"", "limit=2&sort=name:asc", "limit=-1", "limit=x", "limit=99999999999999999999", "sort=name:up",
		"sort=a:b:c", "sort_key=name,id&sort_dir=desc", "fields=id&fields=nope", "marker=nope", "page_reverse=True&marker=x",
		"tags=a,b&not-tags-any=c", "bogus=1", "name=%00", "provisioning_status=ACTIVE&provisioning_status=ERROR",
		"project_id=p1&admin_state_up=true", "limit=1&limit=2", "created_at=2026", "marker=%ff", "fields=%00",
	} {
		for _, kind := range []string{"loadbalancers", "listeners", "pools", "healthmonitors", "l7policies", "quotas", "flavors"} {
			f.Add(kind, q)
		}
	}
	e, _ := fuzzSetup(f)
	f.Fuzz(func(t *testing.T, kind, query string) {
		e.t = t
		if strings.ContainsAny(kind, "/?#%") || kind == "" {
			return
		}
		if _, err := url.ParseQuery(query); err != nil {
			return
		}
		if strings.IndexFunc(query, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			return // not a request line an HTTP client can send
		}
		r := e.do("GET", "/v2/lbaas/"+url.PathEscape(kind)+"?"+query, nil)
		if r.status >= 500 {
			t.Fatalf("GET %s?%s: %d %s", kind, query, r.status, r.raw)
		}
		if r.status >= 400 && r.status != 405 {
			if _, ok := r.body["faultstring"]; !ok {
				t.Fatalf("GET %s?%s: %d without a fault body: %s", kind, query, r.status, r.raw)
			}
		}
	})
}
