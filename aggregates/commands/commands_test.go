package commands_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/commands"
	"github.com/ostia/ostia/aggregates/handler"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/aggregates/project"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/testkit"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

func newService(t *testing.T, enforce bool) (*commands.Service, *eventstore.Store, *pgxpool.Pool) {
	t.Helper()
	pool, _ := testkit.NewDatabase(t)
	store := eventstore.New(pool)
	h, err := handler.New(handler.Config{Store: store, Registry: events.MustNewRegistry(), MaxAttempts: 1000})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := commands.New(commands.Config{Handler: h, LoadBalancer: lb.DefaultConfig(),
		QuotaDefaults: project.DefaultLimits(), EnforceQuotas: enforce})
	if err != nil {
		t.Fatal(err)
	}
	return svc, store, pool
}

var md = events.Metadata{ProjectID: "proj-1", CorrelationID: "req-test", Actor: "user-1"}

// activeLB creates a load balancer and completes its provisioning.
func activeLB(t *testing.T, svc *commands.Service) string {
	t.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	if _, _, err := svc.LoadBalancer(ctx, md, id, lb.CreateLoadBalancer{ID: id, ProjectID: "proj-1",
		VipSubnetID: uuid.NewString()}); err != nil {
		t.Fatal(err)
	}
	st, _, err := svc.LoadBalancer(ctx, md, id, lb.CompleteProvisioning{Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.LoadBalancer().ProvisioningStatus; got != lb.StatusActive {
		t.Fatalf("load balancer %s after provisioning", got)
	}
	return id
}

// TestConcurrentCommandsOnOneLoadBalancer is the acceptance test of the
// foundation: 200 concurrent commands against one ACTIVE load balancer. The
// first accepted child change moves the load balancer to PENDING_UPDATE, so
// Octavia's rules allow exactly one; the other 199 get 409. The stream has no
// gap or duplicate version.
func TestConcurrentCommandsOnOneLoadBalancer(t *testing.T) {
	t.Parallel()
	svc, store, _ := newService(t, true)
	lbID := activeLB(t, svc)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	const n = 200
	var accepted, refused int
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _, err := svc.LoadBalancer(ctx, md, lbID, lb.CreateListener{LoadBalancerID: lbID,
				ListenerSpec: lb.ListenerSpec{Protocol: "TCP", ProtocolPort: int32(1000 + i)}})
			mu.Lock()
			defer mu.Unlock()
			var de *aggregates.Error
			switch {
			case err == nil:
				accepted++
			case errors.As(err, &de) && de.Kind == aggregates.KindConflict &&
				de.Message == "Load Balancer "+lbID+" is immutable and cannot be updated.":
				refused++
			default:
				t.Errorf("command: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if accepted != 1 || refused != n-1 {
		t.Fatalf("accepted %d, refused %d; want 1 and %d", accepted, refused, n-1)
	}
	envs, err := store.Load(ctx, events.AggregateLoadBalancer, lbID, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, e := range envs {
		if e.AggregateVersion != int64(i+1) {
			t.Fatalf("stream version gap or duplicate at %d: %d", i, e.AggregateVersion)
		}
		if seen[e.EventId] {
			t.Fatalf("duplicate event id %s", e.EventId)
		}
		seen[e.EventId] = true
	}
	// create (LoadBalancerCreated), complete (status change), one listener
	// (ListenerCreated + status change).
	if got := countType(envs, "listener.created.v1"); got != 1 {
		t.Fatalf("%d listener.created events, want 1", got)
	}

	// After the flow completes, the next change is accepted again.
	if _, _, err := svc.LoadBalancer(ctx, md, lbID, lb.CompleteProvisioning{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.LoadBalancer(ctx, md, lbID, lb.CreateListener{LoadBalancerID: lbID,
		ListenerSpec: lb.ListenerSpec{Protocol: "HTTP", ProtocolPort: 80}}); err != nil {
		t.Fatalf("change after ACTIVE again: %v", err)
	}
}

func countType(envs []*eventsv1.Envelope, typ string) int {
	n := 0
	for _, e := range envs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// TestQuotaChargedInTheSameAppend: a project limited to 2 listeners gets a
// 403 on the third, and the project's usage events are in the same append
// as the listener events (same correlation, appended atomically).
func TestQuotaChargedInTheSameAppend(t *testing.T) {
	t.Parallel()
	svc, store, _ := newService(t, true)
	ctx := context.Background()
	if _, _, err := svc.Project(ctx, md, "proj-1", project.SetQuota{Listener: aggregates.Value[int64](2)}); err != nil {
		t.Fatal(err)
	}
	lbID := activeLB(t, svc)
	for i := 0; i < 3; i++ {
		_, _, err := svc.LoadBalancer(ctx, md, lbID, lb.CreateListener{LoadBalancerID: lbID,
			ListenerSpec: lb.ListenerSpec{Protocol: "TCP", ProtocolPort: int32(100 + i)}})
		if i < 2 {
			if err != nil {
				t.Fatalf("listener %d: %v", i, err)
			}
			if _, _, err := svc.LoadBalancer(ctx, md, lbID, lb.CompleteProvisioning{}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		var de *aggregates.Error
		if !errors.As(err, &de) || de.Kind != aggregates.KindQuota || de.Message != "Quota has been met for resources: Listener" {
			t.Fatalf("third listener: err = %v, want the listener quota error", err)
		}
	}
	ps, err := svc.ProjectState(ctx, "proj-1")
	if err != nil {
		t.Fatal(err)
	}
	if in := ps.InUse(); in.Listener != 2 || in.LoadBalancer != 1 {
		t.Fatalf("in use %+v, want 2 listeners and 1 load balancer", in)
	}
	// The refused listener left no trace in either stream.
	envs, err := store.Load(ctx, events.AggregateLoadBalancer, lbID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := countType(envs, "listener.created.v1"); got != 2 {
		t.Fatalf("%d listeners created, want 2", got)
	}

	// Cascade delete releases everything once the flow completes.
	if _, _, err := svc.LoadBalancer(ctx, md, lbID, lb.DeleteLoadBalancer{Cascade: true}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.LoadBalancer(ctx, md, lbID, lb.CompleteProvisioning{}); err != nil {
		t.Fatal(err)
	}
	ps, err = svc.ProjectState(ctx, "proj-1")
	if err != nil {
		t.Fatal(err)
	}
	if in := ps.InUse(); in.Listener != 0 || in.LoadBalancer != 0 {
		t.Fatalf("in use after cascade delete %+v, want nothing", in)
	}
}

// A create does not read the new id's stream on its first attempt (the id
// was just generated); a create under an id that exists after all still
// gets Octavia's conflict, from the retry that loads the stream, and appends
// nothing.
func TestCreateUnderAnExistingIDConflicts(t *testing.T) {
	svc, store, _ := newService(t, false)
	ctx := context.Background()
	id := activeLB(t, svc)
	before, err := store.Load(ctx, events.AggregateLoadBalancer, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = svc.LoadBalancer(ctx, md, id, lb.CreateLoadBalancer{ID: id, ProjectID: "proj-1", VipSubnetID: uuid.NewString()})
	var de *aggregates.Error
	if !errors.As(err, &de) || de.Kind != aggregates.KindConflict || de.Message != "Already an entity with that specified id." {
		t.Fatalf("second create: %v, want the already-exists conflict", err)
	}
	after, err := store.Load(ctx, events.AggregateLoadBalancer, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("the stream grew from %d to %d events", len(before), len(after))
	}
}
