package relay_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/relay"
	"github.com/ostia/ostia/internal/relay/relaytest"
	"github.com/ostia/ostia/internal/testkit"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// 50 aggregates x 20 events appended concurrently arrive on the topic of
// their type, keyed by aggregate id, each aggregate in version order.
func TestRelayPublishesInPerAggregateOrder(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := relaytest.New(t, relaytest.Config{Partitions: 4})
	reg := prometheus.NewRegistry()
	run := h.StartRelay(relay.Config{HolderID: "r1", BatchSize: 100, Metrics: reg})
	h.StartConsumer("order-check", nil, nil)

	if err := h.AppendConcurrently(ctx, relaytest.Aggregates(50), 20, run.Relay.Notify); err != nil {
		t.Fatal(err)
	}
	h.WaitApplied("order-check", 1000, 20*time.Second)
	h.CheckExactlyOnceInOrder(ctx, "order-check")
	if got := relaytest.CounterValue(t, reg, "ostia_relay_published_total"); got < 1000 {
		t.Fatalf("published_total = %v, want >= 1000", got)
	}
}

var errCrash = errors.New("simulated crash")

// The relay dies between Kafka's acknowledgement and the outbox delete, or
// before publishing, over and over while events are appended; each time a
// new relay takes over on the same database and broker. Every event still
// reaches the consumer, is applied exactly once, and the outbox drains.
func TestRelayCrashSafety(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := relaytest.New(t, relaytest.Config{Partitions: 4})
	consumerReg := prometheus.NewRegistry()
	h.StartConsumer("crash-check", consumerReg, nil)

	appended := make(chan error, 1)
	go func() { appended <- h.AppendConcurrently(ctx, relaytest.Aggregates(30), 20, nil) }()

	// Generations of relays: odd ones crash after publishing their 3rd batch
	// (killed with a context cancel at that point), even ones crash before
	// publishing their 2nd batch.
	var crashedAfterPublish, crashedBeforePublish int
	appendsDone := false
	for gen := 0; gen < 200; gen++ {
		var batches atomic.Int32
		relayCtx, kill := context.WithCancel(ctx)
		cfg := relay.Config{
			HolderID:  fmt.Sprintf("crashing-%d", gen),
			BatchSize: 25,
			LeaseTTL:  300 * time.Millisecond,
			Store:     h.Store,
			Producer:  h.NewProducer("crash-relay"),
			Logger:    h.Logger,
		}
		if gen%2 == 0 {
			cfg.AfterPublish = func(context.Context, []eventstore.Outboxed) error {
				if batches.Add(1) == 3 {
					kill()
					return errCrash
				}
				return nil
			}
		} else {
			cfg.BeforePublish = func(context.Context, []eventstore.Outboxed) error {
				if batches.Add(1) == 2 {
					kill()
					return errCrash
				}
				return nil
			}
		}
		r, err := relay.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- r.Run(relayCtx) }()
		select {
		case err = <-done:
		case <-time.After(5 * time.Second):
			kill()
			err = <-done
		}
		kill()
		if errors.Is(err, errCrash) {
			if gen%2 == 0 {
				crashedAfterPublish++
			} else {
				crashedBeforePublish++
			}
		} else if err != nil {
			t.Fatalf("relay generation %d: %v", gen, err)
		}
		if !appendsDone {
			select {
			case err := <-appended:
				if err != nil {
					t.Fatal(err)
				}
				appendsDone = true
			default:
			}
		}
		if n, _ := h.Store.OutboxLen(ctx); appendsDone && n == 0 {
			break
		}
	}
	if !appendsDone {
		t.Fatal("appends did not finish")
	}
	if crashedAfterPublish == 0 || crashedBeforePublish == 0 {
		t.Fatalf("crashes after publish %d, before publish %d: want both", crashedAfterPublish, crashedBeforePublish)
	}
	// A last relay without faults (the outbox is already empty).
	h.StartRelay(relay.Config{HolderID: "final", LeaseTTL: 300 * time.Millisecond})
	h.WaitApplied("crash-check", 600, 20*time.Second)
	h.CheckExactlyOnceInOrder(ctx, "crash-check")
	dups := relaytest.CounterValue(t, consumerReg, "ostia_consumer_duplicates_skipped_total")
	t.Logf("crashes after publish %d, before publish %d; redelivered events skipped by the consumer: %v",
		crashedAfterPublish, crashedBeforePublish, dups)
	if dups == 0 {
		t.Fatal("crashes after publish must have caused redeliveries, but the consumer skipped none")
	}
}

// The broker goes down and comes back (same port and data directory) while
// events are appended and relayed: nothing is lost or applied twice.
func TestRelaySurvivesBrokerRestart(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := relaytest.New(t, relaytest.Config{Partitions: 3, Persistent: true})
	reg := prometheus.NewRegistry()
	run := h.StartRelay(relay.Config{HolderID: "r1", BatchSize: 50, MaxBackoff: 500 * time.Millisecond, Metrics: reg})
	h.StartConsumer("restart-check", nil, nil)

	aggs := relaytest.Aggregates(20)
	appended := make(chan error, 1)
	go func() { appended <- h.AppendConcurrently(ctx, aggs, 30, run.Relay.Notify) }()
	h.WaitApplied("restart-check", 100, 20*time.Second)
	h.StopBroker()
	time.Sleep(time.Second) // appends continue into the outbox meanwhile
	h.StartBroker()
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	h.WaitApplied("restart-check", 600, 25*time.Second)
	testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, func() bool {
		n, _ := h.Store.OutboxLen(ctx)
		return n == 0
	}, "outbox not drained")
	h.CheckExactlyOnceInOrder(ctx, "restart-check")
	t.Logf("publish errors while the broker was down: %v", relaytest.CounterValue(t, reg, "ostia_relay_publish_errors_total"))
}

// Two relays compete for the lease: only one publishes at any moment, and
// when the holder stops the other takes over without losing anything.
func TestTwoRelaysOneLease(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := relaytest.New(t, relaytest.Config{Partitions: 4})
	h.StartConsumer("lease-check", nil, nil)

	var inFlight, maxInFlight atomic.Int32
	var mu sync.Mutex
	publishedBy := map[string]int{}
	mk := func(id string) relay.Config {
		return relay.Config{
			HolderID:  id,
			BatchSize: 20,
			LeaseTTL:  500 * time.Millisecond,
			BeforePublish: func(context.Context, []eventstore.Outboxed) error {
				n := inFlight.Add(1)
				for {
					m := maxInFlight.Load()
					if n <= m || maxInFlight.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(2 * time.Millisecond) // widen the window for overlap
				return nil
			},
			AfterPublish: func(_ context.Context, b []eventstore.Outboxed) error {
				inFlight.Add(-1)
				mu.Lock()
				publishedBy[id] += len(b)
				mu.Unlock()
				return nil
			},
		}
	}
	a := h.StartRelay(mk("relay-a"))
	b := h.StartRelay(mk("relay-b"))
	notify := func() { a.Relay.Notify(); b.Relay.Notify() }

	aggs := relaytest.Aggregates(20)
	if err := h.AppendConcurrently(ctx, aggs, 10, notify); err != nil {
		t.Fatal(err)
	}
	h.WaitApplied("lease-check", 200, 20*time.Second)
	// Stop whichever relay holds the lease; the other must take over.
	mu.Lock()
	first := "relay-a"
	if publishedBy["relay-b"] > publishedBy["relay-a"] {
		first = "relay-b"
	}
	mu.Unlock()
	if first == "relay-a" {
		if err := a.Stop(); err != nil {
			t.Fatal(err)
		}
	} else if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	for i, agg := range aggs {
		for v := int64(10); v < 15; v++ {
			if _, err := h.AppendOne(ctx, agg, v); err != nil {
				t.Fatalf("aggregate %d: %v", i, err)
			}
		}
	}
	notify()
	h.WaitApplied("lease-check", 300, 20*time.Second)
	h.CheckExactlyOnceInOrder(ctx, "lease-check")
	mu.Lock()
	defer mu.Unlock()
	t.Logf("published by relay: %v, max concurrent publishers %d", publishedBy, maxInFlight.Load())
	if maxInFlight.Load() != 1 {
		t.Fatalf("%d relays published at the same time", maxInFlight.Load())
	}
	if publishedBy["relay-a"] == 0 || publishedBy["relay-b"] == 0 {
		t.Fatalf("the standby relay never took over: %v", publishedBy)
	}
}

// A relay with a Yield hook publishes nothing while the hook holds it back
// (in `ostia up`: while API requests are being served) and everything once
// it lets go.
func TestRelayYieldHoldsPublishingBack(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	h := relaytest.New(t, relaytest.Config{Partitions: 2})
	release := make(chan struct{})
	var yields atomic.Int32
	run := h.StartRelay(relay.Config{HolderID: "yielding", Yield: func(ctx context.Context) {
		yields.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
	}})
	h.StartConsumer("yield-check", nil, nil)
	if err := h.AppendConcurrently(ctx, relaytest.Aggregates(5), 4, run.Relay.Notify); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if yields.Load() == 0 {
		t.Fatal("the relay never called Yield")
	}
	if n := h.AppliedCount(ctx, "yield-check"); n != 0 {
		t.Fatalf("%d events were published while Yield held the relay back", n)
	}
	close(release)
	h.WaitApplied("yield-check", 20, 20*time.Second)
	h.CheckExactlyOnceInOrder(ctx, "yield-check")
}
