package projections_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates/commands"
	"github.com/ostia/ostia/aggregates/handler"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/testkit"
	"github.com/ostia/ostia/projections"
	"github.com/ostia/ostia/projections/views"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// TestApplyInline: with the projector as the handler's Inline, a command's
// effect is in the read model when the command returns (one transaction);
// an event the projection cannot apply is still stored, the read model is
// left as it was, and the command succeeds.
func TestApplyInline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := testkit.NewDatabase(t)
	store := eventstore.New(pool)
	reg := events.MustNewRegistry()
	proj, err := projections.New(projections.Config{Pool: pool, Store: store, Registry: reg, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	h, err := handler.New(handler.Config{Store: store, Registry: reg, Inline: proj.ApplyInline})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := commands.New(commands.Config{Handler: h, LoadBalancer: lb.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	if _, _, err := svc.LoadBalancer(ctx, events.Metadata{ProjectID: "p1"}, id, lb.CreateLoadBalancer{ID: id,
		ProjectID: "p1", Name: proto.String("web"), VipSubnetID: uuid.NewString()}); err != nil {
		t.Fatal(err)
	}
	o, err := proj.Get(ctx, views.KindLoadBalancer, id)
	if err != nil {
		t.Fatalf("read model right after the command: %v", err)
	}
	if o.ProvisioningStatus != "PENDING_CREATE" {
		t.Fatalf("provisioning status %q", o.ProvisioningStatus)
	}

	// A broken event: stored, not projected, no error.
	bad, err := reg.Envelope(uuid.NewString(), id, &eventsv1.LoadBalancerUpdated{}, events.Metadata{ProjectID: "p1"}, h.Env().Now)
	if err != nil {
		t.Fatal(err)
	}
	bad.Payload = []byte{0xff, 0xff, 0xff}
	v, err := store.Version(ctx, events.AggregateLoadBalancer, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.AppendThen(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return proj.ApplyInline(ctx, tx, []*eventsv1.Envelope{bad})
	}, eventstore.Stream{AggregateType: events.AggregateLoadBalancer, AggregateID: id, ProjectID: "p1",
		ExpectedVersion: v, Events: []*eventsv1.Envelope{bad}}); err != nil {
		t.Fatalf("append with a failing inline projection: %v", err)
	}
	stored, err := store.Load(ctx, events.AggregateLoadBalancer, id, v)
	if err != nil || len(stored) != 1 {
		t.Fatalf("the event was not stored: %d events, %v", len(stored), err)
	}
	after, err := proj.Get(ctx, views.KindLoadBalancer, id)
	if err != nil {
		t.Fatal(err)
	}
	if string(after.Doc) != string(o.Doc) {
		t.Fatalf("the read model changed:\n%s\n%s", o.Doc, after.Doc)
	}

	// An error of the inline work itself aborts the append.
	boom := errors.New("boom")
	next, err := reg.Envelope(uuid.NewString(), id, &eventsv1.LoadBalancerUpdated{}, events.Metadata{ProjectID: "p1"}, h.Env().Now)
	if err != nil {
		t.Fatal(err)
	}
	err = store.AppendThen(ctx, func(context.Context, pgx.Tx) error { return boom },
		eventstore.Stream{AggregateType: events.AggregateLoadBalancer, AggregateID: id, ProjectID: "p1",
			ExpectedVersion: v + 1, Events: []*eventsv1.Envelope{next}})
	if !errors.Is(err, boom) {
		t.Fatalf("AppendThen error %v, want boom", err)
	}
	if nv, _ := store.Version(ctx, events.AggregateLoadBalancer, id); nv != v+1 {
		t.Fatalf("version %d after an aborted append, want %d", nv, v+1)
	}
}
