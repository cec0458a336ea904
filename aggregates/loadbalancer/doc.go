// Package loadbalancer is the aggregate of one load balancer with its whole
// tree (listeners, pools, members, health monitors, L7 policies and rules);
// the stream id is the load balancer id.
//
// Rules (Octavia's, api-v2.md 0.6-0.9 and 1-7):
//   - children are created, changed and deleted only while the load balancer
//     is ACTIVE (409 "Load Balancer <id> is immutable and cannot be
//     updated."); the change moves the load balancer and the affected
//     listeners (and the pool or L7 policy of a member, health monitor or
//     rule) to PENDING_UPDATE in the same decision;
//   - the load balancer itself is updated only when ACTIVE and deleted or
//     failed over only when ACTIVE or ERROR (409 "Invalid state <S> of
//     loadbalancer resource <id>");
//   - new objects are PENDING_CREATE and OFFLINE (members NO_MONITOR when
//     their pool has no health monitor);
//   - CompleteProvisioning ends a flow: pending objects become ACTIVE and
//     PENDING_DELETE objects are removed, releasing their quota;
//     FailProvisioning sends the objects of the flow to ERROR.
//
// Decisions report the quota they consume (creates) or release (completed
// deletes) so the caller can charge the project in the same transaction.
package loadbalancer
