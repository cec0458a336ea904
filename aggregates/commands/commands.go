// Package commands is the entry point for every command Ostia accepts: it
// runs each aggregate's Decide through the handler, and charges or releases
// the owning project's quota in the same atomic append as the load-balancer
// events (so usage can never drift from what exists).
package commands

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/catalog"
	"github.com/ostia/ostia/aggregates/handler"
	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/aggregates/project"
	"github.com/ostia/ostia/events"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// Config configures the Service.
type Config struct {
	Handler *handler.Handler
	// LoadBalancer holds the load-balancer defaults (timeouts, TLS defaults).
	LoadBalancer loadbalancer.Config
	// QuotaDefaults are the configured per-project default limits.
	QuotaDefaults project.Limits
	// EnforceQuotas turns quota accounting on. Octavia skips quotas entirely
	// with auth_strategy=noauth; so does Ostia when this is false.
	EnforceQuotas bool
}

// Service runs commands. It is safe for concurrent use.
type Service struct {
	cfg Config
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Handler == nil {
		return nil, errors.New("commands: Handler is required")
	}
	return &Service{cfg: cfg}, nil
}

// LoadBalancer runs a command on one load balancer (the whole tree of its
// listeners, pools, members, health monitors and L7 objects) and returns the
// state after the command, with the stored events.
func (s *Service) LoadBalancer(ctx context.Context, md events.Metadata, lbID string, cmd loadbalancer.Command) (*loadbalancer.State, []*eventsv1.Envelope, error) {
	var after *loadbalancer.State
	var decided []proto.Message
	envs, err := s.cfg.Handler.Do(ctx, md, func(tx *handler.Tx) ([]handler.Change, error) {
		st := loadbalancer.New(lbID)
		load := tx.Load
		if _, ok := cmd.(loadbalancer.CreateLoadBalancer); ok {
			load = tx.LoadNew
		}
		v, err := load(events.AggregateLoadBalancer, lbID, st)
		if err != nil {
			return nil, err
		}
		d, err := s.cfg.LoadBalancer.Decide(st, cmd, tx.Env)
		if err != nil {
			return nil, err
		}
		after, decided = st, d.Events
		projectID := ""
		if lb := st.LoadBalancer(); lb != nil {
			projectID = lb.ProjectId
		}
		if c, ok := cmd.(loadbalancer.CreateLoadBalancer); ok {
			projectID = c.ProjectID
		}
		changes := []handler.Change{{AggregateType: events.AggregateLoadBalancer, AggregateID: lbID,
			ProjectID: projectID, Version: v, Events: d.Events}}
		if d.Usage == nil || !s.cfg.EnforceQuotas || projectID == "" {
			return changes, nil
		}
		pc, err := s.usageChange(tx, projectID, lbID, d.Usage)
		if err != nil {
			return nil, err
		}
		return append(changes, pc), nil
	})
	if err != nil {
		return nil, nil, err
	}
	for _, e := range decided {
		if err := after.Apply(e); err != nil {
			return nil, nil, fmt.Errorf("apply decided event: %w", err)
		}
	}
	return after, envs, nil
}

// CheckCreate validates a load balancer create without storing anything;
// the API runs it before allocating the VIP port, so a refused request
// allocates nothing.
func (s *Service) CheckCreate(cmd loadbalancer.CreateLoadBalancer) error {
	_, err := s.cfg.LoadBalancer.Decide(loadbalancer.New(cmd.ID), cmd, s.cfg.Handler.Env())
	return err
}

// usageChange charges (positive) or releases (negative) quota usage of a project.
func (s *Service) usageChange(tx *handler.Tx, projectID, objectID string, usage *eventsv1.QuotaUsage) (handler.Change, error) {
	ps := project.New()
	v, err := tx.Load(events.AggregateProject, projectID, ps)
	if err != nil {
		return handler.Change{}, err
	}
	var cmd project.Command = project.ChargeUsage{Delta: usage, ObjectID: objectID, Reason: "create", Defaults: s.cfg.QuotaDefaults}
	if negative(usage) {
		cmd = project.ReleaseUsage{Delta: usage, ObjectID: objectID, Reason: "delete"}
	}
	evs, err := project.Decide(ps, cmd, tx.Env)
	if err != nil {
		return handler.Change{}, err
	}
	return handler.Change{AggregateType: events.AggregateProject, AggregateID: projectID, ProjectID: projectID,
		Version: v, Events: evs}, nil
}

func negative(u *eventsv1.QuotaUsage) bool {
	return u.LoadBalancer < 0 || u.Listener < 0 || u.Pool < 0 || u.HealthMonitor < 0 || u.Member < 0 ||
		u.L7Policy < 0 || u.L7Rule < 0
}

// Project runs a quota command on one project.
func (s *Service) Project(ctx context.Context, md events.Metadata, projectID string, cmd project.Command) (*project.State, []*eventsv1.Envelope, error) {
	return run(ctx, s.cfg.Handler, md, events.AggregateProject, projectID, projectID, project.New, project.Decide, cmd)
}

// Amphora runs a command on one amphora.
func (s *Service) Amphora(ctx context.Context, md events.Metadata, amphoraID string, cmd amphora.Command) (*amphora.State, []*eventsv1.Envelope, error) {
	return run(ctx, s.cfg.Handler, md, events.AggregateAmphora, amphoraID, md.ProjectID,
		func() *amphora.State { return amphora.New(amphoraID) }, amphora.Decide, cmd)
}

// Catalog runs a command on the catalog of flavors and availability zones.
func (s *Service) Catalog(ctx context.Context, md events.Metadata, cmd catalog.Command) (*catalog.State, []*eventsv1.Envelope, error) {
	return run(ctx, s.cfg.Handler, md, events.AggregateCatalog, events.CatalogID, "", catalog.New, catalog.Decide, cmd)
}

// run is the single-aggregate form: load, decide, append, and return the
// state after the command.
func run[S handler.State, C any](ctx context.Context, h *handler.Handler, md events.Metadata, aggType, id, projectID string,
	newState func() S, decide func(S, C, aggregates.Env) ([]proto.Message, error), cmd C) (S, []*eventsv1.Envelope, error) {
	var after S
	var decided []proto.Message
	envs, err := h.Do(ctx, md, func(tx *handler.Tx) ([]handler.Change, error) {
		st := newState()
		v, err := tx.Load(aggType, id, st)
		if err != nil {
			return nil, err
		}
		evs, err := decide(st, cmd, tx.Env)
		if err != nil {
			return nil, err
		}
		after, decided = st, evs
		return []handler.Change{{AggregateType: aggType, AggregateID: id, ProjectID: projectID, Version: v, Events: evs}}, nil
	})
	if err != nil {
		var zero S
		return zero, nil, err
	}
	for _, e := range decided {
		if err := after.Apply(e); err != nil {
			var zero S
			return zero, nil, fmt.Errorf("apply decided event: %w", err)
		}
	}
	return after, envs, nil
}

// FailoverAmphora is the API's amphora failover: in one atomic append the
// amphora's load balancer (if any) is locked PENDING_UPDATE, which needs it
// ACTIVE (409 otherwise), and the amphora's failover is requested. The
// failover saga returns the load balancer to ACTIVE (or ERROR).
func (s *Service) FailoverAmphora(ctx context.Context, md events.Metadata, amphoraID, reason string) ([]*eventsv1.Envelope, error) {
	return s.failoverAmphora(ctx, md, amphoraID, reason, false)
}

// FailoverStaleAmphora is the health manager's failover of an amphora that
// stopped sending heartbeats: like FailoverAmphora, except that a load
// balancer in ERROR is locked too (a failover can repair it). A load
// balancer in PENDING_* answers a conflict: its current flow goes first.
func (s *Service) FailoverStaleAmphora(ctx context.Context, md events.Metadata, amphoraID, reason string) ([]*eventsv1.Envelope, error) {
	return s.failoverAmphora(ctx, md, amphoraID, reason, true)
}

func (s *Service) failoverAmphora(ctx context.Context, md events.Metadata, amphoraID, reason string, fromError bool) ([]*eventsv1.Envelope, error) {
	return s.cfg.Handler.Do(ctx, md, func(tx *handler.Tx) ([]handler.Change, error) {
		ast := amphora.New(amphoraID)
		av, err := tx.Load(events.AggregateAmphora, amphoraID, ast)
		if err != nil {
			return nil, err
		}
		projectID := md.ProjectID
		var changes []handler.Change
		if a := ast.Amphora(); a != nil && a.LoadbalancerId != "" {
			projectID = a.ProjectId
			st := loadbalancer.New(a.LoadbalancerId)
			lv, err := tx.Load(events.AggregateLoadBalancer, a.LoadbalancerId, st)
			if err != nil {
				return nil, err
			}
			if st.Exists() {
				d, err := s.cfg.LoadBalancer.Decide(st, loadbalancer.BeginAmphoraFailover{AmphoraID: amphoraID, Reason: reason, FromError: fromError}, tx.Env)
				if err != nil {
					return nil, err
				}
				changes = append(changes, handler.Change{AggregateType: events.AggregateLoadBalancer,
					AggregateID: a.LoadbalancerId, ProjectID: projectID, Version: lv, Events: d.Events})
			}
		}
		// The load balancer's lock is checked first (Octavia's order).
		aevs, err := amphora.Decide(ast, amphora.RequestFailover{Reason: reason}, tx.Env)
		if err != nil {
			return nil, err
		}
		return append(changes, handler.Change{AggregateType: events.AggregateAmphora, AggregateID: amphoraID,
			ProjectID: projectID, Version: av, Events: aevs}), nil
	})
}

// ProjectState returns a project's quota limits and usage as decided so far.
func (s *Service) ProjectState(ctx context.Context, projectID string) (*project.State, error) {
	st := project.New()
	if _, err := s.cfg.Handler.Load(ctx, events.AggregateProject, projectID, st); err != nil {
		return nil, err
	}
	return st, nil
}
