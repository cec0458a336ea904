package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ostia/ostia/projections"
)

// runReplay is `ostia replay`: rebuild the read models, the audit trail and
// the billing records from the event log into a fresh generation, then
// swap it in (or, with --until, build a point-in-time generation that is
// kept aside).
func runReplay(ctx context.Context, env *environment, args []string) error {
	fs, path := newFlags(env, "replay")
	until := fs.String("until", "", "replay only events that occurred at or before this time (RFC 3339); the "+
		"generation is kept aside for inspection instead of being swapped in")
	noAudit := fs.Bool("no-audit", false, "do not rebuild the audit trail: copy the current one over (much faster)")
	keepOld := fs.Bool("keep-old", false, "keep the previous generation's rows after the swap (drop them later with --drop)")
	verify := fs.Bool("verify", false, "compare the new generation's checksum with the previous generation's")
	drop := fs.Int64("drop", 0, "only drop this kept generation and exit")
	batch := fs.Int("batch-size", 0, "events read per batch (default [projector] replay_batch_size)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("replay: unexpected arguments %v", fs.Args())
	}
	var untilTime time.Time
	if *until != "" {
		t, err := parseTime(*until)
		if err != nil {
			return fmt.Errorf("replay: --until: %w", err)
		}
		untilTime = t
	}
	b, err := setup(env, *path)
	if err != nil {
		return err
	}
	if *batch <= 0 {
		*batch = b.cfg.Projector.ReplayBatchSize
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
	if *drop > 0 {
		if err := p.DropGeneration(ctx, *drop); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		_, err := fmt.Fprintf(env.stdout, "dropped generation %d\n", *drop)
		return err
	}
	cfg := projections.ReplayConfig{Until: untilTime, BatchSize: *batch, SkipAudit: *noAudit, CarryAudit: *noAudit,
		KeepPrevious: *keepOld || *verify}
	var bar *progressBar
	if !*quiet {
		bar = &progressBar{w: env.stderr, start: time.Now()}
		cfg.Progress = bar.update
	}
	res, err := p.Replay(ctx, cfg)
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return err
	}
	rate := float64(res.Events) / max(res.Duration.Seconds(), 1e-9)
	fmt.Fprintf(env.stdout, "replayed %d events of %d aggregates into generation %d in %s (%.0f events/s)\n",
		res.Events, res.Aggregates, res.Generation, res.Duration.Round(time.Millisecond), rate)
	switch {
	case res.Swapped && (*keepOld || *verify):
		fmt.Fprintf(env.stdout, "generation %d is current; previous generation %d kept\n", res.Generation, res.Previous)
	case res.Swapped:
		fmt.Fprintf(env.stdout, "generation %d is current; previous generation %d dropped\n", res.Generation, res.Previous)
	default:
		fmt.Fprintf(env.stdout, "generation %d holds the model as of %s (not current; drop it with `ostia replay --drop %d`)\n",
			res.Generation, untilTime.UTC().Format(time.RFC3339), res.Generation)
	}
	if *verify {
		newSum, err := p.Checksum(ctx, res.Generation)
		if err != nil {
			return err
		}
		oldSum, err := p.Checksum(ctx, res.Previous)
		if err != nil {
			return err
		}
		if newSum == oldSum {
			fmt.Fprintf(env.stdout, "checksum %s: generation %d equals generation %d\n", newSum, res.Generation, res.Previous)
		} else {
			fmt.Fprintf(env.stdout, "checksum of generation %d: %s\nchecksum of generation %d: %s\n"+
				"they differ (events applied after the swap only reach the new generation)\n",
				res.Generation, newSum, res.Previous, oldSum)
		}
		if res.Swapped && !*keepOld {
			if err := p.DropGeneration(ctx, res.Previous); err != nil {
				return fmt.Errorf("replay: %w", err)
			}
			fmt.Fprintf(env.stdout, "previous generation %d dropped\n", res.Previous)
		}
	}
	return nil
}

// progressBar draws the replay's progress on one terminal line.
type progressBar struct {
	w     io.Writer
	start time.Time

	mu    sync.Mutex
	last  time.Time
	drawn bool
	done  int64
	total int64
}

func (pb *progressBar) update(done, total int64) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	pb.done, pb.total = done, total
	if now := time.Now(); now.Sub(pb.last) >= 100*time.Millisecond || done >= total {
		pb.last = now
		pb.draw()
	}
}

func (pb *progressBar) draw() {
	const width = 30
	frac := 1.0
	if pb.total > 0 {
		frac = min(float64(pb.done)/float64(pb.total), 1)
	}
	filled := int(frac * width)
	rate := float64(pb.done) / max(time.Since(pb.start).Seconds(), 1e-9)
	fmt.Fprintf(pb.w, "\rreplay [%s%s] %3.0f%% %d/%d events %.0f/s", strings.Repeat("#", filled),
		strings.Repeat(" ", width-filled), frac*100, pb.done, pb.total, rate)
	pb.drawn = true
}

func (pb *progressBar) finish() {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	if pb.drawn {
		pb.draw()
		fmt.Fprintln(pb.w)
	}
}

// parseTime reads an RFC 3339 time, or a date (midnight UTC).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04:05", s); err == nil {
		return t, nil // Octavia's zone-less timestamps are UTC
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want an RFC 3339 time (2026-01-02T15:04:05Z) or a date (2026-01-02), got %q", s)
	}
	return t, nil
}
