// Package lbflows holds the load-balancer sagas (Octavia's controller-worker
// flows): create a load balancer (SINGLE and ACTIVE_STANDBY), apply child
// object changes, delete a load balancer with its amphorae, and fail over
// amphorae (build the replacement first, then remove the old one).
//
// Every flow is a saga.Definition over one typed state, LBState. Steps call
// the ports of sagas/ports with deterministic names and ownership tags, so a
// re-run finds what an earlier run made; aggregate changes go through the
// command service. Flows are started by Kafka consumers (Consumers) that only
// record SagaStarted in their transaction; a saga.Runner executes them.
package lbflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/handler"
	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/events"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// Saga type names; the consumer group of each is "saga.<name>". They are
// part of the recorded history and of the consumer-group contract.
const (
	FlowCreateLB = "createlb"
	FlowUpdateLB = "updatelb"
	FlowDeleteLB = "deletelb"
	FlowFailover = "failover"
)

// Topologies.
const (
	TopologySingle        = "SINGLE"
	TopologyActiveStandby = "ACTIVE_STANDBY"
)

// Commands is the part of the command service (aggregates/commands.Service)
// the flows use.
type Commands interface {
	LoadBalancer(ctx context.Context, md events.Metadata, lbID string, cmd loadbalancer.Command) (*loadbalancer.State, []*eventsv1.Envelope, error)
	Amphora(ctx context.Context, md events.Metadata, amphoraID string, cmd amphora.Command) (*amphora.State, []*eventsv1.Envelope, error)
}

// Loader replays an aggregate (aggregates/handler.Handler implements it).
type Loader interface {
	Load(ctx context.Context, aggregateType, aggregateID string, st handler.State) (int64, error)
}

// Config configures the flows.
type Config struct {
	Commands     Commands
	Loader       Loader
	Compute      ports.Compute
	Network      ports.Network
	Agent        ports.Agent
	Certificates ports.Certificates
	// CertManager reads the tenant TLS material (listener and pool
	// certificates, CAs, CRLs) the flows upload to amphorae before the
	// haproxy configuration. Optional: without it a load balancer that
	// uses TLS references fails to provision.
	CertManager ports.CertManager

	// Amphora boot parameters.
	ImageTag             string
	FlavorID             string
	ManagementNetworkIDs []string
	// AntiAffinityPolicy of ACTIVE_STANDBY server groups (default
	// "anti-affinity"; "soft-anti-affinity" is the other choice).
	AntiAffinityPolicy string
	// BootPollInterval is how often a booting server is checked (default 2 s);
	// BootTimeout bounds the wait (default 10 min).
	BootPollInterval time.Duration
	BootTimeout      time.Duration
	// CertValidity of amphora server certificates (default 2 years).
	CertValidity time.Duration
	// ConfigDrive are extra files for every amphora's config drive, such
	// as /etc/octavia/certs/client_ca.pem (the server certificate is
	// added per amphora).
	ConfigDrive map[string][]byte
	// Renderer renders the haproxy and keepalived configurations pushed to
	// amphorae (default: a TemplateRenderer with Octavia's settings).
	Renderer Renderer
	// Now is the clock of configuration generations (default time.Now).
	Now func() time.Time
}

// Validate reports every missing dependency.
func (c Config) Validate() error {
	var errs []error
	req := func(ok bool, what string) {
		if !ok {
			errs = append(errs, fmt.Errorf("lbflows: %s is required", what))
		}
	}
	req(c.Commands != nil, "Commands")
	req(c.Loader != nil, "Loader")
	req(c.Compute != nil, "Compute")
	req(c.Network != nil, "Network")
	req(c.Agent != nil, "Agent")
	req(c.Certificates != nil, "Certificates")
	return errors.Join(errs...)
}

// Flows builds the saga definitions.
type Flows struct {
	cfg      Config
	create   *saga.Definition[LBState]
	update   *saga.Definition[LBState]
	del      *saga.Definition[LBState]
	failover *saga.Definition[LBState]
}

// New returns the flows.
func New(cfg Config) (*Flows, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.AntiAffinityPolicy == "" {
		cfg.AntiAffinityPolicy = "anti-affinity"
	}
	if cfg.BootPollInterval <= 0 {
		cfg.BootPollInterval = 2 * time.Second
	}
	if cfg.BootTimeout <= 0 {
		cfg.BootTimeout = 10 * time.Minute
	}
	if cfg.CertValidity <= 0 {
		cfg.CertValidity = 2 * 365 * 24 * time.Hour
	}
	if cfg.Renderer == nil {
		r, err := NewTemplateRenderer(RenderConfig{})
		if err != nil {
			return nil, err
		}
		cfg.Renderer = r
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := &Flows{cfg: cfg}
	f.create = &saga.Definition[LBState]{Name: FlowCreateLB, Plan: f.planCreate, OnFailed: f.failProvisioning}
	f.update = &saga.Definition[LBState]{Name: FlowUpdateLB, Plan: f.planUpdate, OnFailed: f.failProvisioning}
	f.del = &saga.Definition[LBState]{Name: FlowDeleteLB, Plan: f.planDelete, OnFailed: f.failProvisioning}
	f.failover = &saga.Definition[LBState]{Name: FlowFailover, Plan: f.planFailover, OnFailed: f.failFailover}
	return f, nil
}

// All returns every flow, for saga.RunnerConfig.Flows.
func (f *Flows) All() []saga.Flow { return []saga.Flow{f.create, f.update, f.del, f.failover} }

// Amp is one amphora a saga builds, replaces or configures.
type Amp struct {
	ID           string `json:"id"`
	Role         string `json:"role,omitempty"`
	ComputeID    string `json:"compute_id,omitempty"`
	ManagementIP string `json:"management_ip,omitempty"`
	VrrpPortID   string `json:"vrrp_port_id,omitempty"`
	VrrpIP       string `json:"vrrp_ip,omitempty"`
}

func (a Amp) ref() ports.Amphora {
	return ports.Amphora{ID: a.ID, ComputeID: a.ComputeID, ManagementIP: a.ManagementIP}
}

// LBState is the typed state of every load-balancer saga. The input sets
// the identity fields (and the ids of amphorae to build); step outputs fill
// in the rest.
type LBState struct {
	LBID      string `json:"lb_id"`
	ProjectID string `json:"project_id"`
	Topology  string `json:"topology,omitempty"`
	Cascade   bool   `json:"cascade,omitempty"`

	VipSubnetID  string `json:"vip_subnet_id,omitempty"`
	VipNetworkID string `json:"vip_network_id,omitempty"`
	VipAddress   string `json:"vip_address,omitempty"`
	// GivenVipPortID is a VIP port the user created (not owned by Ostia).
	GivenVipPortID string `json:"given_vip_port_id,omitempty"`
	VipPortID      string `json:"vip_port_id,omitempty"`

	SecurityGroupID string `json:"security_group_id,omitempty"`
	ServerGroupID   string `json:"server_group_id,omitempty"`

	// Amps are the amphorae this saga builds (create, failover
	// replacements; slot i replaces Old[i]).
	Amps []Amp `json:"amps,omitempty"`
	// Old are the amphorae a failover replaces.
	Old []Amp `json:"old,omitempty"`
	// Peers are other amphorae of the load balancer that stay.
	Peers []Amp `json:"peers,omitempty"`

	// MemberNetworks asks an update to plug and unplug the member
	// networks (set for member changes and pool deletes).
	MemberNetworks bool `json:"member_networks,omitempty"`
}

// NewAmphoraID is the deterministic id of the i-th amphora a saga builds.
func NewAmphoraID(sagaID string, i int) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(fmt.Sprintf("ostia:saga:%s:amphora:%d", sagaID, i))).String()
}

// Deterministic resource names (Octavia's).
func vipPortName(lbID string) string       { return "octavia-lb-" + lbID }
func vrrpPortName(ampID string) string     { return "octavia-lb-vrrp-" + ampID }
func serverName(ampID string) string       { return "amphora-" + ampID }
func serverGroupName(lbID string) string   { return "octavia-lb-" + lbID }
func securityGroupName(lbID string) string { return "lb-" + lbID }

func rolesFor(topology string) []string {
	if topology == TopologyActiveStandby {
		return []string{amphora.RoleMaster, amphora.RoleBackup}
	}
	return []string{amphora.RoleStandalone}
}

func priorityOf(role string) int32 {
	switch role {
	case amphora.RoleMaster:
		return 100
	case amphora.RoleBackup:
		return 90
	}
	return 0
}

// md is the metadata of commands sent by a step.
func md(ctx context.Context, s *LBState) events.Metadata {
	in := saga.InfoFrom(ctx)
	return events.Metadata{ProjectID: s.ProjectID, CausationID: in.SagaID, CorrelationID: in.CorrelationID,
		Actor: "ostia:saga." + in.SagaType}
}

// tags are the ownership tags of resources a saga makes.
func tags(ctx context.Context, s *LBState, ampID string) map[string]string {
	t := map[string]string{ports.TagLoadBalancerID: s.LBID, ports.TagSagaID: saga.InfoFrom(ctx).SagaID}
	if ampID != "" {
		t[ports.TagAmphoraID] = ampID
	}
	return t
}

// cmdErr sorts a command error: a conflict (another command won a race) is
// transient, any other refusal permanent, infrastructure errors transient.
func cmdErr(what string, err error) error {
	if err == nil {
		return nil
	}
	var ae *aggregates.Error
	if errors.As(err, &ae) {
		if ae.Kind == aggregates.KindConflict {
			return saga.Transient(fmt.Errorf("%s: %w", what, err))
		}
		return saga.Permanent(fmt.Errorf("%s: %w", what, err))
	}
	if errors.Is(err, saga.ErrPermanent) || errors.Is(err, saga.ErrTransient) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return saga.Transient(fmt.Errorf("%s: %w", what, err))
}

// portErr wraps a port error; not-found becomes permanent.
func portErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ports.ErrNotFound) && !errors.Is(err, saga.ErrTransient) {
		return saga.Permanent(fmt.Errorf("%s: %w", what, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (f *Flows) loadLB(ctx context.Context, lbID string) (*loadbalancer.State, int64, error) {
	st := loadbalancer.New(lbID)
	v, err := f.cfg.Loader.Load(ctx, events.AggregateLoadBalancer, lbID, st)
	if err != nil {
		return nil, 0, saga.Transient(fmt.Errorf("load load balancer %s: %w", lbID, err))
	}
	return st, v, nil
}

func (f *Flows) loadAmp(ctx context.Context, id string) (*amphora.State, error) {
	st := amphora.New(id)
	if _, err := f.cfg.Loader.Load(ctx, events.AggregateAmphora, id, st); err != nil {
		return nil, saga.Transient(fmt.Errorf("load amphora %s: %w", id, err))
	}
	return st, nil
}

func (f *Flows) failProvisioning(ctx context.Context, s *LBState, reason string) error {
	return f.failLB(ctx, s, loadbalancer.FailProvisioning{Reason: reason})
}

func (f *Flows) failLB(ctx context.Context, s *LBState, cmd loadbalancer.FailProvisioning) error {
	_, _, err := f.cfg.Commands.LoadBalancer(ctx, md(ctx, s), s.LBID, cmd)
	var ae *aggregates.Error
	if errors.As(err, &ae) && ae.Kind == aggregates.KindNotFound {
		return nil
	}
	return cmdErr("fail provisioning", err)
}

// failFailover marks the amphorae being replaced ERROR (when not already
// gone) and ends the load balancer's flow in ERROR.
func (f *Flows) failFailover(ctx context.Context, s *LBState, reason string) error {
	for _, old := range s.Old {
		if old.ID == "" {
			continue
		}
		st, err := f.loadAmp(ctx, old.ID)
		if err != nil {
			return err
		}
		if !st.Exists() || st.Status() == amphora.StatusDeleted || st.Status() == amphora.StatusError {
			continue
		}
		if _, _, err := f.cfg.Commands.Amphora(ctx, md(ctx, s), old.ID, amphora.ChangeStatus{Status: amphora.StatusError,
			Reason: reason}); err != nil {
			return cmdErr("mark failed amphora ERROR", err)
		}
	}
	return f.failLB(ctx, s, loadbalancer.FailProvisioning{Reason: reason, LoadBalancerError: true})
}
