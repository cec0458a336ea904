// Package aggregatetest holds the given/when/then helpers the aggregate
// tests share: replay the given events, run a decision, and compare the
// events (with proto.Equal) or the refusal (kind and faultstring).
package aggregatetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
)

// T0 is the fixed time of every test decision.
var T0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Applier is an aggregate state.
type Applier interface {
	Apply(payload proto.Message) error
}

// Env returns a decision environment with the clock fixed at T0 and ids
// "00000000-0000-4000-8000-000000000001", "...002", ... in order. Each call
// returns a fresh sequence, so parallel tests do not share a counter.
func Env() aggregates.Env {
	n := 0
	return aggregates.Env{
		Now: T0,
		NewID: func() string {
			n++
			return ID(n)
		},
	}
}

// ID returns the n-th id that Env's generator hands out.
func ID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// Given applies events to s in order and fails the test if one is refused.
func Given[S Applier](t testing.TB, s S, events ...proto.Message) S {
	t.Helper()
	for i, e := range events {
		if err := s.Apply(e); err != nil {
			t.Fatalf("given event %d (%T): %v", i, e, err)
		}
	}
	return s
}

// ThenEvents fails the test unless err is nil and got equals want
// element by element (proto.Equal).
func ThenEvents(t testing.TB, got []proto.Message, err error, want ...proto.Message) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if !EqualEvents(got, want) {
		t.Fatalf("events differ\n got: %s\nwant: %s", Format(got), Format(want))
	}
}

// ThenError fails the test unless err is an *aggregates.Error of kind with
// exactly the faultstring msg (msg "" checks the kind only).
func ThenError(t testing.TB, err error, kind aggregates.Kind, msg string) {
	t.Helper()
	var e *aggregates.Error
	if !errors.As(err, &e) {
		t.Fatalf("want %v error %q, got %v", kind, msg, err)
	}
	if e.Kind != kind || (msg != "" && e.Message != msg) {
		t.Fatalf("want %v error %q, got %v error %q", kind, msg, e.Kind, e.Message)
	}
}

// EqualEvents reports whether two event lists are equal with proto.Equal.
func EqualEvents(a, b []proto.Message) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] == nil || b[i] == nil {
			if a[i] != b[i] {
				return false
			}
			continue
		}
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// Format renders events for failure messages.
func Format(events []proto.Message) string {
	var b strings.Builder
	for i, e := range events {
		if e == nil {
			fmt.Fprintf(&b, "\n  [%d] <nil>", i)
			continue
		}
		fmt.Fprintf(&b, "\n  [%d] %s{%s}", i, e.ProtoReflect().Descriptor().Name(), prototext.MarshalOptions{}.Format(e))
	}
	return b.String()
}

// ApplyAll applies events to s and fails the test on the first refusal.
func ApplyAll(t testing.TB, s Applier, events []proto.Message) {
	t.Helper()
	for i, e := range events {
		if err := s.Apply(e); err != nil {
			t.Fatalf("apply decided event %d (%T): %v", i, e, err)
		}
	}
}
