// Package certmanager reads tenant TLS material for the load-balancer
// flows (sagas/ports.CertManager): the PEM parsing and checks every
// implementation shares (Bundle, FromPKCS12) and the local directory cert
// manager (Dir), Octavia's local_cert_manager. The Barbican cert manager
// lives in internal/drivers/openstack, the in-memory one in
// internal/drivers/noop.
package certmanager

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"golang.org/x/crypto/pkcs12"

	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// Bundle checks and normalises the parts of a certificate container into
// the bundle haproxy loads: certificate (PEM or DER; extra certificates
// after the first are taken as intermediates), intermediates (PEM, may be
// empty), private key (PEM in PKCS#1, PKCS#8 or SEC 1 form, or DER;
// a legacy "Proc-Type: 4,ENCRYPTED" key is decrypted with passphrase) and
// the key must match the certificate. The key is returned as unencrypted
// PKCS#8 PEM. Unusable material is a permanent error.
func Bundle(certificate, privateKey, intermediates, passphrase []byte) (ports.TLSBundle, error) {
	certs, err := parseCerts(certificate)
	if err != nil {
		return ports.TLSBundle{}, saga.Permanent(fmt.Errorf("certificate: %w", err))
	}
	if len(certs) == 0 {
		return ports.TLSBundle{}, saga.Permanent(errors.New("certificate: no certificate found"))
	}
	chain := certs[1:]
	if len(bytes.TrimSpace(intermediates)) > 0 {
		more, err := parseCerts(intermediates)
		if err != nil {
			return ports.TLSBundle{}, saga.Permanent(fmt.Errorf("intermediates: %w", err))
		}
		chain = append(chain, more...)
	}
	key, err := parseKey(privateKey, passphrase)
	if err != nil {
		return ports.TLSBundle{}, saga.Permanent(fmt.Errorf("private key: %w", err))
	}
	return assemble(certs[0], chain, key)
}

// FromPKCS12 reads a PKCS#12 bundle (as newer Octavia accepts for a
// Barbican secret): the certificate is the one matching the private key,
// the other certificates are intermediates. golang.org/x/crypto/pkcs12
// decodes the legacy encryptions only (PBE-SHA1-3DES and RC2, SHA-1 MAC:
// `openssl pkcs12 -export -legacy`, or -keypbe/-certpbe PBE-SHA1-3DES
// -macalg sha1); a bundle made with OpenSSL 3's AES defaults is refused
// with a permanent error.
func FromPKCS12(data, passphrase []byte) (ports.TLSBundle, error) {
	blocks, err := pkcs12.ToPEM(data, string(passphrase))
	if err != nil {
		return ports.TLSBundle{}, saga.Permanent(fmt.Errorf("decode PKCS#12 bundle (only legacy 3DES/RC2 encryption with a SHA-1 MAC is supported): %w", err))
	}
	var (
		certs []*x509.Certificate
		key   crypto.Signer
	)
	for _, b := range blocks {
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return ports.TLSBundle{}, saga.Permanent(fmt.Errorf("PKCS#12 certificate: %w", err))
			}
			certs = append(certs, c)
		case "PRIVATE KEY":
			if key != nil {
				return ports.TLSBundle{}, saga.Permanent(errors.New("PKCS#12 bundle holds more than one private key"))
			}
			if key, err = parseKeyDER(b.Bytes); err != nil {
				return ports.TLSBundle{}, saga.Permanent(fmt.Errorf("PKCS#12 private key: %w", err))
			}
		}
	}
	if key == nil {
		return ports.TLSBundle{}, saga.Permanent(errors.New("PKCS#12 bundle holds no private key"))
	}
	leaf := -1
	for i, c := range certs {
		if samePublicKey(c.PublicKey, key.Public()) {
			leaf = i
			break
		}
	}
	if leaf < 0 {
		return ports.TLSBundle{}, saga.Permanent(errors.New("PKCS#12 bundle holds no certificate for its private key"))
	}
	var chain []*x509.Certificate
	for i, c := range certs {
		if i != leaf {
			chain = append(chain, c)
		}
	}
	return assemble(certs[leaf], chain, key)
}

// LooksLikePEM tells whether data holds a PEM block (otherwise it may be
// a DER or PKCS#12 payload).
func LooksLikePEM(data []byte) bool {
	b, _ := pem.Decode(data)
	return b != nil
}

// CheckSecret checks a CA or CRL secret: PEM holding at least one
// certificate or CRL, each parseable. DER input (one certificate or CRL)
// is converted to PEM.
func CheckSecret(data []byte) ([]byte, error) {
	if !LooksLikePEM(data) {
		if c, err := x509.ParseCertificate(data); err == nil {
			return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), nil
		}
		if _, err := x509.ParseRevocationList(data); err == nil {
			return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: data}), nil
		}
		return nil, saga.Permanent(errors.New("secret is neither PEM nor a DER certificate or CRL"))
	}
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return nil, saga.Permanent(fmt.Errorf("secret certificate %d: %w", n+1, err))
			}
		case "X509 CRL":
			if _, err := x509.ParseRevocationList(b.Bytes); err != nil {
				return nil, saga.Permanent(fmt.Errorf("secret CRL %d: %w", n+1, err))
			}
		default:
			return nil, saga.Permanent(fmt.Errorf("secret holds a %q PEM block; want CERTIFICATE or X509 CRL", b.Type))
		}
		n++
	}
	out := bytes.Clone(data)
	if out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return out, nil
}

func assemble(leaf *x509.Certificate, chain []*x509.Certificate, key crypto.Signer) (ports.TLSBundle, error) {
	if !samePublicKey(leaf.PublicKey, key.Public()) {
		return ports.TLSBundle{}, saga.Permanent(errors.New("private key does not match the certificate"))
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return ports.TLSBundle{}, saga.Permanent(fmt.Errorf("encode private key: %w", err))
	}
	out := ports.TLSBundle{
		Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}),
		PrivateKey:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
	}
	for _, c := range chain {
		out.Intermediates = append(out.Intermediates, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out, nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// parseCerts reads PEM CERTIFICATE blocks (other blocks are skipped) or
// one DER certificate.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	if !LooksLikePEM(data) {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("neither PEM nor DER: %w", err)
		}
		return []*x509.Certificate{c}, nil
	}
	var out []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return out, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

func parseKey(data, passphrase []byte) (crypto.Signer, error) {
	if !LooksLikePEM(data) {
		return parseKeyDER(data)
	}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no private key PEM block found")
		}
		switch {
		case b.Type == "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("encrypted PKCS#8 keys are not supported; use a legacy encrypted PEM key or an unencrypted key")
		//nolint:staticcheck // legacy PEM encryption is what Octavia's passphrase decrypts
		case x509.IsEncryptedPEMBlock(b):
			if len(passphrase) == 0 {
				return nil, errors.New("key is encrypted and no passphrase is given")
			}
			//nolint:staticcheck // see above
			der, err := x509.DecryptPEMBlock(b, passphrase)
			if err != nil {
				return nil, fmt.Errorf("decrypt with the passphrase: %w", err)
			}
			return parseKeyDER(der)
		case b.Type == "PRIVATE KEY" || b.Type == "RSA PRIVATE KEY" || b.Type == "EC PRIVATE KEY":
			return parseKeyDER(b.Bytes)
		}
	}
}

func parseKeyDER(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
		return s, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("not a PKCS#8, PKCS#1 or SEC 1 private key")
}
