package healthmanager_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/amphora"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/broker"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/healthmanager"
	"github.com/ostia/ostia/internal/heartbeat"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func benchIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
	}
	return ids
}

// encodeRounds pre-encodes rounds heartbeats (seq 1..rounds) for every
// amphora, in parallel, with the message of msg(amp index, seq).
func encodeRounds(tb testing.TB, n, rounds int, msg func(i int, seq uint64) heartbeat.Message) [][][]byte {
	tb.Helper()
	codec, err := heartbeat.NewCodec(testKey, 0)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([][][]byte, rounds)
	for r := range out {
		out[r] = make([][]byte, n)
	}
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				for i := w; i < n; i += workers {
					p, err := codec.Encode(msg(i, uint64(r+1)))
					if err != nil {
						panic(err)
					}
					out[r][i] = p
				}
			}
		})
	}
	wg.Wait()
	return out
}

// blast sends packets in order at about rate datagrams/s from a few
// sockets and returns when all are sent.
func blast(tb testing.TB, to net.Addr, packets [][]byte, rate int) {
	tb.Helper()
	const senders = 2
	conns := make([]net.Conn, senders)
	for i := range conns {
		c, err := net.Dial("udp", to.String())
		if err != nil {
			tb.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	start := time.Now()
	const chunk = 100
	for off := 0; off < len(packets); off += chunk * senders {
		var wg sync.WaitGroup
		for s := range senders {
			lo := off + s*chunk
			hi := min(lo+chunk, len(packets))
			if lo >= hi {
				break
			}
			wg.Go(func() {
				for _, p := range packets[lo:hi] {
					_, _ = conns[s].Write(p)
				}
			})
		}
		wg.Wait()
		sent := min(off+chunk*senders, len(packets))
		if rate > 0 {
			if ahead := time.Duration(float64(sent)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
}

// BenchmarkIngest measures UDP receiver -> Publisher -> embedded Kafka with
// OSTIA_HB_AMPHORAE (10,000) amphorae sending typical v3 heartbeats at
// OSTIA_HB_RATE datagrams/s (20,000; 0 = as fast as possible). One
// iteration is one heartbeat. Reported: acknowledged heartbeats/s and
// losses at every stage.
func BenchmarkIngest(b *testing.B) {
	n := envInt("OSTIA_HB_AMPHORAE", 10_000)
	rate := envInt("OSTIA_HB_RATE", 20_000)
	if os.Getenv("OSTIA_HB_RATE") == "0" {
		rate = 0
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := testLogger(b)
	br, err := broker.Start(ctx, broker.Config{Topics: []string{healthmanager.Topic}, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	reg := prometheus.NewRegistry()
	pub, err := healthmanager.NewPublisher(healthmanager.PublisherConfig{Brokers: br.Addrs(), Logger: log, Metrics: reg})
	if err != nil {
		b.Fatal(err)
	}
	recv, err := heartbeat.NewReceiver(heartbeat.Config{Addr: "127.0.0.1:0", Key: testKey, Sink: pub.Sink, Metrics: reg,
		Logger: log, ReadBuffer: 8 << 20})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = recv.Run(ctx) }()

	ids := benchIDs(n)
	rounds := (b.N + n - 1) / n
	packets := encodeRounds(b, n, rounds, func(i int, seq uint64) heartbeat.Message {
		id := ids[i]
		return heartbeat.Message{ID: id, Seq: seq, Version: heartbeat.Version3,
			Listeners: map[string]heartbeat.Listener{"l" + id: {Status: "OPEN", Stats: heartbeat.Stats{TX: 1200, RX: 800, Conns: 3, TotConns: 17}}},
			Pools: map[string]heartbeat.Pool{"p" + id + ":l" + id: {Status: "UP", Members: map[string]string{
				"m1" + id: "UP", "m2" + id: "no check"}}}}
	})
	flat := make([][]byte, 0, b.N)
	for r := range packets {
		flat = append(flat, packets[r]...)
	}
	flat = flat[:b.N]

	b.ResetTimer()
	start := time.Now()
	blast(b, recv.Addr(), flat, rate)
	sendTime := time.Since(start)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		rs, ps := recv.Stats(), pub.Stats()
		if rs.Accepted+rs.TotalDropped() >= rs.Received && rs.Received >= uint64(b.N) && ps.Published+ps.Failed >= rs.Accepted {
			break
		}
		if rs.Received < uint64(b.N) && time.Since(start) > sendTime+2*time.Second {
			break // datagrams lost in the kernel never arrive
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	rs, ps := recv.Stats(), pub.Stats()
	b.ReportMetric(float64(ps.Published)/elapsed.Seconds(), "acked_hb/s")
	b.ReportMetric(float64(b.N)/sendTime.Seconds(), "offered_hb/s")
	b.ReportMetric(float64(uint64(b.N)-min(rs.Received, uint64(b.N))), "lost_kernel")
	b.ReportMetric(float64(rs.TotalDropped()), "dropped_receiver")
	b.ReportMetric(float64(ps.Failed), "lost_kafka")
	b.ReportMetric(0, "ns/op")
	if ps.Published != uint64(b.N) {
		b.Logf("N=%d received=%d accepted=%d dropped=%v published=%d failed=%d", b.N, rs.Received, rs.Accepted, rs.Dropped, ps.Published, ps.Failed)
	}
	_ = recv.Close()
	<-done
	_ = pub.Close()
}

// seedFleet appends, straight to the event store, n ACTIVE load balancers
// (listener, pool, two monitored members) each served by one ALLOCATED
// amphora with id ampIDs[i]. It returns the load balancers' states.
func seedFleet(tb testing.TB, w *world, ampIDs []string) []*lb.State {
	tb.Helper()
	ctx := context.Background()
	reg := events.MustNewRegistry()
	env := aggregates.Env{Now: time.Now().UTC(), NewID: uuid.NewString}
	cfg := lb.DefaultConfig()
	states := make([]*lb.State, len(ampIDs))
	var streams []eventstore.Stream
	flush := func() {
		if err := w.store.Append(ctx, streams...); err != nil {
			tb.Fatal(err)
		}
		streams = streams[:0]
	}
	md := events.Metadata{ProjectID: "proj-1", Actor: "bench"}
	wrap := func(aggType, id string, payloads []proto.Message) eventstore.Stream {
		s := eventstore.Stream{AggregateType: aggType, AggregateID: id, ProjectID: "proj-1"}
		for _, p := range payloads {
			e, err := reg.Envelope(uuid.NewString(), id, p, md, env.Now)
			if err != nil {
				tb.Fatal(err)
			}
			s.Events = append(s.Events, e)
		}
		return s
	}
	for i, ampID := range ampIDs {
		lbID := uuid.NewString()
		st := lb.New(lbID)
		var all []proto.Message
		for _, cmd := range []lb.Command{
			lb.CreateLoadBalancer{ID: lbID, ProjectID: "proj-1", VipSubnetID: uuid.NewString(), Listeners: []lb.ListenerSpec{{
				Protocol: "HTTP", ProtocolPort: 80, DefaultPool: &lb.PoolSpec{Name: ptr("p"), Protocol: "HTTP", LBAlgorithm: "ROUND_ROBIN",
					Members:       []lb.MemberSpec{{Address: "192.0.2.1", ProtocolPort: 80}, {Address: "192.0.2.2", ProtocolPort: 80}},
					HealthMonitor: &lb.HealthMonitorSpec{Type: "HTTP", Delay: 5, Timeout: 3, MaxRetries: 3}}}}},
			lb.CompleteProvisioning{Reason: "seed"},
		} {
			d, err := cfg.Decide(st, cmd, env)
			if err != nil {
				tb.Fatal(err)
			}
			for _, e := range d.Events {
				if err := st.Apply(e); err != nil {
					tb.Fatal(err)
				}
			}
			all = append(all, d.Events...)
		}
		states[i] = st
		streams = append(streams, wrap(events.AggregateLoadBalancer, lbID, all))
		amp := amphora.New(ampID)
		all = nil
		for _, cmd := range []amphora.Command{
			amphora.CreateAmphora{LoadBalancerID: lbID, ProjectID: "proj-1", Role: amphora.RoleStandalone},
			amphora.ChangeStatus{Status: amphora.StatusBooting},
			amphora.ChangeStatus{Status: amphora.StatusAllocated},
		} {
			evs, err := amphora.Decide(amp, cmd, env)
			if err != nil {
				tb.Fatal(err)
			}
			for _, e := range evs {
				if err := amp.Apply(e); err != nil {
					tb.Fatal(err)
				}
			}
			all = append(all, evs...)
		}
		streams = append(streams, wrap(events.AggregateAmphora, ampID, all))
		if len(streams) >= 400 {
			flush()
		}
	}
	if len(streams) > 0 {
		flush()
	}
	return states
}

// BenchmarkEndToEnd measures the lag from UDP receipt to the committed
// health update and operating statuses with OSTIA_HB_AMPHORAE (10,000)
// amphorae, each serving its own load balancer, sending OSTIA_HB_ROUNDS (3)
// rounds of heartbeats at OSTIA_HB_E2E_RATE datagrams/s (5,000). The first
// round moves every load balancer's tree from OFFLINE to ONLINE (one
// SetOperatingStatuses per load balancer); later rounds change nothing.
// One iteration is one whole run (use -benchtime=1x).
func BenchmarkEndToEnd(b *testing.B) {
	n := envInt("OSTIA_HB_AMPHORAE", 10_000)
	rounds := envInt("OSTIA_HB_ROUNDS", 3)
	rate := envInt("OSTIA_HB_E2E_RATE", 5_000)
	for range b.N {
		w := newWorld(b)
		ids := benchIDs(n)
		seedStart := time.Now()
		states := seedFleet(b, w, ids)
		b.Logf("seeded %d load balancers and amphorae in %s", n, time.Since(seedStart).Round(time.Millisecond))
		var mu sync.Mutex
		lags := make([][]time.Duration, rounds+1)
		var applied atomic.Int64
		round := map[string]int{}
		hm := w.startManager(b, managerOpts{consumer: true, name: "bench", onApplied: func(id string, recv, vis time.Time) {
			mu.Lock()
			round[id]++
			r := min(round[id], rounds)
			lags[r] = append(lags[r], vis.Sub(recv))
			mu.Unlock()
			applied.Add(1)
		}})
		packets := encodeRounds(b, n, rounds, func(i int, seq uint64) heartbeat.Message {
			a := &fakeAmphora{id: ids[i], version: 3, seq: seq - 1}
			return a.render(states[i], nil, heartbeat.Stats{RX: 100, TX: 1000, Conns: 1, TotConns: 2})
		})
		b.ResetTimer()
		for r := range rounds {
			start := time.Now()
			blast(b, hm.recv.Addr(), packets[r], rate)
			want := int64((r + 1) * n)
			deadline := time.Now().Add(5 * time.Minute)
			for applied.Load() < want && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			el := time.Since(start)
			mu.Lock()
			l := slices.Clone(lags[r+1])
			mu.Unlock()
			slices.Sort(l)
			q := func(p float64) time.Duration {
				if len(l) == 0 {
					return 0
				}
				return l[min(len(l)-1, int(p*float64(len(l))))]
			}
			b.Logf("round %d: %d/%d applied in %s (%.0f hb/s); lag receipt->visible p50 %s p90 %s p99 %s max %s",
				r+1, applied.Load()-int64(r*n), n, el.Round(time.Millisecond), float64(n)/el.Seconds(),
				q(0.5).Round(time.Millisecond), q(0.9).Round(time.Millisecond), q(0.99).Round(time.Millisecond), q(1).Round(time.Millisecond))
			b.ReportMetric(float64(q(0.99).Milliseconds()), fmt.Sprintf("p99_lag_ms_round%d", r+1))
		}
		rs, ps, cs := hm.recv.Stats(), hm.pub.Stats(), hm.consumer.Stats()
		b.Logf("receiver received=%d accepted=%d dropped=%d; published=%d failed=%d; consumer processed=%d applied=%d",
			rs.Received, rs.Accepted, rs.TotalDropped(), ps.Published, ps.Failed, cs.Processed, cs.Applied)
		online := 0
		for _, st := range states[:min(50, n)] {
			if w.lbState(b, st.ID()).LoadBalancer().OperatingStatus == lb.OperatingOnline {
				online++
			}
		}
		b.Logf("sampled %d load balancers: %d ONLINE", min(50, n), online)
		b.StopTimer()
		hm.stop()
	}
}
