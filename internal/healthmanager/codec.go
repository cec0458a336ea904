package healthmanager

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ostia/ostia/internal/heartbeat"
	healthv1 "github.com/ostia/ostia/proto/ostia/health/v1"
)

// Topic is the Kafka topic heartbeats are published to; records are keyed
// by amphora id and hold a serialized healthv1.AmphoraHeartbeat.
const Topic = "ostia.heartbeats.v1"

// ConsumerGroup is the consumer group of the status consumer. It is part of
// the wire contract: renaming it re-reads the topic from the start.
const ConsumerGroup = "health.status"

// Record header names.
const (
	HeaderContentType = "content_type"
	ContentType       = "application/x-protobuf; message=ostia.health.v1.AmphoraHeartbeat"
)

// ToProto converts an accepted heartbeat to its topic representation.
func ToProto(hb heartbeat.Heartbeat, receiver string) *healthv1.AmphoraHeartbeat {
	v := hb.View
	out := &healthv1.AmphoraHeartbeat{
		AmphoraId:     v.AmphoraID,
		Seq:           v.Seq,
		Version:       int32(v.Version),
		ReceivedAt:    timestamppb.New(hb.ReceivedAt),
		DeltaCounters: v.DeltaCounters,
		Listeners:     make(map[string]*healthv1.ListenerHealth, len(v.Listeners)),
		Pools:         make(map[string]*healthv1.PoolHealth, len(v.Pools)),
		Receiver:      receiver,
	}
	if hb.Source.IsValid() {
		out.Source = hb.Source.String()
	}
	for id, l := range v.Listeners {
		out.Listeners[id] = &healthv1.ListenerHealth{Status: l.Status, Counters: &healthv1.ListenerCounters{
			BytesIn:           l.Stats.BytesIn,
			BytesOut:          l.Stats.BytesOut,
			ActiveConnections: l.Stats.ActiveConnections,
			TotalConnections:  l.Stats.TotalConnections,
			RequestErrors:     l.Stats.RequestErrors,
		}}
	}
	for id, p := range v.Pools {
		out.Pools[id] = &healthv1.PoolHealth{Status: p.Status, Members: p.Members, ListenerIds: p.Listeners}
	}
	return out
}

// Marshal serializes a heartbeat for the topic.
func Marshal(hb *healthv1.AmphoraHeartbeat) ([]byte, error) {
	b, err := proto.Marshal(hb)
	if err != nil {
		return nil, fmt.Errorf("healthmanager: marshal heartbeat %s: %w", hb.GetAmphoraId(), err)
	}
	return b, nil
}

// Unmarshal parses and checks a topic record value.
func Unmarshal(b []byte) (*healthv1.AmphoraHeartbeat, error) {
	hb := &healthv1.AmphoraHeartbeat{}
	if err := proto.Unmarshal(b, hb); err != nil {
		return nil, fmt.Errorf("healthmanager: unmarshal heartbeat: %w", err)
	}
	switch {
	case hb.GetAmphoraId() == "":
		return nil, errors.New("healthmanager: heartbeat without amphora id")
	case hb.GetReceivedAt() == nil:
		return nil, fmt.Errorf("healthmanager: heartbeat of %s without received_at", hb.GetAmphoraId())
	case hb.GetSeq() > 1<<62:
		return nil, fmt.Errorf("healthmanager: heartbeat of %s: seq %d out of range", hb.GetAmphoraId(), hb.GetSeq())
	}
	return hb, nil
}

// receivedAt returns the receive time of a heartbeat.
func receivedAt(hb *healthv1.AmphoraHeartbeat) time.Time { return hb.GetReceivedAt().AsTime() }
