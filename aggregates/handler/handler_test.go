package handler_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/handler"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/testkit"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// slots is a toy aggregate: at most limit failovers may be requested.
type slots struct{ used int }

func (s *slots) Apply(p proto.Message) error {
	if _, ok := p.(*eventsv1.LoadBalancerFailoverRequested); !ok {
		return fmt.Errorf("unexpected %T", p)
	}
	s.used++
	return nil
}

func take(limit int, id string) handler.Decide {
	return func(tx *handler.Tx) ([]handler.Change, error) {
		var s slots
		v, err := tx.Load(events.AggregateLoadBalancer, id, &s)
		if err != nil {
			return nil, err
		}
		if s.used >= limit {
			return nil, aggregates.Errorf(aggregates.KindConflict, "no slot left on %s", id)
		}
		return []handler.Change{{AggregateType: events.AggregateLoadBalancer, AggregateID: id, ProjectID: "p1", Version: v,
			Events: []proto.Message{&eventsv1.LoadBalancerFailoverRequested{Reason: "t"}}}}, nil
	}
}

// TestConcurrentCommandsExactlyAllowedAccepted: 200 concurrent commands race
// for 7 slots; exactly 7 are accepted, the others get the aggregate's own
// 409, and the stream is gap-free.
func TestConcurrentCommandsExactlyAllowedAccepted(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewDatabase(t)
	store := eventstore.New(pool)
	h, err := handler.New(handler.Config{Store: store, Registry: events.MustNewRegistry(), MaxAttempts: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const commands, limit = 200, 7
	var accepted, refused int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < commands; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.Do(ctx, events.Metadata{Actor: "u"}, take(limit, "lb-1"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted++
			case errors.Is(err, aggregates.ErrConflict):
				refused++
			default:
				t.Errorf("command: %v", err)
			}
		}()
	}
	wg.Wait()
	if accepted != limit || refused != commands-limit {
		t.Fatalf("accepted %d refused %d, want %d and %d", accepted, refused, limit, commands-limit)
	}
	envs, err := store.Load(ctx, events.AggregateLoadBalancer, "lb-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != limit {
		t.Fatalf("stream has %d events, want %d", len(envs), limit)
	}
	for i, e := range envs {
		if e.AggregateVersion != int64(i+1) {
			t.Fatalf("gap or duplicate at %d: version %d", i, e.AggregateVersion)
		}
	}
}

func TestDecisionErrorAppendsNothing(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewDatabase(t)
	store := eventstore.New(pool)
	h, err := handler.New(handler.Config{Store: store, Registry: events.MustNewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := h.Do(ctx, events.Metadata{}, take(0, "lb-2")); !errors.Is(err, aggregates.ErrConflict) {
		t.Fatalf("err = %v", err)
	}
	if n, _ := store.OutboxLen(ctx); n != 0 {
		t.Fatalf("a refused command wrote %d events", n)
	}
	// A change whose version does not match what was loaded is a bug in the
	// decision and must not be appended.
	_, err = h.Do(ctx, events.Metadata{}, func(tx *handler.Tx) ([]handler.Change, error) {
		var s slots
		if _, err := tx.Load(events.AggregateLoadBalancer, "lb-2", &s); err != nil {
			return nil, err
		}
		return []handler.Change{{AggregateType: events.AggregateLoadBalancer, AggregateID: "lb-2", Version: 3,
			Events: []proto.Message{&eventsv1.LoadBalancerFailoverRequested{}}}}, nil
	})
	if err == nil {
		t.Fatal("mismatched version accepted")
	}
}

// TestCachedStreamsSeeOtherWriters: two handlers (two API replicas) share a
// store; each caches streams, yet each decision sees every event the other
// appended.
func TestCachedStreamsSeeOtherWriters(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewDatabase(t)
	store := eventstore.New(pool)
	reg := events.MustNewRegistry()
	a, err := handler.New(handler.Config{Store: store, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	b, err := handler.New(handler.Config{Store: store, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 6; i++ {
		h := a
		if i%2 == 1 {
			h = b
		}
		if _, err := h.Do(ctx, events.Metadata{}, take(6, "lb-c")); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	for _, h := range []*handler.Handler{a, b} {
		if _, err := h.Do(ctx, events.Metadata{}, take(6, "lb-c")); !errors.Is(err, aggregates.ErrConflict) {
			t.Fatalf("seventh command: %v, want the aggregate's refusal", err)
		}
		var s slots
		if v, err := h.Load(ctx, events.AggregateLoadBalancer, "lb-c", &s); err != nil || v != 6 || s.used != 6 {
			t.Fatalf("load: version %d used %d err %v", v, s.used, err)
		}
	}
}
