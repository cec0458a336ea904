package lbflows_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/commands"
	"github.com/ostia/ostia/aggregates/handler"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/aggregates/project"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/drivers/noop"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/testkit"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
	"github.com/ostia/ostia/sagas/lbflows"
	"github.com/ostia/ostia/sagas/saga"
)

type env struct {
	t     testing.TB
	pool  *pgxpool.Pool
	es    *eventstore.Store
	reg   *events.Registry
	h     *handler.Handler
	svc   *commands.Service
	sagas *saga.Store
	cloud *noop.Cloud
	certs *noop.CertStore
	flows *lbflows.Flows
	log   *slog.Logger
	prom  *prometheus.Registry
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("OSTIA_SAGA_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newEnvWithPool(t testing.TB, pool *pgxpool.Pool, cloudCfg noop.Config) *env {
	t.Helper()
	e := &env{t: t, pool: pool, es: eventstore.New(pool), reg: events.MustNewRegistry(), cloud: noop.New(cloudCfg),
		certs: noop.NewCertStore(), log: testLogger(t), prom: prometheus.NewRegistry()}
	var err error
	if e.h, err = handler.New(handler.Config{Store: e.es, Registry: e.reg, MaxAttempts: 100}); err != nil {
		t.Fatal(err)
	}
	if e.svc, err = commands.New(commands.Config{Handler: e.h, LoadBalancer: lb.DefaultConfig(),
		QuotaDefaults: project.DefaultLimits()}); err != nil {
		t.Fatal(err)
	}
	if e.sagas, err = saga.NewStore(saga.StoreConfig{Pool: pool, Registry: e.reg}); err != nil {
		t.Fatal(err)
	}
	if e.flows, err = lbflows.New(lbflows.Config{Commands: e.svc, Loader: e.h, Compute: e.cloud, Network: e.cloud,
		Agent: e.cloud, Certificates: e.cloud, CertManager: e.certs, ImageTag: "amphora", FlavorID: "amp-flavor",
		ManagementNetworkIDs: []string{"lb-mgmt"}, BootPollInterval: 10 * time.Millisecond, BootTimeout: 20 * time.Second}); err != nil {
		t.Fatal(err)
	}
	return e
}

func newEnv(t testing.TB, cloudCfg noop.Config) *env {
	t.Helper()
	pool, _ := testkit.NewDatabase(t)
	return newEnvWithPool(t, pool, cloudCfg)
}

func (e *env) runnerConfig(id string) saga.RunnerConfig {
	return saga.RunnerConfig{Store: e.sagas, Flows: e.flows.All(), WorkerID: id, Concurrency: 64,
		PollInterval: 20 * time.Millisecond, LeaseTTL: time.Second, CleanupInterval: 200 * time.Millisecond,
		MaxAttempts: 5, CompensationAttempts: 3, MinBackoff: 5 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		CallTimeout: 10 * time.Second, Logger: e.log, Metrics: e.prom}
}

type running struct {
	r      *saga.Runner
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// kill stops the runner as a crash would: in-flight steps are cancelled and
// leases are not given back.
func (r *running) kill() {
	r.once.Do(func() {
		r.cancel()
		<-r.done
	})
}

func (e *env) startRunner(cfg saga.RunnerConfig) *running {
	e.t.Helper()
	r, err := saga.NewRunner(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{r: r, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(run.done)
		_ = r.Run(ctx)
	}()
	e.t.Cleanup(run.kill)
	return run
}

var md = events.Metadata{ProjectID: "proj-1", CorrelationID: "req-test", Actor: "user-1"}

// createLB sends CreateLoadBalancer with one listener and returns its id
// and the stored events.
func (e *env) createLB(topology string, listeners int) (string, []*eventsv1.Envelope) {
	e.t.Helper()
	id := uuid.NewString()
	cmd := lb.CreateLoadBalancer{ID: id, ProjectID: "proj-1", VipSubnetID: "subnet-vip", VipNetworkID: "net-vip",
		Topology: topology}
	for i := range listeners {
		cmd.Listeners = append(cmd.Listeners, lb.ListenerSpec{Protocol: "HTTP", ProtocolPort: int32(80 + i),
			AllowedCIDRs: []string{"10.0.0.0/8"}})
	}
	_, envs, err := e.svc.LoadBalancer(context.Background(), md, id, cmd)
	if err != nil {
		e.t.Fatal(err)
	}
	return id, envs
}

// trigger starts the sagas the envelopes call for, as the consumers would.
func (e *env) trigger(envs []*eventsv1.Envelope) []string {
	e.t.Helper()
	var ids []string
	for _, env := range envs {
		p, err := e.reg.Decode(env)
		if err != nil {
			e.t.Fatal(err)
		}
		req, ok, err := e.flows.StartFor(context.Background(), env, p)
		if err != nil {
			e.t.Fatal(err)
		}
		if !ok {
			continue
		}
		if _, err := e.sagas.Start(context.Background(), req); err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, req.SagaID)
	}
	return ids
}

func (e *env) lb(id string) *eventsv1.LoadBalancer {
	e.t.Helper()
	st := lb.New(id)
	if _, err := e.h.Load(context.Background(), events.AggregateLoadBalancer, id, st); err != nil {
		e.t.Fatal(err)
	}
	if l := st.LoadBalancer(); l != nil {
		return l
	}
	return &eventsv1.LoadBalancer{}
}

func (e *env) amp(id string) *eventsv1.Amphora {
	e.t.Helper()
	st := amphora.New(id)
	if _, err := e.h.Load(context.Background(), events.AggregateAmphora, id, st); err != nil {
		e.t.Fatal(err)
	}
	if a := st.Amphora(); a != nil {
		return a
	}
	return &eventsv1.Amphora{}
}

func (e *env) sagaStatus(id string) saga.SagaStatus {
	e.t.Helper()
	st, err := e.sagas.Status(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) waitSaga(id, status string, timeout time.Duration) {
	e.t.Helper()
	testkit.Eventually(e.t, timeout, 10*time.Millisecond, func() bool {
		st, err := e.sagas.Status(context.Background(), id)
		return err == nil && st.Status == status
	}, "saga %s to be %s (is %+v)", id, status, func() saga.SagaStatus { s, _ := e.sagas.Status(context.Background(), id); return s }())
}

// sagaEvents returns the event types of a saga's stream.
func (e *env) sagaEvents(id string) []string {
	e.t.Helper()
	envs, err := e.es.Load(context.Background(), events.AggregateSaga, id, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]string, len(envs))
	for i, env := range envs {
		out[i] = env.Type
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// input returns the decoded input of a saga (the amphora ids it builds).
func (e *env) input(id string) lbflows.LBState {
	e.t.Helper()
	envs, err := e.es.Load(context.Background(), events.AggregateSaga, id, 0)
	if err != nil || len(envs) == 0 {
		e.t.Fatalf("load saga %s: %v", id, err)
	}
	p, err := e.reg.Decode(envs[0])
	if err != nil {
		e.t.Fatal(err)
	}
	var st lbflows.LBState
	if err := jsonUnmarshal(p.(*eventsv1.SagaStarted).GetInput(), &st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

func mustEqual[T comparable](t testing.TB, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func describe(v any) string { return fmt.Sprintf("%+v", v) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
