package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ostia/ostia/internal/heartbeat"
)

// HeartbeatConfig configures the heartbeat sender, the counterpart of
// Octavia's amphora health sender ([health_manager] controller_ip_port_list,
// heartbeat_key, heartbeat_interval).
type HeartbeatConfig struct {
	// Targets are the health managers' UDP host:port addresses. Every
	// interval one datagram goes to the next target (round robin).
	Targets []string
	// Key is the HMAC-SHA256 key shared with the health managers.
	Key []byte
	// Interval between heartbeats (default 10 s).
	Interval time.Duration
}

// counters are the last absolute values seen per listener, for the
// version 3 deltas.
type counters struct{ rx, tx, totConns, eReq uint64 }

// HeartbeatState is the sender's memory between messages: the sequence
// number and the last counters of every listener.
type HeartbeatState struct {
	mu   sync.Mutex
	seq  uint64
	last map[string]counters
}

func delta(cur, last uint64) uint64 {
	if cur < last { // haproxy restarted: counters start again
		return cur
	}
	return cur - last
}

// RunHeartbeats sends a version 3 heartbeat every interval until ctx ends.
// As Octavia's sender does, it skips a heartbeat while a keepalived
// configuration exists but keepalived is not running, so a dead VRRP
// leads to a failover.
func (a *Agent) RunHeartbeats(ctx context.Context, cfg HeartbeatConfig) error {
	if len(cfg.Targets) == 0 {
		return errors.New("agent: heartbeat: no targets")
	}
	if len(cfg.Key) == 0 {
		return errors.New("agent: heartbeat: empty key")
	}
	if a.cfg.AmphoraID == "" {
		return errors.New("agent: heartbeat: the amphora id is not configured")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	codec, err := heartbeat.NewCodec(cfg.Key, 0)
	if err != nil {
		return fmt.Errorf("agent: heartbeat: %w", err)
	}
	st := NewHeartbeatState()
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for i := 0; ; i++ {
		target := cfg.Targets[i%len(cfg.Targets)]
		if err := a.sendHeartbeat(ctx, codec, st, target); err != nil && ctx.Err() == nil {
			a.log.WarnContext(ctx, "heartbeat not sent", "target", target, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (a *Agent) sendHeartbeat(ctx context.Context, codec *heartbeat.Codec, st *HeartbeatState, target string) error {
	if _, err := os.Stat(a.vrrp.confPath()); err == nil && !a.keepalivedRunning() {
		return errors.New("keepalived is configured but not running")
	}
	msg, err := a.HeartbeatMessage(ctx, st)
	if err != nil {
		return err
	}
	packet, err := codec.Encode(msg)
	if err != nil {
		return err
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := d.DialContext(dctx, "udp", target)
	if err != nil {
		return fmt.Errorf("dial %s: %w", target, err)
	}
	defer conn.Close()
	if _, err := conn.Write(packet); err != nil {
		return fmt.Errorf("send to %s: %w", target, err)
	}
	return nil
}

// HeartbeatMessage builds the next heartbeat from the stats sockets of the
// running load balancers: one listener per haproxy frontend, one pool per
// backend ("<pool_id>:<listener_id>") with its servers' statuses.
func (a *Agent) HeartbeatMessage(ctx context.Context, st *HeartbeatState) (heartbeat.Message, error) {
	msg := heartbeat.Message{ID: a.cfg.AmphoraID, Version: heartbeat.Version3,
		Listeners: map[string]heartbeat.Listener{}, Pools: map[string]heartbeat.Pool{}}
	ids, err := a.listLBIDs()
	if err != nil {
		return msg, err
	}
	type cur struct {
		status string
		c      counters
		conns  uint64
	}
	listeners := map[string]cur{}
	for _, id := range ids {
		lb, err := a.lockLB(ctx, id)
		if err != nil {
			return msg, err
		}
		running, sock := lb.running(), a.statsSocketPath(lb)
		lb.mu.Unlock()
		if !running {
			continue
		}
		rows, err := ShowStat(ctx, sock)
		if err != nil {
			return msg, fmt.Errorf("stats of load balancer %s: %w", id, err)
		}
		for _, r := range rows {
			if strings.Contains(r.ProxyName, "prometheus") {
				continue
			}
			switch r.Type {
			case 0:
				listeners[r.ProxyName] = cur{status: r.Fields["status"], conns: r.Uint("scur"),
					c: counters{rx: r.Uint("bin"), tx: r.Uint("bout"), totConns: r.Uint("stot"), eReq: r.Uint("ereq")}}
			case 1:
				p := msg.Pools[r.ProxyName]
				p.Status = r.Fields["status"]
				if p.Members == nil {
					p.Members = map[string]string{}
				}
				msg.Pools[r.ProxyName] = p
			case 2:
				p := msg.Pools[r.ProxyName]
				if p.Members == nil {
					p.Members = map[string]string{}
				}
				p.Members[r.ServiceName] = r.Fields["status"]
				msg.Pools[r.ProxyName] = p
			}
		}
	}
	for k, p := range msg.Pools {
		if p.Status == "" {
			p.Status = "DOWN"
			msg.Pools[k] = p
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, l := range listeners {
		last := st.last[id]
		status := l.status
		if status == "" {
			status = "OPEN"
		}
		msg.Listeners[id] = heartbeat.Listener{Status: status, Stats: heartbeat.Stats{
			RX: delta(l.c.rx, last.rx), TX: delta(l.c.tx, last.tx), Conns: l.conns,
			TotConns: delta(l.c.totConns, last.totConns), EReq: delta(l.c.eReq, last.eReq)}}
		st.last[id] = l.c
	}
	msg.Seq = st.seq
	st.seq++
	return msg, nil
}

// NewHeartbeatState returns the memory of a heartbeat sequence (sequence
// number and last counters), for HeartbeatMessage.
func NewHeartbeatState() *HeartbeatState { return &HeartbeatState{last: map[string]counters{}} }
