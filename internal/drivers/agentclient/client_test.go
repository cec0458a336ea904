package agentclient_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/ostia/ostia/agent"
	"github.com/ostia/ostia/internal/drivers/agentclient"
	"github.com/ostia/ostia/internal/pki"
	"github.com/ostia/ostia/internal/testkit"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

const ampID = "3f1c7a52-9d0b-4f4e-8a7e-0c2b5d6e7f80"

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// serve runs an in-process agent for amphora id with a server
// certificate from auth (issued for certCN) and returns its address.
func serve(t *testing.T, auth *agentclient.Authority, id, certCN string) string {
	t.Helper()
	addr, _ := serveDir(t, auth, id, certCN)
	return addr
}

// serveDir is serve, also returning the agent's base directory.
func serveDir(t *testing.T, auth *agentclient.Authority, id, certCN string) (string, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "oac")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cert, err := auth.IssueServerCert(context.Background(), certCN, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(dir, "server.pem")
	if err := os.WriteFile(pemFile, cert.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{BaseDir: filepath.Join(dir, "base"), AmphoraID: id, Plumber: &agent.RecordingPlumber{},
		ServerCertFile: pemFile, ServerKeyFile: pemFile,
		Logger: quiet(), VRRPCheckCommand: []string{"/bin/true"}, HAProxyBin: haproxyBin()})
	if err != nil {
		t.Fatal(err)
	}
	reloader, err := pki.NewKeyPairReloader(pemFile, pemFile, quiet())
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pki.CertPoolFromPEM(auth.CACertPEM())
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(pki.ServerTLSConfig(reloader.GetCertificate, pool))))
	a.Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = a.Close(ctx)
	})
	return lis.Addr().String(), filepath.Join(dir, "base")
}

func haproxyBin() string {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	return "haproxy"
}

func newAuthority(t *testing.T) *agentclient.Authority {
	t.Helper()
	ca, err := pki.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := agentclient.NewAuthority(ca)
	if err != nil {
		t.Fatal(err)
	}
	return auth
}

func newClient(t *testing.T, auth *agentclient.Authority, addr string) *agentclient.Client {
	t.Helper()
	c, err := agentclient.New(agentclient.Config{ClientCertificate: auth.ClientCertificateFunc("ostia-controller", time.Hour),
		ServerCAs: auth.Pool(), Address: func(ports.Amphora) (string, error) { return addr, nil },
		CallTimeout: 20 * time.Second, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	_, err := agentclient.New(agentclient.Config{Port: 70000})
	for _, want := range []string{"ClientCertificate is required", "ServerCAs is required", "Port 70000"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(bad config) = %v, want %q", err, want)
		}
	}
}

func TestMutualTLSChecksTheAmphoraIdentity(t *testing.T) {
	t.Parallel()
	auth := newAuthority(t)
	ctx := context.Background()

	good := newClient(t, auth, serve(t, auth, ampID, ampID))
	info, err := good.Info(ctx, ports.Amphora{ID: ampID})
	if err != nil {
		t.Fatalf("Info over mutual TLS: %v", err)
	}
	if info.GetAmphoraId() != ampID || info.GetApiVersion() != agent.APIVersion {
		t.Fatalf("info %v", info)
	}

	// An agent whose certificate names another amphora is refused.
	impostor := newClient(t, auth, serve(t, auth, ampID, "another-amphora"))
	if _, err := impostor.Info(ctx, ports.Amphora{ID: ampID}); err == nil {
		t.Fatal("an agent with another amphora's certificate was accepted")
	} else if !errors.Is(err, saga.ErrTransient) {
		t.Fatalf("handshake failure should be retried as transient: %v", err)
	}

	// A controller certificate from another CA is refused by the agent.
	other := newAuthority(t)
	rogue, err := agentclient.New(agentclient.Config{ClientCertificate: other.ClientCertificateFunc("ostia-controller", time.Hour),
		ServerCAs: auth.Pool(), Address: func(ports.Amphora) (string, error) { return serveAddr(t, auth), nil }, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	if _, err := rogue.Info(ctx, ports.Amphora{ID: ampID}); err == nil {
		t.Fatal("a client certificate from another CA was accepted")
	}
}

func serveAddr(t *testing.T, auth *agentclient.Authority) string { return serve(t, auth, ampID, ampID) }

func TestAgentCallsAndErrorKinds(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy is not installed (run scripts/ensure-haproxy.sh); skipping")
	}
	auth := newAuthority(t)
	c := newClient(t, auth, serve(t, auth, ampID, ampID))
	ctx := context.Background()
	amp := ports.Amphora{ID: ampID}

	plug := ports.VIPPlug{VIP: "203.0.113.10", SubnetCIDR: "203.0.113.0/24", GatewayIP: "203.0.113.1",
		MAC: "fa:16:3e:00:00:01", MTU: 1500, VrrpIP: "203.0.113.7"}
	if err := c.PlugVIP(ctx, amp, plug); err != nil {
		t.Fatal(err)
	}
	if err := c.PlugVIP(ctx, amp, plug); err != nil {
		t.Fatalf("plugging again must be fine: %v", err)
	}
	plug.SubnetCIDR = "nonsense"
	if err := c.PlugVIP(ctx, amp, plug); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("invalid plug: want a permanent error, got %v", err)
	}

	backend := startBackend(t, "member-a")
	port := testkit.FreePort(t)
	lbID := "lb-" + strings.ReplaceAll(ampID[:8], "-", "")
	conf := fmt.Sprintf(`global
    maxconn 100
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend fe
    bind 127.0.0.1:%d
    default_backend be
backend be
    server a %s
`, port, backend)
	if err := c.UploadConfig(ctx, amp, lbID, 10, []byte(conf)); err != nil {
		t.Fatal(err)
	}
	if err := c.ReloadListeners(ctx, amp, lbID); err != nil {
		t.Fatal(err)
	}
	if body := get(t, port); body != "member-a" {
		t.Fatalf("through haproxy: %q", body)
	}
	// A late, older configuration is ignored, as the port promises.
	if err := c.UploadConfig(ctx, amp, lbID, 5, []byte(conf+"# old\n")); err != nil {
		t.Fatalf("older generation: want nil (ignored), got %v", err)
	}
	// haproxy refuses a broken configuration: permanent.
	if err := c.UploadConfig(ctx, amp, lbID, 11, []byte("frontend x\n    bind nonsense\n")); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("broken configuration: want a permanent error, got %v", err)
	}
	if err := c.UploadConfig(ctx, amp, lbID, 0, []byte(conf)); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("generation 0: want a permanent error, got %v", err)
	}
	// Reloading a load balancer the agent does not know: permanent.
	if err := c.ReloadListeners(ctx, amp, "unknown-lb"); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("reload of an unknown load balancer: want permanent, got %v", err)
	}
	// An unreachable amphora is transient.
	down := newClientAt(t, auth, "127.0.0.1:1")
	if err := down.ReloadListeners(ctx, amp, lbID); !errors.Is(err, saga.ErrTransient) {
		t.Fatalf("unreachable agent: want transient, got %v", err)
	}
	// No management address: permanent.
	def, err := agentclient.New(agentclient.Config{ClientCertificate: auth.ClientCertificateFunc("c", time.Hour), ServerCAs: auth.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer def.Close()
	if err := def.StartKeepalived(ctx, ports.Amphora{ID: ampID}); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("no management address: want permanent, got %v", err)
	}
}

func newClientAt(t *testing.T, auth *agentclient.Authority, addr string) *agentclient.Client {
	t.Helper()
	c, err := agentclient.New(agentclient.Config{ClientCertificate: auth.ClientCertificateFunc("c", time.Hour), ServerCAs: auth.Pool(),
		Address: func(ports.Amphora) (string, error) { return addr, nil }, CallTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestAuthority(t *testing.T) {
	t.Parallel()
	auth := newAuthority(t)
	cert, err := auth.IssueServerCert(context.Background(), ampID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := pki.SplitCombinedPEM(cert.PEM)
	if err != nil || len(keyPEM) == 0 {
		t.Fatalf("server.pem must hold certificate and key: %v", err)
	}
	leaf, err := pki.ParseCertificatePEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Subject.CommonName != ampID || leaf.SerialNumber.Text(16) != cert.Serial || !leaf.NotAfter.Equal(cert.ExpiresAt) {
		t.Fatalf("certificate %v / %+v", leaf.Subject, cert)
	}
	get := auth.ClientCertificateFunc("ostia-controller", time.Hour)
	a, err := get(&tls.CertificateRequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := get(&tls.CertificateRequestInfo{})
	if a != b {
		t.Fatal("the client certificate must be reused until it nears expiry")
	}
	if _, err := agentclient.NewAuthority(nil); err == nil {
		t.Fatal("NewAuthority(nil) must fail")
	}
}

func startBackend(t *testing.T, name string) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, name)
	})}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return lis.Addr().String()
}

func get(t *testing.T, port int) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer on %d: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	// Codes the agent uses, through a client whose RPCs fail with them.
	cases := map[codes.Code]error{
		codes.InvalidArgument:    saga.ErrPermanent,
		codes.FailedPrecondition: saga.ErrPermanent,
		codes.Unavailable:        saga.ErrTransient,
		codes.DeadlineExceeded:   saga.ErrTransient,
		codes.Internal:           saga.ErrTransient,
		codes.NotFound:           saga.ErrTransient,
	}
	for code, want := range cases {
		err := agentclient.Classify("op", status.Error(code, "x"))
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", code, err, want)
		}
	}
	if err := agentclient.Classify("op", status.Error(codes.NotFound, "x")); !errors.Is(err, ports.ErrNotFound) {
		t.Errorf("NotFound should wrap ports.ErrNotFound: %v", err)
	}
}

// servedSerial is the serial of the certificate the agent at addr shows a
// new connection.
func servedSerial(t *testing.T, auth *agentclient.Authority, addr string) string {
	t.Helper()
	get := auth.ClientCertificateFunc("ostia-controller", time.Hour)
	cert, err := get(&tls.CertificateRequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", addr, pki.ClientTLSConfig(*cert, auth.Pool(), ampID))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

func TestPlugNetworkAndCertificateRotation(t *testing.T) {
	t.Parallel()
	auth := newAuthority(t)
	addr := serve(t, auth, ampID, ampID)
	c := newClient(t, auth, addr)
	ctx := context.Background()
	amp := ports.Amphora{ID: ampID}

	plug := ports.NetworkPlug{MAC: "fa:16:3e:00:00:42", MTU: 1450,
		FixedIPs: []ports.FixedIP{{IP: "192.168.50.7", SubnetCIDR: "192.168.50.0/24", GatewayIP: "192.168.50.1"}}}
	if err := c.PlugNetwork(ctx, amp, plug); err != nil {
		t.Fatal(err)
	}
	if err := c.PlugNetwork(ctx, amp, plug); err != nil {
		t.Fatalf("plugging again must reconfigure in place: %v", err)
	}
	plug.FixedIPs[0].SubnetCIDR = "nonsense"
	if err := c.PlugNetwork(ctx, amp, plug); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("invalid plug: want a permanent error, got %v", err)
	}

	next, err := auth.IssueServerCert(ctx, ampID, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateServerCertificate(ctx, amp, next.PEM); err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, auth, addr); got != next.Serial {
		t.Fatalf("agent serves %s, want the pushed %s", got, next.Serial)
	}
	// The client's next call shakes hands with the new certificate.
	if _, err := c.Info(ctx, amp); err != nil {
		t.Fatalf("call after the rotation: %v", err)
	}
	other, err := auth.IssueServerCert(ctx, "another-amphora", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateServerCertificate(ctx, amp, other.PEM); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("another amphora's certificate: want a permanent error, got %v", err)
	}
}

func TestUploadCertificate(t *testing.T) {
	t.Parallel()
	auth := newAuthority(t)
	addr, base := serveDir(t, auth, ampID, ampID)
	c := newClient(t, auth, addr)
	ctx := context.Background()
	amp := ports.Amphora{ID: ampID}
	const lbID = "9a7e6c52-1b2d-4c3e-8f90-a1b2c3d4e5f6"
	pem := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	for range 2 { // uploading again replaces the file
		if err := c.UploadCertificate(ctx, amp, lbID, "listener.pem", pem); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(base, "certs", lbID, "listener.pem")
	got, err := os.ReadFile(path)
	if err != nil || string(got) != string(pem) {
		t.Fatalf("stored file: %q, %v", got, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("stored file mode: %v, %v", st, err)
	}
	for _, name := range []string{"../escape.pem", "no-suffix", ""} {
		if err := c.UploadCertificate(ctx, amp, lbID, name, pem); !errors.Is(err, saga.ErrPermanent) {
			t.Fatalf("file name %q: want a permanent error, got %v", name, err)
		}
	}
	if err := c.UploadCertificate(ctx, amp, lbID, "empty.pem", nil); !errors.Is(err, saga.ErrPermanent) {
		t.Fatalf("empty file: want a permanent error, got %v", err)
	}
}
