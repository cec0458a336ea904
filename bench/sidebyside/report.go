package main

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
)

type row struct {
	label        string
	unit         string
	higherBetter bool
	get          func(*tgtRes) []float64 // one value per repetition; the table shows the median
}

func each[T any](xs []T, f func(T) float64) []float64 {
	out := make([]float64, 0, len(xs))
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

func one(v float64) []float64 {
	if v == 0 {
		return nil
	}
	return []float64{v}
}

func rows(res *results) []row {
	n := res.LBs
	return []row{
		{fmt.Sprintf("a) GET /v2/lbaas/loadbalancers, %d LBs, %d sequential requests, new connection each: p50", 2*n, res.Requests), "ms", false,
			func(t *tgtRes) []float64 { return each(t.GetList, func(l latencyResult) float64 { return l.P50Ms }) }},
		{"a) same: p95", "ms", false, func(t *tgtRes) []float64 { return each(t.GetList, func(l latencyResult) float64 { return l.P95Ms }) }},
		{"a) same: p99", "ms", false, func(t *tgtRes) []float64 { return each(t.GetList, func(l latencyResult) float64 { return l.P99Ms }) }},
		{"a') GET one LB: p50", "ms", false, func(t *tgtRes) []float64 { return each(t.GetOne, func(l latencyResult) float64 { return l.P50Ms }) }},
		{"a') GET one LB: p95", "ms", false, func(t *tgtRes) []float64 { return each(t.GetOne, func(l latencyResult) float64 { return l.P95Ms }) }},
		{fmt.Sprintf("b) GET list, %d clients for %s, new connection per request: throughput", res.Concurrency, res.Duration), "req/s", true,
			func(t *tgtRes) []float64 { return each(t.Load, func(l loadResult) float64 { return l.RPS }) }},
		{"b) same: latency p50", "ms", false, func(t *tgtRes) []float64 { return each(t.Load, func(l loadResult) float64 { return l.P50Ms }) }},
		{"b) same: latency p99", "ms", false, func(t *tgtRes) []float64 { return each(t.Load, func(l loadResult) float64 { return l.P99Ms }) }},
		{"b) same with keep-alive (uwsgi closes anyway): throughput", "req/s", true,
			func(t *tgtRes) []float64 { return each(t.LoadKA, func(l loadResult) float64 { return l.RPS }) }},
		{fmt.Sprintf("c) %d LBs POSTed back to back: POST phase", n), "s", false,
			func(t *tgtRes) []float64 { return each(t.Create, func(c createResult) float64 { return c.PostS }) }},
		{fmt.Sprintf("c) %d LBs POSTed back to back: until all ACTIVE", n), "s", false,
			func(t *tgtRes) []float64 { return each(t.Create, func(c createResult) float64 { return c.AllActiveS }) }},
		{"c) one POST: p50", "ms", false,
			func(t *tgtRes) []float64 { return each(t.Create, func(c createResult) float64 { return c.PostP50Ms }) }},
		{"c) per LB, its POST until seen ACTIVE: p50", "s", false,
			func(t *tgtRes) []float64 {
				return each(t.Create, func(c createResult) float64 { return c.ToActiveP50S })
			}},
		{"c) CPU time of the server processes during c (Octavia: API + worker; Ostia: `ostia up`)", "cpu s", false,
			func(t *tgtRes) []float64 { return t.CreateCPU }},
		{"c) CPU time of database + broker during c (MariaDB + RabbitMQ; Ostia's PostgreSQL backends)", "cpu s", false,
			func(t *tgtRes) []float64 { return t.CreateDBCPU }},
		{fmt.Sprintf("c') cascade delete of the %d until gone (DELETE calls + wait)", n), "s", false,
			func(t *tgtRes) []float64 { return each(t.Delete, func(d deleteResult) float64 { return d.TotalS }) }},
		{"d) full stack object by object (LB, listener, pool, 2 members, HM) until ACTIVE", "s", false,
			func(t *tgtRes) []float64 { return each(t.Stacks, func(s stackResult) float64 { return s.SeqS }) }},
		{"d') same stack as one fully populated POST until ACTIVE", "s", false,
			func(t *tgtRes) []float64 { return each(t.Stacks, func(s stackResult) float64 { return s.OneS }) }},
		{"e) RSS of the server processes at idle", "MiB", false,
			func(t *tgtRes) []float64 { return one(totalMiB(t.RSSIdle)) }},
		{"e) RSS of the server processes after the run", "MiB", false,
			func(t *tgtRes) []float64 { return one(totalMiB(t.RSSAfter)) }},
		{"HTTP 5xx answers during the run (each retried)", "count", false,
			func(t *tgtRes) []float64 { return []float64{float64(t.ServerErrors)} }},
	}
}

func fmtVal(v float64, unit string) string {
	switch unit {
	case "ms":
		if v < 10 {
			return fmt.Sprintf("%.2f ms", v)
		}
		return fmt.Sprintf("%.1f ms", v)
	case "s", "cpu s":
		if v < 1 {
			return fmt.Sprintf("%.3f %s", v, unit)
		}
		return fmt.Sprintf("%.2f %s", v, unit)
	case "req/s":
		return fmt.Sprintf("%.1f req/s", v)
	case "MiB":
		return fmt.Sprintf("%.0f MiB", v)
	case "count":
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g %s", v, unit)
}

func ratio(oct, ost float64, higherBetter bool) string {
	if oct <= 0 || ost <= 0 {
		return "—"
	}
	r := oct / ost
	if higherBetter {
		r = ost / oct
	}
	word := "better"
	if r < 1 {
		r, word = 1/r, "worse"
	}
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0fx %s", r, word)
	case r >= 10:
		return fmt.Sprintf("%.0fx %s", r, word)
	default:
		return fmt.Sprintf("%.1fx %s", r, word)
	}
}

// renderTable is the markdown report: the side-by-side table (medians over
// the repetitions) and where Ostia's time went while creating.
func renderTable(res *results) string {
	var sb strings.Builder
	oct, ost := res.Targets["octavia"], res.Targets["ostia"]
	sb.WriteString("| metric | Octavia | Ostia | ratio |\n|---|---|---|---|\n")
	for _, r := range rows(res) {
		var vo, vs float64
		co, cs := "—", "—"
		if oct != nil {
			if xs := r.get(oct); len(xs) > 0 {
				vo = median(xs)
				co = fmtVal(vo, r.unit)
			}
		}
		if ost != nil {
			if xs := r.get(ost); len(xs) > 0 {
				vs = median(xs)
				cs = fmtVal(vs, r.unit)
			}
		}
		rt := ratio(vo, vs, r.higherBetter)
		if r.unit == "count" {
			rt = "—"
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s |\n", r.label, co, cs, rt)
	}
	fmt.Fprintf(&sb, "\nMedians over %d repetitions (d and d': %d stacks per repetition) measured %s on %d CPUs; load average at start %s, at end %s.\n",
		res.Reps, stacksPerRep(res), res.Started.Format("2006-01-02 15:04 UTC"), res.Host.CPUs, res.Host.LoadAvg, res.Host.LoadEnd)
	for _, t := range []*tgtRes{oct, ost} {
		if t != nil && len(t.FirstServerErrors) > 0 {
			fmt.Fprintf(&sb, "\n%s 5xx answers (first %d of %d, each retried):\n", t.Name, len(t.FirstServerErrors), t.ServerErrors)
			for _, e := range t.FirstServerErrors {
				fmt.Fprintf(&sb, "- %s\n", truncate(e, 400))
			}
		}
		if t != nil && len(t.Errors) > 0 {
			fmt.Fprintf(&sb, "\n%s errors:\n", t.Name)
			for _, e := range t.Errors {
				fmt.Fprintf(&sb, "- %s\n", e)
			}
		}
	}
	if ost != nil && len(ost.Stacks) > 0 {
		sb.WriteString("\nPer step of d (call + wait until ACTIVE again), medians:\n\n| step | Octavia | Ostia |\n|---|---|---|\n")
		for _, k := range stepNames(ost, oct) {
			get := func(t *tgtRes) string {
				if t == nil {
					return "—"
				}
				xs := each(t.Stacks, func(s stackResult) float64 { return s.StepsS[k] })
				if len(xs) == 0 {
					return "—"
				}
				return fmtVal(median(xs), "s")
			}
			fmt.Fprintf(&sb, "| %s | %s | %s |\n", strings.Replace(k, "_", ". ", 1), get(oct), get(ost))
		}
	}
	if ost != nil && len(ost.LogLines) > 0 {
		keys := make([]string, 0, len(ost.LogLines))
		for k := range ost.LogLines {
			keys = append(keys, k)
		}
		sortStrings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%q: %d", k, ost.LogLines[k]))
		}
		fmt.Fprintf(&sb, "\nOstia's log, lines matching: %s.\n", strings.Join(parts, ", "))
	}
	if ost != nil {
		// The metrics of the repetition of c with the median wall time.
		if i := medianIndex(each(ost.Create, func(c createResult) float64 { return c.AllActiveS })); i >= 0 {
			want := fmt.Sprintf("(rep %d)", ost.Create[i].Rep)
			for _, b := range ost.Breakdown {
				if strings.HasPrefix(b.Phase, "create") && strings.HasSuffix(b.Phase, want) {
					sb.WriteString("\n```\n" + b.String() + "```\n")
					break
				}
			}
		}
	}
	return sb.String()
}

// medianIndex is the index of the median (the lower one for an even count).
func medianIndex(xs []float64) int {
	if len(xs) == 0 {
		return -1
	}
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return xs[idx[a]] < xs[idx[b]] })
	return idx[(len(xs)-1)/2]
}

func stacksPerRep(res *results) int {
	for _, t := range res.Targets {
		if len(t.Stacks) > 0 {
			return len(t.Stacks) / res.Reps
		}
	}
	return 0
}

func stepNames(ts ...*tgtRes) []string {
	set := map[string]bool{}
	for _, t := range ts {
		if t == nil {
			continue
		}
		for _, s := range t.Stacks {
			for k := range s.StepsS {
				set[k] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}

func sortStrings(s []string) { sort.Strings(s) }

func numCPU() int { return runtime.NumCPU() }
