package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/commands"
	"github.com/ostia/ostia/aggregates/handler"
	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/aggregates/project"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/relay"
	"github.com/ostia/ostia/internal/relay/relaytest"
	"github.com/ostia/ostia/internal/testkit"
	"github.com/ostia/ostia/projections"
)

// stepClock moves one minute per decision.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Minute)
	return c.now
}

// `ostia projector` builds the read models from Kafka; `ostia replay`
// rebuilds them (same checksum), `ostia audit` shows an object's history
// and its past state, and `ostia billing` bills the hours and traffic.
func TestProjectorReplayAuditBillingCommands(t *testing.T) {
	t.Parallel()
	h := relaytest.New(t, relaytest.Config{Partitions: 2})
	h.StartRelay(relay.Config{HolderID: "relay-cmd"})
	dbURL := h.Pool.Config().ConnString()
	ctx := context.Background()

	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	clk := &stepClock{now: t0}
	hd, err := handler.New(handler.Config{Store: h.Store, Registry: h.Registry, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := commands.New(commands.Config{Handler: hd, LoadBalancer: loadbalancer.DefaultConfig(),
		QuotaDefaults: project.DefaultLimits()})
	if err != nil {
		t.Fatal(err)
	}
	md := events.Metadata{ProjectID: "proj-cli", CorrelationID: "req-cli-1", Actor: "alice"}
	lbID := uuid.NewString()
	lbCmd := func(cmd loadbalancer.Command) *loadbalancer.State {
		t.Helper()
		st, _, err := svc.LoadBalancer(ctx, md, lbID, cmd)
		if err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
		return st
	}
	lbCmd(loadbalancer.CreateLoadBalancer{ID: lbID, ProjectID: "proj-cli", Name: proto.String("first"), VipSubnetID: "subnet"}) // t0+1m
	lbCmd(loadbalancer.CompleteProvisioning{})                                                                                  // t0+2m: ACTIVE
	st := lbCmd(loadbalancer.CreateListener{LoadBalancerID: lbID, ListenerSpec: loadbalancer.ListenerSpec{Protocol: "HTTP",
		ProtocolPort: 80}}) // t0+3m
	listenerID := st.Listeners()[0].Id
	lbCmd(loadbalancer.CompleteProvisioning{}) // t0+4m
	asOf := t0.Add(4 * time.Minute)
	ampID := uuid.NewString()
	if _, _, err := svc.Amphora(ctx, md, ampID, amphora.CreateAmphora{ID: ampID, LoadBalancerID: lbID, ProjectID: "proj-cli",
		Role: amphora.RoleStandalone}); err != nil { // t0+5m
		t.Fatal(err)
	}
	md.CorrelationID, md.Actor = "req-cli-2", "bob"
	lbCmd(loadbalancer.UpdateLoadBalancer{Name: aggregates.Value("second")}) // t0+6m
	lbCmd(loadbalancer.CompleteProvisioning{})                               // t0+7m

	// ostia projector
	metricsPort := testkit.FreePort(t)
	environ := []string{"OSTIA_DATABASE_URL=" + dbURL, fmt.Sprintf("OSTIA_METRICS_BIND=127.0.0.1:%d", metricsPort),
		"OSTIA_LOG_LEVEL=warn"}
	stderr := &testkit.SyncBuffer{}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- run(pctx, &environment{stdout: io.Discard, stderr: stderr, environ: environ},
			[]string{"projector", "-brokers", strings.Join(h.Addrs(), ",")})
	}()
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	testkit.Eventually(t, 30*time.Second, 50*time.Millisecond, func() bool {
		var name string
		err := h.Pool.QueryRow(ctx, `SELECT v.name FROM view_loadbalancer v JOIN projection_generations g
			ON g.projection = 'views' AND v.generation = g.current_generation WHERE v.id = $1`, lbID).Scan(&name)
		if err != nil || name != "second" {
			return false
		}
		resp, err := http.Get(metricsURL)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), "ostia_projection_lag_seconds_count") &&
			strings.Contains(string(body), "ostia_projection_events_applied_total")
	}, "ostia projector did not project the load balancer (stderr: %s)", stderr)
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("ostia projector exited with %d: %s", code, stderr)
	}

	cmd := func(args ...string) (string, string) {
		t.Helper()
		out, errOut := &testkit.SyncBuffer{}, &testkit.SyncBuffer{}
		if code := run(ctx, &environment{stdout: out, stderr: errOut, environ: environ}, args); code != 0 {
			t.Fatalf("ostia %v exited with %d: %s", args, code, errOut)
		}
		return out.String(), errOut.String()
	}

	// ostia replay
	out, errOut := cmd("replay", "--verify")
	if !strings.Contains(errOut, "100%") || !strings.Contains(out, "replayed") || !strings.Contains(out, " equals generation ") {
		t.Fatalf("replay output:\n%s\nstderr:\n%s", out, errOut)
	}

	// ostia audit
	out, _ = cmd("audit", lbID)
	for _, want := range []string{"loadbalancer.created.v1", "alice", "req-cli-2", `name: "first" -> "second"`, "created"} {
		if !strings.Contains(out, want) {
			t.Fatalf("audit table lacks %q:\n%s", want, out)
		}
	}
	out, _ = cmd("audit", lbID, "--format", "json")
	var trail []map[string]any
	if err := json.Unmarshal([]byte(out), &trail); err != nil {
		t.Fatalf("audit json: %v\n%s", err, out)
	}
	if len(trail) < 4 || trail[0]["before"] != nil || trail[0]["actor"] != "alice" || trail[len(trail)-1]["request_id"] != "req-cli-2" {
		t.Fatalf("audit json: %s", out)
	}
	out, _ = cmd("audit", "--as-of", asOf.Format(time.RFC3339), lbID)
	var past map[string]any
	if err := json.Unmarshal([]byte(out), &past); err != nil {
		t.Fatalf("audit --as-of: %v\n%s", err, out)
	}
	lbThen, _ := past["loadbalancer"].(map[string]any)
	if lbThen["name"] != "first" || lbThen["provisioning_status"] != "ACTIVE" || past["version"] == float64(0) {
		t.Fatalf("audit --as-of: %s", out)
	}

	// ostia billing
	if _, err := h.Pool.Exec(ctx, `INSERT INTO listener_stats_history (listener_id, amphora_id, bucket_start,
		loadbalancer_id, bytes_in, bytes_out, total_connections, request_errors, max_active_connections, samples)
		VALUES ($1, $2, $3, $4, 1000, 2000, 30, 4, 3, 1)`, listenerID, ampID, t0.Add(10*time.Minute), lbID); err != nil {
		t.Fatal(err)
	}
	window := []string{"--project", "proj-cli", "--from", t0.Format(time.RFC3339), "--to", t0.Add(time.Hour).Format(time.RFC3339)}
	out, _ = cmd(append([]string{"billing", "--format", "json"}, window...)...)
	var rep projections.UsageReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("billing json: %v\n%s", err, out)
	}
	if len(rep.Projects) != 1 || len(rep.Resources) != 3 {
		t.Fatalf("billing json: %s", out)
	}
	pu := rep.Projects[0]
	// Active from t0+2m (load balancer), t0+4m (listener), t0+5m (amphora)
	// to the end of the window.
	if pu.LoadBalancerHours != 58.0/60 || pu.ListenerHours != 56.0/60 || pu.AmphoraHours != 55.0/60 ||
		pu.BytesIn != 1000 || pu.BytesOut != 2000 || pu.TotalConnections != 30 || pu.RequestErrors != 4 {
		t.Fatalf("billing: %+v", pu)
	}
	out, _ = cmd(append([]string{"billing", "--format", "csv"}, window...)...)
	records, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(records) != 4 || records[0][0] != "project_id" || records[1][1] != "loadbalancer" || records[1][7] != "1000" {
		t.Fatalf("billing csv (%v):\n%s", err, out)
	}
	out, _ = cmd(append([]string{"billing"}, window...)...)
	if !strings.Contains(out, "proj-cli") || !strings.Contains(out, "0.967") || !strings.Contains(out, listenerID) {
		t.Fatalf("billing table:\n%s", out)
	}
}
