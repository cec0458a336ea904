package lbflows

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/messaging"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
	"github.com/ostia/ostia/sagas/saga"
)

// TriggerConfig configures the consumers that start sagas.
type TriggerConfig struct {
	Brokers  []string
	Pool     *pgxpool.Pool
	Store    *saga.Store
	Registry *events.Registry
	// Kick, when set, is called after a saga was recorded (a Runner's
	// Kick), so it is picked up before the next poll.
	Kick    func()
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	// SaramaConfig overrides messaging.ConsumerSaramaConfig (tests).
	SaramaConfig func(name string) *sarama.Config
	// Poison, when set, receives a trigger event that cannot be handled
	// (see messaging.ConsumerConfig.Poison) instead of blocking its
	// partition.
	Poison messaging.PoisonProducer
	// Yield is passed on to the consumers (messaging.ConsumerConfig.Yield).
	Yield func(ctx context.Context)
}

// StartFor maps one event to the saga it starts (ok false: none). It only
// reads (the trigger's own payload, and for failovers the current
// topology or amphora); it has no side effects.
func (f *Flows) StartFor(ctx context.Context, env *eventsv1.Envelope, payload proto.Message) (saga.StartRequest, bool, error) {
	lbID := env.GetAggregateId()
	req := saga.StartRequest{TriggerEventID: env.GetEventId(), Metadata: events.Metadata{ProjectID: env.GetProjectId(),
		CausationID: env.GetEventId(), CorrelationID: env.GetCorrelationId()}}
	switch p := payload.(type) {
	case *eventsv1.LoadBalancerCreated:
		lb := p.GetLoadbalancer()
		req.Type, req.SagaID, req.SubjectID = FlowCreateLB, FlowCreateLB+":"+lb.GetId(), lb.GetId()
		st := LBState{LBID: lb.GetId(), ProjectID: lb.GetProjectId(), Topology: lb.GetTopology(),
			VipSubnetID: lb.GetVipSubnetId(), VipNetworkID: lb.GetVipNetworkId(), VipAddress: lb.GetVipAddress(),
			GivenVipPortID: lb.GetVipPortId()}
		for i, role := range rolesFor(st.Topology) {
			st.Amps = append(st.Amps, Amp{ID: NewAmphoraID(req.SagaID, i), Role: role})
		}
		req.Input = st
	case *eventsv1.LoadBalancerDeleteRequested:
		req.Type, req.SagaID, req.SubjectID = FlowDeleteLB, FlowDeleteLB+":"+env.GetEventId(), lbID
		req.Input = LBState{LBID: lbID, ProjectID: env.GetProjectId(), Cascade: p.GetCascade()}
	case *eventsv1.MemberCreated, *eventsv1.MemberUpdated, *eventsv1.MemberDeleteRequested, *eventsv1.MembersBatchUpdated,
		*eventsv1.PoolDeleteRequested:
		// Member subnets may come or go: the update plugs and unplugs
		// member networks too.
		req.Type, req.SagaID, req.SubjectID = FlowUpdateLB, FlowUpdateLB+":"+env.GetEventId(), lbID
		req.Input = LBState{LBID: lbID, ProjectID: env.GetProjectId(), MemberNetworks: true}
	case *eventsv1.LoadBalancerUpdated,
		*eventsv1.ListenerCreated, *eventsv1.ListenerUpdated, *eventsv1.ListenerDeleteRequested,
		*eventsv1.PoolCreated, *eventsv1.PoolUpdated,
		*eventsv1.HealthMonitorCreated, *eventsv1.HealthMonitorUpdated, *eventsv1.HealthMonitorDeleteRequested,
		*eventsv1.L7PolicyCreated, *eventsv1.L7PolicyUpdated, *eventsv1.L7PolicyDeleteRequested,
		*eventsv1.L7RuleCreated, *eventsv1.L7RuleUpdated, *eventsv1.L7RuleDeleteRequested:
		req.Type, req.SagaID, req.SubjectID = FlowUpdateLB, FlowUpdateLB+":"+env.GetEventId(), lbID
		req.Input = LBState{LBID: lbID, ProjectID: env.GetProjectId()}
	case *eventsv1.LoadBalancerFailoverRequested:
		st, _, err := f.loadLB(ctx, lbID)
		if err != nil {
			return req, false, err
		}
		lb := st.LoadBalancer()
		if lb == nil {
			return req, false, nil
		}
		req.Type, req.SagaID, req.SubjectID = FlowFailover, FlowFailover+":"+env.GetEventId(), lbID
		in := LBState{LBID: lbID, ProjectID: lb.ProjectId, Topology: lb.Topology}
		for i := range rolesFor(lb.Topology) {
			in.Old = append(in.Old, Amp{})
			in.Amps = append(in.Amps, Amp{ID: NewAmphoraID(req.SagaID, i)})
		}
		req.Input = in
	case *eventsv1.AmphoraFailoverRequested:
		ast, err := f.loadAmp(ctx, env.GetAggregateId())
		if err != nil {
			return req, false, err
		}
		a := ast.Amphora()
		if a == nil || a.LoadbalancerId == "" || a.Status == amphora.StatusDeleted {
			return req, false, nil
		}
		lst, _, err := f.loadLB(ctx, a.LoadbalancerId)
		if err != nil {
			return req, false, err
		}
		lb := lst.LoadBalancer()
		if lb == nil || lb.ProvisioningStatus == loadbalancer.StatusDeleted {
			return req, false, nil
		}
		req.Type, req.SagaID, req.SubjectID = FlowFailover, FlowFailover+":"+env.GetEventId(), a.LoadbalancerId
		req.Input = LBState{LBID: a.LoadbalancerId, ProjectID: a.ProjectId, Topology: lb.Topology,
			Old: []Amp{{ID: a.Id, Role: a.Role}}, Amps: []Amp{{ID: NewAmphoraID(req.SagaID, 0), Role: a.Role}}}
		req.Metadata.ProjectID = a.ProjectId
	default:
		return req, false, nil
	}
	return req, true, nil
}

// consumerTopics are the topics each flow's consumer group reads.
func consumerTopics(flow string) []string {
	if flow == FlowFailover {
		return []string{events.Topic(events.AggregateLoadBalancer), events.Topic(events.AggregateAmphora)}
	}
	return []string{events.Topic(events.AggregateLoadBalancer)}
}

// Consumers returns one consumer per flow (group "saga.<flow>"). Each
// handler only records SagaStarted (and the index row) in the consumer's
// transaction, deduplicated with processed_events; no side effect runs
// there. Start them with Start or Run.
func (f *Flows) Consumers(cfg TriggerConfig) ([]*messaging.Consumer, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var out []*messaging.Consumer
	for _, flow := range []string{FlowCreateLB, FlowUpdateLB, FlowDeleteLB, FlowFailover} {
		name := "saga." + flow
		var sc *sarama.Config
		if cfg.SaramaConfig != nil {
			sc = cfg.SaramaConfig(name)
		}
		c, err := messaging.NewConsumer(messaging.ConsumerConfig{
			Name: name, Brokers: cfg.Brokers, Topics: consumerTopics(flow), Pool: cfg.Pool,
			Logger: cfg.Logger, Metrics: cfg.Metrics, SaramaConfig: sc,
			Handler: f.handler(flow, cfg),
			Filter:  f.filter(flow, cfg),
			Poison:  cfg.Poison,
			Yield:   cfg.Yield,
		})
		if err != nil {
			return nil, fmt.Errorf("saga consumer %s: %w", name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// filter tells, without a transaction, whether an event can start this
// consumer's flow; most events start none, and each flow's consumer sees
// them all.
func (f *Flows) filter(flow string, cfg TriggerConfig) func(context.Context, *eventsv1.Envelope) (bool, error) {
	return func(ctx context.Context, env *eventsv1.Envelope) (bool, error) {
		_, ok, err := f.startOf(ctx, flow, cfg, env)
		if err != nil {
			return true, err // the handler reports it
		}
		return ok, nil
	}
}

// startOf is the saga an event starts for this consumer's flow (ok false:
// none); an undecodable event is a permanent error.
func (f *Flows) startOf(ctx context.Context, flow string, cfg TriggerConfig, env *eventsv1.Envelope) (saga.StartRequest, bool, error) {
	if env.GetAggregateType() != events.AggregateLoadBalancer && env.GetAggregateType() != events.AggregateAmphora {
		return saga.StartRequest{}, false, nil
	}
	payload, err := cfg.Registry.Decode(env)
	if err != nil {
		return saga.StartRequest{}, false, fmt.Errorf("%w: %w", messaging.ErrPermanent, err)
	}
	req, ok, err := f.StartFor(ctx, env, payload)
	if err != nil || !ok || req.Type != flow {
		return saga.StartRequest{}, false, err
	}
	return req, true, nil
}

func (f *Flows) handler(flow string, cfg TriggerConfig) messaging.Handler {
	return func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
		req, ok, err := f.startOf(ctx, flow, cfg, env)
		if err != nil || !ok {
			return err
		}
		started, err := cfg.Store.StartTx(ctx, tx, req)
		if err != nil {
			return err
		}
		if started {
			cfg.Logger.Info("saga started", "saga", req.Type, "saga_id", req.SagaID, "lb_id", req.SubjectID,
				"correlation_id", env.GetCorrelationId(), "trigger", env.GetType())
			if cfg.Kick != nil {
				// Wake the runner once the saga row is committed; a kick
				// before the commit finds nothing and the saga waits for
				// the next poll.
				messaging.AfterCommit(ctx, cfg.Kick)
			}
		}
		return nil
	}
}
