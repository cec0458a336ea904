package saga_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/testkit"
	"github.com/ostia/ostia/sagas/saga"
)

type counterState struct {
	Name string `json:"name"`
	Seen []string
}

// TestRacingRunnersRunEachStepOnceAndCompensateInReverse runs 30 sagas on
// two runners at once: every step's Do runs exactly once (the lease and the
// expected-version appends keep the runners apart), a RetryAfter step parks
// without failing, and a permanent failure compensates started steps in
// reverse order.
func TestRacingRunnersRunEachStepOnceAndCompensateInReverse(t *testing.T) {
	t.Parallel()
	pool, _ := testkit.NewDatabase(t)
	store, err := saga.NewStore(saga.StoreConfig{Pool: pool, Registry: events.MustNewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	calls := map[string]int{}
	var undo []string
	var waits atomic.Int32
	do := func(step string) func(context.Context, *counterState) (saga.Outputs, error) {
		return func(ctx context.Context, s *counterState) (saga.Outputs, error) {
			mu.Lock()
			calls[s.Name+"/"+step]++
			mu.Unlock()
			if step == "c" && s.Name == "fail" {
				return nil, saga.Permanent(errors.New("boom"))
			}
			return saga.Outputs{"done": step}, nil
		}
	}
	comp := func(step string) func(context.Context, *counterState) error {
		return func(ctx context.Context, s *counterState) error {
			mu.Lock()
			undo = append(undo, s.Name+"/"+step)
			mu.Unlock()
			return nil
		}
	}
	def := &saga.Definition[counterState]{Name: "counter", Plan: func(*counterState) []saga.Step[counterState] {
		return []saga.Step[counterState]{
			{Name: "a", Do: do("a"), Compensate: comp("a"), Apply: func(s *counterState, o saga.Outputs) { s.Seen = append(s.Seen, o["done"]) }},
			{Name: "wait", Do: func(ctx context.Context, s *counterState) (saga.Outputs, error) {
				if saga.InfoFrom(ctx).Attempt < 3 {
					waits.Add(1)
					return nil, saga.RetryAfter(5*time.Millisecond, "not yet")
				}
				return nil, nil
			}},
			{Name: "b", Do: do("b"), Compensate: comp("b")},
			{Name: "c", Do: do("c"), Compensate: comp("c")},
		}
	}}
	const n = 30
	for i := range n {
		name := fmt.Sprintf("s%d", i)
		if i == 0 {
			name = "fail"
		}
		if _, err := store.Start(context.Background(), saga.StartRequest{SagaID: name, Type: "counter", SubjectID: name,
			Input: counterState{Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); wg.Wait() }()
	for w := range 2 {
		r, err := saga.NewRunner(saga.RunnerConfig{Store: store, Flows: []saga.Flow{def}, WorkerID: fmt.Sprintf("w%d", w),
			PollInterval: 5 * time.Millisecond, LeaseTTL: time.Second, MinBackoff: time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.Run(ctx) }()
	}
	testkit.Eventually(t, 20*time.Second, 10*time.Millisecond, func() bool {
		c, err := store.Counts(context.Background())
		return err == nil && c[saga.StatusCompleted]+c[saga.StatusFailed] == n
	}, "sagas finished")
	c, _ := store.Counts(context.Background())
	if c[saga.StatusFailed] != 1 {
		t.Fatalf("statuses %v", c)
	}
	mu.Lock()
	defer mu.Unlock()
	for k, v := range calls {
		if v != 1 {
			t.Fatalf("%s ran %d times", k, v)
		}
	}
	if len(calls) != 3*n {
		t.Fatalf("%d step runs, want %d", len(calls), 3*n)
	}
	if fmt.Sprint(undo) != "[fail/c fail/b fail/a]" {
		t.Fatalf("compensations %v", undo)
	}
	if got := waits.Load(); got != 2*n {
		t.Fatalf("waits %d", got)
	}
}
