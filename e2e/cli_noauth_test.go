package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestOpenStackCLINoAuth drives an Ostia running with auth_strategy =
// noauth with `openstack --os-auth-type none --os-endpoint URL`. The CLI
// then sends every service, Neutron and Keystone look-ups included, to that
// one URL, so the test puts its fake Neutron in front of Ostia there. Every
// noauth request is an admin's, so this test also covers the admin command
// groups: providers, flavor profiles, flavors, availability zone profiles,
// availability zones and amphorae.
func TestOpenStackCLINoAuth(t *testing.T) {
	start := time.Now()
	bin := requireCLI(t)
	o := startOstia(t) // noauth is the default
	_, endpoint := startFakeNeutron(t, o.URL)
	cli := &osc{bin: bin, env: cliEnv(t, ""), flags: []string{"--os-auth-type", "none", "--os-endpoint", endpoint}}
	rest := &restClient{base: o.URL}
	const project = "0f6b7c1e9d8a4e2bb3c4d5e6f7a8b9c0"

	// The catalog: an ACTIVE_STANDBY flavor and an availability zone.
	var providers, caps []obj
	var fp, azp obj
	concurrently(t,
		func() error { return jsonOf(cli, &providers, "loadbalancer", "provider", "list") },
		func() error { return jsonOf(cli, &caps, "loadbalancer", "provider", "capability", "list", "amphora") },
		func() error {
			return jsonOf(cli, &fp, "loadbalancer", "flavorprofile", "create", "--name", "fp-e2e", "--provider", "amphora",
				"--flavor-data", `{"loadbalancer_topology": "ACTIVE_STANDBY"}`)
		},
		func() error {
			return jsonOf(cli, &azp, "loadbalancer", "availabilityzoneprofile", "create", "--name", "azp-e2e",
				"--provider", "amphora", "--availability-zone-data", `{"compute_zone": "nova"}`)
		},
	)
	if !slices.ContainsFunc(providers, func(p obj) bool { return p.str("name") == "amphora" }) {
		t.Errorf("provider list = %v, want amphora", providers)
	}
	if !slices.ContainsFunc(caps, func(c obj) bool { return c.str("name") == "loadbalancer_topology" }) ||
		!slices.ContainsFunc(caps, func(c obj) bool { return c.str("name") == "compute_zone" }) {
		t.Errorf("provider capability list amphora = %v, want loadbalancer_topology and compute_zone", caps)
	}
	var fl, az obj
	concurrently(t,
		func() error {
			return jsonOf(cli, &fl, "loadbalancer", "flavor", "create", "--name", "flavor-e2e", "--flavorprofile", "fp-e2e",
				"--description", "two amphorae", "--enable")
		},
		func() error {
			return jsonOf(cli, &az, "loadbalancer", "availabilityzone", "create", "--name", "az-e2e",
				"--availabilityzoneprofile", "azp-e2e", "--enable")
		},
	)
	expect(t, "flavor: flavor_profile_id", fl.str("flavor_profile_id"), fp.str("id"))
	expect(t, "availability zone: availability_zone_profile_id", az.str("availability_zone_profile_id"), azp.str("id"))

	var lb obj
	cli.json(t, &lb, "loadbalancer", "create", "--name", "noauth-lb", "--vip-subnet-id", testSubnet,
		"--project", project, "--flavor", "flavor-e2e", "--availability-zone", "az-e2e", "--wait")
	lbID := lb.str("id")
	expect(t, "load balancer: provisioning_status", lb.str("provisioning_status"), "ACTIVE")
	expect(t, "load balancer: project_id", lb.str("project_id"), project)
	expect(t, "load balancer: flavor_id", lb.str("flavor_id"), fl.str("id"))
	expect(t, "load balancer: availability_zone", lb.str("availability_zone"), "az-e2e")

	// Amphorae: the flavor gives two; show, configure and fail one over.
	var amps []obj
	cli.json(t, &amps, "loadbalancer", "amphora", "list", "--loadbalancer", lbID)
	var roles []string
	for _, a := range amps {
		roles = append(roles, a.str("role"))
	}
	slices.Sort(roles)
	expect(t, "amphora roles", roles, []string{"BACKUP", "MASTER"})
	ampID := amps[0].str("id")
	var amp obj
	concurrently(t,
		func() error { return jsonOf(cli, &amp, "loadbalancer", "amphora", "show", ampID) },
		func() error { _, err := cli.run("loadbalancer", "amphora", "configure", ampID); return err },
		// Noop amphorae send no heartbeats, so there are no statistics (as with Octavia's noop driver).
		func() error {
			return cli.fails("Amphora stats for "+ampID+" not found", "loadbalancer", "amphora", "stats", "show", ampID)
		},
	)
	expect(t, "amphora show: loadbalancer_id", amp.str("loadbalancer_id"), lbID)
	cli.ok(t, "loadbalancer", "amphora", "failover", "--wait", ampID)
	// `--wait` waits for the load balancer to be ACTIVE, which with Ostia it
	// never stopped being (see amphoraeSettled); wait for the amphorae.
	amphoraeSettled(t, rest, lbID, ampID, 2)
	cli.json(t, &amps, "loadbalancer", "amphora", "list", "--loadbalancer", lbID)
	if len(amps) != 2 || contains(ids(amps), ampID) {
		t.Errorf("amphorae after the failover of %s: %v, want two others", ampID, ids(amps))
	}

	var listener, pool, member obj
	cli.json(t, &listener, "loadbalancer", "listener", "create", "--protocol", "TCP", "--protocol-port", "443", lbID)
	rest.waitLBActive(t, lbID)
	cli.json(t, &pool, "loadbalancer", "pool", "create", "--listener", listener.str("id"), "--protocol", "TCP",
		"--lb-algorithm", "SOURCE_IP")
	rest.waitLBActive(t, lbID)
	cli.json(t, &member, "loadbalancer", "member", "create", "--address", "192.0.2.20", "--protocol-port", "443",
		pool.str("id"))
	rest.waitLBActive(t, lbID)

	var tree statusTree
	var stats obj
	var lbs, flavors, zones, quotas []obj
	concurrently(t,
		func() error { return rawJSONOf(cli, &tree, "loadbalancer", "status", "show", lbID) },
		func() error { return jsonOf(cli, &stats, "loadbalancer", "stats", "show", lbID) },
		func() error { return jsonOf(cli, &lbs, "loadbalancer", "list", "--project", project) },
		func() error { return jsonOf(cli, &flavors, "loadbalancer", "flavor", "list") },
		func() error { return jsonOf(cli, &zones, "loadbalancer", "availabilityzone", "list") },
		func() error { return jsonOf(cli, &quotas, "loadbalancer", "quota", "list") },
	)
	tree.check(t, lbID, listener.str("id"), pool.str("id"), "", member.str("id"))
	expect(t, "stats: bytes_in", stats.num("bytes_in"), 0)
	expect(t, "loadbalancer list --project", ids(lbs), []string{lbID})
	expect(t, "flavor list", ids(flavors), []string{fl.str("id")})
	if len(zones) != 1 || zones[0].str("name") != "az-e2e" {
		t.Errorf("availabilityzone list = %v, want az-e2e", zones)
	}
	t.Logf("quota list: %v", quotas)

	cli.ok(t, "loadbalancer", "delete", "--cascade", "--wait", lbID)
	concurrently(t,
		func() error {
			return jsonOf(cli, &lbs, "loadbalancer", "list")
		},
		func() error {
			if _, err := cli.run("loadbalancer", "flavor", "delete", "flavor-e2e"); err != nil {
				return err
			}
			_, err := cli.run("loadbalancer", "flavorprofile", "delete", "fp-e2e")
			return err
		},
		func() error {
			if _, err := cli.run("loadbalancer", "availabilityzone", "delete", "az-e2e"); err != nil {
				return err
			}
			_, err := cli.run("loadbalancer", "availabilityzoneprofile", "delete", "azp-e2e")
			return err
		},
	)
	expect(t, "loadbalancer list after delete", ids(lbs), []string{})
	for _, p := range []string{"/v2/lbaas/flavors/" + fl.str("id"), "/v2/lbaas/flavorprofiles/" + fp.str("id"),
		"/v2/lbaas/availabilityzones/az-e2e", "/v2/lbaas/availabilityzoneprofiles/" + azp.str("id")} {
		if code, err := rest.do(t.Context(), "GET", p, nil, nil); err != nil || code != 404 {
			t.Errorf("GET %s after delete: %s", p, fmt.Sprint(code, " ", err))
		}
	}
	t.Logf("TestOpenStackCLINoAuth took %.1fs", time.Since(start).Seconds())
}

// amphoraeSettled waits until a load balancer has n amphorae, all
// ALLOCATED, none of them old.
//
// TODO(ostia bug): Octavia's PUT /v2/octavia/amphorae/{id}/failover sets
// the load balancer PENDING_UPDATE until the failover flow ends (409 for
// other changes meanwhile, and `amphora failover --wait` waits for it).
// Ostia's gateway only records the amphora's failover request and the load
// balancer stays ACTIVE, so a load-balancer failover or a child update
// accepted meanwhile races the amphora failover (seen: three amphorae, and
// an update saga pushing configuration to the amphora being replaced). Drop
// this wait once the load balancer goes PENDING_UPDATE.
func amphoraeSettled(t *testing.T, rest *restClient, lbID, oldID string, n int) {
	t.Helper()
	var last string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var body struct {
			Amphorae []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"amphorae"`
		}
		code, err := rest.do(t.Context(), "GET", "/v2/octavia/amphorae?loadbalancer_id="+lbID, nil, &body)
		last = fmt.Sprintf("HTTP %d %v %+v", code, err, body.Amphorae)
		settled := err == nil && code == 200 && len(body.Amphorae) == n
		for _, a := range body.Amphorae {
			settled = settled && a.ID != oldID && a.Status == "ALLOCATED"
		}
		if settled {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("amphora %s not replaced within 60s; amphorae of %s: %s", oldID, lbID, last)
}
