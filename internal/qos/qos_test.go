package qos_test

import (
	"context"
	"testing"
	"time"

	"github.com/ostia/ostia/internal/qos"
)

func TestNilGateNeverWaits(t *testing.T) {
	var g *qos.Gate
	g.Enter()()
	if d := g.Yield(context.Background()); d != 0 {
		t.Fatalf("nil gate waited %s", d)
	}
	if g.YieldFunc() != nil {
		t.Fatal("nil gate gives a yield hook")
	}
}

func TestYieldWaitsForTheForeground(t *testing.T) {
	g := qos.NewGate(20*time.Millisecond, 5*time.Second)
	// Idle: no wait.
	if d := g.Yield(context.Background()); d > 10*time.Millisecond {
		t.Fatalf("idle gate waited %s", d)
	}
	leave := g.Enter()
	done := make(chan time.Duration, 1)
	go func() { done <- g.Yield(context.Background()) }()
	select {
	case d := <-done:
		t.Fatalf("Yield returned after %s while a request was in flight", d)
	case <-time.After(100 * time.Millisecond):
	}
	leave()
	leave() // a second call changes nothing
	select {
	case d := <-done:
		if d < 100*time.Millisecond+20*time.Millisecond {
			t.Fatalf("Yield returned after %s: before the quiet period", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Yield still waiting after the request left")
	}
}

func TestYieldIsBounded(t *testing.T) {
	g := qos.NewGate(time.Millisecond, 50*time.Millisecond)
	defer g.Enter()()
	start := time.Now()
	g.Yield(context.Background())
	if d := time.Since(start); d < 50*time.Millisecond || d > time.Second {
		t.Fatalf("Yield waited %s with a request stuck in flight, want about 50ms", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d := g.Yield(ctx); d > 10*time.Millisecond {
		t.Fatalf("Yield ignored a cancelled context: %s", d)
	}
}
