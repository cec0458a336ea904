package saga

import (
	"errors"
	"fmt"
	"time"
)

// Error kinds. Steps and compensations return errors that wrap one of them
// (or RetryAfter). An error that wraps neither counts as transient until the
// step's attempt budget runs out; then it is treated as permanent.
var (
	// ErrTransient marks a failure worth retrying: timeouts, 5xx, conflicts.
	ErrTransient = errors.New("transient failure")
	// ErrPermanent marks a failure retrying cannot fix: the saga compensates.
	ErrPermanent = errors.New("permanent failure")
	// ErrLeaseLost means another worker took the saga over; this worker
	// must stop working on it at once.
	ErrLeaseLost = errors.New("saga lease lost")
	// ErrUnknownStep means the recorded history names a step the saga's
	// plan does not have (the plan changed under a running saga).
	ErrUnknownStep = errors.New("unknown saga step")
)

// Transient wraps err as a transient failure.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrTransient, err)
}

// Permanent wraps err as a permanent failure.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}

// RetryAfterError is returned by a step that waits on the outside world
// (a server still building). It is not a failure: the runner parks the saga
// and re-runs the step after Delay, without holding a goroutine.
type RetryAfterError struct {
	Delay  time.Duration
	Reason string
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("retry after %s: %s", e.Delay, e.Reason)
}

// RetryAfter asks the runner to re-run the step after d.
func RetryAfter(d time.Duration, reason string) error {
	return &RetryAfterError{Delay: d, Reason: reason}
}

// Kind classifies an error returned by a step.
type Kind int

// Error kinds.
const (
	KindNone Kind = iota
	KindTransient
	KindPermanent
	KindRetryAfter
)

func (k Kind) String() string {
	switch k {
	case KindTransient:
		return "transient"
	case KindPermanent:
		return "permanent"
	case KindRetryAfter:
		return "retry_after"
	default:
		return "none"
	}
}

// Classify sorts err into a kind. Unknown errors are transient.
func Classify(err error) Kind {
	var ra *RetryAfterError
	switch {
	case err == nil:
		return KindNone
	case errors.As(err, &ra):
		return KindRetryAfter
	case errors.Is(err, ErrPermanent):
		return KindPermanent
	default:
		return KindTransient
	}
}
