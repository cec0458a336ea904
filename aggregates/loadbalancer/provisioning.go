package loadbalancer

import (
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// complete ends a flow: PENDING_DELETE objects are removed (releasing their
// quota), other pending objects become ACTIVE, new health monitors go
// ONLINE (OFFLINE when disabled) and members of a pool whose monitor was
// deleted go NO_MONITOR.
func (d *decider) complete(c CompleteProvisioning) error {
	s := d.s
	if s.lb.ProvisioningStatus == StatusPendingDelete {
		d.count(func(u *eventsv1.QuotaUsage) {
			u.LoadBalancer--
			u.Listener -= int64(len(s.listeners))
			u.Pool -= int64(len(s.pools))
			u.Member -= int64(len(s.members))
			u.HealthMonitor -= int64(len(s.hms))
			u.L7Policy -= int64(len(s.policies))
			u.L7Rule -= int64(len(s.rules))
		})
		return d.emit(&eventsv1.LoadBalancerDeleted{Reason: c.Reason})
	}
	pendingDelete := func(st string) bool { return st == StatusPendingDelete }
	var noMonitorPools []string
	// rules, then policies, members, monitors, pools, listeners
	for _, id := range sortedIDs(s.rules, func(r *eventsv1.L7Rule) bool { return pendingDelete(r.ProvisioningStatus) }) {
		if s.rules[id] == nil {
			continue
		}
		d.count(func(u *eventsv1.QuotaUsage) { u.L7Rule-- })
		if err := d.emit(&eventsv1.L7RuleDeleted{L7RuleId: id}); err != nil {
			return err
		}
	}
	for _, id := range sortedIDs(s.policies, func(p *eventsv1.L7Policy) bool { return pendingDelete(p.ProvisioningStatus) }) {
		p := s.policies[id]
		d.count(func(u *eventsv1.QuotaUsage) { u.L7Policy--; u.L7Rule -= int64(len(s.L7Rules(id))) })
		if err := d.emit(&eventsv1.L7PolicyDeleted{L7PolicyId: id, Positions: s.positionsWithout(p.ListenerId, id)}); err != nil {
			return err
		}
	}
	for _, id := range sortedIDs(s.members, func(m *eventsv1.Member) bool { return pendingDelete(m.ProvisioningStatus) }) {
		d.count(func(u *eventsv1.QuotaUsage) { u.Member-- })
		if err := d.emit(&eventsv1.MemberDeleted{MemberId: id}); err != nil {
			return err
		}
	}
	for _, id := range sortedIDs(s.hms, func(h *eventsv1.HealthMonitor) bool { return pendingDelete(h.ProvisioningStatus) }) {
		poolID := s.hms[id].PoolId
		d.count(func(u *eventsv1.QuotaUsage) { u.HealthMonitor-- })
		if err := d.emit(&eventsv1.HealthMonitorDeleted{HealthMonitorId: id}); err != nil {
			return err
		}
		noMonitorPools = append(noMonitorPools, poolID)
	}
	for _, id := range sortedIDs(s.pools, func(p *eventsv1.Pool) bool { return pendingDelete(p.ProvisioningStatus) }) {
		nm, nh := int64(len(s.Members(id))), int64(0)
		if s.poolHM(id) != nil {
			nh = 1
		}
		d.count(func(u *eventsv1.QuotaUsage) { u.Pool--; u.Member -= nm; u.HealthMonitor -= nh })
		if err := d.emit(&eventsv1.PoolDeleted{PoolId: id}); err != nil {
			return err
		}
	}
	for _, id := range sortedIDs(s.listeners, func(l *eventsv1.Listener) bool { return pendingDelete(l.ProvisioningStatus) }) {
		np, nr := int64(0), int64(0)
		for _, p := range s.L7Policies(id) {
			np++
			nr += int64(len(s.L7Rules(p.Id)))
		}
		d.count(func(u *eventsv1.QuotaUsage) { u.Listener--; u.L7Policy -= np; u.L7Rule -= nr })
		if err := d.emit(&eventsv1.ListenerDeleted{ListenerId: id}); err != nil {
			return err
		}
	}
	var prov, oper []*eventsv1.StatusChange
	visitPending := func(kind eventsv1.ObjectKind, id string) {
		st := s.statusOf(kind, id)
		if !strings.HasPrefix(st, "PENDING_") {
			return
		}
		prov = append(prov, &eventsv1.StatusChange{Kind: kind, Id: id, ProvisioningStatus: StatusActive})
		if kind == kindHM && st == StatusPendingCreate {
			o := OperatingOnline
			if !s.hms[id].AdminStateUp {
				o = OperatingOffline
			}
			oper = append(oper, &eventsv1.StatusChange{Kind: kind, Id: id, OperatingStatus: o})
		}
		// Octavia's MarkL7PolicyActiveInDB / MarkL7RuleActiveInDB: ONLINE
		// when enabled, else OFFLINE, after every create or update.
		var enabled, seen bool
		var cur string
		switch kind {
		case kindPolicy:
			enabled, cur, seen = s.policies[id].AdminStateUp, s.policies[id].OperatingStatus, true
		case kindRule:
			enabled, cur, seen = s.rules[id].AdminStateUp, s.rules[id].OperatingStatus, true
		}
		if seen && st != StatusPendingDelete {
			o := OperatingOnline
			if !enabled {
				o = OperatingOffline
			}
			if o != cur {
				oper = append(oper, &eventsv1.StatusChange{Kind: kind, Id: id, OperatingStatus: o})
			}
		}
	}
	visitPending(kindLB, s.lb.Id)
	s.eachChild(visitPending)
	for _, poolID := range noMonitorPools {
		if s.pools[poolID] == nil || s.poolHM(poolID) != nil {
			continue
		}
		for _, m := range s.Members(poolID) {
			if m.OperatingStatus != OperatingNoMonitor {
				oper = append(oper, &eventsv1.StatusChange{Kind: kindMember, Id: m.Id, OperatingStatus: OperatingNoMonitor})
			}
		}
	}
	if len(prov) > 0 {
		if err := d.emit(&eventsv1.ProvisioningStatusChanged{Changes: prov, Reason: c.Reason}); err != nil {
			return err
		}
	}
	if len(oper) > 0 {
		return d.emit(&eventsv1.OperatingStatusChanged{Changes: oper})
	}
	return nil
}

// fail ends a failed flow as Octavia's revert tasks do: for load-balancer
// level flows (create, delete, update, failover) the load balancer and every
// pending object go to ERROR; for child flows the objects of the flow go to
// ERROR and their parents back to ACTIVE.
func (d *decider) fail(c FailProvisioning) error {
	s := d.s
	lbSt := s.lb.ProvisioningStatus
	lbFlow := lbSt == StatusPendingCreate || lbSt == StatusPendingDelete || s.targets[s.lb.Id]
	var prov []*eventsv1.StatusChange
	visit := func(kind eventsv1.ObjectKind, id string) {
		st := s.statusOf(kind, id)
		if !strings.HasPrefix(st, "PENDING_") {
			return
		}
		to := StatusActive
		if lbFlow || st != StatusPendingUpdate || s.targets[id] || (c.LoadBalancerError && kind == kindLB) {
			to = StatusError
		}
		prov = append(prov, &eventsv1.StatusChange{Kind: kind, Id: id, ProvisioningStatus: to})
	}
	visit(kindLB, s.lb.Id)
	s.eachChild(visit)
	if c.LoadBalancerError && lbSt != StatusError && lbSt != StatusDeleted && !strings.HasPrefix(lbSt, "PENDING_") {
		// A failed amphora failover of an ACTIVE load balancer: Octavia
		// leaves the load balancer in ERROR.
		prov = append(prov, &eventsv1.StatusChange{Kind: kindLB, Id: s.lb.Id, ProvisioningStatus: StatusError})
	}
	if len(prov) == 0 {
		return nil
	}
	return d.emit(&eventsv1.ProvisioningStatusChanged{Changes: prov, Reason: c.Reason})
}

// positionsWithout renumbers a listener's policies 1..N without one policy.
func (s *State) positionsWithout(listenerID, without string) map[string]int32 {
	var ids []string
	for _, p := range s.L7Policies(listenerID) {
		if p.Id != without {
			ids = append(ids, p.Id)
		}
	}
	return numbered(ids)
}

// positionsWith renumbers a listener's policies with one policy placed at
// position pos (values beyond the end append).
func (s *State) positionsWith(listenerID, id string, pos int32) map[string]int32 {
	var ids []string
	for _, p := range s.L7Policies(listenerID) {
		if p.Id != id {
			ids = append(ids, p.Id)
		}
	}
	at := len(ids)
	if pos >= 1 && int(pos-1) < len(ids) {
		at = int(pos - 1)
	}
	ids = slices.Insert(ids, at, id)
	return numbered(ids)
}

func numbered(ids []string) map[string]int32 {
	out := make(map[string]int32, len(ids))
	for i, id := range ids {
		out[id] = int32(i + 1)
	}
	return out
}

// field helpers for updates

func setOptString(dst **string, f F[string], name string, maxLen int, fields *[]string) error {
	if !f.Set {
		return nil
	}
	if f.Null {
		if *dst != nil {
			*dst = nil
			*fields = append(*fields, name)
		}
		return nil
	}
	if err := checkLen(name, f.Value, maxLen); err != nil {
		return err
	}
	if *dst == nil || **dst != f.Value {
		*dst = proto.String(f.Value)
		*fields = append(*fields, name)
	}
	return nil
}

func setBool(dst *bool, f F[bool], def bool, name string, fields *[]string) {
	if !f.Set {
		return
	}
	v := f.Value
	if f.Null {
		v = def
	}
	if *dst != v {
		*dst = v
		*fields = append(*fields, name)
	}
}

func setList(dst *[]string, f F[[]string], name string, fields *[]string) {
	setListDefault(dst, f, nil, name, fields)
}

func setListDefault(dst *[]string, f F[[]string], def []string, name string, fields *[]string) {
	if !f.Set {
		return
	}
	v := slices.Clone(f.Value)
	if f.Null {
		v = slices.Clone(def)
	}
	if !slices.Equal(*dst, v) {
		*dst = v
		*fields = append(*fields, name)
	}
}

func setInt64(dst *int64, f F[int64], def int64, name string, fields *[]string) {
	if !f.Set {
		return
	}
	v := f.Value
	if f.Null {
		v = def
	}
	if *dst != v {
		*dst = v
		*fields = append(*fields, name)
	}
}

func setInt32(dst *int32, f F[int32], def int32, name string, fields *[]string) {
	if !f.Set {
		return
	}
	v := f.Value
	if f.Null {
		v = def
	}
	if *dst != v {
		*dst = v
		*fields = append(*fields, name)
	}
}
