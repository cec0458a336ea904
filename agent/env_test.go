package agent

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/ostia/ostia/internal/pki"
	agentv1 "github.com/ostia/ostia/proto/ostia/agent/v1"
)

const testAmphoraID = "7d0c1f4e-2b1a-4c3d-9e8f-0a1b2c3d4e5f"

// requireBinary skips the test when a daemon is not installed, except
// under CI=true where the binaries are expected.
func requireBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
			if _, serr := os.Stat(filepath.Join(dir, name)); serr == nil {
				return filepath.Join(dir, name)
			}
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (required under CI=true): %v", name, err)
		}
		t.Skipf("%s is not installed; skipping (install it, e.g. apt-get install %s)", name, name)
	}
	return p
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// shortTempDir returns a short directory path: unix socket paths are
// limited to 108 bytes and per-LB directories add a UUID.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "oa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// testPKI is a controller CA (signing client certs) and a server CA
// (signing amphora certs), as in Octavia.
type testPKI struct {
	clientCA, serverCA *pki.CA
	client             tls.Certificate
	serverCertFile     string
	serverKeyFile      string
}

func newTestPKI(t *testing.T, dir string) *testPKI {
	t.Helper()
	clientCA, err := pki.NewCA("ostia client CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serverCA, err := pki.NewCA("ostia server CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := clientCA.IssueClient("ostia-controller", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clientCert, err := cl.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := serverCA.IssueServer(testAmphoraID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{
		clientCA: clientCA, serverCA: serverCA, client: clientCert,
		serverCertFile: filepath.Join(dir, "server.crt"), serverKeyFile: filepath.Join(dir, "server.key"),
	}
	if err := srv.WriteFiles(p.serverCertFile, p.serverKeyFile); err != nil {
		t.Fatal(err)
	}
	return p
}

type testEnv struct {
	agent  *Agent
	addr   string
	pki    *testPKI
	client agentv1.AmphoraAgentClient
	base   string
}

// startAgent serves an Agent over gRPC with mutual TLS on 127.0.0.1.
func startAgent(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	if cfg.BaseDir == "" {
		cfg.BaseDir = shortTempDir(t)
	}
	p := newTestPKI(t, t.TempDir())
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.Plumber == nil {
		cfg.Plumber = &RecordingPlumber{}
	}
	if cfg.Runner == nil {
		cfg.Runner = &ExecRunner{}
	}
	cfg.AmphoraID = testAmphoraID
	cfg.ServerCertFile, cfg.ServerKeyFile = p.serverCertFile, p.serverKeyFile
	cfg.VRRPCheckCommand = []string{"/bin/true"}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reloader, err := pki.NewKeyPairReloader(p.serverCertFile, p.serverKeyFile, cfg.Logger)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(pki.ServerTLSConfig(reloader.GetCertificate, p.clientCA.Pool()))),
		grpc.ChainUnaryInterceptor(UnaryLoggingInterceptor(cfg.Logger)),
	)
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
		if err := a.Close(ctx); err != nil {
			t.Errorf("close agent: %v", err)
		}
	})
	env := &testEnv{agent: a, addr: lis.Addr().String(), pki: p, base: cfg.BaseDir}
	env.client = agentv1.NewAmphoraAgentClient(dialAgent(t, env.addr, pki.ClientTLSConfig(p.client, p.serverCA.Pool(), testAmphoraID)))
	return env
}

func dialAgent(t *testing.T, addr string, tlsCfg *tls.Config) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func rpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func grpcPeer(p *peer.Peer) grpc.CallOption { return grpc.Peer(p) }
