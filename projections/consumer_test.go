package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/aggregates"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/internal/messaging"
	"github.com/ostia/ostia/internal/relay"
	"github.com/ostia/ostia/internal/relay/relaytest"
	"github.com/ostia/ostia/internal/testkit"
	"github.com/ostia/ostia/projections"
)

// lagging counts projected aggregates whose checkpoint is behind the stream.
func (e *env) lagging() int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM streams s
		JOIN projection_generations g ON g.projection = 'views'
		LEFT JOIN projection_checkpoints c ON c.projection = 'views' AND c.generation = g.current_generation
			AND c.aggregate_type = s.aggregate_type AND c.aggregate_id = s.aggregate_id
		WHERE s.aggregate_type <> 'saga' AND COALESCE(c.version, 0) <> s.version`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// The Kafka consumer and the inline path apply the same events; they
// converge, and the consumer alone keeps the model up to date.
func TestConsumerAndInlineConverge(t *testing.T) {
	t.Parallel()
	h := relaytest.New(t, relaytest.Config{Partitions: 3})
	e := newEnvOn(t, h.Pool, true)
	h.StartRelay(relay.Config{HolderID: "relay-1"})
	consumerSide, err := projections.New(projections.Config{Pool: h.Pool, Store: h.Store, Registry: h.Registry,
		Logger: quietLogger(), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := consumerSide.NewConsumer(messaging.ConsumerConfig{Brokers: h.Addrs(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })

	trees := e.workload(5, 40)
	ctx := context.Background()
	waitConsumed := func() {
		testkit.Eventually(t, 30*time.Second, 20*time.Millisecond, func() bool {
			// Events the inline path applied are acknowledged by the
			// consumer's filter without a processed_events row; what counts
			// is that every stream's checkpoint is at its version.
			return e.lagging() == 0
		}, "consumer did not catch up")
	}
	waitConsumed()
	live := e.checksum(0)

	// Now only the consumer applies.
	e.inline = false
	e.lbCmd(trees[0].lb, lb.UpdateLoadBalancer{Description: aggregates.Value("consumer only")})
	e.complete(trees[0].lb)
	waitConsumed()
	if got := e.get("loadbalancer", trees[0].lb)["description"]; got != "consumer only" {
		t.Fatalf("consumer did not apply the update: %v", got)
	}
	afterConsumer := e.checksum(0)
	if afterConsumer == live {
		t.Fatal("checksum did not change")
	}
	res, err := e.proj.Replay(ctx, projections.ReplayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.checksum(res.Generation); got != afterConsumer {
		t.Fatalf("replay %s != consumer-built model %s", got, afterConsumer)
	}
}
