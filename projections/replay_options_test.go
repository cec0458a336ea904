package projections_test

import (
	"context"
	"testing"

	"github.com/ostia/ostia/projections"
)

// A replay without rebuilding the audit trail can carry the current one
// over (the result equals a full replay), and can keep the previous
// generation for comparison.
func TestReplayCarriesAuditAndKeepsPrevious(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	trees := e.workload(21, 60)
	ctx := context.Background()
	live := e.checksum(0)
	trail, err := e.proj.AuditTrail(ctx, trees[0].member)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.proj.Replay(ctx, projections.ReplayConfig{SkipAudit: true, CarryAudit: true, KeepPrevious: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Swapped {
		t.Fatal("replay was not swapped in")
	}
	if got := e.checksum(res.Generation); got != live {
		t.Fatalf("replay with the audit trail carried over %s != live %s", got, live)
	}
	if got := e.checksum(res.Previous); got != live {
		t.Fatalf("kept previous generation %s != live %s", got, live)
	}
	again, err := e.proj.AuditTrail(ctx, trees[0].member)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != len(trail) || len(trail) == 0 {
		t.Fatalf("audit trail after the replay has %d entries, before %d", len(again), len(trail))
	}
	if err := e.proj.DropGeneration(ctx, res.Previous); err != nil {
		t.Fatal(err)
	}
	if got := e.checksum(res.Previous); got == live {
		t.Fatal("dropped generation still has rows")
	}

	// Without carrying, the new generation's audit trail is empty.
	res, err = e.proj.Replay(ctx, projections.ReplayConfig{SkipAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	empty, err := e.proj.AuditTrail(ctx, trees[0].member)
	if err != nil {
		t.Fatal(err)
	}
	if len(empty) != 0 {
		t.Fatalf("audit trail after a replay without audit: %d entries", len(empty))
	}
}
