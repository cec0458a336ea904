package gateway

import (
	"net/http"
	"strings"

	"github.com/ostia/ostia/gateway/auth"
)

// registerResources adds every /v2/lbaas and /v2/octavia resource. Both the
// /v2 and the /v2.0 prefixes reach the same handlers, as in Octavia.
func (s *Server) registerResources(a *api) {
	paths := map[string]bool{}
	authed := func(h http.HandlerFunc) http.HandlerFunc {
		wrapped := auth.Middleware(a.cfg.Validator, a.cfg.AuthURI, a.log, h)
		return wrapped.ServeHTTP
	}
	for _, v := range []string{"/v2", "/v2.0"} {
		l, o := v+"/lbaas", v+"/octavia"
		route := func(method, path, name string, h http.HandlerFunc) {
			// Octavia's V2Controller also serves every lbaas resource
			// without the /lbaas segment (/v2.0/quotas/{project} is what
			// gophercloud's quotas package calls).
			for i, p := range []string{path, strings.Replace(path, "/lbaas/", "/", 1)} {
				if i > 0 && p == path {
					break // an /octavia path
				}
				paths[p] = true
				s.handle(method+" "+p, name, authed(h))
			}
		}
		route("GET", l+"/loadbalancers", "loadbalancers.list", a.listLoadBalancers)
		route("POST", l+"/loadbalancers", "loadbalancers.create", a.createLoadBalancer)
		route("GET", l+"/loadbalancers/{id}", "loadbalancers.show", a.showLoadBalancer)
		route("PUT", l+"/loadbalancers/{id}", "loadbalancers.update", a.updateLoadBalancer)
		route("DELETE", l+"/loadbalancers/{id}", "loadbalancers.delete", a.deleteLoadBalancer)
		route("GET", l+"/loadbalancers/{id}/stats", "loadbalancers.stats", a.loadBalancerStats)
		route("GET", l+"/loadbalancers/{id}/status", "loadbalancers.status", a.loadBalancerStatus)
		route("GET", l+"/loadbalancers/{id}/statuses", "loadbalancers.status", a.loadBalancerStatus)
		route("PUT", l+"/loadbalancers/{id}/failover", "loadbalancers.failover", a.failoverLoadBalancer)

		route("GET", l+"/listeners", "listeners.list", a.listListeners)
		route("POST", l+"/listeners", "listeners.create", a.createListener)
		route("GET", l+"/listeners/{id}", "listeners.show", a.showListener)
		route("PUT", l+"/listeners/{id}", "listeners.update", a.updateListener)
		route("DELETE", l+"/listeners/{id}", "listeners.delete", a.deleteListener)
		route("GET", l+"/listeners/{id}/stats", "listeners.stats", a.listenerStats)

		route("GET", l+"/pools", "pools.list", a.listPools)
		route("POST", l+"/pools", "pools.create", a.createPool)
		route("GET", l+"/pools/{id}", "pools.show", a.showPool)
		route("PUT", l+"/pools/{id}", "pools.update", a.updatePool)
		route("DELETE", l+"/pools/{id}", "pools.delete", a.deletePool)

		route("GET", l+"/pools/{pool}/members", "members.list", a.listMembers)
		route("POST", l+"/pools/{pool}/members", "members.create", a.createMember)
		route("PUT", l+"/pools/{pool}/members", "members.batch", a.batchMembers)
		route("GET", l+"/pools/{pool}/members/{id}", "members.show", a.showMember)
		route("PUT", l+"/pools/{pool}/members/{id}", "members.update", a.updateMember)
		route("DELETE", l+"/pools/{pool}/members/{id}", "members.delete", a.deleteMember)

		route("GET", l+"/healthmonitors", "healthmonitors.list", a.listHealthMonitors)
		route("POST", l+"/healthmonitors", "healthmonitors.create", a.createHealthMonitor)
		route("GET", l+"/healthmonitors/{id}", "healthmonitors.show", a.showHealthMonitor)
		route("PUT", l+"/healthmonitors/{id}", "healthmonitors.update", a.updateHealthMonitor)
		route("DELETE", l+"/healthmonitors/{id}", "healthmonitors.delete", a.deleteHealthMonitor)

		route("GET", l+"/l7policies", "l7policies.list", a.listL7Policies)
		route("POST", l+"/l7policies", "l7policies.create", a.createL7Policy)
		route("GET", l+"/l7policies/{id}", "l7policies.show", a.showL7Policy)
		route("PUT", l+"/l7policies/{id}", "l7policies.update", a.updateL7Policy)
		route("DELETE", l+"/l7policies/{id}", "l7policies.delete", a.deleteL7Policy)

		route("GET", l+"/l7policies/{policy}/rules", "l7rules.list", a.listL7Rules)
		route("POST", l+"/l7policies/{policy}/rules", "l7rules.create", a.createL7Rule)
		route("GET", l+"/l7policies/{policy}/rules/{id}", "l7rules.show", a.showL7Rule)
		route("PUT", l+"/l7policies/{policy}/rules/{id}", "l7rules.update", a.updateL7Rule)
		route("DELETE", l+"/l7policies/{policy}/rules/{id}", "l7rules.delete", a.deleteL7Rule)

		route("GET", l+"/quotas", "quotas.list", a.listQuotas)
		route("GET", l+"/quotas/{project}", "quotas.show", a.showQuota)
		route("GET", l+"/quotas/{project}/default", "quotas.defaults", a.showProjectQuotaDefaults)
		route("PUT", l+"/quotas/{project}", "quotas.update", a.updateQuota)
		route("DELETE", l+"/quotas/{project}", "quotas.reset", a.resetQuota)

		route("GET", l+"/providers", "providers.list", a.listProviders)
		route("GET", l+"/providers/{provider}/flavor_capabilities", "providers.flavor_capabilities", a.flavorCapabilities)
		route("GET", l+"/providers/{provider}/availability_zone_capabilities", "providers.az_capabilities", a.azCapabilities)

		route("GET", l+"/flavors", "flavors.list", a.listFlavors)
		route("POST", l+"/flavors", "flavors.create", a.createFlavor)
		route("GET", l+"/flavors/{id}", "flavors.show", a.showFlavor)
		route("PUT", l+"/flavors/{id}", "flavors.update", a.updateFlavor)
		route("DELETE", l+"/flavors/{id}", "flavors.delete", a.deleteFlavor)

		route("GET", l+"/flavorprofiles", "flavorprofiles.list", a.listFlavorProfiles)
		route("POST", l+"/flavorprofiles", "flavorprofiles.create", a.createFlavorProfile)
		route("GET", l+"/flavorprofiles/{id}", "flavorprofiles.show", a.showFlavorProfile)
		route("PUT", l+"/flavorprofiles/{id}", "flavorprofiles.update", a.updateFlavorProfile)
		route("DELETE", l+"/flavorprofiles/{id}", "flavorprofiles.delete", a.deleteFlavorProfile)

		route("GET", l+"/availabilityzones", "availabilityzones.list", a.listAvailabilityZones)
		route("POST", l+"/availabilityzones", "availabilityzones.create", a.createAvailabilityZone)
		route("GET", l+"/availabilityzones/{id}", "availabilityzones.show", a.showAvailabilityZone)
		route("PUT", l+"/availabilityzones/{id}", "availabilityzones.update", a.updateAvailabilityZone)
		route("DELETE", l+"/availabilityzones/{id}", "availabilityzones.delete", a.deleteAvailabilityZone)

		route("GET", l+"/availabilityzoneprofiles", "azprofiles.list", a.listAZProfiles)
		route("POST", l+"/availabilityzoneprofiles", "azprofiles.create", a.createAZProfile)
		route("GET", l+"/availabilityzoneprofiles/{id}", "azprofiles.show", a.showAZProfile)
		route("PUT", l+"/availabilityzoneprofiles/{id}", "azprofiles.update", a.updateAZProfile)
		route("DELETE", l+"/availabilityzoneprofiles/{id}", "azprofiles.delete", a.deleteAZProfile)

		route("GET", o+"/amphorae", "amphorae.list", a.listAmphorae)
		route("GET", o+"/amphorae/{id}", "amphorae.show", a.showAmphora)
		route("DELETE", o+"/amphorae/{id}", "amphorae.delete", a.deleteAmphora)
		route("GET", o+"/amphorae/{id}/stats", "amphorae.stats", a.amphoraStats)
		route("PUT", o+"/amphorae/{id}/failover", "amphorae.failover", a.failoverAmphora)
		route("PUT", o+"/amphorae/{id}/config", "amphorae.config", a.configureAmphora)
	}
	// Any other method on a known path: 405 in pecan's format.
	for p := range paths {
		s.handle(p, "method_not_allowed", methodNotAllowed)
	}
}

// methodNotAllowed is pecan's 405 answer for a RestController path.
func methodNotAllowed(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Allow", "DELETE, GET, POST, PUT")
	writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"code": 405, "title": "Method Not Allowed", "description": ""})
}
