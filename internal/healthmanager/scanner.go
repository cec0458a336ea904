package healthmanager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/commands"
	"github.com/ostia/ostia/aggregates/handler"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/events"
)

// StateLoader replays an aggregate into a state; *handler.Handler
// implements it.
type StateLoader interface {
	Load(ctx context.Context, aggregateType, aggregateID string, st handler.State) (int64, error)
}

// ScannerConfig configures the stale-amphora Scanner.
type ScannerConfig struct {
	Pool     *pgxpool.Pool
	Commands *commands.Service
	Loader   StateLoader
	// HeartbeatTimeout: an amphora whose last counted heartbeat is older is
	// stale (default 60 s). CheckInterval is the scan period (default 3 s).
	HeartbeatTimeout time.Duration
	CheckInterval    time.Duration
	// FailoverThreshold: when at least this many amphorae are stale at
	// once, none is failed over (they are marked FAILOVER_STOPPED); 0 is off.
	FailoverThreshold int
	// MaxFailovers bounds failover requests per scan (default 10, like
	// failover_threads).
	MaxFailovers int
	// Owner identifies this health manager in claimed_by (default "health").
	Owner string
	// Logger defaults to slog.Default(); Metrics nil registers none.
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	Now     func() time.Time
}

// Scanner finds amphorae that stopped sending heartbeats and requests their
// failover. Several scanners (one per health manager) may run at once: an
// amphora is claimed with a conditional UPDATE before anything is done, so
// only one of them acts on it.
type Scanner struct {
	cfg     ScannerConfig
	log     *slog.Logger
	metrics *scannerMetrics
}

// NewScanner checks the configuration and registers the metrics.
func NewScanner(cfg ScannerConfig) (*Scanner, error) {
	var errs []error
	if cfg.Pool == nil {
		errs = append(errs, errors.New("missing database pool"))
	}
	if cfg.Commands == nil {
		errs = append(errs, errors.New("missing commands service"))
	}
	if cfg.Loader == nil {
		errs = append(errs, errors.New("missing state loader"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("healthmanager: scanner: %w", err)
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = 60 * time.Second
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = 3 * time.Second
	}
	if cfg.MaxFailovers <= 0 {
		cfg.MaxFailovers = 10
	}
	if cfg.Owner == "" {
		cfg.Owner = "health"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m, err := newScannerMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("healthmanager: scanner: %w", err)
	}
	return &Scanner{cfg: cfg, log: cfg.Logger.With(slog.String("component", "health-scanner"),
		slog.String("owner", cfg.Owner)), metrics: m}, nil
}

// Run scans every CheckInterval until ctx ends. Scan errors are logged.
func (s *Scanner) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := s.Scan(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("stale amphora scan failed", slog.Any("error", err))
		}
	}
}

// ScanResult tells what one scan did.
type ScanResult struct {
	Stale      int      // unclaimed amphorae past heartbeat_timeout
	Tripped    bool     // failover_threshold reached: nothing failed over
	Requested  []string // amphorae whose failover this scan requested
	Recovered  []string // FAILOVER_STOPPED amphorae fresh again, back to ALLOCATED
	Forgotten  []string // rows deleted (amphora gone)
	Contention int      // stale amphorae another health manager claimed first
}

// Scan runs one stale-amphora round (Octavia's health_check).
func (s *Scanner) Scan(ctx context.Context) (ScanResult, error) {
	var res ScanResult
	now := s.cfg.Now()
	expired := now.Add(-s.cfg.HeartbeatTimeout)

	if err := s.recover(ctx, expired, &res); err != nil {
		return res, err
	}
	if err := s.reap(ctx, &res); err != nil {
		return res, err
	}

	rows, err := s.cfg.Pool.Query(ctx, `SELECT amphora_id, failover_stopped FROM amphora_health
	  WHERE busy = false AND last_seen < $1`, expired)
	if err != nil {
		return res, fmt.Errorf("find stale amphorae: %w", err)
	}
	type staleRow struct {
		id      string
		stopped bool
	}
	stale, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (staleRow, error) {
		var x staleRow
		return x, r.Scan(&x.id, &x.stopped)
	})
	if err != nil {
		return res, fmt.Errorf("find stale amphorae: %w", err)
	}
	res.Stale = len(stale)
	s.metrics.stale.Set(float64(len(stale)))
	if len(stale) == 0 {
		return res, nil
	}

	if th := s.cfg.FailoverThreshold; th > 0 && len(stale) >= th {
		res.Tripped = true
		s.metrics.trips.Inc()
		s.log.Error("mass amphora failure suspected: stale amphorae reached failover_threshold; not failing over any",
			slog.Int("stale", len(stale)), slog.Int("failover_threshold", th))
		for _, r := range stale {
			if r.stopped {
				continue
			}
			if err := s.stopFailover(ctx, r.id); err != nil {
				s.log.Warn("marking amphora FAILOVER_STOPPED failed", slog.String("amphora_id", r.id), slog.Any("error", err))
			}
		}
		return res, nil
	}

	rand.Shuffle(len(stale), func(i, j int) { stale[i], stale[j] = stale[j], stale[i] })
	for _, r := range stale {
		if len(res.Requested) >= s.cfg.MaxFailovers || ctx.Err() != nil {
			break
		}
		claimed, err := s.claim(ctx, r.id, expired, now)
		if err != nil {
			return res, err
		}
		if !claimed {
			res.Contention++
			continue
		}
		cont, err := s.failover(ctx, r.id, &res)
		if err != nil {
			s.log.Error("failover request failed; claim released", slog.String("amphora_id", r.id), slog.Any("error", err))
		}
		if !cont {
			break
		}
	}
	return res, nil
}

// claim marks one stale amphora busy if nobody did yet.
func (s *Scanner) claim(ctx context.Context, id string, expired, now time.Time) (bool, error) {
	tag, err := s.cfg.Pool.Exec(ctx, `UPDATE amphora_health SET busy = true, claimed_by = $2, claimed_at = $3, updated_at = $3
	  WHERE amphora_id = $1 AND busy = false AND last_seen < $4`, id, s.cfg.Owner, now, expired)
	if err != nil {
		return false, fmt.Errorf("claim amphora %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

func (s *Scanner) release(ctx context.Context, id string) error {
	if _, err := s.cfg.Pool.Exec(ctx, `UPDATE amphora_health SET busy = false, claimed_by = '', claimed_at = NULL
	  WHERE amphora_id = $1 AND busy = true AND claimed_by = $2`, id, s.cfg.Owner); err != nil {
		return fmt.Errorf("release claim on amphora %s: %w", id, err)
	}
	return nil
}

// failover acts on a claimed amphora. It reports whether the scan may go on
// (false: the load balancer is busy, retry next scan, as Octavia does).
func (s *Scanner) failover(ctx context.Context, id string, res *ScanResult) (bool, error) {
	amp := amphora.New(id)
	if _, err := s.cfg.Loader.Load(ctx, events.AggregateAmphora, id, amp); err != nil {
		return true, errors.Join(fmt.Errorf("load amphora %s: %w", id, err), s.release(ctx, id))
	}
	if !amp.Exists() || amp.Status() == amphora.StatusDeleted {
		res.Forgotten = append(res.Forgotten, id)
		return true, forgetAmphorae(ctx, s.cfg.Pool, []string{id})
	}
	if st := amp.Status(); st != amphora.StatusAllocated && st != amphora.StatusFailoverStopped {
		s.log.Info("stale amphora not in service; not failing it over", slog.String("amphora_id", id), slog.String("status", st))
		return true, s.release(ctx, id)
	}
	lbID := amp.Amphora().GetLoadbalancerId()
	deferred := func() (bool, error) {
		s.log.Info("load balancer of stale amphora is busy; failover deferred to the next scan",
			slog.String("amphora_id", id), slog.String("loadbalancer_id", lbID))
		return false, s.release(ctx, id)
	}
	busy, err := s.lbBusy(ctx, lbID)
	if err != nil {
		return true, errors.Join(err, s.release(ctx, id))
	}
	if busy {
		return deferred()
	}
	m := events.Metadata{Actor: Actor, ProjectID: amp.Amphora().GetProjectId(), CorrelationID: "health-failover:" + id}
	// The load balancer is locked PENDING_UPDATE together with the
	// request, as Octavia's health manager does before its failover flow.
	_, err = s.cfg.Commands.FailoverStaleAmphora(ctx, m, id,
		fmt.Sprintf("no heartbeat for more than %s", s.cfg.HeartbeatTimeout))
	var ae *aggregates.Error
	switch {
	case err == nil:
		s.metrics.failovers.WithLabelValues("requested").Inc()
		res.Requested = append(res.Requested, id)
		s.log.Warn("stale amphora: failover requested", slog.String("amphora_id", id))
		return true, nil
	case errors.As(err, &ae) && ae.Kind == aggregates.KindConflict:
		if busy, lerr := s.lbBusy(ctx, lbID); lerr == nil && busy {
			return deferred() // the load balancer got busy since the check above
		}
		// already failing over or being deleted: keep the claim
		s.metrics.failovers.WithLabelValues("already").Inc()
		return true, nil
	case errors.As(err, &ae) && ae.Kind == aggregates.KindNotFound:
		res.Forgotten = append(res.Forgotten, id)
		return true, forgetAmphorae(ctx, s.cfg.Pool, []string{id})
	default:
		s.metrics.failovers.WithLabelValues("error").Inc()
		return true, errors.Join(fmt.Errorf("request failover of amphora %s: %w", id, err), s.release(ctx, id))
	}
}

// lbBusy reports whether load balancer lbID (none: "") is in a PENDING_*
// status, that is, running a flow a failover must not overlap.
func (s *Scanner) lbBusy(ctx context.Context, lbID string) (bool, error) {
	if lbID == "" {
		return false, nil
	}
	st := lb.New(lbID)
	if _, err := s.cfg.Loader.Load(ctx, events.AggregateLoadBalancer, lbID, st); err != nil {
		return false, fmt.Errorf("load load balancer %s: %w", lbID, err)
	}
	return st.Exists() && strings.HasPrefix(st.LoadBalancer().ProvisioningStatus, "PENDING"), nil
}

// stopFailover marks a stale amphora FAILOVER_STOPPED (mass-failure guard).
func (s *Scanner) stopFailover(ctx context.Context, id string) error {
	m := events.Metadata{Actor: Actor, CorrelationID: "health-failover-stopped:" + id}
	_, _, err := s.cfg.Commands.Amphora(ctx, m, id, amphora.ChangeStatus{Status: amphora.StatusFailoverStopped,
		Reason: "failover_threshold reached"})
	var ae *aggregates.Error
	if err != nil && !(errors.As(err, &ae) && (ae.Kind == aggregates.KindConflict || ae.Kind == aggregates.KindNotFound)) {
		return err
	}
	if _, err := s.cfg.Pool.Exec(ctx, `UPDATE amphora_health SET failover_stopped = true WHERE amphora_id = $1`, id); err != nil {
		return fmt.Errorf("mark amphora %s failover stopped: %w", id, err)
	}
	return nil
}

// recover moves FAILOVER_STOPPED amphorae that report again back to
// ALLOCATED.
func (s *Scanner) recover(ctx context.Context, expired time.Time, res *ScanResult) error {
	rows, err := s.cfg.Pool.Query(ctx, `SELECT amphora_id FROM amphora_health
	  WHERE failover_stopped = true AND busy = false AND last_seen >= $1`, expired)
	if err != nil {
		return fmt.Errorf("find recovered amphorae: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("find recovered amphorae: %w", err)
	}
	for _, id := range ids {
		m := events.Metadata{Actor: Actor, CorrelationID: "health-recovered:" + id}
		_, _, err := s.cfg.Commands.Amphora(ctx, m, id, amphora.ChangeStatus{Status: amphora.StatusAllocated,
			Reason: "heartbeats resumed"})
		var ae *aggregates.Error
		if err != nil && !(errors.As(err, &ae) && (ae.Kind == aggregates.KindConflict || ae.Kind == aggregates.KindNotFound)) {
			return fmt.Errorf("return amphora %s to ALLOCATED: %w", id, err)
		}
		if _, err := s.cfg.Pool.Exec(ctx, `UPDATE amphora_health SET failover_stopped = false WHERE amphora_id = $1`, id); err != nil {
			return fmt.Errorf("clear failover stop of amphora %s: %w", id, err)
		}
		res.Recovered = append(res.Recovered, id)
	}
	return nil
}

// reap deletes the rows of claimed amphorae that no longer exist, which
// drops their claim.
func (s *Scanner) reap(ctx context.Context, res *ScanResult) error {
	rows, err := s.cfg.Pool.Query(ctx, `SELECT amphora_id FROM amphora_health WHERE busy = true`)
	if err != nil {
		return fmt.Errorf("find claimed amphorae: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("find claimed amphorae: %w", err)
	}
	var gone []string
	for _, id := range ids {
		amp := amphora.New(id)
		if _, err := s.cfg.Loader.Load(ctx, events.AggregateAmphora, id, amp); err != nil {
			return fmt.Errorf("load amphora %s: %w", id, err)
		}
		if !amp.Exists() || amp.Status() == amphora.StatusDeleted {
			gone = append(gone, id)
		}
	}
	res.Forgotten = append(res.Forgotten, gone...)
	return forgetAmphorae(ctx, s.cfg.Pool, gone)
}
