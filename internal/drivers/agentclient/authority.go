package agentclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ostia/ostia/internal/pki"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// Authority is Ostia's CA as the sagas and the agent client use it: it
// issues amphora server certificates (ports.Certificates; CN and DNS SAN =
// amphora id) and the controller's client certificate. Agents trust the
// CA certificate for client certificates (their client_ca.pem) and the
// controller trusts it for server certificates. Server certificates only
// allow server authentication, so an amphora cannot use its certificate to
// talk to another amphora.
type Authority struct {
	ca *pki.CA
}

var _ ports.Certificates = (*Authority)(nil)

// NewAuthority wraps a CA.
func NewAuthority(ca *pki.CA) (*Authority, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("agentclient: authority needs a CA certificate and key")
	}
	return &Authority{ca: ca}, nil
}

// LoadOrCreateAuthority loads the CA from its files, creating it (and the
// files) on first use, as a single-machine installation does.
func LoadOrCreateAuthority(certPath, keyPath string) (*Authority, error) {
	ca, err := pki.LoadOrCreateCA(certPath, keyPath, "Ostia amphora CA", 0)
	if err != nil {
		return nil, fmt.Errorf("agentclient: %w", err)
	}
	return NewAuthority(ca)
}

// CACertPEM is the CA certificate, for the agents' client_ca.pem.
func (a *Authority) CACertPEM() []byte { return append([]byte(nil), a.ca.CertPEM...) }

// Pool is a certificate pool holding the CA, for Config.ServerCAs.
func (a *Authority) Pool() *x509.CertPool { return a.ca.Pool() }

// IssueServerCert implements ports.Certificates: PEM is the certificate
// followed by its private key (Octavia's server.pem).
func (a *Authority) IssueServerCert(ctx context.Context, amphoraID string, validity time.Duration) (ports.Certificate, error) {
	if err := ctx.Err(); err != nil {
		return ports.Certificate{}, saga.Transient(err)
	}
	iss, err := a.ca.IssueServer(amphoraID, validity)
	if err != nil {
		return ports.Certificate{}, saga.Permanent(fmt.Errorf("agentclient: %w", err))
	}
	return ports.Certificate{Serial: iss.Cert.SerialNumber.Text(16), PEM: iss.CombinedPEM(), ExpiresAt: iss.Cert.NotAfter}, nil
}

// ClientCertificateFunc returns a Config.ClientCertificate that issues the
// controller's client certificate (CN commonName) and issues a new one when
// less than a fifth of its validity is left.
func (a *Authority) ClientCertificateFunc(commonName string, validity time.Duration) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if validity <= 0 {
		validity = pki.DefaultCertValidity
	}
	var mu sync.Mutex
	var cur *tls.Certificate
	var renewAt time.Time
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		mu.Lock()
		defer mu.Unlock()
		if cur != nil && time.Now().Before(renewAt) {
			return cur, nil
		}
		iss, err := a.ca.IssueClient(commonName, validity)
		if err != nil {
			return nil, fmt.Errorf("agentclient: client certificate: %w", err)
		}
		c, err := iss.TLSCertificate()
		if err != nil {
			return nil, fmt.Errorf("agentclient: client certificate: %w", err)
		}
		life := iss.Cert.NotAfter.Sub(iss.Cert.NotBefore)
		cur, renewAt = &c, iss.Cert.NotAfter.Add(-life/5)
		return cur, nil
	}
}
