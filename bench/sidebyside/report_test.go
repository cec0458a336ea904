package main

import "testing"

func TestPctMatchesBenchPy(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	for _, c := range []struct{ p, want float64 }{{0, 1}, {50, 3}, {95, 4.8}, {100, 5}} {
		if got := pct(xs, c.p); got < c.want-1e-9 || got > c.want+1e-9 {
			t.Errorf("pct(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if pct(nil, 50) != 0 {
		t.Error("pct of nothing should be 0")
	}
}

func TestRatio(t *testing.T) {
	for _, c := range []struct {
		oct, ost float64
		higher   bool
		want     string
	}{
		{100, 2, false, "50x better"},
		{2, 3, false, "1.5x worse"},
		{10, 700, true, "70x better"},
		{10, 5, true, "2.0x worse"},
		{0, 5, false, "—"},
	} {
		if got := ratio(c.oct, c.ost, c.higher); got != c.want {
			t.Errorf("ratio(%v, %v, %v) = %q, want %q", c.oct, c.ost, c.higher, got, c.want)
		}
	}
}

func TestBreakdownDeltas(t *testing.T) {
	before := series{
		`ostia_saga_step_seconds_sum{outcome="ok",saga="createlb",step="boot",worker="w"}`:   1,
		`ostia_saga_step_seconds_count{outcome="ok",saga="createlb",step="boot",worker="w"}`: 10,
		`process_cpu_seconds_total`: 2,
	}
	after := series{
		`ostia_saga_step_seconds_sum{outcome="ok",saga="createlb",step="boot",worker="w"}`:   3,
		`ostia_saga_step_seconds_count{outcome="ok",saga="createlb",step="boot",worker="w"}`: 30,
		`process_cpu_seconds_total`: 5,
	}
	b := diffBreakdown("x", before, after)
	if b.CPUSeconds != 3 || len(b.Timings) != 1 {
		t.Fatalf("breakdown = %+v", b)
	}
	got := b.Timings[0]
	if got.What != "saga_step_seconds createlb boot ok" || got.Count != 20 || got.SumS != 2 || got.MeanMs != 100 {
		t.Errorf("timing = %+v", got)
	}
}

func TestSplitSeriesEscapes(t *testing.T) {
	name, l := splitSeries(`m{a="x\"y",b="z"}`)
	if name != "m" || l["a"] != `x"y` || l["b"] != "z" {
		t.Errorf("got %q %v", name, l)
	}
}
