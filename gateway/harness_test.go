package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/commands"
	"github.com/ostia/ostia/aggregates/handler"
	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/aggregates/project"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/gateway"
	"github.com/ostia/ostia/gateway/auth"
	"github.com/ostia/ostia/internal/eventstore"
	"github.com/ostia/ostia/internal/testkit"
	"github.com/ostia/ostia/projections"
	"github.com/ostia/ostia/projections/views"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
}

// apiEnv is a gateway over a fresh database, without Kafka: writes are
// projected inline (read-your-writes), and worker() plays the saga worker
// for the load balancers left PENDING_* (VIP, one amphora, ACTIVE).
type apiEnv struct {
	t     testing.TB
	pool  *pgxpool.Pool
	svc   *commands.Service
	views *projections.Projector
	srv   *httptest.Server
	// headers are sent with every request (noauth identity).
	headers http.Header
	clock   *testClock
	// nextID, when set, is the id the next created object gets.
	mu     sync.Mutex
	nextID string
}

// testClock stands still; worker() moves it one second, as if the worker
// took that long.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (e *apiEnv) newID() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if id := e.nextID; id != "" {
		e.nextID = ""
		return id
	}
	return uuid.NewString()
}

// withID makes the next created object get id.
func (e *apiEnv) withID(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nextID = id
}

type envOptions struct {
	validator     auth.TokenValidator
	enforceQuotas bool
	providers     []gateway.Provider
	// separateProjection projects the API's writes in a transaction of
	// their own after the command (API.ProjectedInline false) instead of in
	// the command's append transaction.
	separateProjection bool
	// vips allocates VIP ports in the API (as `ostia up` does).
	vips gateway.VIPAllocator
	// certs checks TLS references in the API.
	certs gateway.CertChecker
}

func newAPIEnv(t testing.TB, opts envOptions) *apiEnv {
	t.Helper()
	pool, _ := testkit.NewDatabase(t)
	store := eventstore.New(pool)
	reg := events.MustNewRegistry()
	clk := &testClock{now: time.Date(2026, 11, 23, 3, 39, 12, 0, time.UTC)}
	proj, err := projections.New(projections.Config{Pool: pool, Store: store, Registry: reg, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	hc := handler.Config{Store: store, Registry: reg, Now: clk.Now}
	if !opts.separateProjection {
		hc.Inline = proj.InlineThen
	}
	h, err := handler.New(hc)
	if err != nil {
		t.Fatal(err)
	}
	defaults := project.Limits{LoadBalancer: -1, Listener: -1, Pool: -1, HealthMonitor: -1, Member: -1, L7Policy: -1, L7Rule: -1}
	svc, err := commands.New(commands.Config{Handler: h, LoadBalancer: loadbalancer.DefaultConfig(),
		QuotaDefaults: defaults, EnforceQuotas: opts.enforceQuotas})
	if err != nil {
		t.Fatal(err)
	}
	e := &apiEnv{t: t, pool: pool, svc: svc, views: proj, headers: http.Header{}, clock: clk}
	srv, err := gateway.New(gateway.Config{Logger: quietLogger(), API: &gateway.API{Commands: svc, Views: proj, ProjectedInline: !opts.separateProjection, Pool: pool,
		Validator: opts.validator, Providers: opts.providers, MaxLimit: -1, QuotaDefaults: defaults, NewID: e.newID,
		VIPs: opts.vips, Certs: opts.certs}})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(srv)
	t.Cleanup(e.srv.Close)
	return e
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r *response) obj(key string) map[string]any {
	m, _ := r.body[key].(map[string]any)
	return m
}

func (r *response) list(key string) []any {
	l, _ := r.body[key].([]any)
	return l
}

func (e *apiEnv) do(method, path string, body any) *response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range e.headers {
		req.Header[k] = v
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	out := &response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out.body)
	}
	return out
}

// must checks the status code.
func (e *apiEnv) must(status int, method, path string, body any) *response {
	e.t.Helper()
	r := e.do(method, path, body)
	if r.status != status {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, status, r.raw)
	}
	return r
}

var workerMD = events.Metadata{Actor: "ostia:test-worker", CorrelationID: "test-worker"}

// worker finishes every pending load balancer the way the saga worker
// does with the noop drivers.
func (e *apiEnv) worker() {
	e.t.Helper()
	e.clock.advance(time.Second)
	ctx := context.Background()
	page, err := e.views.List(ctx, views.KindLoadBalancer, projections.Query{Filters: map[string][]string{
		"provisioning_status": {"PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE"}}})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, raw := range page.Items {
		var lb struct {
			ID, ProjectID, ProvisioningStatus string
			VipAddress                        *string `json:"vip_address"`
			VipSubnetID                       string  `json:"vip_subnet_id"`
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			e.t.Fatal(err)
		}
		lb.ID, _ = m["id"].(string)
		lb.ProjectID, _ = m["project_id"].(string)
		lb.ProvisioningStatus, _ = m["provisioning_status"].(string)
		lb.VipSubnetID, _ = m["vip_subnet_id"].(string)
		md := workerMD
		md.ProjectID = lb.ProjectID
		var envs []*eventsv1.Envelope
		if lb.ProvisioningStatus == "PENDING_CREATE" {
			if m["vip_address"] == nil { // the API has not allocated it
				_, ev, err := e.svc.LoadBalancer(ctx, md, lb.ID, loadbalancer.AllocateVip{VipAddress: "198.51.100.1",
					VipPortID: uuid.NewString(), VipSubnetID: lb.VipSubnetID, VipNetworkID: uuid.NewString()})
				if err != nil {
					e.t.Fatal(err)
				}
				envs = append(envs, ev...)
			}
			ampID := uuid.NewString()
			_, ev, err := e.svc.Amphora(ctx, md, ampID, amphora.CreateAmphora{ID: ampID, LoadBalancerID: lb.ID,
				ProjectID: lb.ProjectID, Role: "STANDALONE"})
			if err != nil {
				e.t.Fatal(err)
			}
			envs = append(envs, ev...)
			_, ev, err = e.svc.Amphora(ctx, md, ampID, amphora.UpdateAmphora{ComputeID: aggregates.Value(uuid.NewString()),
				LBNetworkIP: aggregates.Value("192.0.2.1"), VrrpIP: aggregates.Value("198.51.100.1"),
				HaIP: aggregates.Value("198.51.100.1"), VrrpPortID: aggregates.Value(uuid.NewString()),
				HaPortID: aggregates.Value(uuid.NewString()), VrrpID: aggregates.Value(int32(1))})
			if err != nil {
				e.t.Fatal(err)
			}
			envs = append(envs, ev...)
			_, ev, err = e.svc.Amphora(ctx, md, ampID, amphora.RecordCertificate{ExpiresAt: e.clock.Now().Add(30 * 24 * time.Hour),
				Serial: "1"})
			if err != nil {
				e.t.Fatal(err)
			}
			envs = append(envs, ev...)
			for _, status := range []string{amphora.StatusBooting, amphora.StatusAllocated} {
				_, ev, err = e.svc.Amphora(ctx, md, ampID, amphora.ChangeStatus{Status: status})
				if err != nil {
					e.t.Fatal(err)
				}
				envs = append(envs, ev...)
			}
		}
		_, ev, err := e.svc.LoadBalancer(ctx, md, lb.ID, loadbalancer.CompleteProvisioning{Reason: "test worker"})
		if err != nil {
			e.t.Fatal(err)
		}
		envs = append(envs, ev...)
		if err := e.views.ApplyEnvelopes(ctx, envs); err != nil {
			e.t.Fatal(err)
		}
	}
}
