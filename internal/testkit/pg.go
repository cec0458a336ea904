// Package testkit has helpers for tests: throwaway PostgreSQL databases, an
// in-process Kafka-protocol broker and polling with a deadline.
package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ostia/ostia/internal/postgres"
)

// DefaultTestDatabaseURL is the server used when OSTIA_TEST_DATABASE_URL is
// not set: the local PostgreSQL that .ci/run installs and starts.
const DefaultTestDatabaseURL = "postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL returns the URL of the PostgreSQL server tests create databases on.
func AdminURL() string {
	if u := os.Getenv("OSTIA_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultTestDatabaseURL
}

// NewDatabase creates a fresh, migrated database for one test and drops it
// when the test ends. It returns the pool and the database URL. Without a
// reachable server the test is skipped, except under CI (CI=true), where it
// fails, so a missing PostgreSQL can never turn CI green.
func NewDatabase(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required under CI: %v", err)
		}
		t.Skipf("PostgreSQL not reachable at %s (set OSTIA_TEST_DATABASE_URL or run .ci/run): %v", AdminURL(), err)
	}
	defer admin.Close(context.Background())
	name := "ostia_test_" + randomHex(6)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	cfg, err := pgx.ParseConfig(AdminURL())
	if err != nil {
		t.Fatalf("parse %s: %v", AdminURL(), err)
	}
	url := fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Password, cfg.Host, cfg.Port, name)
	pool, err := postgres.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect test database: %v", err)
	}
	if err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, AdminURL())
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	return pool, url
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Eventually polls cond every interval until it returns true or the timeout
// passes, then fails the test with msg.
func Eventually(t testing.TB, timeout, interval time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(interval)
	}
}
