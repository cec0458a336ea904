package healthmanager_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/commands"
	"github.com/ostia/ostia/aggregates/handler"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/aggregates/project"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/broker"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/healthmanager"
	"github.com/ostia/ostia/internal/heartbeat"
	"github.com/ostia/ostia/internal/testkit"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

var testKey = []byte("insecure-test-key")

func testLogger(tb testing.TB) *slog.Logger {
	if os.Getenv("OSTIA_HEALTH_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// world is the shared infrastructure of a test: database, event store,
// commands and an embedded broker.
type world struct {
	pool    *pgxpool.Pool
	store   *eventstore.Store
	handler *handler.Handler
	svc     *commands.Service
	brokers []string
	log     *slog.Logger
}

func newWorld(tb testing.TB) *world {
	tb.Helper()
	pool, _ := testkit.NewDatabase(tb)
	store := eventstore.New(pool)
	h, err := handler.New(handler.Config{Store: store, Registry: events.MustNewRegistry(), MaxAttempts: 1000})
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := commands.New(commands.Config{Handler: h, LoadBalancer: lb.DefaultConfig(), QuotaDefaults: project.DefaultLimits()})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{Topics: []string{healthmanager.Topic}, Logger: testLogger(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = b.Close() })
	return &world{pool: pool, store: store, handler: h, svc: svc, brokers: b.Addrs(), log: testLogger(tb)}
}

// manager is one health-manager process: receiver, publisher, consumer and
// scanner (each optional).
type manager struct {
	recv     *heartbeat.Receiver
	pub      *healthmanager.Publisher
	consumer *healthmanager.Consumer
	scanner  *healthmanager.Scanner
	reg      *prometheus.Registry
	stop     func()
}

type managerOpts struct {
	consumer  bool
	scanner   bool
	timeout   time.Duration
	check     time.Duration
	threshold int
	seqTTL    time.Duration
	name      string
	onApplied func(string, time.Time, time.Time)
}

func (w *world) startManager(tb testing.TB, o managerOpts) *manager {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := &manager{reg: prometheus.NewRegistry()}
	var err error
	m.pub, err = healthmanager.NewPublisher(healthmanager.PublisherConfig{Brokers: w.brokers, ClientID: "hm-" + o.name,
		Logger: w.log, Metrics: m.reg})
	if err != nil {
		tb.Fatal(err)
	}
	m.recv, err = heartbeat.NewReceiver(heartbeat.Config{Addr: "127.0.0.1:0", Key: testKey, Sink: m.pub.Sink,
		Metrics: m.reg, Logger: w.log, SeqTTL: o.seqTTL})
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = m.recv.Run(ctx) })
	if o.consumer {
		m.consumer, err = healthmanager.NewConsumer(healthmanager.ConsumerConfig{Brokers: w.brokers, Pool: w.pool,
			Events: w.store, Commands: w.svc, Logger: w.log, Metrics: m.reg, OnApplied: o.onApplied})
		if err != nil {
			tb.Fatal(err)
		}
		if err := m.consumer.Start(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	if o.scanner {
		m.scanner, err = healthmanager.NewScanner(healthmanager.ScannerConfig{Pool: w.pool, Commands: w.svc, Loader: w.handler,
			HeartbeatTimeout: o.timeout, CheckInterval: o.check, FailoverThreshold: o.threshold, Owner: "hm-" + o.name,
			Logger: w.log, Metrics: m.reg})
		if err != nil {
			tb.Fatal(err)
		}
		wg.Go(func() { _ = m.scanner.Run(ctx) })
	}
	var once sync.Once
	m.stop = func() {
		once.Do(func() {
			cancel()
			_ = m.recv.Close()
			wg.Wait()
			if m.consumer != nil {
				_ = m.consumer.Close()
			}
			_ = m.pub.Close()
		})
	}
	tb.Cleanup(m.stop)
	return m
}

var md = events.Metadata{ProjectID: "proj-1", Actor: "test"}

func ptr[T any](v T) *T { return &v }

// createLB creates an ACTIVE load balancer with one HTTP listener whose
// default pool has the given number of members and, if monitored, a health
// monitor; and an ALLOCATED amphora serving it.
func (w *world) createLB(tb testing.TB, members int, monitored bool) (lbID, ampID string) {
	tb.Helper()
	ctx := context.Background()
	lbID = uuid.NewString()
	pool := &lb.PoolSpec{Name: ptr("pool"), Protocol: "HTTP", LBAlgorithm: "ROUND_ROBIN"}
	for i := range members {
		pool.Members = append(pool.Members, lb.MemberSpec{Address: fmt.Sprintf("192.0.2.%d", 10+i), ProtocolPort: 8080})
	}
	if monitored {
		pool.HealthMonitor = &lb.HealthMonitorSpec{Type: "HTTP", Delay: 5, Timeout: 3, MaxRetries: 3}
	}
	if _, _, err := w.svc.LoadBalancer(ctx, md, lbID, lb.CreateLoadBalancer{ID: lbID, ProjectID: "proj-1",
		VipSubnetID: uuid.NewString(), Listeners: []lb.ListenerSpec{{Protocol: "HTTP", ProtocolPort: 80, DefaultPool: pool}}}); err != nil {
		tb.Fatal(err)
	}
	w.complete(tb, lbID)
	ampID = w.createAmphora(tb, lbID)
	return lbID, ampID
}

func (w *world) createAmphora(tb testing.TB, lbID string) string {
	tb.Helper()
	ctx := context.Background()
	ampID := uuid.NewString()
	for _, cmd := range []amphora.Command{
		amphora.CreateAmphora{LoadBalancerID: lbID, ProjectID: "proj-1", Role: amphora.RoleStandalone},
		amphora.ChangeStatus{Status: amphora.StatusBooting},
		amphora.ChangeStatus{Status: amphora.StatusAllocated},
	} {
		if _, _, err := w.svc.Amphora(ctx, md, ampID, cmd); err != nil {
			tb.Fatal(err)
		}
	}
	return ampID
}

func (w *world) complete(tb testing.TB, lbID string) {
	tb.Helper()
	st, _, err := w.svc.LoadBalancer(context.Background(), md, lbID, lb.CompleteProvisioning{Reason: "test"})
	if err != nil {
		tb.Fatal(err)
	}
	if got := st.LoadBalancer().ProvisioningStatus; got != lb.StatusActive {
		tb.Fatalf("load balancer %s after provisioning", got)
	}
}

func (w *world) lbState(tb testing.TB, lbID string) *lb.State {
	tb.Helper()
	st := lb.New(lbID)
	if _, err := w.handler.Load(context.Background(), events.AggregateLoadBalancer, lbID, st); err != nil {
		tb.Fatal(err)
	}
	return st
}

func (w *world) amphoraState(tb testing.TB, id string) *amphora.State {
	tb.Helper()
	st := amphora.New(id)
	if _, err := w.handler.Load(context.Background(), events.AggregateAmphora, id, st); err != nil {
		tb.Fatal(err)
	}
	return st
}

func (w *world) countEvents(tb testing.TB, aggType, id, eventType string) int {
	tb.Helper()
	envs, err := w.store.Load(context.Background(), aggType, id, 0)
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, e := range envs {
		if e.Type == eventType {
			n++
		}
	}
	return n
}

// fakeAmphora renders heartbeats the way an amphora agent with haproxy
// would for a load balancer's tree: enabled listeners OPEN; members with
// weight 0 "DRAIN", disabled ones "MAINT", unmonitored ones "no check",
// others "UP" unless listed in down; a pool is DOWN when no member is up.
type fakeAmphora struct {
	id      string
	version int
	seq     uint64
	conn    net.Conn
}

func newFakeAmphora(tb testing.TB, id string, version int, to net.Addr) *fakeAmphora {
	tb.Helper()
	conn, err := net.Dial("udp", to.String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return &fakeAmphora{id: id, version: version, conn: conn}
}

func (a *fakeAmphora) render(st *lb.State, down map[string]bool, stats heartbeat.Stats) heartbeat.Message {
	a.seq++
	msg := heartbeat.Message{ID: a.id, Seq: a.seq, Version: a.version, Listeners: map[string]heartbeat.Listener{}}
	if a.version >= 2 {
		msg.Pools = map[string]heartbeat.Pool{}
	}
	for _, l := range st.Listeners() {
		if !l.AdminStateUp {
			continue
		}
		hl := heartbeat.Listener{Status: "OPEN", Stats: stats}
		if pid := l.GetDefaultPoolId(); pid != "" {
			p := renderPool(st, pid, down)
			if a.version >= 2 {
				msg.Pools[pid+":"+l.Id] = p
			} else {
				hl.Pools = map[string]heartbeat.Pool{pid: p}
			}
		}
		msg.Listeners[l.Id] = hl
	}
	return msg
}

func renderPool(st *lb.State, pid string, down map[string]bool) heartbeat.Pool {
	p := heartbeat.Pool{Status: "DOWN", Members: map[string]string{}}
	monitored := st.PoolHealthMonitor(pid) != nil
	for _, m := range st.Members(pid) {
		var s string
		switch {
		case !m.AdminStateUp:
			s = "MAINT"
		case down[m.Id]:
			s = "DOWN"
		case m.Weight == 0:
			s = "DRAIN"
		case !monitored:
			s = "no check"
		default:
			s = "UP"
		}
		if s != "DOWN" && s != "MAINT" {
			p.Status = "UP"
		}
		p.Members[m.Id] = s
	}
	return p
}

func (a *fakeAmphora) send(tb testing.TB, msg heartbeat.Message) {
	tb.Helper()
	pkt, err := heartbeat.Encode(msg, testKey)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := a.conn.Write(pkt); err != nil {
		tb.Fatal(err)
	}
}

// statuses summarises a load balancer's operating statuses.
func statuses(st *lb.State) map[string]string {
	out := map[string]string{"lb": st.LoadBalancer().OperatingStatus}
	for _, l := range st.Listeners() {
		out["listener"] = l.OperatingStatus
	}
	for _, p := range st.Pools() {
		out["pool"] = p.OperatingStatus
		for i, m := range st.Members(p.Id) {
			out[fmt.Sprintf("member%d", i)] = m.OperatingStatus
		}
	}
	return out
}

func format(m map[string]string) string {
	var b strings.Builder
	for _, k := range []string{"lb", "listener", "pool", "member0", "member1"} {
		if v, ok := m[k]; ok {
			fmt.Fprintf(&b, "%s=%s ", k, v)
		}
	}
	return strings.TrimSpace(b.String())
}

func isKind(err error, kind aggregates.Kind) bool {
	e, ok := err.(*aggregates.Error)
	return ok && e.Kind == kind
}

var _ = eventsv1.ObjectKind_OBJECT_KIND_MEMBER
