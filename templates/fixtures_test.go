package templates

import (
	"fmt"

	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// Deterministic ids for fixtures: kind prefix + sequence number.
func id(kind, n int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012d", kind, n) }

const (
	kLB = 0xaaaa0000 + iota
	kListener
	kPool
	kMember
	kMonitor
	kPolicy
	kRule
	kAmphora
)

var (
	lbID       = id(kLB, 1)
	projectID  = "5f2c7f4a9c2e4d0e8a1b6c3d2e1f0a9b"
	listenerID = id(kListener, 1)
	poolID     = id(kPool, 1)
)

func ptr[T any](v T) *T { return &v }

func newLB() *eventsv1.LoadBalancer {
	return &eventsv1.LoadBalancer{
		Id:                 lbID,
		ProjectId:          projectID,
		AdminStateUp:       true,
		ProvisioningStatus: "ACTIVE",
		VipAddress:         "203.0.113.10",
		Topology:           TopologySingle,
	}
}

func newListener(n int, protocol string, port int32) *eventsv1.Listener {
	return &eventsv1.Listener{
		Id:                 id(kListener, n),
		LoadbalancerId:     lbID,
		ProjectId:          projectID,
		AdminStateUp:       true,
		ProvisioningStatus: "ACTIVE",
		Protocol:           protocol,
		ProtocolPort:       port,
		ConnectionLimit:    -1,
		InsertHeaders:      map[string]string{},
	}
}

func newPool(n int, protocol, algorithm string) *eventsv1.Pool {
	return &eventsv1.Pool{
		Id:                 id(kPool, n),
		LoadbalancerId:     lbID,
		ProjectId:          projectID,
		AdminStateUp:       true,
		ProvisioningStatus: "ACTIVE",
		Protocol:           protocol,
		LbAlgorithm:        algorithm,
	}
}

func newMember(n int, pool *eventsv1.Pool, addr string, port int32) *eventsv1.Member {
	return &eventsv1.Member{
		Id:                 id(kMember, n),
		PoolId:             pool.GetId(),
		ProjectId:          projectID,
		AdminStateUp:       true,
		ProvisioningStatus: "ACTIVE",
		Address:            addr,
		ProtocolPort:       port,
		Weight:             1,
	}
}

func newMonitor(n int, pool *eventsv1.Pool, typ string) *eventsv1.HealthMonitor {
	hm := &eventsv1.HealthMonitor{
		Id:                 id(kMonitor, n),
		PoolId:             pool.GetId(),
		ProjectId:          projectID,
		AdminStateUp:       true,
		ProvisioningStatus: "ACTIVE",
		Type:               typ,
		Delay:              5,
		Timeout:            3,
		MaxRetries:         2,
		MaxRetriesDown:     3,
	}
	if typ == MonitorHTTP || typ == MonitorHTTPS {
		hm.HttpMethod = ptr("GET")
		hm.UrlPath = ptr("/")
		hm.ExpectedCodes = ptr("200")
	}
	return hm
}

func newPolicy(n int, l *eventsv1.Listener, action string, position int32) *eventsv1.L7Policy {
	return &eventsv1.L7Policy{
		Id:                 id(kPolicy, n),
		ListenerId:         l.GetId(),
		ProjectId:          projectID,
		AdminStateUp:       true,
		ProvisioningStatus: "ACTIVE",
		Action:             action,
		Position:           position,
	}
}

func newRule(n int, p *eventsv1.L7Policy, typ, compare, value string) *eventsv1.L7Rule {
	return &eventsv1.L7Rule{
		Id:                 id(kRule, n),
		L7PolicyId:         p.GetId(),
		ProjectId:          projectID,
		AdminStateUp:       true,
		ProvisioningStatus: "ACTIVE",
		Type:               typ,
		CompareType:        compare,
		Value:              value,
	}
}

func newAmphora(n int, role, vrrpIP string, priority int32) *eventsv1.Amphora {
	return &eventsv1.Amphora{
		Id:             id(kAmphora, n),
		LoadbalancerId: lbID,
		Status:         "ALLOCATED",
		Role:           role,
		VrrpIp:         vrrpIP,
		HaIp:           "203.0.113.10",
		VrrpInterface:  "eth1",
		VrrpId:         1,
		VrrpPriority:   priority,
	}
}

// simple returns a config with one listener, its default pool and members.
func simple(protocol, poolProtocol, algorithm string, port int32) (LoadBalancerConfig, *eventsv1.Listener, *eventsv1.Pool) {
	l := newListener(1, protocol, port)
	p := newPool(1, poolProtocol, algorithm)
	l.DefaultPoolId = ptr(p.GetId())
	cfg := LoadBalancerConfig{
		LoadBalancer: newLB(),
		Listeners:    []*eventsv1.Listener{l},
		Pools:        []*eventsv1.Pool{p},
		Members: []*eventsv1.Member{
			newMember(1, p, "192.0.2.11", 8080),
			newMember(2, p, "192.0.2.12", 8080),
		},
	}
	return cfg, l, p
}

// l7Config returns an HTTP listener with a default pool and a second pool
// for REDIRECT_TO_POOL policies.
func l7Config() (LoadBalancerConfig, *eventsv1.Listener, *eventsv1.Pool) {
	cfg, l, _ := simple(ProtocolHTTP, ProtocolHTTP, AlgorithmRoundRobin, 80)
	p2 := newPool(2, ProtocolHTTP, AlgorithmRoundRobin)
	cfg.Pools = append(cfg.Pools, p2)
	cfg.Members = append(cfg.Members, newMember(3, p2, "192.0.2.21", 8080))
	return cfg, l, p2
}

// ruleCase builds one REDIRECT_TO_POOL policy per compare type for a rule
// type, each with a plain and an inverted rule.
func ruleCase(ruleType, key string, values map[string]string) LoadBalancerConfig {
	cfg, l, p2 := l7Config()
	compares := []string{CompareEqualTo, CompareStartsWith, CompareEndsWith, CompareContains, CompareRegex}
	n := 0
	for i, c := range compares {
		v, ok := values[c]
		if !ok {
			continue
		}
		pol := newPolicy(i+1, l, ActionRedirectToPool, int32(i+1))
		pol.RedirectPoolId = ptr(p2.GetId())
		cfg.L7Policies = append(cfg.L7Policies, pol)
		for _, invert := range []bool{false, true} {
			n++
			r := newRule(n, pol, ruleType, c, v)
			if key != "" {
				r.Key = ptr(key)
			}
			r.Invert = invert
			cfg.L7Rules = append(cfg.L7Rules, r)
		}
	}
	return cfg
}
