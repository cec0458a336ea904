package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/messaging"
)

func runEvents(ctx context.Context, env *environment, args []string) error {
	if len(args) == 0 || args[0] != "tail" {
		return fmt.Errorf("usage: ostia events tail [-config FILE] [-brokers host:port,...] [-from-beginning] [-aggregate TYPE]")
	}
	fs, path := newFlags(env, "events tail")
	brokersFlag := fs.String("brokers", "", "Kafka brokers (default: [kafka] brokers, or the embedded broker's 127.0.0.1:<embedded_port>)")
	fromStart := fs.Bool("from-beginning", false, "print the whole retained stream before following it")
	aggregate := fs.String("aggregate", "", "only this aggregate type (loadbalancer, amphora, project, catalog, saga)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	b, err := setup(env, *path)
	if err != nil {
		return err
	}
	brokers := b.cfg.Kafka.Brokers
	if *brokersFlag != "" {
		brokers = strings.Split(*brokersFlag, ",")
	} else if len(brokers) == 0 {
		brokers = []string{fmt.Sprintf("127.0.0.1:%d", b.cfg.Kafka.EmbeddedPort)}
	}
	topics := events.Topics()
	if *aggregate != "" {
		topics = []string{events.Topic(*aggregate)}
	}
	offset := sarama.OffsetNewest
	if *fromStart {
		offset = sarama.OffsetOldest
	}
	return tailEvents(ctx, env.stdout, brokers, topics, offset, b.cfg.Kafka.ClientID+"-tail")
}

// tailEvents prints every event of the topics as one JSON object per line
// until ctx ends.
func tailEvents(ctx context.Context, out io.Writer, brokers, topics []string, offset int64, clientID string) error {
	reg, err := events.NewRegistry()
	if err != nil {
		return err
	}
	consumer, err := sarama.NewConsumer(brokers, messaging.ConsumerSaramaConfig(clientID))
	if err != nil {
		return fmt.Errorf("connect to kafka %v: %w", brokers, err)
	}
	defer consumer.Close()
	var mu sync.Mutex
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for _, topic := range topics {
		parts, err := consumer.Partitions(topic)
		if err != nil {
			return fmt.Errorf("partitions of %s: %w", topic, err)
		}
		for _, p := range parts {
			pc, err := consumer.ConsumePartition(topic, p, offset)
			if err != nil {
				return fmt.Errorf("consume %s/%d: %w", topic, p, err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer pc.Close()
				for {
					select {
					case <-ctx.Done():
						return
					case msg, ok := <-pc.Messages():
						if !ok {
							return
						}
						line, err := eventJSON(reg, msg)
						if err != nil {
							line = []byte(fmt.Sprintf(`{"topic":%q,"partition":%d,"offset":%d,"error":%q}`, msg.Topic, msg.Partition, msg.Offset, err.Error()))
						}
						mu.Lock()
						_, werr := fmt.Fprintf(out, "%s\n", line)
						mu.Unlock()
						if werr != nil {
							select {
							case errc <- werr:
							default:
							}
							return
						}
					}
				}
			}()
		}
	}
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	wg.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// eventJSON renders one Kafka message: envelope fields and the decoded payload.
func eventJSON(reg *events.Registry, msg *sarama.ConsumerMessage) ([]byte, error) {
	env, err := events.Unmarshal(msg.Value)
	if err != nil {
		return nil, err
	}
	payload, err := reg.Decode(env)
	if err != nil {
		return nil, err
	}
	body, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"topic": msg.Topic, "partition": msg.Partition, "offset": msg.Offset,
		"event_id": env.EventId, "type": env.Type, "aggregate_type": env.AggregateType,
		"aggregate_id": env.AggregateId, "aggregate_version": env.AggregateVersion,
		"project_id": env.ProjectId, "correlation_id": env.CorrelationId, "causation_id": env.CausationId,
		"actor": env.Actor, "occurred_at": env.OccurredAt.AsTime().Format(time.RFC3339Nano),
		"payload": json.RawMessage(body),
	})
}
