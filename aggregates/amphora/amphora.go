// Package amphora is the aggregate of one amphora (stream id = amphora id).
//
// Rules:
//   - an amphora is created once (PENDING_CREATE);
//   - its status moves only along the allowed transitions (409 otherwise);
//   - a failover is refused while one is already under way or the amphora
//     is being deleted (409);
//   - the API deletes only amphorae in ERROR (409 ImmutableObject
//     otherwise); a missing or DELETED amphora is 404.
package amphora

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ostia/ostia/aggregates"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// Amphora statuses.
const (
	StatusPendingCreate   = "PENDING_CREATE"
	StatusBooting         = "BOOTING"
	StatusAllocated       = "ALLOCATED"
	StatusReady           = "READY"
	StatusError           = "ERROR"
	StatusPendingDelete   = "PENDING_DELETE"
	StatusDeleted         = "DELETED"
	StatusFailoverStopped = "FAILOVER_STOPPED"
)

// Amphora roles.
const (
	RoleMaster     = "MASTER"
	RoleBackup     = "BACKUP"
	RoleStandalone = "STANDALONE"
)

// transitions lists the statuses each status may move to.
var transitions = map[string][]string{
	StatusPendingCreate:   {StatusBooting, StatusError, StatusPendingDelete, StatusDeleted},
	StatusBooting:         {StatusAllocated, StatusReady, StatusError, StatusPendingDelete},
	StatusReady:           {StatusAllocated, StatusError, StatusPendingDelete},
	StatusAllocated:       {StatusError, StatusPendingDelete, StatusFailoverStopped, StatusReady},
	StatusFailoverStopped: {StatusAllocated, StatusError, StatusPendingDelete},
	StatusError:           {StatusAllocated, StatusPendingDelete, StatusDeleted},
	StatusPendingDelete:   {StatusDeleted, StatusError},
	StatusDeleted:         nil,
}

// State is one amphora.
type State struct {
	// Version is the number of applied events.
	Version int64
	id      string
	amp     *eventsv1.Amphora
	// failingOver is set by a failover request until the amphora is back in
	// service, in ERROR or gone.
	failingOver bool
}

// New returns the state of the amphora with the given id (the stream id)
// before any event.
func New(id string) *State { return &State{id: id} }

// ID returns the amphora id.
func (s *State) ID() string {
	if s.amp != nil {
		return s.amp.Id
	}
	return s.id
}

// Exists reports whether the amphora was created.
func (s *State) Exists() bool { return s.amp != nil }

// Amphora returns a copy of the amphora, nil before it was created.
func (s *State) Amphora() *eventsv1.Amphora {
	if s.amp == nil {
		return nil
	}
	return proto.CloneOf(s.amp)
}

// Status returns the amphora's status ("" before creation).
func (s *State) Status() string { return s.amp.GetStatus() }

// FailingOver reports whether a failover was requested and is not finished.
func (s *State) FailingOver() bool { return s.failingOver }

// Apply evolves the state by one event.
func (s *State) Apply(payload proto.Message) error {
	switch e := payload.(type) {
	case *eventsv1.AmphoraCreated:
		if e.GetAmphora() == nil {
			return errors.New("amphora: apply AmphoraCreated: no amphora")
		}
		s.amp = proto.CloneOf(e.GetAmphora())
	case *eventsv1.AmphoraUpdated:
		if s.amp == nil || e.GetAmphora() == nil {
			return errors.New("amphora: apply AmphoraUpdated: no amphora")
		}
		s.amp = proto.CloneOf(e.GetAmphora())
	case *eventsv1.AmphoraStatusChanged:
		if s.amp == nil {
			return errors.New("amphora: apply AmphoraStatusChanged: no amphora")
		}
		s.setStatus(e.GetStatus())
	case *eventsv1.AmphoraFailoverRequested:
		if s.amp == nil {
			return errors.New("amphora: apply AmphoraFailoverRequested: no amphora")
		}
		s.failingOver = true
	case *eventsv1.AmphoraDeleted:
		if s.amp == nil {
			return errors.New("amphora: apply AmphoraDeleted: no amphora")
		}
		s.setStatus(StatusDeleted)
	case *eventsv1.AmphoraCertificateIssued:
		if s.amp == nil {
			return errors.New("amphora: apply AmphoraCertificateIssued: no amphora")
		}
		s.amp.CertExpiration = e.GetExpiresAt()
		s.amp.CertBusy = false
	default:
		return fmt.Errorf("amphora: apply: unknown event %T", payload)
	}
	s.Version++
	return nil
}

func (s *State) setStatus(status string) {
	s.amp.Status = status
	switch status {
	case StatusAllocated, StatusError, StatusDeleted, StatusFailoverStopped:
		s.failingOver = false
	}
}

// Command is a command on an amphora.
type Command interface{ isCommand() }

// CreateAmphora records a new amphora for a load balancer. The id is the
// stream id the state was made with, else ID, else a new one.
type CreateAmphora struct {
	ID             string
	LoadBalancerID string
	ProjectID      string
	Role           string
	ComputeFlavor  string
	ImageID        string
	ServerGroupID  string
}

// UpdateAmphora changes recorded facts about the amphora.
type UpdateAmphora struct {
	LoadBalancerID aggregates.Field[string]
	ComputeID      aggregates.Field[string]
	LBNetworkIP    aggregates.Field[string]
	VrrpIP         aggregates.Field[string]
	HaIP           aggregates.Field[string]
	VrrpPortID     aggregates.Field[string]
	HaPortID       aggregates.Field[string]
	Role           aggregates.Field[string]
	VrrpInterface  aggregates.Field[string]
	VrrpID         aggregates.Field[int32]
	VrrpPriority   aggregates.Field[int32]
	CachedZone     aggregates.Field[string]
	ImageID        aggregates.Field[string]
	ComputeFlavor  aggregates.Field[string]
	ServerGroupID  aggregates.Field[string]
	CertBusy       aggregates.Field[bool]
	CertExpiration aggregates.Field[time.Time]
}

// ChangeStatus moves the amphora to another status.
type ChangeStatus struct {
	Status string
	Reason string
}

// RequestFailover asks for the amphora to be replaced.
type RequestFailover struct{ Reason string }

// DeleteAmphora is the API delete: only an amphora in ERROR, which goes
// PENDING_DELETE until the delete flow finishes.
type DeleteAmphora struct{ Reason string }

// MarkDeleted records that the amphora's server and ports are gone.
type MarkDeleted struct{ Reason string }

// RecordCertificate records a (re)issued server certificate.
type RecordCertificate struct {
	ExpiresAt time.Time
	Serial    string
}

// Sequence decides several commands one after the other, each against the
// state the previous ones leave, and stores all their events in one append
// (one commit instead of one per command). It is refused as a whole when
// any of its commands is.
type Sequence []Command

func (Sequence) isCommand()          {}
func (CreateAmphora) isCommand()     {}
func (UpdateAmphora) isCommand()     {}
func (ChangeStatus) isCommand()      {}
func (RequestFailover) isCommand()   {}
func (DeleteAmphora) isCommand()     {}
func (MarkDeleted) isCommand()       {}
func (RecordCertificate) isCommand() {}

// Decide returns the events a command causes, or why it is refused.
// It does not change s.
func Decide(s *State, cmd Command, env aggregates.Env) ([]proto.Message, error) {
	if seq, ok := cmd.(Sequence); ok {
		return decideSequence(s, seq, env)
	}
	if c, ok := cmd.(CreateAmphora); ok {
		return decideCreate(s, c, env)
	}
	if cmd == nil {
		return nil, errors.New("amphora: nil command")
	}
	if s.amp == nil {
		return nil, aggregates.Errorf(aggregates.KindNotFound, "Amphora %s not found.", s.ID())
	}
	switch c := cmd.(type) {
	case UpdateAmphora:
		return decideUpdate(s, c, env)
	case ChangeStatus:
		return decideStatus(s, c)
	case RequestFailover:
		if s.amp.Status == StatusDeleted {
			return nil, aggregates.Errorf(aggregates.KindNotFound, "Amphora %s not found.", s.amp.Id)
		}
		if s.failingOver || s.amp.Status == StatusPendingDelete {
			return nil, immutable(s)
		}
		return []proto.Message{&eventsv1.AmphoraFailoverRequested{Reason: c.Reason}}, nil
	case DeleteAmphora:
		if s.amp.Status == StatusDeleted {
			return nil, aggregates.Errorf(aggregates.KindNotFound, "Amphora %s not found.", s.amp.Id)
		}
		if s.amp.Status != StatusError {
			return nil, immutable(s)
		}
		return []proto.Message{&eventsv1.AmphoraStatusChanged{Status: StatusPendingDelete, Reason: c.Reason}}, nil
	case MarkDeleted:
		if s.amp.Status == StatusDeleted {
			return nil, nil
		}
		return []proto.Message{&eventsv1.AmphoraDeleted{Reason: c.Reason}}, nil
	case RecordCertificate:
		if s.amp.Status == StatusDeleted {
			return nil, aggregates.Errorf(aggregates.KindNotFound, "Amphora %s not found.", s.amp.Id)
		}
		return []proto.Message{&eventsv1.AmphoraCertificateIssued{ExpiresAt: timestamppb.New(c.ExpiresAt), Serial: c.Serial}}, nil
	default:
		return nil, fmt.Errorf("amphora: unknown command %T", cmd)
	}
}

func decideSequence(s *State, seq Sequence, env aggregates.Env) ([]proto.Message, error) {
	scratch := *s
	if s.amp != nil {
		scratch.amp = proto.CloneOf(s.amp)
	}
	var out []proto.Message
	for i, c := range seq {
		if _, nested := c.(Sequence); nested {
			return nil, fmt.Errorf("amphora: sequence in a sequence (command %d)", i)
		}
		evs, err := Decide(&scratch, c, env)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			if err := scratch.Apply(e); err != nil {
				return nil, fmt.Errorf("amphora: sequence command %d (%T): %w", i, c, err)
			}
		}
		out = append(out, evs...)
	}
	return out, nil
}

func immutable(s *State) error {
	return aggregates.Errorf(aggregates.KindConflict, "Amphora %s is immutable and cannot be updated.", s.amp.Id)
}

func decideCreate(s *State, c CreateAmphora, env aggregates.Env) ([]proto.Message, error) {
	if s.amp != nil {
		return nil, aggregates.Errorf(aggregates.KindConflict, "Already an entity with that specified id.")
	}
	switch c.Role {
	case "", RoleMaster, RoleBackup, RoleStandalone:
	default:
		return nil, aggregates.Errorf(aggregates.KindInvalid, "%s is not a valid option for role", c.Role)
	}
	id := s.id
	if id == "" {
		id = c.ID
	}
	if id == "" {
		id = env.NewID()
	}
	now := timestamppb.New(env.Now)
	return []proto.Message{&eventsv1.AmphoraCreated{Amphora: &eventsv1.Amphora{
		Id:             id,
		LoadbalancerId: c.LoadBalancerID,
		ProjectId:      c.ProjectID,
		Role:           c.Role,
		Status:         StatusPendingCreate,
		ComputeFlavor:  c.ComputeFlavor,
		ImageId:        c.ImageID,
		ServerGroupId:  c.ServerGroupID,
		CreatedAt:      now,
	}}}, nil
}

func setString(f aggregates.Field[string], name string, dst *string, changed *[]string) {
	if !f.Set {
		return
	}
	v := f.Value
	if f.Null {
		v = ""
	}
	if *dst != v {
		*dst = v
		*changed = append(*changed, name)
	}
}

func setInt(f aggregates.Field[int32], name string, dst *int32, changed *[]string) {
	if !f.Set {
		return
	}
	v := f.Value
	if f.Null {
		v = 0
	}
	if *dst != v {
		*dst = v
		*changed = append(*changed, name)
	}
}

func decideUpdate(s *State, c UpdateAmphora, env aggregates.Env) ([]proto.Message, error) {
	if s.amp.Status == StatusDeleted {
		return nil, aggregates.Errorf(aggregates.KindNotFound, "Amphora %s not found.", s.amp.Id)
	}
	if c.Role.Set && !c.Role.Null && !slices.Contains([]string{"", RoleMaster, RoleBackup, RoleStandalone}, c.Role.Value) {
		return nil, aggregates.Errorf(aggregates.KindInvalid, "%s is not a valid option for role", c.Role.Value)
	}
	a := proto.CloneOf(s.amp)
	var changed []string
	setString(c.LoadBalancerID, "loadbalancer_id", &a.LoadbalancerId, &changed)
	setString(c.ComputeID, "compute_id", &a.ComputeId, &changed)
	setString(c.LBNetworkIP, "lb_network_ip", &a.LbNetworkIp, &changed)
	setString(c.VrrpIP, "vrrp_ip", &a.VrrpIp, &changed)
	setString(c.HaIP, "ha_ip", &a.HaIp, &changed)
	setString(c.VrrpPortID, "vrrp_port_id", &a.VrrpPortId, &changed)
	setString(c.HaPortID, "ha_port_id", &a.HaPortId, &changed)
	setString(c.Role, "role", &a.Role, &changed)
	setString(c.VrrpInterface, "vrrp_interface", &a.VrrpInterface, &changed)
	setInt(c.VrrpID, "vrrp_id", &a.VrrpId, &changed)
	setInt(c.VrrpPriority, "vrrp_priority", &a.VrrpPriority, &changed)
	setString(c.CachedZone, "cached_zone", &a.CachedZone, &changed)
	setString(c.ImageID, "image_id", &a.ImageId, &changed)
	setString(c.ComputeFlavor, "compute_flavor", &a.ComputeFlavor, &changed)
	setString(c.ServerGroupID, "server_group_id", &a.ServerGroupId, &changed)
	if c.CertBusy.Set {
		v := c.CertBusy.Value && !c.CertBusy.Null
		if a.CertBusy != v {
			a.CertBusy = v
			changed = append(changed, "cert_busy")
		}
	}
	if c.CertExpiration.Set {
		var v *timestamppb.Timestamp
		if !c.CertExpiration.Null {
			v = timestamppb.New(c.CertExpiration.Value)
		}
		if !proto.Equal(a.CertExpiration, v) {
			a.CertExpiration = v
			changed = append(changed, "cert_expiration")
		}
	}
	if len(changed) == 0 {
		return nil, nil
	}
	a.UpdatedAt = timestamppb.New(env.Now)
	return []proto.Message{&eventsv1.AmphoraUpdated{Amphora: a, UpdatedFields: changed}}, nil
}

func decideStatus(s *State, c ChangeStatus) ([]proto.Message, error) {
	cur := s.amp.Status
	if _, known := transitions[c.Status]; !known {
		return nil, aggregates.Errorf(aggregates.KindInvalid, "%s is not a valid option for status", c.Status)
	}
	if c.Status == cur {
		return nil, nil
	}
	if !slices.Contains(transitions[cur], c.Status) {
		return nil, aggregates.Errorf(aggregates.KindConflict,
			"Amphora %s cannot change status from %s to %s.", s.amp.Id, cur, c.Status)
	}
	if c.Status == StatusDeleted {
		return []proto.Message{&eventsv1.AmphoraDeleted{Reason: c.Reason}}, nil
	}
	return []proto.Message{&eventsv1.AmphoraStatusChanged{Status: c.Status, Reason: c.Reason}}, nil
}
