package catalog_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/aggregatetest"
	"github.com/ostia/ostia/aggregates/catalog"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

const (
	fpID  = "f0000000-0000-4000-8000-000000000001"
	flID  = "f0000000-0000-4000-8000-000000000002"
	azpID = "a0000000-0000-4000-8000-000000000003"
)

func seeded() []proto.Message {
	return []proto.Message{
		&eventsv1.FlavorProfileCreated{FlavorProfile: &eventsv1.FlavorProfile{Id: fpID, Name: "fp", ProviderName: "amphora", FlavorData: `{"loadbalancer_topology":"SINGLE"}`}},
		&eventsv1.FlavorCreated{Flavor: &eventsv1.Flavor{Id: flID, Name: "small", Enabled: true, FlavorProfileId: fpID}},
		&eventsv1.AvailabilityZoneProfileCreated{AvailabilityZoneProfile: &eventsv1.AvailabilityZoneProfile{Id: azpID, Name: "azp", ProviderName: "amphora", AvailabilityZoneData: `{}`}},
		&eventsv1.AvailabilityZoneCreated{AvailabilityZone: &eventsv1.AvailabilityZone{Name: "az1", Enabled: true, AvailabilityZoneProfileId: azpID}},
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cmd      catalog.Command
		want     []proto.Message
		wantKind aggregates.Kind
		wantMsg  string
	}{
		{
			name: "create flavor profile",
			cmd:  catalog.CreateFlavorProfile{Name: "p2", ProviderName: "amphora", FlavorData: `{}`},
			want: []proto.Message{&eventsv1.FlavorProfileCreated{FlavorProfile: &eventsv1.FlavorProfile{Id: aggregatetest.ID(1), Name: "p2", ProviderName: "amphora", FlavorData: `{}`}}},
		},
		{
			name: "flavor profile data must be a JSON object", cmd: catalog.CreateFlavorProfile{Name: "p2", ProviderName: "amphora", FlavorData: `[1]`},
			wantKind: aggregates.KindInvalid, wantMsg: "[1] is not a valid option for flavor data",
		},
		{
			name: "flavor profile name is mandatory", cmd: catalog.CreateFlavorProfile{ProviderName: "amphora", FlavorData: `{}`},
			wantKind: aggregates.KindInvalid, wantMsg: "Invalid input for field/attribute name. Value: 'None'. Mandatory field missing.",
		},
		{
			name: "create flavor",
			cmd:  catalog.CreateFlavor{ID: "f2", Name: "big", FlavorProfileID: fpID},
			want: []proto.Message{&eventsv1.FlavorCreated{Flavor: &eventsv1.Flavor{Id: "f2", Name: "big", Enabled: true, FlavorProfileId: fpID}}},
		},
		{
			name: "duplicate flavor name", cmd: catalog.CreateFlavor{Name: "small", FlavorProfileID: fpID},
			wantKind: aggregates.KindConflict, wantMsg: "A flavor of small already exists.",
		},
		{
			name: "flavor needs an existing profile", cmd: catalog.CreateFlavor{Name: "big", FlavorProfileID: "nope"},
			wantKind: aggregates.KindInvalid, wantMsg: "nope is not a valid option for flavor_profile_id",
		},
		{
			name: "rename flavor onto an existing name", cmd: catalog.UpdateFlavor{ID: flID, Name: aggregates.Value("small")},
		},
		{
			name: "disable flavor", cmd: catalog.UpdateFlavor{ID: flID, Enabled: aggregates.Value(false)},
			want: []proto.Message{&eventsv1.FlavorUpdated{Flavor: &eventsv1.Flavor{Id: flID, Name: "small", FlavorProfileId: fpID}, UpdatedFields: []string{"enabled"}}},
		},
		{
			name: "nil uuid flavor is reserved", cmd: catalog.UpdateFlavor{ID: catalog.NilUUID, Enabled: aggregates.Value(false)},
			wantKind: aggregates.KindNotFound, wantMsg: "Flavor 00000000-0000-0000-0000-000000000000 not found.",
		},
		{
			name: "profile in use cannot be deleted", cmd: catalog.DeleteFlavorProfile{ID: fpID},
			wantKind: aggregates.KindConflict, wantMsg: "Flavor Profile " + fpID + " is in use and cannot be modified.",
		},
		{
			name: "profile in use keeps its data", cmd: catalog.UpdateFlavorProfile{ID: fpID, FlavorData: aggregates.Value(`{"a":1}`)},
			wantKind: aggregates.KindConflict, wantMsg: "Flavor Profile " + fpID + " is in use and cannot be modified.",
		},
		{
			name: "profile in use may be renamed", cmd: catalog.UpdateFlavorProfile{ID: fpID, Name: aggregates.Value("fp2")},
			want: []proto.Message{&eventsv1.FlavorProfileUpdated{FlavorProfile: &eventsv1.FlavorProfile{Id: fpID, Name: "fp2", ProviderName: "amphora", FlavorData: `{"loadbalancer_topology":"SINGLE"}`}, UpdatedFields: []string{"name"}}},
		},
		{
			name: "flavor used by a load balancer", cmd: catalog.DeleteFlavor{ID: flID, InUse: true},
			wantKind: aggregates.KindConflict, wantMsg: "Flavor " + flID + " is in use and cannot be modified.",
		},
		{name: "delete flavor", cmd: catalog.DeleteFlavor{ID: flID}, want: []proto.Message{&eventsv1.FlavorDeleted{Id: flID}}},
		{
			name: "delete missing flavor", cmd: catalog.DeleteFlavor{ID: "x"},
			wantKind: aggregates.KindNotFound, wantMsg: "Flavor x not found.",
		},
		{
			name: "duplicate availability zone", cmd: catalog.CreateAvailabilityZone{Name: "az1", AvailabilityZoneProfileID: azpID},
			wantKind: aggregates.KindConflict, wantMsg: "A availability zone of az1 already exists.",
		},
		{
			name: "availability zone needs a profile", cmd: catalog.CreateAvailabilityZone{Name: "az2", AvailabilityZoneProfileID: "x"},
			wantKind: aggregates.KindInvalid, wantMsg: "x is not a valid option for availability_zone_profile_id",
		},
		{
			name: "az profile in use", cmd: catalog.DeleteAvailabilityZoneProfile{ID: azpID},
			wantKind: aggregates.KindConflict, wantMsg: "Availability Zone Profile " + azpID + " is in use and cannot be modified.",
		},
		{
			name: "update availability zone", cmd: catalog.UpdateAvailabilityZone{Name: "az1", Description: aggregates.Value("d")},
			want: []proto.Message{&eventsv1.AvailabilityZoneUpdated{AvailabilityZone: &eventsv1.AvailabilityZone{Name: "az1", Description: "d", Enabled: true, AvailabilityZoneProfileId: azpID}, UpdatedFields: []string{"description"}}},
		},
		{name: "delete availability zone", cmd: catalog.DeleteAvailabilityZone{Name: "az1"}, want: []proto.Message{&eventsv1.AvailabilityZoneDeleted{Name: "az1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := aggregatetest.Given(t, catalog.New(), seeded()...)
			got, err := catalog.Decide(s, tc.cmd, aggregatetest.Env())
			if tc.wantKind != 0 {
				aggregatetest.ThenError(t, err, tc.wantKind, tc.wantMsg)
				return
			}
			aggregatetest.ThenEvents(t, got, err, tc.want...)
			aggregatetest.ApplyAll(t, s, got)
		})
	}
}

func TestDeleteUnusedProfile(t *testing.T) {
	t.Parallel()
	s := aggregatetest.Given(t, catalog.New(), seeded()...)
	aggregatetest.ApplyAll(t, s, []proto.Message{&eventsv1.FlavorDeleted{Id: flID}})
	got, err := catalog.Decide(s, catalog.DeleteFlavorProfile{ID: fpID}, aggregatetest.Env())
	aggregatetest.ThenEvents(t, got, err, &eventsv1.FlavorProfileDeleted{Id: fpID})
	aggregatetest.ApplyAll(t, s, got)
	if s.FlavorProfile(fpID) != nil || s.Version != 6 {
		t.Fatalf("profile still there or version %d", s.Version)
	}
}
