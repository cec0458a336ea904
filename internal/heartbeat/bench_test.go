package heartbeat

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchMessage is a typical v3 heartbeat: one listener, one pool, two members.
func benchMessage(amp int, seq uint64) Message {
	id := func(kind byte, i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%c%011x", i, kind, i) }
	l, p := id('1', amp), id('2', amp)
	return Message{
		ID: id('a', amp), Seq: seq, Version: Version3,
		Listeners: map[string]Listener{l: {Status: "OPEN", Stats: Stats{TX: 1200, RX: 800, Conns: 3, TotConns: 17, EReq: 0}}},
		Pools: map[string]Pool{p + ":" + l: {Status: "UP", Members: map[string]string{
			id('3', amp): "UP", id('4', amp): "no check"}}},
	}
}

// bigMessage: 10 listeners, each with a pool of 20 members.
func bigMessage() Message {
	m := Message{ID: "amp", Seq: 1, Version: Version3, Listeners: map[string]Listener{}, Pools: map[string]Pool{}}
	for i := range 10 {
		lid := fmt.Sprintf("listener-%02d-0000-0000-0000-000000000000", i)
		m.Listeners[lid] = Listener{Status: "OPEN", Stats: Stats{TX: 1 << 30, RX: 1 << 29, Conns: 100, TotConns: 1 << 20, EReq: 3}}
		members := map[string]string{}
		for j := range 20 {
			members[fmt.Sprintf("member-%02d-%02d-0000-0000-000000000000", i, j)] = "UP"
		}
		m.Pools[fmt.Sprintf("pool-%02d-0000-0000-0000-000000000000:%s", i, lid)] = Pool{Status: "UP", Members: members}
	}
	return m
}

func BenchmarkDecode(b *testing.B) {
	codec, err := NewCodec(testKey, 0)
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name   string
		packet []byte
	}{
		{"v1", seal(b, fixtureV1)},
		{"v2", seal(b, fixtureV2)},
		{"v3", seal(b, fixtureV3)},
		{"v3-typical", mustEncode(b, codec, benchMessage(1, 1))},
		{"v3-10x20", mustEncode(b, codec, bigMessage())},
		{"forged", signHex([]byte("wrong"), deflate(b, []byte(fixtureV3)))},
		{"bomb", signHex(testKey, zlibBomb(b, 16))},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.packet)))
			b.ReportAllocs()
			for b.Loop() {
				msg, err := codec.Decode(tc.packet)
				if err == nil {
					_ = msg.View()
				}
			}
		})
	}
}

func mustEncode(b *testing.B, c *Codec, m Message) []byte {
	b.Helper()
	p, err := c.Encode(m)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkReceiver sends heartbeats for 10,000 amphorae (amphora n%10000,
// seq n/10000) from one sender goroutine over loopback UDP to a Receiver with
// default settings and reports accepted heartbeats per second and the loss.
// "burst" sends as fast as the socket allows; "rate=N" paces the sender at N
// datagrams per second (10,000 amphorae at the default 10 s interval is
// 1,000/s).
func BenchmarkReceiver(b *testing.B) {
	for _, rate := range []int{0, 10_000, 30_000, 60_000} {
		name := "burst"
		if rate > 0 {
			name = fmt.Sprintf("rate=%d", rate)
		}
		b.Run(name, func(b *testing.B) { benchReceiver(b, rate) })
	}
}

func benchReceiver(b *testing.B, rate int) {
	const amphorae = 10_000
	codec, err := NewCodec(testKey, 0)
	if err != nil {
		b.Fatal(err)
	}
	packets := make([][]byte, b.N)
	var wg sync.WaitGroup
	procs := runtime.GOMAXPROCS(0)
	for w := range procs {
		wg.Go(func() {
			for n := w; n < b.N; n += procs {
				p, err := codec.Encode(benchMessage(n%amphorae, uint64(n/amphorae)))
				if err != nil {
					panic(err)
				}
				packets[n] = p
			}
		})
	}
	wg.Wait()

	var accepted atomic.Int64
	r, err := NewReceiver(Config{
		Addr: "127.0.0.1:0", Key: testKey,
		Sink: func(context.Context, Heartbeat) error { accepted.Add(1); return nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	conn, err := net.DialUDP("udp", nil, r.Addr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()

	b.ResetTimer()
	start := time.Now()
	sendErrs := make(chan int, 1)
	go func() {
		failed := 0
		for n, p := range packets {
			if rate > 0 && n%100 == 0 {
				// Pace in batches of 100 against the wall clock.
				if d := time.Until(start.Add(time.Duration(n) * time.Second / time.Duration(rate))); d > 0 {
					time.Sleep(d)
				}
			}
			if _, err := conn.Write(p); err != nil {
				failed++
			}
		}
		sendErrs <- failed
	}()
	failed := <-sendErrs
	sendDone := time.Since(start)
	// Wait for the receiver to finish what it got; datagrams the kernel
	// dropped never show up, so stop once nothing has moved for 100 ms.
	last, stable := r.Stats(), time.Now()
	for time.Since(stable) < 100*time.Millisecond {
		time.Sleep(5 * time.Millisecond)
		s := r.Stats()
		if s.Received != last.Received || s.Accepted+s.TotalDropped() != last.Accepted+last.TotalDropped() {
			last, stable = s, time.Now()
		}
		if s.Accepted == uint64(b.N) {
			break
		}
	}
	s := r.Stats()
	elapsed := time.Since(start)
	if s.Accepted+s.TotalDropped() == last.Accepted+last.TotalDropped() && s.Accepted != uint64(b.N) {
		elapsed -= time.Since(stable) // do not charge the idle detection wait
	}
	b.StopTimer()

	n := float64(b.N)
	b.ReportMetric(float64(s.Accepted)/elapsed.Seconds(), "heartbeats/s")
	b.ReportMetric(n/sendDone.Seconds(), "sent/s")
	b.ReportMetric(100*(n-float64(s.Accepted))/n, "loss_%")
	b.ReportMetric(100*(n-float64(s.Received))/n, "kernel_loss_%")
	b.ReportMetric(100*float64(s.Dropped[ReasonOverload])/n, "overload_%")
	// Replays can only come from reordering between workers (one amphora's
	// heartbeats are 10,000 datagrams apart here); anything else is a bug.
	b.ReportMetric(float64(s.Dropped[ReasonReplay]), "replays")
	if failed > 0 || s.TotalDropped() != s.Dropped[ReasonOverload]+s.Dropped[ReasonReplay] {
		b.Errorf("send errors %d, drops %+v", failed, s.Dropped)
	}
}
