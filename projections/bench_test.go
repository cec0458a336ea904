package projections_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/projections"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// seedLog appends a realistic log quickly: each load balancer's commands
// are decided in memory by the aggregate and its stream appended at once.
// It returns the number of events.
func seedLog(tb testing.TB, e *env, lbs, rounds int) int {
	tb.Helper()
	ctx := context.Background()
	cfg := lb.DefaultConfig()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	total := 0
	var streams []eventstore.Stream
	flush := func() {
		if len(streams) == 0 {
			return
		}
		if err := e.store.Append(ctx, streams...); err != nil {
			tb.Fatal(err)
		}
		streams = streams[:0]
	}
	for i := range lbs {
		id := uuid.NewString()
		st := lb.New(id)
		md := events.Metadata{ProjectID: fmt.Sprintf("proj-%d", i%20), CorrelationID: "req", Actor: "bench"}
		stream := eventstore.Stream{AggregateType: events.AggregateLoadBalancer, AggregateID: id, ProjectID: md.ProjectID}
		run := func(cmd lb.Command) {
			now = now.Add(time.Second)
			d, err := cfg.Decide(st, cmd, aggregates.Env{Now: now, NewID: uuid.NewString})
			if err != nil {
				tb.Fatalf("%T: %v", cmd, err)
			}
			for _, ev := range d.Events {
				if err := st.Apply(ev); err != nil {
					tb.Fatal(err)
				}
				env, err := e.reg.Envelope(uuid.NewString(), id, ev, md, now)
				if err != nil {
					tb.Fatal(err)
				}
				stream.Events = append(stream.Events, env)
			}
		}
		run(lb.CreateLoadBalancer{ID: id, ProjectID: md.ProjectID, Name: proto.String("bench"), VipSubnetID: "subnet",
			Listeners: []lb.ListenerSpec{{Protocol: "HTTP", ProtocolPort: 80, DefaultPool: &lb.PoolSpec{Name: proto.String("p"),
				Protocol: "HTTP", LBAlgorithm: "ROUND_ROBIN", Members: []lb.MemberSpec{
					{Address: "192.0.2.1", ProtocolPort: 80}, {Address: "192.0.2.2", ProtocolPort: 80}}}}}})
		run(lb.CompleteProvisioning{})
		pool := st.Pools()[0].Id
		member := st.Members(pool)[0].Id
		for r := range rounds {
			switch r % 3 {
			case 0:
				run(lb.UpdateMember{PoolID: pool, MemberID: member, Weight: aggregates.Value(int32(r % 10))})
				run(lb.CompleteProvisioning{})
			case 1:
				run(lb.SetOperatingStatuses{Changes: []*eventsv1.StatusChange{{Kind: eventsv1.ObjectKind_OBJECT_KIND_MEMBER,
					Id: member, OperatingStatus: []string{"ONLINE", "ERROR"}[r%2]}}})
			case 2:
				run(lb.UpdateLoadBalancer{Description: aggregates.Value(fmt.Sprintf("r%d", r))})
				run(lb.CompleteProvisioning{})
			}
		}
		total += len(stream.Events)
		streams = append(streams, stream)
		if len(streams) == 50 {
			flush()
		}
	}
	flush()
	return total
}

// BenchmarkReplay replays a log of about 74,000 events (1,000 load
// balancers) into a fresh generation and reports events/s: with the audit
// trail rebuilt, carried over from the current generation, or left out;
// without and with deleting the previous generation's rows.
func BenchmarkReplay(b *testing.B) {
	e := newEnv(b, false)
	n := seedLog(b, e, 1000, 36)
	b.Logf("log: %d events", n)
	for _, audit := range []string{"rebuilt", "carried", "none"} {
		b.Run("audit="+audit, func(b *testing.B) {
			var events int64
			var build, drop time.Duration
			cfg := projections.ReplayConfig{SkipAudit: audit != "rebuilt", CarryAudit: audit == "carried", KeepPrevious: true}
			if audit == "carried" {
				// The current generation needs an audit trail to carry.
				if _, err := e.proj.Replay(context.Background(), projections.ReplayConfig{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for range b.N {
				res, err := e.proj.Replay(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				events += res.Events
				build += res.Duration
				start := time.Now()
				if err := e.proj.DropGeneration(context.Background(), res.Previous); err != nil {
					b.Fatal(err)
				}
				drop += time.Since(start)
			}
			b.ReportMetric(float64(events)/build.Seconds(), "events/s")
			b.ReportMetric(float64(events)/(build+drop).Seconds(), "events/s-incl-drop")
		})
	}
}
