package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/catalog"
	"github.com/ostia/ostia/aggregates/project"
	"github.com/ostia/ostia/gateway/listing"
	"github.com/ostia/ostia/gateway/request"
	"github.com/ostia/ostia/projections"
	"github.com/ostia/ostia/projections/views"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// This file holds the endpoints outside the load-balancer tree: quotas,
// providers, flavors, availability zones, their profiles and amphorae.

// Quotas.

var quotaCollection = collection{kind: views.KindQuota, key: "quotas", links: "quotas_links",
	rbac: "quota", projectScoped: true}

func (a *api) listQuotas(w http.ResponseWriter, r *http.Request) {
	a.list(w, r, quotaCollection, nil, "")
}

func (a *api) quotaObject(ctx context.Context, projectID string) (json.RawMessage, error) {
	q, _, err := a.cfg.Views.ProjectQuota(ctx, projectID)
	if err != nil {
		return nil, err
	}
	return json.Marshal(views.Quota(q, a.cfg.QuotaDefaults))
}

func (a *api) showQuota(w http.ResponseWriter, r *http.Request) {
	projectID := r.PathValue("project")
	if err := a.authorize(r, "quota:get_one", projectID); err != nil {
		a.fail(w, r, err)
		return
	}
	doc, err := a.quotaObject(r.Context(), projectID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeObject(w, http.StatusOK, "quota", doc)
}

func (a *api) showProjectQuotaDefaults(w http.ResponseWriter, r *http.Request) {
	projectID := r.PathValue("project")
	if err := a.authorize(r, "quota:get_defaults", projectID); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"quota": views.QuotaDefaults(a.cfg.QuotaDefaults)})
}

func (a *api) updateQuota(w http.ResponseWriter, r *http.Request) {
	projectID := r.PathValue("project")
	b, err := decode(r, request.DecodeQuotaUpdate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.authorize(r, "quota:put", projectID); err != nil {
		a.fail(w, r, err)
		return
	}
	_, envs, err := a.cfg.Commands.Project(r.Context(), a.metadata(r, projectID), projectID, b.Command())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.project(r, envs)
	doc, err := a.quotaObject(r.Context(), projectID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeObject(w, http.StatusAccepted, "quota", doc)
}

func (a *api) resetQuota(w http.ResponseWriter, r *http.Request) {
	projectID := r.PathValue("project")
	if err := a.authorize(r, "quota:delete", projectID); err != nil {
		a.fail(w, r, err)
		return
	}
	_, envs, err := a.cfg.Commands.Project(r.Context(), a.metadata(r, projectID), projectID, project.ResetQuota{Reason: "API request"})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.project(r, envs)
	writeEmpty(w, http.StatusAccepted)
}

// Providers.

// flavorCapabilities and azCapabilities are the amphora provider's
// metadata keys.
var (
	flavorCapabilities = []map[string]string{
		{"name": "loadbalancer_topology", "description": "The load balancer topology. One of: SINGLE - One amphora per load balancer. ACTIVE_STANDBY - Two amphora per load balancer."},
		{"name": "compute_flavor", "description": "The compute driver flavor ID."},
		{"name": "amp_image_tag", "description": "The amphora image tag."},
		{"name": "sriov_vip", "description": "When true, the VIP port will be created using an SR-IOV VF port."},
		{"name": "allow_member_sriov", "description": "When true, users can request a member port be created using an SR-IOV VF port."},
	}
	azCapabilities = []map[string]string{
		{"name": "compute_zone", "description": "The compute availability zone."},
		{"name": "volume_zone", "description": "The volume availability zone."},
		{"name": "management_network", "description": "The management network ID for the amphora."},
		{"name": "valid_vip_networks", "description": "List of network IDs that are allowed for VIP use. This overrides/replaces the list of allowed networks configured in `octavia.conf`."},
	}
)

// selectFields keeps the requested attributes of plain objects and applies
// name/description equality filters.
func selectFields(items []map[string]string, values map[string][]string) []map[string]string {
	out := make([]map[string]string, 0, len(items))
	fields := values["fields"]
outer:
	for _, it := range items {
		for _, k := range []string{"name", "description"} {
			if want, ok := values[k]; ok && len(want) > 0 && it[k] != want[0] {
				continue outer
			}
		}
		if len(fields) == 0 {
			out = append(out, it)
			continue
		}
		o := map[string]string{}
		for _, f := range fields {
			if v, ok := it[f]; ok {
				o[f] = v
			}
		}
		out = append(out, o)
	}
	return out
}

func (a *api) listProviders(w http.ResponseWriter, r *http.Request) {
	if err := a.authorize(r, "provider:get_all", creds(r).ProjectID); err != nil {
		a.fail(w, r, err)
		return
	}
	items := make([]map[string]string, 0)
	for _, p := range a.providers() {
		items = append(items, map[string]string{"name": p.Name, "description": p.Description})
	}
	writeJSON(w, http.StatusOK, map[string]any{"providers": selectFields(items, r.URL.Query())})
}

func (a *api) capabilities(w http.ResponseWriter, r *http.Request, action, key string, caps []map[string]string, what string) {
	if err := a.authorize(r, action, creds(r).ProjectID); err != nil {
		a.fail(w, r, err)
		return
	}
	name := r.PathValue("provider")
	if !a.providerEnabled(name) {
		a.fail(w, r, invalidf("Provider '%s' is not enabled.", name))
		return
	}
	switch name {
	case "amphora", "octavia", "amphorav2", "amphorav1":
	default:
		a.fail(w, r, aggregates.Errorf(aggregates.KindNotImplemented,
			"Provider '%s' does not support a requested action: This provider does not support getting the %s metadata.", name, what))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{key: selectFields(caps, r.URL.Query())})
}

func (a *api) flavorCapabilities(w http.ResponseWriter, r *http.Request) {
	a.capabilities(w, r, "provider-flavor:get_all", "flavor_capabilities", flavorCapabilities, "flavor")
}

func (a *api) azCapabilities(w http.ResponseWriter, r *http.Request) {
	a.capabilities(w, r, "provider-availability-zone:get_all", "availability_zone_capabilities", azCapabilities, "availability zone")
}

// Flavors, availability zones and their profiles (the catalog aggregate).

var (
	flavorCollection = collection{kind: views.KindFlavor, key: "flavors", links: "flavors_links", rbac: "flavor"}
	// Octavia spells the links of these two lists in the singular.
	flavorProfileCollection = collection{kind: views.KindFlavorProfile, key: "flavorprofiles",
		links: "flavorprofile_links", rbac: "flavor-profile"}
	azCollection = collection{kind: views.KindAvailabilityZone, key: "availability_zones",
		links: "availability_zones_links", rbac: "availability-zone"}
	azProfileCollection = collection{kind: views.KindAvailabilityZoneProfile, key: "availability_zone_profiles",
		links: "availability_zone_profile_links", rbac: "availability-zone-profile"}
)

// catalogCommand checks the RBAC action, then the extra checks (which may
// answer 400 only to an authorized caller), runs a catalog command and
// answers the object (status code and key) from the read model; key ""
// answers 204.
func (a *api) catalogCommand(w http.ResponseWriter, r *http.Request, action string, cmd catalog.Command, k views.Kind, key, id string, status int, checks ...func() error) {
	if err := a.authorize(r, action, creds(r).ProjectID); err != nil {
		a.fail(w, r, err)
		return
	}
	for _, check := range checks {
		if err := check(); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	_, envs, err := a.cfg.Commands.Catalog(r.Context(), a.metadata(r, ""), cmd)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.project(r, envs)
	if key == "" {
		writeEmpty(w, status)
		return
	}
	o, err := a.lookup(r.Context(), k, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeObject(w, status, key, o.Doc)
}

func (a *api) showCatalog(w http.ResponseWriter, r *http.Request, action string, k views.Kind, key string) {
	if err := a.authorize(r, action, creds(r).ProjectID); err != nil {
		a.fail(w, r, err)
		return
	}
	a.show(w, r, k, key, r.PathValue("id"), r.URL.Query()["fields"])
}

// inUse reports whether a live load balancer has attribute = value.
func (a *api) inUse(ctx context.Context, attribute, value string) (bool, error) {
	page, err := a.cfg.Views.List(ctx, views.KindLoadBalancer, projections.Query{
		Filters: map[string][]string{attribute: {value}}, Limit: 1, Fields: []string{"id"}})
	if err != nil {
		return false, fmt.Errorf("find load balancers with %s %s: %w", attribute, value, err)
	}
	return len(page.Items) > 0, nil
}

func (a *api) checkProvider(name aggregates.Field[string]) error {
	if name.Set && !name.Null && !a.providerEnabled(name.Value) {
		return invalidf("Provider '%s' is not enabled.", name.Value)
	}
	return nil
}

func (a *api) listFlavors(w http.ResponseWriter, r *http.Request) {
	a.list(w, r, flavorCollection, nil, "")
}
func (a *api) showFlavor(w http.ResponseWriter, r *http.Request) {
	a.showCatalog(w, r, "flavor:get_one", views.KindFlavor, "flavor")
}

func (a *api) createFlavor(w http.ResponseWriter, r *http.Request) {
	b, err := decode(r, request.DecodeFlavorCreate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cmd := b.Command()
	cmd.ID = a.newID()
	a.catalogCommand(w, r, "flavor:post", cmd, views.KindFlavor, "flavor", cmd.ID, http.StatusCreated)
}

func (a *api) updateFlavor(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b, err := decode(r, request.DecodeFlavorUpdate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.catalogCommand(w, r, "flavor:put", b.Command(id), views.KindFlavor, "flavor", id, http.StatusOK)
}

func (a *api) deleteFlavor(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	used, err := a.inUse(r.Context(), "flavor_id", id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.catalogCommand(w, r, "flavor:delete", catalog.DeleteFlavor{ID: id, InUse: used}, "", "", "", http.StatusNoContent)
}

func (a *api) listFlavorProfiles(w http.ResponseWriter, r *http.Request) {
	a.list(w, r, flavorProfileCollection, nil, "")
}
func (a *api) showFlavorProfile(w http.ResponseWriter, r *http.Request) {
	a.showCatalog(w, r, "flavor-profile:get_one", views.KindFlavorProfile, "flavorprofile")
}

func (a *api) createFlavorProfile(w http.ResponseWriter, r *http.Request) {
	b, err := decode(r, request.DecodeFlavorProfileCreate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cmd := b.Command()
	cmd.ID = a.newID()
	a.catalogCommand(w, r, "flavor-profile:post", cmd, views.KindFlavorProfile, "flavorprofile", cmd.ID, http.StatusCreated,
		func() error { return a.checkProvider(b.ProviderName) })
}

func (a *api) updateFlavorProfile(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b, err := decode(r, request.DecodeFlavorProfileUpdate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.catalogCommand(w, r, "flavor-profile:put", b.Command(id), views.KindFlavorProfile, "flavorprofile", id, http.StatusOK,
		func() error { return a.checkProvider(b.ProviderName) })
}

func (a *api) deleteFlavorProfile(w http.ResponseWriter, r *http.Request) {
	a.catalogCommand(w, r, "flavor-profile:delete", catalog.DeleteFlavorProfile{ID: r.PathValue("id")}, "", "", "", http.StatusNoContent)
}

func (a *api) listAvailabilityZones(w http.ResponseWriter, r *http.Request) {
	a.list(w, r, azCollection, nil, "")
}
func (a *api) showAvailabilityZone(w http.ResponseWriter, r *http.Request) {
	a.showCatalog(w, r, "availability-zone:get_one", views.KindAvailabilityZone, "availability_zone")
}

func (a *api) createAvailabilityZone(w http.ResponseWriter, r *http.Request) {
	b, err := decode(r, request.DecodeAvailabilityZoneCreate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cmd := b.Command()
	a.catalogCommand(w, r, "availability-zone:post", cmd, views.KindAvailabilityZone, "availability_zone", cmd.Name, http.StatusCreated)
}

func (a *api) updateAvailabilityZone(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("id")
	b, err := decode(r, request.DecodeAvailabilityZoneUpdate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.catalogCommand(w, r, "availability-zone:put", b.Command(name), views.KindAvailabilityZone, "availability_zone", name, http.StatusOK)
}

func (a *api) deleteAvailabilityZone(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("id")
	used, err := a.inUse(r.Context(), "availability_zone", name)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.catalogCommand(w, r, "availability-zone:delete", catalog.DeleteAvailabilityZone{Name: name, InUse: used}, "", "", "", http.StatusNoContent)
}

func (a *api) listAZProfiles(w http.ResponseWriter, r *http.Request) {
	a.list(w, r, azProfileCollection, nil, "")
}
func (a *api) showAZProfile(w http.ResponseWriter, r *http.Request) {
	a.showCatalog(w, r, "availability-zone-profile:get_one", views.KindAvailabilityZoneProfile, "availability_zone_profile")
}

func (a *api) createAZProfile(w http.ResponseWriter, r *http.Request) {
	b, err := decode(r, request.DecodeAvailabilityZoneProfileCreate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cmd := b.Command()
	cmd.ID = a.newID()
	a.catalogCommand(w, r, "availability-zone-profile:post", cmd, views.KindAvailabilityZoneProfile, "availability_zone_profile", cmd.ID, http.StatusCreated,
		func() error { return a.checkProvider(b.ProviderName) })
}

func (a *api) updateAZProfile(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b, err := decode(r, request.DecodeAvailabilityZoneProfileUpdate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.catalogCommand(w, r, "availability-zone-profile:put", b.Command(id), views.KindAvailabilityZoneProfile, "availability_zone_profile", id, http.StatusOK,
		func() error { return a.checkProvider(b.ProviderName) })
}

func (a *api) deleteAZProfile(w http.ResponseWriter, r *http.Request) {
	a.catalogCommand(w, r, "availability-zone-profile:delete", catalog.DeleteAvailabilityZoneProfile{ID: r.PathValue("id")}, "", "", "", http.StatusNoContent)
}

// Amphorae (admin only).

var amphoraCollection = collection{kind: views.KindAmphora, key: "amphorae", links: "amphorae_links", rbac: "amphora"}

func (a *api) listAmphorae(w http.ResponseWriter, r *http.Request) {
	a.list(w, r, amphoraCollection, nil, "")
}

func (a *api) showAmphora(w http.ResponseWriter, r *http.Request) {
	if err := a.authorize(r, "amphora:get_one", creds(r).ProjectID); err != nil {
		a.fail(w, r, err)
		return
	}
	a.show(w, r, views.KindAmphora, "amphora", r.PathValue("id"), r.URL.Query()["fields"])
}

// liveAmphora reads an amphora that is not DELETED.
func (a *api) liveAmphora(r *http.Request, action string) (*projections.Object, string, error) {
	if err := a.authorize(r, action, creds(r).ProjectID); err != nil {
		return nil, "", err
	}
	id := r.PathValue("id")
	o, err := a.cfg.Views.Get(r.Context(), views.KindAmphora, id)
	if err != nil {
		if isNotFound(err) {
			return nil, "", notFound(views.KindAmphora, id)
		}
		return nil, "", err
	}
	status, err := docField[string](o, "status")
	if err != nil {
		return nil, "", err
	}
	if status == amphora.StatusDeleted {
		return nil, "", notFound(views.KindAmphora, id)
	}
	return o, status, nil
}

func (a *api) deleteAmphora(w http.ResponseWriter, r *http.Request) {
	o, status, err := a.liveAmphora(r, "amphora:delete")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if status != amphora.StatusError {
		a.fail(w, r, aggregates.Errorf(aggregates.KindConflict, "Amphora %s is immutable and cannot be updated.", o.ID))
		return
	}
	_, envs, err := a.cfg.Commands.Amphora(r.Context(), a.metadata(r, o.ProjectID), o.ID, amphora.DeleteAmphora{Reason: "API request"})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.project(r, envs)
	writeEmpty(w, http.StatusNoContent)
}

func (a *api) failoverAmphora(w http.ResponseWriter, r *http.Request) {
	o, _, err := a.liveAmphora(r, "amphora:put_failover")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	envs, err := a.cfg.Commands.FailoverAmphora(r.Context(), a.metadata(r, o.ProjectID), o.ID, "API request")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.project(r, envs)
	writeEmpty(w, http.StatusAccepted)
}

// configureAmphora is PUT /amphorae/{id}/config. Ostia's agent reads no
// controller-pushed agent configuration; the call is accepted for a live
// amphora (as Octavia does) and recorded in the log only.
func (a *api) configureAmphora(w http.ResponseWriter, r *http.Request) {
	o, _, err := a.liveAmphora(r, "amphora:put_config")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.InfoContext(r.Context(), "amphora agent configuration refresh requested", "amphora_id", o.ID,
		"request_id", RequestID(r.Context()))
	writeEmpty(w, http.StatusAccepted)
}

func (a *api) amphoraStats(w http.ResponseWriter, r *http.Request) {
	o, _, err := a.liveAmphora(r, "amphora:get_stats")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	stats, err := a.amphoraListenerStats(r.Context(), o.ID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(stats) == 0 {
		a.fail(w, r, aggregates.Errorf(aggregates.KindNotFound, "Amphora stats for %s not found.", o.ID))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"amphora_stats": stats})
}

var (
	_ = listing.DefaultMaxLimit
	_ = eventsv1.Quota{}
)
