package lbflows_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ostia/ostia/aggregates/amphora"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/internal/drivers/noop"
	"github.com/ostia/ostia/sagas/lbflows"
	"github.com/ostia/ostia/sagas/saga"
)

const waitFor = 20 * time.Second

func TestCreateSingleReachesActiveAndRerunMakesNothingNew(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noop.Config{BootPolls: 2})
	lbID, envs := e.createLB(lbflows.TopologySingle, 1)
	ids := e.trigger(envs)
	mustEqual(t, "sagas started", len(ids), 1)
	e.startRunner(e.runnerConfig("w1"))
	e.waitSaga(ids[0], saga.StatusCompleted, waitFor)

	l := e.lb(lbID)
	mustEqual(t, "lb status", l.ProvisioningStatus, lb.StatusActive)
	if l.VipPortId == "" || l.VipAddress == "" {
		t.Fatalf("VIP not recorded: %v", describe(l))
	}
	in := e.input(ids[0])
	mustEqual(t, "amphorae", len(in.Amps), 1)
	a := e.amp(in.Amps[0].ID)
	mustEqual(t, "amphora status", a.Status, amphora.StatusAllocated)
	mustEqual(t, "amphora role", a.Role, amphora.RoleStandalone)
	if a.ComputeId == "" || a.VrrpPortId == "" || a.HaIp != l.VipAddress || a.LbNetworkIp == "" {
		t.Fatalf("amphora facts missing: %v", describe(a))
	}
	mustEqual(t, "servers", len(e.cloud.Servers()), 1)
	mustEqual(t, "ports (VIP + VRRP)", len(e.cloud.Ports()), 2)
	agent, ok := e.cloud.Agent(a.Id)
	if !ok || agent.VIP == nil || agent.VIP.VIP != l.VipAddress || len(agent.Config) == 0 || agent.Reloads == 0 {
		t.Fatalf("agent not configured: %+v", agent)
	}

	// Redelivery of the trigger starts nothing and calls nothing.
	before := e.cloud.AllCalls()
	if again := e.trigger(envs); e.sagaStatus(again[0]).Version != e.sagaStatus(ids[0]).Version {
		t.Fatal("the redelivered trigger changed the saga")
	}
	time.Sleep(100 * time.Millisecond) // let the runner poll a few times
	if got := e.cloud.AllCalls(); !equalCounts(got, before) {
		t.Fatalf("a finished saga made calls: before %v after %v", before, got)
	}

	// Running every step again (a new saga with the same input, as after
	// losing all progress) finds everything and creates nothing.
	req := saga.StartRequest{SagaID: "rerun-" + lbID, Type: lbflows.FlowCreateLB, SubjectID: lbID, Input: in, Metadata: md}
	if _, err := e.sagas.Start(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	e.waitSaga(req.SagaID, saga.StatusCompleted, waitFor)
	after := e.cloud.AllCalls()
	for _, op := range []string{noop.OpCreateServer, noop.OpCreatePort, noop.OpCreateSecurityGroup, noop.OpCreateServerGroup,
		noop.OpIssueServerCert} {
		if after[op] != before[op] {
			t.Errorf("%s called again on re-run: %d -> %d", op, before[op], after[op])
		}
	}
	if d := e.cloud.Duplicates(); len(d) > 0 {
		t.Fatalf("duplicates: %v", d)
	}
	mustEqual(t, "lb status after re-run", e.lb(lbID).ProvisioningStatus, lb.StatusActive)
}

func equalCounts(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}

func TestCreateActiveStandbyGetsMasterAndBackup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noop.Config{})
	lbID, envs := e.createLB(lbflows.TopologyActiveStandby, 2)
	ids := e.trigger(envs)
	e.startRunner(e.runnerConfig("w1"))
	e.waitSaga(ids[0], saga.StatusCompleted, waitFor)
	mustEqual(t, "lb status", e.lb(lbID).ProvisioningStatus, lb.StatusActive)

	in := e.input(ids[0])
	var roles []string
	groups := map[string]bool{}
	for _, a := range in.Amps {
		rec := e.amp(a.ID)
		mustEqual(t, "amphora status", rec.Status, amphora.StatusAllocated)
		roles = append(roles, rec.Role)
		groups[e.cloud.ServerGroupOf(rec.ComputeId)] = true
		av, _ := e.cloud.Agent(a.ID)
		if av.KeepalivedStarted == 0 || !strings.Contains(string(av.Keepalived), "unicast_peer") {
			t.Fatalf("keepalived not configured on %s: %+v", a.ID, av)
		}
	}
	slices.Sort(roles)
	if !slices.Equal(roles, []string{amphora.RoleBackup, amphora.RoleMaster}) {
		t.Fatalf("roles %v", roles)
	}
	if len(groups) != 1 || groups[""] {
		t.Fatalf("both amphorae must be in one server group: %v", groups)
	}
	mustEqual(t, "servers", len(e.cloud.Servers()), 2)
	mustEqual(t, "ports", len(e.cloud.Ports()), 3)
}

func TestFailedBootEndsInErrorWithNothingLeft(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		topology string
		fault    noop.Fault
	}{
		{"server goes ERROR", lbflows.TopologySingle, noop.Fault{Op: noop.OpBoot, Call: 1}},
		{"second boot refused", lbflows.TopologyActiveStandby,
			noop.Fault{Op: noop.OpCreateServer, Call: 2, Err: saga.Permanent(errors.New("quota exceeded for instances"))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, noop.Config{})
			e.cloud.Inject(tc.fault)
			lbID, envs := e.createLB(tc.topology, 1)
			ids := e.trigger(envs)
			e.startRunner(e.runnerConfig("w1"))
			e.waitSaga(ids[0], saga.StatusFailed, waitFor)

			mustEqual(t, "lb status", e.lb(lbID).ProvisioningStatus, lb.StatusError)
			if live := e.cloud.Live(""); len(live) > 0 {
				t.Fatalf("left behind: %v", live)
			}
			for _, a := range e.input(ids[0]).Amps {
				if st := e.amp(a.ID).Status; st != "" && st != amphora.StatusDeleted {
					t.Fatalf("amphora %s is %s", a.ID, st)
				}
			}
			evs := e.sagaEvents(ids[0])
			if count(evs, "saga.compensation_started.v1") != 1 || count(evs, "saga.step_compensated.v1") == 0 ||
				count(evs, "saga.compensation_failed.v1") != 0 {
				t.Fatalf("saga events %v", evs)
			}
			if st := e.sagaStatus(ids[0]); st.NeedsCleanup {
				t.Fatal("nothing should need cleanup")
			}
		})
	}
}

func TestWorkerKilledMidStepResumesWithoutDuplicates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noop.Config{})
	// The first boot reaches Nova, then the worker hangs in the call: the
	// server exists but the step has no recorded outcome.
	e.cloud.Inject(noop.Fault{Op: noop.OpCreateServer, Call: 1, Delay: time.Minute, After: true})
	lbID, envs := e.createLB(lbflows.TopologyActiveStandby, 1)
	ids := e.trigger(envs)
	// Every step is checkpointed before it runs, so the killed boot's start
	// is in the history and its re-run shows there too.
	rc := e.runnerConfig("w1")
	rc.CheckpointInterval = -1
	w1 := e.startRunner(rc)
	waitUntil(t, func() bool { return e.cloud.Calls(noop.OpCreateServer) >= 1 }, "first boot")
	w1.kill()
	if st := e.sagaStatus(ids[0]); st.Status != saga.StatusRunning {
		t.Fatalf("saga %s after the kill", st.Status)
	}
	w2 := e.startRunner(e.runnerConfig("w2"))
	e.waitSaga(ids[0], saga.StatusCompleted, waitFor)
	w2.kill()

	mustEqual(t, "lb status", e.lb(lbID).ProvisioningStatus, lb.StatusActive)
	if d := e.cloud.Duplicates(); len(d) > 0 {
		t.Fatalf("duplicated resources: %v", d)
	}
	mustEqual(t, "servers", len(e.cloud.Servers()), 2)
	mustEqual(t, "ports", len(e.cloud.Ports()), 3)
	evs := e.sagaEvents(ids[0])
	if count(evs, "saga.step_started.v1") <= count(evs, "saga.step_completed.v1") {
		t.Fatalf("expected a re-run step start: %v", evs)
	}
}

func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCompensationFailureIsRecordedAndCleanedUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noop.Config{})
	e.cloud.Inject(noop.Fault{Op: noop.OpCreateServer, Call: 1, Err: saga.Permanent(errors.New("no valid host"))})
	e.cloud.Inject(noop.Fault{Op: noop.OpDeletePort, Err: saga.Transient(errors.New("neutron 503"))})
	lbID, envs := e.createLB(lbflows.TopologySingle, 1)
	ids := e.trigger(envs)
	e.startRunner(e.runnerConfig("w1"))
	e.waitSaga(ids[0], saga.StatusFailed, waitFor)

	mustEqual(t, "lb status", e.lb(lbID).ProvisioningStatus, lb.StatusError)
	st := e.sagaStatus(ids[0])
	if !st.NeedsCleanup {
		t.Fatal("a failed compensation must leave the saga needing cleanup")
	}
	evs := e.sagaEvents(ids[0])
	if count(evs, "saga.compensation_failed.v1") != 1 || evs[len(evs)-1] != "saga.failed.v1" {
		t.Fatalf("saga events %v", evs)
	}
	if live := e.cloud.Live("octavia-lb-"); len(live) != 1 {
		t.Fatalf("the VIP port should be left for cleanup: %v", live)
	}

	// Cleanup retries while Neutron still fails, then Neutron recovers and
	// the cleanup loop removes the orphan.
	waitUntil(t, func() bool { return counterValue(t, e, "ostia_saga_cleanup_failures_total") >= 1 }, "a failed cleanup")
	e.cloud.ClearFaults()
	testkit_Eventually(t, func() bool { return !e.sagaStatus(ids[0]).NeedsCleanup }, "cleanup")
	if live := e.cloud.Live(""); len(live) > 0 {
		t.Fatalf("left behind after cleanup: %v", live)
	}
	evs = e.sagaEvents(ids[0])
	if evs[len(evs)-1] != "saga.step_compensated.v1" {
		t.Fatalf("cleanup not recorded: %v", evs)
	}
	if got := counterValue(t, e, "ostia_saga_compensation_failures_total"); got != 1 {
		t.Fatalf("compensation failure metric = %v", got)
	}
}

func testkit_Eventually(t *testing.T, cond func() bool, what string) { waitUntil(t, cond, what) }

func counterValue(t *testing.T, e *env, name string) float64 {
	t.Helper()
	mfs, err := e.prom.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func TestFailoverBuildsReplacementThenRemovesOld(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noop.Config{})
	lbID, envs := e.createLB(lbflows.TopologyActiveStandby, 1)
	ids := e.trigger(envs)
	e.startRunner(e.runnerConfig("w1"))
	e.waitSaga(ids[0], saga.StatusCompleted, waitFor)
	in := e.input(ids[0])
	failed := in.Amps[0]
	failedRole := e.amp(failed.ID).Role

	_, fenvs, err := e.svc.Amphora(context.Background(), md, failed.ID, amphora.RequestFailover{Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	fids := e.trigger(fenvs)
	mustEqual(t, "failover sagas", len(fids), 1)
	e.waitSaga(fids[0], saga.StatusCompleted, waitFor)

	mustEqual(t, "old amphora", e.amp(failed.ID).Status, amphora.StatusDeleted)
	newAmp := e.input(fids[0]).Amps[0]
	rec := e.amp(newAmp.ID)
	mustEqual(t, "new amphora status", rec.Status, amphora.StatusAllocated)
	mustEqual(t, "new amphora role", rec.Role, failedRole)
	mustEqual(t, "lb status", e.lb(lbID).ProvisioningStatus, lb.StatusActive)
	servers := e.cloud.Servers()
	mustEqual(t, "servers", len(servers), 2)
	for _, s := range servers {
		if s.Name == "amphora-"+failed.ID {
			t.Fatal("the failed amphora's server is still there")
		}
	}
	mustEqual(t, "ports", len(e.cloud.Ports()), 3)
	// The surviving peer got the new configuration too.
	peer := in.Amps[1]
	if av, _ := e.cloud.Agent(peer.ID); av.KeepalivedStarted < 2 {
		t.Fatalf("peer keepalived not restarted: %+v", av)
	}
}

// An amphora failover whose replacement cannot be built ends, as in
// Octavia, with the failed amphora and its load balancer in ERROR, and no
// half-built replacement left.
func TestFailedAmphoraFailoverLeavesTheLoadBalancerInError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, noop.Config{})
	lbID, envs := e.createLB(lbflows.TopologySingle, 1)
	ids := e.trigger(envs)
	e.startRunner(e.runnerConfig("w1"))
	e.waitSaga(ids[0], saga.StatusCompleted, waitFor)
	failed := e.input(ids[0]).Amps[0]
	servers := len(e.cloud.Servers())

	// Every boot from now on fails.
	e.cloud.Inject(noop.Fault{Op: noop.OpCreateServer, Err: saga.Permanent(errors.New("no valid host was found"))})
	_, fenvs, err := e.svc.Amphora(context.Background(), md, failed.ID, amphora.RequestFailover{Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	fids := e.trigger(fenvs)
	mustEqual(t, "failover sagas", len(fids), 1)
	e.waitSaga(fids[0], saga.StatusFailed, waitFor)

	mustEqual(t, "lb status", e.lb(lbID).ProvisioningStatus, lb.StatusError)
	mustEqual(t, "failed amphora", e.amp(failed.ID).Status, amphora.StatusError)
	mustEqual(t, "servers", len(e.cloud.Servers()), servers)
}
