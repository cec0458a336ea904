// Package aggregates holds what every aggregate shares: the decision errors
// (with Octavia's fault strings and the HTTP status they map to), tri-state
// update fields and the environment a decision runs in.
//
// Each aggregate lives in its own subpackage (loadbalancer, amphora, project,
// catalog). Aggregates are pure: Decide(state, command, env) returns events or
// an error, and Apply(event) evolves the state. No I/O, no clock, no random
// ids except through Env.
package aggregates

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Kind classifies a decision error. The gateway maps each kind to one HTTP
// status in one place.
type Kind int

const (
	// KindInvalid is bad input: 400.
	KindInvalid Kind = iota + 1
	// KindNotFound is a missing object named in the URL: 404.
	KindNotFound
	// KindConflict is an immutable or pending object, a duplicate, an object in use: 409.
	KindConflict
	// KindQuota is an exceeded quota: 403 (Octavia's QuotaException).
	KindQuota
	// KindForbidden is a policy refusal: 403.
	KindForbidden
	// KindNotImplemented is an option the provider does not support: 501.
	KindNotImplemented
)

// HTTPStatus returns the status code Octavia answers for the kind.
func (k Kind) HTTPStatus() int {
	switch k {
	case KindInvalid:
		return http.StatusBadRequest
	case KindNotFound:
		return http.StatusNotFound
	case KindConflict:
		return http.StatusConflict
	case KindQuota, KindForbidden:
		return http.StatusForbidden
	case KindNotImplemented:
		return http.StatusNotImplemented
	default:
		return http.StatusInternalServerError
	}
}

func (k Kind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindNotFound:
		return "not found"
	case KindConflict:
		return "conflict"
	case KindQuota:
		return "quota exceeded"
	case KindForbidden:
		return "forbidden"
	case KindNotImplemented:
		return "not implemented"
	default:
		return "unknown"
	}
}

// Error is a refused command. Message is Octavia's faultstring, word for word
// where Octavia has one (for example "Load Balancer 1234 is immutable and
// cannot be updated.").
type Error struct {
	Kind    Kind
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is(err, &Error{Kind: k}) match any error of that kind.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Message == "" && t.Kind == e.Kind
}

// Errorf builds a decision error of a kind.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Sentinels for errors.Is on the kind only.
var (
	ErrInvalid        = &Error{Kind: KindInvalid}
	ErrNotFound       = &Error{Kind: KindNotFound}
	ErrConflict       = &Error{Kind: KindConflict}
	ErrQuota          = &Error{Kind: KindQuota}
	ErrForbidden      = &Error{Kind: KindForbidden}
	ErrNotImplemented = &Error{Kind: KindNotImplemented}
)

// Field is one attribute of an update command with three states: absent
// (Set false: keep the current value), null (Set and Null: reset to the
// default or clear) and a value.
type Field[T any] struct {
	Set   bool
	Null  bool
	Value T
}

// Value returns a Field holding v.
func Value[T any](v T) Field[T] { return Field[T]{Set: true, Value: v} }

// Null returns a Field that clears the attribute.
func Null[T any]() Field[T] { return Field[T]{Set: true, Null: true} }

// Env is what a decision may depend on besides state and command.
type Env struct {
	// Now is the time of the decision.
	Now time.Time
	// NewID returns a new UUID string for objects the command creates
	// without a client-chosen id.
	NewID func() string
}
