package events

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// Metadata is what the caller of a command knows about why events happen.
type Metadata struct {
	// ProjectID is the owning project of the aggregate.
	ProjectID string
	// CausationID is the id of the event or request that caused the events.
	CausationID string
	// CorrelationID ties everything caused by one API request together.
	CorrelationID string
	// Actor is a Keystone user id or "ostia:<service>".
	Actor string
}

// Envelope wraps a decided payload for the store. The store fills in the
// aggregate version and the global position when it appends. eventID must be
// unique (a UUID); now is the time the event happened.
func (r *Registry) Envelope(eventID, aggregateID string, payload proto.Message, md Metadata, now time.Time) (*eventsv1.Envelope, error) {
	name, err := r.Name(payload)
	if err != nil {
		return nil, err
	}
	agg, err := r.AggregateType(payload)
	if err != nil {
		return nil, err
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", name, err)
	}
	return &eventsv1.Envelope{
		EventId:       eventID,
		Type:          name,
		AggregateType: agg,
		AggregateId:   aggregateID,
		ProjectId:     md.ProjectID,
		CausationId:   md.CausationID,
		CorrelationId: md.CorrelationID,
		Actor:         md.Actor,
		OccurredAt:    timestamppb.New(now),
		Payload:       data,
	}, nil
}

// Marshal encodes an envelope for Kafka.
func Marshal(env *eventsv1.Envelope) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode envelope %s: %w", env.GetEventId(), err)
	}
	return b, nil
}

// Unmarshal decodes an envelope read from Kafka.
func Unmarshal(b []byte) (*eventsv1.Envelope, error) {
	env := &eventsv1.Envelope{}
	if err := proto.Unmarshal(b, env); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	return env, nil
}
