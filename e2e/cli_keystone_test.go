package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ostia/ostia/internal/heartbeat"
)

// TestOpenStackCLIWithKeystone is the acceptance test of the Octavia API
// with the real `openstack` CLI and real Keystone tokens: a load balancer
// with a listener, a pool, two members, a health monitor and an L7 policy
// with a rule, each created, shown, listed, set and unset; the status tree;
// statistics fed by an amphora heartbeat; quotas; failover; RBAC for the
// reader role and a second project; and a cascade delete.
//
// The CLI finds Ostia through the Keystone catalog: the test registers a
// region of its own whose load-balancer endpoint is the Ostia it started
// and whose network endpoint is a fake Neutron (the CLI resolves
// --vip-subnet-id there). Each CLI call costs a Python start and a
// Keystone login (~1-1.5 s on an idle 2-core machine), so only the load
// balancer create, one set, the failover and the cascade delete use the
// CLI's --wait (which polls every 3 s); after the other writes the test
// polls the API itself, and it reads back set/unset results through the
// API too.
func TestOpenStackCLIWithKeystone(t *testing.T) {
	start := time.Now()
	bin := requireCLI(t)
	ks := requireKeystone(t)
	o := startOstia(t,
		"OSTIA_API_AUTH_STRATEGY=keystone",
		"OSTIA_API_KEYSTONE_URL="+ks.url,
		"OSTIA_API_KEYSTONE_SERVICE_USER="+ksService.name,
		"OSTIA_API_KEYSTONE_SERVICE_PASSWORD="+ksService.password,
		"OSTIA_API_KEYSTONE_SERVICE_PROJECT="+ksService.project,
		// A configured default besides the -1 (unlimited) ones.
		"OSTIA_QUOTAS_DEFAULT_L7RULE_QUOTA=50",
	)
	neutron, neutronURL := startFakeNeutron(t, "")
	region := ks.registerRegion(t, o.URL, neutronURL)
	clouds := writeClouds(t, ks.url, region, map[string]ksUser{
		"e2e-admin": ksAdmin, "e2e-demo": ksDemo, "e2e-reader": ksReader, "e2e-alt": ksAlt})
	env := cliEnv(t, clouds)
	admin := &osc{bin: bin, env: env, cloud: "e2e-admin"}
	demo := &osc{bin: bin, env: env, cloud: "e2e-demo"}
	reader := &osc{bin: bin, env: env, cloud: "e2e-reader"}
	alt := &osc{bin: bin, env: env, cloud: "e2e-alt"}

	demoToken, demoProject, err := ks.token(ksDemo)
	if err != nil {
		t.Fatal(err)
	}
	adminToken, _, err := ks.token(ksAdmin)
	if err != nil {
		t.Fatal(err)
	}
	altToken, _, err := ks.token(ksAlt)
	if err != nil {
		t.Fatal(err)
	}
	// Direct API clients, for waits and read-backs.
	rest := &restClient{base: o.URL, headers: map[string]string{"X-Auth-Token": demoToken}}
	restAdmin := &restClient{base: o.URL, headers: map[string]string{"X-Auth-Token": adminToken}}
	restAlt := &restClient{base: o.URL, headers: map[string]string{"X-Auth-Token": altToken}}
	t.Logf("setup took %.1fs (Ostia %s, Keystone region %s)", time.Since(start).Seconds(), o.URL, region)

	// Quotas: the admin limits the demo project to two members.
	var quota obj
	admin.json(t, &quota, "loadbalancer", "quota", "set", "--loadbalancer", "5", "--listener", "5", "--pool", "5",
		"--healthmonitor", "5", "--member", "2", "--l7policy", "5", "--l7rule", "5", demoProject)
	expect(t, "quota set: member", quota.num("member"), 2)
	expect(t, "quota set: load_balancer", quota.num("load_balancer"), 5)

	// The load balancer.
	var lb obj
	demo.json(t, &lb, "loadbalancer", "create", "--name", "e2e-lb", "--description", "made by e2e",
		"--vip-subnet-id", testSubnet, "--tag", "e2e", "--wait")
	lbID := lb.str("id")
	expect(t, "created load balancer: provisioning_status", lb.str("provisioning_status"), "ACTIVE")
	expect(t, "created load balancer: vip_subnet_id", lb.str("vip_subnet_id"), testSubnet)
	expect(t, "created load balancer: project_id", lb.str("project_id"), demoProject)
	if !contains(neutron.requests(), "GET /v2.0/subnets?id="+testSubnet) {
		t.Errorf("the CLI did not resolve the VIP subnet through the catalog's network endpoint; fake Neutron saw %v",
			neutron.requests())
	}
	// alt's load balancer, for the project-isolation checks.
	var altLB obj
	alt.json(t, &altLB, "loadbalancer", "create", "--name", "alt-lb", "--vip-subnet-id", testSubnet)
	altLBID := altLB.str("id")

	concurrently(t,
		func() error { return quotaShows(demo, demoProject, 2) },
		func() error { return quotaShows(reader, demoProject, 2) },
		func() error {
			var defaults obj
			if err := jsonOf(admin, &defaults, "loadbalancer", "quota", "defaults", "show"); err != nil {
				return err
			}
			if defaults.num("member") != -1 || defaults.num("load_balancer") != -1 || defaults.num("l7rule") != 50 {
				return fmt.Errorf("quota defaults = %v, want l7rule 50 (configured) and -1 (unlimited) elsewhere", defaults)
			}
			return nil
		},
		func() error {
			// The reader (roles reader + load-balancer_observer) may read but not write.
			return reader.fails("HTTP 403", "loadbalancer", "create", "--name", "nope", "--vip-subnet-id", testSubnet)
		},
		// A project never sees another project's load balancers.
		func() error { return seesOnly(reader, []string{lbID}, []string{altLBID}) },
		func() error { return seesOnly(demo, []string{lbID}, []string{altLBID}) },
		func() error { return seesOnly(alt, []string{altLBID}, []string{lbID}) },
		func() error { return alt.fails("HTTP 403", "loadbalancer", "show", lbID) },
		// The admin sees every project.
		func() error { return seesOnly(admin, []string{lbID, altLBID}, nil) },
	)

	// Load balancer show, set, unset (list: at the end, with the others).
	var shown obj
	demo.json(t, &shown, "loadbalancer", "show", "e2e-lb")
	expect(t, "loadbalancer show: id", shown.str("id"), lbID)
	expect(t, "loadbalancer show: description", shown.str("description"), "made by e2e")
	expect(t, "loadbalancer show: tags", shown.tags(), []string{"e2e"})
	demo.ok(t, "loadbalancer", "set", "--name", "e2e-lb2", "--description", "changed", "--tag", "extra", "--wait", lbID)
	shown = rest.get(t, "/v2/lbaas/loadbalancers/"+lbID, "loadbalancer")
	expect(t, "after set: name", shown.str("name"), "e2e-lb2")
	expect(t, "after set: description", shown.str("description"), "changed")
	expect(t, "after set: tags", shown.tags(), []string{"e2e", "extra"})
	demo.ok(t, "loadbalancer", "unset", "--description", "--tag", "e2e", lbID)
	rest.waitLBActive(t, lbID)
	shown = rest.get(t, "/v2/lbaas/loadbalancers/"+lbID, "loadbalancer")
	expect(t, "after unset: description", shown.str("description"), "")
	expect(t, "after unset: tags", shown.tags(), []string{"extra"})

	// Listener.
	var listener obj
	demo.json(t, &listener, "loadbalancer", "listener", "create", "--name", "e2e-listener", "--protocol", "HTTP",
		"--protocol-port", "80", "--connection-limit", "1000", lbID)
	listenerID := listener.str("id")
	rest.waitLBActive(t, lbID)
	demo.json(t, &listener, "loadbalancer", "listener", "show", "e2e-listener")
	expect(t, "listener: id", listener.str("id"), listenerID)
	expect(t, "listener: provisioning_status", listener.str("provisioning_status"), "ACTIVE")
	expect(t, "listener: connection_limit", listener.num("connection_limit"), 1000)
	demo.ok(t, "loadbalancer", "listener", "set", "--description", "web", "--connection-limit", "2000", listenerID)
	rest.waitLBActive(t, lbID)
	listener = rest.get(t, "/v2/lbaas/listeners/"+listenerID, "listener")
	expect(t, "listener after set: description", listener.str("description"), "web")
	expect(t, "listener after set: connection_limit", listener.num("connection_limit"), 2000)
	demo.ok(t, "loadbalancer", "listener", "unset", "--description", "--connection-limit", listenerID)
	rest.waitLBActive(t, lbID)
	listener = rest.get(t, "/v2/lbaas/listeners/"+listenerID, "listener")
	expect(t, "listener after unset: description", listener.str("description"), "")
	expect(t, "listener after unset: connection_limit", listener.num("connection_limit"), -1)

	// Pool.
	var pool obj
	demo.json(t, &pool, "loadbalancer", "pool", "create", "--name", "e2e-pool", "--listener", listenerID,
		"--protocol", "HTTP", "--lb-algorithm", "ROUND_ROBIN", "--session-persistence", "type=SOURCE_IP")
	poolID := pool.str("id")
	rest.waitLBActive(t, lbID)
	demo.json(t, &pool, "loadbalancer", "pool", "show", "e2e-pool")
	expect(t, "pool: id", pool.str("id"), poolID)
	if !strings.Contains(pool.str("session_persistence"), "SOURCE_IP") {
		t.Errorf("pool session_persistence = %q, want SOURCE_IP", pool.str("session_persistence"))
	}
	demo.ok(t, "loadbalancer", "pool", "set", "--lb-algorithm", "LEAST_CONNECTIONS", "--description", "backends", poolID)
	rest.waitLBActive(t, lbID)
	pool = rest.get(t, "/v2/lbaas/pools/"+poolID, "pool")
	expect(t, "pool after set: lb_algorithm", pool.str("lb_algorithm"), "LEAST_CONNECTIONS")
	expect(t, "pool after set: description", pool.str("description"), "backends")
	demo.ok(t, "loadbalancer", "pool", "unset", "--description", "--session-persistence", poolID)
	rest.waitLBActive(t, lbID)
	pool = rest.get(t, "/v2/lbaas/pools/"+poolID, "pool")
	expect(t, "pool after unset: description", pool.str("description"), "")
	expect(t, "pool after unset: session_persistence", pool.str("session_persistence"), "")

	// Two members; the quota (2) refuses a third.
	var m1, m2 obj
	demo.json(t, &m1, "loadbalancer", "member", "create", "--name", "m1", "--address", "192.0.2.10",
		"--protocol-port", "8080", "--weight", "5", poolID)
	rest.waitLBActive(t, lbID)
	demo.json(t, &m2, "loadbalancer", "member", "create", "--name", "m2", "--address", "192.0.2.11",
		"--protocol-port", "8080", "--subnet-id", testSubnet, poolID)
	rest.waitLBActive(t, lbID)
	m1ID, m2ID := m1.str("id"), m2.str("id")
	expect(t, "member m1: weight", m1.num("weight"), 5)
	expect(t, "member m2: subnet_id", m2.str("subnet_id"), testSubnet)
	var member obj
	concurrently(t,
		func() error {
			return demo.fails("Quota has been met for resources: Member (HTTP 403)", "loadbalancer", "member", "create",
				"--address", "192.0.2.12", "--protocol-port", "8080", poolID)
		},
		func() error {
			return reader.fails("HTTP 403", "loadbalancer", "member", "create", "--address", "192.0.2.13",
				"--protocol-port", "8080", poolID)
		},
		func() error { return jsonOf(demo, &member, "loadbalancer", "member", "show", poolID, "m1") },
	)
	expect(t, "member show: id", member.str("id"), m1ID)
	demo.ok(t, "loadbalancer", "member", "set", "--weight", "10", "--enable-backup", poolID, "m1")
	rest.waitLBActive(t, lbID)
	member = rest.get(t, "/v2/lbaas/pools/"+poolID+"/members/"+m1ID, "member")
	expect(t, "member after set: weight", member.num("weight"), 10)
	expect(t, "member after set: backup", member.str("backup"), "true")
	demo.ok(t, "loadbalancer", "member", "unset", "--weight", poolID, m1ID)
	rest.waitLBActive(t, lbID)
	member = rest.get(t, "/v2/lbaas/pools/"+poolID+"/members/"+m1ID, "member")
	expect(t, "member after unset: weight", member.num("weight"), 1)

	// Health monitor.
	var hm obj
	demo.json(t, &hm, "loadbalancer", "healthmonitor", "create", "--name", "e2e-hm", "--delay", "5", "--timeout", "3",
		"--max-retries", "3", "--type", "HTTP", "--url-path", "/healthz", poolID)
	hmID := hm.str("id")
	rest.waitLBActive(t, lbID)
	demo.json(t, &hm, "loadbalancer", "healthmonitor", "show", "e2e-hm")
	expect(t, "healthmonitor: id", hm.str("id"), hmID)
	expect(t, "healthmonitor: url_path", hm.str("url_path"), "/healthz")
	demo.ok(t, "loadbalancer", "healthmonitor", "set", "--delay", "10", "--expected-codes", "200,204", hmID)
	rest.waitLBActive(t, lbID)
	hm = rest.get(t, "/v2/lbaas/healthmonitors/"+hmID, "healthmonitor")
	expect(t, "healthmonitor after set: delay", hm.num("delay"), 10)
	expect(t, "healthmonitor after set: expected_codes", hm.str("expected_codes"), "200,204")
	demo.ok(t, "loadbalancer", "healthmonitor", "unset", "--url-path", "--expected-codes", hmID)
	rest.waitLBActive(t, lbID)
	hm = rest.get(t, "/v2/lbaas/healthmonitors/"+hmID, "healthmonitor")
	expect(t, "healthmonitor after unset: url_path (default)", hm.str("url_path"), "/")
	expect(t, "healthmonitor after unset: expected_codes (default)", hm.str("expected_codes"), "200")

	// L7 policy.
	var pol obj
	demo.json(t, &pol, "loadbalancer", "l7policy", "create", "--name", "e2e-policy", "--action", "REDIRECT_TO_URL",
		"--redirect-url", "http://example.com/", listenerID)
	polID := pol.str("id")
	rest.waitLBActive(t, lbID)
	demo.json(t, &pol, "loadbalancer", "l7policy", "show", "e2e-policy")
	expect(t, "l7policy: id", pol.str("id"), polID)
	expect(t, "l7policy: action", pol.str("action"), "REDIRECT_TO_URL")
	demo.ok(t, "loadbalancer", "l7policy", "set", "--action", "REDIRECT_TO_POOL", "--redirect-pool", poolID,
		"--description", "to the pool", polID)
	rest.waitLBActive(t, lbID)
	pol = rest.get(t, "/v2/lbaas/l7policies/"+polID, "l7policy")
	expect(t, "l7policy after set: action", pol.str("action"), "REDIRECT_TO_POOL")
	expect(t, "l7policy after set: redirect_pool_id", pol.str("redirect_pool_id"), poolID)
	expect(t, "l7policy after set: description", pol.str("description"), "to the pool")
	demo.ok(t, "loadbalancer", "l7policy", "unset", "--description", polID)
	rest.waitLBActive(t, lbID)
	pol = rest.get(t, "/v2/lbaas/l7policies/"+polID, "l7policy")
	expect(t, "l7policy after unset: description", pol.str("description"), "")

	// L7 rule. (`l7rule create --wait` of python3-octaviaclient 3.1.0 swaps
	// the arguments of its final l7rule_show and always fails with "<policy
	// id> not found"; a client bug, real Octavia answers the same.)
	var rule obj
	demo.json(t, &rule, "loadbalancer", "l7rule", "create", "--compare-type", "STARTS_WITH", "--type", "PATH",
		"--value", "/api", polID)
	ruleID := rule.str("id")
	rest.waitLBActive(t, lbID)
	demo.json(t, &rule, "loadbalancer", "l7rule", "show", polID, ruleID)
	expect(t, "l7rule: value", rule.str("value"), "/api")
	demo.ok(t, "loadbalancer", "l7rule", "set", "--value", "/v2", "--invert", polID, ruleID)
	rest.waitLBActive(t, lbID)
	rule = rest.get(t, "/v2/lbaas/l7policies/"+polID+"/rules/"+ruleID, "rule")
	expect(t, "l7rule after set: value", rule.str("value"), "/v2")
	expect(t, "l7rule after set: invert", rule.str("invert"), "true")
	demo.ok(t, "loadbalancer", "l7rule", "unset", "--invert", polID, ruleID)
	rest.waitLBActive(t, lbID)
	rule = rest.get(t, "/v2/lbaas/l7policies/"+polID+"/rules/"+ruleID, "rule")
	expect(t, "l7rule after unset: invert", rule.str("invert"), "false")

	// An amphora heartbeat feeds the statistics.
	var amps struct {
		Amphorae []struct {
			ID string `json:"id"`
		} `json:"amphorae"`
	}
	if code, err := restAdmin.do(context.Background(), "GET", "/v2/octavia/amphorae?loadbalancer_id="+lbID, nil, &amps); err != nil || code != http.StatusOK || len(amps.Amphorae) == 0 {
		t.Fatalf("amphorae of %s: HTTP %d %v %+v", lbID, code, err, amps)
	}
	hb := heartbeat.Stats{RX: 1000, TX: 4000, Conns: 3, TotConns: 20, EReq: 1}
	sendHeartbeats(t, o, rest, lbID, amphoraHeartbeat{amphoraID: amps.Amphorae[0].ID, listenerID: listenerID,
		poolID: poolID, members: []string{m1ID, m2ID}, stats: hb})

	// Lists, statistics and the status tree, all at once.
	var lbStats, lStats obj
	var tree statusTree
	listArgs := map[string][]string{
		"loadbalancer":  {"loadbalancer", "list", "--name", "e2e-lb2"},
		"listener":      {"loadbalancer", "listener", "list", "--loadbalancer", lbID},
		"pool":          {"loadbalancer", "pool", "list", "--loadbalancer", lbID},
		"member":        {"loadbalancer", "member", "list", poolID},
		"healthmonitor": {"loadbalancer", "healthmonitor", "list"},
		"l7policy":      {"loadbalancer", "l7policy", "list", "--listener", listenerID},
		"l7rule":        {"loadbalancer", "l7rule", "list", polID},
	}
	listed := make(map[string]*[]obj, len(listArgs))
	checks := []func() error{
		func() error { return jsonOf(demo, &lbStats, "loadbalancer", "stats", "show", lbID) },
		func() error { return jsonOf(demo, &lStats, "loadbalancer", "listener", "stats", "show", listenerID) },
		// `status show` prints JSON by itself.
		func() error { return rawJSONOf(reader, &tree, "loadbalancer", "status", "show", lbID) },
	}
	for name, args := range listArgs {
		out := new([]obj)
		listed[name] = out
		checks = append(checks, func() error { return jsonOf(demo, out, args...) })
	}
	concurrently(t, checks...)
	lists := map[string][]string{}
	for name, out := range listed {
		lists[name] = ids(*out)
	}
	expect(t, "loadbalancer list --name e2e-lb2", lists["loadbalancer"], []string{lbID})
	expect(t, "listener list", lists["listener"], []string{listenerID})
	expect(t, "pool list", lists["pool"], []string{poolID})
	if got := lists["member"]; len(got) != 2 || !contains(got, m1ID) || !contains(got, m2ID) {
		t.Errorf("member list = %v, want m1 %s and m2 %s", got, m1ID, m2ID)
	}
	expect(t, "healthmonitor list", lists["healthmonitor"], []string{hmID})
	expect(t, "l7policy list", lists["l7policy"], []string{polID})
	expect(t, "l7rule list", lists["l7rule"], []string{ruleID})
	for name, st := range map[string]obj{"loadbalancer stats": lbStats, "listener stats": lStats} {
		in := st.num("bytes_in")
		n := in / float64(hb.RX)
		if in < float64(hb.RX) || n != float64(int(n)) {
			t.Errorf("%s: bytes_in = %v, want a multiple of the heartbeat's %d", name, in, hb.RX)
			continue
		}
		expect(t, name+": bytes_out", st.num("bytes_out"), n*float64(hb.TX))
		expect(t, name+": total_connections", st.num("total_connections"), n*float64(hb.TotConns))
		expect(t, name+": request_errors", st.num("request_errors"), n*float64(hb.EReq))
		expect(t, name+": active_connections", st.num("active_connections"), hb.Conns)
	}
	tree.check(t, lbID, listenerID, poolID, hmID, m1ID, m2ID)

	// Failover is admin only; the admin's replaces the amphora.
	var before, after []obj
	concurrently(t,
		func() error { return demo.fails("HTTP 403", "loadbalancer", "failover", lbID) },
		func() error { return demo.fails("HTTP 403", "loadbalancer", "amphora", "list") },
		func() error { return jsonOf(admin, &before, "loadbalancer", "amphora", "list", "--loadbalancer", lbID) },
	)
	admin.ok(t, "loadbalancer", "failover", "--wait", lbID)
	admin.json(t, &after, "loadbalancer", "amphora", "list", "--loadbalancer", lbID)
	if len(before) == 0 || len(after) == 0 || contains(ids(after), before[0].str("id")) {
		t.Errorf("amphorae before failover %v, after %v: want a new amphora", ids(before), ids(after))
	}

	// Quota unset and reset.
	admin.ok(t, "loadbalancer", "quota", "unset", "--member", demoProject)
	quota = rest.get(t, "/v2/lbaas/quotas/"+demoProject, "quota")
	expect(t, "quota after unset: member", quota.num("member"), -1)
	expect(t, "quota after unset: load_balancer", quota.num("load_balancer"), 5)
	admin.ok(t, "loadbalancer", "quota", "reset", demoProject)
	quota = rest.get(t, "/v2/lbaas/quotas/"+demoProject, "quota")
	expect(t, "quota after reset: load_balancer", quota.num("load_balancer"), -1)
	expect(t, "quota after reset: l7rule (configured default)", quota.num("l7rule"), 50)

	// Cascade delete removes the whole tree.
	demo.ok(t, "loadbalancer", "delete", "--cascade", "--wait", lbID)
	concurrently(t,
		func() error { return demo.fails("Unable to locate", "loadbalancer", "show", lbID) },
		func() error {
			for _, p := range []string{"/v2/lbaas/loadbalancers/" + lbID, "/v2/lbaas/listeners/" + listenerID,
				"/v2/lbaas/pools/" + poolID, "/v2/lbaas/healthmonitors/" + hmID, "/v2/lbaas/l7policies/" + polID,
				"/v2/lbaas/pools/" + poolID + "/members/" + m1ID} {
				if code, err := rest.do(context.Background(), "GET", p, nil, nil); err != nil || code != http.StatusNotFound {
					return fmt.Errorf("GET %s after the cascade delete: HTTP %d %v, want 404", p, code, err)
				}
			}
			return nil
		},
		func() error {
			// alt deletes its own load balancer.
			if err := waitActive(restAlt, altLBID); err != nil {
				return err
			}
			_, err := alt.run("loadbalancer", "delete", altLBID)
			return err
		},
	)
	t.Logf("TestOpenStackCLIWithKeystone took %.1fs", time.Since(start).Seconds())
}

// statusTree is the part of `loadbalancer status show` the tests check.
type statusTree struct {
	LoadBalancer struct {
		ID        string `json:"id"`
		Listeners []struct {
			ID    string `json:"id"`
			Pools []struct {
				ID            string `json:"id"`
				HealthMonitor *struct {
					ID string `json:"id"`
				} `json:"health_monitor"`
				Members []struct {
					ID string `json:"id"`
				} `json:"members"`
			} `json:"pools"`
		} `json:"listeners"`
	} `json:"loadbalancer"`
}

// check compares the tree with lb > listener > pool > (monitor, members);
// hmID "" means no monitor.
func (tr statusTree) check(t *testing.T, lbID, listenerID, poolID, hmID string, members ...string) {
	t.Helper()
	l := tr.LoadBalancer
	ok := l.ID == lbID && len(l.Listeners) == 1 && l.Listeners[0].ID == listenerID && len(l.Listeners[0].Pools) == 1
	if ok {
		p := l.Listeners[0].Pools[0]
		ok = p.ID == poolID && len(p.Members) == len(members)
		if hmID != "" {
			ok = ok && p.HealthMonitor != nil && p.HealthMonitor.ID == hmID
		}
		for _, m := range p.Members {
			ok = ok && contains(members, m.ID)
		}
	}
	if !ok {
		b, _ := json.Marshal(tr)
		t.Errorf("status tree = %s, want lb %s > listener %s > pool %s with monitor %q and members %v",
			b, lbID, listenerID, poolID, hmID, members)
	}
}

func decodeJSON(s string, out any) error {
	if err := json.Unmarshal([]byte(s), out); err != nil {
		return fmt.Errorf("decode %q: %w", s, err)
	}
	return nil
}

// jsonOf runs a command with -f json and decodes its output.
func jsonOf(c *osc, out any, args ...string) error {
	return rawJSONOf(c, out, append(args, "-f", "json")...)
}

// rawJSONOf runs a command that prints JSON by itself (`status show`) and
// decodes its output.
func rawJSONOf(c *osc, out any, args ...string) error {
	s, err := c.run(args...)
	if err != nil {
		return err
	}
	return decodeJSON(s, out)
}

// quotaShows checks `quota show` of a project as some user.
func quotaShows(c *osc, project string, members float64) error {
	var q obj
	if err := jsonOf(c, &q, "loadbalancer", "quota", "show", project); err != nil {
		return err
	}
	if q.num("member") != members {
		return fmt.Errorf("[%s] quota show %s: member = %v, want %v", c.who(), project, q["member"], members)
	}
	return nil
}

// seesOnly checks that `loadbalancer list` as a user includes every id of
// want and none of hidden.
func seesOnly(c *osc, want, hidden []string) error {
	var list []obj
	if err := jsonOf(c, &list, "loadbalancer", "list"); err != nil {
		return err
	}
	got := ids(list)
	for _, id := range want {
		if !contains(got, id) {
			return fmt.Errorf("[%s] loadbalancer list = %v, missing %s", c.who(), got, id)
		}
	}
	for _, id := range hidden {
		if contains(got, id) {
			return fmt.Errorf("[%s] loadbalancer list = %v includes %s of another project", c.who(), got, id)
		}
	}
	return nil
}

// waitActive polls a load balancer until its provisioning status is
// ACTIVE; it gives up on ERROR or after a minute.
func waitActive(c *restClient, id string) error {
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		var body struct {
			LB struct {
				ProvisioningStatus string `json:"provisioning_status"`
			} `json:"loadbalancer"`
		}
		code, err := c.do(context.Background(), "GET", "/v2/lbaas/loadbalancers/"+id, nil, &body)
		switch {
		case err != nil || code != http.StatusOK:
			last = fmt.Sprintf("HTTP %d %v", code, err)
		case body.LB.ProvisioningStatus == "ACTIVE":
			return nil
		case body.LB.ProvisioningStatus == "ERROR":
			return fmt.Errorf("load balancer %s went to ERROR", id)
		default:
			last = body.LB.ProvisioningStatus
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("load balancer %s not ACTIVE within 60s (last: %s)", id, last)
}
