package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ostia/ostia/internal/heartbeat"
	agentv1 "github.com/ostia/ostia/proto/ostia/agent/v1"
)

func TestHeartbeatsReportRunningLoadBalancers(t *testing.T) {
	bin := requireBinary(t, "haproxy")
	base := shortTempDir(t)
	env := startAgent(t, Config{BaseDir: base, HAProxyBin: bin})
	ctx := rpcCtx(t)

	// Nothing runs yet: a heartbeat with no listeners.
	st := NewHeartbeatState()
	msg, err := env.agent.HeartbeatMessage(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if msg.ID != testAmphoraID || msg.Version != heartbeat.Version3 || len(msg.Listeners) != 0 || msg.Seq != 0 {
		t.Fatalf("idle heartbeat %+v", msg)
	}

	aAddr, aPort := startBackend(t, "A")
	port := freePort(t)
	cfg := renderLB(t, base, port, 0, e2eMember{e2eMemberA, aAddr, aPort})
	if _, err := env.client.UploadHAProxyConfig(ctx, &agentv1.UploadHAProxyConfigRequest{LoadbalancerId: e2eLB,
		AmphoraId: testAmphoraID, Config: cfg, Generation: 1, Apply: true}); err != nil {
		t.Fatal(err)
	}
	waitServing(t, port)
	if _, err := env.agent.HeartbeatMessage(ctx, st); err != nil { // counters baseline
		t.Fatal(err)
	}
	hits(t, port, 3)

	msg, err = env.agent.HeartbeatMessage(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	l, ok := msg.Listeners[e2eListener]
	if !ok || l.Status != "OPEN" {
		t.Fatalf("listener in heartbeat: %+v", msg.Listeners)
	}
	if l.Stats.TotConns != 3 || l.Stats.RX == 0 || l.Stats.TX == 0 {
		t.Fatalf("listener counters must be the deltas of the 3 requests: %+v", l.Stats)
	}
	p, ok := msg.Pools[e2ePool+":"+e2eListener]
	if !ok || p.Status != "UP" || p.Members[e2eMemberA] == "" {
		t.Fatalf("pools in heartbeat: %+v", msg.Pools)
	}
	if msg.Seq != 2 {
		t.Fatalf("seq %d, want 2", msg.Seq)
	}

	// RunHeartbeats sends verified datagrams to the health manager.
	key := []byte("heartbeat-test-key")
	got := make(chan heartbeat.Heartbeat, 4)
	recv, err := heartbeat.NewReceiver(heartbeat.Config{Addr: "127.0.0.1:0", Key: key, Sink: func(_ context.Context, hb heartbeat.Heartbeat) error {
		got <- hb
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = recv.Run(rctx) }()
	go func() {
		_ = env.agent.RunHeartbeats(rctx, HeartbeatConfig{Targets: []string{recv.Addr().String()}, Key: key, Interval: 50 * time.Millisecond})
	}()
	select {
	case hb := <-got:
		if hb.Message.ID != testAmphoraID || len(hb.Message.Listeners) != 1 {
			t.Fatalf("received %+v", hb.Message)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat received")
	}

	// A configured but stopped keepalived silences the heartbeats (the
	// health manager then fails the amphora over), as in Octavia.
	if err := os.WriteFile(filepath.Join(base, "vrrp", "octavia-keepalived.conf"), []byte("# vrrp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	for len(got) > 0 {
		<-got
	}
	select {
	case hb := <-got:
		t.Fatalf("heartbeat sent while keepalived is down: %+v", hb.Message)
	case <-time.After(300 * time.Millisecond):
	}

	if err := env.agent.RunHeartbeats(ctx, HeartbeatConfig{Key: key}); err == nil {
		t.Fatal("RunHeartbeats without targets must fail")
	}
}
