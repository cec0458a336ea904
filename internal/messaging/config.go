// Package messaging wires Ostia to its Kafka-protocol log: the sarama
// configuration of producers and consumer-group members, and Consumer, the
// idempotent consumer that applies events exactly once (by effect) under
// at-least-once delivery by recording each event id in processed_events in
// the same transaction as the consumer's own change.
package messaging

import (
	"time"

	"github.com/IBM/sarama"
)

// kafkaVersion is the protocol version the sarama clients speak. The
// embedded broker (kfake) and every Kafka since 3.6 support it.
func kafkaVersion() sarama.KafkaVersion { return sarama.V3_6_0_0 }

// Header names the relay stamps on every record.
const (
	HeaderEventType     = "event_type"
	HeaderEventID       = "event_id"
	HeaderCorrelationID = "correlation_id"
)

// Poison-topic metadata keys.
const (
	HeaderPoisonReason    = "reason_poisoned"
	HeaderPoisonTopic     = "topic_poisoned"
	HeaderPoisonConsumer  = "consumer_poisoned"
	HeaderPoisonPartition = "partition_poisoned"
	HeaderPoisonOffset    = "offset_poisoned"
)

// PoisonSuffix is appended to a topic's name to form its poison topic.
const PoisonSuffix = ".poison"

// PoisonTopic returns the topic that messages of topic go to when a consumer
// gives up on them, e.g. "ostia.loadbalancer.v1.poison".
func PoisonTopic(topic string) string { return topic + PoisonSuffix }

// SaramaConfig returns a producer configuration for the outbox relay and the
// poison publisher: idempotent, acknowledged by all in-sync replicas, one
// request in flight per broker (so a retried batch cannot overtake the next
// one) and the hash partitioner on the record key, so every event of one
// aggregate lands on the same partition in append order. The result works
// with sarama.NewSyncProducer.
func SaramaConfig(clientID string) *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = clientID
	c.Version = kafkaVersion()
	c.Net.DialTimeout = 5 * time.Second
	c.Net.ReadTimeout = 10 * time.Second
	c.Net.WriteTimeout = 10 * time.Second
	c.Net.MaxOpenRequests = 1
	c.Metadata.Retry.Max = 5
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
	c.Producer.Idempotent = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Partitioner = sarama.NewHashPartitioner
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Retry.Max = 5
	c.Producer.Retry.Backoff = 100 * time.Millisecond
	c.Producer.Timeout = 10 * time.Second
	return c
}

// ConsumerSaramaConfig returns the configuration of a consumer-group
// member: a new group starts at the oldest offset (sarama's default, newest,
// silently skips everything published before the first join), it
// commits marked offsets every 250 ms and on close, and uses session and
// heartbeat timeouts that detect a dead member within seconds.
func ConsumerSaramaConfig(clientID string) *sarama.Config {
	c := sarama.NewConfig()
	c.Consumer.Return.Errors = true
	c.ClientID = clientID
	c.Version = kafkaVersion()
	c.Net.DialTimeout = 5 * time.Second
	c.Metadata.Retry.Max = 5
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = true
	c.Consumer.Offsets.AutoCommit.Interval = 250 * time.Millisecond
	c.Consumer.Group.Session.Timeout = 10 * time.Second
	c.Consumer.Group.Heartbeat.Interval = time.Second
	c.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	c.Consumer.Group.Rebalance.Retry.Max = 10
	c.Consumer.Group.Rebalance.Retry.Backoff = 250 * time.Millisecond
	c.Consumer.MaxWaitTime = 250 * time.Millisecond
	c.Consumer.Retry.Backoff = 250 * time.Millisecond
	return c
}
