package gateway

import (
	"context"
	"fmt"
	"strings"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/loadbalancer"
)

// CertChecker reads tenant TLS material the way the flows will (the cert
// manager of [certificates]), so the API can refuse a reference it cannot
// read, as Octavia's does.
type CertChecker interface {
	// CheckTLSBundle reports whether a certificate with its key can be
	// read under ref (listener certificates, pool client certificates).
	CheckTLSBundle(ctx context.Context, ref string) error
	// CheckSecret reports whether a CA or CRL can be read under ref.
	CheckSecret(ctx context.Context, ref string) error
}

// checkTLSRefs checks every TLS reference a command names with the
// configured CertChecker (none: nothing is checked, the flows find out).
// References Octavia reads as certificate bundles are checked as bundles,
// CA and CRL references as secrets; the unreadable ones are refused
// together with Octavia's 400 "Could not retrieve certificate: [...]".
// Listener references are checked only on TERMINATED_HTTPS listeners (on
// others the aggregate refuses them with Octavia's message).
func (a *api) checkTLSRefs(ctx context.Context, cmd loadbalancer.Command) error {
	if a.cfg.Certs == nil {
		return nil
	}
	var bundles, secrets []string
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	listener := func(l *loadbalancer.ListenerSpec) {
		if l.Protocol != "TERMINATED_HTTPS" {
			return
		}
		bundles = append(bundles, str(l.DefaultTLSContainerRef))
		bundles = append(bundles, l.SNIContainerRefs...)
		secrets = append(secrets, str(l.ClientCATLSContainerRef), str(l.ClientCRLContainerRef))
	}
	pool := func(p *loadbalancer.PoolSpec) {
		bundles = append(bundles, str(p.TLSContainerRef))
		secrets = append(secrets, str(p.CATLSContainerRef), str(p.CRLContainerRef))
	}
	field := func(f aggregates.Field[string]) string {
		if !f.Set || f.Null {
			return ""
		}
		return f.Value
	}
	switch c := cmd.(type) {
	case loadbalancer.CreateLoadBalancer:
		for i := range c.Listeners {
			listener(&c.Listeners[i])
			if dp := c.Listeners[i].DefaultPool; dp != nil {
				pool(dp)
			}
		}
		for i := range c.Pools {
			pool(&c.Pools[i])
		}
	case loadbalancer.CreateListener:
		listener(&c.ListenerSpec)
		if dp := c.DefaultPool; dp != nil {
			pool(dp)
		}
	case loadbalancer.UpdateListener:
		bundles = append(bundles, field(c.DefaultTLSContainerRef))
		if c.SNIContainerRefs.Set && !c.SNIContainerRefs.Null {
			bundles = append(bundles, c.SNIContainerRefs.Value...)
		}
		secrets = append(secrets, field(c.ClientCATLSContainerRef), field(c.ClientCRLContainerRef))
	case loadbalancer.CreatePool:
		pool(&c.PoolSpec)
	case loadbalancer.UpdatePool:
		bundles = append(bundles, field(c.TLSContainerRef))
		secrets = append(secrets, field(c.CATLSContainerRef), field(c.CRLContainerRef))
	default:
		return nil
	}
	var bad []string
	seen := map[string]bool{}
	check := func(refs []string, f func(context.Context, string) error) {
		for _, ref := range refs {
			if ref == "" || seen[ref] {
				continue
			}
			seen[ref] = true
			if err := f(ctx, ref); err != nil {
				a.log.InfoContext(ctx, "refusing a TLS reference the cert manager cannot read", "ref", ref, "error", err)
				bad = append(bad, ref)
			}
		}
	}
	check(bundles, a.cfg.Certs.CheckTLSBundle)
	check(secrets, a.cfg.Certs.CheckSecret)
	if len(bad) == 0 {
		return nil
	}
	return aggregates.Errorf(aggregates.KindInvalid, "Could not retrieve certificate: %s", pyStringList(bad))
}

// pyStringList renders strings as Python prints a list of them
// (['a', 'b']), as Octavia's messages show lists.
func pyStringList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
	}
	return fmt.Sprintf("[%s]", strings.Join(q, ", "))
}
