package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/internal/certmanager"
	"github.com/ostia/ostia/internal/config"
	"github.com/ostia/ostia/internal/drivers/agentclient"
	"github.com/ostia/ostia/internal/drivers/noop"
	"github.com/ostia/ostia/sagas/lbflows"
)

func testBase() *base {
	return &base{cfg: config.Default(), log: slog.New(slog.NewTextHandler(io.Discard, nil)), metrics: prometheus.NewRegistry()}
}

func TestNewDriversNoop(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Worker.Driver = config.DriverNoop
	d, cleanup, err := testBase().newDrivers(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if _, ok := d.Compute.(*noop.Cloud); !ok || d.Agent != d.Compute.(*noop.Cloud) || d.Flows != nil {
		t.Fatalf("noop drivers %+v", d)
	}
}

func TestNewDriversLocalNeedsTheAgentBinary(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "ow")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := config.Default()
	cfg.Worker.Driver = config.DriverLocal
	cfg.Local.StateDir = filepath.Join(dir, "local")
	cfg.Local.Mode = config.LocalModeHost
	cfg.Local.AgentBinary = filepath.Join(dir, "no-such-agent")
	cfg.Certificates.CACertificate = filepath.Join(dir, "pki", "ca.pem")
	cfg.Certificates.CAPrivateKey = filepath.Join(dir, "pki", "ca.key")
	_, _, err = testBase().newDrivers(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "no-such-agent") {
		t.Fatalf("missing agent binary: %v", err)
	}
	// The CA was created on first use and is loaded again next time.
	a1, err := agentclient.LoadOrCreateAuthority(cfg.Certificates.CACertificate, cfg.Certificates.CAPrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := agentclient.LoadOrCreateAuthority(cfg.Certificates.CACertificate, cfg.Certificates.CAPrivateKey)
	if err != nil || string(a1.CACertPEM()) != string(a2.CACertPEM()) {
		t.Fatalf("the CA must persist: %v", err)
	}

	// With an executable as agent, the local cloud comes up in host mode
	// and configures the flows.
	cfg.Local.AgentBinary = "/bin/true"
	cfg.Health.HeartbeatKey = "k"
	d, cleanup, err := testBase().newDrivers(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	var fc lbflows.Config
	d.Flows(&fc)
	if d.Compute == nil || d.Network == nil || d.Agent == nil || d.Certificates == nil || fc.Renderer == nil ||
		fc.BootPollInterval != localBootPoll || fc.CertValidity != cfg.Certificates.CertValidity {
		t.Fatalf("local drivers %+v, flows %+v", d, fc)
	}
}

func TestHeartbeatTarget(t *testing.T) {
	t.Parallel()
	for bind, want := range map[string]string{
		"127.0.0.1:5555": "127.0.0.1:5555",
		"0.0.0.0:5555":   "127.0.0.1:5555",
		":5555":          "127.0.0.1:5555",
		"[::]:5555":      "127.0.0.1:5555",
		"10.0.0.5:5555":  "10.0.0.5:5555",
	} {
		got, err := heartbeatTarget(bind)
		if err != nil || got != want {
			t.Errorf("heartbeatTarget(%q) = %q, %v; want %q", bind, got, err, want)
		}
	}
	if _, err := heartbeatTarget("127.0.0.1:0"); err == nil {
		t.Error("port 0 must be refused")
	}
}

func TestNewCertManager(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Certificates.StoragePath = t.TempDir()
	cm, err := testBase().newCertManager(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := cm.(*certmanager.Dir); !ok || d.Path() != cfg.Certificates.StoragePath {
		t.Fatalf("local cert manager %#v", cm)
	}
	cfg.Certificates.CertManager = "castellan"
	if _, err := testBase().newCertManager(context.Background(), cfg); err == nil {
		t.Fatal("unknown cert manager accepted")
	}
	// Barbican authenticates with Keystone at start: an unreachable one
	// is an error.
	cfg.Certificates.CertManager = config.CertManagerBarbican
	cfg.OpenStack.AuthURL = "http://127.0.0.1:1/v3"
	cfg.OpenStack.Username, cfg.OpenStack.Password, cfg.OpenStack.ProjectName = "u", "p", "proj"
	if _, err := testBase().newCertManager(context.Background(), cfg); err == nil {
		t.Fatal("barbican without keystone must fail")
	}
}
