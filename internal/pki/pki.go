// Package pki is Ostia's small certificate authority for the controller to
// amphora-agent channel. It creates or loads an ECDSA P-256 CA, issues the
// controller's client certificate and per-amphora server certificates (CN
// and DNS SAN = amphora id), and builds the TLS configurations of both ends:
// TLS 1.3 only, client certificates required and verified on the agent, and
// the amphora id checked as the server name on the controller.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Default validity periods.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultCertValidity = 30 * 24 * time.Hour // Octavia cert_validity_time
)

// clockSkew backdates NotBefore so freshly issued certificates are accepted
// by peers whose clock is slightly behind.
const clockSkew = 5 * time.Minute

// CA is a certificate authority: its certificate and private key.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
}

// Issued is a certificate issued by a CA with its private key.
type Issued struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

// NewCA creates a self-signed CA certificate with a fresh P-256 key.
// A zero validity uses DefaultCAValidity.
func NewCA(commonName string, validity time.Duration) (*CA, error) {
	if commonName == "" {
		return nil, errors.New("pki: CA common name is empty")
	}
	if validity <= 0 {
		validity = DefaultCAValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"Ostia"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: self-sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(der)}, nil
}

// LoadCA parses a CA from PEM. The key may be PKCS#8 or SEC 1 encoded.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("pki: certificate is not a CA")
	}
	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("pki: CA key does not match the CA certificate")
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(cert.Raw)}, nil
}

// LoadCAFiles reads a CA from a certificate and a key file.
func LoadCAFiles(certPath, keyPath string) (*CA, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA key: %w", err)
	}
	return LoadCA(certPEM, keyPEM)
}

// LoadOrCreateCA loads the CA from the files when both exist, otherwise it
// creates a new CA and writes it there (key mode 0600).
func LoadOrCreateCA(certPath, keyPath, commonName string, validity time.Duration) (*CA, error) {
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	if certErr == nil && keyErr == nil {
		return LoadCAFiles(certPath, keyPath)
	}
	if certErr == nil || keyErr == nil {
		return nil, fmt.Errorf("pki: only one of %s and %s exists", certPath, keyPath)
	}
	ca, err := NewCA(commonName, validity)
	if err != nil {
		return nil, err
	}
	if err := ca.WriteFiles(certPath, keyPath); err != nil {
		return nil, err
	}
	return ca, nil
}

// KeyPEM returns the CA private key as PKCS#8 PEM.
func (ca *CA) KeyPEM() ([]byte, error) { return encodeKey(ca.Key) }

// WriteFiles writes the CA certificate (0644) and key (0600) atomically.
func (ca *CA) WriteFiles(certPath, keyPath string) error {
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return WriteFileAtomic(certPath, ca.CertPEM, 0o644)
}

// Pool returns a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// IssueClient issues a client-authentication certificate (the controller's).
// A zero validity uses DefaultCertValidity.
func (ca *CA) IssueClient(commonName string, validity time.Duration) (*Issued, error) {
	if commonName == "" {
		return nil, errors.New("pki: client common name is empty")
	}
	return ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName, Organization: []string{"Ostia"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, validity)
}

// IssueServer issues the server certificate of an amphora agent: CN and DNS
// SAN are the amphora id; extra IP SANs (the management address) are
// optional. A zero validity uses DefaultCertValidity.
func (ca *CA) IssueServer(amphoraID string, validity time.Duration, ips ...net.IP) (*Issued, error) {
	if amphoraID == "" {
		return nil, errors.New("pki: amphora id is empty")
	}
	return ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: amphoraID, Organization: []string{"Ostia"}},
		DNSNames:    []string{amphoraID},
		IPAddresses: ips,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, validity)
}

func (ca *CA) issue(tmpl *x509.Certificate, validity time.Duration) (*Issued, error) {
	if validity <= 0 {
		validity = DefaultCertValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-clockSkew)
	tmpl.NotAfter = now.Add(validity)
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign certificate for %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse issued certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &Issued{Cert: cert, Key: key, CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// TLSCertificate returns the certificate as a tls.Certificate.
func (i *Issued) TLSCertificate() (tls.Certificate, error) {
	c, err := tls.X509KeyPair(i.CertPEM, i.KeyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: key pair: %w", err)
	}
	return c, nil
}

// CombinedPEM is the certificate followed by its key, the single-file form
// Octavia uses for server.pem and client.pem.
func (i *Issued) CombinedPEM() []byte {
	out := append([]byte{}, i.CertPEM...)
	return append(out, i.KeyPEM...)
}

// WriteFiles writes the certificate (0644) and key (0600) atomically. The
// key is written first so a reader watching the certificate never pairs a
// new certificate with an old key for long (KeyPairReloader also retries).
func (i *Issued) WriteFiles(certPath, keyPath string) error {
	if err := WriteFileAtomic(keyPath, i.KeyPEM, 0o600); err != nil {
		return err
	}
	return WriteFileAtomic(certPath, i.CertPEM, 0o644)
}

// ParseCertificatePEM parses the first CERTIFICATE block of data.
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("pki: no CERTIFICATE block in PEM")
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("pki: parse certificate: %w", err)
			}
			return c, nil
		}
	}
}

// ParsePrivateKeyPEM parses the first ECDSA private key block of data
// (PKCS#8 "PRIVATE KEY" or SEC 1 "EC PRIVATE KEY").
func ParsePrivateKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("pki: no private key block in PEM")
		}
		switch b.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("pki: parse PKCS#8 key: %w", err)
			}
			ek, ok := k.(*ecdsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("pki: key is %T, want ECDSA", k)
			}
			return ek, nil
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("pki: parse EC key: %w", err)
			}
			return k, nil
		}
	}
}

// CertPoolFromPEM builds a pool from every certificate in data.
func CertPoolFromPEM(data []byte) (*x509.CertPool, error) {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(data) {
		return nil, errors.New("pki: no certificates in CA PEM")
	}
	return p, nil
}

// CertPoolFromFile builds a pool from a PEM file.
func CertPoolFromFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA file: %w", err)
	}
	p, err := CertPoolFromPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return p, nil
}

// ServerTLSConfig is the agent's TLS configuration: TLS 1.3, the server
// certificate from getCert (KeyPairReloader.GetCertificate supports
// rotation), and client certificates required and verified against
// clientCAs.
func ServerTLSConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), clientCAs *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: getCert,
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      clientCAs,
	}
}

// ClientTLSConfig is the controller's TLS configuration for talking to one
// amphora: TLS 1.3, the client certificate, the server verified against
// serverCAs with amphoraID as the expected name (DNS SAN), and additionally
// the certificate CN required to equal amphoraID.
func ClientTLSConfig(cert tls.Certificate, serverCAs *x509.CertPool, amphoraID string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      serverCAs,
		ServerName:   amphoraID,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("pki: server sent no certificate")
			}
			if cn := cs.PeerCertificates[0].Subject.CommonName; cn != amphoraID {
				return fmt.Errorf("pki: server certificate CN %q is not amphora %q", cn, amphoraID)
			}
			return nil
		},
	}
}

// WriteFileAtomic writes data to a temporary file in the same directory and
// renames it over path, so readers see either the old or the new content.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pki: create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("pki: temp file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("pki: chmod %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("pki: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("pki: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pki: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pki: rename to %s: %w", path, err)
	}
	return nil
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("pki: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// SplitCombinedPEM separates the CERTIFICATE blocks from the private key
// block of a combined PEM (Octavia's server.pem form).
func SplitCombinedPEM(data []byte) (certPEM, keyPEM []byte, err error) {
	var certs, keys bytes.Buffer
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			_ = pem.Encode(&certs, b)
		case "PRIVATE KEY", "EC PRIVATE KEY":
			if keys.Len() > 0 {
				return nil, nil, errors.New("pki: more than one private key in PEM")
			}
			_ = pem.Encode(&keys, b)
		}
	}
	if certs.Len() == 0 || keys.Len() == 0 {
		return nil, nil, errors.New("pki: PEM needs a certificate and a private key")
	}
	if _, err := tls.X509KeyPair(certs.Bytes(), keys.Bytes()); err != nil {
		return nil, nil, fmt.Errorf("pki: certificate and key do not match: %w", err)
	}
	return certs.Bytes(), keys.Bytes(), nil
}
