// Command notify is an example external integration: it tails Ostia's
// load-balancer event stream from Kafka with a watermill-kafka subscriber and
// posts a JSON notification to a webhook for every load balancer that
// becomes ACTIVE, goes to ERROR or is deleted.
//
//	go run ./examples/notify -brokers 127.0.0.1:9092 -webhook http://127.0.0.1:8080/hook
//
// It uses its own consumer group, so it sees every event once per group
// (at least once: Kafka may redeliver after a restart, so a real receiver
// should deduplicate on event_id, which every notification carries).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"

	"github.com/ostia/ostia/events"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// Notification is what the webhook receives.
type Notification struct {
	EventID        string `json:"event_id"`
	Type           string `json:"type"`
	LoadBalancerID string `json:"loadbalancer_id"`
	ProjectID      string `json:"project_id"`
	Status         string `json:"status"`
	Reason         string `json:"reason,omitempty"`
	OccurredAt     string `json:"occurred_at"`
}

// Config configures the example.
type Config struct {
	Brokers []string
	Group   string
	Webhook string
	Logger  *slog.Logger
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka brokers, comma separated")
	group := flag.String("group", "example.notify", "consumer group")
	webhook := flag.String("webhook", "", "URL to POST notifications to (empty: print them)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := Run(ctx, Config{Brokers: strings.Split(*brokers, ","), Group: *group, Webhook: *webhook, Logger: log}); err != nil {
		log.Error("notify", "error", err)
		os.Exit(1)
	}
}

// Run consumes until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	reg, err := events.NewRegistry()
	if err != nil {
		return err
	}
	sc := kafka.DefaultSaramaSubscriberConfig()
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest // see every retained event on first start
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers:               cfg.Brokers,
		Unmarshaler:           kafka.DefaultMarshaler{},
		OverwriteSaramaConfig: sc,
		ConsumerGroup:         cfg.Group,
	}, watermill.NewSlogLogger(cfg.Logger))
	if err != nil {
		return fmt.Errorf("subscriber: %w", err)
	}
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, events.Topic(events.AggregateLoadBalancer))
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for msg := range msgs {
		n, ok, err := notification(reg, msg.Payload)
		if err != nil {
			cfg.Logger.Warn("skipping undecodable message", "error", err)
			msg.Ack()
			continue
		}
		if ok {
			if err := deliver(ctx, client, cfg.Webhook, n); err != nil {
				cfg.Logger.Warn("webhook failed; will retry", "event_id", n.EventID, "error", err)
				msg.Nack()
				continue
			}
		}
		msg.Ack()
	}
	return nil
}

// notification turns one envelope into a notification when it is one of the
// load-balancer transitions the example reports.
func notification(reg *events.Registry, value []byte) (Notification, bool, error) {
	env, err := events.Unmarshal(value)
	if err != nil {
		return Notification{}, false, err
	}
	p, err := reg.Decode(env)
	if err != nil {
		return Notification{}, false, err
	}
	n := Notification{EventID: env.EventId, Type: env.Type, LoadBalancerID: env.AggregateId, ProjectID: env.ProjectId,
		OccurredAt: env.OccurredAt.AsTime().Format(time.RFC3339Nano)}
	switch e := p.(type) {
	case *eventsv1.ProvisioningStatusChanged:
		for _, c := range e.Changes {
			if c.Kind == eventsv1.ObjectKind_OBJECT_KIND_LOADBALANCER && (c.ProvisioningStatus == "ACTIVE" || c.ProvisioningStatus == "ERROR") {
				n.Status, n.Reason = c.ProvisioningStatus, e.Reason
				return n, true, nil
			}
		}
	case *eventsv1.LoadBalancerDeleted:
		n.Status, n.Reason = "DELETED", e.Reason
		return n, true, nil
	}
	return Notification{}, false, nil
}

func deliver(ctx context.Context, client *http.Client, url string, n Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return err
	}
	if url == "" {
		_, err := fmt.Println(string(body))
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return nil
}
