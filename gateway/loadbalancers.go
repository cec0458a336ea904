package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/gateway/request"
	"github.com/ostia/ostia/projections/views"
)

var lbCollection = collection{kind: views.KindLoadBalancer, key: "loadbalancers", links: "loadbalancers_links",
	rbac: "loadbalancer", projectScoped: true}

func (a *api) listLoadBalancers(w http.ResponseWriter, r *http.Request) {
	a.list(w, r, lbCollection, nil, "")
}

func (a *api) showLoadBalancer(w http.ResponseWriter, r *http.Request) {
	a.showOwned(w, r, views.KindLoadBalancer, "loadbalancer", "loadbalancer:get_one", r.PathValue("id"))
}

func (a *api) createLoadBalancer(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	b, err := request.DecodeLoadBalancerCreate(r.Context(), body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cmd := b.Command()
	if cmd.ProjectID == "" {
		cmd.ProjectID = creds(r).ProjectID
	}
	if cmd.ProjectID == "" {
		a.fail(w, r, invalidf("Validation failure: Missing project ID in request where one is required. "+
			"An administrator should check the keystone settings are in effect."))
		return
	}
	if err := a.authorize(r, "loadbalancer:post", cmd.ProjectID); err != nil {
		a.fail(w, r, err)
		return
	}
	if len(cmd.VipSgIDs) > 0 {
		if err := a.authorize(r, "loadbalancer:post:vip_sg_ids", cmd.ProjectID); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	for _, c := range []struct {
		set, disallowed bool
		name            string
	}{{cmd.VipPortID != "", a.cfg.DisallowVipPortID, "vip_port_id"},
		{cmd.VipNetworkID != "", a.cfg.DisallowVipNetworkID, "vip_network_id"},
		{cmd.VipSubnetID != "", a.cfg.DisallowVipSubnetID, "vip_subnet_id"}} {
		if c.set && c.disallowed {
			a.fail(w, r, invalidf("use of %s is disallowed by this deployment's configuration.", c.name))
			return
		}
	}
	provider, topology, err := a.resolveProvider(r, cmd.Provider, cmd.FlavorID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if cmd.AvailabilityZone != nil {
		if err := a.checkAvailabilityZone(r, *cmd.AvailabilityZone); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	cmd.Provider, cmd.Topology = provider, topology
	cmd.ID = a.newID()
	if err := a.checkTLSRefs(r.Context(), cmd); err != nil {
		a.fail(w, r, err)
		return
	}
	if a.cfg.VIPs != nil {
		// Validate before allocating anything, then allocate the VIP port
		// as Octavia's API does; a create that is then not stored gives
		// the port back (a crash in between leaves it to the sweeper).
		if err := a.cfg.Commands.CheckCreate(cmd); err != nil {
			a.fail(w, r, err)
			return
		}
		if cmd.AllocatedVip, err = a.cfg.VIPs.Allocate(r.Context(), cmd); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	st, err := a.lbCommand(r, cmd.ID, cmd.ProjectID, cmd)
	if err != nil {
		if cmd.AllocatedVip != nil {
			if rerr := a.cfg.VIPs.Release(context.WithoutCancel(r.Context()), cmd.ID); rerr != nil {
				a.log.WarnContext(r.Context(), "release the VIP port of a refused create", "lb_id", cmd.ID, "error", rerr)
			}
		}
		a.fail(w, r, err)
		return
	}
	doc, err := json.Marshal(views.FullLoadBalancer(st))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeObject(w, http.StatusCreated, "loadbalancer", doc)
}

// resolveProvider applies Octavia's provider and flavor rules: a flavor's
// profile names the provider (an explicit different provider is refused)
// and may set the topology; the provider must be enabled.
func (a *api) resolveProvider(r *http.Request, provider string, flavorID *string) (string, string, error) {
	topology := ""
	if flavorID != nil {
		fl, err := a.lookup(r.Context(), views.KindFlavor, *flavorID)
		if err != nil {
			return "", "", invalidf("Validation failure: Invalid flavor_id.")
		}
		enabled, err := docField[bool](fl, "enabled")
		if err != nil {
			return "", "", err
		}
		if !enabled {
			return "", "", invalidf("The selected flavor is not allowed in this deployment: %s", *flavorID)
		}
		profileID, err := docField[string](fl, "flavor_profile_id")
		if err != nil {
			return "", "", err
		}
		fp, err := a.lookup(r.Context(), views.KindFlavorProfile, profileID)
		if err != nil {
			return "", "", invalidf("Validation failure: Invalid flavor_id.")
		}
		fpProvider, err := docField[string](fp, "provider_name")
		if err != nil {
			return "", "", err
		}
		if provider != "" && provider != fpProvider {
			return "", "", invalidf("Flavor '%s' is not compatible with provider '%s'", *flavorID, provider)
		}
		provider = fpProvider
		data, err := docField[string](fp, "flavor_data")
		if err != nil {
			return "", "", err
		}
		var meta map[string]any
		if json.Unmarshal([]byte(data), &meta) == nil {
			if t, ok := meta["loadbalancer_topology"].(string); ok {
				topology = t
			}
		}
	}
	if provider == "" {
		provider = a.cfg.DefaultProvider
		if provider == "" {
			provider = "amphora"
		}
	}
	if !a.providerEnabled(provider) {
		return "", "", invalidf("Provider '%s' is not enabled.", provider)
	}
	return provider, topology, nil
}

func (a *api) checkAvailabilityZone(r *http.Request, name string) error {
	az, err := a.lookup(r.Context(), views.KindAvailabilityZone, name)
	if err != nil {
		return invalidf("Validation failure: Invalid availability zone.")
	}
	enabled, err := docField[bool](az, "enabled")
	if err != nil {
		return err
	}
	if !enabled {
		return invalidf("The selected availability_zone is not allowed in this deployment: %s", name)
	}
	return nil
}

// ownedLB reads a load balancer and checks an RBAC action on its project.
func (a *api) ownedLB(r *http.Request, id, action string) (string, error) {
	o, err := a.lookup(r.Context(), views.KindLoadBalancer, id)
	if err != nil {
		return "", err
	}
	if err := a.authorize(r, action, o.ProjectID); err != nil {
		return "", err
	}
	return o.ProjectID, nil
}

func (a *api) updateLoadBalancer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, err := readBody(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	b, err := request.DecodeLoadBalancerUpdate(r.Context(), body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	project, err := a.ownedLB(r, id, "loadbalancer:put")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if b.VipSgIDs.Set {
		if err := a.authorize(r, "loadbalancer:put:vip_sg_ids", project); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	if _, err := a.lbCommand(r, id, project, b.Command()); err != nil {
		a.fail(w, r, err)
		return
	}
	a.show(w, r, views.KindLoadBalancer, "loadbalancer", id, nil)
}

func (a *api) deleteLoadBalancer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	project, err := a.ownedLB(r, id, "loadbalancer:delete")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cascade := strings.EqualFold(r.URL.Query().Get("cascade"), "true")
	if _, err := a.lbCommand(r, id, project, loadbalancer.DeleteLoadBalancer{Cascade: cascade}); err != nil {
		a.fail(w, r, err)
		return
	}
	writeEmpty(w, http.StatusNoContent)
}

func (a *api) failoverLoadBalancer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	project, err := a.ownedLB(r, id, "loadbalancer:put_failover")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if _, err := a.lbCommand(r, id, project, loadbalancer.FailoverLoadBalancer{Reason: "API request"}); err != nil {
		a.fail(w, r, err)
		return
	}
	writeEmpty(w, http.StatusAccepted)
}

func (a *api) loadBalancerStatus(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := a.ownedLB(r, id, "loadbalancer:get_status"); err != nil {
		a.fail(w, r, err)
		return
	}
	tree, err := a.cfg.Views.StatusTree(r.Context(), id)
	if err != nil {
		a.fail(w, r, notFound(views.KindLoadBalancer, id))
		return
	}
	writeObject(w, http.StatusOK, "statuses", tree)
}

func (a *api) loadBalancerStats(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := a.ownedLB(r, id, "loadbalancer:get_stats"); err != nil {
		a.fail(w, r, err)
		return
	}
	st, err := a.sumStats(r.Context(), "loadbalancer_id", id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"stats": st})
}

var _ = aggregates.KindInvalid
