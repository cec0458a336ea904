package heartbeat

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// testReceiver is a running Receiver with a channel sink.
type testReceiver struct {
	*Receiver
	reg  *prometheus.Registry
	got  chan Heartbeat
	done chan error
}

func startReceiver(t *testing.T, cfg Config) *testReceiver {
	t.Helper()
	tr := &testReceiver{reg: prometheus.NewRegistry(), got: make(chan Heartbeat, 1024), done: make(chan error, 1)}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Key == nil {
		cfg.Key = testKey
	}
	if cfg.Metrics == nil {
		cfg.Metrics = tr.reg
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if cfg.Sink == nil {
		cfg.Sink = func(ctx context.Context, hb Heartbeat) error {
			select {
			case tr.got <- hb:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	r, err := NewReceiver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr.Receiver = r
	ctx, cancel := context.WithCancel(t.Context())
	go func() { tr.done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-tr.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return tr
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func dial(t *testing.T, addr net.Addr) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, addr.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c *net.UDPConn, packets ...[]byte) {
	t.Helper()
	for _, p := range packets {
		if _, err := c.Write(p); err != nil {
			t.Fatalf("send %d bytes: %v", len(p), err)
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (tr *testReceiver) waitSettled(t *testing.T, received uint64) ReceiverStats {
	t.Helper()
	var s ReceiverStats
	waitFor(t, "datagrams to be processed", func() bool {
		s = tr.Stats()
		return s.Received >= received && s.Accepted+s.TotalDropped() >= received
	})
	return s
}

func (tr *testReceiver) next(t *testing.T) Heartbeat {
	t.Helper()
	select {
	case hb := <-tr.got:
		return hb
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat delivered")
		return Heartbeat{}
	}
}

// promValue reads a counter from the registry; reason "" selects the
// unlabelled counter.
func promValue(t *testing.T, reg *prometheus.Registry, name string, reason DropReason) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := reason == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == string(reason) {
					match = true
				}
			}
			if match {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("metric %s{reason=%q} not found", name, reason)
	return 0
}

func TestReceiverDeliversVersions(t *testing.T) {
	tr := startReceiver(t, Config{})
	c := dial(t, tr.Addr())
	src := netip.MustParseAddrPort(c.LocalAddr().String())

	cases := []struct {
		packet []byte
		want   View
	}{
		{readFixture(t, "python_v1_hex.bin"), wantViewV1()},
		{readFixture(t, "python_v2_hex.bin"), wantViewV2()},
		{readFixture(t, "python_v3_hex.bin"), wantViewV3()},
	}
	for _, tc := range cases {
		before := time.Now()
		send(t, c, tc.packet)
		hb := tr.next(t)
		if !reflect.DeepEqual(hb.View, tc.want) {
			t.Errorf("view\n got: %+v\nwant: %+v", hb.View, tc.want)
		}
		if hb.Source != src {
			t.Errorf("source = %v, want %v", hb.Source, src)
		}
		if hb.ReceivedAt.Before(before) || time.Since(hb.ReceivedAt) > 5*time.Second {
			t.Errorf("ReceivedAt = %v, sent at %v", hb.ReceivedAt, before)
		}
		if want := float64(hb.ReceivedAt.UnixNano()) / 1e9; hb.Message.RecvTime != want {
			t.Errorf("RecvTime = %v, want %v", hb.Message.RecvTime, want)
		}
	}
	s := tr.Stats()
	if s.Received != 3 || s.Accepted != 3 || s.TotalDropped() != 0 || s.Tracked != 1 {
		t.Errorf("stats = %+v", s)
	}
	if v := promValue(t, tr.reg, MetricAccepted, ""); v != 3 {
		t.Errorf("%s = %v, want 3", MetricAccepted, v)
	}
}

func TestReceiverDropsBadPackets(t *testing.T) {
	tr := startReceiver(t, Config{MaxPacketSize: 32 << 10})
	c := dial(t, tr.Addr())

	valid := seal(t, fixtureV3) // seq 68
	send(t, c, valid)
	tr.next(t)

	want := map[DropReason]uint64{}
	var sent uint64 = 1
	reasonOf := map[error]DropReason{ErrDigest: ReasonDigest, ErrCompression: ReasonZlib, ErrTooLarge: ReasonOversize, ErrMalformed: ReasonMalformed}
	for _, bp := range badPackets(t) {
		if len(bp.packet) == 0 {
			continue // an empty datagram is legal UDP but pointless; covered by Decode tests
		}
		send(t, c, bp.packet)
		sent++
		want[reasonOf[bp.want]]++
	}
	// Replays: the same datagram again, and an older seq.
	send(t, c, valid, seal(t, fixtureV2) /* seq 67 */)
	sent += 2
	want[ReasonReplay] += 2
	// Oversize datagram (valid signature, 40 KiB of padding).
	send(t, c, signHex(testKey, append(deflate(t, []byte(fixtureV3)), make([]byte, 40<<10)...)))
	sent++
	want[ReasonOversize]++

	s := tr.waitSettled(t, sent)
	for _, reason := range allReasons() {
		if s.Dropped[reason] != want[reason] {
			t.Errorf("dropped[%s] = %d, want %d", reason, s.Dropped[reason], want[reason])
		}
		if v := promValue(t, tr.reg, MetricDropped, reason); v != float64(want[reason]) {
			t.Errorf("%s{reason=%s} = %v, want %d", MetricDropped, reason, v, want[reason])
		}
	}
	if s.Accepted != 1 {
		t.Errorf("accepted = %d, want 1", s.Accepted)
	}
	if v := promValue(t, tr.reg, MetricReceived, ""); v != float64(sent) {
		t.Errorf("%s = %v, want %d", MetricReceived, v, sent)
	}

	// Still serving: a newer heartbeat goes through.
	msg, err := Decode(valid, testKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	msg.Seq++
	next, err := Encode(msg, testKey)
	if err != nil {
		t.Fatal(err)
	}
	send(t, c, next)
	if hb := tr.next(t); hb.View.Seq != 69 {
		t.Fatalf("seq = %d, want 69", hb.View.Seq)
	}
}

func TestReceiverSinkFailures(t *testing.T) {
	var calls atomic.Int64
	tr := startReceiver(t, Config{Sink: func(ctx context.Context, hb Heartbeat) error {
		switch calls.Add(1) {
		case 1:
			return errors.New("database unavailable")
		case 2:
			panic("sink bug")
		}
		return nil
	}})
	c := dial(t, tr.Addr())
	for seq := range uint64(3) {
		p, err := Encode(Message{ID: "amp", Seq: seq, Version: 3}, testKey)
		if err != nil {
			t.Fatal(err)
		}
		send(t, c, p)
		tr.waitSettled(t, seq+1) // sequential, so the sink sees them in order
	}
	s := tr.Stats()
	if s.Dropped[ReasonSinkError] != 2 || s.Accepted != 1 {
		t.Fatalf("stats = %+v, want 2 sink errors and 1 accepted", s)
	}
}

func TestReceiverReplayWindow(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	tr := startReceiver(t, Config{SeqTTL: 30 * time.Second, Now: clock})
	c := dial(t, tr.Addr())
	hb := func(id string, seq uint64) []byte {
		p, err := Encode(Message{ID: id, Seq: seq, Version: 3}, testKey)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	var sent uint64
	step := func(p []byte) ReceiverStats {
		send(t, c, p)
		sent++
		return tr.waitSettled(t, sent)
	}
	step(hb("a", 100))
	step(hb("b", 5)) // independent amphora
	if s := step(hb("a", 100)); s.Dropped[ReasonReplay] != 1 {
		t.Fatalf("duplicate seq not dropped: %+v", s)
	}
	if s := step(hb("a", 99)); s.Dropped[ReasonReplay] != 2 {
		t.Fatalf("older seq not dropped: %+v", s)
	}
	if s := step(hb("a", 101)); s.Accepted != 3 {
		t.Fatalf("newer seq not accepted: %+v", s)
	}
	// Agent restart: seq starts again at 0. Rejected within the TTL ...
	now.Add(int64(20 * time.Second))
	if s := step(hb("a", 0)); s.Dropped[ReasonReplay] != 3 {
		t.Fatalf("restarted seq accepted within TTL: %+v", s)
	}
	// ... accepted once the TTL since the last accepted heartbeat passed.
	now.Add(int64(11 * time.Second))
	if s := step(hb("a", 0)); s.Accepted != 4 {
		t.Fatalf("restarted seq not accepted after TTL: %+v", s)
	}
	if s := step(hb("a", 1)); s.Accepted != 5 || s.Tracked != 2 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestReceiverOverload(t *testing.T) {
	release := make(chan struct{})
	var delivered atomic.Int64
	tr := startReceiver(t, Config{Workers: 1, QueueSize: 1, Sink: func(ctx context.Context, hb Heartbeat) error {
		delivered.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}})
	c := dial(t, tr.Addr())
	send(t, c, seal(t, fixtureV1))
	waitFor(t, "worker to block in the sink", func() bool { return delivered.Load() == 1 })
	for seq := range uint64(10) {
		p, err := Encode(Message{ID: "amp-2", Seq: seq, Version: 3}, testKey)
		if err != nil {
			t.Fatal(err)
		}
		send(t, c, p)
	}
	waitFor(t, "reader to see all datagrams", func() bool { return tr.Stats().Received == 11 })
	if got := tr.Stats().Dropped[ReasonOverload]; got != 9 {
		t.Fatalf("overload drops = %d, want 9 (1 in the sink, 1 queued)", got)
	}
	close(release)
	s := tr.waitSettled(t, 11)
	if s.Accepted != 2 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestReceiverOverloadBytes(t *testing.T) {
	release := make(chan struct{})
	var delivered atomic.Int64
	small := seal(t, fixtureV1)
	tr := startReceiver(t, Config{Workers: 1, QueueBytes: 3 * len(small), Sink: func(ctx context.Context, hb Heartbeat) error {
		delivered.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}})
	c := dial(t, tr.Addr())
	send(t, c, small)
	waitFor(t, "worker to block in the sink", func() bool { return delivered.Load() == 1 })
	big := bytes.Repeat([]byte("x"), 4*len(small)) // larger than the byte budget
	send(t, c, big, small, small, small, small)
	waitFor(t, "reader to see all datagrams", func() bool { return tr.Stats().Received == 6 })
	if got := tr.Stats().Dropped[ReasonOverload]; got != 2 {
		t.Fatalf("overload drops = %d, want 2 (the big one and the 4th small one)", got)
	}
	close(release)
	s := tr.waitSettled(t, 6)
	// The 3 queued small ones are the same heartbeat: 2 replays.
	if s.Accepted != 1 || s.Dropped[ReasonReplay] != 3 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestReceiversSideBySide(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := startReceiver(t, Config{Metrics: reg})
	b := startReceiver(t, Config{Metrics: reg})
	if a.Addr().String() == b.Addr().String() {
		t.Fatal("receivers share an address")
	}
	ca, cb := dial(t, a.Addr()), dial(t, b.Addr())
	p := seal(t, fixtureV2)
	// The same datagram reaches both: replay state is per receiver.
	send(t, ca, p)
	send(t, cb, p)
	a.next(t)
	b.next(t)
	send(t, ca, bytes.Repeat([]byte("x"), 100))
	a.waitSettled(t, 2)
	if v := promValue(t, reg, MetricAccepted, ""); v != 2 {
		t.Errorf("shared %s = %v, want 2", MetricAccepted, v)
	}
	if v := promValue(t, reg, MetricDropped, ReasonDigest); v != 1 {
		t.Errorf("shared dropped digest = %v, want 1", v)
	}
	if s := b.Stats(); s.Accepted != 1 || s.TotalDropped() != 0 {
		t.Errorf("receiver b stats = %+v", s)
	}
}

func TestReceiverLifecycle(t *testing.T) {
	sink := func(context.Context, Heartbeat) error { return nil }
	if _, err := NewReceiver(Config{Addr: "127.0.0.1:0", Sink: sink}); err == nil {
		t.Error("empty key accepted")
	}
	if _, err := NewReceiver(Config{Addr: "127.0.0.1:0", Key: testKey}); err == nil {
		t.Error("nil sink accepted")
	}
	if _, err := NewReceiver(Config{Addr: "not an address", Key: testKey, Sink: sink}); err == nil {
		t.Error("bad address accepted")
	}

	r, err := NewReceiver(Config{Addr: "127.0.0.1:0", Key: testKey, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(t.Context()) }()
	waitFor(t, "Run to start", r.started.Load)
	if err := r.Run(t.Context()); err == nil {
		t.Error("second Run succeeded")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestReceiverShutdownWithBlockedSink(t *testing.T) {
	var wg sync.WaitGroup
	wg.Add(1)
	r, err := NewReceiver(Config{Addr: "127.0.0.1:0", Key: testKey, Sink: func(ctx context.Context, hb Heartbeat) error {
		wg.Done()
		<-ctx.Done() // a well-behaved sink honours cancellation
		return ctx.Err()
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	c := dial(t, r.Addr())
	send(t, c, seal(t, fixtureV1))
	wg.Wait()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestSeqCacheBounded(t *testing.T) {
	t0 := time.Unix(0, 0)
	c := newSeqCache(3, -1)
	for i, id := range []string{"a", "b", "c"} {
		if !c.accept(id, 10, t0.Add(time.Duration(i))) {
			t.Fatalf("%s rejected", id)
		}
	}
	c.accept("a", 11, t0) // a is now the most recent
	c.accept("d", 1, t0)  // evicts b, the least recently accepted
	if c.len() != 3 || c.evictions != 1 {
		t.Fatalf("len = %d, evictions = %d", c.len(), c.evictions)
	}
	if !c.accept("b", 10, t0) {
		t.Error("evicted b still remembered")
	}
	if c.accept("a", 11, t0) || c.accept("d", 1, t0) {
		t.Error("replay accepted for a tracked amphora")
	}
	// Never expires with a negative TTL.
	if c.accept("a", 5, t0.Add(1000*time.Hour)) {
		t.Error("entry expired despite negative TTL")
	}
	// Single-entry cache.
	one := newSeqCache(1, time.Second)
	for i := range 5 {
		if !one.accept(string(rune('a'+i)), 1, t0) {
			t.Fatal("rejected")
		}
	}
	if one.len() != 1 {
		t.Fatalf("len = %d", one.len())
	}
}
