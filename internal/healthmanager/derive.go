package healthmanager

import (
	"strings"

	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
	healthv1 "github.com/ostia/ostia/proto/ostia/health/v1"
)

// Reported statuses (haproxy / keepalived vocabulary).
const (
	reportOpen       = "OPEN"
	reportFull       = "FULL"
	reportUp         = "UP"
	reportDown       = "DOWN"
	reportDrain      = "DRAIN"
	reportMaint      = "MAINT"
	reportNoCheck    = "no check"
	reportRestarting = "RESTARTING"
)

// Derivation is the outcome of applying one heartbeat to a load balancer's
// tree.
type Derivation struct {
	// Changes are the operating statuses that differ from the tree (compared
	// case-insensitively), in a deterministic order: listeners, then per
	// pool its members and the pool, then the load balancer.
	Changes []*eventsv1.StatusChange
	// ExpectedListeners is how many listeners the amphora should report;
	// IgnoreCount is set when the load balancer is disabled or PENDING_*.
	ExpectedListeners int
	IgnoreCount       bool
}

// CountMatches reports whether the heartbeat may refresh the amphora's
// liveness (Octavia: the listener count matches, or is not checked).
func (d Derivation) CountMatches(hb *healthv1.AmphoraHeartbeat) bool {
	return d.IgnoreCount || len(hb.GetListeners()) == d.ExpectedListeners
}

// Derive applies Octavia's health-manager rules (update_health) to st with
// the heartbeat hb:
//
//   - the load balancer starts ONLINE (OFFLINE when disabled);
//   - a listener absent from the heartbeat is ERROR when it is enabled and
//     the load balancer ACTIVE, else OFFLINE; OPEN is ONLINE; FULL is
//     DEGRADED and degrades an ONLINE load balancer; other values leave it;
//   - a pool absent from the heartbeat is OFFLINE; UP is ONLINE; DOWN is
//     ERROR and puts the load balancer in ERROR; other values leave it;
//   - members of a reported pool: absent is OFFLINE (unless currently
//     NO_MONITOR); UP* is ONLINE; DOWN* is ERROR and degrades an ONLINE pool
//     (and then an ONLINE load balancer); DRAIN is DRAINING; MAINT is
//     OFFLINE; "no check" is NO_MONITOR; RESTARTING and unknown values leave
//     it. Members of an unreported pool are left alone.
//
// Version-1 heartbeats do not report UDP/SCTP listeners that have no default
// pool or no enabled member, so those are not expected.
func Derive(st *lb.State, hb *healthv1.AmphoraHeartbeat) Derivation {
	var d Derivation
	if st == nil || !st.Exists() {
		return d
	}
	theLB := st.LoadBalancer()
	d.IgnoreCount = !theLB.AdminStateUp || strings.Contains(theLB.ProvisioningStatus, "PENDING")
	lbStatus := lb.OperatingOnline
	if !theLB.AdminStateUp {
		lbStatus = lb.OperatingOffline
	}
	set := func(kind eventsv1.ObjectKind, id, cur, want string) {
		if want != "" && !strings.EqualFold(cur, want) {
			d.Changes = append(d.Changes, &eventsv1.StatusChange{Kind: kind, Id: id, OperatingStatus: want})
		}
	}

	reported := hb.GetListeners()
	for _, l := range st.Listeners() {
		if l.AdminStateUp && expectedListener(st, l, hb.GetVersion()) {
			d.ExpectedListeners++
		}
		var want string
		if rl, ok := reported[l.Id]; !ok {
			if l.AdminStateUp && theLB.ProvisioningStatus == lb.StatusActive {
				want = lb.OperatingError
			} else {
				want = lb.OperatingOffline
			}
		} else {
			switch rl.GetStatus() {
			case reportOpen:
				want = lb.OperatingOnline
			case reportFull:
				want = lb.OperatingDegraded
				if lbStatus == lb.OperatingOnline {
					lbStatus = lb.OperatingDegraded
				}
			}
		}
		set(eventsv1.ObjectKind_OBJECT_KIND_LISTENER, l.Id, l.OperatingStatus, want)
	}

	pools := hb.GetPools()
	for _, p := range st.Pools() {
		rp, ok := pools[p.Id]
		if !ok {
			set(eventsv1.ObjectKind_OBJECT_KIND_POOL, p.Id, p.OperatingStatus, lb.OperatingOffline)
			continue
		}
		var poolStatus string
		switch rp.GetStatus() {
		case reportUp:
			poolStatus = lb.OperatingOnline
		case reportDown:
			poolStatus = lb.OperatingError
			lbStatus = lb.OperatingError
		}
		members := rp.GetMembers()
		for _, m := range st.Members(p.Id) {
			var want string
			rs, ok := members[m.Id]
			switch {
			case !ok:
				if m.OperatingStatus != lb.OperatingNoMonitor {
					want = lb.OperatingOffline
				}
			case strings.HasPrefix(rs, reportUp):
				want = lb.OperatingOnline
			case strings.HasPrefix(rs, reportDown):
				want = lb.OperatingError
				if poolStatus == lb.OperatingOnline {
					poolStatus = lb.OperatingDegraded
					if lbStatus == lb.OperatingOnline {
						lbStatus = lb.OperatingDegraded
					}
				}
			case rs == reportDrain:
				want = lb.OperatingDraining
			case rs == reportMaint:
				want = lb.OperatingOffline
			case rs == reportNoCheck:
				want = lb.OperatingNoMonitor
			case rs == reportRestarting:
			}
			set(eventsv1.ObjectKind_OBJECT_KIND_MEMBER, m.Id, m.OperatingStatus, want)
		}
		set(eventsv1.ObjectKind_OBJECT_KIND_POOL, p.Id, p.OperatingStatus, poolStatus)
	}
	set(eventsv1.ObjectKind_OBJECT_KIND_LOADBALANCER, theLB.Id, theLB.OperatingStatus, lbStatus)
	return d
}

// expectedListener reports whether an enabled listener should appear in a
// heartbeat of the given message version.
func expectedListener(st *lb.State, l *eventsv1.Listener, version int32) bool {
	if version >= 2 {
		return true
	}
	switch l.Protocol {
	case "UDP", "SCTP":
	default:
		return true
	}
	if l.GetDefaultPoolId() == "" {
		return false
	}
	for _, m := range st.Members(l.GetDefaultPoolId()) {
		if m.AdminStateUp {
			return true
		}
	}
	return false
}
