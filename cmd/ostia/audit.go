package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ostia/ostia/projections"
	"github.com/ostia/ostia/projections/views"
)

// parseInterspersed parses flags that may come before or after the
// positional arguments (`ostia audit ID --format json`), which the flag
// package alone stops at.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// runAudit is `ostia audit <object-id>`: the object's recorded history
// (who, when, request id, event, before and after), or with --as-of the
// object as the API showed it at a past time, rebuilt from the event log.
func runAudit(ctx context.Context, env *environment, args []string) error {
	fs, path := newFlags(env, "audit")
	format := fs.String("format", "table", "output format: table or json")
	asOf := fs.String("as-of", "", "print the object as it was at this time (RFC 3339), rebuilt from the event log")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("usage: ostia audit [-config FILE] [--format table|json] [--as-of TIME] <object-id>")
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("audit: --format: want table or json, got %q", *format)
	}
	id := pos[0]
	var at time.Time
	if *asOf != "" {
		if at, err = parseTime(*asOf); err != nil {
			return fmt.Errorf("audit: --as-of: %w", err)
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
	if !at.IsZero() {
		past, err := p.ObjectAt(ctx, id, at)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		return writePast(env.stdout, past)
	}
	trail, err := p.AuditTrail(ctx, id)
	if err != nil {
		return err
	}
	if len(trail) == 0 {
		return fmt.Errorf("audit: no recorded history for %s", id)
	}
	if *format == "json" {
		return writeJSON(env.stdout, auditJSON(trail))
	}
	return writeAuditTable(env.stdout, trail)
}

// auditEntry is the JSON form of one audit entry.
type auditEntry struct {
	At               time.Time       `json:"at"`
	Actor            string          `json:"actor"`
	RequestID        string          `json:"request_id"`
	ProjectID        string          `json:"project_id"`
	Event            string          `json:"event"`
	EventID          string          `json:"event_id"`
	GlobalPosition   int64           `json:"global_position"`
	ObjectKind       string          `json:"object_kind"`
	ObjectID         string          `json:"object_id"`
	AggregateType    string          `json:"aggregate_type"`
	AggregateID      string          `json:"aggregate_id"`
	AggregateVersion int64           `json:"aggregate_version"`
	Before           json.RawMessage `json:"before"`
	After            json.RawMessage `json:"after"`
}

func auditJSON(trail []projections.AuditEntry) []auditEntry {
	out := make([]auditEntry, 0, len(trail))
	null := json.RawMessage("null")
	for _, e := range trail {
		a := auditEntry{At: e.OccurredAt.UTC(), Actor: e.Actor, RequestID: e.CorrelationID, ProjectID: e.ProjectID,
			Event: e.EventType, EventID: e.EventID, GlobalPosition: e.GlobalPosition, ObjectKind: string(e.ObjectKind),
			ObjectID: e.ObjectID, AggregateType: e.AggregateType, AggregateID: e.AggregateID,
			AggregateVersion: e.AggregateVersion, Before: e.Before, After: e.After}
		if a.Before == nil {
			a.Before = null
		}
		if a.After == nil {
			a.After = null
		}
		out = append(out, a)
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeAuditTable(w io.Writer, trail []projections.AuditEntry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTOR\tREQUEST ID\tEVENT\tVERSION\tCHANGES")
	for _, e := range trail {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", e.OccurredAt.UTC().Format(time.RFC3339), dash(e.Actor),
			dash(e.CorrelationID), e.EventType, e.AggregateVersion, changes(e.Before, e.After))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// changes summarizes how an object changed: created, deleted, or the
// fields that differ (updated_at left out: it changes every time).
func changes(before, after json.RawMessage) string {
	var b, a map[string]any
	_ = json.Unmarshal(before, &b)
	_ = json.Unmarshal(after, &a)
	switch {
	case b == nil && a == nil:
		return "-"
	case b == nil:
		return "created"
	case a == nil:
		return "deleted"
	}
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		if k == "updated_at" || reflect.DeepEqual(a[k], b[k]) {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %s -> %s", k, compact(b[k]), compact(a[k])))
	}
	if len(parts) == 0 {
		return "touched"
	}
	return strings.Join(parts, "; ")
}

func compact(v any) string {
	s, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(s) > 60 {
		return string(s[:57]) + "..."
	}
	return string(s)
}

// writePast prints an object as of a past time as JSON.
func writePast(w io.Writer, past *projections.PastObject) error {
	out := map[string]any{
		"as_of":                past.At.UTC().Format(time.RFC3339Nano),
		"kind":                 past.Kind,
		"aggregate_type":       past.AggregateType,
		"aggregate_id":         past.AggregateID,
		"version":              past.Version,
		"changed_at":           past.ChangedAt.UTC().Format(time.RFC3339Nano),
		envelopeKey(past.Kind): past.Object,
	}
	if past.Tree != nil {
		out["tree"] = past.Tree
	}
	return writeJSON(w, out)
}

// envelopeKey is the key the Octavia API wraps an object of a kind in.
func envelopeKey(k views.Kind) string {
	switch k {
	case views.KindL7Rule:
		return "rule"
	case views.KindAvailabilityZone:
		return "availability_zone"
	case views.KindAvailabilityZoneProfile:
		return "availability_zone_profile"
	case views.KindFlavorProfile:
		return "flavorprofile"
	}
	return string(k)
}
