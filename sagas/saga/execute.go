package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// errAbandoned means the worker is stopping (its context ended): the saga
// is left as it is, lease included, for another worker to take over.
var errAbandoned = errors.New("saga abandoned: worker stopping")

// outcome is how one execution of a saga ended.
type outcome struct {
	// parkFor > 0: the saga waits; run it again after this long.
	parkFor      time.Duration
	compAttempts int
	finished     bool
}

// execution is one worker's turn on one leased saga.
type execution struct {
	r            *Runner
	h            *history
	owner        string
	log          *slog.Logger
	compAttempts int
	out          outcome
}

func (x *execution) append(ctx context.Context, payloads ...proto.Message) error {
	return x.r.cfg.Store.append(ctx, x.h, x.owner, payloads...)
}

func (x *execution) park(d time.Duration, compAttempts int) {
	x.out = outcome{parkFor: max(d, time.Millisecond), compAttempts: compAttempts}
}

func (x *execution) info(step string) Info {
	return Info{SagaID: x.h.id, SagaType: x.h.sagaType, SubjectID: x.h.subject, CorrelationID: x.h.correlationID,
		ProjectID: x.h.projectID, Step: step, Logger: x.log.With("step", step)}
}

// state decodes the input and folds in the outputs of completed steps.
func (d *Definition[S]) state(x *execution) (*S, map[string]*Step[S], []*Step[S], error) {
	s := new(S)
	if len(x.h.input) > 0 {
		if err := json.Unmarshal(x.h.input, s); err != nil {
			return nil, nil, nil, Permanent(fmt.Errorf("decode input of saga %s: %w", x.h.id, err))
		}
	}
	byName, list, err := d.plan(s)
	if err != nil {
		return nil, nil, nil, Permanent(err)
	}
	for _, name := range x.h.completedOrder {
		st := byName[name]
		if st == nil {
			return nil, nil, nil, Permanent(fmt.Errorf("%w %q in saga %s", ErrUnknownStep, name, x.h.id))
		}
		if st.Apply != nil {
			st.Apply(s, x.h.steps[name].outputs)
		}
	}
	return s, byName, list, nil
}

func (d *Definition[S]) execute(ctx context.Context, x *execution) error {
	h := x.h
	if h.completed || h.failed {
		x.out.finished = true
		return nil
	}
	s, byName, plan, err := d.state(x)
	if err != nil {
		return err
	}
	if !h.compensating {
		done, err := d.forward(ctx, x, s, plan)
		if err != nil || !done {
			return err
		}
	}
	return d.compensate(ctx, x, s, byName)
}

// forward runs the steps not completed yet. It returns true when the saga
// must compensate.
func (d *Definition[S]) forward(ctx context.Context, x *execution, s *S, plan []*Step[S]) (bool, error) {
	cfg := x.r.cfg
	// pending holds recorded-to-be events (step starts and completions)
	// not committed yet. They are committed before a step runs once
	// CheckpointInterval has passed since the last commit, and always
	// before the saga parks, fails or ends. Quick steps (a noop driver,
	// a cached lookup) thus share one commit, while any step that takes
	// real time is checkpointed on its own. A crash loses at most the
	// uncommitted steps, which run again: steps are idempotent.
	var pending []proto.Message
	lastCommit := time.Now()
	flush := func(extra ...proto.Message) error {
		batch := append(pending, extra...)
		if len(batch) == 0 {
			return nil
		}
		if err := x.append(ctx, batch...); err != nil {
			return err
		}
		pending, lastCommit = nil, time.Now()
		return nil
	}
	for _, step := range plan {
		rec := x.h.steps[step.Name]
		if rec != nil && rec.completed {
			continue
		}
		info := x.info(step.Name)
		timeout := cfg.StepTimeout
		if step.Timeout > 0 {
			timeout = step.Timeout
		}
		maxAttempts := cfg.MaxAttempts
		if step.MaxAttempts > 0 {
			maxAttempts = step.MaxAttempts
		}
		now := cfg.Store.now()
		if rec != nil && rec.starts > 0 && now.Sub(rec.firstStarted) > timeout {
			return true, d.fail(ctx, x, pending, step.Name, rec.starts, fmt.Sprintf("step %s did not finish within %s", step.Name, timeout))
		}
		info.Resumed = x.h.open == step.Name
		if rec != nil {
			info.Attempt = rec.starts + 1
		} else {
			info.Attempt = 1
		}
		// The previous step's completion is recorded together with this
		// step's start: one commit per step at most, fewer for quick steps.
		pending = append(pending, &eventsv1.SagaStepStarted{Step: step.Name, Attempt: int32(info.Attempt)})
		if time.Since(lastCommit) >= cfg.CheckpointInterval {
			if err := flush(); err != nil {
				return false, err
			}
		}
		if cfg.Yield != nil {
			cfg.Yield(ctx)
		}
		start := time.Now()
		callCtx, cancel := context.WithTimeout(withInfo(ctx, info), cfg.CallTimeout)
		out, err := step.Do(callCtx, s)
		cancel()
		if ctx.Err() != nil {
			return false, errAbandoned
		}
		kind := Classify(err)
		x.r.metrics.observeStep(x.h.sagaType, step.Name, kind, time.Since(start))
		switch kind {
		case KindNone:
			pending = append(pending, &eventsv1.SagaStepCompleted{Step: step.Name, Outputs: out})
			if step.Apply != nil {
				step.Apply(s, out)
			}
			info.Logger.Debug("step completed", "attempt", info.Attempt, "outputs", out)
		case KindRetryAfter:
			var ra *RetryAfterError
			errors.As(err, &ra)
			if err := flush(); err != nil {
				return false, err
			}
			rec = x.h.steps[step.Name]
			if cfg.Store.now().Sub(rec.firstStarted)+ra.Delay > timeout {
				return true, d.fail(ctx, x, nil, step.Name, info.Attempt,
					fmt.Sprintf("step %s still waiting after %s: %s", step.Name, timeout, ra.Reason))
			}
			info.Logger.Debug("step waiting", "attempt", info.Attempt, "retry_after", ra.Delay, "reason", ra.Reason)
			x.park(ra.Delay, 0)
			return false, nil
		case KindTransient:
			failures := 1
			if rec != nil {
				failures = rec.transientFailures + 1
			}
			if failures >= maxAttempts {
				return true, d.fail(ctx, x, pending, step.Name, info.Attempt,
					fmt.Sprintf("step %s failed %d times: %v", step.Name, failures, err))
			}
			if err := flush(&eventsv1.SagaStepFailed{Step: step.Name, Error: err.Error(), Attempt: int32(info.Attempt)}); err != nil {
				return false, err
			}
			delay := backoff(cfg.MinBackoff, cfg.MaxBackoff, failures)
			info.Logger.Warn("step failed; will retry", "attempt", info.Attempt, "err", err, "retry_in", delay)
			x.park(delay, 0)
			return false, nil
		case KindPermanent:
			return true, d.fail(ctx, x, pending, step.Name, info.Attempt, fmt.Sprintf("step %s: %v", step.Name, err))
		}
	}
	// The last step's completion and the saga's end in one commit.
	outputs := mergedOutputs(x.h)
	for _, p := range pending {
		if c, ok := p.(*eventsv1.SagaStepCompleted); ok {
			for k, v := range c.Outputs {
				outputs[c.Step+"."+k] = v
			}
		}
	}
	if err := x.append(ctx, append(pending, &eventsv1.SagaCompleted{Outputs: outputs})...); err != nil {
		return false, err
	}
	x.out.finished = true
	x.r.metrics.finished(x.h.sagaType, StatusCompleted)
	x.log.Info("saga completed", "version", x.h.version)
	return false, nil
}

// fail records a permanent failure of step, after the pending
// (uncommitted) starts and completions so that compensation sees every step
// that ran.
func (d *Definition[S]) fail(ctx context.Context, x *execution, pending []proto.Message, step string, attempt int, reason string) error {
	x.r.metrics.stepFailure(x.h.sagaType, step, KindPermanent)
	x.log.Warn("saga step failed permanently; compensating", "step", step, "attempt", attempt, "reason", reason)
	return x.append(ctx, append(pending,
		&eventsv1.SagaStepFailed{Step: step, Error: reason, Permanent: true, Attempt: int32(attempt)},
		&eventsv1.SagaCompensationStarted{Reason: reason})...)
}

// compensate undoes every started step in reverse order of first start,
// then runs OnFailed and records SagaFailed.
func (d *Definition[S]) compensate(ctx context.Context, x *execution, s *S, byName map[string]*Step[S]) error {
	cfg := x.r.cfg
	order := slices.Clone(x.h.order)
	slices.Reverse(order)
	for _, name := range order {
		rec := x.h.steps[name]
		step := byName[name]
		if step == nil {
			return Permanent(fmt.Errorf("%w %q in saga %s", ErrUnknownStep, name, x.h.id))
		}
		if step.Compensate == nil || rec.compensated || rec.compFailed {
			continue
		}
		info := x.info(name)
		start := time.Now()
		callCtx, cancel := context.WithTimeout(withInfo(ctx, info), cfg.CallTimeout)
		err := step.Compensate(callCtx, s)
		cancel()
		if ctx.Err() != nil {
			return errAbandoned
		}
		x.r.metrics.observeStep(x.h.sagaType, name+".compensate", Classify(err), time.Since(start))
		if err == nil {
			if err := x.append(ctx, &eventsv1.SagaStepCompensated{Step: name}); err != nil {
				return err
			}
			x.compAttempts = 0
			continue
		}
		attempts := x.compAttempts + 1
		if Classify(err) != KindPermanent && attempts < cfg.CompensationAttempts {
			delay := backoff(cfg.MinBackoff, cfg.MaxBackoff, attempts)
			info.Logger.Warn("compensation failed; will retry", "attempt", attempts, "err", err, "retry_in", delay)
			x.park(delay, attempts)
			return nil
		}
		var res map[string]string
		if step.Resources != nil {
			res = step.Resources(s)
		}
		info.Logger.Error("compensation failed; resources left for cleanup", "attempts", attempts, "err", err, "resources", res)
		x.r.metrics.compensationFailed(x.h.sagaType, name)
		if err := x.append(ctx, &eventsv1.SagaCompensationFailed{Step: name, Error: err.Error(), Resources: res}); err != nil {
			return err
		}
		x.compAttempts = 0
	}
	if d.OnFailed != nil {
		err := d.OnFailed(withInfo(ctx, x.info("on_failed")), s, x.h.reason)
		if ctx.Err() != nil {
			return errAbandoned
		}
		if err != nil {
			attempts := x.compAttempts + 1
			if attempts < cfg.CompensationAttempts {
				x.log.Warn("failure handler failed; will retry", "attempt", attempts, "err", err)
				x.park(backoff(cfg.MinBackoff, cfg.MaxBackoff, attempts), attempts)
				return nil
			}
			x.log.Error("failure handler failed; giving up", "attempts", attempts, "err", err)
		}
	}
	if err := x.append(ctx, &eventsv1.SagaFailed{Reason: x.h.reason}); err != nil {
		return err
	}
	x.out.finished = true
	x.r.metrics.finished(x.h.sagaType, StatusFailed)
	x.log.Warn("saga failed", "reason", x.h.reason, "orphaned_steps", x.h.orphans())
	return nil
}

// cleanup retries the compensations that failed before. Each success is
// recorded as SagaStepCompensated; the index row stops needing cleanup
// when none is left.
func (d *Definition[S]) cleanup(ctx context.Context, x *execution) error {
	s, byName, _, err := d.state(x)
	if err != nil {
		return err
	}
	for _, name := range x.h.orphans() {
		step := byName[name]
		if step == nil || step.Compensate == nil {
			continue
		}
		info := x.info(name)
		err := step.Compensate(withInfo(ctx, info), s)
		if ctx.Err() != nil {
			return errAbandoned
		}
		if err != nil {
			info.Logger.Warn("cleanup: compensation still failing", "err", err)
			x.r.metrics.cleanupFailed(x.h.sagaType, name)
			continue
		}
		if err := x.append(ctx, &eventsv1.SagaStepCompensated{Step: name}); err != nil {
			return err
		}
		info.Logger.Info("cleanup: orphaned resources removed")
	}
	if len(x.h.orphans()) > 0 {
		x.park(x.r.cfg.CleanupInterval, 0)
	} else {
		x.out.finished = true
	}
	return nil
}

func mergedOutputs(h *history) map[string]string {
	out := map[string]string{}
	for _, name := range h.completedOrder {
		for k, v := range h.steps[name].outputs {
			out[name+"."+k] = v
		}
	}
	return maps.Clone(out)
}

// backoff is min·2^(n-1), capped at max.
func backoff(minD, maxD time.Duration, n int) time.Duration {
	d := minD
	for i := 1; i < n && d < maxD; i++ {
		d *= 2
	}
	return min(d, maxD)
}
