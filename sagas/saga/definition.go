package saga

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Outputs are the ids a step produced (a port id, a server id). They are
// recorded in SagaStepCompleted and folded into the typed state again when
// the saga is resumed, so they must be all a later step needs.
type Outputs = map[string]string

// Step is one side effect of a saga with its undo. Do and Compensate must be
// idempotent: Do is re-run after a crash between "step started" and "step
// completed", so it must first look for what an earlier run may have made
// (find mode) and only then create; Compensate treats not-found as done.
type Step[S any] struct {
	// Name is unique within the saga's plan and part of the recorded
	// history: renaming a step breaks resuming sagas that ran it.
	Name string
	// Do performs the side effect and returns the produced ids.
	Do func(ctx context.Context, s *S) (Outputs, error)
	// Apply folds Do's outputs into the state, after Do and on replay. Nil
	// ignores the outputs.
	Apply func(s *S, out Outputs)
	// Compensate undoes the step. It also runs for a step that was started
	// but never completed (the side effect may have happened), so it must
	// work from deterministic names when Apply never ran. Nil means there
	// is nothing to undo.
	Compensate func(ctx context.Context, s *S) error
	// Resources names what is left behind when compensation gives up; it
	// is recorded in SagaCompensationFailed for the cleanup process.
	Resources func(s *S) map[string]string
	// Timeout bounds how long the step may keep answering RetryAfter,
	// measured from its first start (0: the runner's default).
	Timeout time.Duration
	// MaxAttempts bounds transient failures (0: the runner's default).
	MaxAttempts int
}

// Definition is a saga type: typed state and the ordered steps.
type Definition[S any] struct {
	// Name is the saga type recorded in SagaStarted ("createlb").
	Name string
	// Plan returns the ordered steps for a saga. It is called with the
	// state decoded from the saga's input, before any output is applied,
	// and must depend on the input only.
	Plan func(s *S) []Step[S]
	// OnFailed runs after compensation, before SagaFailed (for example to
	// send FailProvisioning). It must be idempotent; it is retried like a
	// compensation.
	OnFailed func(ctx context.Context, s *S, reason string) error
}

// Flow is a saga type the runner can execute. *Definition[S] implements it.
type Flow interface {
	FlowName() string
	execute(ctx context.Context, x *execution) error
	cleanup(ctx context.Context, x *execution) error
}

// FlowName returns the saga type name.
func (d *Definition[S]) FlowName() string { return d.Name }

// Info describes the step being run; Do and Compensate read it from their
// context with InfoFrom.
type Info struct {
	SagaID        string
	SagaType      string
	SubjectID     string
	CorrelationID string
	ProjectID     string
	Step          string
	// Attempt counts the starts of this step, from 1.
	Attempt int
	// Resumed is true when an earlier start of this step has no recorded
	// outcome (a worker died in it, or it asked to be re-run later): the
	// side effect may already have happened, so look before creating.
	Resumed bool
	Logger  *slog.Logger
}

type infoKey struct{}

// InfoFrom returns the step information of a context passed to Do or
// Compensate.
func InfoFrom(ctx context.Context) Info {
	in, _ := ctx.Value(infoKey{}).(Info)
	if in.Logger == nil {
		in.Logger = slog.Default()
	}
	return in
}

func withInfo(ctx context.Context, in Info) context.Context {
	return context.WithValue(ctx, infoKey{}, in)
}

func (d *Definition[S]) plan(s *S) (map[string]*Step[S], []*Step[S], error) {
	steps := d.Plan(s)
	byName := make(map[string]*Step[S], len(steps))
	list := make([]*Step[S], 0, len(steps))
	for i := range steps {
		st := &steps[i]
		if st.Name == "" || st.Do == nil {
			return nil, nil, fmt.Errorf("saga %s: step %d has no name or Do", d.Name, i)
		}
		if byName[st.Name] != nil {
			return nil, nil, fmt.Errorf("saga %s: duplicate step %q", d.Name, st.Name)
		}
		byName[st.Name] = st
		list = append(list, st)
	}
	return byName, list, nil
}
