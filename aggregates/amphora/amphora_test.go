package amphora_test

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/aggregatetest"
	"github.com/ostia/ostia/aggregates/amphora"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

const ampID = "a0000000-0000-4000-8000-000000000001"

func created(status string) []proto.Message {
	evs := []proto.Message{&eventsv1.AmphoraCreated{Amphora: &eventsv1.Amphora{Id: ampID, LoadbalancerId: "lb1", Status: amphora.StatusPendingCreate, Role: amphora.RoleStandalone}}}
	if status != amphora.StatusPendingCreate {
		evs = append(evs, &eventsv1.AmphoraStatusChanged{Status: status})
	}
	return evs
}

func TestCreateAmphora(t *testing.T) {
	t.Parallel()
	env := aggregatetest.Env()
	got, err := amphora.Decide(amphora.New(ampID), amphora.CreateAmphora{LoadBalancerID: "lb1", Role: amphora.RoleMaster, ProjectID: "p"}, env)
	aggregatetest.ThenEvents(t, got, err, &eventsv1.AmphoraCreated{Amphora: &eventsv1.Amphora{
		Id: ampID, LoadbalancerId: "lb1", ProjectId: "p", Role: amphora.RoleMaster,
		Status: amphora.StatusPendingCreate, CreatedAt: timestamppb.New(aggregatetest.T0),
	}})

	s := aggregatetest.Given(t, amphora.New(ampID), created(amphora.StatusPendingCreate)...)
	_, err = amphora.Decide(s, amphora.CreateAmphora{LoadBalancerID: "lb1"}, env)
	aggregatetest.ThenError(t, err, aggregates.KindConflict, "Already an entity with that specified id.")

	_, err = amphora.Decide(amphora.New(ampID), amphora.CreateAmphora{Role: "BOSS"}, env)
	aggregatetest.ThenError(t, err, aggregates.KindInvalid, "BOSS is not a valid option for role")
}

func TestUpdateAmphora(t *testing.T) {
	t.Parallel()
	s := aggregatetest.Given(t, amphora.New(ampID), created(amphora.StatusBooting)...)
	got, err := amphora.Decide(s, amphora.UpdateAmphora{
		ComputeID:    aggregates.Value("srv1"),
		VrrpPriority: aggregates.Value[int32](100),
		Role:         aggregates.Value(amphora.RoleStandalone), // unchanged
	}, aggregatetest.Env())
	want := s.Amphora()
	want.ComputeId = "srv1"
	want.VrrpPriority = 100
	want.UpdatedAt = timestamppb.New(aggregatetest.T0)
	aggregatetest.ThenEvents(t, got, err, &eventsv1.AmphoraUpdated{Amphora: want, UpdatedFields: []string{"compute_id", "vrrp_priority"}})

	got, err = amphora.Decide(s, amphora.UpdateAmphora{Role: aggregates.Value(amphora.RoleStandalone)}, aggregatetest.Env())
	aggregatetest.ThenEvents(t, got, err)
}

func TestChangeStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from, to string
		want     proto.Message
		wantErr  aggregates.Kind
	}{
		{from: amphora.StatusPendingCreate, to: amphora.StatusBooting, want: &eventsv1.AmphoraStatusChanged{Status: amphora.StatusBooting}},
		{from: amphora.StatusBooting, to: amphora.StatusAllocated, want: &eventsv1.AmphoraStatusChanged{Status: amphora.StatusAllocated}},
		{from: amphora.StatusAllocated, to: amphora.StatusFailoverStopped, want: &eventsv1.AmphoraStatusChanged{Status: amphora.StatusFailoverStopped}},
		{from: amphora.StatusPendingDelete, to: amphora.StatusDeleted, want: &eventsv1.AmphoraDeleted{}},
		{from: amphora.StatusAllocated, to: amphora.StatusAllocated},
		{from: amphora.StatusDeleted, to: amphora.StatusAllocated, wantErr: aggregates.KindConflict},
		{from: amphora.StatusAllocated, to: amphora.StatusBooting, wantErr: aggregates.KindConflict},
		{from: amphora.StatusAllocated, to: "SLEEPING", wantErr: aggregates.KindInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.from+"->"+tc.to, func(t *testing.T) {
			t.Parallel()
			s := aggregatetest.Given(t, amphora.New(ampID), created(tc.from)...)
			got, err := amphora.Decide(s, amphora.ChangeStatus{Status: tc.to}, aggregatetest.Env())
			if tc.wantErr != 0 {
				aggregatetest.ThenError(t, err, tc.wantErr, "")
				return
			}
			if tc.want == nil {
				aggregatetest.ThenEvents(t, got, err)
				return
			}
			aggregatetest.ThenEvents(t, got, err, tc.want)
			aggregatetest.ApplyAll(t, s, got)
			if s.Status() != tc.to {
				t.Fatalf("status %s, want %s", s.Status(), tc.to)
			}
		})
	}
}

func TestRequestFailover(t *testing.T) {
	t.Parallel()
	s := aggregatetest.Given(t, amphora.New(ampID), created(amphora.StatusAllocated)...)
	got, err := amphora.Decide(s, amphora.RequestFailover{Reason: "stale"}, aggregatetest.Env())
	aggregatetest.ThenEvents(t, got, err, &eventsv1.AmphoraFailoverRequested{Reason: "stale"})
	if s.FailingOver() {
		t.Fatal("Decide changed the state")
	}
	aggregatetest.ApplyAll(t, s, got)
	_, err = amphora.Decide(s, amphora.RequestFailover{}, aggregatetest.Env())
	aggregatetest.ThenError(t, err, aggregates.KindConflict, "Amphora "+ampID+" is immutable and cannot be updated.")

	// a failed failover (ERROR) may be retried
	aggregatetest.ApplyAll(t, s, []proto.Message{&eventsv1.AmphoraStatusChanged{Status: amphora.StatusError}})
	got, err = amphora.Decide(s, amphora.RequestFailover{}, aggregatetest.Env())
	aggregatetest.ThenEvents(t, got, err, &eventsv1.AmphoraFailoverRequested{})

	gone := aggregatetest.Given(t, amphora.New(ampID), append(created(amphora.StatusPendingDelete), &eventsv1.AmphoraDeleted{})...)
	_, err = amphora.Decide(gone, amphora.RequestFailover{}, aggregatetest.Env())
	aggregatetest.ThenError(t, err, aggregates.KindNotFound, "Amphora "+ampID+" not found.")
}

func TestDeleteAmphora(t *testing.T) {
	t.Parallel()
	s := aggregatetest.Given(t, amphora.New(ampID), created(amphora.StatusError)...)
	got, err := amphora.Decide(s, amphora.DeleteAmphora{}, aggregatetest.Env())
	aggregatetest.ThenEvents(t, got, err, &eventsv1.AmphoraStatusChanged{Status: amphora.StatusPendingDelete})

	s = aggregatetest.Given(t, amphora.New(ampID), created(amphora.StatusAllocated)...)
	_, err = amphora.Decide(s, amphora.DeleteAmphora{}, aggregatetest.Env())
	aggregatetest.ThenError(t, err, aggregates.KindConflict, "Amphora "+ampID+" is immutable and cannot be updated.")

	_, err = amphora.Decide(amphora.New(ampID), amphora.DeleteAmphora{}, aggregatetest.Env())
	aggregatetest.ThenError(t, err, aggregates.KindNotFound, "Amphora "+ampID+" not found.")

	s = aggregatetest.Given(t, amphora.New(ampID), append(created(amphora.StatusPendingDelete), &eventsv1.AmphoraDeleted{})...)
	_, err = amphora.Decide(s, amphora.DeleteAmphora{}, aggregatetest.Env())
	aggregatetest.ThenError(t, err, aggregates.KindNotFound, "Amphora "+ampID+" not found.")
	got, err = amphora.Decide(s, amphora.MarkDeleted{}, aggregatetest.Env())
	aggregatetest.ThenEvents(t, got, err)
}

func TestRecordCertificate(t *testing.T) {
	t.Parallel()
	s := aggregatetest.Given(t, amphora.New(ampID), created(amphora.StatusAllocated)...)
	got, err := amphora.Decide(s, amphora.UpdateAmphora{CertBusy: aggregates.Value(true)}, aggregatetest.Env())
	if err != nil {
		t.Fatal(err)
	}
	aggregatetest.ApplyAll(t, s, got)
	exp := aggregatetest.T0.AddDate(2, 0, 0)
	got, err = amphora.Decide(s, amphora.RecordCertificate{ExpiresAt: exp, Serial: "01"}, aggregatetest.Env())
	aggregatetest.ThenEvents(t, got, err, &eventsv1.AmphoraCertificateIssued{ExpiresAt: timestamppb.New(exp), Serial: "01"})
	aggregatetest.ApplyAll(t, s, got)
	if a := s.Amphora(); a.CertBusy || !a.CertExpiration.AsTime().Equal(exp) || s.Version != 4 {
		t.Fatalf("state %v version %d", a, s.Version)
	}
}

func TestApplyUnknownEvent(t *testing.T) {
	t.Parallel()
	if err := amphora.New(ampID).Apply(&eventsv1.PoolCreated{}); err == nil {
		t.Fatal("want error")
	}
}

// TestSequence: the commands of a sequence see each other's effects, the
// input state is left alone, and one refused command refuses them all.
func TestSequence(t *testing.T) {
	t.Parallel()
	s := aggregatetest.Given(t, amphora.New(ampID), created(amphora.StatusPendingCreate)...)
	exp := aggregatetest.T0.AddDate(2, 0, 0)
	got, err := amphora.Decide(s, amphora.Sequence{
		amphora.UpdateAmphora{ComputeID: aggregates.Value("srv1")},
		amphora.RecordCertificate{ExpiresAt: exp, Serial: "01"},
		amphora.ChangeStatus{Status: amphora.StatusBooting},
	}, aggregatetest.Env())
	if err != nil || len(got) != 3 {
		t.Fatalf("events %v, err %v", got, err)
	}
	if s.Version != 1 || s.Amphora().ComputeId != "" {
		t.Fatal("Decide changed its input state")
	}
	aggregatetest.ApplyAll(t, s, got)
	if a := s.Amphora(); a.ComputeId != "srv1" || a.Status != amphora.StatusBooting || a.CertExpiration == nil {
		t.Fatalf("state after the sequence: %v", a)
	}

	// PENDING_CREATE is no way back from ALLOCATED: the whole sequence is refused.
	done := aggregatetest.Given(t, amphora.New(ampID), created(amphora.StatusAllocated)...)
	got, err = amphora.Decide(done, amphora.Sequence{
		amphora.UpdateAmphora{ComputeID: aggregates.Value("srv2")},
		amphora.ChangeStatus{Status: amphora.StatusPendingCreate},
	}, aggregatetest.Env())
	if err == nil || len(got) != 0 {
		t.Fatalf("a sequence with a refused command gave %v, %v", got, err)
	}
}
