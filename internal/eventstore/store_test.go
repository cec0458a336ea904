package eventstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/testkit"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func newEvent(t testing.TB, reg *events.Registry, aggID, reason string) *eventsv1.Envelope {
	t.Helper()
	env, err := reg.Envelope(uuid.NewString(), aggID, &eventsv1.LoadBalancerFailoverRequested{Reason: reason},
		events.Metadata{ProjectID: "p1", CorrelationID: "req-1", Actor: "u1"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func stream(aggID string, expected int64, evs ...*eventsv1.Envelope) eventstore.Stream {
	return eventstore.Stream{AggregateType: events.AggregateLoadBalancer, AggregateID: aggID, ProjectID: "p1",
		ExpectedVersion: expected, Events: evs}
}

func TestAppendLoadAndOutbox(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewDatabase(t)
	s := eventstore.New(pool)
	reg := events.MustNewRegistry()
	ctx := context.Background()

	a, b := newEvent(t, reg, "lb-1", "a"), newEvent(t, reg, "lb-1", "b")
	if err := s.Append(ctx, stream("lb-1", 0, a, b)); err != nil {
		t.Fatal(err)
	}
	if a.AggregateVersion != 1 || b.AggregateVersion != 2 || a.GlobalPosition == 0 || b.GlobalPosition <= a.GlobalPosition {
		t.Fatalf("versions/positions not filled: %v/%v %v/%v", a.AggregateVersion, a.GlobalPosition, b.AggregateVersion, b.GlobalPosition)
	}
	c := newEvent(t, reg, "lb-1", "c")
	if err := s.Append(ctx, stream("lb-1", 2, c)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, events.AggregateLoadBalancer, "lb-1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].EventId != b.EventId || got[1].EventId != c.EventId {
		t.Fatalf("load after version 1: got %d events", len(got))
	}
	p, err := reg.Decode(got[1])
	if err != nil {
		t.Fatal(err)
	}
	if p.(*eventsv1.LoadBalancerFailoverRequested).Reason != "c" || got[1].CorrelationId != "req-1" || got[1].Actor != "u1" ||
		!got[1].OccurredAt.AsTime().Equal(t0) {
		t.Fatalf("round trip lost data: %v", got[1])
	}
	if v, err := s.Version(ctx, events.AggregateLoadBalancer, "lb-1"); err != nil || v != 3 {
		t.Fatalf("version = %d, %v; want 3", v, err)
	}
	pending, err := s.PendingOutbox(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 3 || pending[0].Topic != "ostia.loadbalancer.v1" || pending[0].Key != "lb-1" || pending[2].Envelope.EventId != c.EventId {
		t.Fatalf("outbox = %+v", pending)
	}
	if err := s.AckOutbox(ctx, []int64{a.GlobalPosition, b.GlobalPosition}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.OutboxLen(ctx); n != 1 {
		t.Fatalf("outbox after ack = %d, want 1", n)
	}
}

func TestAppendRejectsWrongExpectedVersion(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewDatabase(t)
	s := eventstore.New(pool)
	reg := events.MustNewRegistry()
	ctx := context.Background()
	if err := s.Append(ctx, stream("lb-1", 0, newEvent(t, reg, "lb-1", "a"))); err != nil {
		t.Fatal(err)
	}
	for _, expected := range []int64{0, 2, 5} {
		err := s.Append(ctx, stream("lb-1", expected, newEvent(t, reg, "lb-1", "x")))
		var ce *eventstore.ConflictError
		if !errors.Is(err, eventstore.ErrConcurrency) || !errors.As(err, &ce) || ce.Expected != expected {
			t.Fatalf("expected %d: err = %v, want a conflict", expected, err)
		}
	}
	// A multi-stream append is all or nothing: the second stream conflicts,
	// so the first stream's event is not written either.
	err := s.Append(ctx, stream("lb-2", 0, newEvent(t, reg, "lb-2", "a")), stream("lb-1", 7, newEvent(t, reg, "lb-1", "b")))
	if !errors.Is(err, eventstore.ErrConcurrency) {
		t.Fatalf("err = %v, want conflict", err)
	}
	if v, _ := s.Version(ctx, events.AggregateLoadBalancer, "lb-2"); v != 0 {
		t.Fatalf("lb-2 written despite the failed multi-stream append (version %d)", v)
	}
	assertLog(t, pool, 1)
}

// TestConcurrentAppendsOneStream: 200 writers all try to append version 2
// of one stream; exactly one wins, the others get a conflict, and the stream
// has no gap or duplicate version. Then every writer retries (reload,
// append at the new head) until it succeeds: the stream ends at 201 with
// versions 1..201.
func TestConcurrentAppendsOneStream(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewDatabase(t)
	s := eventstore.New(pool)
	reg := events.MustNewRegistry()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Append(ctx, stream("lb-1", 0, newEvent(t, reg, "lb-1", "create"))); err != nil {
		t.Fatal(err)
	}
	const writers = 200
	var wins, conflicts int
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := s.Append(ctx, stream("lb-1", 1, newEvent(t, reg, "lb-1", "w")))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, eventstore.ErrConcurrency):
				conflicts++
			default:
				t.Errorf("append: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins != 1 || conflicts != writers-1 {
		t.Fatalf("wins %d conflicts %d, want 1 and %d", wins, conflicts, writers-1)
	}
	assertLog(t, pool, 2)

	for i := 0; i < writers-1; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				v, err := s.Version(ctx, events.AggregateLoadBalancer, "lb-1")
				if err != nil {
					t.Errorf("version: %v", err)
					return
				}
				err = s.Append(ctx, stream("lb-1", v, newEvent(t, reg, "lb-1", "retry")))
				if err == nil {
					return
				}
				if !errors.Is(err, eventstore.ErrConcurrency) {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	assertLog(t, pool, writers+1)
}

// assertLog checks that stream lb-1 holds versions 1..n exactly once each and
// that the outbox has one row per event not yet acked (all of them here).
func assertLog(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT aggregate_version FROM events WHERE aggregate_id = 'lb-1' ORDER BY aggregate_version`)
	if err != nil {
		t.Fatal(err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != n {
		t.Fatalf("stream has %d events, want %d", len(versions), n)
	}
	for i, v := range versions {
		if v != int64(i+1) {
			t.Fatalf("version gap or duplicate at %d: %v", i, versions)
		}
	}
	var outbox, all int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM events)`).Scan(&outbox, &all); err != nil {
		t.Fatal(err)
	}
	if outbox != all {
		t.Fatalf("outbox has %d rows for %d events", outbox, all)
	}
}

// AppendWith: statements queued by Then travel with the last stream's
// events (they see the events, in the same transaction), Read gets their
// results, Run sees the envelopes complete; an error of Run rolls the
// events back. With no events to carry them the statements go on their own.
func TestAppendWithQueuesAfterTheEvents(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewDatabase(t)
	s := eventstore.New(pool)
	reg := events.MustNewRegistry()
	ctx := context.Background()

	a, b := newEvent(t, reg, "lb-w1", "a"), newEvent(t, reg, "lb-w2", "b")
	var seen int
	var ranWith int64
	err := s.AppendWith(ctx, eventstore.Then{
		Queue: func(batch *pgx.Batch) {
			batch.Queue(`SELECT count(*) FROM events WHERE aggregate_id = ANY($1::text[])`, []string{"lb-w1", "lb-w2"})
		},
		Read: func(br pgx.BatchResults) error { return br.QueryRow().Scan(&seen) },
		Run: func(ctx context.Context, tx pgx.Tx) error {
			ranWith = b.GlobalPosition
			return nil
		},
	}, stream("lb-w1", 0, a), stream("lb-w2", 0, b))
	if err != nil {
		t.Fatal(err)
	}
	if seen != 2 {
		t.Fatalf("the queued statement saw %d events, want 2 (it runs after both streams' events)", seen)
	}
	if ranWith == 0 || ranWith != b.GlobalPosition {
		t.Fatalf("Run saw position %d, want the stored %d", ranWith, b.GlobalPosition)
	}

	boom := errors.New("boom")
	c := newEvent(t, reg, "lb-w3", "c")
	err = s.AppendWith(ctx, eventstore.Then{Run: func(context.Context, pgx.Tx) error { return boom }}, stream("lb-w3", 0, c))
	if !errors.Is(err, boom) {
		t.Fatalf("AppendWith error %v, want boom", err)
	}
	if v, err := s.Version(ctx, events.AggregateLoadBalancer, "lb-w3"); err != nil || v != 0 {
		t.Fatalf("version %d (%v) after a failed Run, want 0", v, err)
	}

	var alone int
	err = s.AppendWith(ctx, eventstore.Then{
		Queue: func(batch *pgx.Batch) { batch.Queue(`SELECT 7`) },
		Read:  func(br pgx.BatchResults) error { return br.QueryRow().Scan(&alone) },
	}, stream("lb-w4", 0))
	if err != nil || alone != 7 {
		t.Fatalf("statements with no events: got %d, %v", alone, err)
	}
}
