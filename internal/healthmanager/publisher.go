package healthmanager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/internal/heartbeat"
	"github.com/ostia/ostia/internal/messaging"
)

// Publisher defaults.
const (
	DefaultMaxPending = 50_000
	DefaultMaxBlock   = time.Second
)

// ErrPublisherClosed is returned by Sink after Close.
var ErrPublisherClosed = errors.New("healthmanager: publisher closed")

// ErrBackpressure is returned by Sink when MaxPending heartbeats stayed
// unacknowledged for MaxBlock; the receiver counts it as a sink error.
var ErrBackpressure = errors.New("healthmanager: publisher saturated")

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Brokers are the bootstrap addresses.
	Brokers []string
	// ClientID / Receiver identify this process (Receiver is stamped into
	// every heartbeat; default ClientID).
	ClientID string
	Receiver string
	// MaxPending bounds heartbeats handed to the producer and not yet
	// acknowledged (default 50000). A Sink call waits up to MaxBlock for
	// room and then fails, which bounds memory and pushes back on the
	// receiver (whose own bounded queue then sheds, counted, "overload").
	MaxPending int
	MaxBlock   time.Duration
	// Logger defaults to slog.Default(); Metrics nil registers none.
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	// SaramaConfig overrides PublisherSaramaConfig(ClientID).
	SaramaConfig *sarama.Config
}

// PublisherSaramaConfig is the producer configuration for heartbeats: the
// repository's producer defaults (idempotent, acks from all in-sync
// replicas, hash partitioner on the key) with batching tuned for many small
// records: up to 10 ms or 1 MiB per batch, LZ4 compressed.
func PublisherSaramaConfig(clientID string) *sarama.Config {
	c := messaging.SaramaConfig(clientID)
	c.Producer.Flush.Frequency = 10 * time.Millisecond
	c.Producer.Flush.Bytes = 1 << 20
	c.Producer.Flush.MaxMessages = 0
	c.Producer.MaxMessageBytes = 4 << 20
	c.Producer.Compression = sarama.CompressionLZ4
	c.ChannelBufferSize = 4096
	c.Producer.Retry.Max = 10
	return c
}

// Publisher publishes accepted heartbeats to Topic through a sarama
// AsyncProducer. Its Sink method is a heartbeat.Config.Sink; it is safe for
// concurrent use and may be shared by several receivers.
type Publisher struct {
	cfg      PublisherConfig
	log      *slog.Logger
	metrics  *publisherMetrics
	producer sarama.AsyncProducer
	slots    chan struct{}
	drained  sync.WaitGroup

	mu     sync.RWMutex
	closed bool

	published atomic.Uint64
	failed    atomic.Uint64
	lastWarn  atomic.Int64
}

// NewPublisher connects the producer.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("healthmanager: publisher: missing brokers")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "ostia-health-publisher"
	}
	if cfg.Receiver == "" {
		cfg.Receiver = cfg.ClientID
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.MaxBlock <= 0 {
		cfg.MaxBlock = DefaultMaxBlock
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SaramaConfig == nil {
		cfg.SaramaConfig = PublisherSaramaConfig(cfg.ClientID)
	}
	cfg.SaramaConfig.Producer.Return.Successes = true
	cfg.SaramaConfig.Producer.Return.Errors = true
	m, err := newPublisherMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("healthmanager: publisher: %w", err)
	}
	producer, err := sarama.NewAsyncProducer(cfg.Brokers, cfg.SaramaConfig)
	if err != nil {
		return nil, fmt.Errorf("healthmanager: publisher: connect %v: %w", cfg.Brokers, err)
	}
	p := &Publisher{
		cfg:      cfg,
		log:      cfg.Logger.With(slog.String("component", "health-publisher")),
		metrics:  m,
		producer: producer,
		slots:    make(chan struct{}, cfg.MaxPending),
	}
	p.drained.Add(2)
	go p.successes()
	go p.errors()
	return p, nil
}

// Sink publishes one heartbeat. It returns once the record is queued in the
// producer (not when Kafka acknowledged it); failures after that point are
// counted (ostia_health_heartbeat_publish_errors_total) and logged.
func (p *Publisher) Sink(ctx context.Context, hb heartbeat.Heartbeat) error {
	value, err := Marshal(ToProto(hb, p.cfg.Receiver))
	if err != nil {
		return err
	}
	if err := p.acquire(ctx); err != nil {
		return err
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		p.release()
		return ErrPublisherClosed
	}
	msg := &sarama.ProducerMessage{
		Topic:    Topic,
		Key:      sarama.StringEncoder(hb.View.AmphoraID),
		Value:    sarama.ByteEncoder(value),
		Headers:  []sarama.RecordHeader{{Key: []byte(HeaderContentType), Value: []byte(ContentType)}},
		Metadata: hb.View.AmphoraID,
	}
	select {
	case p.producer.Input() <- msg:
		p.metrics.pending.Inc()
		return nil
	case <-ctx.Done():
		p.release()
		return fmt.Errorf("healthmanager: publish heartbeat of %s: %w", hb.View.AmphoraID, ctx.Err())
	}
}

func (p *Publisher) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(p.cfg.MaxBlock)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("healthmanager: publish heartbeat: %w", ctx.Err())
	case <-t.C:
		return fmt.Errorf("%w: %d heartbeats unacknowledged for %s", ErrBackpressure, p.cfg.MaxPending, p.cfg.MaxBlock)
	}
}

func (p *Publisher) release() { <-p.slots }

func (p *Publisher) successes() {
	defer p.drained.Done()
	for range p.producer.Successes() {
		p.release()
		p.metrics.pending.Dec()
		p.metrics.published.Inc()
		p.published.Add(1)
	}
}

func (p *Publisher) errors() {
	defer p.drained.Done()
	for perr := range p.producer.Errors() {
		p.release()
		p.metrics.pending.Dec()
		p.metrics.errors.Inc()
		n := p.failed.Add(1)
		level := slog.LevelDebug
		now := time.Now().UnixNano()
		if last := p.lastWarn.Load(); now-last >= int64(10*time.Second) && p.lastWarn.CompareAndSwap(last, now) {
			level = slog.LevelError
		}
		amp, _ := perr.Msg.Metadata.(string)
		p.log.Log(context.Background(), level, "heartbeat lost: publish failed",
			slog.String("amphora_id", amp), slog.Any("error", perr.Err), slog.Uint64("failed_total", n))
	}
}

// PublisherStats counts what this publisher had acknowledged and lost.
type PublisherStats struct {
	Published uint64
	Failed    uint64
	Pending   int
}

// Stats returns this publisher's counters.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{Published: p.published.Load(), Failed: p.failed.Load(), Pending: len(p.slots)}
}

// Close stops accepting heartbeats, flushes everything queued to Kafka
// (waiting for acknowledgements or errors) and closes the producer. Close
// the receivers first.
func (p *Publisher) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.producer.AsyncClose()
	p.drained.Wait()
	if n := p.failed.Load(); n > 0 {
		p.log.Warn("heartbeat publisher closed with losses", slog.Uint64("failed_total", n),
			slog.Uint64("published_total", p.published.Load()))
	}
	return nil
}
