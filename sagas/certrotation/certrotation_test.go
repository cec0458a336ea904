package certrotation_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/aggregates"
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
	"github.com/ostia/ostia/sagas/certrotation"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

var t0 = time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock shared by the cloud and the rotator.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	t       *testing.T
	h       *handler.Handler
	svc     *commands.Service
	sagas   *saga.Store
	cloud   *noop.Cloud
	clock   *clock
	rot     *certrotation.Rotator
	amps    []string
	started []string
}

var md = events.Metadata{ProjectID: "proj-1", Actor: "test"}

func newEnv(t *testing.T) *env {
	t.Helper()
	pool, _ := testkit.NewDatabase(t)
	reg := events.MustNewRegistry()
	e := &env{t: t, clock: &clock{now: t0}}
	e.cloud = noop.New(noop.Config{Now: e.clock.Now})
	var err error
	if e.h, err = handler.New(handler.Config{Store: eventstore.New(pool), Registry: reg, MaxAttempts: 100}); err != nil {
		t.Fatal(err)
	}
	if e.svc, err = commands.New(commands.Config{Handler: e.h, LoadBalancer: lb.DefaultConfig(),
		QuotaDefaults: project.DefaultLimits()}); err != nil {
		t.Fatal(err)
	}
	if e.sagas, err = saga.NewStore(saga.StoreConfig{Pool: pool, Registry: reg}); err != nil {
		t.Fatal(err)
	}
	e.rot, err = certrotation.New(certrotation.Config{Commands: e.svc, Loader: e.h, Sagas: e, Agent: e.cloud,
		Certificates: e.cloud, Candidates: func(context.Context, time.Time) ([]string, error) { return e.amps, nil },
		Interval: time.Hour, ExpiryBuffer: 14 * 24 * time.Hour, Validity: 90 * 24 * time.Hour, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	r, err := saga.NewRunner(saga.RunnerConfig{Store: e.sagas, Flows: []saga.Flow{e.rot.Flow()}, WorkerID: "w1",
		Concurrency: 8, PollInterval: 20 * time.Millisecond, LeaseTTL: time.Second, CleanupInterval: 200 * time.Millisecond,
		MaxAttempts: 3, CompensationAttempts: 3, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		CallTimeout: 10 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return e
}

// Start records the saga ids the rotator starts (saga.Store underneath).
func (e *env) Start(ctx context.Context, req saga.StartRequest) (bool, error) {
	ok, err := e.sagas.Start(ctx, req)
	if ok {
		e.started = append(e.started, req.SagaID)
	}
	return ok, err
}

// newAmphora records an ALLOCATED amphora whose running server holds a
// certificate valid for validity.
func (e *env) newAmphora(id string, validity time.Duration) {
	e.t.Helper()
	ctx := context.Background()
	srv, err := e.cloud.CreateServer(ctx, ports.ServerSpec{Name: "amphora-" + id})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.cloud.GetServer(ctx, srv.ID); err != nil { // BUILD -> ACTIVE
		e.t.Fatal(err)
	}
	cert, err := e.cloud.IssueServerCert(ctx, id, validity)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, cmd := range []amphora.Command{
		amphora.CreateAmphora{ID: id, LoadBalancerID: "lb-1", ProjectID: "proj-1", Role: amphora.RoleStandalone},
		amphora.UpdateAmphora{ComputeID: aggregates.Value(srv.ID), LBNetworkIP: aggregates.Value(srv.ManagementIP)},
		amphora.RecordCertificate{ExpiresAt: cert.ExpiresAt, Serial: cert.Serial},
		amphora.ChangeStatus{Status: amphora.StatusBooting},
		amphora.ChangeStatus{Status: amphora.StatusAllocated},
	} {
		if _, _, err := e.svc.Amphora(ctx, md, id, cmd); err != nil {
			e.t.Fatal(err)
		}
	}
	e.amps = append(e.amps, id)
}

func (e *env) amp(id string) *eventsv1.Amphora {
	e.t.Helper()
	st := amphora.New(id)
	if _, err := e.h.Load(context.Background(), events.AggregateAmphora, id, st); err != nil {
		e.t.Fatal(err)
	}
	return st.Amphora()
}

func (e *env) scan(want int) {
	e.t.Helper()
	n, err := e.rot.Scan(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	if n != want {
		e.t.Fatalf("scan started %d rotations, want %d", n, want)
	}
}

func (e *env) wait(id, status string) {
	e.t.Helper()
	testkit.Eventually(e.t, 20*time.Second, 10*time.Millisecond, func() bool {
		st, err := e.sagas.Status(context.Background(), id)
		return err == nil && st.Status == status
	}, "saga %s to be %s", id, status)
}

func TestExpiringCertificateIsRotatedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.newAmphora("amp-short", 24*time.Hour)    // inside the 14-day buffer
	e.newAmphora("amp-long", 365*24*time.Hour) // far from it

	e.scan(1)
	e.wait(e.started[0], saga.StatusCompleted)
	a := e.amp("amp-short")
	if a.CertBusy || !a.CertExpiration.AsTime().Equal(t0.Add(90*24*time.Hour)) {
		t.Fatalf("after rotation: cert_busy=%v expires %v, want %v", a.CertBusy, a.CertExpiration.AsTime(), t0.Add(90*24*time.Hour))
	}
	view, _ := e.cloud.Agent("amp-short")
	if view.CertUpdates != 1 || view.CertSerial != "amp-short-2" {
		t.Fatalf("agent got %d certificates, serving %q; want 1, amp-short-2", view.CertUpdates, view.CertSerial)
	}
	if other, _ := e.cloud.Agent("amp-long"); other.CertUpdates != 0 {
		t.Fatal("the long-lived certificate was rotated")
	}

	// Scanning again, in the same period and in later ones, finds nothing
	// to do and makes no call.
	before := e.cloud.AllCalls()
	e.scan(0)
	e.clock.advance(2 * time.Hour)
	e.scan(0)
	if after := e.cloud.AllCalls(); after[noop.OpIssueServerCert] != before[noop.OpIssueServerCert] ||
		after[noop.OpUpdateServerCert] != before[noop.OpUpdateServerCert] {
		t.Fatalf("a re-run called the cloud: %v -> %v", before, after)
	}
	if len(e.started) != 1 {
		t.Fatalf("sagas started: %v", e.started)
	}

	// Close to the new expiry the certificate is rotated again.
	e.clock.advance(80 * 24 * time.Hour)
	e.scan(1) // amp-long still has most of its year
	for _, id := range e.started[1:] {
		e.wait(id, saga.StatusCompleted)
	}
	if a := e.amp("amp-short"); !a.CertExpiration.AsTime().Equal(e.clock.Now().Add(90 * 24 * time.Hour)) {
		t.Fatalf("second rotation recorded %v", a.CertExpiration.AsTime())
	}
}

func TestFailedRotationIsRetriedByALaterScan(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.newAmphora("amp-1", time.Hour)
	old := e.amp("amp-1").CertExpiration.AsTime()
	e.cloud.Inject(noop.Fault{Op: noop.OpUpdateServerCert, Err: saga.Permanent(errors.New("agent refused the certificate"))})

	e.scan(1)
	e.wait(e.started[0], saga.StatusFailed)
	a := e.amp("amp-1")
	if a.CertBusy || !a.CertExpiration.AsTime().Equal(old) {
		t.Fatalf("after a failed rotation: cert_busy=%v expires %v (was %v)", a.CertBusy, a.CertExpiration.AsTime(), old)
	}
	// The same period does not start it again; the next one does.
	e.scan(0)
	e.cloud.ClearFaults()
	e.clock.advance(time.Hour)
	e.scan(1)
	e.wait(e.started[1], saga.StatusCompleted)
	if a := e.amp("amp-1"); a.CertBusy || !a.CertExpiration.AsTime().After(e.clock.Now().Add(30*24*time.Hour)) {
		t.Fatalf("retried rotation: cert_busy=%v expires %v", a.CertBusy, a.CertExpiration.AsTime())
	}
	if !slices.Contains(e.started, e.started[1]) || e.started[0] == e.started[1] {
		t.Fatalf("sagas %v", e.started)
	}
}
