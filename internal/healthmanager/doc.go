// Package healthmanager is Ostia's health manager: it turns amphora
// heartbeats into liveness records, operating statuses, listener statistics
// and failover requests.
//
// Data flow:
//
//	amphora --UDP--> heartbeat.Receiver --Sink--> Publisher --Kafka "ostia.heartbeats.v1"
//	    --> Consumer (group "health.status") --> amphora_health, listener_stats(_history)
//	                                        \--> loadbalancer.SetOperatingStatuses (events)
//	Scanner (every check interval) --> stale amphora_health rows --> amphora.RequestFailover
//
// Several receivers (and health-manager processes) may publish side by side;
// the consumer group spreads amphorae (record key = amphora id) over its
// members; every health manager runs a Scanner and the SQL claim makes sure
// one stale amphora is failed over by one of them only.
//
// # Why not messaging.Consumer
//
// messaging.Consumer decodes Envelopes and records every event id in
// processed_events inside a SERIALIZABLE transaction per record. Heartbeats
// are not events of an aggregate: they are high-volume (one per amphora
// every 10 s), carry no event id, and are naturally idempotent through
// their sequence number. So the health consumer runs its own sarama
// consumer-group loop that batches records per partition and deduplicates
// with the seq guard on amphora_health in the same transaction as the
// statistics it adds, which keeps redelivery exactly-once by effect without
// a growing dedup table.
//
// # Sequence rule
//
// A heartbeat is applied when the amphora has no row yet, when its seq is
// greater than the stored last_seq, or when the agent evidently restarted:
// it was received later than the stored heartbeat and its seq is small
// enough for an agent started after that heartbeat
// (seq*heartbeat_interval <= received_at - last_received_at + heartbeat_interval).
// Everything else (redelivery after a rebalance, reordering between
// receivers, an old replayed datagram) is skipped without any effect.
//
// # Liveness and statuses
//
// As in Octavia, a heartbeat refreshes last_seen only when it reports as
// many listeners as the load balancer has enabled ones (or the load
// balancer is disabled or PENDING_*) and it was processed within
// heartbeat_interval of its receipt; a heartbeat processed too late is
// ignored completely. Operating statuses are derived with Octavia's rules
// (see Derive) and written with SetOperatingStatuses only when something
// differs from the load balancer's current tree.
package healthmanager
