package openstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	th "github.com/gophercloud/gophercloud/v2/testhelper"
	fake "github.com/gophercloud/gophercloud/v2/testhelper/client"

	"github.com/ostia/ostia/internal/certmanager/certtest"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

const keyManagerPrefix = "/key-manager/v1"

// fakeBarbican is the part of Barbican the cert manager reads: container
// and secret metadata, and payloads served only in the secret's own
// content type (406 otherwise, as Barbican answers).
type fakeBarbican struct {
	t          *testing.T
	base       string
	mu         sync.Mutex
	secrets    map[string]fakeSecret
	containers map[string]map[string]string // id -> name -> secret id
	status     int                          // when set, every request answers it
	requests   []string
}

type fakeSecret struct {
	contentType string
	payload     []byte
}

func newFakeBarbican(t *testing.T) (*fakeBarbican, *Barbican) {
	fs := th.SetupHTTP()
	t.Cleanup(fs.Teardown)
	f := &fakeBarbican{t: t, base: fs.Endpoint() + "key-manager/v1/", secrets: map[string]fakeSecret{},
		containers: map[string]map[string]string{}}
	fs.Mux.HandleFunc("GET "+keyManagerPrefix+"/containers/{id}", f.getContainer)
	fs.Mux.HandleFunc("GET "+keyManagerPrefix+"/secrets/{id}", f.getSecret)
	fs.Mux.HandleFunc("GET "+keyManagerPrefix+"/secrets/{id}/payload", f.getPayload)
	c := fake.ServiceClient(fs)
	c.Endpoint = fs.Endpoint() + "key-manager/"
	c.ResourceBase = c.Endpoint + "v1/"
	c.Type = "key-manager"
	b, err := NewBarbican(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f, b
}

func (f *fakeBarbican) addSecret(contentType string, payload []byte) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := uuid.NewString()
	f.secrets[id] = fakeSecret{contentType: contentType, payload: payload}
	return id
}

func (f *fakeBarbican) addContainer(secrets map[string]string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := uuid.NewString()
	f.containers[id] = secrets
	return id
}

func (f *fakeBarbican) begin(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	if f.status != 0 {
		w.WriteHeader(f.status)
		return false
	}
	return true
}

func (f *fakeBarbican) getContainer(w http.ResponseWriter, r *http.Request) {
	if !f.begin(w, r) {
		return
	}
	f.mu.Lock()
	c, ok := f.containers[r.PathValue("id")]
	f.mu.Unlock()
	if !ok {
		http.Error(w, `{"code": 404, "title": "Not Found"}`, http.StatusNotFound)
		return
	}
	var refs []map[string]string
	for name, sid := range c {
		refs = append(refs, map[string]string{"name": name, "secret_ref": "https://barbican.elsewhere:9311/v1/secrets/" + sid})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"container_ref": f.base + "containers/" + r.PathValue("id"),
		"type": "certificate", "status": "ACTIVE", "secret_refs": refs})
}

func (f *fakeBarbican) getSecret(w http.ResponseWriter, r *http.Request) {
	if !f.begin(w, r) {
		return
	}
	f.mu.Lock()
	s, ok := f.secrets[r.PathValue("id")]
	f.mu.Unlock()
	if !ok {
		http.Error(w, `{"code": 404, "title": "Not Found"}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"secret_ref": f.base + "secrets/" + r.PathValue("id"), "status": "ACTIVE",
		"content_types": map[string]string{"default": s.contentType}})
}

func (f *fakeBarbican) getPayload(w http.ResponseWriter, r *http.Request) {
	if !f.begin(w, r) {
		return
	}
	f.mu.Lock()
	s, ok := f.secrets[r.PathValue("id")]
	f.mu.Unlock()
	if !ok {
		http.Error(w, `{"code": 404, "title": "Not Found"}`, http.StatusNotFound)
		return
	}
	if r.Header.Get("Accept") != s.contentType {
		http.Error(w, "Not Acceptable", http.StatusNotAcceptable)
		return
	}
	w.Header().Set("Content-Type", s.contentType)
	_, _ = w.Write(s.payload)
}

func TestBarbicanContainer(t *testing.T) {
	ctx := context.Background()
	f, b := newFakeBarbican(t)
	c, err := certtest.NewChain()
	if err != nil {
		t.Fatal(err)
	}
	inter, leaf := c.Inter, c.Leaf
	kb, _ := pem.Decode(leaf.KeyPEM)
	enc, err := x509.EncryptPEMBlock(rand.Reader, "PRIVATE KEY", kb.Bytes, []byte("pw"), x509.PEMCipherAES256) //nolint:staticcheck
	if err != nil {
		t.Fatal(err)
	}
	full := f.addContainer(map[string]string{
		"certificate":            f.addSecret("text/plain", leaf.CertPEM),
		"private_key":            f.addSecret("application/octet-stream", pem.EncodeToMemory(enc)),
		"intermediates":          f.addSecret("text/plain", inter.CertPEM),
		"private_key_passphrase": f.addSecret("text/plain", []byte("pw\n")),
	})
	for _, ref := range []string{"https://barbican.example:9311/v1/containers/" + full, full} {
		got, err := b.GetTLSBundle(ctx, ref)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		pair, err := tls.X509KeyPair(got.PEM(), got.PEM())
		if err != nil {
			t.Fatalf("bundle does not load: %v", err)
		}
		if len(pair.Certificate) != 2 || !bytes.Equal(pair.Certificate[0], leaf.Cert.Raw) || !bytes.Equal(pair.Certificate[1], inter.Cert.Raw) {
			t.Fatal("bundle is not leaf + intermediate")
		}
	}
	// Requests go to the configured endpoint, not to the reference's host.
	for _, r := range f.requests {
		if !strings.HasPrefix(r, "GET "+keyManagerPrefix+"/") {
			t.Fatalf("unexpected request %s", r)
		}
	}

	noKey := f.addContainer(map[string]string{"certificate": f.addSecret("text/plain", leaf.CertPEM)})
	if _, err := b.GetTLSBundle(ctx, noKey); !errors.Is(err, saga.ErrPermanent) || !strings.Contains(err.Error(), "private_key") {
		t.Fatalf("container without a key: %v", err)
	}
	wrongKey := f.addContainer(map[string]string{"certificate": f.addSecret("text/plain", leaf.CertPEM),
		"private_key": f.addSecret("text/plain", inter.KeyPEM)})
	if _, err := b.GetTLSBundle(ctx, wrongKey); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("container with another key: %v", err)
	}
	if _, err := b.GetTLSBundle(ctx, "https://barbican.example/v1/containers/"+uuid.NewString()); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("missing container: %v", err)
	}
	dangling := f.addContainer(map[string]string{"certificate": uuid.NewString(), "private_key": uuid.NewString()})
	if _, err := b.GetTLSBundle(ctx, dangling); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("container of deleted secrets: %v", err)
	}
	for _, ref := range []string{"not-a-ref", "https://barbican.example/v1/orders/" + uuid.NewString(), ""} {
		if _, err := b.GetTLSBundle(ctx, ref); !errors.Is(err, saga.ErrPermanent) {
			t.Fatalf("%q: %v", ref, err)
		}
	}

	f.status = http.StatusServiceUnavailable
	if _, err := b.GetTLSBundle(ctx, full); !errors.Is(err, saga.ErrTransient) {
		t.Fatalf("503: %v", err)
	}
	f.status = http.StatusForbidden // no ACL for Ostia's user
	if _, err := b.GetTLSBundle(ctx, full); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("403: %v", err)
	}
}

func TestBarbicanSecrets(t *testing.T) {
	ctx := context.Background()
	f, b := newFakeBarbican(t)

	// A PKCS#12 secret (legacy encryption, see internal/certmanager).
	p12, err := os.ReadFile("../../certmanager/testdata/legacy.p12")
	if err != nil {
		t.Fatal(err)
	}
	id := f.addSecret("application/octet-stream", p12)
	got, err := b.GetTLSBundle(ctx, "https://barbican.example/v1/secrets/"+id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(got.PEM(), got.PEM()); err != nil {
		t.Fatalf("PKCS#12 bundle does not load: %v", err)
	}
	modern, err := os.ReadFile("../../certmanager/testdata/modern.p12")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetTLSBundle(ctx, "https://barbican.example/v1/secrets/"+f.addSecret("application/octet-stream", modern)); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("AES PKCS#12: %v", err)
	}
	// A PEM secret with the certificate and its key.
	leaf, err := certtest.Issue(nil, "pem.example.com", "pem.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetTLSBundle(ctx, "https://barbican.example/v1/secrets/"+f.addSecret("text/plain", append(bytes.Clone(leaf.CertPEM), leaf.KeyPEM...))); err != nil {
		t.Fatalf("PEM secret: %v", err)
	}

	// CA secrets.
	ca, err := certtest.NewCA("client CA")
	if err != nil {
		t.Fatal(err)
	}
	caID := f.addSecret("text/plain", ca.CertPEM)
	sec, err := b.GetSecret(ctx, "https://barbican.example/v1/secrets/"+caID)
	if err != nil || !bytes.Equal(sec, ca.CertPEM) {
		t.Fatalf("CA secret: %q, %v", sec, err)
	}
	cont := f.addContainer(map[string]string{"certificate": caID})
	if sec, err = b.GetSecret(ctx, "https://barbican.example/v1/containers/"+cont); err != nil || !bytes.Equal(sec, ca.CertPEM) {
		t.Fatalf("CA from a container: %q, %v", sec, err)
	}
	if _, err := b.GetSecret(ctx, "https://barbican.example/v1/secrets/"+uuid.NewString()); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("missing secret: %v", err)
	}
	if _, err := b.GetSecret(ctx, "https://barbican.example/v1/secrets/"+f.addSecret("text/plain", []byte("hello"))); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("not a PEM: %v", err)
	}
}
