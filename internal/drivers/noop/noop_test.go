package noop_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ostia/ostia/internal/drivers/noop"
	"github.com/ostia/ostia/sagas/ports"
)

func TestFaultsAndRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := noop.New(noop.Config{})
	boom := errors.New("boom")
	c.Inject(noop.Fault{Op: noop.OpCreatePort, Call: 2, Err: boom})
	c.Inject(noop.Fault{Op: noop.OpCreatePort, Call: 3, Err: boom, After: true})
	if _, err := c.CreatePort(ctx, ports.PortSpec{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreatePort(ctx, ports.PortSpec{Name: "b"}); !errors.Is(err, boom) {
		t.Fatalf("call 2: %v", err)
	}
	if _, err := c.CreatePort(ctx, ports.PortSpec{Name: "c"}); !errors.Is(err, boom) {
		t.Fatalf("call 3: %v", err)
	}
	if got := len(c.Ports()); got != 2 {
		t.Fatalf("ports %d: a fault before the effect creates nothing, one after it does", got)
	}
	if _, err := c.CreatePort(ctx, ports.PortSpec{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if d := c.Duplicates(); len(d) != 1 || d[0] != "port a x2" {
		t.Fatalf("duplicates %v", d)
	}
	if _, err := c.GetServer(ctx, "nope"); !errors.Is(err, ports.ErrNotFound) {
		t.Fatalf("get missing server: %v", err)
	}
	if c.Calls(noop.OpCreatePort) != 4 {
		t.Fatal("calls not counted")
	}
}
