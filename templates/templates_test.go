package templates

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func newRenderer(t *testing.T) *Renderer {
	t.Helper()
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkGolden compares got with testdata/<name>.golden (or rewrites it).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./templates -update to create it): %v", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the rendered output (run with -update to accept):\n--- got ---\n%s", path, got)
	}
}

// tool finds a binary on PATH or in /usr/sbin. Without it the test is
// skipped, except under CI=true where it fails.
func tool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := filepath.Join("/usr/sbin", name); isExecutable(p) {
		return p
	}
	msg := name + " is not installed; run scripts/ensure-haproxy.sh to validate rendered configurations"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// pki is throwaway TLS material for haproxy -c.
type pki struct {
	caPEM, crlPEM, certKeyPEM, sniCertKeyPEM []byte
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ostia test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	crlDER, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(24 * time.Hour),
	}, ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, cn string) []byte {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			DNSNames:     []string{cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		return append(out, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})...)
	}
	return &pki{
		caPEM:         pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		crlPEM:        pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crlDER}),
		certKeyPEM:    leaf(2, "www.example.com"),
		sniCertKeyPEM: leaf(3, "sni.example.com"),
	}
}

var fileRef = regexp.MustCompile(`\b(crt-list|ca-file|crl-file|crt) (\S+)`)

// materialize creates every certificate file under dir that config refers
// to, with content fitting the keyword that refers to it.
func materialize(t *testing.T, p *pki, dir, config string) {
	t.Helper()
	for _, m := range fileRef.FindAllStringSubmatch(config, -1) {
		kind, path := m[1], m[2]
		if !strings.HasPrefix(path, dir) {
			t.Fatalf("%s %s is outside the test directory", kind, path)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		var content []byte
		switch kind {
		case "crt-list":
			def := filepath.Join(filepath.Dir(path), "default-cert.pem")
			sni := filepath.Join(filepath.Dir(path), "sni-cert.pem")
			writeFile(t, def, p.certKeyPEM)
			writeFile(t, sni, p.sniCertKeyPEM)
			content = []byte(CrtList(def, sni))
		case "ca-file":
			content = p.caPEM
		case "crl-file":
			content = p.crlPEM
		case "crt":
			content = p.certKeyPEM
		}
		writeFile(t, path, content)
	}
}

func writeFile(t *testing.T, path string, content []byte) {
	t.Helper()
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
}

// validateHAProxy renders cfg with its certificate directory in a temporary
// directory, creates the referenced files and runs haproxy -c.
func validateHAProxy(t *testing.T, r *Renderer, haproxy string, p *pki, cfg LoadBalancerConfig, allowWarnings bool) {
	t.Helper()
	dir := t.TempDir()
	cfg.Settings.CertDir = filepath.Join(dir, "certs")
	// The agent saves the server state before every reload; an empty state
	// file is what a first start sees.
	cfg.Settings.ServerStateFile = filepath.Join(dir, "servers-state")
	writeFile(t, cfg.Settings.ServerStateFile, []byte("1\n"))
	out, err := r.RenderHAProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	materialize(t, p, dir, out)
	file := filepath.Join(dir, "haproxy.cfg")
	writeFile(t, file, []byte(out))
	args := []string{"-c", "-f", file}
	if cfg.Amphora != nil {
		// The agent starts haproxy with the local peer name of the amphora.
		args = append(args, "-L", PeerName(cfg.Amphora.GetId()))
	}
	cmd := exec.Command(haproxy, args...)
	res, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy %s: %v\n%s\n--- config ---\n%s", strings.Join(args, " "), err, res, out)
	}
	if strings.Contains(string(res), "[ALERT]") || (!allowWarnings && strings.Contains(string(res), "[WARNING]")) {
		t.Errorf("haproxy -c reported problems:\n%s\n--- config ---\n%s", res, out)
	}
}

func TestHAProxyGolden(t *testing.T) {
	r := newRenderer(t)
	cases := haproxyCases()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := r.RenderHAProxy(c.build())
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "haproxy_"+c.name, out)
		})
	}
}

func TestHAProxyValidatesWithHAProxy(t *testing.T) {
	haproxy := tool(t, "haproxy")
	r := newRenderer(t)
	p := newPKI(t)
	// Configurations rendered for an older haproxy than the validating one
	// legitimately draw warnings (no insecure-fork-wanted before 2.2).
	warns := map[string]bool{"old_haproxy": true}
	for _, c := range haproxyCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			validateHAProxy(t, r, haproxy, p, c.build(), warns[c.name])
		})
	}
}

func TestKeepalivedGolden(t *testing.T) {
	r := newRenderer(t)
	for _, c := range keepalivedCases() {
		t.Run(c.name, func(t *testing.T) {
			out, err := r.RenderKeepalived(c.build())
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "keepalived_"+c.name, out)
		})
	}
}

func TestKeepalivedLVSGolden(t *testing.T) {
	r := newRenderer(t)
	for _, c := range lvsCases() {
		t.Run(c.name, func(t *testing.T) {
			out, err := r.RenderKeepalivedLVS(c.build(), c.listenerID)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "lvs_"+c.name, out)
		})
	}
}

// vrrpInterface returns a non-loopback interface of this host: keepalived
// refuses loopback for VRRP and unknown interfaces fail the config test.
func vrrpInterface() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 && i.Flags&net.FlagUp != 0 {
			return i.Name
		}
	}
	return ""
}

// keepalivedTest runs keepalived's config test on a configuration.
func keepalivedTest(t *testing.T, keepalived, config string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "keepalived.conf")
	writeFile(t, file, []byte(config))
	out, err := exec.Command(keepalived, "-t", "-n", "-l", "-D", "-f", file).CombinedOutput()
	if err == nil {
		return
	}
	// The config test also fails on warnings. Accepted ones: Octavia does
	// not enable script_security (the running daemon only logs it), the
	// test interface may not do ARP, and a disabled pool leaves an LVS
	// virtual server without real servers (as in Octavia).
	benign := []string{"SECURITY VIOLATION", "disabling ARP", "has no real servers - ignoring"}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		ok := l == ""
		for _, b := range benign {
			ok = ok || strings.Contains(l, b)
		}
		if !ok {
			lines = append(lines, l)
		}
	}
	if ee, ok := err.(*exec.ExitError); ok && (ee.ExitCode() == 5 || ee.ExitCode() == 6) && len(lines) == 0 {
		return
	}
	t.Fatalf("keepalived -t: %v\n%s\n--- config ---\n%s", err, out, config)
}

func TestKeepalivedValidatesWithKeepalived(t *testing.T) {
	keepalived := tool(t, "keepalived")
	intf := vrrpInterface()
	if intf == "" {
		t.Skip("no non-loopback interface to run keepalived -t against")
	}
	r := newRenderer(t)
	script := filepath.Join(t.TempDir(), "check_script.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range keepalivedCases() {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.build()
			// The amphora's VIP NIC does not exist here; any real
			// interface of the host will do for the config test.
			cfg.Amphora.VrrpInterface = intf
			cfg.Settings.CheckScriptPath = script
			out, err := r.RenderKeepalived(cfg)
			if err != nil {
				t.Fatal(err)
			}
			keepalivedTest(t, keepalived, out)
		})
	}
}

func TestKeepalivedLVSValidatesWithKeepalived(t *testing.T) {
	keepalived := tool(t, "keepalived")
	r := newRenderer(t)
	for _, c := range lvsCases() {
		t.Run(c.name, func(t *testing.T) {
			out, err := r.RenderKeepalivedLVS(c.build(), c.listenerID)
			if err != nil {
				t.Fatal(err)
			}
			// Debian's keepalived is built without network namespace
			// support, so net_namespace is an unknown keyword there.
			var kept []string
			for _, l := range strings.Split(out, "\n") {
				if !strings.Contains(l, "net_namespace") {
					kept = append(kept, l)
				}
			}
			keepalivedTest(t, keepalived, strings.Join(kept, "\n"))
		})
	}
}
