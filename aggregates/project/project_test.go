package project_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/aggregatetest"
	"github.com/ostia/ostia/aggregates/project"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

func TestSetQuota(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		given   []proto.Message
		cmd     project.SetQuota
		want    []proto.Message
		wantErr string
	}{
		{
			name: "sets supplied fields",
			cmd:  project.SetQuota{LoadBalancer: aggregates.Value[int64](5), Member: aggregates.Value[int64](-1)},
			want: []proto.Message{&eventsv1.QuotaSet{Quota: &eventsv1.Quota{LoadBalancer: proto.Int64(5), Member: proto.Int64(-1)}}},
		},
		{
			name:  "null returns a field to the default, absent keeps it",
			given: []proto.Message{&eventsv1.QuotaSet{Quota: &eventsv1.Quota{LoadBalancer: proto.Int64(5), Pool: proto.Int64(3)}}},
			cmd:   project.SetQuota{LoadBalancer: aggregates.Null[int64]()},
			want:  []proto.Message{&eventsv1.QuotaSet{Quota: &eventsv1.Quota{Pool: proto.Int64(3)}}},
		},
		{
			name:    "below -1",
			cmd:     project.SetQuota{Listener: aggregates.Value[int64](-2)},
			wantErr: "Invalid input for field/attribute listener. Value: '-2'. Value should be greater or equal to -1",
		},
		{
			name:    "above maximum",
			cmd:     project.SetQuota{L7Rule: aggregates.Value[int64](2000000001)},
			wantErr: "Invalid input for field/attribute l7rule. Value: '2000000001'. Value should be lower or equal to 2000000000",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := aggregatetest.Given(t, project.New(), tc.given...)
			got, err := project.Decide(s, tc.cmd, aggregatetest.Env())
			if tc.wantErr != "" {
				aggregatetest.ThenError(t, err, aggregates.KindInvalid, tc.wantErr)
				return
			}
			aggregatetest.ThenEvents(t, got, err, tc.want...)
		})
	}
}

func TestResetQuota(t *testing.T) {
	t.Parallel()
	s := aggregatetest.Given(t, project.New(), &eventsv1.QuotaSet{Quota: &eventsv1.Quota{Pool: proto.Int64(1)}})
	got, err := project.Decide(s, project.ResetQuota{Reason: "api"}, aggregatetest.Env())
	aggregatetest.ThenEvents(t, got, err, &eventsv1.QuotaReset{Reason: "api"})
	aggregatetest.ApplyAll(t, s, got)
	if s.HasQuota() || s.EffectiveLimits(project.DefaultLimits()).Pool != -1 {
		t.Fatalf("quota not reset: %v", s.Quota())
	}
}

func TestChargeUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		given    []proto.Message
		delta    *eventsv1.QuotaUsage
		defaults project.Limits
		wantErr  string
	}{
		{name: "unlimited by default", delta: &eventsv1.QuotaUsage{LoadBalancer: 1000}, defaults: project.DefaultLimits()},
		{
			name:     "fits exactly",
			given:    []proto.Message{&eventsv1.QuotaSet{Quota: &eventsv1.Quota{Listener: proto.Int64(2)}}},
			delta:    &eventsv1.QuotaUsage{Listener: 2},
			defaults: project.DefaultLimits(),
		},
		{
			name: "project limit met",
			given: []proto.Message{
				&eventsv1.QuotaSet{Quota: &eventsv1.Quota{Listener: proto.Int64(2)}},
				&eventsv1.QuotaUsageChanged{Delta: &eventsv1.QuotaUsage{Listener: 2}},
			},
			delta:    &eventsv1.QuotaUsage{Listener: 1},
			defaults: project.DefaultLimits(),
			wantErr:  "Quota has been met for resources: Listener",
		},
		{
			name:     "default limit met",
			delta:    &eventsv1.QuotaUsage{LoadBalancer: 1, HealthMonitor: 1},
			defaults: project.Limits{LoadBalancer: -1, Listener: -1, Pool: -1, HealthMonitor: 0, Member: -1, L7Policy: -1, L7Rule: -1},
			wantErr:  "Quota has been met for resources: Health Monitor",
		},
		{
			name:     "zero quota refuses even one",
			given:    []proto.Message{&eventsv1.QuotaSet{Quota: &eventsv1.Quota{LoadBalancer: proto.Int64(0)}}},
			delta:    &eventsv1.QuotaUsage{LoadBalancer: 1},
			defaults: project.DefaultLimits(),
			wantErr:  "Quota has been met for resources: Load Balancer",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := aggregatetest.Given(t, project.New(), tc.given...)
			got, err := project.Decide(s, project.ChargeUsage{Delta: tc.delta, ObjectID: "lb1", Defaults: tc.defaults}, aggregatetest.Env())
			if tc.wantErr != "" {
				aggregatetest.ThenError(t, err, aggregates.KindQuota, tc.wantErr)
				return
			}
			aggregatetest.ThenEvents(t, got, err, &eventsv1.QuotaUsageChanged{Delta: tc.delta, ObjectId: "lb1"})
		})
	}
}

func TestReleaseUsageNeverBelowZero(t *testing.T) {
	t.Parallel()
	s := aggregatetest.Given(t, project.New(), &eventsv1.QuotaUsageChanged{Delta: &eventsv1.QuotaUsage{Pool: 2, Member: 1}})
	before := s.InUse()
	got, err := project.Decide(s, project.ReleaseUsage{Delta: &eventsv1.QuotaUsage{Pool: -3, Member: 1}, ObjectID: "p"}, aggregatetest.Env())
	aggregatetest.ThenEvents(t, got, err, &eventsv1.QuotaUsageChanged{Delta: &eventsv1.QuotaUsage{Pool: -2, Member: -1}, ObjectId: "p"})
	if !proto.Equal(before, s.InUse()) {
		t.Fatal("Decide changed the state")
	}
	aggregatetest.ApplyAll(t, s, got)
	if !proto.Equal(s.InUse(), &eventsv1.QuotaUsage{}) || s.Version != 2 {
		t.Fatalf("in use %v version %d", s.InUse(), s.Version)
	}
	got, err = project.Decide(s, project.ReleaseUsage{Delta: &eventsv1.QuotaUsage{Pool: 1}}, aggregatetest.Env())
	aggregatetest.ThenEvents(t, got, err)
}

func TestApplyUnknownEvent(t *testing.T) {
	t.Parallel()
	if err := project.New().Apply(&eventsv1.PoolCreated{}); err == nil {
		t.Fatal("want error")
	}
}
