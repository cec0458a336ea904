package saga

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/internal/messaging"
)

type metrics struct {
	inFlight     *prometheus.GaugeVec
	stepSeconds  *prometheus.HistogramVec
	stepFailures *prometheus.CounterVec
	finishedN    *prometheus.CounterVec
	compFailures *prometheus.CounterVec
	cleanupFails *prometheus.CounterVec
	takeovers    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, worker string) (*metrics, error) {
	labels := prometheus.Labels{"worker": worker}
	m := &metrics{
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ostia_saga_in_flight",
			Help: "Sagas this worker is executing right now.", ConstLabels: labels}, []string{"saga"}),
		stepSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ostia_saga_step_seconds",
			Help: "Duration of one run of a step's Do or Compensate, by outcome.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18)}, []string{"saga", "step", "outcome"}),
		stepFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ostia_saga_step_failures_total",
			Help: "Failed runs of a step, by error kind.", ConstLabels: labels}, []string{"saga", "step", "kind"}),
		finishedN: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ostia_saga_finished_total",
			Help: "Sagas that reached completed or failed.", ConstLabels: labels}, []string{"saga", "result"}),
		compFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ostia_saga_compensation_failures_total",
			Help: "Compensations given up on and recorded as SagaCompensationFailed.", ConstLabels: labels}, []string{"saga", "step"}),
		cleanupFails: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ostia_saga_cleanup_failures_total",
			Help: "Cleanup retries of failed compensations that failed again.", ConstLabels: labels}, []string{"saga", "step"}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{Name: "ostia_saga_resumed_total",
			Help: "Saga executions that re-ran a step whose earlier start has no recorded outcome (a dead worker, or a RetryAfter wait).", ConstLabels: labels}),
	}
	var err error
	if m.inFlight, err = messaging.Register(reg, m.inFlight); err != nil {
		return nil, err
	}
	if m.stepSeconds, err = messaging.Register(reg, m.stepSeconds); err != nil {
		return nil, err
	}
	if m.stepFailures, err = messaging.Register(reg, m.stepFailures); err != nil {
		return nil, err
	}
	if m.finishedN, err = messaging.Register(reg, m.finishedN); err != nil {
		return nil, err
	}
	if m.compFailures, err = messaging.Register(reg, m.compFailures); err != nil {
		return nil, err
	}
	if m.cleanupFails, err = messaging.Register(reg, m.cleanupFails); err != nil {
		return nil, err
	}
	if m.takeovers, err = messaging.Register(reg, m.takeovers); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) observeStep(saga, step string, kind Kind, d time.Duration) {
	outcome := "ok"
	if kind != KindNone {
		outcome = kind.String()
	}
	m.stepSeconds.WithLabelValues(saga, step, outcome).Observe(d.Seconds())
	if kind == KindTransient || kind == KindPermanent {
		m.stepFailures.WithLabelValues(saga, step, kind.String()).Inc()
	}
}

func (m *metrics) stepFailure(saga, step string, kind Kind) {
	m.stepFailures.WithLabelValues(saga, step, kind.String()+"_final").Inc()
}

func (m *metrics) finished(saga, result string) { m.finishedN.WithLabelValues(saga, result).Inc() }

func (m *metrics) compensationFailed(saga, step string) {
	m.compFailures.WithLabelValues(saga, step).Inc()
}

func (m *metrics) cleanupFailed(saga, step string) { m.cleanupFails.WithLabelValues(saga, step).Inc() }
