// Package e2e holds end-to-end tests: each starts a real `ostia up` (built
// by the test from ./cmd/ostia, on a fresh PostgreSQL database) and drives
// it with real OpenStack clients: the Debian `openstack` CLI with the
// Octavia plugin, against Keystone or in noauth mode, and gophercloud's
// loadbalancer v2 packages.
//
// What the tests need and how they behave without it (skip normally, fail
// under CI=true):
//
//   - PostgreSQL: scripts/ensure-postgres.sh (OSTIA_TEST_DATABASE_URL);
//   - the CLI: scripts/ensure-openstack-cli.sh;
//   - Keystone: scripts/ensure-keystone.sh (OSTIA_E2E_KEYSTONE_URL, default
//     http://127.0.0.1:5000/v3, with the users that script creates).
//
// OSTIA_E2E_BINARY names a prebuilt ostia binary to use instead of building.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// unavailable skips the test because something it needs is missing, or
// fails it under CI, where a missing dependency must never turn green.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("required under CI: %s", msg)
	}
	t.Skipf("skipping: %s", msg)
}

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

// ostiaBinary builds ./cmd/ostia once per test run (or returns
// OSTIA_E2E_BINARY). It builds into a temporary directory, not bin/, so a
// running `make up` keeps its binary.
func ostiaBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("OSTIA_E2E_BINARY"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "ostia-e2e-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "ostia")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binPath, "./cmd/ostia")
		cmd.Dir = ".."
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/ostia: %v\n%s", err, out.String())
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}
