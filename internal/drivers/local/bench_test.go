package local_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ostia/ostia/aggregates"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/sagas/lbflows"
	"github.com/ostia/ostia/templates"
)

// BenchmarkConfigPush measures configuration push latency on the local
// cloud: from a command being accepted (the command service returned) to
// the new configuration serving traffic through the VIP. Each iteration
// toggles an L7 policy that sends every path to a second pool, so the
// member answering a fresh connection tells which configuration runs.
// The saga is started directly, as the Kafka consumer would after the
// relay (which adds the append-to-consumed latency of the README).
//
//	go test ./internal/drivers/local -run '^$' -bench ConfigPush -benchtime 30x
func BenchmarkConfigPush(b *testing.B) {
	hs := newHarness(b, harnessOptions{})
	host := hs.drv.HostAddress()
	m1, m2 := startMember(b, host, "m1"), startMember(b, host, "m2")
	lbID, listenerID, _, _ := hs.createLB(lbflows.TopologySingle, m1)
	pool2, policyID := uuid.NewString(), uuid.NewString()
	hs.do(lbID, lb.CreatePool{LoadBalancerID: lbID, PoolSpec: lb.PoolSpec{ID: pool2, Protocol: "HTTP", LBAlgorithm: "ROUND_ROBIN"}})
	hs.waitStatus(lbID, lb.StatusActive, 30*time.Second)
	hs.do(lbID, lb.CreateMember{PoolID: pool2, MemberSpec: lb.MemberSpec{ID: uuid.NewString(), Address: m2.addr, ProtocolPort: m2.port}})
	hs.waitStatus(lbID, lb.StatusActive, 30*time.Second)
	hs.do(lbID, lb.CreateL7Policy{ListenerID: listenerID, L7PolicySpec: lb.L7PolicySpec{ID: policyID,
		Action: templates.ActionRedirectToPool, RedirectPoolID: ptr(pool2), Position: ptr(int32(1))}})
	hs.waitStatus(lbID, lb.StatusActive, 30*time.Second)
	hs.do(lbID, lb.CreateL7Rule{L7PolicyID: policyID, L7RuleSpec: lb.L7RuleSpec{ID: uuid.NewString(),
		Type: templates.RulePath, CompareType: templates.CompareStartsWith, Value: "/"}})
	hs.waitStatus(lbID, lb.StatusActive, 30*time.Second)
	url := hs.vipURL(lbID, "/")
	waitAnswer(b, url, 10*time.Second, func(a answer) bool { return a.body == "m2" })

	c := client(time.Second)
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		enable := i%2 == 1
		want := "m1"
		if enable {
			want = "m2"
		}
		_, envs, err := hs.svc.LoadBalancer(context.Background(), md, lbID, lb.UpdateL7Policy{L7PolicyID: policyID,
			AdminStateUp: aggregates.Value(enable)})
		if err != nil {
			b.Fatal(err)
		}
		accepted := time.Now()
		hs.trigger(envs)
		for {
			if a, err := get(c, url); err == nil && a.body == want {
				break
			}
			if time.Since(accepted) > 30*time.Second {
				b.Fatalf("iteration %d: %s does not answer after 30s", i, want)
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(accepted))
		b.StopTimer()
		hs.waitStatus(lbID, lb.StatusActive, 30*time.Second)
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(float64(q(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(q(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("config push latency over %d pushes: min %s p50 %s p90 %s p99 %s max %s", len(lat), lat[0], q(0.5), q(0.9), q(0.99), lat[len(lat)-1])
}
