package messaging_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/messaging"
	"github.com/ostia/ostia/internal/relay/relaytest"
	"github.com/ostia/ostia/internal/testkit"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// record builds the record the relay would publish for env.
func record(t *testing.T, env *eventsv1.Envelope) *sarama.ProducerMessage {
	t.Helper()
	b, err := events.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return &sarama.ProducerMessage{
		Topic: events.Topic(env.GetAggregateType()),
		Key:   sarama.StringEncoder(env.GetAggregateId()),
		Value: sarama.ByteEncoder(b),
		Headers: []sarama.RecordHeader{
			{Key: []byte(messaging.HeaderEventID), Value: []byte(env.GetEventId())},
			{Key: []byte(messaging.HeaderEventType), Value: []byte(env.GetType())},
		},
	}
}

func newEvent(h *relaytest.Harness, agg relaytest.Aggregate, version int64) *eventsv1.Envelope {
	env := h.Event(agg, time.Now())
	env.AggregateVersion = version
	return env
}

type counted struct {
	applied, duplicates, errors, poisoned float64
}

func metricsOf(t *testing.T, reg *prometheus.Registry) counted {
	return counted{
		applied:    relaytest.CounterValue(t, reg, "ostia_consumer_events_applied_total"),
		duplicates: relaytest.CounterValue(t, reg, "ostia_consumer_duplicates_skipped_total"),
		errors:     relaytest.CounterValue(t, reg, "ostia_consumer_handler_errors_total"),
		poisoned:   relaytest.CounterValue(t, reg, "ostia_consumer_poisoned_total"),
	}
}

func TestConsumerSkipsRedeliveredEvent(t *testing.T) {
	t.Parallel()
	h := relaytest.New(t, relaytest.Config{Partitions: 2})
	agg := relaytest.Aggregates(1)[0]
	first, second := newEvent(h, agg, 1), newEvent(h, agg, 2)
	prod := h.NewProducer("dup-test")
	// The same envelope twice (a relay crash after publish), then the next.
	if err := prod.SendMessages([]*sarama.ProducerMessage{record(t, first), record(t, first), record(t, second)}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var calls atomic.Int32
	h.StartConsumer("dup-check", reg, func(context.Context, pgx.Tx, *eventsv1.Envelope) error {
		calls.Add(1)
		return nil
	})
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, func() bool {
		m := metricsOf(t, reg)
		return m.applied == 2 && m.duplicates == 1
	}, "metrics %+v", metricsOf(t, reg))
	if got := h.AppliedCount(context.Background(), "dup-check"); got != 2 || calls.Load() != 2 {
		t.Fatalf("applied rows %d, handler calls %d; want 2 and 2", got, calls.Load())
	}
}

// A handler that fails is retried (in order: the next event of the same
// aggregate waits), past MaxAttempts too when there is no poison policy,
// and its failed attempts leave no trace.
func TestConsumerRetriesFailingHandler(t *testing.T) {
	t.Parallel()
	h := relaytest.New(t, relaytest.Config{Partitions: 2})
	agg := relaytest.Aggregates(1)[0]
	first, second := newEvent(h, agg, 1), newEvent(h, agg, 2)
	if err := h.NewProducer("retry-test").SendMessages([]*sarama.ProducerMessage{record(t, first), record(t, second)}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var failures atomic.Int32
	var order []int64
	c, err := messaging.NewConsumer(messaging.ConsumerConfig{
		Name: "retry-check", Brokers: h.Addrs(), Topics: events.Topics(), Pool: h.Pool, Logger: h.Logger, Metrics: reg,
		MaxAttempts: 2, RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond,
		Handler: func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
			if _, err := tx.Exec(ctx, `INSERT INTO relaytest_applied (consumer, event_id, aggregate_type, aggregate_id,
				aggregate_version, topic, message_key) VALUES ('retry-check', $1, $2, $3, $4, '', '')`,
				env.GetEventId(), env.GetAggregateType(), env.GetAggregateId(), env.GetAggregateVersion()); err != nil {
				return err
			}
			if env.GetEventId() == first.GetEventId() && failures.Add(1) <= 4 {
				return errors.New("downstream unavailable")
			}
			order = append(order, env.GetAggregateVersion()) // one partition: handled sequentially
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, func() bool {
		return metricsOf(t, reg).applied == 2
	}, "metrics %+v", metricsOf(t, reg))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	m := metricsOf(t, reg)
	if m.errors != 4 || m.poisoned != 0 {
		t.Fatalf("metrics %+v: want 4 handler errors, nothing poisoned", m)
	}
	if got := h.AppliedCount(context.Background(), "retry-check"); got != 2 {
		t.Fatalf("applied rows %d, want 2 (failed attempts must roll back)", got)
	}
	if fmt.Sprint(order) != "[1 2]" {
		t.Fatalf("applied versions %v, want [1 2]", order)
	}
}

// With a poison policy, an event that keeps failing goes to the poison topic
// with its reason and the consumer moves on.
func TestConsumerPoisonPolicy(t *testing.T) {
	t.Parallel()
	h := relaytest.New(t, relaytest.Config{Partitions: 1})
	agg := relaytest.Aggregates(1)[0]
	bad, good := newEvent(h, agg, 1), newEvent(h, agg, 2)
	prod := h.NewProducer("poison-test")
	if err := prod.SendMessages([]*sarama.ProducerMessage{record(t, bad), record(t, good)}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c, err := messaging.NewConsumer(messaging.ConsumerConfig{
		Name: "poison-check", Brokers: h.Addrs(), Topics: events.Topics(), Pool: h.Pool, Logger: h.Logger, Metrics: reg,
		MaxAttempts: 3, RetryBackoff: 5 * time.Millisecond, Poison: prod,
		Handler: func(_ context.Context, _ pgx.Tx, env *eventsv1.Envelope) error {
			if env.GetEventId() == bad.GetEventId() {
				return errors.New("cannot apply this one")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, func() bool {
		m := metricsOf(t, reg)
		return m.applied == 1 && m.poisoned == 1
	}, "metrics %+v", metricsOf(t, reg))
	if m := metricsOf(t, reg); m.errors != 3 {
		t.Fatalf("handler errors %v, want 3 (MaxAttempts)", m.errors)
	}

	// The poison topic holds the bad event with the reason.
	cons, err := sarama.NewConsumer(h.Addrs(), messaging.ConsumerSaramaConfig("poison-reader"))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(messaging.PoisonTopic(events.Topic(agg.Type)), 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	select {
	case msg := <-pc.Messages():
		hdr := map[string]string{}
		for _, h := range msg.Headers {
			hdr[string(h.Key)] = string(h.Value)
		}
		if hdr[messaging.HeaderEventID] != bad.GetEventId() || hdr[messaging.HeaderPoisonConsumer] != "poison-check" ||
			hdr[messaging.HeaderPoisonReason] == "" || hdr[messaging.HeaderPoisonTopic] != events.Topic(agg.Type) {
			t.Fatalf("poison headers %v", hdr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing on the poison topic")
	}
}

// Close waits for a handler that is running and lets its transaction commit.
func TestConsumerCloseWaitsForInFlightHandler(t *testing.T) {
	t.Parallel()
	h := relaytest.New(t, relaytest.Config{Partitions: 1})
	agg := relaytest.Aggregates(1)[0]
	if err := h.NewProducer("close-test").SendMessages([]*sarama.ProducerMessage{record(t, newEvent(h, agg, 1))}); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	c := h.StartConsumer("close-check", nil, func(ctx context.Context, _ pgx.Tx, _ *eventsv1.Envelope) error {
		close(entered)
		<-release
		return ctx.Err()
	})
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("handler never ran")
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while a handler was running")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if got := h.AppliedCount(context.Background(), "close-check"); got != 1 {
		t.Fatalf("in-flight handler's transaction: %d rows, want 1", got)
	}
}
