package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ostia/ostia/internal/postgres"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// ApplyInline applies freshly appended events inside the append transaction
// itself (aggregates/handler's Inline), so a command's effect is in the read
// models the moment the command commits, with one commit instead of two.
//
// It runs under a savepoint: when the projection fails for a reason other
// than a serialization failure, its writes are rolled back, the failure is
// logged and the command still commits; the projection consumer applies the
// events later. A serialization failure is returned, so the caller re-runs
// the whole transaction.
func (p *Projector) ApplyInline(ctx context.Context, tx pgx.Tx, envs []*eventsv1.Envelope) error {
	var any bool
	for _, env := range envs {
		if projected(env.GetAggregateType()) {
			any = true
			break
		}
	}
	if !any {
		return nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("inline projection: savepoint: %w", err)
	}
	for _, env := range envs {
		if err := p.Apply(ctx, sp, env); err != nil {
			if postgres.IsRetryable(err) {
				return err
			}
			if rerr := sp.Rollback(ctx); rerr != nil {
				return fmt.Errorf("inline projection: roll back to savepoint after %v: %w", err, rerr)
			}
			p.log.WarnContext(ctx, "inline projection failed; the projection consumer will apply the events",
				"event", env.GetEventId(), "type", env.GetType(), "error", err)
			return nil
		}
	}
	// The savepoint is not released: the transaction's COMMIT releases it,
	// one round trip less.
	return nil
}
