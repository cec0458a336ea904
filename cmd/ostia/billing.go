package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/ostia/ostia/projections"
)

// runBilling is `ostia billing`: usage per project, load balancer, listener
// and amphora in a time window: hours active (from the event log, clipped
// to the window) and traffic (bytes in/out, connections, request errors,
// from the health manager's statistics).
func runBilling(ctx context.Context, env *environment, args []string) error {
	fs, path := newFlags(env, "billing")
	project := fs.String("project", "", "project id (default: every project)")
	from := fs.String("from", "", "start of the window, inclusive (RFC 3339 or a date); required")
	to := fs.String("to", "", "end of the window, exclusive (RFC 3339 or a date; default: now)")
	format := fs.String("format", "table", "output format: table, csv or json")
	generation := fs.Int64("generation", 0, "read this generation of the read models (default: the current one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("billing: unexpected arguments %v", fs.Args())
	}
	switch *format {
	case "table", "csv", "json":
	default:
		return fmt.Errorf("billing: --format: want table, csv or json, got %q", *format)
	}
	if *from == "" {
		return fmt.Errorf("billing: --from is required")
	}
	q := projections.UsageQuery{ProjectID: *project, Generation: *generation}
	var err error
	if q.From, err = parseTime(*from); err != nil {
		return fmt.Errorf("billing: --from: %w", err)
	}
	q.Now = time.Now()
	q.To = q.Now
	if *to != "" {
		if q.To, err = parseTime(*to); err != nil {
			return fmt.Errorf("billing: --to: %w", err)
		}
	}
	b, err := setup(env, *path)
	if err != nil {
		return err
	}
	pool, err := b.openDB(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	p, err := b.newProjections(pool, -1)
	if err != nil {
		return err
	}
	rep, err := p.Usage(ctx, q)
	if err != nil {
		return err
	}
	switch *format {
	case "json":
		return writeJSON(env.stdout, rep)
	case "csv":
		return writeUsageCSV(env.stdout, rep)
	}
	return writeUsageTable(env.stdout, rep)
}

func hours(h float64) string { return strconv.FormatFloat(h, 'f', 3, 64) }

func timeOrEmpty(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func writeUsageCSV(w io.Writer, rep *projections.UsageReport) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"project_id", "resource_type", "resource_id", "loadbalancer_id", "active_from", "active_until",
		"hours", "bytes_in", "bytes_out", "total_connections", "request_errors"})
	for _, l := range rep.Resources {
		_ = cw.Write([]string{l.ProjectID, l.ResourceType, l.ResourceID, l.LoadBalancerID, l.ActiveFrom.UTC().Format(time.RFC3339),
			timeOrEmpty(l.ActiveUntil), hours(l.Hours), strconv.FormatInt(l.BytesIn, 10), strconv.FormatInt(l.BytesOut, 10),
			strconv.FormatInt(l.TotalConnections, 10), strconv.FormatInt(l.RequestErrors, 10)})
	}
	cw.Flush()
	return cw.Error()
}

func writeUsageTable(w io.Writer, rep *projections.UsageReport) error {
	fmt.Fprintf(w, "usage from %s to %s (generation %d)\n\n", rep.From.Format(time.RFC3339), rep.To.Format(time.RFC3339),
		rep.Generation)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PROJECT\tLOAD BALANCERS\tLB HOURS\tLISTENERS\tLISTENER HOURS\tAMPHORAE\tAMPHORA HOURS\tBYTES IN\tBYTES OUT\tCONNECTIONS\tREQUEST ERRORS\t")
	for _, pu := range rep.Projects {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t\n", pu.ProjectID, pu.LoadBalancers,
			hours(pu.LoadBalancerHours), pu.Listeners, hours(pu.ListenerHours), pu.Amphorae, hours(pu.AmphoraHours),
			pu.BytesIn, pu.BytesOut, pu.TotalConnections, pu.RequestErrors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECT\tTYPE\tID\tLOAD BALANCER\tACTIVE FROM\tACTIVE UNTIL\tHOURS\tBYTES IN\tBYTES OUT\tCONNECTIONS\tREQUEST ERRORS")
	for _, l := range rep.Resources {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", l.ProjectID, l.ResourceType, l.ResourceID,
			dash(l.LoadBalancerID), l.ActiveFrom.UTC().Format(time.RFC3339), dash(timeOrEmpty(l.ActiveUntil)), hours(l.Hours),
			l.BytesIn, l.BytesOut, l.TotalConnections, l.RequestErrors)
	}
	return tw.Flush()
}
