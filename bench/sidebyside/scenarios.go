package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"
)

// The scenarios mirror ../shared/anchors/octavia/bench.py request for
// request (same bodies, same polling queries and intervals, a new
// connection per request) so both servers pay the same client overhead.

const (
	pollLB     = 20 * time.Millisecond  // bench.py wait_lb
	pollList   = 50 * time.Millisecond  // bench.py wait_all
	pollDelete = 100 * time.Millisecond // bench.py delete_all
)

type lbRef struct {
	ID                 string `json:"id"`
	ProvisioningStatus string `json:"provisioning_status"`
}

type runner struct {
	c       *client
	project string
	subnet  string
	timeout time.Duration

	// serverErrors counts 5xx answers; each was retried (after 100 ms, up
	// to 5 times). bench.py would have stopped at the first one.
	serverErrors int
	firstErrors  []string
}

// send is client.do with the 5xx answers counted and retried.
func (r *runner) send(ctx context.Context, method, path string, body, out any) (int, error) {
	for attempt := 1; ; attempt++ {
		st, err := r.c.do(ctx, method, path, body, out)
		if st < 500 || attempt == 5 {
			return st, err
		}
		r.serverErrors++
		if len(r.firstErrors) < 5 {
			r.firstErrors = append(r.firstErrors, err.Error())
		}
		logf("%s: %v (retrying)", r.c.base, err)
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return st, err
		}
	}
}

func (r *runner) listPath() string {
	return "/v2/lbaas/loadbalancers?project_id=" + url.QueryEscape(r.project) +
		"&fields=id&fields=provisioning_status&limit=1000"
}

func (r *runner) listProject(ctx context.Context) ([]lbRef, error) {
	var out struct {
		LoadBalancers []lbRef `json:"loadbalancers"`
	}
	if _, err := r.send(ctx, http.MethodGet, r.listPath(), nil, &out); err != nil {
		return nil, err
	}
	return out.LoadBalancers, nil
}

func (r *runner) createLB(ctx context.Context, name string) (string, error) {
	var out struct {
		LoadBalancer lbRef `json:"loadbalancer"`
	}
	body := map[string]any{"loadbalancer": map[string]any{"name": name, "vip_subnet_id": r.subnet, "project_id": r.project}}
	st, err := r.send(ctx, http.MethodPost, "/v2/lbaas/loadbalancers", body, &out)
	if err != nil {
		return "", err
	}
	if st != http.StatusCreated {
		return "", fmt.Errorf("create LB: HTTP %d", st)
	}
	return out.LoadBalancer.ID, nil
}

// waitLB polls GET /loadbalancers/{id}?fields=provisioning_status every
// 20 ms until ACTIVE (bench.py wait_lb).
func (r *runner) waitLB(ctx context.Context, id string) error {
	deadline := time.Now().Add(r.timeout)
	for {
		var out struct {
			LoadBalancer lbRef `json:"loadbalancer"`
		}
		st, err := r.send(ctx, http.MethodGet, "/v2/lbaas/loadbalancers/"+id+"?fields=provisioning_status", nil, &out)
		switch {
		case err != nil && st == http.StatusNotFound:
			return fmt.Errorf("load balancer %s is gone", id)
		case err != nil:
			return err
		case out.LoadBalancer.ProvisioningStatus == "ACTIVE":
			return nil
		case out.LoadBalancer.ProvisioningStatus == "ERROR":
			return fmt.Errorf("load balancer %s went to ERROR", id)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("load balancer %s not ACTIVE after %s (still %s)", id, r.timeout, out.LoadBalancer.ProvisioningStatus)
		}
		if err := sleep(ctx, pollLB); err != nil {
			return err
		}
	}
}

// waitAll polls the project's list every 50 ms until every id is ACTIVE
// (bench.py wait_all). It returns when each id was first seen ACTIVE.
func (r *runner) waitAll(ctx context.Context, ids []string) (map[string]time.Time, error) {
	pending := map[string]bool{}
	for _, id := range ids {
		pending[id] = true
	}
	seen := map[string]time.Time{}
	deadline := time.Now().Add(r.timeout)
	for len(pending) > 0 {
		lbs, err := r.listProject(ctx)
		if err != nil {
			return seen, err
		}
		now := time.Now()
		for _, lb := range lbs {
			if pending[lb.ID] && lb.ProvisioningStatus == "ACTIVE" {
				delete(pending, lb.ID)
				seen[lb.ID] = now
			}
			if lb.ProvisioningStatus == "ERROR" {
				return seen, fmt.Errorf("load balancer %s went to ERROR", lb.ID)
			}
		}
		if len(pending) == 0 {
			break
		}
		if now.After(deadline) {
			return seen, fmt.Errorf("%d load balancers not ACTIVE after %s", len(pending), r.timeout)
		}
		if err := sleep(ctx, pollList); err != nil {
			return seen, err
		}
	}
	return seen, nil
}

type createResult struct {
	Rep          int     `json:"rep"`
	N            int     `json:"n"`
	PostS        float64 `json:"post_s"`               // the N sequential POSTs
	AllActiveS   float64 `json:"all_active_s"`         // first POST until all ACTIVE
	PostP50Ms    float64 `json:"post_p50_ms"`          // one POST
	PostP95Ms    float64 `json:"post_p95_ms"`          //
	ToActiveP50S float64 `json:"post_to_active_p50_s"` // per LB: its POST until first seen ACTIVE
	ToActiveMaxS float64 `json:"post_to_active_max_s"` //
	AfterPostsS  float64 `json:"after_last_post_s"`    // last POST answered until all ACTIVE
	Error        string  `json:"error,omitempty"`
}

// createN POSTs n load balancers back to back and waits for all to be
// ACTIVE (bench.py create_lbs).
func (r *runner) createN(ctx context.Context, n int, tag string) (createResult, []string, error) {
	res := createResult{N: n}
	ids := make([]string, 0, n)
	sent := map[string]time.Time{}
	var posts []float64
	t0 := time.Now()
	for i := 0; i < n; i++ {
		ts := time.Now()
		id, err := r.createLB(ctx, fmt.Sprintf("bench-%s-%03d", tag, i))
		if err != nil {
			return res, ids, err
		}
		posts = append(posts, ms(time.Since(ts)))
		ids = append(ids, id)
		sent[id] = ts
	}
	tPosts := time.Now()
	res.PostS = tPosts.Sub(t0).Seconds()
	seen, err := r.waitAll(ctx, ids)
	if err != nil {
		return res, ids, err
	}
	res.AllActiveS = time.Since(t0).Seconds()
	res.AfterPostsS = time.Since(tPosts).Seconds()
	res.PostP50Ms, res.PostP95Ms = pct(posts, 50), pct(posts, 95)
	var to []float64
	for id, at := range seen {
		to = append(to, at.Sub(sent[id]).Seconds())
	}
	res.ToActiveP50S = pct(to, 50)
	res.ToActiveMaxS = pct(to, 100)
	return res, ids, nil
}

type deleteResult struct {
	N      int     `json:"n"`
	CallsS float64 `json:"delete_calls_s"` // the N sequential DELETE ?cascade=true
	GoneS  float64 `json:"gone_after_calls_s"`
	TotalS float64 `json:"total_s"` // first DELETE until the list is empty
}

// deleteAll cascade-deletes every load balancer of the project and waits
// until the list is empty (bench.py delete_all; bench.py's figure is
// gone_after_calls_s, the table uses total_s).
func (r *runner) deleteAll(ctx context.Context) (deleteResult, error) {
	var res deleteResult
	lbs, err := r.listProject(ctx)
	if err != nil {
		return res, err
	}
	res.N = len(lbs)
	t0 := time.Now()
	for _, lb := range lbs {
		st, err := r.send(ctx, http.MethodDelete, "/v2/lbaas/loadbalancers/"+lb.ID+"?cascade=true", nil, nil)
		// 409 (still PENDING_*), 404 and 5xx are retried by the loop below.
		if err != nil && st != http.StatusConflict && st != http.StatusNotFound && st < 500 {
			return res, err
		}
	}
	t1 := time.Now()
	res.CallsS = t1.Sub(t0).Seconds()
	deadline := time.Now().Add(r.timeout)
	lastTry := map[string]time.Time{}
	for {
		lbs, err := r.listProject(ctx)
		if err != nil {
			return res, err
		}
		if len(lbs) == 0 {
			break
		}
		for _, lb := range lbs {
			// Not deletable before (PENDING_*, or the DELETE failed) and
			// stable now: ask again, at most once a second.
			if (lb.ProvisioningStatus == "ACTIVE" || lb.ProvisioningStatus == "ERROR") && time.Since(lastTry[lb.ID]) > time.Second {
				lastTry[lb.ID] = time.Now()
				_, _ = r.send(ctx, http.MethodDelete, "/v2/lbaas/loadbalancers/"+lb.ID+"?cascade=true", nil, nil)
			}
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("%d load balancers still present after %s", len(lbs), r.timeout)
		}
		if err := sleep(ctx, pollDelete); err != nil {
			return res, err
		}
	}
	res.GoneS = time.Since(t1).Seconds()
	res.TotalS = time.Since(t0).Seconds()
	return res, nil
}

type stackResult struct {
	SeqS   float64            `json:"sequential_s"`
	StepsS map[string]float64 `json:"steps_s"` // call + wait until ACTIVE again, per object
	OneS   float64            `json:"single_call_s"`
}

// fullStack builds LB → listener → pool → 2 members → health monitor one
// call at a time, each once the LB is ACTIVE again, then the same stack as
// one fully populated POST (bench.py full_stack).
func (r *runner) fullStack(ctx context.Context, i int) (stackResult, error) {
	res := stackResult{StepsS: map[string]float64{}}
	post := func(path, key string, body map[string]any) (string, error) {
		var out map[string]map[string]any
		st, err := r.send(ctx, http.MethodPost, path, map[string]any{key: body}, &out)
		if err != nil {
			return "", err
		}
		if st != http.StatusCreated {
			return "", fmt.Errorf("POST %s: HTTP %d", path, st)
		}
		id, _ := out[key]["id"].(string)
		if id == "" {
			return "", fmt.Errorf("POST %s: no id in answer", path)
		}
		return id, nil
	}
	t0 := time.Now()
	step := func(name string, ts time.Time) { res.StepsS[name] = time.Since(ts).Seconds() }

	ts := time.Now()
	lb, err := post("/v2/lbaas/loadbalancers", "loadbalancer", map[string]any{
		"name": fmt.Sprintf("stack-%d", i), "vip_subnet_id": r.subnet, "project_id": r.project})
	if err != nil {
		return res, err
	}
	if err := r.waitLB(ctx, lb); err != nil {
		return res, err
	}
	step("1_loadbalancer", ts)

	ts = time.Now()
	lis, err := post("/v2/lbaas/listeners", "listener", map[string]any{
		"loadbalancer_id": lb, "protocol": "HTTP", "protocol_port": 80})
	if err != nil {
		return res, err
	}
	if err := r.waitLB(ctx, lb); err != nil {
		return res, err
	}
	step("2_listener", ts)

	ts = time.Now()
	pool, err := post("/v2/lbaas/pools", "pool", map[string]any{
		"listener_id": lis, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"})
	if err != nil {
		return res, err
	}
	if err := r.waitLB(ctx, lb); err != nil {
		return res, err
	}
	step("3_pool", ts)

	for k, a := range []string{"192.0.2.10", "192.0.2.11"} {
		ts = time.Now()
		if _, err := post("/v2/lbaas/pools/"+pool+"/members", "member", map[string]any{
			"address": a, "protocol_port": 8080}); err != nil {
			return res, err
		}
		if err := r.waitLB(ctx, lb); err != nil {
			return res, err
		}
		step(fmt.Sprintf("%d_member%d", 4+k, 1+k), ts)
	}

	ts = time.Now()
	if _, err := post("/v2/lbaas/healthmonitors", "healthmonitor", map[string]any{
		"pool_id": pool, "type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 3, "url_path": "/"}); err != nil {
		return res, err
	}
	if err := r.waitLB(ctx, lb); err != nil {
		return res, err
	}
	step("6_healthmonitor", ts)
	res.SeqS = time.Since(t0).Seconds()

	t1 := time.Now()
	one, err := post("/v2/lbaas/loadbalancers", "loadbalancer", map[string]any{
		"name": fmt.Sprintf("stack1call-%d", i), "vip_subnet_id": r.subnet, "project_id": r.project,
		"listeners": []any{map[string]any{"protocol": "HTTP", "protocol_port": 80,
			"default_pool": map[string]any{"name": fmt.Sprintf("p%d", i), "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
				"members": []any{
					map[string]any{"address": "192.0.2.10", "protocol_port": 8080},
					map[string]any{"address": "192.0.2.11", "protocol_port": 8080}},
				"healthmonitor": map[string]any{"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 3, "url_path": "/"}}}}})
	if err != nil {
		return res, err
	}
	if err := r.waitLB(ctx, one); err != nil {
		return res, err
	}
	res.OneS = time.Since(t1).Seconds()
	return res, nil
}

type latencyResult struct {
	N      int     `json:"n"`
	P50Ms  float64 `json:"p50_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MeanMs float64 `json:"mean_ms"`
	MinMs  float64 `json:"min_ms"`
	MaxMs  float64 `json:"max_ms"`
	Bytes  int     `json:"-"`
}

// sequentialGets sends n GETs one after another, each on a new connection
// (bench.py curl_latency).
func sequentialGets(ctx context.Context, u string, n int) (latencyResult, error) {
	hc := &http.Client{Transport: newTransport(false, 1), Timeout: 120 * time.Second}
	xs := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		d, st, err := timedGet(ctx, hc, u)
		if err != nil {
			return latencyResult{}, err
		}
		if st != http.StatusOK {
			return latencyResult{}, fmt.Errorf("GET %s: HTTP %d", u, st)
		}
		xs = append(xs, ms(d))
	}
	return summarize(xs), nil
}

func summarize(xs []float64) latencyResult {
	if len(xs) == 0 {
		return latencyResult{}
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return latencyResult{N: len(xs), P50Ms: pct(xs, 50), P95Ms: pct(xs, 95), P99Ms: pct(xs, 99),
		MeanMs: sum / float64(len(xs)), MinMs: pct(xs, 0), MaxMs: pct(xs, 100)}
}

type loadResult struct {
	KeepAlive   bool    `json:"keep_alive"`
	Concurrency int     `json:"concurrency"`
	DurationS   float64 `json:"duration_s"`
	Requests    int     `json:"requests"` // answered 200
	Errors      int     `json:"errors"`   // transport errors and non-200
	RPS         float64 `json:"rps"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	FirstError  string  `json:"first_error,omitempty"`
}

// load runs conc closed-loop clients for dur against u (what wrk -c8 does).
// Without keep-alive every request opens a new connection, which is what a
// client of Octavia's uwsgi gets anyway (it closes after every response).
func load(ctx context.Context, u string, conc int, dur time.Duration, keepAlive bool) loadResult {
	hc := &http.Client{Transport: newTransport(keepAlive, conc), Timeout: 10 * time.Second} // wrk --timeout 10s
	var (
		mu       sync.Mutex
		lat      []float64
		ok, errs int
		firstErr string
		wg       sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(dur)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]float64, 0, 1024)
			var lok, lerr int
			var lfirst string
			for time.Now().Before(end) && ctx.Err() == nil {
				d, st, err := timedGet(ctx, hc, u)
				switch {
				case err != nil:
					lerr++
					if lfirst == "" {
						lfirst = err.Error()
					}
				case st != http.StatusOK:
					lerr++
					if lfirst == "" {
						lfirst = fmt.Sprintf("HTTP %d", st)
					}
				default:
					lok++
					local = append(local, ms(d))
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			ok += lok
			errs += lerr
			if firstErr == "" {
				firstErr = lfirst
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	hc.CloseIdleConnections()
	res := loadResult{KeepAlive: keepAlive, Concurrency: conc, DurationS: elapsed.Seconds(), Requests: ok, Errors: errs,
		RPS: float64(ok) / elapsed.Seconds(), FirstError: firstErr}
	if len(lat) > 0 {
		res.P50Ms, res.P99Ms = pct(lat, 50), pct(lat, 99)
	}
	return res
}

// pct is bench.py's percentile: linear interpolation between ranks.
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	k := float64(len(s)-1) * p / 100
	f := int(k)
	c := min(f+1, len(s)-1)
	return s[f] + (s[c]-s[f])*(k-float64(f))
}

func median(xs []float64) float64 { return pct(xs, 50) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
