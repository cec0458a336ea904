package projections

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/ostia/ostia/internal/postgres"
	"github.com/ostia/ostia/projections/views"
)

// ReplayConfig configures a replay.
type ReplayConfig struct {
	// Until, when set, replays only events that occurred at or before it
	// (a point-in-time model). Such a generation is never swapped in and
	// live events do not go to it; read it with Query.Generation, compare
	// it with Checksum and drop it with DropGeneration.
	Until time.Time
	// Progress, when set, is called after every batch with the events read
	// so far and the number of events to read.
	Progress func(done, total int64)
	// BatchSize is how many events are read at once (default 5000).
	BatchSize int
	// SkipAudit does not rebuild the audit trail: the new generation's is
	// empty, or with CarryAudit a copy of the current generation's.
	SkipAudit bool
	// CarryAudit, with SkipAudit, copies the current generation's audit
	// trail into the new one (inside the database, much faster than
	// rendering it again), so a replay meant to fix the read models keeps
	// the history.
	CarryAudit bool
	// KeepPrevious keeps the rows of the generation that was current
	// before the swap (drop them later with DropGeneration); by default
	// they are deleted.
	KeepPrevious bool

	// For tests (set through replay_export_test.go): auditBuffer replaces
	// replayAuditBuffer; noCopy writes every row with the INSERT
	// statements COPY falls back to.
	auditBuffer int
	noCopy      bool
}

// ReplayResult tells what a replay built.
type ReplayResult struct {
	Generation int64
	Events     int64
	Aggregates int
	// Swapped reports that the generation became the current one.
	Swapped bool
	// Previous is the generation that was current before the swap (its
	// rows are deleted).
	Previous int64
	Duration time.Duration
}

type replayAgg struct {
	aggType, id string
	model       model
	version     int64
	// broken is set when a version was missing (possible only with Until
	// and clock skew between writers): later events of the aggregate are
	// left out.
	broken bool
	// objects are the objects the audit trail records changes of.
	objects map[subject]struct{}
	// audit are the audit rows of the aggregate's events not written yet,
	// in version order.
	audit []auditRow
}

// Replay rebuilds the read models from the whole event log into a fresh
// generation. Without Until the new generation also receives live events
// while it is built (Apply writes both generations) and is swapped in at
// the end, so reads never see a partial model.
func (p *Projector) Replay(ctx context.Context, cfg ReplayConfig) (ReplayResult, error) {
	start := time.Now()
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 5000
	}
	swap := cfg.Until.IsZero()
	var res ReplayResult
	err := postgres.RetryTx(ctx, p.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `UPDATE projection_generations SET next_generation = next_generation + 1
			WHERE projection = $1 RETURNING next_generation - 1, current_generation`, projectionName).Scan(&res.Generation, &res.Previous); err != nil {
			return err
		}
		if swap {
			_, err := tx.Exec(ctx, `UPDATE projection_generations SET building_generation = $2 WHERE projection = $1`,
				projectionName, res.Generation)
			return err
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("replay: reserve generation: %w", err)
	}
	gen := res.Generation
	log := p.log.With("generation", gen)
	log.Info("replay started", "until", cfg.Until)
	abandon := func(cause error) (ReplayResult, error) {
		if swap {
			_, _ = p.pool.Exec(context.WithoutCancel(ctx), `UPDATE projection_generations SET building_generation = NULL
				WHERE projection = $1 AND building_generation = $2`, projectionName, gen)
		}
		if err := p.DropGeneration(context.WithoutCancel(ctx), gen); err != nil {
			log.Warn("replay: dropping the abandoned generation failed", "err", err)
		}
		return res, cause
	}

	var total int64
	var countErr error
	if cfg.Until.IsZero() {
		countErr = p.pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&total)
	} else {
		countErr = p.pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE occurred_at <= $1`, cfg.Until).Scan(&total)
	}
	if countErr != nil {
		return abandon(fmt.Errorf("replay: count events: %w", countErr))
	}

	events, aggs, err := p.fold(ctx, gen, cfg, total, log)
	res.Events = events
	if err != nil {
		return abandon(err)
	}
	res.Aggregates = len(aggs)
	// The read models and the audit trail go to different tables, on two
	// connections at once; the audit rows are plain appends (COPY), which
	// take part in no serializable read of the read models' writer.
	audit := takeAudit(aggs)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.writeReplayed(gctx, gen, aggs, !cfg.noCopy) })
	g.Go(func() error { return p.writeAuditRows(gctx, gen, audit, !cfg.noCopy) })
	if err := g.Wait(); err != nil {
		return abandon(err)
	}
	if cfg.SkipAudit && cfg.CarryAudit {
		if err := p.copyAudit(ctx, res.Previous, gen, cfg.Until); err != nil {
			return abandon(err)
		}
	}
	if swap {
		err := postgres.RetryTx(ctx, p.pool, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `UPDATE projection_generations SET current_generation = $2, building_generation = NULL
				WHERE projection = $1 AND building_generation = $2`, projectionName, gen)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return errors.New("another replay took over the generation being built")
			}
			return nil
		})
		if err != nil {
			return abandon(fmt.Errorf("replay: swap generation %d in: %w", gen, err))
		}
		res.Swapped = true
		if !cfg.KeepPrevious {
			if err := p.DropGeneration(ctx, res.Previous); err != nil {
				log.Warn("replay: dropping the previous generation failed", "previous", res.Previous, "err", err)
			}
		}
	}
	res.Duration = time.Since(start)
	log.Info("replay finished", "events", res.Events, "aggregates", res.Aggregates, "swapped", res.Swapped,
		"duration", res.Duration)
	return res, nil
}

// writeReplayed writes the final rows and checkpoints of every replayed
// aggregate, in chunks. An aggregate whose checkpoint in the generation is
// already at or past the replayed version (live events applied meanwhile)
// is left alone; one behind it is rewritten. With useCopy the aggregates
// the generation has nothing of are written with COPY (writeReplayedChunk).
func (p *Projector) writeReplayed(ctx context.Context, gen int64, aggs map[string]*replayAgg, useCopy bool) error {
	keys := make([]string, 0, len(aggs))
	for k, a := range aggs {
		if a.version > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	const chunk = 500
	// Render on every core, write in order.
	chunks := make(chan []renderedAgg, 2)
	errc := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(chunks)
		for start := 0; start < len(keys); start += chunk {
			part := keys[start:min(start+chunk, len(keys))]
			out := make([]renderedAgg, len(part))
			var wg sync.WaitGroup
			var mu sync.Mutex
			var firstErr error
			workers := runtime.GOMAXPROCS(0)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := w; i < len(part); i += workers {
						a := aggs[part[i]]
						rs, err := a.model.rows()
						if err != nil {
							mu.Lock()
							if firstErr == nil {
								firstErr = fmt.Errorf("render %s: %w", part[i], err)
							}
							mu.Unlock()
							return
						}
						out[i] = renderedAgg{agg: a, rows: rs}
					}
				}(w)
			}
			wg.Wait()
			if firstErr != nil {
				errc <- firstErr
				return
			}
			select {
			case chunks <- out:
			case <-ctx.Done():
				return
			}
		}
	}()
	for part := range chunks {
		err := p.writeReplayedChunk(ctx, gen, part, useCopy)
		if useCopy && isUniqueViolation(err) {
			// Rows the chunk copies were written meanwhile (live events
			// applied to the generation being built): upsert them.
			err = p.writeReplayedChunk(ctx, gen, part, false)
		}
		if err != nil {
			return fmt.Errorf("replay: write read models: %w", err)
		}
	}
	select {
	case err := <-errc:
		return err
	default:
	}
	return ctx.Err()
}

// copyAudit copies the audit trail of one generation (up to until, when
// set) into another, in slices so that no transaction grows large and each
// slice is a range scan of the primary key: audit_log (rows of older
// versions) by event id, audit_events by aggregate id, then the directory
// of the objects whose changes were copied. Rows already there (live events
// written to both generations) are kept.
func (p *Projector) copyAudit(ctx context.Context, from, to int64, until time.Time) error {
	const parts = 256
	limit := until
	if limit.IsZero() {
		limit = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	}
	const legacy = `INSERT INTO audit_log (generation, event_id, seq, global_position, occurred_at, actor, project_id,
			correlation_id, aggregate_type, aggregate_id, aggregate_version, object_kind, object_id, event_type, before, after)
		SELECT $2, event_id, seq, global_position, occurred_at, actor, project_id, correlation_id, aggregate_type,
			aggregate_id, aggregate_version, object_kind, object_id, event_type, before, after
		FROM audit_log WHERE generation = $1 AND occurred_at <= $3 AND event_id >= $4::uuid`
	var legacyRows bool
	if err := p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM audit_log WHERE generation = $1)`, from).Scan(&legacyRows); err != nil {
		return fmt.Errorf("replay: carry the audit trail over: %w", err)
	}
	bound := func(i int) string { return fmt.Sprintf("%02x000000-0000-0000-0000-000000000000", i) }
	for i := range parts {
		if !legacyRows {
			break
		}
		var err error
		if i+1 < parts {
			_, err = p.pool.Exec(ctx, legacy+` AND event_id < $5::uuid ON CONFLICT (generation, event_id, seq) DO NOTHING`,
				from, to, limit, bound(i), bound(i+1))
		} else {
			_, err = p.pool.Exec(ctx, legacy+` ON CONFLICT (generation, event_id, seq) DO NOTHING`, from, to, limit, bound(i))
		}
		if err != nil {
			return fmt.Errorf("replay: carry the audit trail over: %w", err)
		}
	}
	// Per aggregate type, slices of aggregate ids (mostly UUIDs) by their
	// first character: the first slice starts at the empty string and the
	// last is open, so every id falls in one, and each is a range of the
	// primary key.
	const events = `INSERT INTO audit_events (generation, aggregate_type, aggregate_id, aggregate_version, event_id,
			global_position, occurred_at, actor, project_id, correlation_id, event_type, object_kinds, object_ids)
		SELECT $2, aggregate_type, aggregate_id, aggregate_version, event_id, global_position, occurred_at, actor,
			project_id, correlation_id, event_type, object_kinds, object_ids
		FROM audit_events WHERE generation = $1 AND occurred_at <= $3 AND aggregate_type = $4 AND aggregate_id >= $5`
	const conflict = ` ON CONFLICT (generation, aggregate_type, aggregate_id, aggregate_version) DO NOTHING`
	const slices = 16
	prefix := func(i int) string {
		if i == 0 {
			return ""
		}
		return fmt.Sprintf("%x", i)
	}
	for _, t := range projectedTypes() {
		for i := range slices {
			var err error
			if i+1 < slices {
				_, err = p.pool.Exec(ctx, events+` AND aggregate_id < $6`+conflict, from, to, limit, t, prefix(i), prefix(i+1))
			} else {
				_, err = p.pool.Exec(ctx, events+conflict, from, to, limit, t, prefix(i))
			}
			if err != nil {
				return fmt.Errorf("replay: carry the audit trail over: %w", err)
			}
		}
	}
	// Without a time limit every event was carried, so every object of the
	// directory is too: copy it whole. With one, only the objects changed
	// by a carried event; that correlated check is costly on the freshly
	// written, not yet analyzed rows (a plan with a scan per object), so it
	// is kept for point-in-time replays.
	objects := `INSERT INTO audit_objects (generation, object_id, aggregate_type, aggregate_id, object_kind)
		SELECT $2, o.object_id, o.aggregate_type, o.aggregate_id, o.object_kind FROM audit_objects o
		WHERE o.generation = $1`
	args := []any{from, to}
	if !until.IsZero() {
		objects += ` AND EXISTS (SELECT 1 FROM audit_events e WHERE e.generation = $2
			AND e.aggregate_type = o.aggregate_type AND e.aggregate_id = o.aggregate_id AND o.object_id = ANY(e.object_ids))`
	}
	if _, err := p.pool.Exec(ctx, objects+` ON CONFLICT (generation, object_id, aggregate_type, aggregate_id) DO NOTHING`,
		args...); err != nil {
		return fmt.Errorf("replay: carry the audit trail over: %w", err)
	}
	return nil
}

// DropGeneration deletes every row of a generation that is not current.
func (p *Projector) DropGeneration(ctx context.Context, gen int64) error {
	cur, building, err := generations(ctx, p.pool)
	if err != nil {
		return err
	}
	if gen == cur || (building != nil && gen == *building) {
		return fmt.Errorf("generation %d is in use", gen)
	}
	tables := []string{"audit_log", "audit_events", "audit_objects", "billing_usage"}
	for _, k := range views.Kinds() {
		tables = append(tables, table(k))
	}
	for _, t := range tables {
		if _, err := p.pool.Exec(ctx, `DELETE FROM `+t+` WHERE generation = $1`, gen); err != nil {
			return fmt.Errorf("drop generation %d from %s: %w", gen, t, err)
		}
	}
	if _, err := p.pool.Exec(ctx, `DELETE FROM projection_checkpoints WHERE projection = $1 AND generation = $2`,
		projectionName, gen); err != nil {
		return fmt.Errorf("drop generation %d checkpoints: %w", gen, err)
	}
	return nil
}

// CurrentGeneration returns the generation the API reads.
func (p *Projector) CurrentGeneration(ctx context.Context) (int64, error) {
	cur, _, err := generations(ctx, p.pool)
	return cur, err
}

// Checksum returns a digest of every read-model row, checkpoint, audit row
// and usage record of a generation (0: the current one), independent of the
// generation number and of row order, for comparing a replay with the live
// model.
func (p *Projector) Checksum(ctx context.Context, gen int64) (string, error) {
	gen, err := p.generation(ctx, gen)
	if err != nil {
		return "", err
	}
	parts := make([]string, 0, len(views.Kinds())+2)
	for _, k := range views.Kinds() {
		parts = append(parts, `SELECT count(*)::text || ':' || COALESCE(md5(string_agg(md5(concat_ws('|', id, aggregate_id,
			project_id, loadbalancer_id, parent_id, name, provisioning_status, operating_status, created_at::text,
			updated_at::text, tags::text, doc::text, aux::text)), '' ORDER BY id)), '') FROM `+table(k)+` WHERE generation = $1`)
	}
	parts = append(parts,
		`SELECT count(*)::text || ':' || COALESCE(md5(string_agg(md5(concat_ws('|', aggregate_type, aggregate_id,
			version::text)), '' ORDER BY aggregate_type, aggregate_id)), '') FROM projection_checkpoints
			WHERE projection = 'views' AND generation = $1`,
		`SELECT count(*)::text || ':' || COALESCE(md5(string_agg(md5(concat_ws('|', event_id::text, seq::text,
			global_position::text, occurred_at::text, actor, project_id, correlation_id, aggregate_type, aggregate_id,
			aggregate_version::text, object_kind, object_id, event_type, before::text, after::text)), ''
			ORDER BY event_id, seq)), '') FROM audit_log WHERE generation = $1`,
		`SELECT count(*)::text || ':' || COALESCE(md5(string_agg(md5(concat_ws('|', aggregate_type, aggregate_id,
			aggregate_version::text, event_id::text, global_position::text, occurred_at::text, actor, project_id,
			correlation_id, event_type, array_to_string(object_kinds, ','), array_to_string(object_ids, ','))), ''
			ORDER BY aggregate_type, aggregate_id, aggregate_version)), '') FROM audit_events WHERE generation = $1`,
		`SELECT count(*)::text || ':' || COALESCE(md5(string_agg(md5(concat_ws('|', object_id, aggregate_type,
			aggregate_id, object_kind)), '' ORDER BY object_id, aggregate_type, aggregate_id)), '')
			FROM audit_objects WHERE generation = $1`,
		`SELECT count(*)::text || ':' || COALESCE(md5(string_agg(md5(concat_ws('|', resource_type, resource_id, project_id,
			loadbalancer_id, active_from::text, active_until::text)), '' ORDER BY resource_type, resource_id)), '')
			FROM billing_usage WHERE generation = $1`)
	h := md5.New()
	for _, q := range parts {
		var s string
		if err := p.pool.QueryRow(ctx, q, gen).Scan(&s); err != nil {
			return "", fmt.Errorf("checksum of generation %d: %w", gen, err)
		}
		h.Write([]byte(s))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
