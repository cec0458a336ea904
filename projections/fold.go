package projections

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"

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
// goroutine reads batches ahead and one worker per core folds the
// aggregates of its shard (an aggregate always lands on the same worker, so
// its events stay in version order) and keeps the audit rows of its events
// with it (see replayAuditBuffer; a worker holding too many writes them
// while folding goes on). It returns the number of events read and the
// folded aggregates.
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

	buffer := replayAuditBuffer
	if cfg.auditBuffer > 0 {
		buffer = cfg.auditBuffer
	}
	// Audit rows a worker could not hold any longer, in key order.
	overflow := make(chan [][]auditRow)
	shards := make([]map[string]*replayAgg, workers)
	var folding sync.WaitGroup
	for w := range workers {
		shards[w] = map[string]*replayAgg{}
		folding.Add(1)
		g.Go(func() error {
			defer folding.Done()
			return p.foldShard(gctx, cfg, log, inputs[w], shards[w], max(1, buffer/workers), overflow)
		})
	}
	g.Go(func() error {
		folding.Wait()
		close(overflow)
		return nil
	})
	g.Go(func() error {
		for run := range overflow {
			if err := p.writeAuditRows(gctx, gen, run, !cfg.noCopy); err != nil {
				return err
			}
		}
		return nil
	})
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
// arrive, and keeps their audit rows with them; whenever it holds limit
// rows it hands them on to out (and forgets them).
func (p *Projector) foldShard(ctx context.Context, cfg ReplayConfig, log *slog.Logger, in <-chan []*eventsv1.Envelope,
	aggs map[string]*replayAgg, limit int, out chan<- [][]auditRow) error {
	held := 0
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
				r, err := newAuditRow(env, items)
				if err != nil {
					return fmt.Errorf("replay %s v%d: %w", key, env.GetAggregateVersion(), err)
				}
				a.audit = append(a.audit, r)
				held++
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
		if held >= limit {
			select {
			case out <- takeAudit(aggs):
				held = 0
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}
