// Command ostia-agent is the Ostia amphora agent: it serves the
// ostia.agent.v1.AmphoraAgent gRPC API over mutual TLS and runs haproxy and
// keepalived as its children.
//
//	ostia-agent -listen [::]:9443 -cert server.pem -key server.pem \
//	    -client-ca client_ca.pem -base-dir /var/lib/octavia -amphora-id <id>
//
// `ostia-agent vrrp-check <stats socket>...` is the VRRP health check used
// by the generated keepalived check script.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/ostia/ostia/agent"
	"github.com/ostia/ostia/internal/pki"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "vrrp-check" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := agent.VRRPCheck(ctx, os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ostia-agent:", err)
		os.Exit(1)
	}
}

type options struct {
	listen        string
	certFile      string
	keyFile       string
	clientCA      string
	baseDir       string
	certDir       string
	haproxyBin    string
	keepalivedBin string
	netns         string
	amphoraID     string
	logLevel      string
	logJSON       bool
	plumbing      string

	heartbeatTargets  string
	heartbeatKeyFile  string
	heartbeatInterval time.Duration
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("ostia-agent", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", "[::]:9443", "address to serve the agent API on")
	fs.StringVar(&o.certFile, "cert", "/etc/octavia/certs/server.pem", "server certificate PEM (may also hold the key)")
	fs.StringVar(&o.keyFile, "key", "", "server private key PEM (default: the -cert file)")
	fs.StringVar(&o.clientCA, "client-ca", "/etc/octavia/certs/client_ca.pem", "CA that signs controller client certificates")
	fs.StringVar(&o.baseDir, "base-dir", "/var/lib/octavia", "directory for load balancer configurations and sockets")
	fs.StringVar(&o.certDir, "cert-dir", "", "directory for uploaded TLS material (default <base-dir>/certs)")
	fs.StringVar(&o.haproxyBin, "haproxy", "haproxy", "haproxy binary")
	fs.StringVar(&o.keepalivedBin, "keepalived", "keepalived", "keepalived binary")
	fs.StringVar(&o.netns, "netns", "", "network namespace for haproxy, keepalived and plugged NICs (Octavia: amphora-haproxy)")
	fs.StringVar(&o.amphoraID, "amphora-id", "", "this amphora's id")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&o.logJSON, "log-json", false, "log JSON instead of text")
	fs.StringVar(&o.plumbing, "plumbing", "linux", "how plug calls configure interfaces: linux (ip commands) or none (record only, for amphorae without NICs of their own)")
	fs.StringVar(&o.heartbeatTargets, "heartbeat-targets", "", "comma-separated UDP host:port addresses of the health managers (empty: no heartbeats)")
	fs.StringVar(&o.heartbeatKeyFile, "heartbeat-key-file", "", "file holding the heartbeat HMAC key (or set OSTIA_AGENT_HEARTBEAT_KEY)")
	fs.DurationVar(&o.heartbeatInterval, "heartbeat-interval", 10*time.Second, "interval between heartbeats")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.keyFile == "" {
		o.keyFile = o.certFile
	}
	return o, nil
}

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var logger *slog.Logger
	if o.logJSON {
		logger = slog.New(slog.NewJSONHandler(os.Stderr, hopts))
	} else {
		logger = slog.New(slog.NewTextHandler(os.Stderr, hopts))
	}
	logger = logger.With("amphora_id", o.amphoraID)

	certs, err := pki.NewKeyPairReloader(o.certFile, o.keyFile, logger)
	if err != nil {
		return err
	}
	clientCAs, err := pki.CertPoolFromFile(o.clientCA)
	if err != nil {
		return err
	}
	var plumber agent.NetPlumber
	switch o.plumbing {
	case "linux":
	case "none":
		plumber = &agent.RecordingPlumber{}
	default:
		return fmt.Errorf("-plumbing: %q is neither linux nor none", o.plumbing)
	}
	var hb *agent.HeartbeatConfig
	if o.heartbeatTargets != "" {
		key := os.Getenv("OSTIA_AGENT_HEARTBEAT_KEY")
		if o.heartbeatKeyFile != "" {
			b, err := os.ReadFile(o.heartbeatKeyFile)
			if err != nil {
				return fmt.Errorf("heartbeat key: %w", err)
			}
			key = strings.TrimSpace(string(b))
		}
		if key == "" {
			return errors.New("-heartbeat-targets needs -heartbeat-key-file or OSTIA_AGENT_HEARTBEAT_KEY")
		}
		hb = &agent.HeartbeatConfig{Key: []byte(key), Interval: o.heartbeatInterval}
		for _, t := range strings.Split(o.heartbeatTargets, ",") {
			if t = strings.TrimSpace(t); t != "" {
				hb.Targets = append(hb.Targets, t)
			}
		}
	}
	a, err := agent.New(agent.Config{
		Plumber:        plumber,
		BaseDir:        o.baseDir,
		CertDir:        o.certDir,
		HAProxyBin:     o.haproxyBin,
		KeepalivedBin:  o.keepalivedBin,
		Logger:         logger,
		NetNamespace:   o.netns,
		AmphoraID:      o.amphoraID,
		ServerCertFile: o.certFile,
		ServerKeyFile:  o.keyFile,
	})
	if err != nil {
		return err
	}
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(pki.ServerTLSConfig(certs.GetCertificate, clientCAs))),
		grpc.ChainUnaryInterceptor(agent.UnaryLoggingInterceptor(logger)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	a.Register(srv)
	lis, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	hbDone := make(chan struct{})
	hbCtx, hbStop := context.WithCancel(ctx)
	go func() {
		defer close(hbDone)
		if hb == nil {
			return
		}
		if err := a.RunHeartbeats(hbCtx, *hb); err != nil {
			logger.Error("heartbeats stopped", "err", err)
		}
	}()
	logger.Info("agent serving", "listen", lis.Addr().String(), "base_dir", o.baseDir, "netns", o.netns, "version", agent.Version)

	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err = <-errc:
		if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			logger.Error("grpc server failed", "err", err)
		}
	}
	hbStop()
	<-hbDone
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		srv.Stop()
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if cerr := a.Close(closeCtx); cerr != nil {
		return fmt.Errorf("stop children: %w", cerr)
	}
	return err
}
