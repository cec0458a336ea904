package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ostia/ostia/aggregates/commands"
	"github.com/ostia/ostia/aggregates/handler"
	lb "github.com/ostia/ostia/aggregates/loadbalancer"
	"github.com/ostia/ostia/events"
	"github.com/ostia/ostia/internal/relay"
	"github.com/ostia/ostia/internal/relay/relaytest"
	"github.com/ostia/ostia/internal/testkit"
)

// TestNotifiesActiveLoadBalancer runs the whole path an external
// integration sees: a command appends events, the relay publishes them to
// the embedded broker, and the example's watermill-kafka subscriber posts
// the ACTIVE transition to a webhook.
func TestNotifiesActiveLoadBalancer(t *testing.T) {
	h := relaytest.New(t, relaytest.Config{})
	rl := h.StartRelay(relay.Config{})
	defer func() { _ = rl.Stop() }()

	var mu sync.Mutex
	var got []Notification
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n Notification
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &n); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
	}))
	defer hook.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Brokers: h.Addrs(), Group: "example.notify.test", Webhook: hook.URL,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()

	hd, err := handler.New(handler.Config{Store: h.Store, Registry: events.MustNewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := commands.New(commands.Config{Handler: hd, LoadBalancer: lb.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	md := events.Metadata{ProjectID: "p1", CorrelationID: "req-notify"}
	if _, _, err := svc.LoadBalancer(ctx, md, id, lb.CreateLoadBalancer{ID: id, ProjectID: "p1", VipSubnetID: uuid.NewString()}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.LoadBalancer(ctx, md, id, lb.CompleteProvisioning{Reason: "flow done"}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, 50*time.Millisecond, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	}, "no notification reached the webhook")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := got[0]; n.LoadBalancerID != id || n.Status != "ACTIVE" || n.ProjectID != "p1" || n.EventID == "" {
		t.Fatalf("notification = %+v", n)
	}
}
