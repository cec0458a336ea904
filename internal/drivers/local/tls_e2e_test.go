package local_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ostia/ostia/aggregates/amphora"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/internal/certmanager/certtest"
	"github.com/ostia/ostia/sagas/lbflows"
)

// tlsFixture is a CA with a leaf for www.example.com (through an
// intermediate) and one for sni.example.com, written to the local cert
// manager's directory as the references "web" and "sni", plus a client
// CA ("clientca") and its CRL ("clientcrl").
type tlsFixture struct {
	root certtest.Pair
}

func writeTLSFixture(t *testing.T, dir string) tlsFixture {
	t.Helper()
	root, err := certtest.NewCA("test root")
	if err != nil {
		t.Fatal(err)
	}
	inter, err := certtest.IssueCA(&root, "test intermediate")
	if err != nil {
		t.Fatal(err)
	}
	web, err := certtest.Issue(&inter, "www.example.com", "www.example.com")
	if err != nil {
		t.Fatal(err)
	}
	sni, err := certtest.Issue(&root, "sni.example.com", "sni.example.com")
	if err != nil {
		t.Fatal(err)
	}
	clientCA, err := certtest.NewCA("client CA")
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(24 * time.Hour)}, clientCA.Cert, clientCA.Key)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"web.crt": web.CertPEM, "web.key": web.KeyPEM, "web.int": inter.CertPEM,
		"sni.crt": sni.CertPEM, "sni.key": sni.KeyPEM,
		"clientca.pem":  clientCA.CertPEM,
		"clientcrl.pem": pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return tlsFixture{root: root}
}

// httpsGet sends one request over a new TLS connection with SNI
// serverName, trusting only root, and returns the body and the CN of the
// certificate the load balancer presented.
func httpsGet(root *x509.Certificate, addr, serverName string) (body, cn string, err error) {
	roots := x509.NewCertPool()
	roots.AddCert(root)
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12},
		DialContext:     (&net.Dialer{Timeout: 2 * time.Second}).DialContext}}
	resp, err := c.Get("https://" + addr + "/")
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return string(b), resp.TLS.PeerCertificates[0].Subject.CommonName, nil
}

func waitHTTPS(t *testing.T, root *x509.Certificate, addr, serverName string, timeout time.Duration) (string, string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		body, cn, err := httpsGet(root, addr, serverName)
		if err == nil {
			return body, cn
		}
		if time.Now().After(deadline) {
			t.Fatalf("https://%s (SNI %s): %v", addr, serverName, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTerminatedHTTPSServesTraffic creates a SINGLE load balancer with a
// TERMINATED_HTTPS listener (default and SNI certificates from the local
// cert manager, a client CA with a CRL, client authentication OPTIONAL):
// the flow uploads the certificates to the amphora's agent, haproxy
// terminates TLS on the VIP with the certificate the client's SNI asks
// for, and the members answer. After an amphora failover the new amphora
// gets the certificates too.
func TestTerminatedHTTPSServesTraffic(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, harnessOptions{})
	fx := writeTLSFixture(t, hs.certDir)
	host := hs.drv.HostAddress()
	m1 := startMember(t, host, "m1")

	lbID, listenerID, poolID := uuid.NewString(), uuid.NewString(), uuid.NewString()
	pool := &lb.PoolSpec{ID: poolID, Name: ptr("pool1"), Protocol: "HTTP", LBAlgorithm: "ROUND_ROBIN",
		Members: []lb.MemberSpec{{ID: uuid.NewString(), Address: m1.addr, ProtocolPort: m1.port}}}
	start := time.Now()
	hs.do(lbID, lb.CreateLoadBalancer{ID: lbID, ProjectID: md.ProjectID, VipSubnetID: "local-subnet",
		VipNetworkID: "local", Topology: lbflows.TopologySingle, Listeners: []lb.ListenerSpec{{ID: listenerID,
			Protocol: "TERMINATED_HTTPS", ProtocolPort: 443, DefaultPool: pool,
			DefaultTLSContainerRef: ptr("web"), SNIContainerRefs: []string{"local://sni"},
			ClientCATLSContainerRef: ptr("clientca"), ClientAuthentication: "OPTIONAL",
			ClientCRLContainerRef: ptr("clientcrl")}}})
	hs.waitStatus(lbID, lb.StatusActive, 60*time.Second)
	t.Logf("TERMINATED_HTTPS load balancer ACTIVE after %s", time.Since(start).Round(time.Millisecond))

	addr := net.JoinHostPort(hs.lbState(lbID).LoadBalancer().VipAddress, strconv.Itoa(443))
	check := func(when string) {
		t.Helper()
		for _, tc := range []struct{ sni, cn string }{
			{"www.example.com", "www.example.com"},
			{"sni.example.com", "sni.example.com"},
		} {
			body, cn := waitHTTPS(t, fx.root.Cert, addr, tc.sni, 10*time.Second)
			if body != "m1" || cn != tc.cn {
				t.Fatalf("%s: SNI %s answered %q with certificate %q, want m1 with %q", when, tc.sni, body, cn, tc.cn)
			}
		}
		// Without a TLS handshake nothing is served on the port.
		if _, err := get(client(time.Second), "http://"+addr+"/"); err == nil {
			t.Fatalf("%s: plain HTTP answered on the TLS port", when)
		}
	}
	check("after create")

	// Fail the amphora over: the replacement gets the certificates too.
	before, err := hs.drv.FindServers(context.Background(), "", map[string]string{"lb_id": lbID})
	if err != nil || len(before) != 1 {
		t.Fatalf("servers of the load balancer: %v %v", before, err)
	}
	_, envs, err := hs.svc.Amphora(context.Background(), md, before[0].Metadata["amphora_id"], amphora.RequestFailover{Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	hs.trigger(envs)
	hs.waitSagas(lbID, 60*time.Second)
	after, err := hs.drv.FindServers(context.Background(), "", map[string]string{"lb_id": lbID})
	if err != nil || len(after) != 1 || after[0].ID == before[0].ID {
		t.Fatalf("servers after failover: %v %v", after, err)
	}
	check("after failover")

	hs.do(lbID, lb.DeleteLoadBalancer{Cascade: true})
	hs.waitStatus(lbID, lb.StatusDeleted, 30*time.Second)
	if p := processesUnder(hs.stateDir); len(p) > 0 {
		t.Fatalf("processes after delete: %v", p)
	}
}
