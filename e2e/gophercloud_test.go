package e2e

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/amphorae"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/flavorprofiles"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/l7policies"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/listeners"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/monitors"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/pools"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/providers"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/quotas"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// noauthClient is gophercloud's client for an Octavia API running with
// auth_strategy = noauth: no Keystone, the endpoint given directly (as
// openstack.NewLoadBalancerV2 would build it from the catalog: resource
// base "<endpoint>/v2.0/"), and the caller's project in X-Project-Id, which
// noauth mode takes as the request's project.
func noauthClient(endpoint, project string) *gophercloud.ServiceClient {
	return &gophercloud.ServiceClient{
		ProviderClient: &gophercloud.ProviderClient{},
		Endpoint:       endpoint + "/",
		ResourceBase:   endpoint + "/v2.0/",
		Type:           "load-balancer",
		MoreHeaders:    map[string]string{"X-Project-Id": project},
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitLB polls a load balancer with gophercloud until it is ACTIVE.
func waitLB(t *testing.T, c *gophercloud.ServiceClient, id string) *loadbalancers.LoadBalancer {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		lb, err := loadbalancers.Get(context.Background(), c, id).Extract()
		must(t, "get load balancer "+id, err)
		switch {
		case lb.ProvisioningStatus == "ACTIVE":
			return lb
		case lb.ProvisioningStatus == "ERROR":
			t.Fatalf("load balancer %s went to ERROR", id)
		case time.Now().After(deadline):
			t.Fatalf("load balancer %s still %s after 60s", id, lb.ProvisioningStatus)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitGone polls a GET until it answers 404.
func waitGone(t *testing.T, what string, get func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := get()
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still there after 60s (last error: %v)", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }

// TestGophercloudNoAuth drives every resource gophercloud's loadbalancer v2
// packages support against Ostia in noauth mode; availability zones and
// their profiles, which gophercloud v2.15 lacks, go through the raw
// ServiceClient.
func TestGophercloudNoAuth(t *testing.T) {
	start := time.Now()
	o := startOstia(t)
	const project = "5d3c2b1a0f9e4d8c8b7a6f5e4d3c2b1a"
	c := noauthClient(o.URL, project)
	ctx := context.Background()

	// Providers and their capabilities.
	pages, err := providers.List(c, providers.ListOpts{}).AllPages(ctx)
	must(t, "list providers", err)
	provs, err := providers.ExtractProviders(pages)
	must(t, "extract providers", err)
	var provNames []string
	for _, p := range provs {
		provNames = append(provNames, p.Name)
	}
	if !slices.Contains(provNames, "amphora") {
		t.Errorf("providers = %v, want amphora", provNames)
	}
	fcaps, err := providers.ListFlavorCapabilities(ctx, c, "amphora", nil).Extract()
	must(t, "flavor capabilities", err)
	if !slices.ContainsFunc(fcaps, func(c providers.Capability) bool { return c.Name == "loadbalancer_topology" }) {
		t.Errorf("flavor capabilities = %+v, want loadbalancer_topology", fcaps)
	}
	azcaps, err := providers.ListAvailabilityZoneCapabilities(ctx, c, "amphora", nil).Extract()
	must(t, "availability zone capabilities", err)
	if !slices.ContainsFunc(azcaps, func(c providers.Capability) bool { return c.Name == "compute_zone" }) {
		t.Errorf("availability zone capabilities = %+v, want compute_zone", azcaps)
	}

	// Flavor profile and flavor: ACTIVE_STANDBY gives a load balancer two amphorae.
	fp, err := flavorprofiles.Create(ctx, c, flavorprofiles.CreateOpts{Name: "fp-e2e", ProviderName: "amphora",
		FlavorData: `{"loadbalancer_topology": "SINGLE"}`}).Extract()
	must(t, "create flavor profile", err)
	fp, err = flavorprofiles.Update(ctx, c, fp.ID, flavorprofiles.UpdateOpts{Name: "fp-e2e-ha",
		FlavorData: `{"loadbalancer_topology": "ACTIVE_STANDBY"}`}).Extract()
	must(t, "update flavor profile", err)
	expect(t, "flavor profile name", fp.Name, "fp-e2e-ha")
	fpGot, err := flavorprofiles.Get(ctx, c, fp.ID).Extract()
	must(t, "get flavor profile", err)
	expect(t, "flavor profile data", fpGot.FlavorData, `{"loadbalancer_topology": "ACTIVE_STANDBY"}`)
	pages, err = flavorprofiles.List(c, flavorprofiles.ListOpts{Name: "fp-e2e-ha"}).AllPages(ctx)
	must(t, "list flavor profiles", err)
	fps, err := flavorprofiles.ExtractFlavorProfiles(pages)
	must(t, "extract flavor profiles", err)
	if len(fps) != 1 || fps[0].ID != fp.ID {
		t.Errorf("flavor profiles named fp-e2e-ha = %+v, want %s", fps, fp.ID)
	}
	fl, err := flavors.Create(ctx, c, flavors.CreateOpts{Name: "flavor-e2e", Description: "ha",
		FlavorProfileId: fp.ID, Enabled: true}).Extract()
	must(t, "create flavor", err)
	fl, err = flavors.Update(ctx, c, fl.ID, flavors.UpdateOpts{Description: "active-standby", Enabled: true}).Extract()
	must(t, "update flavor", err)
	expect(t, "flavor description", fl.Description, "active-standby")
	flGot, err := flavors.Get(ctx, c, fl.ID).Extract()
	must(t, "get flavor", err)
	expect(t, "flavor profile id", flGot.FlavorProfileId, fp.ID)
	pages, err = flavors.List(c, flavors.ListOpts{Name: "flavor-e2e"}).AllPages(ctx)
	must(t, "list flavors", err)
	fls, err := flavors.ExtractFlavors(pages)
	must(t, "extract flavors", err)
	if len(fls) != 1 || fls[0].ID != fl.ID {
		t.Errorf("flavors named flavor-e2e = %+v, want %s", fls, fl.ID)
	}

	// Availability zone profile and zone (raw: not in gophercloud v2.15).
	type azProfile struct {
		ID                   string `json:"id"`
		Name                 string `json:"name"`
		ProviderName         string `json:"provider_name"`
		AvailabilityZoneData string `json:"availability_zone_data"`
	}
	type az struct {
		Name                      string `json:"name"`
		Description               string `json:"description"`
		Enabled                   bool   `json:"enabled"`
		AvailabilityZoneProfileID string `json:"availability_zone_profile_id"`
	}
	var azpBody struct {
		P azProfile `json:"availability_zone_profile"`
	}
	_, err = c.Post(ctx, c.ServiceURL("lbaas", "availabilityzoneprofiles"), map[string]any{"availability_zone_profile": map[string]any{
		"name": "azp-e2e", "provider_name": "amphora", "availability_zone_data": `{"compute_zone": "nova"}`}},
		&azpBody, &gophercloud.RequestOpts{OkCodes: []int{201}})
	must(t, "create availability zone profile", err)
	azpID := azpBody.P.ID
	_, err = c.Put(ctx, c.ServiceURL("lbaas", "availabilityzoneprofiles", azpID), map[string]any{
		"availability_zone_profile": map[string]any{"name": "azp-e2e-2"}}, &azpBody, &gophercloud.RequestOpts{OkCodes: []int{200}})
	must(t, "update availability zone profile", err)
	_, err = c.Get(ctx, c.ServiceURL("lbaas", "availabilityzoneprofiles", azpID), &azpBody, nil)
	must(t, "get availability zone profile", err)
	expect(t, "availability zone profile", azpBody.P, azProfile{ID: azpID, Name: "azp-e2e-2", ProviderName: "amphora",
		AvailabilityZoneData: `{"compute_zone": "nova"}`})
	var azpList struct {
		P []azProfile `json:"availability_zone_profiles"`
	}
	_, err = c.Get(ctx, c.ServiceURL("lbaas", "availabilityzoneprofiles"), &azpList, nil)
	must(t, "list availability zone profiles", err)
	expect(t, "availability zone profiles", len(azpList.P), 1)

	var azBody struct {
		AZ az `json:"availability_zone"`
	}
	_, err = c.Post(ctx, c.ServiceURL("lbaas", "availabilityzones"), map[string]any{"availability_zone": map[string]any{
		"name": "az-e2e", "availability_zone_profile_id": azpID, "enabled": true}}, &azBody,
		&gophercloud.RequestOpts{OkCodes: []int{201}})
	must(t, "create availability zone", err)
	_, err = c.Put(ctx, c.ServiceURL("lbaas", "availabilityzones", "az-e2e"), map[string]any{
		"availability_zone": map[string]any{"description": "zone one"}}, &azBody, &gophercloud.RequestOpts{OkCodes: []int{200}})
	must(t, "update availability zone", err)
	_, err = c.Get(ctx, c.ServiceURL("lbaas", "availabilityzones", "az-e2e"), &azBody, nil)
	must(t, "get availability zone", err)
	expect(t, "availability zone", azBody.AZ, az{Name: "az-e2e", Description: "zone one", Enabled: true,
		AvailabilityZoneProfileID: azpID})
	var azList struct {
		AZs []az `json:"availability_zones"`
	}
	_, err = c.Get(ctx, c.ServiceURL("lbaas", "availabilityzones"), &azList, nil)
	must(t, "list availability zones", err)
	expect(t, "availability zones", len(azList.AZs), 1)

	// The load balancer, with the flavor and the zone.
	lb, err := loadbalancers.Create(ctx, c, loadbalancers.CreateOpts{Name: "gc-lb", Description: "gophercloud",
		VipSubnetID: testSubnet, FlavorID: fl.ID, AvailabilityZone: "az-e2e", Tags: []string{"a", "b"}}).Extract()
	must(t, "create load balancer", err)
	expect(t, "created load balancer: provisioning_status", lb.ProvisioningStatus, "PENDING_CREATE")
	expect(t, "created load balancer: project_id", lb.ProjectID, project)
	lb = waitLB(t, c, lb.ID)
	expect(t, "load balancer: flavor_id", lb.FlavorID, fl.ID)
	expect(t, "load balancer: availability_zone", lb.AvailabilityZone, "az-e2e")
	expect(t, "load balancer: provider", lb.Provider, "amphora")
	if lb.VipAddress == "" || lb.VipPortID == "" || lb.CreatedAt.IsZero() {
		t.Errorf("load balancer: vip_address %q, vip_port_id %q, created_at %v: want all set", lb.VipAddress, lb.VipPortID, lb.CreatedAt)
	}
	lb, err = loadbalancers.Update(ctx, c, lb.ID, loadbalancers.UpdateOpts{Name: ptr("gc-lb-2"), Description: ptr(""),
		Tags: &[]string{"b", "c"}}).Extract()
	must(t, "update load balancer", err)
	lb = waitLB(t, c, lb.ID)
	expect(t, "updated load balancer: name", lb.Name, "gc-lb-2")
	expect(t, "updated load balancer: tags", lb.Tags, []string{"b", "c"})
	pages, err = loadbalancers.List(c, loadbalancers.ListOpts{Tags: []string{"c"}}).AllPages(ctx)
	must(t, "list load balancers", err)
	lbs, err := loadbalancers.ExtractLoadBalancers(pages)
	must(t, "extract load balancers", err)
	if len(lbs) != 1 || lbs[0].ID != lb.ID {
		t.Errorf("load balancers tagged c = %+v, want %s", lbs, lb.ID)
	}

	// Listener.
	li, err := listeners.Create(ctx, c, listeners.CreateOpts{LoadbalancerID: lb.ID, Protocol: listeners.ProtocolHTTP,
		ProtocolPort: 80, Name: "gc-listener", ConnLimit: ptr(100),
		InsertHeaders: map[string]string{"X-Forwarded-For": "true"}}).Extract()
	must(t, "create listener", err)
	waitLB(t, c, lb.ID)
	li, err = listeners.Update(ctx, c, li.ID, listeners.UpdateOpts{ConnLimit: ptr(200), TimeoutClientData: ptr(60000),
		AllowedCIDRs: &[]string{"192.0.2.0/24"}}).Extract()
	must(t, "update listener", err)
	waitLB(t, c, lb.ID)
	li, err = listeners.Get(ctx, c, li.ID).Extract()
	must(t, "get listener", err)
	expect(t, "listener connection_limit", li.ConnLimit, 200)
	expect(t, "listener timeout_client_data", li.TimeoutClientData, 60000)
	expect(t, "listener allowed_cidrs", li.AllowedCIDRs, []string{"192.0.2.0/24"})
	expect(t, "listener insert_headers", li.InsertHeaders, map[string]string{"X-Forwarded-For": "true"})
	pages, err = listeners.List(c, listeners.ListOpts{LoadbalancerID: lb.ID}).AllPages(ctx)
	must(t, "list listeners", err)
	lis, err := listeners.ExtractListeners(pages)
	must(t, "extract listeners", err)
	if len(lis) != 1 || lis[0].ID != li.ID {
		t.Errorf("listeners = %+v, want %s", lis, li.ID)
	}
	lstats, err := listeners.GetStats(ctx, c, li.ID).Extract()
	must(t, "listener stats", err)
	expect(t, "listener stats", *lstats, listeners.Stats{})

	// Pool, members (one by one, then a batch), health monitor.
	pool, err := pools.Create(ctx, c, pools.CreateOpts{ListenerID: li.ID, Protocol: pools.ProtocolHTTP,
		LBMethod: pools.LBMethodRoundRobin, Name: "gc-pool",
		Persistence: &pools.SessionPersistence{Type: "APP_COOKIE", CookieName: "sess"}}).Extract()
	must(t, "create pool", err)
	waitLB(t, c, lb.ID)
	_, err = pools.Update(ctx, c, pool.ID, pools.UpdateOpts{LBMethod: pools.LBMethodLeastConnections,
		Description: ptr("least")}).Extract()
	must(t, "update pool", err)
	waitLB(t, c, lb.ID)
	pool, err = pools.Get(ctx, c, pool.ID).Extract()
	must(t, "get pool", err)
	expect(t, "pool lb_algorithm", pool.LBMethod, "LEAST_CONNECTIONS")
	expect(t, "pool session_persistence", pool.Persistence, pools.SessionPersistence{Type: "APP_COOKIE", CookieName: "sess"})
	pages, err = pools.List(c, pools.ListOpts{LoadbalancerID: lb.ID}).AllPages(ctx)
	must(t, "list pools", err)
	pls, err := pools.ExtractPools(pages)
	must(t, "extract pools", err)
	if len(pls) != 1 || pls[0].ID != pool.ID {
		t.Errorf("pools = %+v, want %s", pls, pool.ID)
	}

	m1, err := pools.CreateMember(ctx, c, pool.ID, pools.CreateMemberOpts{Name: "m1", Address: "192.0.2.10",
		ProtocolPort: 8080, Weight: ptr(3), SubnetID: testSubnet}).Extract()
	must(t, "create member m1", err)
	waitLB(t, c, lb.ID)
	m2, err := pools.CreateMember(ctx, c, pool.ID, pools.CreateMemberOpts{Name: "m2", Address: "192.0.2.11",
		ProtocolPort: 8080}).Extract()
	must(t, "create member m2", err)
	waitLB(t, c, lb.ID)
	_, err = pools.UpdateMember(ctx, c, pool.ID, m1.ID, pools.UpdateMemberOpts{Weight: ptr(7), Backup: ptr(true)}).Extract()
	must(t, "update member", err)
	waitLB(t, c, lb.ID)
	m1, err = pools.GetMember(ctx, c, pool.ID, m1.ID).Extract()
	must(t, "get member", err)
	expect(t, "member weight", m1.Weight, 7)
	expect(t, "member backup", m1.Backup, true)
	// Batch: keep m1 (new weight), drop m2, add m3.
	err = pools.BatchUpdateMembers(ctx, c, pool.ID, []pools.BatchUpdateMemberOpts{
		{Address: "192.0.2.10", ProtocolPort: 8080, Name: ptr("m1"), Weight: ptr(9), SubnetID: ptr(testSubnet)},
		{Address: "192.0.2.12", ProtocolPort: 8080, Name: ptr("m3")},
	}).ExtractErr()
	must(t, "batch update members", err)
	waitLB(t, c, lb.ID)
	pages, err = pools.ListMembers(c, pool.ID, pools.ListMembersOpts{}).AllPages(ctx)
	must(t, "list members", err)
	mems, err := pools.ExtractMembers(pages)
	must(t, "extract members", err)
	byName := map[string]pools.Member{}
	for _, m := range mems {
		byName[m.Name] = m
	}
	if len(mems) != 2 || byName["m1"].ID != m1.ID || byName["m1"].Weight != 9 || byName["m3"].Address != "192.0.2.12" {
		t.Errorf("members after the batch = %+v, want m1 (%s, weight 9) and m3", mems, m1.ID)
	}
	if _, ok := byName["m2"]; ok {
		t.Errorf("member m2 %s survived a batch update without it", m2.ID)
	}

	hm, err := monitors.Create(ctx, c, monitors.CreateOpts{PoolID: pool.ID, Type: monitors.TypeHTTP, Delay: 5, Timeout: 3,
		MaxRetries: 3, URLPath: "/health", ExpectedCodes: "200-204", Name: "gc-hm"}).Extract()
	must(t, "create health monitor", err)
	waitLB(t, c, lb.ID)
	_, err = monitors.Update(ctx, c, hm.ID, monitors.UpdateOpts{Delay: 10, Name: ptr("gc-hm-2")}).Extract()
	must(t, "update health monitor", err)
	waitLB(t, c, lb.ID)
	hm, err = monitors.Get(ctx, c, hm.ID).Extract()
	must(t, "get health monitor", err)
	expect(t, "health monitor delay", hm.Delay, 10)
	expect(t, "health monitor expected_codes", hm.ExpectedCodes, "200-204")
	pages, err = monitors.List(c, monitors.ListOpts{PoolID: pool.ID}).AllPages(ctx)
	must(t, "list health monitors", err)
	hms, err := monitors.ExtractMonitors(pages)
	must(t, "extract health monitors", err)
	if len(hms) != 1 || hms[0].ID != hm.ID {
		t.Errorf("health monitors = %+v, want %s", hms, hm.ID)
	}

	// L7 policy and rules.
	pol, err := l7policies.Create(ctx, c, l7policies.CreateOpts{ListenerID: li.ID, Action: l7policies.ActionRedirectToPool,
		RedirectPoolID: pool.ID, Name: "gc-policy"}).Extract()
	must(t, "create l7 policy", err)
	waitLB(t, c, lb.ID)
	_, err = l7policies.Update(ctx, c, pol.ID, l7policies.UpdateOpts{Action: l7policies.ActionRedirectToURL,
		RedirectURL: ptr("https://example.com/"), RedirectHttpCode: 301}).Extract()
	must(t, "update l7 policy", err)
	waitLB(t, c, lb.ID)
	pol, err = l7policies.Get(ctx, c, pol.ID).Extract()
	must(t, "get l7 policy", err)
	expect(t, "l7 policy action", pol.Action, "REDIRECT_TO_URL")
	expect(t, "l7 policy redirect_http_code", pol.RedirectHttpCode, 301)
	pages, err = l7policies.List(c, l7policies.ListOpts{ListenerID: li.ID}).AllPages(ctx)
	must(t, "list l7 policies", err)
	pols, err := l7policies.ExtractL7Policies(pages)
	must(t, "extract l7 policies", err)
	if len(pols) != 1 || pols[0].ID != pol.ID {
		t.Errorf("l7 policies = %+v, want %s", pols, pol.ID)
	}
	rule, err := l7policies.CreateRule(ctx, c, pol.ID, l7policies.CreateRuleOpts{RuleType: l7policies.TypeHeader,
		CompareType: l7policies.CompareTypeEqual, Key: "X-Env", Value: "test"}).Extract()
	must(t, "create l7 rule", err)
	waitLB(t, c, lb.ID)
	_, err = l7policies.UpdateRule(ctx, c, pol.ID, rule.ID, l7policies.UpdateRuleOpts{Value: "prod", Invert: ptr(true)}).Extract()
	must(t, "update l7 rule", err)
	waitLB(t, c, lb.ID)
	rule, err = l7policies.GetRule(ctx, c, pol.ID, rule.ID).Extract()
	must(t, "get l7 rule", err)
	expect(t, "l7 rule value", rule.Value, "prod")
	expect(t, "l7 rule invert", rule.Invert, true)
	pages, err = l7policies.ListRules(c, pol.ID, l7policies.ListRulesOpts{}).AllPages(ctx)
	must(t, "list l7 rules", err)
	rules, err := l7policies.ExtractRules(pages)
	must(t, "extract l7 rules", err)
	if len(rules) != 1 || rules[0].ID != rule.ID {
		t.Errorf("l7 rules = %+v, want %s", rules, rule.ID)
	}

	// Status tree and statistics. (gophercloud reads a pool's monitor in
	// the tree from "healthmonitor"; Octavia, and Ostia, send
	// "health_monitor", which the CLI test checks.)
	tree, err := loadbalancers.GetStatuses(ctx, c, lb.ID).Extract()
	must(t, "load balancer status tree", err)
	if tl := tree.Loadbalancer; tl == nil || tl.ID != lb.ID || len(tl.Listeners) != 1 || len(tl.Listeners[0].Pools) != 1 ||
		len(tl.Listeners[0].Pools[0].Members) != 2 || tl.Listeners[0].Pools[0].ID != pool.ID {
		t.Errorf("status tree = %+v, want the listener, the pool and 2 members", tree.Loadbalancer)
	}
	lbStats, err := loadbalancers.GetStats(ctx, c, lb.ID).Extract()
	must(t, "load balancer stats", err)
	expect(t, "load balancer stats", *lbStats, loadbalancers.Stats{})

	// Amphorae: the flavor's ACTIVE_STANDBY topology gives two; fail one
	// over, then the whole load balancer.
	listAmps := func() []amphorae.Amphora {
		t.Helper()
		pages, err := amphorae.List(c, amphorae.ListOpts{LoadbalancerID: lb.ID}).AllPages(ctx)
		must(t, "list amphorae", err)
		amps, err := amphorae.ExtractAmphorae(pages)
		must(t, "extract amphorae", err)
		return amps
	}
	amps := listAmps()
	var roles []string
	for _, a := range amps {
		roles = append(roles, a.Role)
	}
	slices.Sort(roles)
	expect(t, "amphora roles", roles, []string{"BACKUP", "MASTER"})
	amp, err := amphorae.Get(ctx, c, amps[0].ID).Extract()
	must(t, "get amphora", err)
	expect(t, "amphora loadbalancer_id", amp.LoadbalancerID, lb.ID)
	_, err = c.Put(ctx, c.ServiceURL("octavia", "amphorae", amp.ID, "config"), nil, nil,
		&gophercloud.RequestOpts{OkCodes: []int{202}})
	must(t, "configure amphora", err)
	must(t, "fail over amphora", amphorae.Failover(ctx, c, amp.ID).ExtractErr())
	// Octavia sets the load balancer PENDING_UPDATE for an amphora failover;
	// Ostia leaves it ACTIVE (see amphoraeSettled), so wait for the amphorae.
	amphoraeSettled(t, &restClient{base: o.URL}, lb.ID, amp.ID, 2)
	waitLB(t, c, lb.ID)
	must(t, "fail over load balancer", loadbalancers.Failover(ctx, c, lb.ID).ExtractErr())
	waitLB(t, c, lb.ID)
	if amps := listAmps(); len(amps) != 2 {
		var desc []string
		for _, a := range amps {
			desc = append(desc, a.ID+" "+a.Role+" "+a.Status)
		}
		t.Errorf("amphorae after failing over %s, then the load balancer: %v, want 2", amp.ID, desc)
	}

	// Quotas.
	q, err := quotas.Update(ctx, c, project, quotas.UpdateOpts{Loadbalancer: ptr(10), Member: ptr(50)}).Extract()
	must(t, "update quota", err)
	expect(t, "updated quota: loadbalancer", q.Loadbalancer, 10)
	q, err = quotas.Get(ctx, c, project).Extract()
	must(t, "get quota", err)
	expect(t, "quota member", q.Member, 50)
	expect(t, "quota listener", q.Listener, -1)
	must(t, "reset quota", quotas.Delete(ctx, c, project).ExtractErr())
	q, err = quotas.Get(ctx, c, project).Extract()
	must(t, "get quota", err)
	expect(t, "quota after reset: loadbalancer", q.Loadbalancer, -1)

	// Deletes, one child at a time, then the load balancer without cascade.
	must(t, "delete l7 rule", l7policies.DeleteRule(ctx, c, pol.ID, rule.ID).ExtractErr())
	waitLB(t, c, lb.ID)
	must(t, "delete l7 policy", l7policies.Delete(ctx, c, pol.ID).ExtractErr())
	waitLB(t, c, lb.ID)
	must(t, "delete health monitor", monitors.Delete(ctx, c, hm.ID).ExtractErr())
	waitLB(t, c, lb.ID)
	must(t, "delete member", pools.DeleteMember(ctx, c, pool.ID, m1.ID).ExtractErr())
	waitLB(t, c, lb.ID)
	err = loadbalancers.Delete(ctx, c, lb.ID, nil).ExtractErr()
	if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Errorf("delete of a load balancer with children: %v, want 400", err)
	}
	must(t, "delete pool", pools.Delete(ctx, c, pool.ID).ExtractErr())
	waitLB(t, c, lb.ID)
	must(t, "delete listener", listeners.Delete(ctx, c, li.ID).ExtractErr())
	waitLB(t, c, lb.ID)

	// A fully populated load balancer (one call), removed with cascade.
	graph, err := loadbalancers.Create(ctx, c, loadbalancers.CreateOpts{Name: "gc-graph", VipSubnetID: testSubnet,
		Listeners: []listeners.CreateOpts{{Protocol: listeners.ProtocolHTTP, ProtocolPort: 8080, Name: "graph-listener",
			DefaultPool: &pools.CreateOpts{Protocol: pools.ProtocolHTTP, LBMethod: pools.LBMethodRoundRobin, Name: "graph-pool",
				Members: []pools.CreateMemberOpts{{Address: "192.0.2.30", ProtocolPort: 80}, {Address: "192.0.2.31", ProtocolPort: 80}},
				Monitor: monitors.CreateOpts{Type: monitors.TypeHTTP, Delay: 5, Timeout: 3, MaxRetries: 2}},
			L7Policies: []l7policies.CreateOpts{{Action: l7policies.ActionReject, Name: "graph-reject",
				Rules: []l7policies.CreateRuleOpts{{RuleType: l7policies.TypePath, CompareType: l7policies.CompareTypeStartWith, Value: "/admin"}}}},
		}}}).Extract()
	must(t, "create fully populated load balancer", err)
	if len(graph.Listeners) != 1 || len(graph.Pools) != 1 {
		t.Errorf("fully populated load balancer: %d listeners, %d pools, want 1 and 1", len(graph.Listeners), len(graph.Pools))
	}
	waitLB(t, c, graph.ID)

	// Two load balancers now: pages of one follow the next links. (Like
	// Octavia's, the links keep sort_key but drop sort_dir, so a descending
	// order only holds on the first page; it is checked without paging.)
	var names []string
	err = loadbalancers.List(c, loadbalancers.ListOpts{Limit: 1, SortKey: "name"}).EachPage(ctx,
		func(_ context.Context, page pagination.Page) (bool, error) {
			lbs, err := loadbalancers.ExtractLoadBalancers(page)
			if err != nil {
				return false, err
			}
			if len(lbs) > 1 {
				return false, errors.New("a page of limit 1 has more than one load balancer")
			}
			for _, l := range lbs {
				names = append(names, l.Name)
			}
			return true, nil
		})
	must(t, "list load balancers page by page", err)
	expect(t, "load balancer names, one per page", names, []string{"gc-graph", "gc-lb-2"})
	pages, err = loadbalancers.List(c, loadbalancers.ListOpts{SortKey: "name", SortDir: "desc"}).AllPages(ctx)
	must(t, "list load balancers", err)
	lbs, err = loadbalancers.ExtractLoadBalancers(pages)
	must(t, "extract load balancers", err)
	names = nil
	for _, l := range lbs {
		names = append(names, l.Name)
	}
	expect(t, "load balancer names, descending", names, []string{"gc-lb-2", "gc-graph"})
	must(t, "delete load balancer", loadbalancers.Delete(ctx, c, lb.ID, nil).ExtractErr())
	waitGone(t, "load balancer "+lb.ID, func() error { return loadbalancers.Get(ctx, c, lb.ID).Err })

	tree, err = loadbalancers.GetStatuses(ctx, c, graph.ID).Extract()
	must(t, "status tree of the fully populated load balancer", err)
	if tl := tree.Loadbalancer; len(tl.Listeners) != 1 || len(tl.Listeners[0].Pools) != 1 || len(tl.Listeners[0].Pools[0].Members) != 2 {
		t.Errorf("status tree of the fully populated load balancer = %+v", tl)
	}
	must(t, "cascade delete", loadbalancers.Delete(ctx, c, graph.ID, loadbalancers.DeleteOpts{Cascade: true}).ExtractErr())
	waitGone(t, "load balancer "+graph.ID, func() error { return loadbalancers.Get(ctx, c, graph.ID).Err })

	// The catalog objects go last (in use until the load balancer is gone).
	must(t, "delete flavor", flavors.Delete(ctx, c, fl.ID).ExtractErr())
	must(t, "delete flavor profile", flavorprofiles.Delete(ctx, c, fp.ID).ExtractErr())
	_, err = c.Delete(ctx, c.ServiceURL("lbaas", "availabilityzones", "az-e2e"), nil)
	must(t, "delete availability zone", err)
	_, err = c.Delete(ctx, c.ServiceURL("lbaas", "availabilityzoneprofiles", azpID), nil)
	must(t, "delete availability zone profile", err)
	_, err = flavors.Get(ctx, c, fl.ID).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("get of a deleted flavor: %v, want 404", err)
	}
	var unexpected gophercloud.ErrUnexpectedResponseCode
	if _, err := c.Get(ctx, c.ServiceURL("lbaas", "availabilityzones", "az-e2e"), nil, nil); !errors.As(err, &unexpected) ||
		unexpected.Actual != http.StatusNotFound {
		t.Errorf("get of a deleted availability zone: %v, want 404", err)
	}
	t.Logf("TestGophercloudNoAuth took %.1fs", time.Since(start).Seconds())
}
