package projections_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/messaging"
	"github.com/ostia/ostia/internal/relay"
	"github.com/ostia/ostia/internal/relay/relaytest"
	"github.com/ostia/ostia/internal/testkit"
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
// without and with deleting the previous generation's rows. It also reports
// the replay's CPU time (Go, and the PostgreSQL backends serving it) and
// the rate that CPU time allows on two otherwise idle cores (reportCPU),
// since wall-clock rates on a shared machine mostly measure the other load.
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
			var goCPU, pgCPU time.Duration
			b.ResetTimer()
			for range b.N {
				cpu := startCPU(e)
				res, err := e.proj.Replay(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				g, pg := cpu.stop()
				goCPU += g
				pgCPU += pg
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
			reportCPU(b, events, goCPU, pgCPU)
		})
	}
}

// BenchmarkProjectionLag measures the projection lag under a steady write
// load: commands at OSTIA_PROJ_RATE per second (default 200) for
// OSTIA_PROJ_SECONDS (default 10) through the command service, published by
// the relay to the embedded broker and applied by the projection consumer
// alone (no inline path). Lag is from the event's occurred_at to the
// consumer's commit of its read-model change. One iteration is one run
// (use -benchtime=1x).
func BenchmarkProjectionLag(b *testing.B) {
	rate := envIntOr("OSTIA_PROJ_RATE", 200)
	secs := envIntOr("OSTIA_PROJ_SECONDS", 10)
	for range b.N {
		h := relaytest.New(b, relaytest.Config{Partitions: 6})
		e := newEnvOn(b, h.Pool, false)
		h.StartRelay(relay.Config{HolderID: "relay-bench"})
		var mu sync.Mutex
		var lags []time.Duration
		// appended: when each event (aggregate/version) was committed.
		appended := map[string]time.Time{}
		inner := e.proj.Handler()
		c, err := e.proj.NewConsumer(messaging.ConsumerConfig{Brokers: h.Addrs(), Logger: quietLogger(),
			Handler: func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
				if err := inner(ctx, tx, env); err != nil {
					return err
				}
				key := fmt.Sprintf("%s/%d", env.GetAggregateId(), env.GetAggregateVersion())
				messaging.AfterCommit(ctx, func() {
					mu.Lock()
					if at, ok := appended[key]; ok {
						lags = append(lags, time.Since(at))
					}
					mu.Unlock()
				})
				return nil
			}})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		// A pool of load balancers to update round robin.
		var ids []string
		for i := range 50 {
			id := e.createLB(fmt.Sprintf("p%d", i%5))
			e.complete(id)
			ids = append(ids, id)
		}
		b.ResetTimer()
		start := time.Now()
		sent := 0
		for time.Since(start) < time.Duration(secs)*time.Second {
			id := ids[sent%len(ids)]
			for _, cmd := range []lb.Command{lb.UpdateLoadBalancer{Description: aggregates.Value(fmt.Sprintf("d%d", sent))},
				lb.CompleteProvisioning{Reason: "bench"}} {
				_, envs, err := e.svc.LoadBalancer(context.Background(), e.md, id, cmd)
				if err != nil {
					b.Fatal(err)
				}
				now := time.Now()
				mu.Lock()
				for _, env := range envs {
					appended[fmt.Sprintf("%s/%d", env.GetAggregateId(), env.GetAggregateVersion())] = now
				}
				mu.Unlock()
			}
			sent += 2
			if ahead := time.Duration(float64(sent)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
		elapsed := time.Since(start)
		testkit.Eventually(b, 60*time.Second, 50*time.Millisecond, func() bool { return e.lagging() == 0 }, "consumer did not catch up")
		b.StopTimer()
		_ = c.Close()
		mu.Lock()
		slices.Sort(lags)
		pct := func(p float64) time.Duration { return lags[min(len(lags)-1, int(p*float64(len(lags))))] }
		b.ReportMetric(float64(sent)/elapsed.Seconds(), "commands/s")
		b.ReportMetric(float64(pct(0.5).Milliseconds()), "p50_lag_ms")
		b.ReportMetric(float64(pct(0.99).Milliseconds()), "p99_lag_ms")
		b.Logf("%d commands in %s, %d events applied by the consumer; lag p50 %s p90 %s p99 %s max %s", sent,
			elapsed.Round(time.Millisecond), len(lags), pct(0.5), pct(0.9), pct(0.99), lags[len(lags)-1])
		mu.Unlock()
	}
}

func envIntOr(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
