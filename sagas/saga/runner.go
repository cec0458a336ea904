package saga

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	Store *Store
	// Flows are the saga types this runner executes.
	Flows []Flow
	// WorkerID identifies this runner in leases; unique among runners
	// (default host name plus a random suffix).
	WorkerID string
	// Concurrency bounds how many sagas run at once (default 32).
	Concurrency int
	// PollInterval is how often due sagas are looked for (default 500 ms).
	// Kick and parked sagas' timers wake the runner earlier.
	PollInterval time.Duration
	// LeaseTTL is how long a saga stays with a worker that stopped
	// renewing; a dead worker's sagas are taken over after it (default 15 s).
	LeaseTTL time.Duration
	// CleanupInterval is how often failed compensations are retried
	// (default 30 s).
	CleanupInterval time.Duration
	// MaxAttempts bounds transient failures of a step (default 5).
	MaxAttempts int
	// CompensationAttempts bounds tries of one compensation before it is
	// recorded as failed and left to cleanup (default 5).
	CompensationAttempts int
	// MinBackoff and MaxBackoff bound the wait before a retry (defaults
	// 200 ms and 30 s).
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// StepTimeout is a step's deadline from its first start, waiting
	// included, unless the step sets its own (default 10 min).
	StepTimeout time.Duration
	// CheckpointInterval: before a step runs, the progress not recorded
	// yet is committed once this long has passed since the last commit.
	// Steps quicker than this share a commit; a crash re-runs at most that
	// much work (steps are idempotent). Default 20 ms; negative commits
	// before every step.
	CheckpointInterval time.Duration
	// Yield, when set, is called before each step runs; it may hold the
	// step back for a while (qos.Gate.Yield: API requests first).
	Yield func(ctx context.Context)
	// CallTimeout bounds one call of Do or Compensate (default 2 min).
	CallTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics receives the runner's metrics; nil registers none.
	Metrics prometheus.Registerer
}

func (c *RunnerConfig) setDefaults() {
	if c.WorkerID == "" {
		host, _ := os.Hostname()
		c.WorkerID = host + "-" + uuid.NewString()[:8]
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
	def(&c.PollInterval, 500*time.Millisecond)
	def(&c.LeaseTTL, 15*time.Second)
	def(&c.CleanupInterval, 30*time.Second)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.CompensationAttempts <= 0 {
		c.CompensationAttempts = 5
	}
	def(&c.MinBackoff, 200*time.Millisecond)
	def(&c.MaxBackoff, 30*time.Second)
	def(&c.StepTimeout, 10*time.Minute)
	def(&c.CallTimeout, 2*time.Minute)
	switch {
	case c.CheckpointInterval == 0:
		c.CheckpointInterval = 20 * time.Millisecond
	case c.CheckpointInterval < 0:
		c.CheckpointInterval = 0
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem of the configuration.
func (c RunnerConfig) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("saga runner: Store is required"))
	}
	if len(c.Flows) == 0 {
		errs = append(errs, errors.New("saga runner: no Flows"))
	}
	seen := map[string]bool{}
	for _, f := range c.Flows {
		if f == nil || f.FlowName() == "" {
			errs = append(errs, errors.New("saga runner: a flow has no name"))
			continue
		}
		if seen[f.FlowName()] {
			errs = append(errs, fmt.Errorf("saga runner: flow %q registered twice", f.FlowName()))
		}
		seen[f.FlowName()] = true
	}
	return errors.Join(errs...)
}

// Runner executes sagas: it leases due sagas from sagas_index (new ones,
// parked ones whose time came, and those of workers whose lease expired),
// resumes each from its recorded history and runs it until it completes,
// fails, or parks (waiting or backing off). It renews the leases of the
// sagas it runs and, on a slower tick, retries failed compensations.
type Runner struct {
	cfg     RunnerConfig
	flows   map[string]Flow
	log     *slog.Logger
	metrics *metrics
	kick    chan struct{}

	mu     sync.Mutex
	active map[string]bool
}

// NewRunner checks the configuration and registers the metrics.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Metrics, cfg.WorkerID)
	if err != nil {
		return nil, fmt.Errorf("saga runner: %w", err)
	}
	r := &Runner{cfg: cfg, flows: map[string]Flow{}, log: cfg.Logger.With("worker", cfg.WorkerID), metrics: m,
		kick: make(chan struct{}, 1), active: map[string]bool{}}
	for _, f := range cfg.Flows {
		r.flows[f.FlowName()] = f
	}
	return r, nil
}

// WorkerID returns the lease holder id of this runner.
func (r *Runner) WorkerID() string { return r.cfg.WorkerID }

// Kick makes the runner look for due sagas now.
func (r *Runner) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run executes sagas until ctx ends. Sagas being executed when ctx ends
// are abandoned where they are (as if the process died); their leases
// expire and another runner resumes them.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, r.cfg.Concurrency)
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.heartbeat(ctx)
	}()
	poll := time.NewTicker(r.cfg.PollInterval)
	defer poll.Stop()
	clean := time.NewTicker(r.cfg.CleanupInterval)
	defer clean.Stop()
	dispatch := func(cleanup bool) {
		free := r.cfg.Concurrency - len(slots)
		claims, err := r.cfg.Store.claim(ctx, r.cfg.WorkerID, r.cfg.LeaseTTL, free, cleanup)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("claim sagas failed", "err", err)
			}
			return
		}
		for _, c := range claims {
			slots <- struct{}{}
			r.setActive(c.id, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots; r.Kick() }()
				defer r.setActive(c.id, false)
				r.runOne(ctx, c, cleanup)
			}()
		}
	}
	dispatch(false)
	dispatch(true)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
			dispatch(false)
		case <-r.kick:
			dispatch(false)
		case <-clean.C:
			dispatch(true)
		}
	}
}

func (r *Runner) setActive(id string, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.active[id] = true
	} else {
		delete(r.active, id)
	}
}

func (r *Runner) heartbeat(ctx context.Context) {
	t := time.NewTicker(r.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		ids := make([]string, 0, len(r.active))
		for id := range r.active {
			ids = append(ids, id)
		}
		r.mu.Unlock()
		if err := r.cfg.Store.renew(ctx, r.cfg.WorkerID, ids, r.cfg.LeaseTTL); err != nil && ctx.Err() == nil {
			r.log.Warn("renew saga leases failed", "err", err)
		}
	}
}

// runOne executes one leased saga and gives the lease back.
func (r *Runner) runOne(ctx context.Context, c claimed, cleanup bool) {
	log := r.log.With("saga", c.sagaType, "saga_id", c.id)
	flow := r.flows[c.sagaType]
	if flow == nil {
		log.Error("no flow registered for saga type; leaving it")
		r.release(ctx, log, c.id, r.cfg.CleanupInterval, c.compAttempts)
		return
	}
	h, err := r.cfg.Store.load(ctx, c.id)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("load saga failed", "err", err)
			r.release(ctx, log, c.id, r.cfg.MinBackoff, c.compAttempts)
		}
		return
	}
	x := &execution{r: r, h: h, owner: r.cfg.WorkerID, compAttempts: c.compAttempts,
		log: log.With("lb_id", h.subject, "correlation_id", h.correlationID)}
	if h.open != "" {
		r.metrics.takeovers.Inc()
		x.log.Info("resuming a step started earlier without an outcome", "step", h.open)
	}
	r.metrics.inFlight.WithLabelValues(c.sagaType).Inc()
	defer r.metrics.inFlight.WithLabelValues(c.sagaType).Dec()
	if cleanup {
		err = flow.cleanup(ctx, x)
	} else {
		err = flow.execute(ctx, x)
	}
	switch {
	case errors.Is(err, errAbandoned) || ctx.Err() != nil:
		return
	case errors.Is(err, ErrLeaseLost):
		x.log.Info("saga taken over by another worker", "err", err)
		return
	case err != nil:
		x.log.Error("saga execution failed; will retry", "err", err)
		r.release(ctx, x.log, c.id, r.cfg.MaxBackoff, x.compAttempts)
	case x.out.parkFor > 0:
		r.release(ctx, x.log, c.id, x.out.parkFor, x.out.compAttempts)
		time.AfterFunc(x.out.parkFor, r.Kick)
	case x.h.failed && len(x.h.orphans()) > 0:
		r.release(ctx, x.log, c.id, r.cfg.CleanupInterval, 0)
	default:
		r.release(ctx, x.log, c.id, 0, 0)
	}
}

func (r *Runner) release(ctx context.Context, log *slog.Logger, id string, delay time.Duration, compAttempts int) {
	if err := r.cfg.Store.release(ctx, r.cfg.WorkerID, id, delay, compAttempts); err != nil && ctx.Err() == nil {
		log.Warn("release saga failed; its lease will expire", "err", err)
	}
}
