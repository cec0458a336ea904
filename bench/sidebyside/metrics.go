package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// series maps a Prometheus series ("name{labels}") to its value.
type series map[string]float64

// scrape reads a Prometheus text exposition (only what the table needs:
// counters, and the _sum/_count of histograms).
func scrape(ctx context.Context, u string) (series, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := series{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' || strings.Contains(l, "_bucket{") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			continue
		}
		out[l[:i]] = v
	}
	return out, sc.Err()
}

func splitSeries(s string) (name string, labels map[string]string) {
	labels = map[string]string{}
	i := strings.IndexByte(s, '{')
	if i < 0 {
		return s, labels
	}
	name = s[:i]
	body := strings.TrimSuffix(s[i+1:], "}")
	for body != "" {
		eq := strings.IndexByte(body, '=')
		if eq < 0 || eq+1 >= len(body) || body[eq+1] != '"' {
			break
		}
		k := body[:eq]
		rest := body[eq+2:]
		var val strings.Builder
		j := 0
		for ; j < len(rest); j++ {
			if rest[j] == '\\' && j+1 < len(rest) {
				j++
				val.WriteByte(rest[j])
				continue
			}
			if rest[j] == '"' {
				break
			}
			val.WriteByte(rest[j])
		}
		labels[k] = val.String()
		body = strings.TrimPrefix(rest[min(j+1, len(rest)):], ",")
	}
	return name, labels
}

// timing is the count and total seconds of a histogram over one phase.
type timing struct {
	What   string  `json:"what"`
	Count  float64 `json:"count"`
	SumS   float64 `json:"sum_s"`
	MeanMs float64 `json:"mean_ms"`
}

// breakdown is where Ostia spent its time during one phase, from the
// deltas of its own histograms.
type breakdown struct {
	Phase      string   `json:"phase"`
	CPUSeconds float64  `json:"process_cpu_s"`
	Timings    []timing `json:"timings"`
}

// histograms whose _sum/_count deltas are reported, with the labels that
// name a row.
var histograms = []struct {
	name   string
	labels []string
}{
	{"ostia_api_request_seconds", []string{"route"}},
	{"ostia_saga_step_seconds", []string{"saga", "step", "outcome"}},
	{"ostia_consumer_handle_seconds", []string{"consumer", "topic"}},
	{"ostia_relay_batch_seconds", nil},
	{"ostia_projection_lag_seconds", nil},
}

func diffBreakdown(phase string, before, after series) breakdown {
	b := breakdown{Phase: phase, CPUSeconds: after["process_cpu_seconds_total"] - before["process_cpu_seconds_total"]}
	acc := map[string]*timing{}
	for key, v := range after {
		name, labels := splitSeries(key)
		for _, h := range histograms {
			var isSum bool
			switch name {
			case h.name + "_sum":
				isSum = true
			case h.name + "_count":
			default:
				continue
			}
			parts := []string{strings.TrimPrefix(h.name, "ostia_")}
			for _, l := range h.labels {
				parts = append(parts, labels[l])
			}
			what := strings.Join(parts, " ")
			t := acc[what]
			if t == nil {
				t = &timing{What: what}
				acc[what] = t
			}
			d := v - before[key]
			if isSum {
				t.SumS += d
			} else {
				t.Count += d
			}
		}
	}
	for _, t := range acc {
		if t.Count <= 0 {
			continue
		}
		t.MeanMs = t.SumS / t.Count * 1000
		b.Timings = append(b.Timings, *t)
	}
	sort.Slice(b.Timings, func(i, j int) bool { return b.Timings[i].What < b.Timings[j].What })
	return b
}

func (b breakdown) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Ostia, %s: process CPU %.2f s\n", b.Phase, b.CPUSeconds)
	fmt.Fprintf(&sb, "  %-70s %8s %10s %10s\n", "histogram", "count", "total s", "mean ms")
	for _, t := range b.Timings {
		fmt.Fprintf(&sb, "  %-70s %8.0f %10.3f %10.2f\n", truncate(t.What, 70), t.Count, t.SumS, t.MeanMs)
	}
	return sb.String()
}
