// Command sidebyside runs the same benchmark scenarios against Ostia and the
// real OpenStack Octavia 11 (noop drivers, ../shared/anchors/octavia) in one
// run and prints a side-by-side markdown table with ratios.
//
// The scenarios are those of the anchor's bench.py (same request bodies,
// same polling queries and intervals, a new TCP connection per request):
//
//	a   GET /v2/lbaas/loadbalancers with 100 LBs, 200 sequential requests: p50/p95/p99
//	a'  GET one LB, 200 sequential requests: p50/p95
//	b   GET list, 8 closed-loop clients for --duration: req/s (new connection
//	    per request, as Octavia's uwsgi closes every connection; keep-alive too)
//	c   50 LBs POSTed back to back until all ACTIVE, and the POST phase alone
//	c'  cascade delete of those 50 until the list is empty
//	d   LB, listener, pool, 2 members, health monitor one call at a time
//	    (each once the LB is ACTIVE again) until the final ACTIVE
//	d'  the same stack as one fully populated POST until ACTIVE
//	e   RSS of the server processes at idle and after the run
//
// Ostia is built from ./cmd/ostia and started with `ostia up` on a fresh
// database (embedded broker, noauth, noop driver). Octavia is used at
// --octavia, or started with the anchor's setup.sh when --start-octavia is
// given (stop.sh afterwards).
//
// Usage (from the repository root):
//
//	go run ./bench/sidebyside --start-octavia --out bench-compare.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type options struct {
	only        string
	reps        int
	duration    time.Duration
	concurrency int
	requests    int
	stacks      int
	lbs         int
	keepAlive   bool
	timeout     time.Duration
	project     string
	subnet      string
	out         string
	markdown    string
	ostiaLog    string
	render      string

	octaviaURL   string
	startOctavia bool
	octaviaDir   string
	octaviaState string
	octaviaPids  string

	repo           string
	ostiaBin       string
	ostiaURL       string
	ostiaMetrics   string
	ostiaPID       int
	ostiaEnv       multiFlag
	adminDB        string
	workDir        string
	keep           bool
	buildRetries   int
	buildRetryWait time.Duration
}

func main() {
	o := &options{}
	flag.StringVar(&o.only, "only", "both", "which servers to run: ostia, octavia or both")
	flag.IntVar(&o.reps, "reps", 3, "repetitions of each scenario; the table shows medians over them")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "length of each throughput run (b)")
	flag.IntVar(&o.concurrency, "concurrency", 8, "concurrent clients in the throughput runs (b)")
	flag.IntVar(&o.requests, "requests", 200, "sequential GETs per latency run (a, a')")
	flag.IntVar(&o.stacks, "stacks", 2, "full stacks (d, d') built per repetition")
	flag.IntVar(&o.lbs, "lbs", 50, "load balancers created back to back (c); the GET scenarios run with twice as many")
	flag.BoolVar(&o.keepAlive, "keepalive", true, "also measure (b) with keep-alive connections")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "longest wait for load balancers to become ACTIVE or go away")
	flag.StringVar(&o.project, "project", "5b5b5b5b5b5b4c1d8e8e5b5b5b5b5b5b", "project_id the benchmark's load balancers belong to")
	flag.StringVar(&o.subnet, "subnet", "8f0b8a61-5c2f-4b8b-9b8e-4a0bd1d0c0de", "vip_subnet_id (any UUID works with noop drivers)")
	flag.StringVar(&o.out, "out", "", "write the raw results as JSON to this file")
	flag.StringVar(&o.markdown, "markdown", "", "also write the table to this file")
	flag.StringVar(&o.render, "render", "", "print the table of an earlier run's --out JSON file and exit (runs nothing)")
	flag.StringVar(&o.ostiaLog, "ostia-log", "", "copy the log of the ostia up process this run started to this file")

	flag.StringVar(&o.octaviaURL, "octavia", "http://127.0.0.1:9876", "URL of a running Octavia (noauth)")
	flag.BoolVar(&o.startOctavia, "start-octavia", false, "start Octavia with the anchor's setup.sh when it is not running, and stop it with stop.sh afterwards")
	flag.StringVar(&o.octaviaDir, "octavia-dir", "../shared/anchors/octavia", "the Octavia anchor (setup.sh, stop.sh, cli-stub.py)")
	flag.StringVar(&o.octaviaState, "octavia-state", "/var/tmp/ostia-sidebyside/octavia", "where the anchor's scripts are copied and run (etc/, run/, logs/)")
	flag.StringVar(&o.octaviaPids, "octavia-pids", "", "the anchor's run/pids for RSS and CPU (default: the one of the running anchor)")

	flag.StringVar(&o.repo, "repo", ".", "the Ostia repository (where ./cmd/ostia is built)")
	flag.StringVar(&o.ostiaBin, "ostia-bin", "", "use this ostia binary instead of building ./cmd/ostia")
	flag.StringVar(&o.ostiaURL, "ostia", "", "use a running Ostia at this URL instead of starting one")
	flag.StringVar(&o.ostiaMetrics, "ostia-metrics", "", "with --ostia: its metrics URL (http://host:port/metrics)")
	flag.IntVar(&o.ostiaPID, "ostia-pid", 0, "with --ostia: the pid of its ostia up process, for RSS and CPU")
	flag.Var(&o.ostiaEnv, "ostia-env", "extra KEY=VALUE in the environment of ostia up (repeatable), e.g. OSTIA_RELAY_POLL_INTERVAL=5ms")
	flag.StringVar(&o.adminDB, "admin-db", "postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL admin URL used to create (and drop) Ostia's fresh database")
	flag.StringVar(&o.workDir, "workdir", "", "directory for Ostia's binary, broker data and log (default: a temporary one)")
	flag.BoolVar(&o.keep, "keep", false, "keep Ostia's database and work directory")
	flag.IntVar(&o.buildRetries, "build-retries", 3, "retries when ./cmd/ostia does not build (others may be editing)")
	flag.DurationVar(&o.buildRetryWait, "build-retry-wait", 2*time.Minute, "pause between build retries")
	flag.Parse()

	switch o.only {
	case "both", "ostia", "octavia":
	default:
		fatalf("--only: want ostia, octavia or both, got %q", o.only)
	}
	if o.reps < 1 || o.stacks < 1 || o.lbs < 1 || o.requests < 1 || o.concurrency < 1 {
		fatalf("--reps, --stacks, --lbs, --requests and --concurrency must be at least 1")
	}
	if abs, err := filepath.Abs(o.octaviaDir); err == nil {
		o.octaviaDir = abs
	}
	if abs, err := filepath.Abs(o.repo); err == nil {
		o.repo = abs
	}

	if o.render != "" {
		b, err := os.ReadFile(o.render)
		if err != nil {
			fatalf("%v", err)
		}
		var res results
		if err := json.Unmarshal(b, &res); err != nil {
			fatalf("%s: %v", o.render, err)
		}
		fmt.Println(renderTable(&res))
		return
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	res, err := run(ctx, o)
	if res != nil {
		table := renderTable(res)
		fmt.Println(table)
		if o.markdown != "" {
			if werr := os.WriteFile(o.markdown, []byte(table), 0o644); werr != nil {
				logf("write %s: %v", o.markdown, werr)
			}
		}
		if o.out != "" {
			b, _ := json.MarshalIndent(res, "", "  ")
			if werr := os.WriteFile(o.out, append(b, '\n'), 0o644); werr != nil {
				logf("write %s: %v", o.out, werr)
			} else {
				logf("wrote %s", o.out)
			}
		}
	}
	if err != nil {
		fatalf("%v", err)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func fatalf(format string, args ...any) {
	logf("sidebyside: "+format, args...)
	os.Exit(1)
}

// ---------------------------------------------------------------- results

type results struct {
	Started     time.Time          `json:"started"`
	Finished    time.Time          `json:"finished"`
	Command     string             `json:"command"`
	Host        hostInfo           `json:"host"`
	Reps        int                `json:"reps"`
	Duration    string             `json:"duration"`
	Concurrency int                `json:"concurrency"`
	Requests    int                `json:"requests"`
	LBs         int                `json:"lbs"`
	Targets     map[string]*tgtRes `json:"targets"`
}

type hostInfo struct {
	CPUs     int    `json:"cpus"`
	LoadAvg  string `json:"loadavg_at_start"`
	LoadEnd  string `json:"loadavg_at_end"`
	Hostname string `json:"hostname"`
}

type tgtRes struct {
	Name string `json:"name"`
	Base string `json:"base"`

	RSSIdle         map[string]rssInfo `json:"rss_idle"`
	RSSAfter        map[string]rssInfo `json:"rss_after"`
	RSSAfterCleanup map[string]rssInfo `json:"rss_after_cleanup"`

	Stacks      []stackResult  `json:"full_stacks"`                // d, d'
	StackDelete []deleteResult `json:"full_stacks_cascade_delete"` // clean-up after d
	Create      []createResult `json:"create"`                     // c
	CreateCPU   []float64      `json:"create_server_cpu_s"`        // server CPU during c
	CreateDBCPU []float64      `json:"create_db_broker_cpu_s"`     // database (+ broker) CPU during c
	Delete      []deleteResult `json:"cascade_delete"`             // c'

	Fill      createResult    `json:"fill"` // creating the LBs the GET scenarios read
	ListCount int             `json:"lbs_visible_in_list"`
	GetList   []latencyResult `json:"get_list_latency"` // a
	GetOne    []latencyResult `json:"get_one_latency"`  // a'
	Load      []loadResult    `json:"get_list_load"`    // b
	LoadKA    []loadResult    `json:"get_list_load_keepalive"`
	LoadCPU   []float64       `json:"get_list_load_server_cpu_s"`
	DeleteAll deleteResult    `json:"cascade_delete_all"`

	LogLines          map[string]int `json:"ostia_log_lines,omitempty"` // lines of Ostia's log matching each pattern
	ServerErrors      int            `json:"http_5xx_retried"`
	FirstServerErrors []string       `json:"first_5xx,omitempty"`

	Breakdown []breakdown `json:"ostia_metrics,omitempty"`
	Errors    []string    `json:"errors,omitempty"`

	t *target
	r *runner
}

func (t *tgtRes) fail(phase string, err error) {
	msg := fmt.Sprintf("%s: %v", phase, err)
	logf("%s: ERROR %s", t.Name, msg)
	t.Errors = append(t.Errors, msg)
}

func readLoadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

// ------------------------------------------------------------------- run

func run(ctx context.Context, o *options) (*results, error) {
	host, _ := os.Hostname()
	res := &results{Started: time.Now().UTC(), Command: strings.Join(os.Args, " "), Reps: o.reps,
		Duration: o.duration.String(), Concurrency: o.concurrency, Requests: o.requests, LBs: o.lbs,
		Host: hostInfo{CPUs: numCPU(), LoadAvg: readLoadAvg(), Hostname: host}, Targets: map[string]*tgtRes{}}

	var order []*tgtRes
	// Octavia first: setup.sh may take minutes, and Ostia should not sit
	// idle meanwhile (its idle RSS is taken right after its own start).
	if o.only != "ostia" {
		t, err := startOctavia(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("octavia: %w", err)
		}
		defer t.stop()
		order = append(order, &tgtRes{Name: t.Name, Base: t.Base, t: t})
	}
	if o.only != "octavia" {
		t, err := startOstia(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("ostia: %w", err)
		}
		defer t.stop()
		order = append(order, &tgtRes{Name: t.Name, Base: t.Base, t: t})
	}
	for _, tr := range order {
		res.Targets[strings.ToLower(tr.Name)] = tr
		tr.r = &runner{c: newClient(tr.Base), project: o.project, subnet: o.subnet, timeout: o.timeout}
	}

	// e (idle): clean state, a little warm-up, two quiet seconds.
	for _, tr := range order {
		if d, err := tr.r.deleteAll(ctx); err != nil {
			return res, fmt.Errorf("%s: initial clean-up: %w", tr.Name, err)
		} else if d.N > 0 {
			logf("%s: deleted %d load balancers left from an earlier run", tr.Name, d.N)
		}
		if _, err := sequentialGets(ctx, tr.Base+"/v2/lbaas/loadbalancers", 20); err != nil {
			return res, fmt.Errorf("%s: warm-up: %w", tr.Name, err)
		}
	}
	if err := sleep(ctx, 2*time.Second); err != nil {
		return res, err
	}
	for _, tr := range order {
		tr.RSSIdle = tr.t.rss()
		logf("%s: idle RSS %.0f MiB", tr.Name, totalMiB(tr.RSSIdle))
	}

	// d, d', c, c': the repetitions alternate between the servers so that
	// load from elsewhere on the machine hits both alike.
	for rep := 0; rep < o.reps; rep++ {
		for _, tr := range order {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			writePhase(ctx, tr, rep, o)
		}
	}

	// a, a', b on 2×lbs load balancers (100 by default, as in results.md).
	for _, tr := range order {
		if lbs, err := tr.r.listProject(ctx); err == nil && len(lbs) > 0 {
			logf("%s: %d load balancers left over; deleting them first", tr.Name, len(lbs))
			if _, err := tr.r.deleteAll(ctx); err != nil {
				tr.fail("clean-up before the GET scenarios", err)
			}
		}
		logf("%s: creating %d load balancers for the GET scenarios", tr.Name, 2*o.lbs)
		fill, _, err := tr.r.createN(ctx, 2*o.lbs, "fill")
		if err != nil {
			tr.fail("fill", err)
			fill.Error = err.Error()
		}
		tr.Fill = fill
		logf("%s: %d POSTs in %.2fs, all ACTIVE after %.2fs", tr.Name, fill.N, fill.PostS, fill.AllActiveS)
		var list struct {
			LoadBalancers []lbRef `json:"loadbalancers"`
		}
		if _, err := tr.r.c.do(ctx, "GET", "/v2/lbaas/loadbalancers", nil, &list); err == nil {
			tr.ListCount = len(list.LoadBalancers)
		}
		if tr.ListCount != 2*o.lbs {
			logf("%s: note: GET /v2/lbaas/loadbalancers lists %d load balancers, not %d", tr.Name, tr.ListCount, 2*o.lbs)
		}
	}
	for rep := 0; rep < o.reps; rep++ {
		for _, tr := range order {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			readPhase(ctx, tr, rep, o)
		}
	}

	// e (after), then clean up.
	for _, tr := range order {
		tr.RSSAfter = tr.t.rss()
		logf("%s: RSS after the run %.0f MiB", tr.Name, totalMiB(tr.RSSAfter))
		d, err := tr.r.deleteAll(ctx)
		if err != nil {
			tr.fail("final clean-up", err)
		}
		tr.DeleteAll = d
		logf("%s: cascade-deleted %d in %.2fs", tr.Name, d.N, d.TotalS)
	}
	if err := sleep(ctx, 2*time.Second); err == nil {
		for _, tr := range order {
			tr.RSSAfterCleanup = tr.t.rss()
		}
	}
	for _, tr := range order {
		tr.ServerErrors, tr.FirstServerErrors = tr.r.serverErrors, tr.r.firstErrors
		if tr.t.LogPath != "" {
			tr.LogLines = countLog(tr.t.LogPath)
		}
	}
	res.Finished = time.Now().UTC()
	res.Host.LoadEnd = readLoadAvg()
	return res, nil
}

// writePhase runs d, d' (o.stacks times), then c and c'.
func writePhase(ctx context.Context, tr *tgtRes, rep int, o *options) {
	for i := 0; i < o.stacks; i++ {
		s, err := tr.r.fullStack(ctx, rep*o.stacks+i)
		if err != nil {
			tr.fail(fmt.Sprintf("full stack rep %d", rep), err)
			break
		}
		tr.Stacks = append(tr.Stacks, s)
		logf("%s: rep %d stack %d: object by object %.2fs %s, one call %.2fs", tr.Name, rep, i, s.SeqS, fmtSteps(s.StepsS), s.OneS)
	}
	if d, err := tr.r.deleteAll(ctx); err != nil {
		tr.fail(fmt.Sprintf("stack clean-up rep %d", rep), err)
		return
	} else {
		tr.StackDelete = append(tr.StackDelete, d)
	}

	before := scrapeOrNil(ctx, tr.t)
	cpu0, db0 := tr.t.cpuSeconds(), tr.t.infraTicks()
	c, _, err := tr.r.createN(ctx, o.lbs, fmt.Sprintf("c%d", rep))
	c.Rep = rep
	cpu, dbCPU := tr.t.cpuSeconds()-cpu0, tr.t.infraTicks().since(db0)
	if err != nil {
		tr.fail(fmt.Sprintf("create rep %d", rep), err)
		c.Error = err.Error()
	} else {
		tr.Create = append(tr.Create, c)
		tr.CreateCPU = append(tr.CreateCPU, cpu)
		tr.CreateDBCPU = append(tr.CreateDBCPU, dbCPU)
		logf("%s: rep %d: %d POSTs took %.2fs, all ACTIVE after %.2fs (per LB POST→ACTIVE p50 %.2fs, max %.2fs); server CPU %.1fs, database/broker CPU %.1fs",
			tr.Name, rep, c.N, c.PostS, c.AllActiveS, c.ToActiveP50S, c.ToActiveMaxS, cpu, dbCPU)
	}
	if after := scrapeOrNil(ctx, tr.t); before != nil && after != nil {
		b := diffBreakdown(fmt.Sprintf("create %d LBs (rep %d)", o.lbs, rep), before, after)
		tr.Breakdown = append(tr.Breakdown, b)
	}
	before = scrapeOrNil(ctx, tr.t)
	d, err := tr.r.deleteAll(ctx)
	if err != nil {
		tr.fail(fmt.Sprintf("cascade delete rep %d", rep), err)
		return
	}
	tr.Delete = append(tr.Delete, d)
	logf("%s: rep %d: cascade-deleted %d: DELETE calls %.2fs, gone %.2fs later, %.2fs in all", tr.Name, rep, d.N, d.CallsS, d.GoneS, d.TotalS)
	if after := scrapeOrNil(ctx, tr.t); before != nil && after != nil {
		tr.Breakdown = append(tr.Breakdown, diffBreakdown(fmt.Sprintf("cascade delete %d LBs (rep %d)", d.N, rep), before, after))
	}
}

// readPhase runs a, a' and b.
func readPhase(ctx context.Context, tr *tgtRes, rep int, o *options) {
	listURL := tr.Base + "/v2/lbaas/loadbalancers"
	l, err := sequentialGets(ctx, listURL, o.requests)
	if err != nil {
		tr.fail(fmt.Sprintf("GET list rep %d", rep), err)
	} else {
		tr.GetList = append(tr.GetList, l)
		logf("%s: rep %d: GET list p50 %.1fms p95 %.1fms p99 %.1fms", tr.Name, rep, l.P50Ms, l.P95Ms, l.P99Ms)
	}
	lbs, err := tr.r.listProject(ctx)
	if err != nil || len(lbs) == 0 {
		tr.fail(fmt.Sprintf("GET one rep %d", rep), fmt.Errorf("no load balancer to read (%v)", err))
	} else {
		one, err := sequentialGets(ctx, listURL+"/"+lbs[0].ID, o.requests)
		if err != nil {
			tr.fail(fmt.Sprintf("GET one rep %d", rep), err)
		} else {
			tr.GetOne = append(tr.GetOne, one)
			logf("%s: rep %d: GET one p50 %.1fms p95 %.1fms", tr.Name, rep, one.P50Ms, one.P95Ms)
		}
	}
	before := scrapeOrNil(ctx, tr.t)
	cpu0 := tr.t.cpuSeconds()
	b := load(ctx, listURL, o.concurrency, o.duration, false)
	tr.LoadCPU = append(tr.LoadCPU, tr.t.cpuSeconds()-cpu0)
	tr.Load = append(tr.Load, b)
	logf("%s: rep %d: GET list c=%d new connections: %.1f req/s (p50 %.1fms, p99 %.1fms, %d errors %s)",
		tr.Name, rep, b.Concurrency, b.RPS, b.P50Ms, b.P99Ms, b.Errors, b.FirstError)
	if after := scrapeOrNil(ctx, tr.t); before != nil && after != nil && rep == 0 {
		tr.Breakdown = append(tr.Breakdown, diffBreakdown(fmt.Sprintf("GET list load, %s (rep %d)", o.duration, rep), before, after))
	}
	if o.keepAlive {
		k := load(ctx, listURL, o.concurrency, o.duration, true)
		tr.LoadKA = append(tr.LoadKA, k)
		logf("%s: rep %d: GET list c=%d keep-alive: %.1f req/s (p50 %.1fms, p99 %.1fms, %d errors %s)",
			tr.Name, rep, k.Concurrency, k.RPS, k.P50Ms, k.P99Ms, k.Errors, k.FirstError)
	}
}

func scrapeOrNil(ctx context.Context, t *target) series {
	if t.MetricsURL == "" {
		return nil
	}
	s, err := scrape(ctx, t.MetricsURL)
	if err != nil {
		logf("%s: scrape %s: %v", t.Name, t.MetricsURL, err)
		return nil
	}
	return s
}

func fmtSteps(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%.2f", k, m[k]))
	}
	return "(" + strings.Join(parts, " ") + ")"
}
