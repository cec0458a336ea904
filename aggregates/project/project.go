// Package project is the quota aggregate of one OpenStack project (stream id
// = project id): its quota limits (unset = configured default, -1 =
// unlimited) and its in-use counters of quota-ed objects.
//
// Rules:
//   - a quota value is -1..2000000000 (400 otherwise);
//   - a charge whose positive part would push a counter above its effective
//     limit is refused with 403 "Quota has been met for resources: <Resource>";
//   - a release never takes a counter below zero.
package project

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// MaxQuota is the largest quota value Octavia accepts.
const MaxQuota = 2000000000

// Limits are effective quota limits (-1 = unlimited, 0 = none allowed).
type Limits struct {
	LoadBalancer  int64
	Listener      int64
	Pool          int64
	HealthMonitor int64
	Member        int64
	L7Policy      int64
	L7Rule        int64
}

// DefaultLimits returns Octavia's configured defaults: everything unlimited.
func DefaultLimits() Limits {
	return Limits{-1, -1, -1, -1, -1, -1, -1}
}

// State is the quota state of one project.
type State struct {
	// Version is the number of applied events.
	Version int64
	quota   *eventsv1.Quota
	inUse   *eventsv1.QuotaUsage
}

// New returns the state of a project without events.
func New() *State { return &State{} }

// Quota returns the project's own limits (unset fields use the defaults).
func (s *State) Quota() *eventsv1.Quota {
	if s.quota == nil {
		return &eventsv1.Quota{}
	}
	return proto.CloneOf(s.quota)
}

// HasQuota reports whether limits were set for the project (and not reset).
func (s *State) HasQuota() bool { return s.quota != nil }

// InUse returns the in-use counters.
func (s *State) InUse() *eventsv1.QuotaUsage {
	if s.inUse == nil {
		return &eventsv1.QuotaUsage{}
	}
	return proto.CloneOf(s.inUse)
}

// EffectiveLimits returns the project's limits with unset values taken from
// defaults.
func (s *State) EffectiveLimits(defaults Limits) Limits {
	q := s.quota
	if q == nil {
		return defaults
	}
	pick := func(v *int64, d int64) int64 {
		if v != nil {
			return *v
		}
		return d
	}
	return Limits{
		LoadBalancer:  pick(q.LoadBalancer, defaults.LoadBalancer),
		Listener:      pick(q.Listener, defaults.Listener),
		Pool:          pick(q.Pool, defaults.Pool),
		HealthMonitor: pick(q.HealthMonitor, defaults.HealthMonitor),
		Member:        pick(q.Member, defaults.Member),
		L7Policy:      pick(q.L7Policy, defaults.L7Policy),
		L7Rule:        pick(q.L7Rule, defaults.L7Rule),
	}
}

// Apply evolves the state by one event.
func (s *State) Apply(payload proto.Message) error {
	switch e := payload.(type) {
	case *eventsv1.QuotaSet:
		if e.GetQuota() == nil {
			s.quota = &eventsv1.Quota{}
		} else {
			s.quota = proto.CloneOf(e.GetQuota())
		}
	case *eventsv1.QuotaReset:
		s.quota = nil
	case *eventsv1.QuotaUsageChanged:
		s.inUse = addUsage(s.InUse(), e.GetDelta())
	default:
		return fmt.Errorf("project: apply: unknown event %T", payload)
	}
	s.Version++
	return nil
}

func addUsage(u, d *eventsv1.QuotaUsage) *eventsv1.QuotaUsage {
	add := func(a, b int64) int64 { return max(a+b, 0) }
	return &eventsv1.QuotaUsage{
		LoadBalancer:  add(u.GetLoadBalancer(), d.GetLoadBalancer()),
		Listener:      add(u.GetListener(), d.GetListener()),
		Pool:          add(u.GetPool(), d.GetPool()),
		HealthMonitor: add(u.GetHealthMonitor(), d.GetHealthMonitor()),
		Member:        add(u.GetMember(), d.GetMember()),
		L7Policy:      add(u.GetL7Policy(), d.GetL7Policy()),
		L7Rule:        add(u.GetL7Rule(), d.GetL7Rule()),
	}
}

// Command is a command on a project.
type Command interface{ isCommand() }

// SetQuota changes the project's limits; a null field returns it to the
// configured default, an absent one keeps it.
type SetQuota struct {
	LoadBalancer  aggregates.Field[int64]
	Listener      aggregates.Field[int64]
	Pool          aggregates.Field[int64]
	HealthMonitor aggregates.Field[int64]
	Member        aggregates.Field[int64]
	L7Policy      aggregates.Field[int64]
	L7Rule        aggregates.Field[int64]
}

// ResetQuota returns every limit of the project to the defaults.
type ResetQuota struct{ Reason string }

// ChargeUsage counts newly created objects against the quota.
type ChargeUsage struct {
	// Delta holds the number of objects created per kind (non-negative).
	Delta    *eventsv1.QuotaUsage
	ObjectID string
	Reason   string
	// Defaults are the configured default limits.
	Defaults Limits
}

// ReleaseUsage gives back the quota of deleted objects. Delta may hold the
// counts either as positive numbers or as the negative delta a load balancer
// decision reports; counters never go below zero.
type ReleaseUsage struct {
	Delta    *eventsv1.QuotaUsage
	ObjectID string
	Reason   string
}

func (SetQuota) isCommand()     {}
func (ResetQuota) isCommand()   {}
func (ChargeUsage) isCommand()  {}
func (ReleaseUsage) isCommand() {}

// Decide returns the events a command causes, or why it is refused.
// It does not change s.
func Decide(s *State, cmd Command, env aggregates.Env) ([]proto.Message, error) {
	switch c := cmd.(type) {
	case SetQuota:
		return decideSet(s, c)
	case ResetQuota:
		return []proto.Message{&eventsv1.QuotaReset{Reason: c.Reason}}, nil
	case ChargeUsage:
		return decideCharge(s, c)
	case ReleaseUsage:
		return decideRelease(s, c), nil
	case nil:
		return nil, errors.New("project: nil command")
	default:
		return nil, fmt.Errorf("project: unknown command %T", cmd)
	}
}

type quotaField struct {
	name  string
	field aggregates.Field[int64]
	dst   **int64
}

func decideSet(s *State, c SetQuota) ([]proto.Message, error) {
	q := s.Quota()
	fields := []quotaField{
		{"load_balancer", c.LoadBalancer, &q.LoadBalancer},
		{"listener", c.Listener, &q.Listener},
		{"pool", c.Pool, &q.Pool},
		{"health_monitor", c.HealthMonitor, &q.HealthMonitor},
		{"member", c.Member, &q.Member},
		{"l7policy", c.L7Policy, &q.L7Policy},
		{"l7rule", c.L7Rule, &q.L7Rule},
	}
	for _, f := range fields {
		if !f.field.Set {
			continue
		}
		if f.field.Null {
			*f.dst = nil
			continue
		}
		v := f.field.Value
		if v < -1 {
			return nil, aggregates.Errorf(aggregates.KindInvalid,
				"Invalid input for field/attribute %s. Value: '%d'. Value should be greater or equal to -1", f.name, v)
		}
		if v > MaxQuota {
			return nil, aggregates.Errorf(aggregates.KindInvalid,
				"Invalid input for field/attribute %s. Value: '%d'. Value should be lower or equal to %d", f.name, v, MaxQuota)
		}
		*f.dst = proto.Int64(v)
	}
	return []proto.Message{&eventsv1.QuotaSet{Quota: q}}, nil
}

func decideCharge(s *State, c ChargeUsage) ([]proto.Message, error) {
	d := c.Delta
	if d == nil || proto.Equal(d, &eventsv1.QuotaUsage{}) {
		return nil, nil
	}
	lim := s.EffectiveLimits(c.Defaults)
	u := s.InUse()
	checks := []struct {
		resource     string
		inUse, delta int64
		limit        int64
	}{
		{"Load Balancer", u.GetLoadBalancer(), d.GetLoadBalancer(), lim.LoadBalancer},
		{"Listener", u.GetListener(), d.GetListener(), lim.Listener},
		{"Pool", u.GetPool(), d.GetPool(), lim.Pool},
		{"Health Monitor", u.GetHealthMonitor(), d.GetHealthMonitor(), lim.HealthMonitor},
		{"Member", u.GetMember(), d.GetMember(), lim.Member},
		{"L7 Policy", u.GetL7Policy(), d.GetL7Policy(), lim.L7Policy},
		{"L7 Rule", u.GetL7Rule(), d.GetL7Rule(), lim.L7Rule},
	}
	for _, ch := range checks {
		if ch.delta < 0 {
			return nil, fmt.Errorf("project: charge of %s: negative delta %d", ch.resource, ch.delta)
		}
		if ch.delta > 0 && ch.limit != -1 && ch.inUse+ch.delta > ch.limit {
			return nil, aggregates.Errorf(aggregates.KindQuota, "Quota has been met for resources: %s", ch.resource)
		}
	}
	return []proto.Message{&eventsv1.QuotaUsageChanged{Delta: proto.CloneOf(d), ObjectId: c.ObjectID, Reason: c.Reason}}, nil
}

func decideRelease(s *State, c ReleaseUsage) []proto.Message {
	u := s.InUse()
	d := c.Delta
	rel := func(inUse, n int64) int64 {
		if n < 0 {
			n = -n
		}
		return -min(n, inUse)
	}
	out := &eventsv1.QuotaUsage{
		LoadBalancer:  rel(u.GetLoadBalancer(), d.GetLoadBalancer()),
		Listener:      rel(u.GetListener(), d.GetListener()),
		Pool:          rel(u.GetPool(), d.GetPool()),
		HealthMonitor: rel(u.GetHealthMonitor(), d.GetHealthMonitor()),
		Member:        rel(u.GetMember(), d.GetMember()),
		L7Policy:      rel(u.GetL7Policy(), d.GetL7Policy()),
		L7Rule:        rel(u.GetL7Rule(), d.GetL7Rule()),
	}
	if proto.Equal(out, &eventsv1.QuotaUsage{}) {
		return nil
	}
	return []proto.Message{&eventsv1.QuotaUsageChanged{Delta: out, ObjectId: c.ObjectID, Reason: c.Reason}}
}
