package projections_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
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
	h, err := handler.New(handler.Config{Store: store, Registry: reg, Inline: proj.InlineThen})
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

// TestApplyInlineSeveralAggregates: events of several aggregates appended
// in one transaction are all in the read model when it commits (one read of
// the checkpoints, one batch of writes), and applying them again changes
// nothing (their checkpoints are read back).
func TestApplyInlineSeveralAggregates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := testkit.NewDatabase(t)
	store := eventstore.New(pool)
	reg := events.MustNewRegistry()
	proj, err := projections.New(projections.Config{Pool: pool, Store: store, Registry: reg, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := lb.DefaultConfig()
	var streams []eventstore.Stream
	var all []*eventsv1.Envelope
	ids := []string{uuid.NewString(), uuid.NewString()}
	for i, id := range ids {
		st := lb.New(id)
		now := time.Now()
		d, err := cfg.Decide(st, lb.CreateLoadBalancer{ID: id, ProjectID: "p1", Name: proto.String(fmt.Sprintf("lb-%d", i)),
			VipSubnetID: uuid.NewString(), Listeners: []lb.ListenerSpec{{Protocol: "HTTP", ProtocolPort: 80}}},
			aggregates.Env{Now: now, NewID: uuid.NewString})
		if err != nil {
			t.Fatal(err)
		}
		s := eventstore.Stream{AggregateType: events.AggregateLoadBalancer, AggregateID: id, ProjectID: "p1"}
		for _, p := range d.Events {
			env, err := reg.Envelope(uuid.NewString(), id, p, events.Metadata{ProjectID: "p1"}, now)
			if err != nil {
				t.Fatal(err)
			}
			s.Events = append(s.Events, env)
			all = append(all, env)
		}
		streams = append(streams, s)
	}
	if err := store.AppendThen(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return proj.ApplyInline(ctx, tx, all)
	}, streams...); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		o, err := proj.Get(ctx, views.KindLoadBalancer, id)
		if err != nil {
			t.Fatalf("load balancer %d right after the append: %v", i, err)
		}
		doc := string(o.Doc)
		if !strings.Contains(doc, fmt.Sprintf(`"name": "lb-%d"`, i)) || !strings.Contains(doc, `"listeners": [{"id": `) {
			t.Fatalf("load balancer %d in the read model: %s", i, doc)
		}
	}
	before, err := proj.Checksum(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := proj.ApplyInline(ctx, tx, all); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if after, err := proj.Checksum(ctx, 0); err != nil || after != before {
		t.Fatalf("applying again changed the read model (%v)", err)
	}
}
