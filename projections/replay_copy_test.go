package projections_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/projections"
)

// A replay writes the fresh generation with COPY; writing it with the
// INSERT statements COPY falls back to, or writing the audit trail in many
// small runs (a fold holding more rows than it may keep in memory), builds
// the same generation, equal to the live one.
func TestReplayCopyEqualsInsert(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	trees := e.workload(31, 120)
	ctx := context.Background()
	live := e.checksum(0)
	trail, err := e.proj.AuditTrail(ctx, trees[1].member)
	if err != nil {
		t.Fatal(err)
	}
	if len(trail) == 0 {
		t.Fatal("no audit trail to compare")
	}
	for _, c := range []struct {
		name string
		cfg  projections.ReplayConfig
	}{
		{"copy", projections.ReplayConfig{KeepPrevious: true}},
		{"insert", projections.ReplayWithoutCopy(projections.ReplayConfig{KeepPrevious: true})},
		{"small audit runs", projections.ReplayAuditBuffer(projections.ReplayConfig{KeepPrevious: true, BatchSize: 40}, 7)},
	} {
		res, err := e.proj.Replay(ctx, c.cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := e.checksum(res.Generation); got != live {
			t.Fatalf("%s: replayed checksum %s != live %s", c.name, got, live)
		}
		again, err := e.proj.AuditTrail(ctx, trees[1].member)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != len(trail) {
			t.Fatalf("%s: audit trail has %d entries, live %d", c.name, len(again), len(trail))
		}
		if err := e.proj.DropGeneration(ctx, res.Previous); err != nil {
			t.Fatal(err)
		}
	}
}

// Live events applied while a replay builds its generation write rows the
// replay copies too (the audit rows of the aggregates they change, read
// again by the replay): the COPY of those fails and they are written with
// INSERT ... ON CONFLICT, and the replayed generation equals the live one.
func TestReplayWithLiveEventsEqualsLive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	trees := e.workload(41, 120)
	ctx := context.Background()
	var liveErr error
	calls := 0
	res, err := e.proj.Replay(ctx, projections.ReplayConfig{KeepPrevious: true, BatchSize: 50,
		Progress: func(done, total int64) {
			calls++
			if calls != 1 {
				return
			}
			// Appended after the first batch was read: the replay reads
			// these events too.
			for i, tr := range trees {
				for _, cmd := range []lb.Command{lbRename(fmt.Sprintf("during-replay-%d", i)), lb.CompleteProvisioning{Reason: "test"}} {
					_, envs, err := e.svc.LoadBalancer(ctx, e.md, tr.lb, cmd)
					if err == nil {
						err = e.proj.ApplyEnvelopes(ctx, envs)
					}
					liveErr = errors.Join(liveErr, err)
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if liveErr != nil {
		t.Fatalf("live commands during the replay: %v", liveErr)
	}
	if calls < 2 {
		t.Fatalf("the replay read %d batches; the live events must come while it reads", calls)
	}
	if got, want := e.checksum(res.Generation), e.checksum(res.Previous); got != want {
		t.Fatalf("replayed checksum %s != live %s", got, want)
	}
	if got := e.get("loadbalancer", trees[0].lb)["name"]; got != "during-replay-0" {
		t.Fatalf("load balancer renamed during the replay reads %v", got)
	}
}
