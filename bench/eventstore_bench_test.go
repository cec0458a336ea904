// Package bench holds the event pipeline benchmarks: append throughput of
// the event store and end-to-end latency from append to an idempotent
// consumer's commit, through the outbox relay and the embedded broker.
//
//	go test ./bench -run x -bench . -benchtime=2000x
package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ostia/ostia/internal/relay"
	"github.com/ostia/ostia/internal/relay/relaytest"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

const appenders = 8

// BenchmarkAppend measures eventstore.Append with one event per append,
// from parallel appenders each on its own aggregate (with expected
// versions), so appends do not conflict.
func BenchmarkAppend(b *testing.B) {
	h := relaytest.New(b, relaytest.Config{})
	ctx := context.Background()
	aggs := relaytest.Aggregates(appenders)
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	runAppenders(b, appenders, func(i int) {
		agg := aggs[i]
		for v := int64(0); next.Add(1) <= int64(b.N); v++ {
			if _, err := h.AppendOne(ctx, agg, v); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
}

// BenchmarkEndToEnd measures the latency from the start of an append to the
// handler of the consumer that applied the event (inside its transaction), with the relay
// woken by Notify, under parallel appenders. It reports p50, p99 and max.
func BenchmarkEndToEnd(b *testing.B) {
	for _, n := range []int{1, appenders} {
		b.Run(fmt.Sprintf("appenders=%d", n), func(b *testing.B) { benchEndToEnd(b, n) })
	}
}

func benchEndToEnd(b *testing.B, appenders int) {
	h := relaytest.New(b, relaytest.Config{})
	ctx := context.Background()
	run := h.StartRelay(relay.Config{HolderID: "bench"})

	var mu sync.Mutex
	latencies := make(map[string]time.Duration, b.N)
	var applied atomic.Int64
	allDone := make(chan struct{})
	h.StartConsumer("bench", nil, func(_ context.Context, _ pgx.Tx, env *eventsv1.Envelope) error {
		d := time.Since(env.GetOccurredAt().AsTime())
		mu.Lock()
		latencies[env.GetEventId()] = d
		mu.Unlock()
		return nil
	})
	// Warm up: the consumer joins its group and the relay the lease.
	warm := relaytest.Aggregates(1)[0]
	if _, err := h.AppendOne(ctx, warm, 0); err != nil {
		b.Fatal(err)
	}
	run.Relay.Notify()
	h.WaitApplied("bench", 1, 30*time.Second)
	mu.Lock()
	clear(latencies)
	mu.Unlock()

	aggs := relaytest.Aggregates(appenders)
	var next atomic.Int64
	go func() {
		for {
			mu.Lock()
			n := len(latencies)
			mu.Unlock()
			applied.Store(int64(n))
			if n >= b.N {
				close(allDone)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	b.ResetTimer()
	start := time.Now()
	runAppenders(b, appenders, func(i int) {
		agg := aggs[i]
		for v := int64(0); next.Add(1) <= int64(b.N); v++ {
			if _, err := h.AppendOne(ctx, agg, v); err != nil {
				b.Error(err)
				return
			}
			run.Relay.Notify()
		}
	})
	select {
	case <-allDone:
	case <-time.After(2 * time.Minute):
		b.Fatalf("only %d of %d events consumed", applied.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	mu.Lock()
	ds := make([]time.Duration, 0, len(latencies))
	for _, d := range latencies {
		ds = append(ds, d)
	}
	mu.Unlock()
	slices.Sort(ds)
	pct := func(p float64) float64 {
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

func runAppenders(b *testing.B, n int, fn func(i int)) {
	b.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i)
		}()
	}
	wg.Wait()
}
