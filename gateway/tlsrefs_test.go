package gateway_test

import (
	"context"
	"errors"
	"testing"
)

// knownRefs is a cert manager that can read the references it holds.
type knownRefs map[string]bool

func (k knownRefs) CheckTLSBundle(_ context.Context, ref string) error {
	if !k[ref] {
		return errors.New("not found")
	}
	return nil
}

func (k knownRefs) CheckSecret(ctx context.Context, ref string) error {
	return k.CheckTLSBundle(ctx, ref)
}

// With a cert manager the API refuses TLS references it cannot read, as
// Octavia's does, and stores nothing; readable ones are accepted.
func TestUnreadableTLSReferencesAreRefused(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{certs: knownRefs{"good-cert": true, "good-ca": true}})
	L := "/v2/lbaas"
	lbID := id(e.must(201, "POST", L+"/loadbalancers", map[string]any{"loadbalancer": map[string]any{
		"vip_subnet_id": subnet, "project_id": "p1"}}), "loadbalancer")
	e.worker()

	r := e.must(400, "POST", L+"/listeners", map[string]any{"listener": map[string]any{"loadbalancer_id": lbID,
		"protocol": "TERMINATED_HTTPS", "protocol_port": 443, "default_tls_container_ref": "bad-cert",
		"sni_container_refs": []string{"good-cert", "bad-sni"}}})
	if got := r.body["faultstring"]; got != "Could not retrieve certificate: ['bad-cert', 'bad-sni']" {
		t.Fatalf("faultstring %q", got)
	}
	if n := len(e.must(200, "GET", L+"/listeners", nil).list("listeners")); n != 0 {
		t.Fatalf("%d listeners after a refused create", n)
	}
	// A reference on a listener that does not terminate TLS gets the
	// aggregate's own message, as in Octavia.
	r = e.must(400, "POST", L+"/listeners", map[string]any{"listener": map[string]any{"loadbalancer_id": lbID,
		"protocol": "HTTP", "protocol_port": 80, "default_tls_container_ref": "bad-cert"}})
	if got, _ := r.body["faultstring"].(string); got == "Could not retrieve certificate: ['bad-cert']" {
		t.Fatalf("an HTTP listener's reference was fetched: %q", got)
	}

	lisID := id(e.must(201, "POST", L+"/listeners", map[string]any{"listener": map[string]any{"loadbalancer_id": lbID,
		"protocol": "TERMINATED_HTTPS", "protocol_port": 443, "default_tls_container_ref": "good-cert",
		"client_ca_tls_container_ref": "good-ca"}}), "listener")
	e.worker()
	r = e.must(400, "PUT", L+"/listeners/"+lisID, map[string]any{"listener": map[string]any{"sni_container_refs": []string{"bad-sni"}}})
	if got := r.body["faultstring"]; got != "Could not retrieve certificate: ['bad-sni']" {
		t.Fatalf("update faultstring %q", got)
	}
	e.must(200, "PUT", L+"/listeners/"+lisID, map[string]any{"listener": map[string]any{"sni_container_refs": []string{"good-cert"}}})

	r = e.must(400, "POST", L+"/pools", map[string]any{"pool": map[string]any{"loadbalancer_id": lbID,
		"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "tls_enabled": true, "ca_tls_container_ref": "bad-ca"}})
	if got := r.body["faultstring"]; got != "Could not retrieve certificate: ['bad-ca']" {
		t.Fatalf("pool faultstring %q", got)
	}
	if n := len(e.must(200, "GET", L+"/pools", nil).list("pools")); n != 0 {
		t.Fatalf("%d pools after a refused create", n)
	}
}
