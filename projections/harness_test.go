package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/catalog"
	"github.com/ostia/ostia/aggregates/commands"
	"github.com/ostia/ostia/aggregates/handler"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/aggregates/project"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/testkit"
	"github.com/ostia/ostia/projections"
	"github.com/ostia/ostia/projections/views"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// clock is the handler's clock: it moves one second per decision, so
// timestamps differ and Until can cut between commands.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

func (c *clock) Peek() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

type env struct {
	t      testing.TB
	pool   *pgxpool.Pool
	store  *eventstore.Store
	reg    *events.Registry
	svc    *commands.Service
	proj   *projections.Projector
	clock  *clock
	inline bool
	md     events.Metadata
}

func newEnv(t testing.TB, inline bool) *env {
	t.Helper()
	pool, _ := testkit.NewDatabase(t)
	return newEnvOn(t, pool, inline)
}

func newEnvOn(t testing.TB, pool *pgxpool.Pool, inline bool) *env {
	t.Helper()
	store := eventstore.New(pool)
	reg := events.MustNewRegistry()
	clk := &clock{now: time.Date(2026, 11, 23, 3, 39, 0, 0, time.UTC)}
	h, err := handler.New(handler.Config{Store: store, Registry: reg, Now: clk.Now, MaxAttempts: 100})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := commands.New(commands.Config{Handler: h, LoadBalancer: lb.DefaultConfig(),
		QuotaDefaults: project.DefaultLimits(), EnforceQuotas: true})
	if err != nil {
		t.Fatal(err)
	}
	proj, err := projections.New(projections.Config{Pool: pool, Store: store, Registry: reg, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, pool: pool, store: store, reg: reg, svc: svc, proj: proj, clock: clk, inline: inline,
		md: events.Metadata{ProjectID: "proj-a", CorrelationID: "req-1", Actor: "user-1"}}
}

func (e *env) applyInline(envs []*eventsv1.Envelope) {
	e.t.Helper()
	if !e.inline {
		return
	}
	if err := e.proj.ApplyEnvelopes(context.Background(), envs); err != nil {
		e.t.Fatalf("apply inline: %v", err)
	}
}

// lbCmd runs a load-balancer command and returns the state after it.
func (e *env) lbCmd(lbID string, cmd lb.Command) *lb.State {
	e.t.Helper()
	st, envs, err := e.svc.LoadBalancer(context.Background(), e.md, lbID, cmd)
	if err != nil {
		e.t.Fatalf("%T on %s: %v", cmd, lbID, err)
	}
	e.applyInline(envs)
	return st
}

// complete plays the saga: the load balancer's pending objects settle.
func (e *env) complete(lbID string) *lb.State {
	return e.lbCmd(lbID, lb.CompleteProvisioning{Reason: "test"})
}

func (e *env) createLB(project string, tags ...string) string {
	e.t.Helper()
	id := uuid.NewString()
	md := e.md
	md.ProjectID = project
	_, envs, err := e.svc.LoadBalancer(context.Background(), md, id, lb.CreateLoadBalancer{ID: id, ProjectID: project,
		Name: proto.String("lb-" + id[:8]), VipSubnetID: uuid.NewString(), Tags: tags})
	if err != nil {
		e.t.Fatal(err)
	}
	e.applyInline(envs)
	e.complete(id)
	return id
}

// tree is a load balancer with one of each child.
type tree struct {
	lb, listener, pool, member, hm, policy, rule string
}

func (e *env) buildTree(project string) tree {
	e.t.Helper()
	tr := tree{lb: e.createLB(project, "tree")}
	st := e.lbCmd(tr.lb, lb.CreateListener{LoadBalancerID: tr.lb, ListenerSpec: lb.ListenerSpec{Name: proto.String("web"),
		Protocol: "HTTP", ProtocolPort: 80, Tags: []string{"front", "web"}}})
	tr.listener = st.Listeners()[0].Id
	e.complete(tr.lb)
	st = e.lbCmd(tr.lb, lb.CreatePool{ListenerID: tr.listener, PoolSpec: lb.PoolSpec{Name: proto.String("pool"),
		Protocol: "HTTP", LBAlgorithm: "ROUND_ROBIN"}})
	tr.pool = st.Pools()[0].Id
	e.complete(tr.lb)
	st = e.lbCmd(tr.lb, lb.CreateMember{PoolID: tr.pool, MemberSpec: lb.MemberSpec{Name: proto.String("m1"),
		Address: "192.0.2.10", ProtocolPort: 8080, Tags: []string{"blue"}}})
	tr.member = st.Members(tr.pool)[0].Id
	e.complete(tr.lb)
	st = e.lbCmd(tr.lb, lb.CreateHealthMonitor{PoolID: tr.pool, HealthMonitorSpec: lb.HealthMonitorSpec{
		Name: proto.String("hm"), Type: "HTTP", Delay: 5, Timeout: 3, MaxRetries: 3}})
	tr.hm = st.PoolHealthMonitor(tr.pool).Id
	e.complete(tr.lb)
	st = e.lbCmd(tr.lb, lb.CreateL7Policy{ListenerID: tr.listener, L7PolicySpec: lb.L7PolicySpec{Name: proto.String("p"),
		Action: "REDIRECT_TO_URL", RedirectURL: proto.String("http://example.com")}})
	tr.policy = st.L7Policies(tr.listener)[0].Id
	e.complete(tr.lb)
	st = e.lbCmd(tr.lb, lb.CreateL7Rule{L7PolicyID: tr.policy, L7RuleSpec: lb.L7RuleSpec{Type: "PATH",
		CompareType: "STARTS_WITH", Value: "/api"}})
	tr.rule = st.L7Rules(tr.policy)[0].Id
	e.complete(tr.lb)
	return tr
}

// workload runs n rounds of varied commands on several load balancers,
// amphorae, projects and the catalog. It is deterministic for a seed.
func (e *env) workload(seed uint64, rounds int) []tree {
	e.t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, seed+1))
	var trees []tree
	for i := range 3 {
		trees = append(trees, e.buildTree(fmt.Sprintf("proj-%d", i%2)))
	}
	fp := uuid.NewString()
	if _, envs, err := e.svc.Catalog(ctx, e.md, catalog.CreateFlavorProfile{ID: fp, Name: "fp", ProviderName: "amphora",
		FlavorData: `{"loadbalancer_topology": "SINGLE"}`}); err != nil {
		e.t.Fatal(err)
	} else {
		e.applyInline(envs)
	}
	ampID := uuid.NewString()
	_, envs, err := e.svc.Amphora(ctx, e.md, ampID, amphora.CreateAmphora{ID: ampID, LoadBalancerID: trees[0].lb,
		ProjectID: "proj-0", Role: amphora.RoleStandalone})
	if err != nil {
		e.t.Fatal(err)
	}
	e.applyInline(envs)
	for r := range rounds {
		tr := trees[rng.IntN(len(trees))]
		var err error
		var envs []*eventsv1.Envelope
		switch rng.IntN(10) {
		case 0:
			e.lbCmd(tr.lb, lb.UpdateLoadBalancer{Name: aggregates.Value(fmt.Sprintf("lb-r%d", r)),
				Tags: aggregates.Value([]string{"tree", fmt.Sprintf("r%d", r%3)})})
			e.complete(tr.lb)
		case 1:
			st := e.lbCmd(tr.lb, lb.CreateMember{PoolID: tr.pool, MemberSpec: lb.MemberSpec{
				Address: fmt.Sprintf("192.0.2.%d", 20+r%200), ProtocolPort: int32(1000 + r), Weight: proto.Int32(int32(r % 5))}})
			_ = st
			e.complete(tr.lb)
		case 2:
			e.lbCmd(tr.lb, lb.UpdateMember{PoolID: tr.pool, MemberID: tr.member, Weight: aggregates.Value(int32(r % 7)),
				Tags: aggregates.Value([]string{"blue", fmt.Sprintf("w%d", r%2)})})
			e.complete(tr.lb)
		case 3:
			st := e.complete(tr.lb)
			for _, m := range st.Members(tr.pool) {
				if m.Id != tr.member {
					e.lbCmd(tr.lb, lb.DeleteMember{PoolID: tr.pool, MemberID: m.Id})
					e.complete(tr.lb)
					break
				}
			}
		case 4:
			e.lbCmd(tr.lb, lb.UpdateListener{ListenerID: tr.listener, ConnectionLimit: aggregates.Value(int64(r)),
				Name: aggregates.Value(fmt.Sprintf("web-%d", r))})
			e.complete(tr.lb)
		case 5:
			e.lbCmd(tr.lb, lb.SetOperatingStatuses{Changes: []*eventsv1.StatusChange{
				{Kind: eventsv1.ObjectKind_OBJECT_KIND_MEMBER, Id: tr.member, OperatingStatus: []string{"ONLINE", "ERROR"}[r%2]},
				{Kind: eventsv1.ObjectKind_OBJECT_KIND_LOADBALANCER, Id: tr.lb, OperatingStatus: "ONLINE"}}})
		case 6:
			e.lbCmd(tr.lb, lb.UpdateL7Rule{L7PolicyID: tr.policy, L7RuleID: tr.rule, Value: aggregates.Value(fmt.Sprintf("/v%d", r))})
			e.complete(tr.lb)
		case 7:
			_, envs, err = e.svc.Project(ctx, e.md, "proj-q", project.SetQuota{LoadBalancer: aggregates.Value(int64(r))})
		case 8:
			_, envs, err = e.svc.Amphora(ctx, e.md, ampID, amphora.UpdateAmphora{VrrpPriority: aggregates.Value(int32(r%100 + 1))})
		case 9:
			_, envs, err = e.svc.Catalog(ctx, e.md, catalog.CreateFlavor{ID: uuid.NewString(), Name: fmt.Sprintf("flavor-%d", r),
				FlavorProfileID: fp})
		}
		if err != nil {
			e.t.Fatalf("round %d: %v", r, err)
		}
		e.applyInline(envs)
	}
	// One load balancer goes away.
	gone := e.createLB("proj-1")
	e.lbCmd(gone, lb.DeleteLoadBalancer{Cascade: true})
	e.complete(gone)
	return trees
}

// allEvents returns the whole log.
func (e *env) allEvents() []*eventsv1.Envelope {
	e.t.Helper()
	var out []*eventsv1.Envelope
	var after int64
	for {
		batch, err := e.store.ReadAll(context.Background(), after, 1000, time.Time{})
		if err != nil {
			e.t.Fatal(err)
		}
		if len(batch) == 0 {
			return out
		}
		out = append(out, batch...)
		after = batch[len(batch)-1].GlobalPosition
	}
}

func (e *env) checksum(gen int64) string {
	e.t.Helper()
	s, err := e.proj.Checksum(context.Background(), gen)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) get(kind views.Kind, id string) map[string]any {
	e.t.Helper()
	o, err := e.proj.Get(context.Background(), kind, id)
	if err != nil {
		e.t.Fatalf("get %s %s: %v", kind, id, err)
	}
	return decode(e.t, o.Doc)
}

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func jsonOf(t testing.TB, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, b)
}

func sameJSON(t testing.TB, what string, got, want map[string]any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %v\n want %v", what, got, want)
	}
}

func lbRename(name string) lb.UpdateLoadBalancer {
	return lb.UpdateLoadBalancer{Name: aggregates.Value(name)}
}
