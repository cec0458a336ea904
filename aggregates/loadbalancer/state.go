package loadbalancer

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// State is one load balancer with every child object. It changes only
// through Apply.
type State struct {
	// Version is the number of applied events.
	Version   int64
	id        string
	lb        *eventsv1.LoadBalancer
	listeners map[string]*eventsv1.Listener
	pools     map[string]*eventsv1.Pool
	members   map[string]*eventsv1.Member
	hms       map[string]*eventsv1.HealthMonitor
	policies  map[string]*eventsv1.L7Policy
	rules     map[string]*eventsv1.L7Rule
	// targets are the objects an accepted update (or failover) is about, as
	// opposed to parents that are PENDING_UPDATE only because a child
	// changed. A failed flow sends targets to ERROR and parents to ACTIVE.
	targets map[string]bool
}

// New returns the state of the load balancer with the given id (the stream
// id) before any event.
func New(id string) *State {
	s := &State{id: id}
	s.init()
	return s
}

func (s *State) init() {
	s.listeners = map[string]*eventsv1.Listener{}
	s.pools = map[string]*eventsv1.Pool{}
	s.members = map[string]*eventsv1.Member{}
	s.hms = map[string]*eventsv1.HealthMonitor{}
	s.policies = map[string]*eventsv1.L7Policy{}
	s.rules = map[string]*eventsv1.L7Rule{}
	s.targets = map[string]bool{}
}

// ID returns the load balancer id.
func (s *State) ID() string {
	if s.lb != nil {
		return s.lb.Id
	}
	return s.id
}

// Exists reports whether the load balancer was created and is not DELETED.
func (s *State) Exists() bool { return s.lb != nil && s.lb.ProvisioningStatus != StatusDeleted }

// LoadBalancer returns a copy of the load balancer, nil before creation.
func (s *State) LoadBalancer() *eventsv1.LoadBalancer { return cloneOrNil(s.lb) }

// Listener returns a copy of a listener of this load balancer, or nil.
func (s *State) Listener(id string) *eventsv1.Listener { return cloneOrNil(s.listeners[id]) }

// Pool returns a copy of a pool, or nil.
func (s *State) Pool(id string) *eventsv1.Pool { return cloneOrNil(s.pools[id]) }

// Member returns a copy of a member, or nil.
func (s *State) Member(id string) *eventsv1.Member { return cloneOrNil(s.members[id]) }

// HealthMonitor returns a copy of a health monitor, or nil.
func (s *State) HealthMonitor(id string) *eventsv1.HealthMonitor { return cloneOrNil(s.hms[id]) }

// L7Policy returns a copy of an L7 policy, or nil.
func (s *State) L7Policy(id string) *eventsv1.L7Policy { return cloneOrNil(s.policies[id]) }

// L7Rule returns a copy of an L7 rule, or nil.
func (s *State) L7Rule(id string) *eventsv1.L7Rule { return cloneOrNil(s.rules[id]) }

// Listeners returns copies of all listeners sorted by id.
func (s *State) Listeners() []*eventsv1.Listener { return sortedCopies(s.listeners, nil) }

// Pools returns copies of all pools sorted by id.
func (s *State) Pools() []*eventsv1.Pool { return sortedCopies(s.pools, nil) }

// Members returns copies of the members of a pool sorted by id.
func (s *State) Members(poolID string) []*eventsv1.Member {
	return sortedCopies(s.members, func(m *eventsv1.Member) bool { return m.PoolId == poolID })
}

// PoolHealthMonitor returns a copy of the pool's health monitor, or nil.
func (s *State) PoolHealthMonitor(poolID string) *eventsv1.HealthMonitor {
	return cloneOrNil(s.poolHM(poolID))
}

// L7Policies returns copies of a listener's policies in position order.
func (s *State) L7Policies(listenerID string) []*eventsv1.L7Policy {
	out := sortedCopies(s.policies, func(p *eventsv1.L7Policy) bool { return p.ListenerId == listenerID })
	sort.SliceStable(out, func(i, j int) bool { return out[i].Position < out[j].Position })
	return out
}

// L7Rules returns copies of a policy's rules sorted by id.
func (s *State) L7Rules(policyID string) []*eventsv1.L7Rule {
	return sortedCopies(s.rules, func(r *eventsv1.L7Rule) bool { return r.L7PolicyId == policyID })
}

// Snapshot returns the whole tree as one message (children sorted by id),
// for comparisons and full-graph responses.
func (s *State) Snapshot() *eventsv1.LoadBalancerCreated {
	return &eventsv1.LoadBalancerCreated{
		Loadbalancer:   cloneOrNil(s.lb),
		Listeners:      sortedCopies(s.listeners, nil),
		Pools:          sortedCopies(s.pools, nil),
		Members:        sortedCopies(s.members, nil),
		HealthMonitors: sortedCopies(s.hms, nil),
		L7Policies:     sortedCopies(s.policies, nil),
		L7Rules:        sortedCopies(s.rules, nil),
	}
}

func (s *State) clone() *State {
	c := &State{Version: s.Version, id: s.id, lb: cloneOrNil(s.lb)}
	c.init()
	copyInto(c.listeners, s.listeners)
	copyInto(c.pools, s.pools)
	copyInto(c.members, s.members)
	copyInto(c.hms, s.hms)
	copyInto(c.policies, s.policies)
	copyInto(c.rules, s.rules)
	for k, v := range s.targets {
		c.targets[k] = v
	}
	return c
}

func copyInto[M proto.Message](dst, src map[string]M) {
	for k, v := range src {
		dst[k] = proto.CloneOf(v)
	}
}

func cloneOrNil[M proto.Message](m M) M {
	var zero M
	if !m.ProtoReflect().IsValid() {
		return zero
	}
	return proto.CloneOf(m)
}

func sortedCopies[M proto.Message](m map[string]M, keep func(M) bool) []M {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if keep == nil || keep(v) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]M, 0, len(keys))
	for _, k := range keys {
		out = append(out, proto.CloneOf(m[k]))
	}
	return out
}

func sortedIDs[M any](m map[string]M, keep func(M) bool) []string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if keep == nil || keep(v) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func (s *State) poolHM(poolID string) *eventsv1.HealthMonitor {
	for _, id := range sortedIDs(s.hms, nil) {
		if s.hms[id].PoolId == poolID {
			return s.hms[id]
		}
	}
	return nil
}

// Apply evolves the state by one event.
func (s *State) Apply(payload proto.Message) error {
	if s.listeners == nil {
		s.init()
	}
	if err := s.apply(payload); err != nil {
		return fmt.Errorf("loadbalancer %s: apply %T: %w", s.ID(), payload, err)
	}
	s.Version++
	return nil
}

var errNoLB = errors.New("load balancer not created")

func (s *State) apply(payload proto.Message) error {
	if _, ok := payload.(*eventsv1.LoadBalancerCreated); !ok && s.lb == nil {
		switch payload.(type) {
		case *eventsv1.LoadBalancerUpdated, *eventsv1.LoadBalancerDeleteRequested, *eventsv1.LoadBalancerDeleted,
			*eventsv1.LoadBalancerFailoverRequested, *eventsv1.LoadBalancerVipAllocated, *eventsv1.ProvisioningStatusChanged,
			*eventsv1.OperatingStatusChanged, *eventsv1.ListenerCreated, *eventsv1.ListenerUpdated, *eventsv1.ListenerDeleteRequested,
			*eventsv1.ListenerDeleted, *eventsv1.PoolCreated, *eventsv1.PoolUpdated, *eventsv1.PoolDeleteRequested, *eventsv1.PoolDeleted,
			*eventsv1.MemberCreated, *eventsv1.MemberUpdated, *eventsv1.MemberDeleteRequested, *eventsv1.MemberDeleted,
			*eventsv1.HealthMonitorCreated, *eventsv1.HealthMonitorUpdated, *eventsv1.HealthMonitorDeleteRequested,
			*eventsv1.HealthMonitorDeleted, *eventsv1.L7PolicyCreated, *eventsv1.L7PolicyUpdated, *eventsv1.L7PolicyDeleteRequested,
			*eventsv1.L7PolicyDeleted, *eventsv1.L7RuleCreated, *eventsv1.L7RuleUpdated, *eventsv1.L7RuleDeleteRequested,
			*eventsv1.L7RuleDeleted, *eventsv1.MembersBatchUpdated:
			return errNoLB
		}
	}
	switch e := payload.(type) {
	case *eventsv1.LoadBalancerCreated:
		if e.GetLoadbalancer() == nil {
			return errors.New("no load balancer in event")
		}
		s.init()
		s.lb = proto.CloneOf(e.GetLoadbalancer())
		putAll(s.listeners, e.GetListeners(), (*eventsv1.Listener).GetId)
		putAll(s.pools, e.GetPools(), (*eventsv1.Pool).GetId)
		putAll(s.members, e.GetMembers(), (*eventsv1.Member).GetId)
		putAll(s.hms, e.GetHealthMonitors(), (*eventsv1.HealthMonitor).GetId)
		putAll(s.policies, e.GetL7Policies(), (*eventsv1.L7Policy).GetId)
		putAll(s.rules, e.GetL7Rules(), (*eventsv1.L7Rule).GetId)
	case *eventsv1.LoadBalancerUpdated:
		s.lb = proto.CloneOf(e.GetLoadbalancer())
		s.targets[s.lb.Id] = true
	case *eventsv1.LoadBalancerDeleteRequested:
		s.lb.ProvisioningStatus = StatusPendingDelete
		if e.GetCascade() {
			s.eachChild(func(kind eventsv1.ObjectKind, id string) { s.setProvisioning(kind, id, StatusPendingDelete) })
		}
	case *eventsv1.LoadBalancerDeleted:
		s.lb.ProvisioningStatus = StatusDeleted
		lb := s.lb
		s.init()
		s.lb = lb
	case *eventsv1.LoadBalancerFailoverRequested:
		s.targets[s.lb.Id] = true
	case *eventsv1.LoadBalancerVipAllocated:
		setIf(&s.lb.VipAddress, e.GetVipAddress())
		setIf(&s.lb.VipPortId, e.GetVipPortId())
		setIf(&s.lb.VipSubnetId, e.GetVipSubnetId())
		setIf(&s.lb.VipNetworkId, e.GetVipNetworkId())
		if len(e.GetAdditionalVips()) > 0 {
			s.lb.AdditionalVips = cloneAll(e.GetAdditionalVips())
		}
	case *eventsv1.ProvisioningStatusChanged:
		for _, c := range e.GetChanges() {
			if c.GetProvisioningStatus() != "" {
				if !s.setProvisioning(c.GetKind(), c.GetId(), c.GetProvisioningStatus()) {
					return fmt.Errorf("unknown %v %s", c.GetKind(), c.GetId())
				}
			}
		}
	case *eventsv1.OperatingStatusChanged:
		for _, c := range e.GetChanges() {
			if c.GetOperatingStatus() != "" {
				if !s.setOperating(c.GetKind(), c.GetId(), c.GetOperatingStatus()) {
					return fmt.Errorf("unknown %v %s", c.GetKind(), c.GetId())
				}
			}
		}
	case *eventsv1.ListenerCreated:
		s.listeners[e.GetListener().GetId()] = proto.CloneOf(e.GetListener())
	case *eventsv1.ListenerUpdated:
		s.listeners[e.GetListener().GetId()] = proto.CloneOf(e.GetListener())
		s.targets[e.GetListener().GetId()] = true
	case *eventsv1.ListenerDeleteRequested:
		return s.mustSet(eventsv1.ObjectKind_OBJECT_KIND_LISTENER, e.GetListenerId(), StatusPendingDelete)
	case *eventsv1.ListenerDeleted:
		s.removeListener(e.GetListenerId())
	case *eventsv1.PoolCreated:
		s.pools[e.GetPool().GetId()] = proto.CloneOf(e.GetPool())
		// a pool created for a listener becomes its default pool
		if l := s.listeners[e.GetPool().GetCreatedForListenerId()]; l != nil {
			l.DefaultPoolId = proto.String(e.GetPool().GetId())
		}
	case *eventsv1.PoolUpdated:
		s.pools[e.GetPool().GetId()] = proto.CloneOf(e.GetPool())
		s.targets[e.GetPool().GetId()] = true
	case *eventsv1.PoolDeleteRequested:
		return s.mustSet(eventsv1.ObjectKind_OBJECT_KIND_POOL, e.GetPoolId(), StatusPendingDelete)
	case *eventsv1.PoolDeleted:
		s.removePool(e.GetPoolId())
	case *eventsv1.MemberCreated:
		s.members[e.GetMember().GetId()] = proto.CloneOf(e.GetMember())
	case *eventsv1.MemberUpdated:
		s.members[e.GetMember().GetId()] = proto.CloneOf(e.GetMember())
		s.targets[e.GetMember().GetId()] = true
	case *eventsv1.MemberDeleteRequested:
		return s.mustSet(eventsv1.ObjectKind_OBJECT_KIND_MEMBER, e.GetMemberId(), StatusPendingDelete)
	case *eventsv1.MemberDeleted:
		delete(s.members, e.GetMemberId())
		delete(s.targets, e.GetMemberId())
	case *eventsv1.MembersBatchUpdated:
		putAll(s.members, e.GetCreated(), (*eventsv1.Member).GetId)
		putAll(s.members, e.GetUpdated(), (*eventsv1.Member).GetId)
		for _, m := range e.GetUpdated() {
			s.targets[m.GetId()] = true
		}
		for _, id := range e.GetDeletedMemberIds() {
			if err := s.mustSet(eventsv1.ObjectKind_OBJECT_KIND_MEMBER, id, StatusPendingDelete); err != nil {
				return err
			}
		}
	case *eventsv1.HealthMonitorCreated:
		s.hms[e.GetHealthMonitor().GetId()] = proto.CloneOf(e.GetHealthMonitor())
	case *eventsv1.HealthMonitorUpdated:
		s.hms[e.GetHealthMonitor().GetId()] = proto.CloneOf(e.GetHealthMonitor())
		s.targets[e.GetHealthMonitor().GetId()] = true
	case *eventsv1.HealthMonitorDeleteRequested:
		return s.mustSet(eventsv1.ObjectKind_OBJECT_KIND_HEALTH_MONITOR, e.GetHealthMonitorId(), StatusPendingDelete)
	case *eventsv1.HealthMonitorDeleted:
		delete(s.hms, e.GetHealthMonitorId())
		delete(s.targets, e.GetHealthMonitorId())
	case *eventsv1.L7PolicyCreated:
		s.policies[e.GetL7Policy().GetId()] = proto.CloneOf(e.GetL7Policy())
		s.setPositions(e.GetPositions())
	case *eventsv1.L7PolicyUpdated:
		s.policies[e.GetL7Policy().GetId()] = proto.CloneOf(e.GetL7Policy())
		s.targets[e.GetL7Policy().GetId()] = true
		s.setPositions(e.GetPositions())
	case *eventsv1.L7PolicyDeleteRequested:
		return s.mustSet(eventsv1.ObjectKind_OBJECT_KIND_L7POLICY, e.GetL7PolicyId(), StatusPendingDelete)
	case *eventsv1.L7PolicyDeleted:
		s.removePolicy(e.GetL7PolicyId())
		s.setPositions(e.GetPositions())
	case *eventsv1.L7RuleCreated:
		s.rules[e.GetL7Rule().GetId()] = proto.CloneOf(e.GetL7Rule())
	case *eventsv1.L7RuleUpdated:
		s.rules[e.GetL7Rule().GetId()] = proto.CloneOf(e.GetL7Rule())
		s.targets[e.GetL7Rule().GetId()] = true
	case *eventsv1.L7RuleDeleteRequested:
		return s.mustSet(eventsv1.ObjectKind_OBJECT_KIND_L7RULE, e.GetL7RuleId(), StatusPendingDelete)
	case *eventsv1.L7RuleDeleted:
		delete(s.rules, e.GetL7RuleId())
		delete(s.targets, e.GetL7RuleId())
	default:
		return errors.New("unknown event")
	}
	return nil
}

func setIf(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func putAll[M proto.Message](dst map[string]M, src []M, id func(M) string) {
	for _, m := range src {
		dst[id(m)] = proto.CloneOf(m)
	}
}

func cloneAll[M proto.Message](src []M) []M {
	out := make([]M, 0, len(src))
	for _, m := range src {
		out = append(out, proto.CloneOf(m))
	}
	return out
}

func (s *State) setPositions(pos map[string]int32) {
	for id, p := range pos {
		if pol := s.policies[id]; pol != nil {
			pol.Position = p
		}
	}
}

func (s *State) removeListener(id string) {
	for _, pid := range sortedIDs(s.policies, func(p *eventsv1.L7Policy) bool { return p.ListenerId == id }) {
		s.removePolicy(pid)
	}
	delete(s.listeners, id)
	delete(s.targets, id)
}

func (s *State) removePolicy(id string) {
	for _, rid := range sortedIDs(s.rules, func(r *eventsv1.L7Rule) bool { return r.L7PolicyId == id }) {
		delete(s.rules, rid)
		delete(s.targets, rid)
	}
	delete(s.policies, id)
	delete(s.targets, id)
}

func (s *State) removePool(id string) {
	for _, mid := range sortedIDs(s.members, func(m *eventsv1.Member) bool { return m.PoolId == id }) {
		delete(s.members, mid)
		delete(s.targets, mid)
	}
	for _, hid := range sortedIDs(s.hms, func(h *eventsv1.HealthMonitor) bool { return h.PoolId == id }) {
		delete(s.hms, hid)
		delete(s.targets, hid)
	}
	for _, l := range s.listeners {
		if l.GetDefaultPoolId() == id {
			l.DefaultPoolId = nil
		}
	}
	delete(s.pools, id)
	delete(s.targets, id)
}

// eachChild calls f for every child object, parents before children.
func (s *State) eachChild(f func(kind eventsv1.ObjectKind, id string)) {
	for _, id := range sortedIDs(s.listeners, nil) {
		f(eventsv1.ObjectKind_OBJECT_KIND_LISTENER, id)
	}
	for _, id := range sortedIDs(s.policies, nil) {
		f(eventsv1.ObjectKind_OBJECT_KIND_L7POLICY, id)
	}
	for _, id := range sortedIDs(s.rules, nil) {
		f(eventsv1.ObjectKind_OBJECT_KIND_L7RULE, id)
	}
	for _, id := range sortedIDs(s.pools, nil) {
		f(eventsv1.ObjectKind_OBJECT_KIND_POOL, id)
	}
	for _, id := range sortedIDs(s.members, nil) {
		f(eventsv1.ObjectKind_OBJECT_KIND_MEMBER, id)
	}
	for _, id := range sortedIDs(s.hms, nil) {
		f(eventsv1.ObjectKind_OBJECT_KIND_HEALTH_MONITOR, id)
	}
}

func (s *State) mustSet(kind eventsv1.ObjectKind, id, status string) error {
	if !s.setProvisioning(kind, id, status) {
		return fmt.Errorf("unknown %s %s", strings.ToLower(strings.TrimPrefix(kind.String(), "OBJECT_KIND_")), id)
	}
	return nil
}

// statusOf returns the provisioning status of an object, "" if unknown.
func (s *State) statusOf(kind eventsv1.ObjectKind, id string) string {
	var st string
	s.visit(kind, id, func(prov, _ *string) { st = *prov })
	return st
}

func (s *State) setProvisioning(kind eventsv1.ObjectKind, id, status string) bool {
	if !strings.HasPrefix(status, "PENDING_") {
		delete(s.targets, id)
	}
	return s.visit(kind, id, func(prov, _ *string) { *prov = status })
}

func (s *State) setOperating(kind eventsv1.ObjectKind, id, status string) bool {
	return s.visit(kind, id, func(_, oper *string) { *oper = status })
}

// visit calls f with pointers to the statuses of one object.
func (s *State) visit(kind eventsv1.ObjectKind, id string, f func(prov, oper *string)) bool {
	switch kind {
	case eventsv1.ObjectKind_OBJECT_KIND_LOADBALANCER:
		if s.lb == nil || s.lb.Id != id {
			return false
		}
		f(&s.lb.ProvisioningStatus, &s.lb.OperatingStatus)
	case eventsv1.ObjectKind_OBJECT_KIND_LISTENER:
		o := s.listeners[id]
		if o == nil {
			return false
		}
		f(&o.ProvisioningStatus, &o.OperatingStatus)
	case eventsv1.ObjectKind_OBJECT_KIND_POOL:
		o := s.pools[id]
		if o == nil {
			return false
		}
		f(&o.ProvisioningStatus, &o.OperatingStatus)
	case eventsv1.ObjectKind_OBJECT_KIND_MEMBER:
		o := s.members[id]
		if o == nil {
			return false
		}
		f(&o.ProvisioningStatus, &o.OperatingStatus)
	case eventsv1.ObjectKind_OBJECT_KIND_HEALTH_MONITOR:
		o := s.hms[id]
		if o == nil {
			return false
		}
		f(&o.ProvisioningStatus, &o.OperatingStatus)
	case eventsv1.ObjectKind_OBJECT_KIND_L7POLICY:
		o := s.policies[id]
		if o == nil {
			return false
		}
		f(&o.ProvisioningStatus, &o.OperatingStatus)
	case eventsv1.ObjectKind_OBJECT_KIND_L7RULE:
		o := s.rules[id]
		if o == nil {
			return false
		}
		f(&o.ProvisioningStatus, &o.OperatingStatus)
	default:
		return false
	}
	return true
}
