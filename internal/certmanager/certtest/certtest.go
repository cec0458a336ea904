// Package certtest makes throw-away certificates for tests of the TLS
// paths (cert managers, flows, end-to-end load balancers).
package certtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Pair is a certificate with its key.
type Pair struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	// KeyPEM is the key in PKCS#8 PEM.
	KeyPEM []byte
}

// NewCA returns a self-signed CA.
func NewCA(cn string) (Pair, error) {
	return issue(nil, cn, true, nil)
}

// Chain is a root CA, an intermediate CA it signed, and a leaf the
// intermediate signed.
type Chain struct {
	Root, Inter, Leaf Pair
}

// NewChain makes a chain whose leaf is for www.example.com.
func NewChain() (Chain, error) {
	root, err := NewCA("root")
	if err != nil {
		return Chain{}, err
	}
	inter, err := IssueCA(&root, "intermediate")
	if err != nil {
		return Chain{}, err
	}
	leaf, err := Issue(&inter, "www.example.com", "www.example.com")
	if err != nil {
		return Chain{}, err
	}
	return Chain{Root: root, Inter: inter, Leaf: leaf}, nil
}

// Issue returns a leaf certificate signed by ca for the names (DNS names
// or IP addresses); a nil ca makes it self-signed.
func Issue(ca *Pair, cn string, names ...string) (Pair, error) {
	return issue(ca, cn, false, names)
}

// IssueCA returns an intermediate CA signed by ca.
func IssueCA(ca *Pair, cn string) (Pair, error) {
	return issue(ca, cn, true, nil)
}

func issue(ca *Pair, cn string, isCA bool, names []string) (Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, fmt.Errorf("certtest: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return Pair{}, fmt.Errorf("certtest: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	parent, signer := tmpl, crypto.Signer(key)
	if ca != nil {
		parent, signer = ca.Cert, ca.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return Pair{}, fmt.Errorf("certtest: create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Pair{}, fmt.Errorf("certtest: parse certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Pair{}, fmt.Errorf("certtest: encode key: %w", err)
	}
	return Pair{Cert: cert, Key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})}, nil
}
