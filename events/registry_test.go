package events_test

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/events"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

var wireName = regexp.MustCompile(`^[a-z0-9]+\.[a-z0-9_]+\.v[1-9][0-9]*$`)

var update = flag.Bool("update", false, "rewrite testdata/names.golden")

// TestWireNamesAreStable pins every wire name and the aggregate it belongs
// to. A shipped name must never change or disappear; adding an event means
// adding a line here (run with -update and review the diff).
func TestWireNamesAreStable(t *testing.T) {
	t.Parallel()
	reg := events.MustNewRegistry()
	var b strings.Builder
	for _, name := range reg.Names() {
		m, err := reg.New(name)
		if err != nil {
			t.Fatal(err)
		}
		agg, err := reg.AggregateType(m)
		if err != nil {
			t.Fatal(err)
		}
		if !wireName.MatchString(name) {
			t.Errorf("name %q is not <aggregate>.<fact>.v<N>", name)
		}
		b.WriteString(name + " " + agg + " " + string(m.ProtoReflect().Descriptor().FullName()) + "\n")
	}
	const golden = "testdata/names.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != string(want) {
		t.Fatalf("wire names changed; shipped names must stay. got:\n%s\nwant:\n%s", got, want)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	t.Parallel()
	reg := events.MustNewRegistry()
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	name := "web"
	payload := &eventsv1.LoadBalancerCreated{Loadbalancer: &eventsv1.LoadBalancer{Id: "lb-1", Name: &name, ProjectId: "p1"}}
	env, err := reg.Envelope("11111111-1111-1111-1111-111111111111", "lb-1", payload,
		events.Metadata{ProjectID: "p1", CausationID: "c", CorrelationID: "req-9", Actor: "u"}, at)
	if err != nil {
		t.Fatal(err)
	}
	if env.Type != "loadbalancer.created.v1" || env.AggregateType != events.AggregateLoadBalancer {
		t.Fatalf("envelope type %q aggregate %q", env.Type, env.AggregateType)
	}
	b, err := events.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	back, err := events.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := reg.Decode(back)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, payload) || back.CorrelationId != "req-9" || !back.OccurredAt.AsTime().Equal(at) {
		t.Fatalf("round trip changed the event: %v", got)
	}
}

func TestUnknownEvents(t *testing.T) {
	t.Parallel()
	reg := events.MustNewRegistry()
	if _, err := reg.New("loadbalancer.exploded.v1"); err == nil {
		t.Fatal("unknown name accepted")
	}
	if _, err := reg.Name(&eventsv1.Envelope{}); err == nil {
		t.Fatal("the envelope is not an event but was named")
	}
	if _, err := reg.Decode(&eventsv1.Envelope{Type: "loadbalancer.created.v1", Payload: []byte{0xff, 0xff}}); err == nil {
		t.Fatal("garbage payload decoded")
	}
}

func TestTopics(t *testing.T) {
	t.Parallel()
	if got := events.Topic(events.AggregateLoadBalancer); got != "ostia.loadbalancer.v1" {
		t.Fatalf("topic = %q", got)
	}
	if len(events.Topics()) != len(events.AggregateTypes()) {
		t.Fatal("a topic per aggregate type")
	}
}
