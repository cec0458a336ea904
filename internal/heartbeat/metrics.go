package heartbeat

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// DropReason says why a datagram was not handed to the sink. It is the value
// of the "reason" label of ostia_heartbeat_packets_dropped_total.
type DropReason string

// Drop reasons.
const (
	ReasonDigest    DropReason = "digest"     // HMAC mismatch (forged, wrong key, corrupted)
	ReasonZlib      DropReason = "zlib"       // authenticated but not a valid zlib stream
	ReasonOversize  DropReason = "oversize"   // datagram > MaxPacketSize or inflated > MaxDecodedSize
	ReasonMalformed DropReason = "malformed"  // too short, not JSON, wrong shape
	ReasonReplay    DropReason = "replay"     // seq <= highest seq seen for that amphora
	ReasonSinkError DropReason = "sink_error" // Sink returned an error or panicked
	ReasonOverload  DropReason = "overload"   // decode queue full; workers cannot keep up
)

const numReasons = 7

// allReasons lists every DropReason in a fixed order (the index of the
// per-reason counters).
func allReasons() [numReasons]DropReason {
	return [numReasons]DropReason{
		ReasonDigest, ReasonZlib, ReasonOversize, ReasonMalformed, ReasonReplay, ReasonSinkError, ReasonOverload,
	}
}

func reasonIndex(r DropReason) int {
	for i, x := range allReasons() {
		if x == r {
			return i
		}
	}
	return -1
}

// Metric names.
const (
	MetricReceived = "ostia_heartbeat_packets_received_total"
	MetricAccepted = "ostia_heartbeat_accepted_total"
	MetricDropped  = "ostia_heartbeat_packets_dropped_total"
)

type metrics struct {
	received prometheus.Counter
	accepted prometheus.Counter
	dropped  [numReasons]prometheus.Counter
}

// newMetrics creates the receiver counters and registers them with reg (if
// non-nil). Receivers sharing a registerer share (and sum into) the same
// counters.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	received := prometheus.NewCounter(prometheus.CounterOpts{
		Name: MetricReceived,
		Help: "UDP heartbeat datagrams read from the socket.",
	})
	accepted := prometheus.NewCounter(prometheus.CounterOpts{
		Name: MetricAccepted,
		Help: "Heartbeats verified, decoded and accepted by the sink.",
	})
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricDropped,
		Help: "Heartbeat datagrams dropped, by reason.",
	}, []string{"reason"})
	if reg != nil {
		var err error
		if received, err = register(reg, received); err != nil {
			return nil, err
		}
		if accepted, err = register(reg, accepted); err != nil {
			return nil, err
		}
		if dropped, err = register(reg, dropped); err != nil {
			return nil, err
		}
	}
	m := &metrics{received: received, accepted: accepted}
	for i, r := range allReasons() {
		m.dropped[i] = dropped.WithLabelValues(string(r))
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("heartbeat: register metrics: %w", err)
}
