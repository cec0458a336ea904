package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/config"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/postgres"
	"github.com/ostia/ostia/internal/testkit"
)

// TestUpRunsTheSingleMachineDefault starts `ostia up` in-process on a fresh
// database and data dir, checks that it says where the API listens, that the
// API answers, and that an event appended to the store travels through the
// relay and the embedded broker to a Kafka consumer (`ostia events tail`).
func TestUpRunsTheSingleMachineDefault(t *testing.T) {
	_, dbURL := testkit.NewDatabase(t)
	kafkaPort := testkit.FreePort(t)
	stdout := &testkit.SyncBuffer{}
	stderr := &testkit.SyncBuffer{}
	env := &environment{stdout: stdout, stderr: stderr, environ: []string{
		"OSTIA_DATABASE_URL=" + dbURL,
		"OSTIA_KAFKA_DATA_DIR=" + t.TempDir(),
		fmt.Sprintf("OSTIA_KAFKA_EMBEDDED_PORT=%d", kafkaPort),
		"OSTIA_API_BIND=127.0.0.1:0",
		"OSTIA_METRICS_BIND=127.0.0.1:0",
		"OSTIA_HEALTH_BIND=127.0.0.1:0",
		"OSTIA_WORKER_DRIVER=noop",
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, env, []string{"up"}) }()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("ostia up exited %d; stderr:\n%s", code, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("ostia up did not stop after cancel")
		}
	}()

	apiRe := regexp.MustCompile(`Octavia v2 API: (http://\S+)`)
	var apiURL string
	testkit.Eventually(t, 30*time.Second, 50*time.Millisecond, func() bool {
		if m := apiRe.FindStringSubmatch(stdout.String()); m != nil {
			apiURL = m[1]
			return true
		}
		return false
	}, "ostia up never said where the API listens; stderr:\n%s", stderr.String())

	resp, err := http.Get(apiURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	var versions struct {
		Versions []struct{ ID, Status string } `json:"versions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&versions); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(versions.Versions) == 0 {
		t.Fatalf("GET / = %d %+v", resp.StatusCode, versions)
	}

	// A command appends events the way the API will; watch them arrive on
	// Kafka, and the worker's sagas (noop drivers) build the load balancer.
	pool := openPool(t, dbURL)
	store := eventstore.New(pool)
	core, err := (&base{cfg: config.Default()}).newCore(pool, false)
	if err != nil {
		t.Fatal(err)
	}
	lbID := uuid.NewString()
	if _, _, err := core.commands.LoadBalancer(ctx, events.Metadata{ProjectID: "p1", CorrelationID: "req-up"}, lbID,
		loadbalancer.CreateLoadBalancer{ID: lbID, ProjectID: "p1", VipSubnetID: uuid.NewString()}); err != nil {
		t.Fatal(err)
	}
	tailOut := &testkit.SyncBuffer{}
	tailCtx, stopTail := context.WithCancel(ctx)
	tailDone := make(chan error, 1)
	go func() {
		tailDone <- tailEvents(tailCtx, tailOut, []string{fmt.Sprintf("127.0.0.1:%d", kafkaPort)},
			[]string{events.Topic(events.AggregateLoadBalancer)}, sarama.OffsetOldest, "up-test")
	}()
	testkit.Eventually(t, 20*time.Second, 50*time.Millisecond, func() bool {
		return strings.Contains(tailOut.String(), lbID)
	}, "event %s never reached Kafka; tail output:\n%s\nstderr:\n%s", lbID, tailOut.String(), stderr.String())
	stopTail()
	if err := <-tailDone; err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(tailOut.String(), "\n", 2)[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line["type"] != "loadbalancer.created.v1" || line["correlation_id"] != "req-up" {
		t.Fatalf("tail line = %v", line)
	}
	testkit.Eventually(t, 10*time.Second, 50*time.Millisecond, func() bool {
		n, err := store.OutboxLen(ctx)
		return err == nil && n == 0
	}, "outbox not drained")

	testkit.Eventually(t, 30*time.Second, 100*time.Millisecond, func() bool {
		st := loadbalancer.New(lbID)
		if _, err := core.handler.Load(ctx, events.AggregateLoadBalancer, lbID, st); err != nil {
			return false
		}
		return st.LoadBalancer().GetProvisioningStatus() == loadbalancer.StatusActive
	}, "load balancer %s never became ACTIVE; stderr:\n%s", lbID, stderr.String())
}

func openPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
