// Package qos lets background work yield to foreground requests when both
// run in one process on few cores (`ostia up`): while API writes are being
// served, the saga runner holds its next step back for a short, bounded
// time, so an operator's request is not slowed down by the flows of the
// requests before it. Nothing is dropped or reordered; background work is
// only delayed, never by more than MaxWait per step.
package qos

import (
	"context"
	"sync"
	"time"
)

// Gate tracks foreground requests in flight. A nil *Gate is valid and never
// makes anyone wait. It is safe for concurrent use.
type Gate struct {
	quiet, maxWait time.Duration
	now            func() time.Time

	mu        sync.Mutex
	inflight  int
	lastLeave time.Time
	changed   chan struct{} // closed and replaced when the last request leaves
}

// NewGate returns a gate: Yield waits until no foreground request has been
// in flight for quiet (back-to-back requests count as one busy period), but
// never longer than maxWait.
func NewGate(quiet, maxWait time.Duration) *Gate {
	return &Gate{quiet: quiet, maxWait: maxWait, now: time.Now, changed: make(chan struct{})}
}

// Enter marks a foreground request in flight; call the returned function
// when it is done.
func (g *Gate) Enter() (leave func()) {
	if g == nil {
		return func() {}
	}
	g.mu.Lock()
	g.inflight++
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.inflight--
			g.lastLeave = g.now()
			if g.inflight == 0 {
				close(g.changed)
				g.changed = make(chan struct{})
			}
		})
	}
}

// YieldFunc is Yield as the hook background loops take
// (saga.RunnerConfig, messaging.ConsumerConfig, relay.Config): nil for a
// nil gate, which never makes anyone wait.
func (g *Gate) YieldFunc() func(context.Context) {
	if g == nil {
		return nil
	}
	return func(ctx context.Context) { g.Yield(ctx) }
}

// Yield waits until the foreground has been quiet for the gate's quiet
// period, at most MaxWait, or until ctx ends. It reports how long it waited.
func (g *Gate) Yield(ctx context.Context) time.Duration {
	if g == nil {
		return 0
	}
	start := g.now()
	deadline := start.Add(g.maxWait)
	for {
		g.mu.Lock()
		busy := g.inflight > 0
		quietFor := g.now().Sub(g.lastLeave)
		changed := g.changed
		g.mu.Unlock()
		now := g.now()
		if (!busy && quietFor >= g.quiet) || !now.Before(deadline) {
			return now.Sub(start)
		}
		wait := deadline.Sub(now)
		if !busy {
			wait = min(wait, g.quiet-quietFor)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return g.now().Sub(start)
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}
