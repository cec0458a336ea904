package saga

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// Saga statuses in the sagas_index table.
const (
	StatusRunning      = "running"
	StatusCompensating = "compensating"
	StatusCompleted    = "completed"
	StatusFailed       = "failed"
)

// stepRecord is what the history says about one step.
type stepRecord struct {
	starts            int
	transientFailures int
	firstStarted      time.Time
	completed         bool
	outputs           Outputs
	compensated       bool
	compFailed        bool
}

// history is a saga rebuilt from its stream.
type history struct {
	id            string
	sagaType      string
	subject       string
	input         []byte
	correlationID string
	projectID     string
	version       int64

	steps map[string]*stepRecord
	// order lists steps by first start.
	order []string
	// completedOrder lists completed steps in completion order.
	completedOrder []string
	// open is the step started last with no recorded outcome yet.
	open string

	compensating bool
	reason       string
	completed    bool
	failed       bool
}

func newHistory(id string) *history {
	return &history{id: id, steps: map[string]*stepRecord{}}
}

func (h *history) step(name string) *stepRecord {
	r := h.steps[name]
	if r == nil {
		r = &stepRecord{}
		h.steps[name] = r
	}
	return r
}

func (h *history) apply(env *eventsv1.Envelope, p proto.Message) error {
	at := env.GetOccurredAt().AsTime()
	switch e := p.(type) {
	case *eventsv1.SagaStarted:
		h.sagaType, h.subject, h.input = e.GetSagaType(), e.GetSubjectId(), e.GetInput()
		h.correlationID, h.projectID = env.GetCorrelationId(), env.GetProjectId()
	case *eventsv1.SagaStepStarted:
		r := h.step(e.GetStep())
		if r.starts == 0 {
			r.firstStarted = at
			h.order = append(h.order, e.GetStep())
		}
		r.starts++
		h.open = e.GetStep()
	case *eventsv1.SagaStepCompleted:
		r := h.step(e.GetStep())
		r.completed, r.outputs = true, e.GetOutputs()
		h.completedOrder = append(h.completedOrder, e.GetStep())
		h.open = ""
	case *eventsv1.SagaStepFailed:
		r := h.step(e.GetStep())
		if !e.GetPermanent() {
			r.transientFailures++
		}
		h.open = ""
	case *eventsv1.SagaCompensationStarted:
		h.compensating, h.reason = true, e.GetReason()
		h.open = ""
	case *eventsv1.SagaStepCompensated:
		r := h.step(e.GetStep())
		r.compensated = true
	case *eventsv1.SagaCompensationFailed:
		h.step(e.GetStep()).compFailed = true
	case *eventsv1.SagaCompleted:
		h.completed = true
	case *eventsv1.SagaFailed:
		h.failed = true
		if h.reason == "" {
			h.reason = e.GetReason()
		}
	default:
		return fmt.Errorf("saga %s: unexpected event %T", h.id, p)
	}
	h.version = env.GetAggregateVersion()
	return nil
}

// status is the index status the history implies.
func (h *history) status() string {
	switch {
	case h.completed:
		return StatusCompleted
	case h.failed:
		return StatusFailed
	case h.compensating:
		return StatusCompensating
	default:
		return StatusRunning
	}
}

// orphans lists steps whose compensation failed and was not redone.
func (h *history) orphans() []string {
	var out []string
	for _, name := range h.order {
		if r := h.steps[name]; r.compFailed && !r.compensated {
			out = append(out, name)
		}
	}
	return out
}
