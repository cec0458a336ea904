package noop_test

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/ostia/ostia/internal/drivers/noop"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

func TestCertStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := noop.NewCertStore()
	var _ ports.CertManager = s
	b := ports.TLSBundle{Certificate: []byte("CERT\n"), Intermediates: []byte("INT"), PrivateKey: []byte("KEY\n")}
	s.PutTLSBundle("ref-1", b)
	s.PutSecret("ca-1", []byte("CA\n"))
	got, err := s.GetTLSBundle(ctx, "ref-1")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.PEM()) != "CERT\nINT\nKEY\n" {
		t.Fatalf("PEM %q", got.PEM())
	}
	got.Certificate[0] = 'X' // callers cannot change the store
	if again, _ := s.GetTLSBundle(ctx, "ref-1"); string(again.Certificate) != "CERT\n" {
		t.Fatal("the store handed out its own buffer")
	}
	if sec, err := s.GetSecret(ctx, "ca-1"); err != nil || string(sec) != "CA\n" {
		t.Fatalf("secret %q, %v", sec, err)
	}
	if _, err := s.GetTLSBundle(ctx, "ca-1"); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("a secret is not a bundle: %v", err)
	}
	s.Delete("ref-1")
	if _, err := s.GetTLSBundle(ctx, "ref-1"); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("deleted: %v", err)
	}
	if _, err := s.GetSecret(ctx, "nope"); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("missing secret: %v", err)
	}
	if s.Fetches("ref-1") != 3 {
		t.Fatalf("fetches %d", s.Fetches("ref-1"))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.GetSecret(cctx, "ca-1"); !errors.Is(err, saga.ErrTransient) {
		t.Fatalf("ended context: %v", err)
	}
}

func TestUploadCertificate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := noop.New(noop.Config{})
	srv, err := c.CreateServer(ctx, ports.ServerSpec{Name: "amphora-a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetServer(ctx, srv.ID); err != nil { // booted
		t.Fatal(err)
	}
	amp := ports.Amphora{ID: "a", ComputeID: srv.ID}
	if err := c.UploadCertificate(ctx, amp, "lb", "x.pem", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := c.UploadConfig(ctx, amp, "lb", 1, []byte("cfg")); err != nil {
		t.Fatal(err)
	}
	if err := c.UploadCertificate(ctx, amp, "lb", "y.pem", []byte("two")); err != nil {
		t.Fatal(err)
	}
	v, _ := c.Agent("a")
	if want := map[string][]byte{"lb/x.pem": []byte("one"), "lb/y.pem": []byte("two")}; !maps.EqualFunc(v.Files, want, eq) {
		t.Fatalf("files %q", v.Files)
	}
	if want := map[string][]byte{"lb/x.pem": []byte("one")}; !maps.EqualFunc(v.ConfigFiles, want, eq) {
		t.Fatalf("files at the config upload %q", v.ConfigFiles)
	}
	for _, name := range []string{"x.txt", "../x.pem"} {
		if err := c.UploadCertificate(ctx, amp, "lb", name, []byte("z")); !errors.Is(err, saga.ErrPermanent) {
			t.Fatalf("%q: %v", name, err)
		}
	}
	if err := c.UploadCertificate(ctx, ports.Amphora{ID: "b", ComputeID: "missing"}, "lb", "x.pem", []byte("z")); !errors.Is(err, saga.ErrTransient) {
		t.Fatalf("unreachable amphora: %v", err)
	}
}

func eq(a, b []byte) bool { return string(a) == string(b) }
