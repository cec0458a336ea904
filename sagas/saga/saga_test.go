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

// TestQuickStepsShareACommitAndRerunAfterACrash: with a long
// CheckpointInterval, three quick steps run without a commit of their own,
// so while the fourth step hangs the store still shows only the saga's start;
// a worker killed there loses them, and the next worker runs them again (they
// are idempotent) and completes. With a negative interval every step is
// committed before the next one starts.
func TestQuickStepsShareACommitAndRerunAfterACrash(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		interval    time.Duration
		wantVersion int64 // saga version while "slow" hangs
		wantReruns  int   // quick steps run again after the crash
	}{
		{"batched", time.Hour, 1, 3},
		{"every step", -1, 1 + 1 + 3*2, 0}, // started, q1 start, (q1 done+q2 start), ..., slow start
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pool, _ := testkit.NewDatabase(t)
			store, err := saga.NewStore(saga.StoreConfig{Pool: pool, Registry: events.MustNewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			var quick atomic.Int32
			var hang atomic.Bool
			hang.Store(true)
			entered := make(chan struct{}, 1)
			q := func(ctx context.Context, s *counterState) (saga.Outputs, error) {
				quick.Add(1)
				return nil, nil
			}
			def := &saga.Definition[counterState]{Name: "batch", Plan: func(*counterState) []saga.Step[counterState] {
				return []saga.Step[counterState]{{Name: "q1", Do: q}, {Name: "q2", Do: q}, {Name: "q3", Do: q},
					{Name: "slow", Do: func(ctx context.Context, s *counterState) (saga.Outputs, error) {
						if hang.Load() {
							select {
							case entered <- struct{}{}:
							default:
							}
							<-ctx.Done()
							return nil, ctx.Err()
						}
						return nil, nil
					}}}
			}}
			if _, err := store.Start(context.Background(), saga.StartRequest{SagaID: "b1", Type: "batch", SubjectID: "b1",
				Input: counterState{Name: "b1"}}); err != nil {
				t.Fatal(err)
			}
			run := func(ctx context.Context, worker string) func() {
				r, err := saga.NewRunner(saga.RunnerConfig{Store: store, Flows: []saga.Flow{def}, WorkerID: worker,
					PollInterval: 5 * time.Millisecond, LeaseTTL: 300 * time.Millisecond, CheckpointInterval: tc.interval,
					Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() { defer close(done); _ = r.Run(ctx) }()
				return func() { cancel(); <-done }
			}
			stop := run(context.Background(), "w1")
			select {
			case <-entered:
			case <-time.After(20 * time.Second):
				t.Fatal("slow step never ran")
			}
			st, err := store.Status(context.Background(), "b1")
			if err != nil {
				t.Fatal(err)
			}
			if st.Version != tc.wantVersion {
				t.Fatalf("saga version while the slow step runs = %d, want %d", st.Version, tc.wantVersion)
			}
			stop() // the worker dies mid-step
			if got := quick.Load(); got != 3 {
				t.Fatalf("quick steps ran %d times before the crash, want 3", got)
			}
			hang.Store(false)
			stop = run(context.Background(), "w2")
			defer stop()
			testkit.Eventually(t, 20*time.Second, 10*time.Millisecond, func() bool {
				st, err := store.Status(context.Background(), "b1")
				return err == nil && st.Status == saga.StatusCompleted
			}, "saga completed after the restart")
			if got := int(quick.Load()) - 3; got != tc.wantReruns {
				t.Fatalf("quick steps re-run %d times after the crash, want %d", got, tc.wantReruns)
			}
		})
	}
}
