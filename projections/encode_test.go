package projections

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ostia/ostia/aggregates"
	"github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/projections/views"
)

// appendJSON must produce exactly encoding/json's bytes: rows compare their
// docs byte for byte, and documents written before it existed were encoded
// with encoding/json.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	tricky := []string{"", "plain", "quote \" and \\ backslash", "<html> & co", "tab\tnew\nline\r\x01\x1f",
		"unicode é ü 日本", "line sep \u2028 \u2029", "invalid \xff utf8", "del \x7f"}
	values := []any{nil, true, false, int32(-5), int64(1 << 40), 7, uint32(9), 1.5, "s", []string{}, []string(nil),
		[]string{"a", "<b>"}, map[string]string{}, map[string]string{"X-Forwarded-For": "true", "<k>": "v&"},
		views.Object{}, views.Object(nil), []views.Object{}, []views.Object{{"id": "x"}, {"id": "y", "n": nil}},
		[]any{"a", 1}, struct{ A int }{3}}
	for _, s := range tricky {
		values = append(values, s, views.Object{s: s, "nested": views.Object{"k": []string{s}}})
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJSON(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%#v:\n got  %s\n want %s", v, got, want)
		}
	}

	// Every view of a populated tree.
	cfg := loadbalancer.DefaultConfig()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := loadbalancer.New("lb-1")
	ids := 0
	newID := func() string { ids++; return "id-" + string(rune('a'+ids)) }
	run := func(cmd loadbalancer.Command) {
		t.Helper()
		now = now.Add(time.Second)
		d, err := cfg.Decide(st, cmd, aggregates.Env{Now: now, NewID: newID})
		if err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
		for _, ev := range d.Events {
			if err := st.Apply(ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	run(loadbalancer.CreateLoadBalancer{ID: "lb-1", ProjectID: "p", Name: proto.String("weird <name> & \"q\" é"),
		VipSubnetID: "subnet", Tags: []string{"a", "<b>"},
		Listeners: []loadbalancer.ListenerSpec{{Protocol: "HTTP", ProtocolPort: 80, Name: proto.String("l\u2028"),
			InsertHeaders: map[string]string{"X-Forwarded-For": "true"},
			DefaultPool: &loadbalancer.PoolSpec{Name: proto.String("p"), Protocol: "HTTP", LBAlgorithm: "ROUND_ROBIN",
				Members: []loadbalancer.MemberSpec{{Address: "192.0.2.1", ProtocolPort: 80, Name: proto.String("m\x01")}}}}}})
	run(loadbalancer.CompleteProvisioning{})
	tree := views.NewTree(st, map[string]time.Time{"lb-1": now})
	objs := []views.Object{tree.LoadBalancer(), tree.StatusTree(), views.FullLoadBalancer(st)}
	for _, id := range tree.ListenerIDs() {
		objs = append(objs, tree.Listener(id))
	}
	for _, id := range tree.PoolIDs() {
		objs = append(objs, tree.Pool(id))
	}
	for _, id := range tree.MemberIDs() {
		objs = append(objs, tree.Member(id))
	}
	for _, o := range objs {
		want, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("view:\n got  %s\n want %s", got, want)
		}
	}
}

// BenchmarkEncodeView compares the view encoder with encoding/json on a
// listener (the audit trail renders one or more objects like it per event).
func BenchmarkEncodeView(b *testing.B) {
	cfg := loadbalancer.DefaultConfig()
	st := loadbalancer.New("lb-1")
	d, err := cfg.Decide(st, loadbalancer.CreateLoadBalancer{ID: "lb-1", ProjectID: "p", Name: proto.String("lb"),
		VipSubnetID: "subnet", Listeners: []loadbalancer.ListenerSpec{{Protocol: "HTTP", ProtocolPort: 80}}},
		aggregates.Env{Now: time.Now(), NewID: func() string { return "id-1" }})
	if err != nil {
		b.Fatal(err)
	}
	for _, ev := range d.Events {
		if err := st.Apply(ev); err != nil {
			b.Fatal(err)
		}
	}
	tree := views.NewTree(st, nil)
	obj := tree.Listener(tree.ListenerIDs()[0])
	b.Run("appendJSON", func(b *testing.B) {
		for range b.N {
			if _, err := marshal(obj); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for range b.N {
			if _, err := json.Marshal(obj); err != nil {
				b.Fatal(err)
			}
		}
	})
}
