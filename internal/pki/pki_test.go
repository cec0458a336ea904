package pki

import (
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const ampID = "3f9a6c1e-8b7d-4e2f-a1c0-5d4e3f2a1b0c"

func mustCA(t *testing.T, cn string) *CA {
	t.Helper()
	ca, err := NewCA(cn, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestIssueAndLoad(t *testing.T) {
	ca := mustCA(t, "ostia CA")
	if ca.Cert.PublicKeyAlgorithm != x509.ECDSA || ca.Key.Curve != elliptic.P256() || !ca.Cert.IsCA {
		t.Fatalf("CA is not an ECDSA P-256 CA: %v", ca.Cert.PublicKeyAlgorithm)
	}
	srv, err := ca.IssueServer(ampID, 2*time.Hour, net.ParseIP("192.0.2.5"))
	if err != nil {
		t.Fatal(err)
	}
	if srv.Cert.Subject.CommonName != ampID || len(srv.Cert.DNSNames) != 1 || srv.Cert.DNSNames[0] != ampID {
		t.Fatalf("server cert names: CN %q SAN %v", srv.Cert.Subject.CommonName, srv.Cert.DNSNames)
	}
	if d := srv.Cert.NotAfter.Sub(srv.Cert.NotBefore); d > time.Hour+clockSkew+time.Second {
		t.Fatalf("validity not capped by the CA: %v", d)
	}
	if _, err := srv.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: ampID}); err != nil {
		t.Fatalf("server cert does not verify: %v", err)
	}
	cl, err := ca.IssueClient("controller", 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client cert does not verify: %v", err)
	}
	if _, err := srv.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Fatal("a server certificate must not be usable as a client certificate")
	}
	if got := cl.Cert.NotAfter.Sub(time.Now()); got > 31*time.Minute || got < 29*time.Minute {
		t.Fatalf("client validity %v", got)
	}

	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	created, err := LoadOrCreateCA(certPath, keyPath, "ostia CA", 0)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadOrCreateCA(certPath, keyPath, "ignored", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(created.Cert) || !loaded.Key.Equal(created.Key) {
		t.Fatal("reloaded CA differs")
	}
	if _, err := LoadCA(created.CertPEM, mustKeyPEM(t, ca)); err == nil {
		t.Fatal("LoadCA accepted a key of another CA")
	}
	if _, err := LoadCA(srv.CertPEM, srv.KeyPEM); err == nil {
		t.Fatal("LoadCA accepted a leaf certificate")
	}
	c, k, err := SplitCombinedPEM(srv.CombinedPEM())
	if err != nil || string(c) != string(srv.CertPEM) || len(k) == 0 {
		t.Fatalf("SplitCombinedPEM: %v", err)
	}
	if _, _, err := SplitCombinedPEM(append(append([]byte{}, srv.CertPEM...), cl.KeyPEM...)); err == nil {
		t.Fatal("SplitCombinedPEM accepted a mismatched key")
	}
}

func mustKeyPEM(t *testing.T, ca *CA) []byte {
	k, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// serveTLS accepts TLS connections and answers "ok" once the handshake
// succeeds.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				if err := conn.(*tls.Conn).Handshake(); err != nil {
					return
				}
				_, _ = io.WriteString(conn, "ok")
			}()
		}
	}()
	return lis.Addr().String()
}

// roundTrip connects and reads the greeting; with TLS 1.3 a rejected client
// certificate only shows on the first read.
func roundTrip(addr string, cfg *tls.Config) (*tls.ConnectionState, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, err
	}
	if string(buf) != "ok" {
		return nil, errors.New("unexpected greeting")
	}
	st := conn.ConnectionState()
	return &st, nil
}

func TestMutualTLS(t *testing.T) {
	serverCA, clientCA, rogueCA := mustCA(t, "server CA"), mustCA(t, "client CA"), mustCA(t, "rogue CA")
	dir := t.TempDir()
	srv, err := serverCA.IssueServer(ampID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := srv.WriteFiles(certPath, keyPath); err != nil {
		t.Fatal(err)
	}
	reloader, err := NewKeyPairReloader(certPath, keyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, ServerTLSConfig(reloader.GetCertificate, clientCA.Pool()))

	issue := func(ca *CA) tls.Certificate {
		i, err := ca.IssueClient("controller", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, err := i.TLSCertificate()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good, rogue := issue(clientCA), issue(rogueCA)

	st, err := roundTrip(addr, ClientTLSConfig(good, serverCA.Pool(), ampID))
	if err != nil {
		t.Fatalf("valid client rejected: %v", err)
	}
	if st.Version != tls.VersionTLS13 {
		t.Fatalf("negotiated %x, want TLS 1.3", st.Version)
	}
	firstSerial := st.PeerCertificates[0].SerialNumber

	noCert := ClientTLSConfig(good, serverCA.Pool(), ampID)
	noCert.Certificates = nil
	if _, err := roundTrip(addr, noCert); err == nil {
		t.Fatal("client without certificate accepted")
	}
	if _, err := roundTrip(addr, ClientTLSConfig(rogue, serverCA.Pool(), ampID)); err == nil {
		t.Fatal("client certificate from another CA accepted")
	}
	if _, err := roundTrip(addr, ClientTLSConfig(good, serverCA.Pool(), "other-amphora")); err == nil {
		t.Fatal("server certificate accepted for another amphora id")
	}
	tls12 := ClientTLSConfig(good, serverCA.Pool(), ampID)
	tls12.MinVersion, tls12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if _, err := roundTrip(addr, tls12); err == nil {
		t.Fatal("TLS 1.2 accepted")
	}

	// A server certificate with the right SAN but another CN is refused by
	// the CN check.
	odd, err := serverCA.issue(&x509.Certificate{DNSNames: []string{ampID},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	oddCert, _ := odd.TLSCertificate()
	oddAddr := serveTLS(t, ServerTLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &oddCert, nil }, clientCA.Pool()))
	if _, err := roundTrip(oddAddr, ClientTLSConfig(good, serverCA.Pool(), ampID)); err == nil || !strings.Contains(err.Error(), "CN") {
		t.Fatalf("server certificate without the amphora CN: %v", err)
	}

	// Rotation: re-issue and write; the next handshake uses the new cert.
	next, err := serverCA.IssueServer(ampID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := next.WriteFiles(certPath, keyPath); err != nil {
		t.Fatal(err)
	}
	st, err = roundTrip(addr, ClientTLSConfig(good, serverCA.Pool(), ampID))
	if err != nil {
		t.Fatal(err)
	}
	if got := st.PeerCertificates[0].SerialNumber; got.Cmp(firstSerial) == 0 || got.Cmp(next.Cert.SerialNumber) != 0 {
		t.Fatalf("serial after rotation %x, want %x", got, next.Cert.SerialNumber)
	}
	// A broken write keeps the previous certificate.
	if err := WriteFileAtomic(certPath, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err = roundTrip(addr, ClientTLSConfig(good, serverCA.Pool(), ampID)); err != nil || st.PeerCertificates[0].SerialNumber.Cmp(next.Cert.SerialNumber) != 0 {
		t.Fatalf("broken rotation: %v", err)
	}
}

func TestParseKeyFormats(t *testing.T) {
	ca := mustCA(t, "ca")
	der, err := x509.MarshalECPrivateKey(ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParsePrivateKeyPEM(pemBlock("EC PRIVATE KEY", der))
	if err != nil || !k.Equal(ca.Key) {
		t.Fatalf("SEC 1 key: %v", err)
	}
	if _, err := ParsePrivateKeyPEM([]byte("nothing")); err == nil {
		t.Fatal("parsed garbage")
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
