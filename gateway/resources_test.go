package gateway_test

import (
	"fmt"
	"net/http"
	"testing"
)

const subnet = "8f0b8a61-5c2f-4b8b-9b8e-4a0bd1d0c0de"

func id(r *response, key string) string {
	s, _ := r.obj(key)["id"].(string)
	return s
}

// TestFullStackThroughTheAPI builds a load balancer object by object,
// reads every object back right after its write (read-your-writes), and
// deletes it with cascade; once with the API's writes projected in the
// command's own transaction, once in a transaction after it.
func TestFullStackThroughTheAPI(t *testing.T) {
	for _, separate := range []bool{false, true} {
		name := "inline"
		if separate {
			name = "separate transaction"
		}
		t.Run(name, func(t *testing.T) { fullStackThroughTheAPI(t, envOptions{separateProjection: separate}) })
	}
}

func fullStackThroughTheAPI(t *testing.T, opts envOptions) {
	e := newAPIEnv(t, opts)
	e.headers.Set("X-Project-Id", "p1")
	L := "/v2/lbaas"

	lb := e.must(201, "POST", L+"/loadbalancers", map[string]any{"loadbalancer": map[string]any{
		"name": "web", "vip_subnet_id": subnet, "tags": []string{"a", "b"}}})
	lbID := id(lb, "loadbalancer")
	if got := lb.obj("loadbalancer")["provisioning_status"]; got != "PENDING_CREATE" {
		t.Fatalf("new LB status %v", got)
	}
	if got := e.must(200, "GET", L+"/loadbalancers/"+lbID, nil).obj("loadbalancer")["name"]; got != "web" {
		t.Fatalf("read-your-writes: name %v", got)
	}
	// Immutable while PENDING_CREATE.
	r := e.must(409, "PUT", L+"/loadbalancers/"+lbID, map[string]any{"loadbalancer": map[string]any{"name": "x"}})
	if want := fmt.Sprintf("Invalid state PENDING_CREATE of loadbalancer resource %s", lbID); r.body["faultstring"] != want {
		t.Fatalf("faultstring %q, want %q", r.body["faultstring"], want)
	}
	e.worker()

	lis := e.must(201, "POST", L+"/listeners", map[string]any{"listener": map[string]any{
		"loadbalancer_id": lbID, "protocol": "HTTP", "protocol_port": 80, "name": "l1"}})
	lisID := id(lis, "listener")
	e.must(409, "POST", L+"/listeners", map[string]any{"listener": map[string]any{
		"loadbalancer_id": lbID, "protocol": "HTTP", "protocol_port": 81}})
	e.worker()
	pool := e.must(201, "POST", L+"/pools", map[string]any{"pool": map[string]any{
		"listener_id": lisID, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "name": "p"}})
	poolID := id(pool, "pool")
	e.worker()
	m1 := e.must(201, "POST", L+"/pools/"+poolID+"/members", map[string]any{"member": map[string]any{
		"address": "192.0.2.10", "protocol_port": 8080}})
	e.worker()
	e.must(201, "POST", L+"/pools/"+poolID+"/members", map[string]any{"member": map[string]any{
		"address": "192.0.2.11", "protocol_port": 8080, "weight": 5}})
	e.worker()
	hm := e.must(201, "POST", L+"/healthmonitors", map[string]any{"healthmonitor": map[string]any{
		"pool_id": poolID, "type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 3}})
	e.worker()
	pol := e.must(201, "POST", L+"/l7policies", map[string]any{"l7policy": map[string]any{
		"listener_id": lisID, "action": "REJECT"}})
	polID := id(pol, "l7policy")
	e.worker()
	rule := e.must(201, "POST", L+"/l7policies/"+polID+"/rules", map[string]any{"rule": map[string]any{
		"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"}})
	e.worker()

	// Reads of every kind.
	e.must(200, "GET", L+"/listeners/"+lisID, nil)
	e.must(200, "GET", L+"/pools/"+poolID, nil)
	e.must(200, "GET", L+"/pools/"+poolID+"/members/"+id(m1, "member"), nil)
	e.must(200, "GET", L+"/healthmonitors/"+id(hm, "healthmonitor"), nil)
	e.must(200, "GET", L+"/l7policies/"+polID, nil)
	e.must(200, "GET", L+"/l7policies/"+polID+"/rules/"+id(rule, "rule"), nil)
	if n := len(e.must(200, "GET", L+"/pools/"+poolID+"/members", nil).list("members")); n != 2 {
		t.Fatalf("%d members, want 2", n)
	}
	if n := len(e.must(200, "GET", L+"/pools/"+poolID+"/members?weight=5", nil).list("members")); n != 1 {
		t.Fatalf("%d members with weight 5, want 1", n)
	}
	st := e.must(200, "GET", L+"/loadbalancers/"+lbID+"/status", nil)
	lbs := st.obj("statuses")["loadbalancer"].(map[string]any)
	if ls := lbs["listeners"].([]any); len(ls) != 1 {
		t.Fatalf("status tree listeners: %v", ls)
	}
	stats := e.must(200, "GET", L+"/loadbalancers/"+lbID+"/stats", nil).obj("stats")
	if stats["bytes_in"] != float64(0) {
		t.Fatalf("stats %v", stats)
	}
	e.must(200, "GET", L+"/listeners/"+lisID+"/stats", nil)

	// Updates answer the new state.
	if got := e.must(200, "PUT", L+"/pools/"+poolID+"/members/"+id(m1, "member"), map[string]any{"member": map[string]any{
		"weight": 10}}).obj("member")["weight"]; got != float64(10) {
		t.Fatalf("member weight %v", got)
	}
	e.worker()
	// A member seen through another pool is not found.
	e.must(404, "GET", L+"/pools/"+lisID+"/members/"+id(m1, "member"), nil)

	// Another project sees nothing and may not read the LB.
	e.headers.Set("X-Project-Id", "p2")
	e.headers.Set("X-Roles", "member")
	if n := len(e.must(200, "GET", L+"/loadbalancers", nil).list("loadbalancers")); n != 1 {
		// noauth is an admin context (as in Octavia): it sees every project.
		t.Fatalf("noauth list: %d LBs", n)
	}
	e.headers.Set("X-Project-Id", "p1")

	e.must(400, "DELETE", L+"/loadbalancers/"+lbID, nil)
	e.must(204, "DELETE", L+"/loadbalancers/"+lbID+"?cascade=true", nil)
	if got := e.must(200, "GET", L+"/loadbalancers/"+lbID, nil).obj("loadbalancer")["provisioning_status"]; got != "PENDING_DELETE" {
		t.Fatalf("after delete: %v", got)
	}
	e.worker()
	e.must(404, "GET", L+"/loadbalancers/"+lbID, nil)
	e.must(404, "GET", L+"/listeners/"+lisID, nil)
	if n := len(e.must(200, "GET", L+"/loadbalancers", nil).list("loadbalancers")); n != 0 {
		t.Fatalf("%d LBs after delete", n)
	}
	_ = http.StatusOK
}

// An amphora failover through the API locks the load balancer like
// Octavia's: PENDING_UPDATE at once, so a second failover gets 409.
func TestAmphoraFailoverLocksTheLoadBalancer(t *testing.T) {
	e := newAPIEnv(t, envOptions{})
	e.headers.Set("X-Project-Id", "p1")
	lbID := id(e.must(201, "POST", "/v2/lbaas/loadbalancers", map[string]any{"loadbalancer": map[string]any{
		"vip_subnet_id": subnet}}), "loadbalancer")
	e.worker()
	amps := e.must(200, "GET", "/v2/octavia/amphorae?loadbalancer_id="+lbID, nil).list("amphorae")
	if len(amps) != 1 {
		t.Fatalf("%d amphorae", len(amps))
	}
	ampID := amps[0].(map[string]any)["id"].(string)
	e.must(202, "PUT", "/v2/octavia/amphorae/"+ampID+"/failover", nil)
	if got := e.must(200, "GET", "/v2/lbaas/loadbalancers/"+lbID, nil).obj("loadbalancer")["provisioning_status"]; got != "PENDING_UPDATE" {
		t.Fatalf("load balancer %v after an amphora failover, want PENDING_UPDATE", got)
	}
	r := e.must(409, "PUT", "/v2/octavia/amphorae/"+ampID+"/failover", nil)
	if want := "Load Balancer " + lbID + " is immutable and cannot be updated."; r.body["faultstring"] != want {
		t.Fatalf("faultstring %q", r.body["faultstring"])
	}
	e.must(409, "PUT", "/v2/lbaas/loadbalancers/"+lbID+"/failover", nil)
	e.must(404, "PUT", "/v2/octavia/amphorae/"+lbID+"/failover", nil)
}
