package healthmanager_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/ostia/ostia/aggregates/amphora"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/healthmanager"
	"github.com/ostia/ostia/internal/heartbeat"
	"github.com/ostia/ostia/internal/testkit"
)

const opStatusEvent = "loadbalancer.operating_status_changed.v1"

func waitStatuses(t *testing.T, w *world, lbID, want string) {
	t.Helper()
	var got string
	testkit.Eventually(t, 15*time.Second, 20*time.Millisecond, func() bool {
		got = format(statuses(w.lbState(t, lbID)))
		return got == want
	}, "statuses: got %q, want %q", &got, want)
}

// TestOperatingStatusesFollowHeartbeats drives a load balancer's operating
// statuses from a fake amphora over real UDP, Kafka and PostgreSQL.
func TestOperatingStatusesFollowHeartbeats(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	lbID, ampID := w.createLB(t, 2, true)
	hm := w.startManager(t, managerOpts{consumer: true, name: "a"})
	amp := newFakeAmphora(t, ampID, 3, hm.recv.Addr())
	ctx := context.Background()

	st := w.lbState(t, lbID)
	pid := st.Pools()[0].Id
	m0, m1 := st.Members(pid)[0].Id, st.Members(pid)[1].Id
	var none heartbeat.Stats

	amp.send(t, amp.render(st, nil, none))
	waitStatuses(t, w, lbID, "lb=ONLINE listener=ONLINE pool=ONLINE member0=ONLINE member1=ONLINE")
	h, err := healthmanager.ReadAmphoraHealth(ctx, w.pool, ampID)
	if err != nil || h.LastSeen == nil || h.LoadBalancerID != lbID || h.Busy {
		t.Fatalf("health row %+v, %v", h, err)
	}
	firstSeen := *h.LastSeen

	// no event storm: the same health again changes nothing
	before := w.countEvents(t, events.AggregateLoadBalancer, lbID, opStatusEvent)
	for range 3 {
		amp.send(t, amp.render(st, nil, none))
	}
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		h, _ := healthmanager.ReadAmphoraHealth(ctx, w.pool, ampID)
		return h.LastSeq == int64(amp.seq)
	}, "heartbeats not applied")
	if after := w.countEvents(t, events.AggregateLoadBalancer, lbID, opStatusEvent); after != before {
		t.Fatalf("unchanged health wrote %d operating status events", after-before)
	}

	// one member down: member ERROR, pool and load balancer DEGRADED
	amp.send(t, amp.render(st, map[string]bool{m1: true}, none))
	waitStatuses(t, w, lbID, "lb=DEGRADED listener=ONLINE pool=DEGRADED member0=ONLINE member1=ERROR")

	// every member down: haproxy reports the backend DOWN -> pool and LB ERROR
	amp.send(t, amp.render(st, map[string]bool{m0: true, m1: true}, none))
	waitStatuses(t, w, lbID, "lb=ERROR listener=ONLINE pool=ERROR member0=ERROR member1=ERROR")

	// drain member0 (weight 0): haproxy reports DRAIN -> DRAINING
	if _, _, err := w.svc.LoadBalancer(ctx, md, lbID, lb.UpdateMember{PoolID: pid, MemberID: m0, Weight: lb.F[int32]{Set: true, Value: 0}}); err != nil {
		t.Fatal(err)
	}
	w.complete(t, lbID)
	st = w.lbState(t, lbID)
	amp.send(t, amp.render(st, nil, none))
	waitStatuses(t, w, lbID, "lb=ONLINE listener=ONLINE pool=ONLINE member0=DRAINING member1=ONLINE")

	// the listener disappears from the heartbeat: listener ERROR (enabled,
	// LB ACTIVE), and liveness is not refreshed (listener count mismatch)
	msg := amp.render(st, nil, none)
	msg.Listeners, msg.Pools = nil, nil
	amp.send(t, msg)
	waitStatuses(t, w, lbID, "lb=ONLINE listener=ERROR pool=OFFLINE member0=DRAINING member1=ONLINE")
	h, err = healthmanager.ReadAmphoraHealth(ctx, w.pool, ampID)
	if err != nil || h.LastSeq != int64(amp.seq) || h.LastSeen.After(firstSeen.Add(10*time.Second)) {
		t.Fatalf("health row after mismatching heartbeat: %+v, %v", h, err)
	}
	seenBefore := *h.LastSeen

	// a member without monitor reports "no check" -> NO_MONITOR; absent
	// from the heartbeat it stays NO_MONITOR
	msg = amp.render(st, nil, none)
	for k, p := range msg.Pools {
		p.Members[m1] = "no check"
		msg.Pools[k] = p
	}
	amp.send(t, msg)
	waitStatuses(t, w, lbID, "lb=ONLINE listener=ONLINE pool=ONLINE member0=DRAINING member1=NO_MONITOR")
	msg = amp.render(st, nil, none)
	for k, p := range msg.Pools {
		delete(p.Members, m1)
		msg.Pools[k] = p
	}
	amp.send(t, msg)
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		h, _ := healthmanager.ReadAmphoraHealth(ctx, w.pool, ampID)
		return h.LastSeq == int64(amp.seq) && h.LastSeen.After(seenBefore)
	}, "heartbeat not applied")
	if got := format(statuses(w.lbState(t, lbID))); got != "lb=ONLINE listener=ONLINE pool=ONLINE member0=DRAINING member1=NO_MONITOR" {
		t.Fatalf("statuses %s", got)
	}
}

// TestStatistics checks cumulative listener counters: v3 deltas are added,
// v2 totals are turned into deltas (with counter-reset detection), a
// redelivered heartbeat is not counted twice, an agent restart is accepted,
// and the per-minute history adds up to the totals.
func TestStatistics(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	lb3, amp3ID := w.createLB(t, 1, true)
	lb2, amp2ID := w.createLB(t, 1, true)
	hm := w.startManager(t, managerOpts{consumer: true, name: "a"})
	ctx := context.Background()
	st3, st2 := w.lbState(t, lb3), w.lbState(t, lb2)
	l3, l2 := st3.Listeners()[0].Id, st2.Listeners()[0].Id

	// publish through the Sink directly, so that the test controls
	// redelivery and receive times (the receiver would drop replays)
	base := time.Now()
	pub := func(msg heartbeat.Message, at time.Time) {
		t.Helper()
		hb := heartbeat.Heartbeat{Message: msg, View: msg.View(), ReceivedAt: at, Source: netip.MustParseAddrPort("127.0.0.1:1")}
		if err := hm.pub.Sink(ctx, hb); err != nil {
			t.Fatal(err)
		}
	}
	a3 := &fakeAmphora{id: amp3ID, version: 3}
	a2 := &fakeAmphora{id: amp2ID, version: 2}
	s := func(rx, tx, conns, tot, ereq uint64) heartbeat.Stats {
		return heartbeat.Stats{RX: rx, TX: tx, Conns: conns, TotConns: tot, EReq: ereq}
	}
	v3a := a3.render(st3, nil, s(100, 1000, 5, 10, 1))
	pub(v3a, base)
	pub(a3.render(st3, nil, s(50, 500, 7, 5, 0)), base.Add(time.Second))
	pub(v3a, base) // redelivered: ignored
	v2 := []heartbeat.Stats{s(1000, 2000, 3, 30, 2), s(1500, 2600, 4, 40, 2), s(200, 100, 1, 5, 0), s(300, 150, 2, 6, 1)}
	for i, c := range v2 {
		pub(a2.render(st2, nil, c), base.Add(time.Duration(i)*time.Second))
	}
	// agent restart: seq starts again at 0, received later, counters reset
	a2.seq = 0
	pub(a2.render(st2, nil, s(10, 20, 1, 1, 0)), base.Add(10*time.Second))

	want3 := healthmanager.ListenerStats{BytesIn: 150, BytesOut: 1500, ActiveConnections: 7, TotalConnections: 15, RequestErrors: 1}
	// 1000 + 500 + 200 (reset) + 100, then the restart: 10 (reset)
	want2 := healthmanager.ListenerStats{BytesIn: 1810, BytesOut: 2770, ActiveConnections: 1, TotalConnections: 47, RequestErrors: 3}
	var got3, got2 healthmanager.ListenerStats
	testkit.Eventually(t, 15*time.Second, 20*time.Millisecond, func() bool {
		var err error
		if got3, err = healthmanager.ReadListenerStats(ctx, w.pool, l3); err != nil {
			t.Fatal(err)
		}
		if got2, err = healthmanager.ReadListenerStats(ctx, w.pool, l2); err != nil {
			t.Fatal(err)
		}
		return got3 == want3 && got2 == want2
	}, "stats v3 %+v (want %+v), v2 %+v (want %+v)", &got3, want3, &got2, want2)
	time.Sleep(300 * time.Millisecond) // a late duplicate would show up now
	if g, _ := healthmanager.ReadListenerStats(ctx, w.pool, l3); g != want3 {
		t.Fatalf("v3 stats changed after settling: %+v", g)
	}
	for _, c := range []struct {
		listener string
		want     healthmanager.ListenerStats
	}{{l3, want3}, {l2, want2}} {
		var in, out, tot, ereq int64
		if err := w.pool.QueryRow(ctx, `SELECT SUM(bytes_in), SUM(bytes_out), SUM(total_connections), SUM(request_errors)
		  FROM listener_stats_history WHERE listener_id = $1`, c.listener).Scan(&in, &out, &tot, &ereq); err != nil {
			t.Fatal(err)
		}
		if in != c.want.BytesIn || out != c.want.BytesOut || tot != c.want.TotalConnections || ereq != c.want.RequestErrors {
			t.Fatalf("history of %s sums to %d/%d/%d/%d, want %+v", c.listener, in, out, tot, ereq, c.want)
		}
	}
}

// TestStaleAmphoraFailedOverOnce stops a fake amphora while two health
// managers run: exactly one failover is requested, and the claim is
// released when the amphora reports again.
func TestStaleAmphoraFailedOverOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	lbID, ampID := w.createLB(t, 1, true)
	_, liveID := w.createLB(t, 1, true)
	opts := managerOpts{consumer: true, scanner: true, timeout: 1500 * time.Millisecond, check: 100 * time.Millisecond,
		seqTTL: time.Millisecond}
	opts.name = "a"
	hmA := w.startManager(t, opts)
	opts.name = "b"
	hmB := w.startManager(t, opts)
	ctx := context.Background()
	st := w.lbState(t, lbID)
	stLive := w.lbState(t, w.amphoraState(t, liveID).Amphora().LoadbalancerId)
	// the amphora round-robins over both health managers, like Octavia's agent
	ampA, ampB := newFakeAmphora(t, ampID, 3, hmA.recv.Addr()), newFakeAmphora(t, ampID, 3, hmB.recv.Addr())
	liveA := newFakeAmphora(t, liveID, 3, hmA.recv.Addr())
	beat := func(i int) {
		a, b := ampA, ampB
		if i%2 == 1 {
			a, b = b, a
		}
		msg := a.render(st, nil, heartbeat.Stats{})
		b.seq = a.seq
		a.send(t, msg)
	}
	for i := range 6 {
		beat(i)
		liveA.send(t, liveA.render(stLive, nil, heartbeat.Stats{}))
		time.Sleep(150 * time.Millisecond)
	}
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		h, err := healthmanager.ReadAmphoraHealth(ctx, w.pool, ampID)
		return err == nil && h.LastSeen != nil
	}, "amphora never recorded")
	stopLive := make(chan struct{})
	liveDone := make(chan struct{})
	go func() { // the other amphora keeps beating
		defer close(liveDone)
		for {
			select {
			case <-stopLive:
				return
			case <-time.After(200 * time.Millisecond):
				msg := liveA.render(stLive, nil, heartbeat.Stats{})
				pkt, _ := heartbeat.Encode(msg, testKey)
				_, _ = liveA.conn.Write(pkt)
			}
		}
	}()
	defer func() { close(stopLive); <-liveDone }()

	testkit.Eventually(t, 15*time.Second, 20*time.Millisecond, func() bool {
		return w.amphoraState(t, ampID).FailingOver()
	}, "stale amphora was not failed over")
	time.Sleep(1500 * time.Millisecond) // both scanners keep scanning
	if n := w.countEvents(t, events.AggregateAmphora, ampID, "amphora.failover_requested.v1"); n != 1 {
		t.Fatalf("%d failover requests, want exactly 1", n)
	}
	if n := w.countEvents(t, events.AggregateAmphora, liveID, "amphora.failover_requested.v1"); n != 0 {
		t.Fatalf("live amphora failed over %d times", n)
	}
	// The load balancer was locked with the request, as the API's failover does.
	if got := w.lbState(t, lbID).LoadBalancer().ProvisioningStatus; got != "PENDING_UPDATE" {
		t.Fatalf("load balancer of the failed-over amphora is %s, want PENDING_UPDATE", got)
	}
	h, err := healthmanager.ReadAmphoraHealth(ctx, w.pool, ampID)
	if err != nil || !h.Busy || h.ClaimedBy == "" {
		t.Fatalf("claim after failover: %+v, %v", h, err)
	}
	// the amphora reports again: the claim is released
	beat(7)
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		h, err := healthmanager.ReadAmphoraHealth(ctx, w.pool, ampID)
		return err == nil && !h.Busy
	}, "claim not released by a new heartbeat")
	// its record deleted (amphora gone): the row and any claim go away
	if _, _, err := w.svc.Amphora(ctx, md, ampID, amphora.MarkDeleted{Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	beat(8)
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		_, err := healthmanager.ReadAmphoraHealth(ctx, w.pool, ampID)
		return err != nil
	}, "health row of a deleted amphora kept")
}

// TestFailoverThreshold: when as many amphorae as failover_threshold go
// stale at once, none is failed over; they are FAILOVER_STOPPED, and go back
// to ALLOCATED when they report again.
func TestFailoverThreshold(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	hm := w.startManager(t, managerOpts{consumer: true, name: "a", seqTTL: time.Millisecond})
	ctx := context.Background()
	var amps []*fakeAmphora
	var states []*lb.State
	for range 3 {
		lbID, ampID := w.createLB(t, 1, false)
		amps = append(amps, newFakeAmphora(t, ampID, 3, hm.recv.Addr()))
		states = append(states, w.lbState(t, lbID))
	}
	for i, a := range amps {
		a.send(t, a.render(states[i], nil, heartbeat.Stats{}))
	}
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		for _, a := range amps {
			if h, err := healthmanager.ReadAmphoraHealth(ctx, w.pool, a.id); err != nil || h.LastSeen == nil {
				return false
			}
		}
		return true
	}, "heartbeats not recorded")

	now := time.Now()
	scan := func(at time.Time) healthmanager.ScanResult {
		t.Helper()
		s, err := healthmanager.NewScanner(healthmanager.ScannerConfig{Pool: w.pool, Commands: w.svc, Loader: w.handler,
			HeartbeatTimeout: 200 * time.Millisecond, FailoverThreshold: 3, Logger: w.log, Now: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Scan(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := scan(now.Add(5 * time.Second))
	if !res.Tripped || res.Stale != 3 || len(res.Requested) != 0 {
		t.Fatalf("scan with 3 stale amphorae, threshold 3: %+v", res)
	}
	for _, a := range amps {
		st := w.amphoraState(t, a.id)
		if st.FailingOver() || st.Status() != amphora.StatusFailoverStopped {
			t.Fatalf("amphora %s: status %s, failing over %v", a.id, st.Status(), st.FailingOver())
		}
	}
	// one reports again: it goes back to ALLOCATED, and with 2 stale the
	// guard no longer trips, so those two are failed over
	time.Sleep(400 * time.Millisecond)
	amps[0].send(t, amps[0].render(states[0], nil, heartbeat.Stats{}))
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() bool {
		h, _ := healthmanager.ReadAmphoraHealth(ctx, w.pool, amps[0].id)
		return h.LastSeq == 2
	}, "heartbeat not recorded")
	h, _ := healthmanager.ReadAmphoraHealth(ctx, w.pool, amps[0].id)
	res = scan(h.LastSeen.Add(100 * time.Millisecond))
	if res.Tripped || len(res.Recovered) != 1 || res.Recovered[0] != amps[0].id || len(res.Requested) != 2 {
		t.Fatalf("scan after recovery: %+v", res)
	}
	if st := w.amphoraState(t, amps[0].id); st.Status() != amphora.StatusAllocated || st.FailingOver() {
		t.Fatalf("recovered amphora: %s", st.Status())
	}
}
