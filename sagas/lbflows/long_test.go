package lbflows_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/google/uuid"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/internal/drivers/noop"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
	"github.com/ostia/ostia/sagas/lbflows"
	"github.com/ostia/ostia/sagas/saga"
)

// TestLongManyLoadBalancersWithWorkerKills creates OSTIA_LONG_N (default
// 200) load balancers at once on three runners while one runner is killed
// (context cancel, leases kept) every OSTIA_LONG_KILL_MS (default 300) and
// replaced, with random transient cloud failures; then deletes them all.
// Run with OSTIA_LONG=1.
func TestLongManyLoadBalancersWithWorkerKills(t *testing.T) {
	if os.Getenv("OSTIA_LONG") != "1" {
		t.Skip("set OSTIA_LONG=1")
	}
	n := envInt("OSTIA_LONG_N", 200)
	killEvery := time.Duration(envInt("OSTIA_LONG_KILL_MS", 300)) * time.Millisecond
	e := newEnv(t, noop.Config{BootPolls: 3, Seed: 7})
	for _, op := range []string{noop.OpCreatePort, noop.OpGetServer, noop.OpUploadConfig, noop.OpPlugPort, noop.OpDeleteServer} {
		e.cloud.Inject(noop.Fault{Op: op, Probability: 0.02, Err: saga.Transient(errors.New("injected 503"))})
	}
	e.cloud.Inject(noop.Fault{Op: noop.OpCreateServer, Probability: 0.05, Delay: 50 * time.Millisecond, After: true})

	var mu sync.Mutex
	workers := map[int]*running{}
	next := 0
	spawn := func() {
		mu.Lock()
		defer mu.Unlock()
		workers[next] = e.startRunner(e.runnerConfig("w" + strconv.Itoa(next)))
		next++
	}
	for range 3 {
		spawn()
	}
	stopKills := make(chan struct{})
	killsDone := make(chan int)
	go func() {
		kills := 0
		rnd := rand.New(rand.NewPCG(1, 2))
		t := time.NewTicker(killEvery)
		defer t.Stop()
		for {
			select {
			case <-stopKills:
				killsDone <- kills
				return
			case <-t.C:
			}
			mu.Lock()
			var keys []int
			for k := range workers {
				keys = append(keys, k)
			}
			k := keys[rnd.IntN(len(keys))]
			w := workers[k]
			delete(workers, k)
			mu.Unlock()
			w.kill()
			kills++
			spawn()
		}
	}()

	start := time.Now()
	type created struct {
		id   string
		amps int
	}
	lbs := make([]created, n)
	var allEnvs []*eventsv1.Envelope
	for i := range n {
		topo := lbflows.TopologySingle
		amps := 1
		if i%2 == 1 {
			topo, amps = lbflows.TopologyActiveStandby, 2
		}
		id, envs := e.createFullStackLB(topo)
		lbs[i] = created{id, amps}
		allEnvs = append(allEnvs, envs...)
	}
	sagaIDs := e.trigger(allEnvs)
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		counts, err := e.sagas.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if counts[saga.StatusCompleted]+counts[saga.StatusFailed] == len(sagaIDs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sagas not finished: %v", counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	createTook := time.Since(start)
	wantServers, wantPorts := 0, 0
	for _, l := range lbs {
		if st := e.lb(l.id).ProvisioningStatus; st != lb.StatusActive {
			t.Errorf("load balancer %s is %s", l.id, st)
		}
		wantServers += l.amps
		wantPorts += 1 + l.amps
	}
	if d := e.cloud.Duplicates(); len(d) > 0 {
		t.Fatalf("%d duplicated resources, e.g. %v", len(d), d[:min(5, len(d))])
	}
	mustEqual(t, "servers", len(e.cloud.Servers()), wantServers)
	mustEqual(t, "ports", len(e.cloud.Ports()), wantPorts)
	resumed := counterValue(t, e, "ostia_saga_resumed_total")

	// Delete them all, still killing workers.
	start = time.Now()
	var delEnvs []*eventsv1.Envelope
	for _, l := range lbs {
		_, envs, err := e.svc.LoadBalancer(ctx, md, l.id, lb.DeleteLoadBalancer{Cascade: true})
		if err != nil {
			t.Fatal(err)
		}
		delEnvs = append(delEnvs, envs...)
	}
	delIDs := e.trigger(delEnvs)
	for {
		counts, _ := e.sagas.Counts(ctx)
		if counts[saga.StatusCompleted]+counts[saga.StatusFailed] == len(sagaIDs)+len(delIDs) {
			break
		}
		if time.Now().After(deadline.Add(5 * time.Minute)) {
			t.Fatalf("delete sagas not finished: %v", counts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	deleteTook := time.Since(start)
	close(stopKills)
	kills := <-killsDone
	counts, _ := e.sagas.Counts(ctx)
	rows, err := e.pool.Query(ctx, `SELECT i.saga_id, i.saga_type, e.payload FROM sagas_index i JOIN events e
		ON e.aggregate_type = 'saga' AND e.aggregate_id = i.saga_id AND e.event_type = 'saga.failed.v1' WHERE i.status = 'failed'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, typ string
		var payload []byte
		_ = rows.Scan(&id, &typ, &payload)
		var f eventsv1.SagaFailed
		_ = proto.Unmarshal(payload, &f)
		t.Errorf("saga %s (%s) failed: %s", id, typ, f.GetReason())
	}
	rows.Close()
	if live := e.cloud.Live(""); len(live) > 0 {
		t.Fatalf("%d resources left behind, e.g. %v", len(live), live[:min(5, len(live))])
	}
	for _, l := range lbs {
		if st := e.lb(l.id).ProvisioningStatus; st != lb.StatusDeleted {
			t.Errorf("load balancer %s is %s after delete", l.id, st)
		}
	}
	var sagaEvents int64
	_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE aggregate_type = 'saga'`).Scan(&sagaEvents)
	calls := e.cloud.AllCalls()
	t.Logf("%d load balancers (%d amphorae): create %s (%.1f LB/s), delete %s; worker kills %d; resumed steps %.0f; saga statuses %v; saga events %d; cloud calls: CreateServer %d, CreatePort %d, GetServer %d, injected-fault ops total %d",
		n, wantServers, createTook.Round(time.Millisecond), float64(n)/createTook.Seconds(), deleteTook.Round(time.Millisecond),
		kills, resumed, counts, sagaEvents, calls[noop.OpCreateServer], calls[noop.OpCreatePort], calls[noop.OpGetServer],
		calls[noop.OpCreatePort]+calls[noop.OpGetServer]+calls[noop.OpUploadConfig]+calls[noop.OpPlugPort]+calls[noop.OpDeleteServer])
	fmt.Fprintln(os.Stderr, "step failures:", counterValue(t, e, "ostia_saga_step_failures_total"))
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// createFullStackLB creates a load balancer with the acceptance test's
// stack: an HTTP listener whose default pool has two members and an HTTP
// health monitor.
func (e *env) createFullStackLB(topology string) (string, []*eventsv1.Envelope) {
	e.t.Helper()
	id := uuid.NewString()
	name := "pool-" + id[:8]
	cmd := lb.CreateLoadBalancer{ID: id, ProjectID: "proj-1", VipSubnetID: "subnet-vip", VipNetworkID: "net-vip",
		Topology: topology,
		Listeners: []lb.ListenerSpec{{Protocol: "HTTP", ProtocolPort: 80,
			DefaultPool: &lb.PoolSpec{Name: &name, Protocol: "HTTP", LBAlgorithm: "ROUND_ROBIN",
				Members:       []lb.MemberSpec{{Address: "192.0.2.10", ProtocolPort: 8080}, {Address: "192.0.2.11", ProtocolPort: 8080}},
				HealthMonitor: &lb.HealthMonitorSpec{Type: "HTTP", Delay: 5, Timeout: 3, MaxRetries: 3}}}}}
	_, envs, err := e.svc.LoadBalancer(context.Background(), md, id, cmd)
	if err != nil {
		e.t.Fatal(err)
	}
	return id, envs
}
