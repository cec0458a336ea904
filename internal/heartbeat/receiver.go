package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Receiver defaults.
const (
	DefaultMaxPacketSize = 64 << 10 // like the health manager's 64 KiB receive buffer
	DefaultReadBuffer    = 4 << 20  // SO_RCVBUF request; the kernel caps it at net.core.rmem_max
	DefaultQueueSize     = 16384    // absorbs a simultaneous burst from 10,000 amphorae
	DefaultQueueBytes    = 32 << 20 // bounds queued datagram memory whatever their size
	DefaultSeqCacheSize  = 100_000
	DefaultSeqTTL        = 30 * time.Second
	warnInterval         = 10 * time.Second
)

// Heartbeat is an accepted heartbeat as handed to the sink.
type Heartbeat struct {
	// Message is the decoded message; Message.RecvTime is set to ReceivedAt.
	Message Message
	// View is the normalised form of Message.
	View View
	// ReceivedAt is when the datagram was read from the socket. Consumers
	// should drop heartbeats that waited longer than heartbeat_interval.
	ReceivedAt time.Time
	// Source is the sender's address (the amphora's management IP).
	Source netip.AddrPort
}

// Config configures a Receiver. Key and Sink are required.
type Config struct {
	// Addr is the UDP address to listen on, e.g. "127.0.0.1:5555" or
	// "127.0.0.1:0" for an ephemeral port.
	Addr string
	// Key is the heartbeat HMAC key ([health_manager] heartbeat_key).
	Key []byte
	// MaxPacketSize is the largest datagram accepted (default 64 KiB);
	// longer ones are dropped as "oversize".
	MaxPacketSize int
	// MaxDecodedSize bounds the inflated JSON (default DefaultMaxSize).
	MaxDecodedSize int
	// ReadBuffer is the SO_RCVBUF size requested (default 4 MiB; negative
	// keeps the OS default).
	ReadBuffer int
	// Workers is the number of decode/sink goroutines (default GOMAXPROCS).
	Workers int
	// QueueSize is the capacity (in datagrams) of the queue between the
	// socket reader and the workers (default 16384); QueueBytes bounds the
	// bytes held in it (default 32 MiB). Datagrams arriving while either
	// bound is reached are dropped as "overload" — counted, unlike drops in
	// the kernel socket buffer.
	QueueSize  int
	QueueBytes int
	// SeqCacheSize bounds the replay cache (amphorae tracked, default
	// 100000). When full, the amphora accepted least recently is forgotten.
	SeqCacheSize int
	// SeqTTL is how long the highest seq of an amphora is remembered after
	// its last accepted heartbeat (default 30 s; negative = forever). It
	// bounds how long a restarted agent, whose seq starts again at 0, is
	// rejected as a replay; keep it well below heartbeat_timeout.
	SeqTTL time.Duration
	// Logger receives drop warnings (rate limited) and errors; nil discards.
	Logger *slog.Logger
	// Metrics, if non-nil, gets the receiver's Prometheus counters.
	Metrics prometheus.Registerer
	// Sink is called (concurrently, from Workers goroutines) for each
	// accepted heartbeat. An error is logged and counted as "sink_error".
	Sink func(ctx context.Context, hb Heartbeat) error
	// Now is the clock (default time.Now); for tests.
	Now func() time.Time
}

// Receiver listens for amphora heartbeats on one UDP socket.
//
// Replay protection is local to the Receiver: it remembers the highest seq
// per amphora (bounded, see Config.SeqCacheSize and SeqTTL) and drops
// datagrams whose seq is not higher. Other receivers, other health-manager
// processes and restarts do not share this state, so the downstream consumer
// (the amphora_health / statistics writer) must itself ignore a heartbeat
// whose seq is not newer than the one it last stored for that amphora — while
// allowing for agent restarts, where seq starts again at 0.
//
// Datagrams are decoded concurrently, so a heartbeat overtaken inside the
// receiver by a newer one from the same amphora is dropped as a replay; with
// the 10 s heartbeat interval this needs a worker stalled for that long.
type Receiver struct {
	cfg   Config
	log   *slog.Logger
	conn  *net.UDPConn
	codec *Codec
	seqs  *seqCache
	prom  *metrics

	queued   atomic.Int64 // bytes in the queue
	received atomic.Uint64
	accepted atomic.Uint64
	dropped  [numReasons]atomic.Uint64
	lastWarn [numReasons]atomic.Int64

	started   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// NewReceiver validates cfg, binds the UDP socket and registers metrics. Call
// Run to serve, or Close to release the socket without serving.
func NewReceiver(cfg Config) (*Receiver, error) {
	if len(cfg.Key) == 0 {
		return nil, errors.New("heartbeat: receiver: empty key")
	}
	if cfg.Sink == nil {
		return nil, errors.New("heartbeat: receiver: nil sink")
	}
	if cfg.MaxPacketSize <= 0 {
		cfg.MaxPacketSize = DefaultMaxPacketSize
	}
	if cfg.MaxDecodedSize <= 0 {
		cfg.MaxDecodedSize = DefaultMaxSize
	}
	if cfg.ReadBuffer == 0 {
		cfg.ReadBuffer = DefaultReadBuffer
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	if cfg.SeqCacheSize <= 0 {
		cfg.SeqCacheSize = DefaultSeqCacheSize
	}
	if cfg.SeqTTL == 0 {
		cfg.SeqTTL = DefaultSeqTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	codec, err := NewCodec(cfg.Key, cfg.MaxDecodedSize)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: receiver: %w", err)
	}
	prom, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, err
	}
	addr, err := net.ResolveUDPAddr("udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: receiver: resolve %q: %w", cfg.Addr, err)
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: receiver: listen: %w", err)
	}
	log := cfg.Logger.With(slog.String("component", "heartbeat"), slog.String("addr", conn.LocalAddr().String()))
	if cfg.ReadBuffer > 0 {
		if err := conn.SetReadBuffer(cfg.ReadBuffer); err != nil {
			log.Warn("cannot set UDP receive buffer", slog.Int("bytes", cfg.ReadBuffer), slog.Any("error", err))
		}
	}
	return &Receiver{
		cfg:   cfg,
		log:   log,
		conn:  conn,
		codec: codec,
		seqs:  newSeqCache(cfg.SeqCacheSize, cfg.SeqTTL),
		prom:  prom,
	}, nil
}

// Addr returns the bound UDP address.
func (r *Receiver) Addr() net.Addr { return r.conn.LocalAddr() }

// Close releases the socket; a running Run returns. It is idempotent.
func (r *Receiver) Close() error {
	r.closeOnce.Do(func() { r.closeErr = r.conn.Close() })
	return r.closeErr
}

// Run reads datagrams until ctx is cancelled or Close is called, then waits
// for in-flight sink calls and returns nil. Datagrams still queued at
// shutdown are discarded. Run may be called only once.
func (r *Receiver) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("heartbeat: receiver: Run called twice")
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = r.Close() })
	defer stop()

	r.log.InfoContext(ctx, "heartbeat receiver started", slog.Int("workers", r.cfg.Workers))
	queue := make(chan datagram, r.cfg.QueueSize)
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Go(func() { r.work(ctx, queue) })
	}
	err := r.read(ctx, queue)
	close(queue)
	cancel() // let workers skip what is still queued
	wg.Wait()
	r.log.InfoContext(ctx, "heartbeat receiver stopped")
	return err
}

type datagram struct {
	data []byte
	src  netip.AddrPort
	at   time.Time
}

func (r *Receiver) read(ctx context.Context, queue chan<- datagram) error {
	// One spare byte detects datagrams longer than MaxPacketSize (the kernel
	// silently truncates to the buffer size).
	buf := make([]byte, r.cfg.MaxPacketSize+1)
	backoff := time.Duration(0)
	for {
		n, src, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			backoff = min(max(2*backoff, time.Millisecond), time.Second)
			r.log.WarnContext(ctx, "heartbeat read failed", slog.Any("error", err), slog.Duration("retry_in", backoff))
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		at := r.cfg.Now()
		r.received.Add(1)
		r.prom.received.Inc()
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		if n > r.cfg.MaxPacketSize {
			r.drop(ctx, ReasonOversize, src, fmt.Errorf("%w: datagram longer than %d bytes", ErrTooLarge, r.cfg.MaxPacketSize))
			continue
		}
		if r.queued.Load()+int64(n) > int64(r.cfg.QueueBytes) {
			r.drop(ctx, ReasonOverload, src, errors.New("decode queue holds too many bytes"))
			continue
		}
		d := datagram{data: append([]byte(nil), buf[:n]...), src: src, at: at}
		r.queued.Add(int64(n))
		select {
		case queue <- d:
		default:
			r.queued.Add(-int64(n))
			r.drop(ctx, ReasonOverload, src, errors.New("decode queue full"))
		}
	}
}

func (r *Receiver) work(ctx context.Context, queue <-chan datagram) {
	for d := range queue {
		r.queued.Add(-int64(len(d.data)))
		if ctx.Err() != nil {
			continue // shutting down: drain without processing
		}
		r.handle(ctx, d)
	}
}

func (r *Receiver) handle(ctx context.Context, d datagram) {
	msg, err := r.codec.Decode(d.data)
	if err != nil {
		r.drop(ctx, classify(err), d.src, err)
		return
	}
	if !r.seqs.accept(msg.ID, msg.Seq, d.at) {
		r.drop(ctx, ReasonReplay, d.src, fmt.Errorf("amphora %s: seq %d is not newer than the last one seen", msg.ID, msg.Seq))
		return
	}
	msg.RecvTime = float64(d.at.UnixNano()) / 1e9
	hb := Heartbeat{Message: msg, View: msg.View(), ReceivedAt: d.at, Source: d.src}
	if err := r.sink(ctx, hb); err != nil {
		r.drop(ctx, ReasonSinkError, d.src, fmt.Errorf("amphora %s seq %d: %w", msg.ID, msg.Seq, err))
		return
	}
	r.accepted.Add(1)
	r.prom.accepted.Inc()
}

// sink calls the configured sink, turning a panic into an error so that a
// faulty consumer cannot take the receiver down.
func (r *Receiver) sink(ctx context.Context, hb Heartbeat) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sink panicked: %v", p)
		}
	}()
	return r.cfg.Sink(ctx, hb)
}

func classify(err error) DropReason {
	switch {
	case errors.Is(err, ErrDigest):
		return ReasonDigest
	case errors.Is(err, ErrCompression):
		return ReasonZlib
	case errors.Is(err, ErrTooLarge):
		return ReasonOversize
	}
	return ReasonMalformed
}

// drop counts a dropped datagram and logs it: at warning level at most once
// per reason every warnInterval, otherwise at debug level, so that a flood of
// junk cannot flood the log.
func (r *Receiver) drop(ctx context.Context, reason DropReason, src netip.AddrPort, err error) {
	i := reasonIndex(reason)
	r.dropped[i].Add(1)
	r.prom.dropped[i].Inc()
	level := slog.LevelDebug
	now := r.cfg.Now().UnixNano()
	if last := r.lastWarn[i].Load(); now-last >= int64(warnInterval) && r.lastWarn[i].CompareAndSwap(last, now) {
		level = slog.LevelWarn
	}
	if !r.log.Enabled(ctx, level) {
		return
	}
	r.log.Log(ctx, level, "dropping heartbeat",
		slog.String("reason", string(reason)),
		slog.String("source", src.String()),
		slog.Any("error", err),
		slog.Uint64("dropped_total", r.dropped[i].Load()))
}

// ReceiverStats is a snapshot of a receiver's counters.
type ReceiverStats struct {
	Received uint64
	Accepted uint64
	Dropped  map[DropReason]uint64
	// Tracked is the number of amphorae in the replay cache.
	Tracked int
}

// TotalDropped sums Dropped.
func (s ReceiverStats) TotalDropped() uint64 {
	var n uint64
	for _, v := range s.Dropped {
		n += v
	}
	return n
}

// Stats returns a snapshot of this receiver's counters (unlike the Prometheus
// counters, never shared with other receivers).
func (r *Receiver) Stats() ReceiverStats {
	s := ReceiverStats{
		Received: r.received.Load(),
		Accepted: r.accepted.Load(),
		Dropped:  make(map[DropReason]uint64, numReasons),
		Tracked:  r.seqs.len(),
	}
	for i, reason := range allReasons() {
		s.Dropped[reason] = r.dropped[i].Load()
	}
	return s
}
