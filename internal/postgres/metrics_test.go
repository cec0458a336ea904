package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/internal/postgres"
	"github.com/ostia/ostia/internal/testkit"
)

// TestPoolCollector: a caller that finds every connection in use is
// counted as a wait, and every acquisition is counted.
func TestPoolCollector(t *testing.T) {
	pool, _ := testkit.NewDatabase(t)
	reg := prometheus.NewRegistry()
	if err := reg.Register(postgres.NewPoolCollector(pool, "main")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	max := int(pool.Config().MaxConns)
	before := pool.Stat()
	var held []interface{ Release() }
	for range max {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	done := make(chan error, 1)
	go func() {
		c, err := pool.Acquire(ctx)
		if err == nil {
			c.Release()
		}
		done <- err
	}()
	testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, func() bool { return pool.Stat().EmptyAcquireCount() > 0 }, "a waiting acquire")
	for _, c := range held {
		c.Release()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				got[mf.GetName()] = c.GetValue()
			}
		}
	}
	waits := float64(before.EmptyAcquireCount() + 1)
	acquires := float64(before.AcquireCount() + int64(max) + 1)
	if got["ostia_db_pool_acquire_waits_total"] < waits || got["ostia_db_pool_acquires_total"] != acquires {
		t.Fatalf("pool metrics %v, want at least %v waits and %v acquires", got, waits, acquires)
	}
}
