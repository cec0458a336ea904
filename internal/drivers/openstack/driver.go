// Package openstack implements the saga ports for compute and network
// (sagas/ports.Compute and ports.Network) against a real OpenStack cloud:
// Nova for servers, server groups and interface attachments, Neutron for
// ports, allowed address pairs, security groups and their rules, and
// (optionally) Glance to turn an image tag into the newest matching image.
//
// Every call takes the caller's context and returns errors sorted into the
// saga kinds: a missing resource wraps ports.ErrNotFound, conflicts, 5xx,
// throttling and network trouble wrap saga.ErrTransient, and requests the
// cloud refuses (400, 403, ...) wrap saga.ErrPermanent. Deletes of missing
// resources succeed.
//
// Ownership: sagas find before they create, matching a deterministic name
// and ownership keys. On Nova those keys are server metadata; on Neutron
// they are tags of the form "key=value" (Neutron tags are plain strings),
// set either through the tag API after the create call (default, works on
// any Neutron with the standard-attr-tag extension) or in the create body
// (Config.TagsOnCreate, for clouds with the tag-creation extension; this
// removes the window where a port exists without its tags).
package openstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/ostia/ostia/sagas/ports"
)

// Config configures a Driver.
type Config struct {
	// Compute is a Nova (compute v2.1) client. Required.
	Compute *gophercloud.ServiceClient
	// Network is a Neutron (network v2.0) client. Required.
	Network *gophercloud.ServiceClient
	// Image is a Glance (image v2) client. When set, ServerSpec.ImageTag
	// is a Glance tag and the newest active image carrying it is booted
	// (as Octavia's amp_image_tag). When nil, ImageTag is used as the
	// image ID as is.
	Image *gophercloud.ServiceClient
	// ImageOwnerID restricts the image lookup to one owner (Octavia's
	// amp_image_owner_id).
	ImageOwnerID string
	// ManagementNetworkIDs are the amphora boot (management) networks.
	// When set, GetServer reads the management address from Nova's
	// interface list of an ACTIVE server, keyed by network ID; otherwise
	// the first fixed address Nova reports is used.
	ManagementNetworkIDs []string
	// TagsOnCreate sends Neutron tags in the create request (needs the
	// tag-creation extension) instead of a separate tag call.
	TagsOnCreate bool
	// Logger receives warnings (failed roll-backs, ambiguous images).
	// Default slog.Default().
	Logger *slog.Logger
}

// Driver talks to Nova, Neutron and Glance. It is safe for concurrent use
// and keeps no state besides its configuration.
type Driver struct {
	compute *gophercloud.ServiceClient
	network *gophercloud.ServiceClient
	image   *gophercloud.ServiceClient
	cfg     Config
	log     *slog.Logger
}

var (
	_ ports.Compute = (*Driver)(nil)
	_ ports.Network = (*Driver)(nil)
)

// New returns a driver using the given service clients.
func New(cfg Config) (*Driver, error) {
	if cfg.Compute == nil {
		return nil, errors.New("openstack: Config.Compute is required")
	}
	if cfg.Network == nil {
		return nil, errors.New("openstack: Config.Network is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	cfg.ManagementNetworkIDs = append([]string(nil), cfg.ManagementNetworkIDs...)
	return &Driver{compute: cfg.Compute, network: cfg.Network, image: cfg.Image, cfg: cfg,
		log: log.With("component", "openstack-driver")}, nil
}

// AuthOptions are Keystone v3 password credentials.
type AuthOptions struct {
	// AuthURL is the Keystone endpoint, e.g. https://keystone:5000/v3/.
	AuthURL  string
	Username string
	Password string
	// ProjectName scopes the token to a project.
	ProjectName string
	// DomainName is the domain of both the user and the project.
	DomainName string
	// Region selects the catalog endpoints (empty: any region).
	Region string
	// Interface selects the catalog interface: public (default),
	// internal or admin.
	Interface string
}

// authenticate logs in to Keystone (re-authenticating when the token
// expires) and returns the provider with the catalog endpoint options.
func authenticate(ctx context.Context, auth AuthOptions) (*gophercloud.ProviderClient, gophercloud.EndpointOpts, error) {
	provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: auth.AuthURL,
		Username:         auth.Username,
		Password:         auth.Password,
		TenantName:       auth.ProjectName,
		DomainName:       auth.DomainName,
		AllowReauth:      true,
	})
	if err != nil {
		return nil, gophercloud.EndpointOpts{}, classify("authenticate with keystone", err)
	}
	eo, err := endpointOpts(auth)
	if err != nil {
		return nil, gophercloud.EndpointOpts{}, err
	}
	return provider, eo, nil
}

// NewFromCloud authenticates with Keystone and builds the compute, network
// and image clients from the service catalog. The options run on the
// Config before the driver is made (set ManagementNetworkIDs, the logger,
// or clear Image to boot ImageTag as an image ID).
func NewFromCloud(ctx context.Context, auth AuthOptions, options ...func(*Config)) (*Driver, error) {
	provider, eo, err := authenticate(ctx, auth)
	if err != nil {
		return nil, err
	}
	compute, err := openstack.NewComputeV2(provider, eo)
	if err != nil {
		return nil, fmt.Errorf("openstack: compute endpoint: %w", err)
	}
	network, err := openstack.NewNetworkV2(provider, eo)
	if err != nil {
		return nil, fmt.Errorf("openstack: network endpoint: %w", err)
	}
	image, err := openstack.NewImageV2(provider, eo)
	if err != nil {
		return nil, fmt.Errorf("openstack: image endpoint: %w", err)
	}
	cfg := Config{Compute: compute, Network: network, Image: image}
	for _, o := range options {
		o(&cfg)
	}
	return New(cfg)
}

// endpointOpts selects catalog endpoints by region and interface.
func endpointOpts(auth AuthOptions) (gophercloud.EndpointOpts, error) {
	eo := gophercloud.EndpointOpts{Region: auth.Region}
	switch auth.Interface {
	case "", "public":
		eo.Availability = gophercloud.AvailabilityPublic
	case "internal":
		eo.Availability = gophercloud.AvailabilityInternal
	case "admin":
		eo.Availability = gophercloud.AvailabilityAdmin
	default:
		return eo, fmt.Errorf("openstack: unknown endpoint interface %q", auth.Interface)
	}
	return eo, nil
}

// cleanupContext is for roll-backs that must run even when the caller's
// context has just ended (a create whose follow-up call failed).
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}
