package lbflows

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ostia/ostia/aggregates/amphora"
	"github.com/ostia/ostia/aggregates/loadbalancer"
	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
	"github.com/ostia/ostia/templates"
)

// Renderer renders the configuration files the flows push to amphorae.
// Rendering is pure: the same input gives the same bytes, so a re-run of a
// step pushes exactly what the first run pushed.
type Renderer interface {
	// HAProxy renders the haproxy.cfg of one amphora of a load balancer.
	HAProxy(ctx context.Context, in HAProxyInput) ([]byte, error)
	// Keepalived renders the VRRP configuration of one amphora of an
	// ACTIVE_STANDBY load balancer.
	Keepalived(ctx context.Context, in KeepalivedInput) ([]byte, error)
}

// HAProxyInput is what haproxy.cfg is rendered from.
type HAProxyInput struct {
	// LB is the load balancer's current state (objects being deleted are
	// left out by the templates).
	LB *loadbalancer.State
	// Amphora is the amphora the file is for.
	Amphora Amp
	// Amphorae are all amphorae the configuration goes to; in
	// ACTIVE_STANDBY those with a VRRP address are the haproxy peers.
	Amphorae []Amp
}

// KeepalivedInput is what the VRRP configuration is rendered from.
type KeepalivedInput struct {
	LB       *loadbalancer.State
	Amphora  Amp
	Amphorae []Amp
	// VIP is the VIP with its subnet (from the VIP port).
	VIP VIPNetwork
}

// VIPNetwork is a VIP address with its subnet.
type VIPNetwork struct {
	Address    string
	SubnetCIDR string
	Gateway    string
}

// RenderConfig configures a TemplateRenderer.
type RenderConfig struct {
	// Settings are the octavia.conf options of haproxy.cfg (zero fields:
	// Octavia's defaults).
	Settings templates.Settings
	// Keepalived are the [keepalived_vrrp] options (zero fields: Octavia's
	// defaults).
	Keepalived templates.KeepalivedSettings
	// ForAmphora, when set, adjusts the settings for one amphora (the local
	// driver gives every amphora its own base directory).
	ForAmphora func(amp Amp, s *templates.Settings, k *templates.KeepalivedSettings)
	// VRRPAuthKey keys the derivation of a load balancer's VRRP password
	// (HMAC-SHA256 of the load-balancer id). Octavia stores 7 random
	// characters per VRRP group instead; deriving them keeps the sagas
	// free of secret state. Empty: a plain SHA-256 of the id.
	VRRPAuthKey []byte
}

// TemplateRenderer renders with the templates package (Octavia's haproxy
// and keepalived templates). It is safe for concurrent use.
type TemplateRenderer struct {
	cfg RenderConfig
	t   *templates.Renderer
}

var _ Renderer = (*TemplateRenderer)(nil)

// NewTemplateRenderer parses the templates.
func NewTemplateRenderer(cfg RenderConfig) (*TemplateRenderer, error) {
	t, err := templates.New()
	if err != nil {
		return nil, fmt.Errorf("lbflows: %w", err)
	}
	cfg.VRRPAuthKey = slices.Clone(cfg.VRRPAuthKey)
	return &TemplateRenderer{cfg: cfg, t: t}, nil
}

func (r *TemplateRenderer) settingsFor(amp Amp) (templates.Settings, templates.KeepalivedSettings) {
	s, k := r.cfg.Settings, r.cfg.Keepalived
	if r.cfg.ForAmphora != nil {
		r.cfg.ForAmphora(amp, &s, &k)
	}
	return s, k
}

func live(status string) bool {
	return status != loadbalancer.StatusDeleted
}

func keep[M interface{ GetProvisioningStatus() string }](in []M) []M {
	out := make([]M, 0, len(in))
	for _, m := range in {
		if live(m.GetProvisioningStatus()) {
			out = append(out, m)
		}
	}
	return out
}

// sortedAmps returns the amphorae ordered by id, for deterministic output.
func sortedAmps(amps []Amp) []Amp {
	out := slices.Clone(amps)
	slices.SortFunc(out, func(a, b Amp) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// HAProxy implements Renderer.
func (r *TemplateRenderer) HAProxy(_ context.Context, in HAProxyInput) ([]byte, error) {
	if in.LB == nil {
		return nil, errors.New("lbflows: render haproxy: no load balancer")
	}
	snap := in.LB.Snapshot()
	if snap == nil || snap.GetLoadbalancer() == nil {
		return nil, fmt.Errorf("lbflows: render haproxy: load balancer %s has no state", in.LB.ID())
	}
	s, _ := r.settingsFor(in.Amphora)
	cfg := templates.LoadBalancerConfig{
		LoadBalancer:   snap.GetLoadbalancer(),
		Listeners:      keep(snap.GetListeners()),
		Pools:          keep(snap.GetPools()),
		Members:        keep(snap.GetMembers()),
		HealthMonitors: keep(snap.GetHealthMonitors()),
		L7Policies:     keep(snap.GetL7Policies()),
		L7Rules:        keep(snap.GetL7Rules()),
		Amphora:        ampRecord(in.Amphora),
		Settings:       s,
	}
	if snap.GetLoadbalancer().GetTopology() == TopologyActiveStandby {
		// The amphorae are not ALLOCATED yet while a create or failover
		// flow configures them, so the peers come from the flow's list.
		cfg.Peers = []templates.Peer{}
		for _, a := range sortedAmps(in.Amphorae) {
			if a.VrrpIP != "" {
				cfg.Peers = append(cfg.Peers, templates.Peer{Name: templates.PeerName(a.ID), Address: a.VrrpIP})
			}
		}
	}
	text, err := r.t.RenderHAProxy(cfg)
	if err != nil {
		return nil, fmt.Errorf("lbflows: render haproxy for amphora %s: %w", in.Amphora.ID, err)
	}
	return []byte(text), nil
}

// ampRecord is the view of an amphora the templates read.
func ampRecord(a Amp) *eventsv1.Amphora {
	rec := &eventsv1.Amphora{Id: a.ID, Role: a.Role, VrrpIp: a.VrrpIP, ComputeId: a.ComputeID,
		LbNetworkIp: a.ManagementIP, Status: amphora.StatusAllocated, VrrpId: 1}
	if p := priorityOf(a.Role); p > 0 {
		rec.VrrpPriority = p
	}
	return rec
}

// Keepalived implements Renderer.
func (r *TemplateRenderer) Keepalived(_ context.Context, in KeepalivedInput) ([]byte, error) {
	if in.LB == nil || in.LB.LoadBalancer() == nil {
		return nil, errors.New("lbflows: render keepalived: no load balancer")
	}
	lb := in.LB.LoadBalancer()
	_, k := r.settingsFor(in.Amphora)
	vip := in.VIP
	if vip.Address == "" {
		vip.Address = lb.GetVipAddress()
	}
	cfg := templates.KeepalivedConfig{
		LoadBalancer: lb,
		Amphora:      ampRecord(in.Amphora),
		VIP:          templates.VIPNetwork{Address: vip.Address, SubnetCIDR: vip.SubnetCIDR, Gateway: vip.Gateway},
		AuthPass:     r.vrrpPassword(lb.GetId()),
		Settings:     k,
	}
	for _, a := range sortedAmps(in.Amphorae) {
		if a.VrrpIP != "" {
			cfg.Amphorae = append(cfg.Amphorae, ampRecord(a))
		}
	}
	for _, av := range lb.GetAdditionalVips() {
		cfg.AdditionalVIPs = append(cfg.AdditionalVIPs, templates.VIPNetwork{Address: av.GetIpAddress()})
	}
	text, err := r.t.RenderKeepalived(cfg)
	if err != nil {
		return nil, fmt.Errorf("lbflows: render keepalived for amphora %s: %w", in.Amphora.ID, err)
	}
	return []byte(text), nil
}

// vrrpPassword is the VRRP PASS authentication of a load balancer's VRRP
// group: 7 hex characters (Octavia uses 7 random characters), the same on
// every amphora and across re-runs.
func (r *TemplateRenderer) vrrpPassword(lbID string) string {
	var sum []byte
	if len(r.cfg.VRRPAuthKey) > 0 {
		m := hmac.New(sha256.New, r.cfg.VRRPAuthKey)
		m.Write([]byte(lbID))
		sum = m.Sum(nil)
	} else {
		s := sha256.Sum256([]byte("ostia-vrrp:" + lbID))
		sum = s[:]
	}
	return hex.EncodeToString(sum)[:7]
}

// generationEpochMillis is the origin of the time part of configuration
// generations: 2025-01-01T00:00:00Z in Unix milliseconds.
const generationEpochMillis = 1735689600000

// generationTimeBits is the width of the time part of a generation.
const generationTimeBits = 40

// ConfigGeneration is the generation of a configuration rendered from
// load-balancer stream version lbVersion at time at: the version in the
// high bits, milliseconds since 2025 in the low 40 bits (34 years). A
// configuration rendered from an older version is always older, so the
// agent ignores it when it arrives late; among renders of one version the
// later one wins. The time part is needed because a failover changes what
// is rendered (the haproxy peers) without a new load-balancer event, and
// the agent refuses a different configuration under a generation it
// already stored.
func ConfigGeneration(lbVersion int64, at time.Time) int64 {
	ms := at.UnixMilli() - generationEpochMillis
	if ms < 0 {
		ms = 0
	}
	ms &= 1<<generationTimeBits - 1
	return lbVersion<<generationTimeBits | ms
}

// GenerationVersion returns the load-balancer version of a generation made
// by ConfigGeneration.
func GenerationVersion(generation int64) int64 { return generation >> generationTimeBits }
