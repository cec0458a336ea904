// Package certrotation replaces amphora server certificates before they
// expire (Octavia's housekeeping certificate rotation). A periodic scan
// (Rotator.Run, every [house_keeping] cert_interval) picks the amphorae
// whose certificate expires within cert_expiry_buffer and starts one
// "certrotate" saga per amphora:
//
//	mark_cert_busy → push_certificate → record_certificate
//
// mark_cert_busy records cert_busy (the scan skips busy amphorae);
// push_certificate issues a certificate and hands it to the agent
// (UpdateServerCertificate), which serves it to new connections at once;
// record_certificate records the new expiry (AmphoraCertificateIssued, which
// clears cert_busy). The private key never enters the event store: the
// certificate is issued and pushed in one step, and a re-run of that step
// (after a crash) issues and pushes another one, recording the last.
// A failed rotation clears cert_busy again and the next scan retries it.
//
// The saga id is made from the amphora, the expiry being replaced and the
// scan period, so a scan repeated within one period (by this or another
// worker) starts nothing new, and a rotated amphora is no candidate any more.
package certrotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/handler"
	"github.com/ostia/ostia/events"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// FlowCertRotate is the saga type (part of the recorded history).
const FlowCertRotate = "certrotate"

// Commands is the part of the command service the rotation uses.
type Commands interface {
	Amphora(ctx context.Context, md events.Metadata, amphoraID string, cmd amphora.Command) (*amphora.State, []*eventsv1.Envelope, error)
}

// Loader replays an aggregate (aggregates/handler.Handler implements it).
type Loader interface {
	Load(ctx context.Context, aggregateType, aggregateID string, st handler.State) (int64, error)
}

// Starter records new sagas (saga.Store implements it).
type Starter interface {
	Start(ctx context.Context, req saga.StartRequest) (bool, error)
}

// Candidates lists the ids of amphorae that may need a new certificate
// (expiring before the given time). It may be stale or list too many: each
// amphora is checked against its own event stream before anything starts.
type Candidates func(ctx context.Context, expiringBefore time.Time) ([]string, error)

// Config configures a Rotator.
type Config struct {
	Commands     Commands
	Loader       Loader
	Sagas        Starter
	Candidates   Candidates
	Agent        ports.Agent
	Certificates ports.Certificates

	// Interval is the scan period (Octavia cert_interval, default 1 h).
	Interval time.Duration
	// ExpiryBuffer: certificates expiring within it are replaced (Octavia
	// cert_expiry_buffer, default 14 days).
	ExpiryBuffer time.Duration
	// Validity of the new certificates (default 2 years).
	Validity time.Duration
	// MaxPerScan bounds the sagas one scan starts (Octavia
	// cert_rotate_threads, default 10).
	MaxPerScan int
	// Kick, when set, is called after a scan started sagas (a Runner's
	// Kick).
	Kick   func()
	Now    func() time.Time
	Logger *slog.Logger
}

// Validate reports every missing dependency and bad setting.
func (c Config) Validate() error {
	var errs []error
	req := func(ok bool, what string) {
		if !ok {
			errs = append(errs, fmt.Errorf("certrotation: %s is required", what))
		}
	}
	req(c.Commands != nil, "Commands")
	req(c.Loader != nil, "Loader")
	req(c.Sagas != nil, "Sagas")
	req(c.Candidates != nil, "Candidates")
	req(c.Agent != nil, "Agent")
	req(c.Certificates != nil, "Certificates")
	if c.Interval < 0 || c.ExpiryBuffer < 0 || c.Validity < 0 || c.MaxPerScan < 0 {
		errs = append(errs, errors.New("certrotation: durations and MaxPerScan must not be negative"))
	}
	return errors.Join(errs...)
}

// Rotator scans for expiring certificates and owns the rotation saga.
type Rotator struct {
	cfg Config
	def *saga.Definition[State]
	log *slog.Logger
	now func() time.Time
}

// State is the saga's typed state: the input names the amphora, the steps
// fill in the certificate.
type State struct {
	AmphoraID    string `json:"amphora_id"`
	ProjectID    string `json:"project_id,omitempty"`
	ComputeID    string `json:"compute_id,omitempty"`
	ManagementIP string `json:"management_ip,omitempty"`
	// Replaces is the expiry of the certificate being replaced.
	Replaces time.Time `json:"replaces"`

	Serial    string    `json:"serial,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitempty"`
}

// New returns a Rotator.
func New(cfg Config) (*Rotator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Hour
	}
	if cfg.ExpiryBuffer == 0 {
		cfg.ExpiryBuffer = 14 * 24 * time.Hour
	}
	if cfg.Validity == 0 {
		cfg.Validity = 2 * 365 * 24 * time.Hour
	}
	if cfg.MaxPerScan == 0 {
		cfg.MaxPerScan = 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Rotator{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.def = &saga.Definition[State]{Name: FlowCertRotate, Plan: r.plan, OnFailed: r.failed}
	return r, nil
}

// Flow is the rotation saga, for saga.RunnerConfig.Flows.
func (r *Rotator) Flow() saga.Flow { return r.def }

// SagaID is the id of the rotation of an amphora's certificate expiring at
// replaces, started in the scan period of now.
func (r *Rotator) SagaID(amphoraID string, replaces, now time.Time) string {
	period := now.UnixNano() / int64(r.cfg.Interval)
	return FlowCertRotate + ":" + amphoraID + ":" + strconv.FormatInt(replaces.Unix(), 10) + ":" + strconv.FormatInt(period, 10)
}

// rotatable are the statuses of amphorae whose agent is expected to answer.
func rotatable(status string) bool {
	switch status {
	case amphora.StatusAllocated, amphora.StatusReady, amphora.StatusFailoverStopped:
		return true
	}
	return false
}

func (r *Rotator) loadAmp(ctx context.Context, id string) (*amphora.State, error) {
	st := amphora.New(id)
	if _, err := r.cfg.Loader.Load(ctx, events.AggregateAmphora, id, st); err != nil {
		return nil, fmt.Errorf("load amphora %s: %w", id, err)
	}
	return st, nil
}

// due tells whether an amphora's certificate must be replaced now.
func due(a *eventsv1.Amphora, deadline time.Time) bool {
	return a != nil && rotatable(a.GetStatus()) && !a.GetCertBusy() && a.GetCertExpiration() != nil &&
		a.GetCertExpiration().AsTime().Before(deadline) && a.GetLbNetworkIp() != ""
}

// Scan starts the rotation of every amphora whose certificate expires
// within the buffer (at most MaxPerScan) and returns how many it started.
func (r *Rotator) Scan(ctx context.Context) (int, error) {
	now := r.now()
	deadline := now.Add(r.cfg.ExpiryBuffer)
	ids, err := r.cfg.Candidates(ctx, deadline)
	if err != nil {
		return 0, fmt.Errorf("certrotation: list candidates: %w", err)
	}
	started := 0
	var errs []error
	for _, id := range ids {
		if started >= r.cfg.MaxPerScan {
			r.log.InfoContext(ctx, "certificate rotations left for the next scan", "started", started)
			break
		}
		st, err := r.loadAmp(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a := st.Amphora()
		if !due(a, deadline) {
			continue
		}
		replaces := a.GetCertExpiration().AsTime()
		req := saga.StartRequest{SagaID: r.SagaID(id, replaces, now), Type: FlowCertRotate, SubjectID: id,
			Input: State{AmphoraID: id, ProjectID: a.GetProjectId(), ComputeID: a.GetComputeId(),
				ManagementIP: a.GetLbNetworkIp(), Replaces: replaces},
			Metadata: events.Metadata{ProjectID: a.GetProjectId(), Actor: "ostia:housekeeping"}}
		ok, err := r.cfg.Sagas.Start(ctx, req)
		if err != nil {
			errs = append(errs, fmt.Errorf("certrotation: start rotation of amphora %s: %w", id, err))
			continue
		}
		if ok {
			started++
			r.log.InfoContext(ctx, "certificate rotation started", "amphora_id", id, "saga_id", req.SagaID,
				"expires_at", replaces)
		}
	}
	if started > 0 && r.cfg.Kick != nil {
		r.cfg.Kick()
	}
	return started, errors.Join(errs...)
}

// Run scans at once and then every Interval until ctx ends. A failed scan
// is logged and tried again at the next tick.
func (r *Rotator) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		if n, err := r.Scan(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.log.WarnContext(ctx, "certificate scan failed", "err", err, "started", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type step = saga.Step[State]

func (r *Rotator) plan(*State) []step {
	return []step{r.markBusy(), r.push(), r.record()}
}

func md(ctx context.Context, s *State) events.Metadata {
	in := saga.InfoFrom(ctx)
	return events.Metadata{ProjectID: s.ProjectID, CausationID: in.SagaID, CorrelationID: in.CorrelationID,
		Actor: "ostia:saga." + FlowCertRotate}
}

// cmdErr sorts a command error as the load-balancer flows do: conflicts
// and infrastructure trouble are transient, refusals permanent.
func cmdErr(what string, err error) error {
	if err == nil {
		return nil
	}
	var ae *aggregates.Error
	if errors.As(err, &ae) && ae.Kind != aggregates.KindConflict {
		return saga.Permanent(fmt.Errorf("%s: %w", what, err))
	}
	return saga.Transient(fmt.Errorf("%s: %w", what, err))
}

// current loads the amphora and refuses to go on when it is gone or no
// longer runs the certificate this saga replaces.
func (r *Rotator) current(ctx context.Context, s *State) (*eventsv1.Amphora, error) {
	st, err := r.loadAmp(ctx, s.AmphoraID)
	if err != nil {
		return nil, saga.Transient(err)
	}
	a := st.Amphora()
	if a == nil || a.GetStatus() == amphora.StatusDeleted || a.GetStatus() == amphora.StatusPendingDelete {
		return nil, saga.Permanent(fmt.Errorf("amphora %s is gone", s.AmphoraID))
	}
	return a, nil
}

func (r *Rotator) markBusy() step {
	return step{
		Name: "mark_cert_busy",
		Do: func(ctx context.Context, s *State) (saga.Outputs, error) {
			a, err := r.current(ctx, s)
			if err != nil {
				return nil, err
			}
			if !a.GetCertExpiration().AsTime().Equal(s.Replaces) {
				return nil, saga.Permanent(fmt.Errorf("amphora %s has another certificate than the one to replace", s.AmphoraID))
			}
			_, _, err = r.cfg.Commands.Amphora(ctx, md(ctx, s), s.AmphoraID, amphora.UpdateAmphora{CertBusy: aggregates.Value(true)})
			return nil, cmdErr("mark certificate busy", err)
		},
		Compensate: func(ctx context.Context, s *State) error {
			st, err := r.loadAmp(ctx, s.AmphoraID)
			if err != nil {
				return saga.Transient(err)
			}
			a := st.Amphora()
			if a == nil || !a.GetCertBusy() || a.GetStatus() == amphora.StatusDeleted {
				return nil
			}
			_, _, err = r.cfg.Commands.Amphora(ctx, md(ctx, s), s.AmphoraID, amphora.UpdateAmphora{CertBusy: aggregates.Value(false)})
			return cmdErr("clear certificate busy", err)
		},
	}
}

// push issues a certificate and gives it to the agent. Nothing to undo:
// the agent keeps serving a valid certificate either way.
func (r *Rotator) push() step {
	return step{
		Name: "push_certificate",
		Do: func(ctx context.Context, s *State) (saga.Outputs, error) {
			cert, err := r.cfg.Certificates.IssueServerCert(ctx, s.AmphoraID, r.cfg.Validity)
			if err != nil {
				return nil, fmt.Errorf("issue server certificate: %w", err)
			}
			amp := ports.Amphora{ID: s.AmphoraID, ComputeID: s.ComputeID, ManagementIP: s.ManagementIP}
			if err := r.cfg.Agent.UpdateServerCertificate(ctx, amp, cert.PEM); err != nil {
				return nil, fmt.Errorf("push server certificate to amphora %s: %w", s.AmphoraID, err)
			}
			return saga.Outputs{"serial": cert.Serial, "expires_at": cert.ExpiresAt.UTC().Format(time.RFC3339Nano)}, nil
		},
		Apply: func(s *State, out saga.Outputs) {
			s.Serial = out["serial"]
			s.ExpiresAt, _ = time.Parse(time.RFC3339Nano, out["expires_at"])
		},
	}
}

// record records the new expiry (which clears cert_busy) unless it is
// already recorded.
func (r *Rotator) record() step {
	return step{
		Name: "record_certificate",
		Do: func(ctx context.Context, s *State) (saga.Outputs, error) {
			a, err := r.current(ctx, s)
			if err != nil {
				return nil, err
			}
			if a.GetCertExpiration().AsTime().Equal(s.ExpiresAt) && !a.GetCertBusy() {
				return nil, nil
			}
			_, _, err = r.cfg.Commands.Amphora(ctx, md(ctx, s), s.AmphoraID, amphora.RecordCertificate{ExpiresAt: s.ExpiresAt,
				Serial: s.Serial})
			if err != nil {
				return nil, cmdErr("record certificate", err)
			}
			saga.InfoFrom(ctx).Logger.Info("amphora certificate rotated", "amphora_id", s.AmphoraID, "serial", s.Serial,
				"expires_at", s.ExpiresAt)
			return nil, nil
		},
	}
}

// failed logs the failure; the compensation already cleared cert_busy, so
// the next scan tries again.
func (r *Rotator) failed(ctx context.Context, s *State, reason string) error {
	saga.InfoFrom(ctx).Logger.Warn("certificate rotation failed; the next scan retries", "amphora_id", s.AmphoraID,
		"reason", reason)
	return nil
}
