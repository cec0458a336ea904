package e2e

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ostia/ostia/internal/heartbeat"
)

// amphoraHeartbeat is what a test reports for one amphora, the way the
// amphora agent's health sender does (Octavia heartbeat, version 3).
type amphoraHeartbeat struct {
	amphoraID, listenerID, poolID string
	members                       []string
	stats                         heartbeat.Stats
}

// sendHeartbeats sends the heartbeat to the health manager until the
// load-balancer statistics (read through rest) show its byte counters, then
// returns. Stats in version 3 are deltas: each resend adds them again, so
// the check is "at least".
func sendHeartbeats(t *testing.T, o *ostia, rest *restClient, lbID string, hb amphoraHeartbeat) {
	t.Helper()
	conn, err := net.Dial("udp", o.HealthAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	members := map[string]string{}
	for _, m := range hb.members {
		members[m] = "UP"
	}
	deadline := time.Now().Add(30 * time.Second)
	for seq := uint64(1); ; seq++ {
		msg := heartbeat.Message{ID: hb.amphoraID, Seq: seq, Version: heartbeat.Version3,
			Listeners: map[string]heartbeat.Listener{hb.listenerID: {Status: "OPEN", Stats: hb.stats}},
			Pools:     map[string]heartbeat.Pool{hb.poolID + ":" + hb.listenerID: {Status: "UP", Members: members}},
		}
		pkt, err := heartbeat.Encode(msg, []byte(o.HeartbeatKey))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(pkt); err != nil {
			t.Fatal(err)
		}
		var body struct {
			Stats struct {
				BytesIn int64 `json:"bytes_in"`
			} `json:"stats"`
		}
		for i := 0; i < 20; i++ {
			time.Sleep(100 * time.Millisecond)
			code, err := rest.do(context.Background(), "GET", "/v2/lbaas/loadbalancers/"+lbID+"/stats", nil, &body)
			if err == nil && code == http.StatusOK && body.Stats.BytesIn >= int64(hb.stats.RX) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the statistics of load balancer %s never showed the heartbeat of amphora %s", lbID, hb.amphoraID)
		}
	}
}
