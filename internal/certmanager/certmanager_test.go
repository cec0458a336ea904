package certmanager_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ostia/ostia/internal/certmanager"
	"github.com/ostia/ostia/internal/certmanager/certtest"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

type chain struct {
	root, inter, leaf certtest.Pair
}

func newChain(t *testing.T) chain {
	t.Helper()
	c, err := certtest.NewChain()
	if err != nil {
		t.Fatal(err)
	}
	return chain{root: c.Root, inter: c.Inter, leaf: c.Leaf}
}

// checkBundle checks the bundle's PEM loads as a TLS key pair whose chain
// verifies against root.
func checkBundle(t *testing.T, b ports.TLSBundle, root *x509.Certificate, wantChain int) {
	t.Helper()
	pemData := b.PEM()
	pair, err := tls.X509KeyPair(pemData, pemData)
	if err != nil {
		t.Fatalf("bundle PEM does not load as a key pair: %v\n%s", err, pemData)
	}
	if len(pair.Certificate) != 1+wantChain {
		t.Fatalf("bundle has %d certificates, want %d", len(pair.Certificate), 1+wantChain)
	}
	if !bytes.HasPrefix(pemData, b.Certificate) || !bytes.HasSuffix(pemData, b.PrivateKey) {
		t.Fatal("bundle PEM is not certificate, intermediates, key")
	}
	if root == nil {
		return
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		c, _ := x509.ParseCertificate(der)
		inter.AddCert(c)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
		t.Fatalf("bundle chain does not verify: %v", err)
	}
}

func TestBundle(t *testing.T) {
	c := newChain(t)
	t.Run("separate intermediates", func(t *testing.T) {
		b, err := certmanager.Bundle(c.leaf.CertPEM, c.leaf.KeyPEM, c.inter.CertPEM, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkBundle(t, b, c.root.Cert, 1)
	})
	t.Run("chain in the certificate", func(t *testing.T) {
		b, err := certmanager.Bundle(append(bytes.Clone(c.leaf.CertPEM), c.inter.CertPEM...), c.leaf.KeyPEM, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkBundle(t, b, c.root.Cert, 1)
	})
	t.Run("DER", func(t *testing.T) {
		kb, _ := pem.Decode(c.leaf.KeyPEM)
		b, err := certmanager.Bundle(c.leaf.Cert.Raw, kb.Bytes, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkBundle(t, b, nil, 0)
	})
	t.Run("encrypted key", func(t *testing.T) {
		kb, _ := pem.Decode(c.leaf.KeyPEM)
		enc, err := x509.EncryptPEMBlock(rand.Reader, "PRIVATE KEY", kb.Bytes, []byte("s3cret"), x509.PEMCipherAES256) //nolint:staticcheck
		if err != nil {
			t.Fatal(err)
		}
		encPEM := pem.EncodeToMemory(enc)
		b, err := certmanager.Bundle(c.leaf.CertPEM, encPEM, c.inter.CertPEM, []byte("s3cret"))
		if err != nil {
			t.Fatal(err)
		}
		checkBundle(t, b, c.root.Cert, 1)
		if bytes.Contains(b.PEM(), []byte("ENCRYPTED")) {
			t.Fatal("bundle key is still encrypted")
		}
		for _, pass := range [][]byte{nil, []byte("wrong")} {
			if _, err := certmanager.Bundle(c.leaf.CertPEM, encPEM, nil, pass); !errors.Is(err, saga.ErrPermanent) {
				t.Fatalf("passphrase %q: got %v, want a permanent error", pass, err)
			}
		}
	})
	t.Run("key of another certificate", func(t *testing.T) {
		_, err := certmanager.Bundle(c.leaf.CertPEM, c.inter.KeyPEM, nil, nil)
		if !errors.Is(err, saga.ErrPermanent) || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		if _, err := certmanager.Bundle([]byte("hello"), c.leaf.KeyPEM, nil, nil); !errors.Is(err, saga.ErrPermanent) {
			t.Fatalf("got %v", err)
		}
		if _, err := certmanager.Bundle(c.leaf.CertPEM, []byte("-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n"), nil, nil); !errors.Is(err, saga.ErrPermanent) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestFromPKCS12(t *testing.T) {
	legacy, err := os.ReadFile("testdata/legacy.p12")
	if err != nil {
		t.Fatal(err)
	}
	leafPEM, _ := os.ReadFile("testdata/leaf.crt")
	caPEM, _ := os.ReadFile("testdata/ca.crt")
	cb, _ := pem.Decode(caPEM)
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	b, err := certmanager.FromPKCS12(legacy, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkBundle(t, b, ca, 1)
	lb, _ := pem.Decode(leafPEM)
	if got, _ := pem.Decode(b.Certificate); !bytes.Equal(got.Bytes, lb.Bytes) {
		t.Fatal("the leaf is not the certificate matching the key")
	}

	// OpenSSL 3 defaults (PBES2/AES) are beyond x/crypto/pkcs12.
	modern, err := os.ReadFile("testdata/modern.p12")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := certmanager.FromPKCS12(modern, nil); !errors.Is(err, saga.ErrPermanent) || !strings.Contains(err.Error(), "legacy") {
		t.Fatalf("modern PKCS#12: got %v, want a permanent error naming the legacy formats", err)
	}
	if _, err := certmanager.FromPKCS12([]byte("not a bundle"), nil); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("garbage: got %v", err)
	}
}

func write(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDir(t *testing.T) {
	ctx := context.Background()
	c := newChain(t)
	dir := t.TempDir()
	kb, _ := pem.Decode(c.leaf.KeyPEM)
	enc, err := x509.EncryptPEMBlock(rand.Reader, "PRIVATE KEY", kb.Bytes, []byte("pw"), x509.PEMCipherAES128) //nolint:staticcheck
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "web.crt", c.leaf.CertPEM)
	write(t, dir, "web.key", pem.EncodeToMemory(enc))
	write(t, dir, "web.int", c.inter.CertPEM)
	write(t, dir, "web.pass", []byte("pw\n"))
	write(t, dir, "plain.crt", c.inter.CertPEM)
	write(t, dir, "plain.key", c.inter.KeyPEM)
	write(t, dir, "nokey.crt", c.leaf.CertPEM)
	write(t, dir, "clientca.pem", c.root.CertPEM)
	write(t, dir, "ca2.crt", c.inter.CertPEM)
	write(t, dir, "bad.pem", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))

	m, err := certmanager.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var _ ports.CertManager = m

	for _, ref := range []string{"web", "local://web"} {
		b, err := m.GetTLSBundle(ctx, ref)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		checkBundle(t, b, c.root.Cert, 1)
	}
	b, err := m.GetTLSBundle(ctx, "plain")
	if err != nil {
		t.Fatal(err)
	}
	checkBundle(t, b, c.root.Cert, 0)

	for _, ref := range []string{"missing", "nokey"} {
		if _, err := m.GetTLSBundle(ctx, ref); !errors.Is(err, ports.ErrNotFound) {
			t.Fatalf("%s: got %v, want ErrNotFound", ref, err)
		}
	}
	for _, ref := range []string{"../etc/passwd", ".hidden", "", "a/b"} {
		if _, err := m.GetTLSBundle(ctx, ref); !errors.Is(err, saga.ErrPermanent) {
			t.Fatalf("%q: got %v, want a permanent error", ref, err)
		}
	}

	got, err := m.GetSecret(ctx, "clientca")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, c.root.CertPEM) {
		t.Fatalf("secret from .pem: got %q", got)
	}
	if got, err = m.GetSecret(ctx, "ca2"); err != nil || !bytes.Equal(got, c.inter.CertPEM) {
		t.Fatalf("secret from .crt: %q, %v", got, err)
	}
	if _, err := m.GetSecret(ctx, "nothing"); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("missing secret: got %v", err)
	}
	if _, err := m.GetSecret(ctx, "bad"); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("bad secret: got %v", err)
	}

	empty, err := certmanager.NewDir(filepath.Join(dir, "nope"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := empty.GetTLSBundle(ctx, "web"); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("missing directory: %v", err)
	}
	for _, bad := range []string{"", filepath.Join(dir, "web.crt")} {
		if _, err := certmanager.NewDir(bad); err == nil {
			t.Fatalf("NewDir(%q) accepted", bad)
		}
	}
}

func TestCheckSecretCRL(t *testing.T) {
	c := newChain(t)
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: bigOne(), ThisUpdate: c.root.Cert.NotBefore,
		NextUpdate: c.root.Cert.NotAfter}, c.root.Cert, c.root.Key)
	if err != nil {
		t.Fatal(err)
	}
	crlPEM := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	got, err := certmanager.CheckSecret(crlPEM)
	if err != nil || !bytes.Equal(got, crlPEM) {
		t.Fatalf("PEM CRL: %q, %v", got, err)
	}
	if got, err = certmanager.CheckSecret(der); err != nil || !bytes.Equal(got, crlPEM) {
		t.Fatalf("DER CRL: %q, %v", got, err)
	}
}

func bigOne() *big.Int { return big.NewInt(1) }
