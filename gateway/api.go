package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/commands"
	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/aggregates/project"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/gateway/auth"
	"github.com/ostia/ostia/gateway/listing"
	"github.com/ostia/ostia/gateway/request"
	"github.com/ostia/ostia/internal/postgres"
	"github.com/ostia/ostia/projections"
	"github.com/ostia/ostia/projections/views"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// Provider is an enabled provider driver ([api_settings]
// enabled_provider_drivers).
type Provider struct {
	Name        string
	Description string
}

// DefaultProviders is Octavia's default enabled_provider_drivers.
func DefaultProviders() []Provider {
	return []Provider{
		{Name: "amphora", Description: "The Octavia Amphora driver."},
		{Name: "octavia", Description: "Deprecated alias of the Octavia Amphora driver."},
	}
}

// API is what the resource endpoints need: the command side, the read
// models and the deployment's API settings. Writes go through Commands;
// the events they store are applied to the read models before the answer
// (read-your-writes), and reads come from Views.
type API struct {
	Commands *commands.Service
	Views    *projections.Projector
	// ProjectedInline tells that Commands apply their events to Views in
	// the append transaction itself (aggregates/handler's Inline with
	// Views.ApplyInline); the API then does not apply them again.
	ProjectedInline bool
	// Pool reads the statistics tables the health manager writes.
	Pool *pgxpool.Pool
	// Validator validates Keystone tokens; nil runs in noauth mode.
	Validator auth.TokenValidator
	// AuthURI is announced in WWW-Authenticate on 401.
	AuthURI string
	Policy  auth.Policy
	// Providers are the enabled providers (DefaultProviders when empty);
	// DefaultProvider is used when a load balancer names none ("amphora").
	Providers       []Provider
	DefaultProvider string
	// MaxLimit is pagination_max_limit (0: infinite; negative: 1000).
	MaxLimit int
	// BaseURI is api_base_uri for links; empty uses the request's URL.
	BaseURI string
	// QuotaDefaults are the configured default quotas.
	QuotaDefaults project.Limits
	// NewID makes the ids of new objects (default uuid.NewString).
	NewID func() string
	// AllowVipPortID, ... ([networking] allow_vip_*) default to allowed.
	DisallowVipPortID, DisallowVipNetworkID, DisallowVipSubnetID bool
	// Certs, when set, checks every TLS reference a request names before
	// the command is stored (Octavia's 400 "Could not retrieve
	// certificate"); nil leaves unreadable references to the flows.
	Certs CertChecker
	// VIPs allocates a new load balancer's VIP port before the create is
	// stored, as Octavia's API does, so the 201 shows vip_address and
	// vip_port_id (lbflows.VIPAllocator). Nil leaves it to the create flow.
	VIPs VIPAllocator
}

// VIPAllocator allocates and releases the VIP port of a load balancer being
// created.
type VIPAllocator interface {
	// Allocate returns the VIP to record with the create (nil: none to
	// record, e.g. the user gave vip_port_id).
	Allocate(ctx context.Context, c loadbalancer.CreateLoadBalancer) (*loadbalancer.AllocateVip, error)
	// Release removes what Allocate made for a create that was then not
	// stored.
	Release(ctx context.Context, lbID string) error
}

// api holds the resource handlers.
type api struct {
	cfg API
	log *slog.Logger
}

func (a *api) newID() string {
	if a.cfg.NewID != nil {
		return a.cfg.NewID()
	}
	return uuid.NewString()
}

func (a *api) providers() []Provider {
	if len(a.cfg.Providers) == 0 {
		return DefaultProviders()
	}
	return a.cfg.Providers
}

func (a *api) providerEnabled(name string) bool {
	for _, p := range a.providers() {
		if p.Name == name {
			return true
		}
	}
	return false
}

// resourceName is the name Octavia puts in "<Resource> <id> not found.".
func resourceName(k views.Kind) string {
	switch k {
	case views.KindLoadBalancer:
		return "Load Balancer"
	case views.KindListener:
		return "Listener"
	case views.KindPool:
		return "Pool"
	case views.KindMember:
		return "Member"
	case views.KindHealthMonitor:
		return "Health Monitor"
	case views.KindL7Policy:
		return "L7 Policy"
	case views.KindL7Rule:
		return "L7 Rule"
	case views.KindAmphora:
		return "Amphora"
	case views.KindFlavor:
		return "Flavor"
	case views.KindFlavorProfile:
		return "Flavor Profile"
	case views.KindAvailabilityZone:
		return "Availability Zone"
	case views.KindAvailabilityZoneProfile:
		return "Availability Zone Profile"
	case views.KindQuota:
		return "Quota"
	}
	return string(k)
}

func notFound(k views.Kind, id string) error {
	return aggregates.Errorf(aggregates.KindNotFound, "%s %s not found.", resourceName(k), id)
}

func invalidf(format string, args ...any) error {
	return aggregates.Errorf(aggregates.KindInvalid, format, args...)
}

// fail answers an error in Octavia's fault format.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *aggregates.Error
	var qe *projections.QueryError
	switch {
	case errors.As(err, &ae):
		WriteFault(w, ae.Kind.HTTPStatus(), ae.Message)
	case errors.As(err, &qe):
		status := http.StatusBadRequest
		if errors.Is(err, projections.ErrNotFound) {
			status = http.StatusNotFound
		}
		WriteFault(w, status, qe.Message)
	case errors.Is(err, postgres.ErrTooManyConflicts):
		// Octavia's answer when it cannot lock the project: try again.
		w.Header().Set("Retry-After", "1")
		WriteFault(w, http.StatusServiceUnavailable, "Project busy. Unable to lock the project. Please try again.")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nothing to answer.
	default:
		a.log.ErrorContext(r.Context(), "api request failed", "method", r.Method, "path", r.URL.Path,
			"request_id", RequestID(r.Context()), "error", err)
		WriteFault(w, http.StatusInternalServerError, "An unknown exception occurred.")
	}
}

// creds returns the caller (set by the auth middleware).
func creds(r *http.Request) *auth.Credentials {
	if c, ok := auth.FromContext(r.Context()); ok {
		return c
	}
	return &auth.Credentials{}
}

// authorize checks one RBAC action against an owning project.
func (a *api) authorize(r *http.Request, action, project string) error {
	return a.cfg.Policy.Authorize(creds(r), action, project)
}

// metadata is what the events of a request record about it.
func (a *api) metadata(r *http.Request, projectID string) events.Metadata {
	c := creds(r)
	actor := c.UserID
	if actor == "" {
		actor = "anonymous"
	}
	id := RequestID(r.Context())
	corr := r.Header.Get("X-Correlation-Id")
	if corr == "" {
		corr = id
	}
	return events.Metadata{ProjectID: projectID, CausationID: id, CorrelationID: corr, Actor: actor}
}

// readBody reads a request body up to request.ReadLimit.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, request.ReadLimit+1))
	if err != nil {
		return nil, invalidf("Request is not in valid JSON format")
	}
	if len(b) > request.ReadLimit {
		return nil, aggregates.Errorf(aggregates.KindInvalid, "Request body is too large")
	}
	return b, nil
}

// storable reports whether s can be a database text value (valid UTF-8
// without NUL); anything else cannot name a stored object.
func storable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// lookup reads one live object of the read model (only the given fields
// of its API representation, when any).
func (a *api) lookup(ctx context.Context, k views.Kind, id string, fields ...string) (*projections.Object, error) {
	if !storable(id) {
		return nil, notFound(k, id)
	}
	o, err := a.cfg.Views.Get(ctx, k, id, fields...)
	if errors.Is(err, projections.ErrNotFound) {
		return nil, notFound(k, id)
	}
	if err != nil {
		return nil, err
	}
	if o.ProvisioningStatus == loadbalancer.StatusDeleted {
		return nil, notFound(k, id)
	}
	return o, nil
}

// project applies stored events to the read models so that the caller's
// next read shows them. The write is already accepted when this fails (the
// projection consumer catches up), so a failure is only logged.
func (a *api) project(r *http.Request, envs []*eventsv1.Envelope) {
	if len(envs) == 0 || a.cfg.ProjectedInline {
		return
	}
	if err := a.cfg.Views.ApplyEnvelopes(r.Context(), envs); err != nil {
		a.log.WarnContext(r.Context(), "read-your-writes projection failed; the projector will catch up",
			"request_id", RequestID(r.Context()), "error", err)
	}
}

// lbCommand runs a command on a load balancer and projects its events.
func (a *api) lbCommand(r *http.Request, lbID, projectID string, cmd loadbalancer.Command) (*loadbalancer.State, error) {
	st, envs, err := a.cfg.Commands.LoadBalancer(r.Context(), a.metadata(r, projectID), lbID, cmd)
	if err != nil {
		return nil, err
	}
	a.project(r, envs)
	return st, nil
}

// writeObject writes {"<key>": doc}.
func writeObject(w http.ResponseWriter, status int, key string, doc json.RawMessage) {
	writeJSON(w, status, map[string]json.RawMessage{key: doc})
}

func writeEmpty(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}

// show answers one object of the read model.
func (a *api) show(w http.ResponseWriter, r *http.Request, k views.Kind, key, id string, fields []string) {
	o, err := a.lookup(r.Context(), k, id, fields...)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeObject(w, http.StatusOK, key, o.Doc)
}

// showOwned checks the RBAC action against the object's project, then
// answers it.
func (a *api) showOwned(w http.ResponseWriter, r *http.Request, k views.Kind, key, action, id string) {
	o, err := a.lookup(r.Context(), k, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.authorize(r, action, o.ProjectID); err != nil {
		a.fail(w, r, err)
		return
	}
	a.show(w, r, k, key, id, r.URL.Query()["fields"])
}

// collection describes a list endpoint.
type collection struct {
	kind  views.Kind
	key   string // "loadbalancers"
	links string // "loadbalancers_links"
	rbac  string // "loadbalancer"
	// global: the RBAC resource has a get_all-global action (project-owned
	// objects); otherwise the list is not project scoped.
	projectScoped bool
	// extra are attributes accepted as filters besides the object's fields.
	extra []string
}

func (a *api) maxLimit() int {
	switch {
	case a.cfg.MaxLimit < 0:
		return listing.DefaultMaxLimit
	case a.cfg.MaxLimit == 0:
		return 0
	}
	return a.cfg.MaxLimit
}

// pathURL is the collection URL used in pagination links.
func (a *api) pathURL(r *http.Request) string {
	if a.cfg.BaseURI != "" {
		return strings.TrimRight(a.cfg.BaseURI, "/") + r.URL.Path
	}
	return baseURL(r) + r.URL.Path
}

// list answers a collection GET. scope adds fixed filters (the parent of
// nested collections); ownerProject, when not empty, is the project of the
// parent that RBAC checks instead of the caller's.
func (a *api) list(w http.ResponseWriter, r *http.Request, c collection, scope map[string]string, ownerProject string) {
	values := r.URL.Query()
	for k, vs := range values {
		for _, v := range append([]string{k}, vs...) {
			if !storable(v) {
				a.fail(w, r, listing.ErrInvalidFilter())
				return
			}
		}
	}
	cr := creds(r)
	var projectID string
	if c.projectScoped {
		requested := values.Get("project_id")
		global, err := a.cfg.Policy.Allowed(cr, c.rbac+":get_all-global", requested)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		projectID = requested
		if !global {
			if projectID == "" {
				projectID = ownerProject
			}
			if projectID == "" {
				projectID = cr.ProjectID
			}
			if projectID == "" {
				a.fail(w, r, aggregates.Errorf(aggregates.KindForbidden, auth.ForbiddenMessage))
				return
			}
			if err := a.authorize(r, c.rbac+":get_all", projectID); err != nil {
				a.fail(w, r, err)
				return
			}
		}
	} else {
		target := ownerProject
		if target == "" {
			target = cr.ProjectID
		}
		if err := a.authorize(r, c.rbac+":get_all", target); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	attrs := append(append([]string{}, views.Fields(c.kind)...), c.extra...)
	q, err := listing.Parse(values, listing.Options{Attributes: attrs, Tagged: views.HasTags(c.kind), MaxLimit: a.maxLimit()})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	filters := map[string][]string{}
	for k, v := range q.Filters {
		if k == "project_id" && c.projectScoped {
			continue
		}
		filters[k] = v
	}
	for k, v := range scope {
		filters[k] = []string{v}
	}
	for k, v := range map[string][]string{"tags": q.Tags.All, "tags-any": q.Tags.Any, "not-tags": q.Tags.NotAll, "not-tags-any": q.Tags.NotAny} {
		if len(v) > 0 {
			filters[k] = v
		}
	}
	pq := projections.Query{ProjectID: projectID, Filters: filters, Limit: q.Limit, Marker: q.Marker,
		PageReverse: q.PageReverse, Fields: q.Fields}
	for _, s := range q.Sort {
		pq.Sort = append(pq.Sort, projections.SortKey{Key: s.Key, Desc: s.Desc})
	}
	page, err := a.cfg.Views.List(r.Context(), c.kind, pq)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeList(w, r, c, q, page)
}

func (a *api) writeList(w http.ResponseWriter, r *http.Request, c collection, q *listing.Query, page projections.Page) {
	items := page.Items
	if items == nil {
		items = []json.RawMessage{}
	}
	ids := make([]string, len(items))
	if len(ids) > 0 {
		ids[0], ids[len(ids)-1] = page.FirstID, page.LastID
	}
	body := map[string]any{c.key: items}
	if c.links != "" {
		body[c.links] = q.Links(a.pathURL(r), ids)
	}
	writeJSON(w, http.StatusOK, body)
}

// docField reads one attribute of a stored API object.
func docField[T any](o *projections.Object, name string) (T, error) {
	var zero T
	var m map[string]json.RawMessage
	if err := json.Unmarshal(o.Doc, &m); err != nil {
		return zero, fmt.Errorf("decode %s %s: %w", o.Kind, o.ID, err)
	}
	raw, ok := m[name]
	if !ok || string(raw) == "null" {
		return zero, nil
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return zero, fmt.Errorf("decode %s.%s: %w", o.Kind, name, err)
	}
	return v, nil
}
