package loadbalancer

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ostia/ostia/aggregates"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// Decision is the outcome of a command: the events to append and the quota
// usage they consume (positive, on creates) or release (negative, when
// CompleteProvisioning removes objects). Usage is nil when nothing changes.
type Decision struct {
	Events []proto.Message
	Usage  *eventsv1.QuotaUsage
}

// Decide decides a command with DefaultConfig.
func Decide(s *State, cmd Command, env aggregates.Env) (Decision, error) {
	return DefaultConfig().Decide(s, cmd, env)
}

// Decide returns the events a command causes, or why it is refused. It does
// not change s: it works on a copy that evolves through Apply as events are
// decided, so replaying the events reproduces the state decided on.
func (cfg Config) Decide(s *State, cmd Command, env aggregates.Env) (Decision, error) {
	if s == nil {
		s = New("")
	}
	d := &decider{cfg: cfg, s: s.clone(), env: env, now: timestamppb.New(env.Now)}
	if err := d.run(cmd); err != nil {
		return Decision{}, err
	}
	var usage *eventsv1.QuotaUsage
	if d.usage != nil && !proto.Equal(d.usage, &eventsv1.QuotaUsage{}) {
		usage = d.usage
	}
	return Decision{Events: d.events, Usage: usage}, nil
}

type decider struct {
	cfg    Config
	s      *State
	env    aggregates.Env
	now    *timestamppb.Timestamp
	events []proto.Message
	usage  *eventsv1.QuotaUsage
}

// emit applies an event to the working copy and records it.
func (d *decider) allocateVip(c AllocateVip) error {
	return d.emit(&eventsv1.LoadBalancerVipAllocated{
		VipAddress: c.VipAddress, VipPortId: c.VipPortID, VipSubnetId: c.VipSubnetID,
		VipNetworkId: c.VipNetworkID, AdditionalVips: cloneAll(c.AdditionalVips),
	})
}

func (d *decider) emit(e proto.Message) error {
	if err := d.s.Apply(e); err != nil {
		return fmt.Errorf("decide: %w", err)
	}
	d.events = append(d.events, e)
	return nil
}

func (d *decider) count(f func(u *eventsv1.QuotaUsage)) {
	if d.usage == nil {
		d.usage = &eventsv1.QuotaUsage{}
	}
	f(d.usage)
}

func (d *decider) newID(id string) string {
	if id != "" {
		return id
	}
	return d.env.NewID()
}

func (d *decider) run(cmd Command) error {
	switch c := cmd.(type) {
	case CreateLoadBalancer:
		return d.createLoadBalancer(c)
	case nil:
		return errors.New("loadbalancer: nil command")
	}
	if !d.s.Exists() {
		return notFound("Load Balancer", d.s.ID())
	}
	switch c := cmd.(type) {
	case UpdateLoadBalancer:
		return d.updateLoadBalancer(c)
	case DeleteLoadBalancer:
		return d.deleteLoadBalancer(c)
	case FailoverLoadBalancer:
		return d.failover(c)
	case BeginAmphoraFailover:
		return d.beginAmphoraFailover(c)
	case CreateListener:
		return d.createListener(c)
	case UpdateListener:
		return d.updateListener(c)
	case DeleteListener:
		return d.deleteListener(c)
	case CreatePool:
		return d.createPool(c)
	case UpdatePool:
		return d.updatePool(c)
	case DeletePool:
		return d.deletePool(c)
	case CreateMember:
		return d.createMember(c)
	case UpdateMember:
		return d.updateMember(c)
	case DeleteMember:
		return d.deleteMember(c)
	case BatchUpdateMembers:
		return d.batchMembers(c)
	case CreateHealthMonitor:
		return d.createHealthMonitor(c)
	case UpdateHealthMonitor:
		return d.updateHealthMonitor(c)
	case DeleteHealthMonitor:
		return d.deleteHealthMonitor(c)
	case CreateL7Policy:
		return d.createL7Policy(c)
	case UpdateL7Policy:
		return d.updateL7Policy(c)
	case DeleteL7Policy:
		return d.deleteL7Policy(c)
	case CreateL7Rule:
		return d.createL7Rule(c)
	case UpdateL7Rule:
		return d.updateL7Rule(c)
	case DeleteL7Rule:
		return d.deleteL7Rule(c)
	case AllocateVip:
		return d.allocateVip(c)
	case CompleteProvisioning:
		return d.complete(c)
	case FailProvisioning:
		return d.fail(c)
	case SetOperatingStatuses:
		return d.setOperating(c)
	default:
		return fmt.Errorf("loadbalancer: unknown command %T", cmd)
	}
}

func notFound(resource, id string) error {
	return aggregates.Errorf(aggregates.KindNotFound, "%s %s not found.", resource, id)
}

func immutable(resource, id string) error {
	return aggregates.Errorf(aggregates.KindConflict, "%s %s is immutable and cannot be updated.", resource, id)
}

func invalid(format string, args ...any) error {
	return aggregates.Errorf(aggregates.KindInvalid, format, args...)
}

func validation(format string, args ...any) error {
	return aggregates.Errorf(aggregates.KindInvalid, "Validation failure: "+format, args...)
}

// requireMutable refuses child changes unless the load balancer is ACTIVE.
func (d *decider) requireMutable() error {
	if d.s.lb.ProvisioningStatus != StatusActive {
		return immutable("Load Balancer", d.s.lb.Id)
	}
	return nil
}

// changes collects provisioning status changes.
type changes []*eventsv1.StatusChange

func (c *changes) add(kind eventsv1.ObjectKind, id, status string) {
	for _, x := range *c {
		if x.Kind == kind && x.Id == id {
			x.ProvisioningStatus = status
			return
		}
	}
	*c = append(*c, &eventsv1.StatusChange{Kind: kind, Id: id, ProvisioningStatus: status})
}

// lockParents moves the load balancer, the listeners and the optional pool
// or policy parents to PENDING_UPDATE.
func (d *decider) lockParents(listenerIDs []string, extra ...*eventsv1.StatusChange) error {
	var ch changes
	ch.add(kindLB, d.s.lb.Id, StatusPendingUpdate)
	for _, id := range listenerIDs {
		if l := d.s.listeners[id]; l != nil && l.ProvisioningStatus != StatusPendingDelete && l.ProvisioningStatus != StatusPendingCreate {
			ch.add(kindListener, id, StatusPendingUpdate)
		}
	}
	for _, x := range extra {
		ch.add(x.Kind, x.Id, StatusPendingUpdate)
	}
	return d.emit(&eventsv1.ProvisioningStatusChanged{Changes: ch})
}

const (
	kindLB       = eventsv1.ObjectKind_OBJECT_KIND_LOADBALANCER
	kindListener = eventsv1.ObjectKind_OBJECT_KIND_LISTENER
	kindPool     = eventsv1.ObjectKind_OBJECT_KIND_POOL
	kindMember   = eventsv1.ObjectKind_OBJECT_KIND_MEMBER
	kindHM       = eventsv1.ObjectKind_OBJECT_KIND_HEALTH_MONITOR
	kindPolicy   = eventsv1.ObjectKind_OBJECT_KIND_L7POLICY
	kindRule     = eventsv1.ObjectKind_OBJECT_KIND_L7RULE
)

// poolListeners returns the listeners using a pool (default pool or L7
// redirect), sorted.
func (s *State) poolListeners(poolID string) []string {
	set := map[string]bool{}
	for id, l := range s.listeners {
		if l.GetDefaultPoolId() == poolID {
			set[id] = true
		}
	}
	for _, p := range s.policies {
		if p.GetRedirectPoolId() == poolID {
			set[p.ListenerId] = true
		}
	}
	return sortedIDs(set, nil)
}

func (d *decider) updateLoadBalancer(c UpdateLoadBalancer) error {
	lb := d.s.lb
	if lb.ProvisioningStatus != StatusActive {
		return lbState(lb)
	}
	n := proto.CloneOf(lb)
	var fields []string
	if err := setOptString(&n.Name, c.Name, "name", 255, &fields); err != nil {
		return err
	}
	if err := setOptString(&n.Description, c.Description, "description", 255, &fields); err != nil {
		return err
	}
	setBool(&n.AdminStateUp, c.AdminStateUp, true, "admin_state_up", &fields)
	if err := setOptString(&n.VipQosPolicyId, c.VipQosPolicyID, "vip_qos_policy_id", 36, &fields); err != nil {
		return err
	}
	setList(&n.VipSgIds, c.VipSgIDs, "vip_sg_ids", &fields)
	setList(&n.Tags, c.Tags, "tags", &fields)
	n.ProvisioningStatus = StatusPendingUpdate
	n.UpdatedAt = d.now
	return d.emit(&eventsv1.LoadBalancerUpdated{Loadbalancer: n, UpdatedFields: fields})
}

func lbState(lb *eventsv1.LoadBalancer) error {
	return aggregates.Errorf(aggregates.KindConflict, "Invalid state %s of loadbalancer resource %s", lb.ProvisioningStatus, lb.Id)
}

func (d *decider) deleteLoadBalancer(c DeleteLoadBalancer) error {
	lb := d.s.lb
	if lb.ProvisioningStatus != StatusActive && lb.ProvisioningStatus != StatusError {
		return lbState(lb)
	}
	if !c.Cascade && (len(d.s.listeners) > 0 || len(d.s.pools) > 0) {
		return validation("Cannot delete Load Balancer %s - it has children", lb.Id)
	}
	return d.emit(&eventsv1.LoadBalancerDeleteRequested{Cascade: c.Cascade})
}

func (d *decider) failover(c FailoverLoadBalancer) error {
	lb := d.s.lb
	if lb.ProvisioningStatus != StatusActive && lb.ProvisioningStatus != StatusError {
		return lbState(lb)
	}
	if err := d.emit(&eventsv1.LoadBalancerFailoverRequested{Reason: c.Reason}); err != nil {
		return err
	}
	return d.emit(&eventsv1.ProvisioningStatusChanged{Changes: []*eventsv1.StatusChange{
		{Kind: kindLB, Id: lb.Id, ProvisioningStatus: StatusPendingUpdate},
	}, Reason: c.Reason})
}

func (d *decider) beginAmphoraFailover(c BeginAmphoraFailover) error {
	lb := d.s.lb
	if lb.ProvisioningStatus != StatusActive && (!c.FromError || lb.ProvisioningStatus != StatusError) {
		return aggregates.Errorf(aggregates.KindConflict, "Load Balancer %s is immutable and cannot be updated.", lb.Id)
	}
	reason := c.Reason
	if reason == "" {
		reason = "amphora " + c.AmphoraID + " failover"
	}
	return d.emit(&eventsv1.ProvisioningStatusChanged{Changes: []*eventsv1.StatusChange{
		{Kind: kindLB, Id: lb.Id, ProvisioningStatus: StatusPendingUpdate},
	}, Reason: reason})
}

func (d *decider) setOperating(c SetOperatingStatuses) error {
	var out []*eventsv1.StatusChange
	for _, ch := range c.Changes {
		st := ch.GetOperatingStatus()
		switch st {
		case "":
			continue
		case OperatingOnline, OperatingOffline, OperatingDegraded, OperatingError, OperatingDraining, OperatingNoMonitor:
		default:
			return invalid("%s is not a valid option for operating_status", st)
		}
		var cur string
		if !d.s.visit(ch.GetKind(), ch.GetId(), func(_, oper *string) { cur = *oper }) || cur == st {
			continue
		}
		out = append(out, &eventsv1.StatusChange{Kind: ch.GetKind(), Id: ch.GetId(), OperatingStatus: st})
	}
	if len(out) == 0 {
		return nil
	}
	return d.emit(&eventsv1.OperatingStatusChanged{Changes: out})
}
