package openstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/keymanager/v1/containers"
	"github.com/gophercloud/gophercloud/v2/openstack/keymanager/v1/secrets"

	"github.com/ostia/ostia/internal/certmanager"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// Barbican is the Barbican cert manager (ports.CertManager, Octavia's
// barbican_cert_manager). It reads, with Ostia's own credentials, either
//
//   - a certificate container (".../v1/containers/<uuid>") whose secret
//     refs are named certificate, private_key, and optionally
//     intermediates and private_key_passphrase, or
//   - a secret (".../v1/secrets/<uuid>") holding a PKCS#12 bundle, as
//     newer Octavia does (legacy PKCS#12 encryptions only, see
//     certmanager.FromPKCS12), or a PEM with the certificate and its key.
//
// CA and CRL references are secrets holding PEM (a container ref gives
// its certificate secret). Only the uuid of a reference is used: every
// request goes to the configured Barbican endpoint, never to the host
// written in the reference. As with Octavia's barbican_acl_auth, project
// users must grant Ostia's service user read access (a Barbican ACL) to
// their containers and secrets.
type Barbican struct {
	client *gophercloud.ServiceClient
	log    *slog.Logger
}

var _ ports.CertManager = (*Barbican)(nil)

// NewBarbican returns a cert manager using a key-manager v1 client.
func NewBarbican(client *gophercloud.ServiceClient, log *slog.Logger) (*Barbican, error) {
	if client == nil {
		return nil, errors.New("openstack: barbican: a key-manager client is required")
	}
	if log == nil {
		log = slog.Default()
	}
	return &Barbican{client: client, log: log.With("component", "barbican-cert-manager")}, nil
}

// NewBarbicanFromCloud authenticates with Keystone and finds Barbican
// ("key-manager") in the service catalog.
func NewBarbicanFromCloud(ctx context.Context, auth AuthOptions, log *slog.Logger) (*Barbican, error) {
	provider, eo, err := authenticate(ctx, auth)
	if err != nil {
		return nil, err
	}
	client, err := openstack.NewKeyManagerV1(provider, eo)
	if err != nil {
		return nil, fmt.Errorf("openstack: key-manager endpoint: %w", err)
	}
	return NewBarbican(client, log)
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// refKinds.
const (
	refContainer = "containers"
	refSecret    = "secrets"
)

// parseRef splits a Barbican reference into its kind and uuid. A bare
// uuid is taken as a container (Octavia's older references).
func parseRef(ref string) (kind, id string, err error) {
	if uuidPattern.MatchString(ref) {
		return refContainer, ref, nil
	}
	u, perr := url.Parse(ref)
	if perr == nil {
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		if n := len(parts); n >= 2 && uuidPattern.MatchString(parts[n-1]) &&
			(parts[n-2] == refContainer || parts[n-2] == refSecret) {
			return parts[n-2], parts[n-1], nil
		}
	}
	return "", "", saga.Permanent(fmt.Errorf("openstack: barbican: %q is not a Barbican container or secret reference", ref))
}

// payload reads a secret's payload in its own content type.
func (b *Barbican) payload(ctx context.Context, id string) ([]byte, error) {
	meta, err := secrets.Get(ctx, b.client, id).Extract()
	if err != nil {
		return nil, classify("get secret "+id, err)
	}
	ct := meta.ContentTypes["default"]
	if ct == "" {
		ct = "text/plain"
	}
	data, err := secrets.GetPayload(ctx, b.client, id, secrets.GetPayloadOpts{PayloadContentType: ct}).Extract()
	if err != nil {
		return nil, classify("get payload of secret "+id, err)
	}
	if len(data) == 0 {
		return nil, saga.Permanent(fmt.Errorf("openstack: barbican: secret %s is empty", id))
	}
	return data, nil
}

// containerSecrets returns the secret ids of a container by name.
func (b *Barbican) containerSecrets(ctx context.Context, id string) (map[string]string, error) {
	c, err := containers.Get(ctx, b.client, id).Extract()
	if err != nil {
		return nil, classify("get container "+id, err)
	}
	out := map[string]string{}
	for _, s := range c.SecretRefs {
		_, sid, err := parseRef(s.SecretRef)
		if err != nil {
			return nil, fmt.Errorf("container %s: secret %s: %w", id, s.Name, err)
		}
		out[s.Name] = sid
	}
	return out, nil
}

// GetTLSBundle implements ports.CertManager.
func (b *Barbican) GetTLSBundle(ctx context.Context, ref string) (ports.TLSBundle, error) {
	kind, id, err := parseRef(ref)
	if err != nil {
		return ports.TLSBundle{}, err
	}
	if kind == refSecret {
		data, err := b.payload(ctx, id)
		if err != nil {
			return ports.TLSBundle{}, err
		}
		if certmanager.LooksLikePEM(data) {
			return certmanager.Bundle(data, data, nil, nil)
		}
		return certmanager.FromPKCS12(data, nil)
	}
	refs, err := b.containerSecrets(ctx, id)
	if err != nil {
		return ports.TLSBundle{}, err
	}
	parts := map[string][]byte{}
	for _, name := range []string{"certificate", "private_key", "intermediates", "private_key_passphrase"} {
		sid, ok := refs[name]
		if !ok {
			if name == "certificate" || name == "private_key" {
				return ports.TLSBundle{}, saga.Permanent(fmt.Errorf("openstack: barbican: container %s has no %s secret", id, name))
			}
			continue
		}
		if parts[name], err = b.payload(ctx, sid); err != nil {
			return ports.TLSBundle{}, fmt.Errorf("container %s: %s: %w", id, name, err)
		}
	}
	bundle, err := certmanager.Bundle(parts["certificate"], parts["private_key"], parts["intermediates"],
		[]byte(strings.TrimRight(string(parts["private_key_passphrase"]), "\r\n")))
	if err != nil {
		return ports.TLSBundle{}, fmt.Errorf("openstack: barbican: container %s: %w", id, err)
	}
	b.log.DebugContext(ctx, "certificate container read", "container", id)
	return bundle, nil
}

// GetSecret implements ports.CertManager.
func (b *Barbican) GetSecret(ctx context.Context, ref string) ([]byte, error) {
	kind, id, err := parseRef(ref)
	if err != nil {
		return nil, err
	}
	if kind == refContainer {
		refs, err := b.containerSecrets(ctx, id)
		if err != nil {
			return nil, err
		}
		sid, ok := refs["certificate"]
		if !ok {
			return nil, saga.Permanent(fmt.Errorf("openstack: barbican: container %s has no certificate secret", id))
		}
		id = sid
	}
	data, err := b.payload(ctx, id)
	if err != nil {
		return nil, err
	}
	out, err := certmanager.CheckSecret(data)
	if err != nil {
		return nil, fmt.Errorf("openstack: barbican: secret %s: %w", id, err)
	}
	return out, nil
}
