package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"golang.org/x/sync/errgroup"

	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// shardOf spreads aggregates over n folding workers (FNV-1a of the id).
func shardOf(id string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// fold reads the log (up to cfg.Until) and folds the events of every
// projected aggregate into its model. The work runs as a pipeline: one
// goroutine reads batches ahead, one worker per core folds the aggregates
// of its shard (an aggregate always lands on the same worker, so its events
// stay in version order) and renders the audit trail, and a few writers
// store the audit trail while folding goes on. It returns the number of
// events read and the folded aggregates.
func (p *Projector) fold(ctx context.Context, gen int64, cfg ReplayConfig, total int64, log *slog.Logger) (int64, map[string]*replayAgg, error) {
	workers := max(1, runtime.GOMAXPROCS(0))
	g, gctx := errgroup.WithContext(ctx)

	var read int64
	batches := make(chan []*eventsv1.Envelope, 2)
	g.Go(func() error {
		defer close(batches)
		var after int64
		for {
			batch, err := p.store.ReadAll(gctx, after, cfg.BatchSize, cfg.Until)
			if err != nil {
				return fmt.Errorf("replay: %w", err)
			}
			if len(batch) == 0 {
				return nil
			}
			after = batch[len(batch)-1].GetGlobalPosition()
			read += int64(len(batch))
			select {
			case batches <- batch:
			case <-gctx.Done():
				return gctx.Err()
			}
			if cfg.Progress != nil {
				cfg.Progress(read, max(total, read))
			}
			if len(batch) < cfg.BatchSize {
				return nil
			}
		}
	})

	inputs := make([]chan []*eventsv1.Envelope, workers)
	for w := range inputs {
		inputs[w] = make(chan []*eventsv1.Envelope, 2)
	}
	g.Go(func() error {
		defer func() {
			for _, in := range inputs {
				close(in)
			}
		}()
		for batch := range batches {
			parts := make([][]*eventsv1.Envelope, workers)
			for _, env := range batch {
				if !projected(env.GetAggregateType()) {
					continue
				}
				w := shardOf(env.GetAggregateId(), workers)
				parts[w] = append(parts[w], env)
			}
			for w, part := range parts {
				if len(part) == 0 {
					continue
				}
				select {
				case inputs[w] <- part:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
		}
		return nil
	})

	audits := make(chan []auditRecord, 2*workers)
	shards := make([]map[string]*replayAgg, workers)
	var folding sync.WaitGroup
	for w := range workers {
		shards[w] = map[string]*replayAgg{}
		folding.Add(1)
		g.Go(func() error {
			defer folding.Done()
			return p.foldShard(gctx, cfg, log, inputs[w], shards[w], audits)
		})
	}
	g.Go(func() error {
		folding.Wait()
		close(audits)
		return nil
	})
	for range max(2, workers) {
		g.Go(func() error {
			for recs := range audits {
				if err := p.writeAudit(gctx, gen, recs); err != nil {
					return fmt.Errorf("replay: write audit trail: %w", err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return read, nil, err
	}
	aggs := make(map[string]*replayAgg)
	for _, s := range shards {
		for k, a := range s {
			aggs[k] = a
		}
	}
	return read, aggs, nil
}

// foldShard folds the events of one shard's aggregates, in the order they
// arrive, and hands the audit records on in batches.
func (p *Projector) foldShard(ctx context.Context, cfg ReplayConfig, log *slog.Logger, in <-chan []*eventsv1.Envelope,
	aggs map[string]*replayAgg, out chan<- []auditRecord) error {
	var pending []auditRecord
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		select {
		case out <- pending:
			pending = nil
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for part := range in {
		for _, env := range part {
			key := cacheKey(env.GetAggregateType(), env.GetAggregateId())
			a := aggs[key]
			if a == nil {
				m, err := newModel(env.GetAggregateType(), env.GetAggregateId())
				if err != nil {
					return err
				}
				a = &replayAgg{aggType: env.GetAggregateType(), id: env.GetAggregateId(), model: m}
				aggs[key] = a
			}
			if a.broken {
				continue
			}
			if env.GetAggregateVersion() != a.version+1 {
				log.Warn("replay: version gap; the aggregate stops before it", "aggregate", key,
					"have", a.version, "next", env.GetAggregateVersion())
				a.broken = true
				continue
			}
			payload, err := p.reg.Decode(env)
			if err != nil {
				return fmt.Errorf("replay: %w", err)
			}
			audit := auditSubjects
			if cfg.SkipAudit {
				audit = auditNone
			}
			items, err := a.model.apply(env, payload, audit)
			if err != nil {
				return fmt.Errorf("replay %s v%d (%s): %w", key, env.GetAggregateVersion(), env.GetType(), err)
			}
			if len(items) > 0 {
				pending = append(pending, auditRecord{env: env, items: items})
				for _, it := range items {
					s := subject{it.kind, it.id}
					if _, ok := a.objects[s]; !ok {
						if a.objects == nil {
							a.objects = map[subject]struct{}{}
						}
						a.objects[s] = struct{}{}
					}
				}
			}
			a.version = env.GetAggregateVersion()
		}
		if len(pending) >= cfg.BatchSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

var auditColumns = []string{"generation", "aggregate_type", "aggregate_id", "aggregate_version", "event_id",
	"global_position", "occurred_at", "actor", "project_id", "correlation_id", "event_type", "object_kinds", "object_ids"}

// writeAudit stores audit records of a replay (the objects' directory,
// audit_objects, is written with the read models). It streams them with
// COPY, the cheapest way in for both PostgreSQL and CockroachDB; when some
// of the rows are already there (live events written to the generation
// being built while the replay ran) the COPY fails as a whole and the chunk
// is written again with INSERT ... ON CONFLICT DO NOTHING.
func (p *Projector) writeAudit(ctx context.Context, gen int64, recs []auditRecord) error {
	// pgtype.UUID is encoded directly; uuid.UUID would go through
	// driver.Valuer, text and a failed plan per value.
	ids := make([]pgtype.UUID, len(recs))
	for i, r := range recs {
		id, err := uuid.Parse(r.env.GetEventId())
		if err != nil {
			return fmt.Errorf("event id %q: %w", r.env.GetEventId(), err)
		}
		ids[i] = pgtype.UUID{Bytes: id, Valid: true}
	}
	row := make([]any, len(auditColumns))
	var kinds, objs []string
	_, err := p.pool.CopyFrom(ctx, pgx.Identifier{"audit_events"}, auditColumns, pgx.CopyFromSlice(len(recs), func(i int) ([]any, error) {
		r := &recs[i]
		e := r.env
		kinds, objs = kinds[:0], objs[:0]
		for _, it := range r.items {
			kinds, objs = append(kinds, string(it.kind)), append(objs, it.id)
		}
		row[0], row[1], row[2], row[3], row[4], row[5], row[6] = gen, e.GetAggregateType(), e.GetAggregateId(),
			e.GetAggregateVersion(), ids[i], e.GetGlobalPosition(), e.GetOccurredAt().AsTime()
		row[7], row[8], row[9], row[10], row[11], row[12] = e.GetActor(), e.GetProjectId(), e.GetCorrelationId(),
			e.GetType(), kinds, objs
		return row, nil
	}))
	var pe *pgconn.PgError
	if err == nil || !errors.As(err, &pe) || pe.Code != "23505" {
		return err
	}
	b := &pgx.Batch{}
	queueAudit(b, gen, recs)
	return p.pool.SendBatch(ctx, b).Close()
}
