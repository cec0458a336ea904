package lbflows

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"sort"

	"github.com/ostia/ostia/aggregates/loadbalancer"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
	"github.com/ostia/ostia/templates"
)

// CertLocator is implemented by renderers whose haproxy.cfg refers to TLS
// files: CertDir is the directory on the amphora holding a load
// balancer's files (base_cert_dir/<lb_id>), where the agent stores what
// Agent.UploadCertificate sends. TemplateRenderer implements it; for other
// renderers the flows use Octavia's default directory.
type CertLocator interface {
	CertDir(amp Amp, lbID string) string
}

// CertDir implements CertLocator with the amphora's settings.
func (r *TemplateRenderer) CertDir(amp Amp, lbID string) string {
	s, _ := r.settingsFor(amp)
	return templates.CertDir(s, lbID)
}

// certFile is one TLS file for an amphora's certificate directory.
type certFile struct {
	name string
	pem  []byte
}

// tlsListener tells whether a listener's frontend terminates TLS (as the
// templates decide: enabled, not being deleted, TERMINATED_HTTPS or
// PROMETHEUS with a default certificate).
func tlsListener(l *eventsv1.Listener) bool {
	if l == nil || !l.GetAdminStateUp() || l.DefaultTlsContainerRef == nil {
		return false
	}
	switch l.GetProvisioningStatus() {
	case loadbalancer.StatusPendingDelete, loadbalancer.StatusDeleted:
		return false
	}
	return l.GetProtocol() == templates.ProtocolTerminatedHTTPS || l.GetProtocol() == templates.ProtocolPrometheus
}

// tlsPool tells whether a pool is enabled, not being deleted, and talks
// TLS to its members.
func tlsPool(p *eventsv1.Pool) bool {
	if p == nil || !p.GetAdminStateUp() || !p.GetTlsEnabled() {
		return false
	}
	switch p.GetProvisioningStatus() {
	case loadbalancer.StatusPendingDelete, loadbalancer.StatusDeleted:
		return false
	}
	return true
}

// tlsMaterial is the TLS material of a load balancer, fetched once per
// configuration push.
type tlsMaterial struct {
	lbID      string
	listeners []*eventsv1.Listener
	pools     []*eventsv1.Pool
	bundles   map[string][]byte // ref -> certificate + intermediates + key
	secrets   map[string][]byte // ref -> CA or CRL PEM
}

func (m *tlsMaterial) empty() bool { return len(m.listeners) == 0 && len(m.pools) == 0 }

// fetchTLS reads every certificate the load balancer's configuration refers
// to from the cert manager. A reference that does not exist or holds
// unusable material fails the flow for good; a cert manager that cannot be
// reached is retried.
func (f *Flows) fetchTLS(ctx context.Context, lb *loadbalancer.State) (*tlsMaterial, error) {
	m := &tlsMaterial{lbID: lb.ID(), bundles: map[string][]byte{}, secrets: map[string][]byte{}}
	for _, l := range lb.Listeners() {
		if tlsListener(l) {
			m.listeners = append(m.listeners, l)
		}
	}
	for _, p := range lb.Pools() {
		if tlsPool(p) {
			m.pools = append(m.pools, p)
		}
	}
	if m.empty() {
		return m, nil
	}
	if f.cfg.CertManager == nil {
		return nil, saga.Permanent(errors.New("load balancer uses TLS certificates but no cert manager is configured"))
	}
	bundle := func(owner, ref string) error {
		if _, ok := m.bundles[ref]; ok {
			return nil
		}
		b, err := f.cfg.CertManager.GetTLSBundle(ctx, ref)
		if err != nil {
			return certErr(fmt.Sprintf("could not retrieve certificate %s of %s", ref, owner), err)
		}
		m.bundles[ref] = b.PEM()
		return nil
	}
	secret := func(owner, ref string) error {
		if _, ok := m.secrets[ref]; ok {
			return nil
		}
		s, err := f.cfg.CertManager.GetSecret(ctx, ref)
		if err != nil {
			return certErr(fmt.Sprintf("could not retrieve secret %s of %s", ref, owner), err)
		}
		if len(s) == 0 {
			return saga.Permanent(fmt.Errorf("secret %s of %s is empty", ref, owner))
		}
		m.secrets[ref] = s
		return nil
	}
	for _, l := range m.listeners {
		owner := "listener " + l.GetId()
		for _, ref := range append([]string{l.GetDefaultTlsContainerRef()}, l.GetSniContainerRefs()...) {
			if err := bundle(owner, ref); err != nil {
				return nil, err
			}
		}
		for _, ref := range listenerSecrets(l) {
			if err := secret(owner, ref); err != nil {
				return nil, err
			}
		}
	}
	for _, p := range m.pools {
		owner := "pool " + p.GetId()
		if p.TlsContainerRef != nil {
			if err := bundle(owner, p.GetTlsContainerRef()); err != nil {
				return nil, err
			}
		}
		for _, ref := range poolSecrets(p) {
			if err := secret(owner, ref); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// listenerSecrets are the CA and CRL refs the templates render for a
// listener (ca-file with client authentication, crl-file with a CA).
func listenerSecrets(l *eventsv1.Listener) []string {
	if l.ClientCaTlsContainerRef == nil || l.GetClientAuthentication() == "" {
		return nil
	}
	refs := []string{l.GetClientCaTlsContainerRef()}
	if l.ClientCrlContainerRef != nil {
		refs = append(refs, l.GetClientCrlContainerRef())
	}
	return refs
}

// poolSecrets are the CA and CRL refs of a TLS pool (crl-file with a CA).
func poolSecrets(p *eventsv1.Pool) []string {
	if p.CaTlsContainerRef == nil {
		return nil
	}
	refs := []string{p.GetCaTlsContainerRef()}
	if p.CrlContainerRef != nil {
		refs = append(refs, p.GetCrlContainerRef())
	}
	return refs
}

// certErr sorts a cert-manager error: what is missing or unusable is
// permanent, the rest (an unreachable Barbican) transient.
func certErr(what string, err error) error {
	if errors.Is(err, saga.ErrTransient) && !errors.Is(err, ports.ErrNotFound) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if errors.Is(err, saga.ErrPermanent) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if errors.Is(err, ports.ErrNotFound) {
		return saga.Permanent(fmt.Errorf("%s: %w", what, err))
	}
	return saga.Transient(fmt.Errorf("%s: %w", what, err))
}

// sha1Hex is the hex SHA-1 of b.
func sha1Hex(b []byte) string {
	sum := sha1.Sum(b)
	return hex.EncodeToString(sum[:])
}

// files are the files of one amphora whose certificate directory is dir,
// named as the templates refer to them: every listener certificate
// (default and SNI) as <sha1 of its certificate PEM>.pem (Octavia's
// naming), the listener's crt-list as <listener_id>.pem (CrtListPath),
// CA and CRL secrets as <sha1 of the ref>.pem (SecretPath) and a pool's
// client certificate as <pool_id>.pem (PoolCertPath). Certificates come
// first, crt-lists after the files they list. The order is deterministic.
func (m *tlsMaterial) files(dir string) []certFile {
	var out []certFile
	seen := map[string]bool{}
	add := func(name string, pem []byte) {
		if !seen[name] {
			seen[name] = true
			out = append(out, certFile{name: name, pem: pem})
		}
	}
	for _, l := range m.listeners {
		var paths []string
		for _, ref := range append([]string{l.GetDefaultTlsContainerRef()}, l.GetSniContainerRefs()...) {
			pem := m.bundles[ref]
			name := sha1Hex(pem) + ".pem"
			add(name, pem)
			paths = append(paths, path.Join(dir, name))
		}
		add(path.Base(templates.CrtListPath(templates.Settings{}, m.lbID, l.GetId())), []byte(templates.CrtList(uniq(paths)...)))
	}
	var secretRefs []string
	for _, l := range m.listeners {
		secretRefs = append(secretRefs, listenerSecrets(l)...)
	}
	for _, p := range m.pools {
		if p.TlsContainerRef != nil {
			add(path.Base(templates.PoolCertPath(templates.Settings{}, m.lbID, p.GetId())), m.bundles[p.GetTlsContainerRef()])
		}
		secretRefs = append(secretRefs, poolSecrets(p)...)
	}
	sort.Strings(secretRefs)
	for _, ref := range secretRefs {
		add(path.Base(templates.SecretPath(templates.Settings{}, m.lbID, ref)), m.secrets[ref])
	}
	return out
}

// uniq drops repeated paths, keeping the first (a certificate given as
// default and SNI is listed once; haproxy would load it twice).
func uniq(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// certDir is where the amphora's haproxy.cfg expects the load balancer's
// TLS files.
func (f *Flows) certDir(a Amp, lbID string) string {
	if l, ok := f.cfg.Renderer.(CertLocator); ok {
		return l.CertDir(a, lbID)
	}
	return templates.CertDir(templates.Settings{}, lbID)
}

// uploadTLS sends an amphora the TLS files of the load balancer (before
// its configuration, which refers to them). Uploading again replaces the
// files with the same content, so a re-run is harmless.
func (f *Flows) uploadTLS(ctx context.Context, a Amp, m *tlsMaterial) (int, error) {
	if m.empty() {
		return 0, nil
	}
	files := m.files(f.certDir(a, m.lbID))
	for _, file := range files {
		if err := f.cfg.Agent.UploadCertificate(ctx, a.ref(), m.lbID, file.name, file.pem); err != nil {
			return 0, portErr(fmt.Sprintf("upload certificate file %s to %s", file.name, a.ID), err)
		}
	}
	return len(files), nil
}
