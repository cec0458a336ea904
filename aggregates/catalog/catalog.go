// Package catalog is the single aggregate (stream id events.CatalogID)
// holding flavor profiles, flavors, availability zone profiles and
// availability zones.
//
// Rules:
//   - names of flavors and availability zones are unique (409
//     "A flavor of <name> already exists.");
//   - a flavor (availability zone) must name an existing profile (400);
//   - a profile referenced by a flavor (availability zone) cannot be deleted,
//     nor have its provider or data changed (409 ObjectInUse);
//   - a flavor or availability zone used by a load balancer cannot be
//     deleted (409; the caller says whether it is in use);
//   - profile data is a JSON object of at most 4096 characters (400);
//   - the nil UUID is reserved (404).
package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// NilUUID is reserved and never names a catalog object.
const NilUUID = "00000000-0000-0000-0000-000000000000"

// State is the catalog.
type State struct {
	// Version is the number of applied events.
	Version        int64
	flavorProfiles map[string]*eventsv1.FlavorProfile
	flavors        map[string]*eventsv1.Flavor
	azProfiles     map[string]*eventsv1.AvailabilityZoneProfile
	azs            map[string]*eventsv1.AvailabilityZone
}

// New returns an empty catalog.
func New() *State {
	return &State{
		flavorProfiles: map[string]*eventsv1.FlavorProfile{},
		flavors:        map[string]*eventsv1.Flavor{},
		azProfiles:     map[string]*eventsv1.AvailabilityZoneProfile{},
		azs:            map[string]*eventsv1.AvailabilityZone{},
	}
}

// FlavorProfile returns a copy of a flavor profile, or nil.
func (s *State) FlavorProfile(id string) *eventsv1.FlavorProfile {
	return cloneOrNil(s.flavorProfiles[id])
}

// Flavor returns a copy of a flavor, or nil.
func (s *State) Flavor(id string) *eventsv1.Flavor { return cloneOrNil(s.flavors[id]) }

// AvailabilityZoneProfile returns a copy of an AZ profile, or nil.
func (s *State) AvailabilityZoneProfile(id string) *eventsv1.AvailabilityZoneProfile {
	return cloneOrNil(s.azProfiles[id])
}

// AvailabilityZone returns a copy of an availability zone by name, or nil.
func (s *State) AvailabilityZone(name string) *eventsv1.AvailabilityZone {
	return cloneOrNil(s.azs[name])
}

// Flavors returns copies of all flavors sorted by id.
func (s *State) Flavors() []*eventsv1.Flavor { return sortedCopies(s.flavors) }

// FlavorProfiles returns copies of all flavor profiles sorted by id.
func (s *State) FlavorProfiles() []*eventsv1.FlavorProfile { return sortedCopies(s.flavorProfiles) }

// AvailabilityZones returns copies of all availability zones sorted by name.
func (s *State) AvailabilityZones() []*eventsv1.AvailabilityZone { return sortedCopies(s.azs) }

// AvailabilityZoneProfiles returns copies of all AZ profiles sorted by id.
func (s *State) AvailabilityZoneProfiles() []*eventsv1.AvailabilityZoneProfile {
	return sortedCopies(s.azProfiles)
}

func cloneOrNil[M proto.Message](m M) M {
	var zero M
	if !m.ProtoReflect().IsValid() {
		return zero
	}
	return proto.CloneOf(m)
}

func sortedCopies[M proto.Message](m map[string]M) []M {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]M, 0, len(keys))
	for _, k := range keys {
		out = append(out, proto.CloneOf(m[k]))
	}
	return out
}

// Apply evolves the catalog by one event.
func (s *State) Apply(payload proto.Message) error {
	if s.flavors == nil {
		*s = *New()
	}
	switch e := payload.(type) {
	case *eventsv1.FlavorProfileCreated:
		s.flavorProfiles[e.GetFlavorProfile().GetId()] = proto.CloneOf(e.GetFlavorProfile())
	case *eventsv1.FlavorProfileUpdated:
		s.flavorProfiles[e.GetFlavorProfile().GetId()] = proto.CloneOf(e.GetFlavorProfile())
	case *eventsv1.FlavorProfileDeleted:
		delete(s.flavorProfiles, e.GetId())
	case *eventsv1.FlavorCreated:
		s.flavors[e.GetFlavor().GetId()] = proto.CloneOf(e.GetFlavor())
	case *eventsv1.FlavorUpdated:
		s.flavors[e.GetFlavor().GetId()] = proto.CloneOf(e.GetFlavor())
	case *eventsv1.FlavorDeleted:
		delete(s.flavors, e.GetId())
	case *eventsv1.AvailabilityZoneProfileCreated:
		s.azProfiles[e.GetAvailabilityZoneProfile().GetId()] = proto.CloneOf(e.GetAvailabilityZoneProfile())
	case *eventsv1.AvailabilityZoneProfileUpdated:
		s.azProfiles[e.GetAvailabilityZoneProfile().GetId()] = proto.CloneOf(e.GetAvailabilityZoneProfile())
	case *eventsv1.AvailabilityZoneProfileDeleted:
		delete(s.azProfiles, e.GetId())
	case *eventsv1.AvailabilityZoneCreated:
		s.azs[e.GetAvailabilityZone().GetName()] = proto.CloneOf(e.GetAvailabilityZone())
	case *eventsv1.AvailabilityZoneUpdated:
		s.azs[e.GetAvailabilityZone().GetName()] = proto.CloneOf(e.GetAvailabilityZone())
	case *eventsv1.AvailabilityZoneDeleted:
		delete(s.azs, e.GetName())
	default:
		return fmt.Errorf("catalog: apply: unknown event %T", payload)
	}
	s.Version++
	return nil
}

// Command is a command on the catalog.
type Command interface{ isCommand() }

// CreateFlavorProfile adds a flavor profile (ID empty: a new id).
type CreateFlavorProfile struct {
	ID, Name, ProviderName, FlavorData string
}

// UpdateFlavorProfile changes a flavor profile; null is refused.
type UpdateFlavorProfile struct {
	ID                             string
	Name, ProviderName, FlavorData aggregates.Field[string]
}

// DeleteFlavorProfile removes an unused flavor profile.
type DeleteFlavorProfile struct{ ID string }

// CreateFlavor adds a flavor. Enabled nil means true.
type CreateFlavor struct {
	ID, Name, Description, FlavorProfileID string
	Enabled                                *bool
}

// UpdateFlavor changes a flavor's name, description or enabled flag.
type UpdateFlavor struct {
	ID                string
	Name, Description aggregates.Field[string]
	Enabled           aggregates.Field[bool]
}

// DeleteFlavor removes a flavor; InUse says a load balancer uses it.
type DeleteFlavor struct {
	ID    string
	InUse bool
}

// CreateAvailabilityZoneProfile adds an AZ profile (ID empty: a new id).
type CreateAvailabilityZoneProfile struct {
	ID, Name, ProviderName, AvailabilityZoneData string
}

// UpdateAvailabilityZoneProfile changes an AZ profile; null is refused.
type UpdateAvailabilityZoneProfile struct {
	ID                                       string
	Name, ProviderName, AvailabilityZoneData aggregates.Field[string]
}

// DeleteAvailabilityZoneProfile removes an unused AZ profile.
type DeleteAvailabilityZoneProfile struct{ ID string }

// CreateAvailabilityZone adds an availability zone. Enabled nil means true.
type CreateAvailabilityZone struct {
	Name, Description, AvailabilityZoneProfileID string
	Enabled                                      *bool
}

// UpdateAvailabilityZone changes an AZ's description or enabled flag.
type UpdateAvailabilityZone struct {
	Name        string
	Description aggregates.Field[string]
	Enabled     aggregates.Field[bool]
}

// DeleteAvailabilityZone removes an AZ; InUse says a load balancer uses it.
type DeleteAvailabilityZone struct {
	Name  string
	InUse bool
}

func (CreateFlavorProfile) isCommand()           {}
func (UpdateFlavorProfile) isCommand()           {}
func (DeleteFlavorProfile) isCommand()           {}
func (CreateFlavor) isCommand()                  {}
func (UpdateFlavor) isCommand()                  {}
func (DeleteFlavor) isCommand()                  {}
func (CreateAvailabilityZoneProfile) isCommand() {}
func (UpdateAvailabilityZoneProfile) isCommand() {}
func (DeleteAvailabilityZoneProfile) isCommand() {}
func (CreateAvailabilityZone) isCommand()        {}
func (UpdateAvailabilityZone) isCommand()        {}
func (DeleteAvailabilityZone) isCommand()        {}

// Decide returns the events a command causes, or why it is refused.
// It does not change s.
func Decide(s *State, cmd Command, env aggregates.Env) ([]proto.Message, error) {
	if s.flavors == nil {
		s = New()
	}
	switch c := cmd.(type) {
	case CreateFlavorProfile:
		return decideCreateFlavorProfile(s, c, env)
	case UpdateFlavorProfile:
		return decideUpdateFlavorProfile(s, c)
	case DeleteFlavorProfile:
		if err := profileDeletable(s.flavorProfiles[c.ID], c.ID, "Flavor Profile", s.flavorProfileInUse(c.ID)); err != nil {
			return nil, err
		}
		return []proto.Message{&eventsv1.FlavorProfileDeleted{Id: c.ID}}, nil
	case CreateFlavor:
		return decideCreateFlavor(s, c, env)
	case UpdateFlavor:
		return decideUpdateFlavor(s, c)
	case DeleteFlavor:
		if s.flavors[c.ID] == nil || c.ID == NilUUID {
			return nil, notFound("Flavor", c.ID)
		}
		if c.InUse {
			return nil, inUse("Flavor", c.ID)
		}
		return []proto.Message{&eventsv1.FlavorDeleted{Id: c.ID}}, nil
	case CreateAvailabilityZoneProfile:
		return decideCreateAZProfile(s, c, env)
	case UpdateAvailabilityZoneProfile:
		return decideUpdateAZProfile(s, c)
	case DeleteAvailabilityZoneProfile:
		if err := profileDeletable(s.azProfiles[c.ID], c.ID, "Availability Zone Profile", s.azProfileInUse(c.ID)); err != nil {
			return nil, err
		}
		return []proto.Message{&eventsv1.AvailabilityZoneProfileDeleted{Id: c.ID}}, nil
	case CreateAvailabilityZone:
		return decideCreateAZ(s, c)
	case UpdateAvailabilityZone:
		return decideUpdateAZ(s, c)
	case DeleteAvailabilityZone:
		if s.azs[c.Name] == nil {
			return nil, notFound("Availability Zone", c.Name)
		}
		if c.InUse {
			return nil, inUse("Availability Zone", c.Name)
		}
		return []proto.Message{&eventsv1.AvailabilityZoneDeleted{Name: c.Name}}, nil
	case nil:
		return nil, errors.New("catalog: nil command")
	default:
		return nil, fmt.Errorf("catalog: unknown command %T", cmd)
	}
}

func notFound(resource, id string) error {
	return aggregates.Errorf(aggregates.KindNotFound, "%s %s not found.", resource, id)
}

func inUse(object, id string) error {
	return aggregates.Errorf(aggregates.KindConflict, "%s %s is in use and cannot be modified.", object, id)
}

func profileDeletable[M proto.Message](p M, id, resource string, used bool) error {
	if !p.ProtoReflect().IsValid() || id == NilUUID {
		return notFound(resource, id)
	}
	if used {
		return inUse(resource, id)
	}
	return nil
}

func (s *State) flavorProfileInUse(id string) bool {
	for _, f := range s.flavors {
		if f.FlavorProfileId == id {
			return true
		}
	}
	return false
}

func (s *State) azProfileInUse(id string) bool {
	for _, z := range s.azs {
		if z.AvailabilityZoneProfileId == id {
			return true
		}
	}
	return false
}

func (s *State) flavorNamed(name string) *eventsv1.Flavor {
	for _, f := range s.flavors {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// checkString validates a mandatory or optional string attribute.
func checkString(field, v string, mandatory bool, maxLen int) error {
	if mandatory && v == "" {
		return aggregates.Errorf(aggregates.KindInvalid,
			"Invalid input for field/attribute %s. Value: 'None'. Mandatory field missing.", field)
	}
	if len([]rune(v)) > maxLen {
		return aggregates.Errorf(aggregates.KindInvalid,
			"Invalid input for field/attribute %s. Value: '%s'. Value should have a maximum character requirement of %d", field, v, maxLen)
	}
	return nil
}

// checkData validates profile data: a JSON object of at most 4096 characters.
func checkData(field, option, v string) error {
	if err := checkString(field, v, true, 4096); err != nil {
		return err
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(v), &obj); err != nil || obj == nil {
		return aggregates.Errorf(aggregates.KindInvalid, "%s is not a valid option for %s", v, option)
	}
	return nil
}

func checkNotNull(field string, f aggregates.Field[string]) error {
	if f.Set && f.Null {
		return aggregates.Errorf(aggregates.KindInvalid,
			"Invalid input for field/attribute %s. Value: 'None'. Mandatory field missing.", field)
	}
	return nil
}

func newID(id string, env aggregates.Env) string {
	if id == "" {
		return env.NewID()
	}
	return id
}

func boolOr(p *bool, d bool) bool {
	if p == nil {
		return d
	}
	return *p
}

func apply(f aggregates.Field[string], dst *string, name string, changed *[]string) {
	if f.Set && *dst != f.Value {
		*dst = f.Value
		*changed = append(*changed, name)
	}
}

func decideCreateFlavorProfile(s *State, c CreateFlavorProfile, env aggregates.Env) ([]proto.Message, error) {
	for _, err := range []error{
		checkString("name", c.Name, true, 255),
		checkString("provider_name", c.ProviderName, true, 255),
		checkData("flavor_data", "flavor data", c.FlavorData),
	} {
		if err != nil {
			return nil, err
		}
	}
	id := newID(c.ID, env)
	if s.flavorProfiles[id] != nil || id == NilUUID {
		return nil, aggregates.Errorf(aggregates.KindConflict, "Already an entity with that specified id.")
	}
	return []proto.Message{&eventsv1.FlavorProfileCreated{FlavorProfile: &eventsv1.FlavorProfile{
		Id: id, Name: c.Name, ProviderName: c.ProviderName, FlavorData: c.FlavorData,
	}}}, nil
}

func decideUpdateFlavorProfile(s *State, c UpdateFlavorProfile) ([]proto.Message, error) {
	cur := s.flavorProfiles[c.ID]
	if cur == nil || c.ID == NilUUID {
		return nil, notFound("Flavor Profile", c.ID)
	}
	for _, err := range []error{
		checkNotNull("name", c.Name), checkNotNull("provider_name", c.ProviderName), checkNotNull("flavor_data", c.FlavorData),
		checkString("name", c.Name.Value, c.Name.Set, 255),
		checkString("provider_name", c.ProviderName.Value, c.ProviderName.Set, 255),
	} {
		if err != nil {
			return nil, err
		}
	}
	if c.FlavorData.Set {
		if err := checkData("flavor_data", "flavor data", c.FlavorData.Value); err != nil {
			return nil, err
		}
	}
	p := proto.CloneOf(cur)
	var changed []string
	apply(c.Name, &p.Name, "name", &changed)
	apply(c.ProviderName, &p.ProviderName, "provider_name", &changed)
	apply(c.FlavorData, &p.FlavorData, "flavor_data", &changed)
	if (p.ProviderName != cur.ProviderName || p.FlavorData != cur.FlavorData) && s.flavorProfileInUse(c.ID) {
		return nil, inUse("Flavor Profile", c.ID)
	}
	if len(changed) == 0 {
		return nil, nil
	}
	return []proto.Message{&eventsv1.FlavorProfileUpdated{FlavorProfile: p, UpdatedFields: changed}}, nil
}

func decideCreateFlavor(s *State, c CreateFlavor, env aggregates.Env) ([]proto.Message, error) {
	for _, err := range []error{
		checkString("name", c.Name, true, 255),
		checkString("description", c.Description, false, 255),
		checkString("flavor_profile_id", c.FlavorProfileID, true, 36),
	} {
		if err != nil {
			return nil, err
		}
	}
	if s.flavorNamed(c.Name) != nil {
		return nil, aggregates.Errorf(aggregates.KindConflict, "A flavor of %s already exists.", c.Name)
	}
	if s.flavorProfiles[c.FlavorProfileID] == nil {
		return nil, aggregates.Errorf(aggregates.KindInvalid, "%s is not a valid option for flavor_profile_id", c.FlavorProfileID)
	}
	id := newID(c.ID, env)
	if s.flavors[id] != nil || id == NilUUID {
		return nil, aggregates.Errorf(aggregates.KindConflict, "Already an entity with that specified id.")
	}
	return []proto.Message{&eventsv1.FlavorCreated{Flavor: &eventsv1.Flavor{
		Id: id, Name: c.Name, Description: c.Description, Enabled: boolOr(c.Enabled, true), FlavorProfileId: c.FlavorProfileID,
	}}}, nil
}

func decideUpdateFlavor(s *State, c UpdateFlavor) ([]proto.Message, error) {
	cur := s.flavors[c.ID]
	if cur == nil || c.ID == NilUUID {
		return nil, notFound("Flavor", c.ID)
	}
	if err := checkNotNull("name", c.Name); err != nil {
		return nil, err
	}
	if err := checkString("name", c.Name.Value, c.Name.Set, 255); err != nil {
		return nil, err
	}
	if err := checkString("description", c.Description.Value, false, 255); err != nil {
		return nil, err
	}
	f := proto.CloneOf(cur)
	var changed []string
	apply(c.Name, &f.Name, "name", &changed)
	apply(c.Description, &f.Description, "description", &changed)
	if c.Enabled.Set {
		v := c.Enabled.Null || c.Enabled.Value
		if f.Enabled != v {
			f.Enabled = v
			changed = append(changed, "enabled")
		}
	}
	if other := s.flavorNamed(f.Name); other != nil && other.Id != f.Id {
		return nil, aggregates.Errorf(aggregates.KindConflict, "A flavor of %s already exists.", f.Name)
	}
	if len(changed) == 0 {
		return nil, nil
	}
	return []proto.Message{&eventsv1.FlavorUpdated{Flavor: f, UpdatedFields: changed}}, nil
}

func decideCreateAZProfile(s *State, c CreateAvailabilityZoneProfile, env aggregates.Env) ([]proto.Message, error) {
	for _, err := range []error{
		checkString("name", c.Name, true, 255),
		checkString("provider_name", c.ProviderName, true, 255),
		checkData("availability_zone_data", "availability zone data", c.AvailabilityZoneData),
	} {
		if err != nil {
			return nil, err
		}
	}
	id := newID(c.ID, env)
	if s.azProfiles[id] != nil || id == NilUUID {
		return nil, aggregates.Errorf(aggregates.KindConflict, "Already an entity with that specified id.")
	}
	return []proto.Message{&eventsv1.AvailabilityZoneProfileCreated{AvailabilityZoneProfile: &eventsv1.AvailabilityZoneProfile{
		Id: id, Name: c.Name, ProviderName: c.ProviderName, AvailabilityZoneData: c.AvailabilityZoneData,
	}}}, nil
}

func decideUpdateAZProfile(s *State, c UpdateAvailabilityZoneProfile) ([]proto.Message, error) {
	cur := s.azProfiles[c.ID]
	if cur == nil || c.ID == NilUUID {
		return nil, notFound("Availability Zone Profile", c.ID)
	}
	for _, err := range []error{
		checkNotNull("name", c.Name), checkNotNull("provider_name", c.ProviderName),
		checkNotNull("availability_zone_data", c.AvailabilityZoneData),
		checkString("name", c.Name.Value, c.Name.Set, 255),
		checkString("provider_name", c.ProviderName.Value, c.ProviderName.Set, 255),
	} {
		if err != nil {
			return nil, err
		}
	}
	if c.AvailabilityZoneData.Set {
		if err := checkData("availability_zone_data", "availability zone data", c.AvailabilityZoneData.Value); err != nil {
			return nil, err
		}
	}
	p := proto.CloneOf(cur)
	var changed []string
	apply(c.Name, &p.Name, "name", &changed)
	apply(c.ProviderName, &p.ProviderName, "provider_name", &changed)
	apply(c.AvailabilityZoneData, &p.AvailabilityZoneData, "availability_zone_data", &changed)
	if (p.ProviderName != cur.ProviderName || p.AvailabilityZoneData != cur.AvailabilityZoneData) && s.azProfileInUse(c.ID) {
		return nil, inUse("Availability Zone Profile", c.ID)
	}
	if len(changed) == 0 {
		return nil, nil
	}
	return []proto.Message{&eventsv1.AvailabilityZoneProfileUpdated{AvailabilityZoneProfile: p, UpdatedFields: changed}}, nil
}

func decideCreateAZ(s *State, c CreateAvailabilityZone) ([]proto.Message, error) {
	for _, err := range []error{
		checkString("name", c.Name, true, 255),
		checkString("description", c.Description, false, 255),
		checkString("availability_zone_profile_id", c.AvailabilityZoneProfileID, true, 36),
	} {
		if err != nil {
			return nil, err
		}
	}
	if s.azs[c.Name] != nil {
		return nil, aggregates.Errorf(aggregates.KindConflict, "A availability zone of %s already exists.", c.Name)
	}
	if s.azProfiles[c.AvailabilityZoneProfileID] == nil {
		return nil, aggregates.Errorf(aggregates.KindInvalid, "%s is not a valid option for availability_zone_profile_id", c.AvailabilityZoneProfileID)
	}
	return []proto.Message{&eventsv1.AvailabilityZoneCreated{AvailabilityZone: &eventsv1.AvailabilityZone{
		Name: c.Name, Description: c.Description, Enabled: boolOr(c.Enabled, true), AvailabilityZoneProfileId: c.AvailabilityZoneProfileID,
	}}}, nil
}

func decideUpdateAZ(s *State, c UpdateAvailabilityZone) ([]proto.Message, error) {
	cur := s.azs[c.Name]
	if cur == nil {
		return nil, notFound("Availability Zone", c.Name)
	}
	if err := checkString("description", c.Description.Value, false, 255); err != nil {
		return nil, err
	}
	z := proto.CloneOf(cur)
	var changed []string
	apply(c.Description, &z.Description, "description", &changed)
	if c.Enabled.Set {
		v := c.Enabled.Null || c.Enabled.Value
		if z.Enabled != v {
			z.Enabled = v
			changed = append(changed, "enabled")
		}
	}
	if len(changed) == 0 {
		return nil, nil
	}
	return []proto.Message{&eventsv1.AvailabilityZoneUpdated{AvailabilityZone: z, UpdatedFields: changed}}, nil
}
