package broker_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/broker"
	"github.com/ostia/ostia/internal/messaging"
)

const testGroup = "broker-test-group"

// consumeN joins testGroup, marks n records and returns their values.
func consumeN(t *testing.T, addrs []string, topic string, n int) []string {
	t.Helper()
	group, err := sarama.NewConsumerGroup(addrs, testGroup, messaging.ConsumerSaramaConfig("broker-test"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h := &collect{want: n, got: make(chan string, n+100), done: cancel}
	if err := group.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
		t.Fatal(err)
	}
	if err := group.Close(); err != nil { // commits the marked offsets
		t.Fatal(err)
	}
	close(h.got)
	var out []string
	for v := range h.got {
		out = append(out, v)
	}
	if len(out) < n {
		t.Fatalf("consumed %d records, want %d", len(out), n)
	}
	return out
}

type collect struct {
	want int
	n    int
	got  chan string
	done context.CancelFunc
}

func (c *collect) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (c *collect) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (c *collect) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			if c.n >= c.want { // single partition topic: one claim goroutine
				return nil
			}
			c.got <- string(m.Value)
			sess.MarkMessage(m, "")
			c.n++
			if c.n == c.want {
				sess.Commit()
				c.done()
				return nil
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

func TestBrokerPersistsRecordsAndOffsetsAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	const topic = "persist-test"
	b, err := broker.Start(ctx, broker.Config{DataDir: dir, Partitions: 1, Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	addrs := b.Addrs()
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("broker address %q is not on 127.0.0.1", a)
		}
	}
	port := b.Port()

	prod, err := sarama.NewSyncProducer(addrs, messaging.SaramaConfig("broker-test"))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*sarama.ProducerMessage
	for i := range 100 {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k"),
			Value: sarama.StringEncoder(fmt.Sprintf("m%03d", i))})
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
	_ = prod.Close()
	first := consumeN(t, addrs, topic, 40)
	if first[0] != "m000" || first[39] != "m039" {
		t.Fatalf("first batch %v", first)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart on the same directory and port.
	b2, err := broker.Start(ctx, broker.Config{DataDir: dir, Port: port, Partitions: 1, Topics: []string{topic, "persist-test-added"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if got := strings.Join(b2.Addrs(), ","); got != strings.Join(addrs, ",") {
		t.Fatalf("restarted on %s, want %s", got, strings.Join(addrs, ","))
	}
	admin, err := sarama.NewClusterAdmin(b2.Addrs(), messaging.SaramaConfig("broker-test-admin"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	offs, err := admin.ListConsumerGroupOffsets(testGroup, map[string][]int32{topic: {0}})
	if err != nil {
		t.Fatal(err)
	}
	if blk := offs.GetBlock(topic, 0); blk == nil || blk.Offset != 40 {
		t.Fatalf("committed offset after restart = %+v, want 40", blk)
	}
	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := topics["persist-test-added"]; !ok {
		t.Fatalf("topic added to the config was not created on restart: %v", topics)
	}
	// The group resumes at the committed offset: the rest is still there.
	rest := consumeN(t, b2.Addrs(), topic, 60)
	if rest[0] != "m040" || rest[59] != "m099" {
		t.Fatalf("resumed at %s..%s, want m040..m099", rest[0], rest[59])
	}
}

func TestBrokerCreatesEventTopics(t *testing.T) {
	t.Parallel()
	b, err := broker.Start(context.Background(), broker.Config{Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	admin, err := sarama.NewClusterAdmin(b.Addrs(), messaging.SaramaConfig("broker-test-admin"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range events.Topics() {
		d, ok := topics[want]
		if !ok || d.NumPartitions != 3 {
			t.Fatalf("topic %s: %+v (present %v), want 3 partitions", want, d, ok)
		}
		if _, ok := topics[messaging.PoisonTopic(want)]; !ok {
			t.Fatalf("poison topic of %s missing", want)
		}
	}
}
