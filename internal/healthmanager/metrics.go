package healthmanager

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/internal/messaging"
)

// Metric names.
const (
	MetricPublished          = "ostia_health_heartbeats_published_total"
	MetricPublishErrors      = "ostia_health_heartbeat_publish_errors_total"
	MetricPublishPending     = "ostia_health_heartbeat_publish_pending"
	MetricProcessed          = "ostia_health_heartbeats_processed_total"
	MetricLag                = "ostia_health_heartbeat_lag_seconds"
	MetricStatusChanges      = "ostia_health_operating_status_commands_total"
	MetricStale              = "ostia_health_stale_amphorae"
	MetricFailovers          = "ostia_health_failovers_requested_total"
	MetricThresholdTrips     = "ostia_health_failover_threshold_trips_total"
	MetricStatusCommandError = "ostia_health_status_command_errors_total"
)

type publisherMetrics struct {
	published prometheus.Counter
	errors    prometheus.Counter
	pending   prometheus.Gauge
}

func newPublisherMetrics(reg prometheus.Registerer) (*publisherMetrics, error) {
	m := &publisherMetrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricPublished,
			Help: "Heartbeats acknowledged by Kafka on " + Topic + " (rate = heartbeats/s ingested)."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricPublishErrors,
			Help: "Heartbeats the producer failed to publish (lost)."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricPublishPending,
			Help: "Heartbeats handed to the producer and not yet acknowledged."}),
	}
	var err error
	if m.published, err = messaging.Register(reg, m.published); err != nil {
		return nil, err
	}
	if m.errors, err = messaging.Register(reg, m.errors); err != nil {
		return nil, err
	}
	if m.pending, err = messaging.Register(reg, m.pending); err != nil {
		return nil, err
	}
	return m, nil
}

type consumerMetrics struct {
	processed     *prometheus.CounterVec
	lag           prometheus.Histogram
	statusChanges prometheus.Counter
	statusErrors  prometheus.Counter
}

// Result label values of MetricProcessed.
const (
	resultApplied   = "applied"   // applied (statistics, seq; last_seen when eligible)
	resultStale     = "duplicate" // seq not newer: redelivered or overtaken
	resultUnknown   = "unknown"   // amphora unknown, deleted or without a load balancer
	resultSlow      = "too_slow"  // processed later than heartbeat_interval after receipt
	resultMalformed = "malformed" // undecodable record
	resultMismatch  = "count_mismatch"
)

func newConsumerMetrics(reg prometheus.Registerer) (*consumerMetrics, error) {
	m := &consumerMetrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricProcessed,
			Help: "Heartbeats taken from " + Topic + " by the status consumer, by result."}, []string{"result"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricLag,
			Help:    "Time from UDP receipt to the committed health update (statuses included).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		statusChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricStatusChanges,
			Help: "SetOperatingStatuses commands issued because a derived status differed."}),
		statusErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricStatusCommandError,
			Help: "SetOperatingStatuses commands that failed (retried with the next heartbeat)."}),
	}
	var err error
	if m.processed, err = messaging.Register(reg, m.processed); err != nil {
		return nil, err
	}
	if m.lag, err = messaging.Register(reg, m.lag); err != nil {
		return nil, err
	}
	if m.statusChanges, err = messaging.Register(reg, m.statusChanges); err != nil {
		return nil, err
	}
	if m.statusErrors, err = messaging.Register(reg, m.statusErrors); err != nil {
		return nil, err
	}
	return m, nil
}

type scannerMetrics struct {
	stale     prometheus.Gauge
	failovers *prometheus.CounterVec
	trips     prometheus.Counter
}

func newScannerMetrics(reg prometheus.Registerer) (*scannerMetrics, error) {
	m := &scannerMetrics{
		stale: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricStale,
			Help: "Unclaimed amphorae whose last heartbeat is older than heartbeat_timeout (last scan)."}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricFailovers,
			Help: "Failover requests issued for stale amphorae, by outcome."}, []string{"outcome"}),
		trips: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricThresholdTrips,
			Help: "Scans that found at least failover_threshold stale amphorae and failed over none."}),
	}
	var err error
	if m.stale, err = messaging.Register(reg, m.stale); err != nil {
		return nil, err
	}
	if m.failovers, err = messaging.Register(reg, m.failovers); err != nil {
		return nil, err
	}
	if m.trips, err = messaging.Register(reg, m.trips); err != nil {
		return nil, err
	}
	return m, nil
}
