package events

import (
	"errors"
	"fmt"
	"sort"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// ErrUnknownEvent is returned for a wire name or message that is not a
// registered event.
var ErrUnknownEvent = errors.New("unknown event type")

// Registry maps stable wire names to payload message types and back.
// It is immutable after construction and safe for concurrent use.
type Registry struct {
	byName     map[string]protoreflect.MessageType
	byFullName map[protoreflect.FullName]entry
}

type entry struct {
	name          string
	aggregateType string
}

// NewRegistry builds the registry of every event message in the
// ostia.events.v1 package (every message carrying the event_name option).
func NewRegistry() (*Registry, error) {
	r := &Registry{
		byName:     map[string]protoreflect.MessageType{},
		byFullName: map[protoreflect.FullName]entry{},
	}
	var errs []error
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		desc := mt.Descriptor()
		if desc.ParentFile().Package() != eventsv1.File_ostia_events_v1_envelope_proto.Package() {
			return true
		}
		opts := desc.Options()
		if opts == nil || !proto.HasExtension(opts, eventsv1.E_EventName) {
			return true
		}
		name, _ := proto.GetExtension(opts, eventsv1.E_EventName).(string)
		agg, _ := proto.GetExtension(opts, eventsv1.E_AggregateType).(string)
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("%s: empty event_name", desc.FullName()))
		case agg == "":
			errs = append(errs, fmt.Errorf("%s: empty aggregate_type", desc.FullName()))
		case r.byName[name] != nil:
			errs = append(errs, fmt.Errorf("event name %q declared by %s and %s", name, r.byName[name].Descriptor().FullName(), desc.FullName()))
		default:
			r.byName[name] = mt
			r.byFullName[desc.FullName()] = entry{name: name, aggregateType: agg}
		}
		return true
	})
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("build event registry: %w", err)
	}
	return r, nil
}

// MustNewRegistry is NewRegistry for main functions and tests.
func MustNewRegistry() *Registry {
	r, err := NewRegistry()
	if err != nil {
		panic(err)
	}
	return r
}

// Name returns the wire name of an event payload.
func (r *Registry) Name(m proto.Message) (string, error) {
	e, ok := r.byFullName[m.ProtoReflect().Descriptor().FullName()]
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrUnknownEvent, m.ProtoReflect().Descriptor().FullName())
	}
	return e.name, nil
}

// AggregateType returns the aggregate type an event payload belongs to.
func (r *Registry) AggregateType(m proto.Message) (string, error) {
	e, ok := r.byFullName[m.ProtoReflect().Descriptor().FullName()]
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrUnknownEvent, m.ProtoReflect().Descriptor().FullName())
	}
	return e.aggregateType, nil
}

// New returns an empty payload message for a wire name.
func (r *Registry) New(name string) (proto.Message, error) {
	mt, ok := r.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownEvent, name)
	}
	return mt.New().Interface(), nil
}

// Names lists every registered wire name, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.byName))
	for n := range r.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Decode unmarshals the payload of an envelope into its registered type.
func (r *Registry) Decode(env *eventsv1.Envelope) (proto.Message, error) {
	m, err := r.New(env.GetType())
	if err != nil {
		return nil, err
	}
	if err := proto.Unmarshal(env.GetPayload(), m); err != nil {
		return nil, fmt.Errorf("decode %s payload of event %s: %w", env.GetType(), env.GetEventId(), err)
	}
	return m, nil
}
