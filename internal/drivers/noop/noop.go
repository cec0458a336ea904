// Package noop is an in-memory cloud implementing the saga ports
// (sagas/ports): compute, network, amphora agent and certificates. It is
// deterministic (sequential ids and addresses), safe for concurrent use,
// records every resource it ever made, and has failure-injection hooks:
// fail the Nth call of an operation, fail at random, delay a call, or fail
// after the side effect happened (the lost-reply case). Tests use it to
// check "no duplicated server or port" and "nothing left behind".
package noop

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ostia/ostia/sagas/ports"
	"github.com/ostia/ostia/sagas/saga"
)

// Operation names for faults and call counts: the port method names, plus
// OpBoot (a fault on it makes the next booted server end in ERROR).
const (
	OpCreateServer          = "CreateServer"
	OpFindServers           = "FindServers"
	OpGetServer             = "GetServer"
	OpDeleteServer          = "DeleteServer"
	OpCreateServerGroup     = "CreateServerGroup"
	OpFindServerGroups      = "FindServerGroups"
	OpDeleteServerGroup     = "DeleteServerGroup"
	OpCreatePort            = "CreatePort"
	OpFindPorts             = "FindPorts"
	OpGetPort               = "GetPort"
	OpDeletePort            = "DeletePort"
	OpPlugPort              = "PlugPort"
	OpUnplugPort            = "UnplugPort"
	OpSetAllowedPairs       = "SetAllowedAddressPairs"
	OpCreateSecurityGroup   = "CreateSecurityGroup"
	OpFindSecurityGroups    = "FindSecurityGroups"
	OpSetSecurityGroupRules = "SetSecurityGroupRules"
	OpSetPortSecurityGroups = "SetPortSecurityGroups"
	OpDeleteSecurityGroup   = "DeleteSecurityGroup"
	OpPlugVIP               = "PlugVIP"
	OpUploadConfig          = "UploadConfig"
	OpReloadListeners       = "ReloadListeners"
	OpUploadKeepalived      = "UploadKeepalived"
	OpStartKeepalived       = "StartKeepalived"
	OpIssueServerCert       = "IssueServerCert"
	OpGetSubnet             = "GetSubnet"
	OpPlugNetwork           = "PlugNetwork"
	OpUpdateServerCert      = "UpdateServerCertificate"
	OpUploadCertificate     = "UploadCertificate"
	OpBoot                  = "Boot"
)

// Resource kinds.
const (
	KindServer        = "server"
	KindPort          = "port"
	KindServerGroup   = "server_group"
	KindSecurityGroup = "security_group"
)

// Fault makes calls of one operation fail or hang.
type Fault struct {
	Op string
	// Call is the 1-based number of the call to hit (counted per
	// operation over the cloud's life); 0 hits every call.
	Call int
	// Count is how many calls from Call on are hit (default 1).
	Count int
	// Probability, when > 0, hits each call with this chance instead.
	Probability float64
	// Err is returned by a hit call; nil only delays.
	Err error
	// Delay waits this long (or until the call's context ends, which
	// returns the context's error).
	Delay time.Duration
	// After applies the fault after the call did its work: the side
	// effect happened but the caller sees a failure (or hangs).
	After bool
}

// Config configures a Cloud.
type Config struct {
	// BootPolls is how many GetServer calls see BUILD before ACTIVE
	// (default 0: ACTIVE at once, like Octavia's noop compute driver).
	BootPolls int
	// Seed seeds the random faults (default 1).
	Seed uint64
	// Now is the clock certificates expire by (default time.Now).
	Now func() time.Time
}

type server struct {
	ports.Server
	polls     int
	willFail  bool
	groupID   string
	createdAt int
}

type agentState struct {
	vip          *ports.VIPPlug
	generation   int64
	config       []byte
	reloads      int
	keepalived   []byte
	kaGeneration int64
	kaStarts     int
	networks     map[string]ports.NetworkPlug // by MAC
	certSerial   string
	certUpdates  int
	// files are the uploaded TLS files by "<lb_id>/<filename>";
	// configFiles is a copy of files taken when config was stored.
	files       map[string][]byte
	configFiles map[string][]byte
}

// Cloud is the in-memory cloud.
type Cloud struct {
	cfg Config

	mu      sync.Mutex
	rnd     *rand.Rand
	seq     int
	calls   map[string]int
	faults  []*Fault
	created map[string]map[string]int // kind -> name -> times created
	servers map[string]*server
	groups  map[string]ports.ServerGroup
	ports   map[string]*ports.Port
	sgs     map[string]*ports.SecurityGroup
	agents  map[string]*agentState
	certs   map[string]int
	issued  map[string]ports.Certificate // by serial
	subnets map[string]ports.Subnet
}

// New returns an empty cloud.
func New(cfg Config) *Cloud {
	if cfg.BootPolls < 0 {
		cfg.BootPolls = 0
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cloud{
		cfg: cfg, rnd: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		calls: map[string]int{}, created: map[string]map[string]int{},
		servers: map[string]*server{}, groups: map[string]ports.ServerGroup{}, ports: map[string]*ports.Port{},
		sgs: map[string]*ports.SecurityGroup{}, agents: map[string]*agentState{}, certs: map[string]int{},
		issued: map[string]ports.Certificate{}, subnets: map[string]ports.Subnet{},
	}
}

var (
	_ ports.Compute      = (*Cloud)(nil)
	_ ports.Network      = (*Cloud)(nil)
	_ ports.Agent        = (*Cloud)(nil)
	_ ports.Certificates = (*Cloud)(nil)
)

// Inject adds a fault.
func (c *Cloud) Inject(f Fault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.Count <= 0 {
		f.Count = 1
	}
	c.faults = append(c.faults, &f)
}

// ClearFaults removes every fault.
func (c *Cloud) ClearFaults() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = nil
}

// Calls returns how often op was called.
func (c *Cloud) Calls(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[op]
}

// AllCalls returns the call counts of every operation.
func (c *Cloud) AllCalls() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.calls)
}

// begin counts a call and returns the fault that hits it (before the lock
// is released).
func (c *Cloud) beginLocked(op string) *Fault {
	c.calls[op]++
	n := c.calls[op]
	for _, f := range c.faults {
		if f.Op != op {
			continue
		}
		switch {
		case f.Probability > 0:
			if c.rnd.Float64() < f.Probability {
				return f
			}
		case f.Call == 0, n >= f.Call && n < f.Call+f.Count:
			return f
		}
	}
	return nil
}

// hit applies a fault: waits, then returns its error.
func hit(ctx context.Context, op string, f *Fault) error {
	if f == nil {
		return nil
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("noop %s: %w", op, ctx.Err())
		case <-t.C:
		}
	}
	if f.Err != nil {
		return fmt.Errorf("noop %s (injected): %w", op, f.Err)
	}
	return nil
}

// call runs body under the lock with the operation's faults around it.
func (c *Cloud) call(ctx context.Context, op string, body func() error) error {
	if err := ctx.Err(); err != nil {
		return saga.Transient(fmt.Errorf("noop %s: %w", op, err))
	}
	c.mu.Lock()
	f := c.beginLocked(op)
	c.mu.Unlock()
	if f != nil && !f.After {
		if err := hit(ctx, op, f); err != nil {
			return err
		}
	}
	c.mu.Lock()
	err := body()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if f != nil && f.After {
		return hit(ctx, op, f)
	}
	return nil
}

func (c *Cloud) nextLocked() int {
	c.seq++
	return c.seq
}

func (c *Cloud) recordLocked(kind, name string) {
	if c.created[kind] == nil {
		c.created[kind] = map[string]int{}
	}
	c.created[kind][name]++
}

func notFound(kind, id string) error {
	return fmt.Errorf("noop: %s %s: %w", kind, id, ports.ErrNotFound)
}

func contains(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// CreateServer implements ports.Compute.
func (c *Cloud) CreateServer(ctx context.Context, spec ports.ServerSpec) (ports.Server, error) {
	var out ports.Server
	err := c.call(ctx, OpCreateServer, func() error {
		if spec.ServerGroupID != "" {
			if _, ok := c.groups[spec.ServerGroupID]; !ok {
				return saga.Permanent(notFound(KindServerGroup, spec.ServerGroupID))
			}
		}
		n := c.nextLocked()
		s := &server{Server: ports.Server{ID: fmt.Sprintf("server-%05d", n), Name: spec.Name, Status: ports.ServerBuild,
			Metadata: maps.Clone(spec.Metadata), ManagementIP: fmt.Sprintf("172.16.%d.%d", n/250, n%250+2),
			Zone: spec.Zone, ImageID: "image-" + spec.ImageTag, FlavorID: spec.FlavorID}, groupID: spec.ServerGroupID, createdAt: n}
		s.willFail = c.beginLocked(OpBoot) != nil
		c.servers[s.ID] = s
		c.recordLocked(KindServer, spec.Name)
		out = s.Server
		out.Metadata = maps.Clone(s.Metadata)
		return nil
	})
	return out, err
}

// FindServers implements ports.Compute.
func (c *Cloud) FindServers(ctx context.Context, name string, metadata map[string]string) ([]ports.Server, error) {
	var out []ports.Server
	err := c.call(ctx, OpFindServers, func() error {
		for _, s := range c.servers {
			if (name == "" || s.Name == name) && contains(s.Metadata, metadata) {
				v := s.Server
				v.Metadata = maps.Clone(s.Metadata)
				out = append(out, v)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return nil
	})
	return out, err
}

// GetServer implements ports.Compute: a server is BUILD for BootPolls
// calls, then ACTIVE (or ERROR when its boot was made to fail).
func (c *Cloud) GetServer(ctx context.Context, id string) (ports.Server, error) {
	var out ports.Server
	err := c.call(ctx, OpGetServer, func() error {
		s, ok := c.servers[id]
		if !ok {
			return notFound(KindServer, id)
		}
		if s.Status == ports.ServerBuild {
			s.polls++
			if s.polls > c.cfg.BootPolls {
				s.Status = ports.ServerActive
				if s.willFail {
					s.Status, s.Fault = ports.ServerError, "No valid host was found (injected)"
				}
			}
		}
		out = s.Server
		out.Metadata = maps.Clone(s.Metadata)
		return nil
	})
	return out, err
}

// DeleteServer implements ports.Compute; its ports are detached.
func (c *Cloud) DeleteServer(ctx context.Context, id string) error {
	return c.call(ctx, OpDeleteServer, func() error {
		if _, ok := c.servers[id]; !ok {
			return nil
		}
		delete(c.servers, id)
		for _, p := range c.ports {
			if p.DeviceID == id {
				p.DeviceID = ""
			}
		}
		return nil
	})
}

// CreateServerGroup implements ports.Compute.
func (c *Cloud) CreateServerGroup(ctx context.Context, name, policy string) (ports.ServerGroup, error) {
	var out ports.ServerGroup
	err := c.call(ctx, OpCreateServerGroup, func() error {
		out = ports.ServerGroup{ID: fmt.Sprintf("group-%05d", c.nextLocked()), Name: name, Policy: policy}
		c.groups[out.ID] = out
		c.recordLocked(KindServerGroup, name)
		return nil
	})
	return out, err
}

// FindServerGroups implements ports.Compute.
func (c *Cloud) FindServerGroups(ctx context.Context, name string) ([]ports.ServerGroup, error) {
	var out []ports.ServerGroup
	err := c.call(ctx, OpFindServerGroups, func() error {
		for _, g := range c.groups {
			if g.Name == name {
				out = append(out, g)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return nil
	})
	return out, err
}

// DeleteServerGroup implements ports.Compute.
func (c *Cloud) DeleteServerGroup(ctx context.Context, id string) error {
	return c.call(ctx, OpDeleteServerGroup, func() error {
		delete(c.groups, id)
		return nil
	})
}

// AddSubnet registers a subnet. A subnet never registered is made up on
// first use: its own network "net-of-<id>", 10.<n>.0.0/24, gateway .1.
func (c *Cloud) AddSubnet(sn ports.Subnet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subnets[sn.ID] = sn
}

// GetSubnet implements ports.Network.
func (c *Cloud) GetSubnet(ctx context.Context, id string) (ports.Subnet, error) {
	var out ports.Subnet
	err := c.call(ctx, OpGetSubnet, func() error {
		if id == "" {
			return notFound("subnet", id)
		}
		out = c.subnetLocked(id)
		return nil
	})
	return out, err
}

// subnetLocked returns a subnet, making it up on first sight (every subnet
// exists in the noop cloud).
func (c *Cloud) subnetLocked(id string) ports.Subnet {
	sn, ok := c.subnets[id]
	if !ok {
		n := len(c.subnets) + 1
		sn = ports.Subnet{ID: id, NetworkID: "net-of-" + id, CIDR: fmt.Sprintf("10.%d.0.0/24", 100+n%150),
			GatewayIP: fmt.Sprintf("10.%d.0.1", 100+n%150)}
		c.subnets[id] = sn
	}
	return sn
}

// CreatePort implements ports.Network. A port on a subnet belongs to the
// subnet's network, as in Neutron.
func (c *Cloud) CreatePort(ctx context.Context, spec ports.PortSpec) (ports.Port, error) {
	var out ports.Port
	err := c.call(ctx, OpCreatePort, func() error {
		n := c.nextLocked()
		ip := spec.FixedIP
		if ip == "" {
			ip = fmt.Sprintf("10.%d.%d.%d", n/62500, (n/250)%250, n%250+2)
		}
		p := &ports.Port{ID: fmt.Sprintf("port-%05d", n), Name: spec.Name, NetworkID: spec.NetworkID, SubnetID: spec.SubnetID,
			IP: ip, MAC: fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", (n>>16)&0xff, (n>>8)&0xff, n&0xff),
			Tags: maps.Clone(spec.Tags), AdminStateUp: spec.AdminStateUp, SubnetCIDR: "10.0.0.0/8", GatewayIP: "10.0.0.1", MTU: 1500}
		if sn, ok := c.subnets[spec.SubnetID]; ok {
			p.SubnetCIDR, p.GatewayIP = sn.CIDR, sn.GatewayIP
		}
		if p.NetworkID == "" && spec.SubnetID != "" {
			p.NetworkID = c.subnetLocked(spec.SubnetID).NetworkID
		}
		c.ports[p.ID] = p
		c.recordLocked(KindPort, spec.Name)
		out = clonePort(p)
		return nil
	})
	return out, err
}

func clonePort(p *ports.Port) ports.Port {
	v := *p
	v.Tags = maps.Clone(p.Tags)
	v.AllowedAddressPairs = slices.Clone(p.AllowedAddressPairs)
	v.SecurityGroupIDs = slices.Clone(p.SecurityGroupIDs)
	return v
}

// FindPorts implements ports.Network.
func (c *Cloud) FindPorts(ctx context.Context, name string, tags map[string]string) ([]ports.Port, error) {
	var out []ports.Port
	err := c.call(ctx, OpFindPorts, func() error {
		for _, p := range c.ports {
			if (name == "" || p.Name == name) && contains(p.Tags, tags) {
				out = append(out, clonePort(p))
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return nil
	})
	return out, err
}

// GetPort implements ports.Network.
func (c *Cloud) GetPort(ctx context.Context, id string) (ports.Port, error) {
	var out ports.Port
	err := c.call(ctx, OpGetPort, func() error {
		p, ok := c.ports[id]
		if !ok {
			return notFound(KindPort, id)
		}
		out = clonePort(p)
		return nil
	})
	return out, err
}

// DeletePort implements ports.Network.
func (c *Cloud) DeletePort(ctx context.Context, id string) error {
	return c.call(ctx, OpDeletePort, func() error {
		delete(c.ports, id)
		return nil
	})
}

// PlugPort implements ports.Network.
func (c *Cloud) PlugPort(ctx context.Context, serverID, portID string) error {
	return c.call(ctx, OpPlugPort, func() error {
		p, ok := c.ports[portID]
		if !ok {
			return saga.Permanent(notFound(KindPort, portID))
		}
		if _, ok := c.servers[serverID]; !ok {
			return saga.Permanent(notFound(KindServer, serverID))
		}
		if p.DeviceID != "" && p.DeviceID != serverID {
			return saga.Permanent(fmt.Errorf("noop: port %s is in use by %s", portID, p.DeviceID))
		}
		p.DeviceID = serverID
		return nil
	})
}

// UnplugPort implements ports.Network.
func (c *Cloud) UnplugPort(ctx context.Context, serverID, portID string) error {
	return c.call(ctx, OpUnplugPort, func() error {
		if p, ok := c.ports[portID]; ok && p.DeviceID == serverID {
			p.DeviceID = ""
		}
		return nil
	})
}

// SetAllowedAddressPairs implements ports.Network.
func (c *Cloud) SetAllowedAddressPairs(ctx context.Context, portID string, ips []string) error {
	return c.call(ctx, OpSetAllowedPairs, func() error {
		p, ok := c.ports[portID]
		if !ok {
			return saga.Permanent(notFound(KindPort, portID))
		}
		p.AllowedAddressPairs = slices.Clone(ips)
		return nil
	})
}

// CreateSecurityGroup implements ports.Network.
func (c *Cloud) CreateSecurityGroup(ctx context.Context, name string, tags map[string]string) (ports.SecurityGroup, error) {
	var out ports.SecurityGroup
	err := c.call(ctx, OpCreateSecurityGroup, func() error {
		g := &ports.SecurityGroup{ID: fmt.Sprintf("sg-%05d", c.nextLocked()), Name: name, Tags: maps.Clone(tags)}
		c.sgs[g.ID] = g
		c.recordLocked(KindSecurityGroup, name)
		out = *g
		return nil
	})
	return out, err
}

// FindSecurityGroups implements ports.Network.
func (c *Cloud) FindSecurityGroups(ctx context.Context, name string, tags map[string]string) ([]ports.SecurityGroup, error) {
	var out []ports.SecurityGroup
	err := c.call(ctx, OpFindSecurityGroups, func() error {
		for _, g := range c.sgs {
			if (name == "" || g.Name == name) && contains(g.Tags, tags) {
				v := *g
				v.Rules = slices.Clone(g.Rules)
				out = append(out, v)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return nil
	})
	return out, err
}

// SetSecurityGroupRules implements ports.Network.
func (c *Cloud) SetSecurityGroupRules(ctx context.Context, groupID string, rules []ports.Rule) error {
	return c.call(ctx, OpSetSecurityGroupRules, func() error {
		g, ok := c.sgs[groupID]
		if !ok {
			return saga.Permanent(notFound(KindSecurityGroup, groupID))
		}
		g.Rules = slices.Clone(rules)
		return nil
	})
}

// SetPortSecurityGroups implements ports.Network.
func (c *Cloud) SetPortSecurityGroups(ctx context.Context, portID string, groupIDs []string) error {
	return c.call(ctx, OpSetPortSecurityGroups, func() error {
		p, ok := c.ports[portID]
		if !ok {
			return saga.Permanent(notFound(KindPort, portID))
		}
		p.SecurityGroupIDs = slices.Clone(groupIDs)
		return nil
	})
}

// DeleteSecurityGroup implements ports.Network; it fails while a port uses
// the group, as Neutron does.
func (c *Cloud) DeleteSecurityGroup(ctx context.Context, id string) error {
	return c.call(ctx, OpDeleteSecurityGroup, func() error {
		for _, p := range c.ports {
			if slices.Contains(p.SecurityGroupIDs, id) {
				return saga.Transient(fmt.Errorf("noop: security group %s in use by port %s", id, p.ID))
			}
		}
		delete(c.sgs, id)
		return nil
	})
}

func (c *Cloud) agentLocked(amp ports.Amphora) (*agentState, error) {
	s, ok := c.servers[amp.ComputeID]
	if !ok || s.Status != ports.ServerActive {
		return nil, saga.Transient(fmt.Errorf("noop: amphora %s (server %s) is not reachable", amp.ID, amp.ComputeID))
	}
	a := c.agents[amp.ID]
	if a == nil {
		a = &agentState{}
		c.agents[amp.ID] = a
	}
	return a, nil
}

// PlugVIP implements ports.Agent.
func (c *Cloud) PlugVIP(ctx context.Context, amp ports.Amphora, plug ports.VIPPlug) error {
	return c.call(ctx, OpPlugVIP, func() error {
		a, err := c.agentLocked(amp)
		if err != nil {
			return err
		}
		p := plug
		a.vip = &p
		return nil
	})
}

// UploadConfig implements ports.Agent; an older generation is ignored.
func (c *Cloud) UploadConfig(ctx context.Context, amp ports.Amphora, lbID string, generation int64, config []byte) error {
	return c.call(ctx, OpUploadConfig, func() error {
		a, err := c.agentLocked(amp)
		if err != nil {
			return err
		}
		if generation >= a.generation {
			a.generation, a.config = generation, slices.Clone(config)
			a.configFiles = maps.Clone(a.files)
		}
		return nil
	})
}

// ReloadListeners implements ports.Agent.
func (c *Cloud) ReloadListeners(ctx context.Context, amp ports.Amphora, lbID string) error {
	return c.call(ctx, OpReloadListeners, func() error {
		a, err := c.agentLocked(amp)
		if err != nil {
			return err
		}
		a.reloads++
		return nil
	})
}

// UploadKeepalived implements ports.Agent.
func (c *Cloud) UploadKeepalived(ctx context.Context, amp ports.Amphora, generation int64, config []byte) error {
	return c.call(ctx, OpUploadKeepalived, func() error {
		a, err := c.agentLocked(amp)
		if err != nil {
			return err
		}
		if generation >= a.kaGeneration {
			a.kaGeneration, a.keepalived = generation, slices.Clone(config)
		}
		return nil
	})
}

// StartKeepalived implements ports.Agent.
func (c *Cloud) StartKeepalived(ctx context.Context, amp ports.Amphora) error {
	return c.call(ctx, OpStartKeepalived, func() error {
		a, err := c.agentLocked(amp)
		if err != nil {
			return err
		}
		a.kaStarts++
		return nil
	})
}

// PlugNetwork implements ports.Agent: the port with that MAC must be
// plugged into the amphora's server, as a NIC Nova attached.
func (c *Cloud) PlugNetwork(ctx context.Context, amp ports.Amphora, plug ports.NetworkPlug) error {
	return c.call(ctx, OpPlugNetwork, func() error {
		a, err := c.agentLocked(amp)
		if err != nil {
			return err
		}
		attached := false
		for _, p := range c.ports {
			if p.MAC == plug.MAC && p.DeviceID == amp.ComputeID {
				attached = true
				break
			}
		}
		if !attached {
			return saga.Transient(fmt.Errorf("noop: amphora %s has no NIC with MAC %s: %w", amp.ID, plug.MAC, ports.ErrNotFound))
		}
		if a.networks == nil {
			a.networks = map[string]ports.NetworkPlug{}
		}
		v := plug
		v.FixedIPs = slices.Clone(plug.FixedIPs)
		a.networks[plug.MAC] = v
		return nil
	})
}

// UpdateServerCertificate implements ports.Agent: pem must be one this
// cloud issued for the amphora, not expired.
func (c *Cloud) UpdateServerCertificate(ctx context.Context, amp ports.Amphora, pem []byte) error {
	return c.call(ctx, OpUpdateServerCert, func() error {
		a, err := c.agentLocked(amp)
		if err != nil {
			return err
		}
		for serial, cert := range c.issued {
			if string(cert.PEM) != string(pem) {
				continue
			}
			if !strings.Contains(string(pem), "CN="+amp.ID+"\n") {
				return saga.Permanent(fmt.Errorf("noop: certificate %s does not name amphora %s", serial, amp.ID))
			}
			if !cert.ExpiresAt.After(c.cfg.Now()) {
				return saga.Permanent(fmt.Errorf("noop: certificate %s has expired", serial))
			}
			a.certSerial = serial
			a.certUpdates++
			return nil
		}
		return saga.Permanent(fmt.Errorf("noop: amphora %s: not a certificate of this cloud", amp.ID))
	})
}

// UploadCertificate implements ports.Agent: the file is kept by load
// balancer and name (see AgentView.Files).
func (c *Cloud) UploadCertificate(ctx context.Context, amp ports.Amphora, lbID, filename string, pem []byte) error {
	return c.call(ctx, OpUploadCertificate, func() error {
		a, err := c.agentLocked(amp)
		if err != nil {
			return err
		}
		if lbID == "" || !strings.HasSuffix(filename, ".pem") || strings.ContainsAny(filename, "/\\") || len(pem) == 0 {
			return saga.Permanent(fmt.Errorf("noop: amphora %s: invalid certificate upload %q (%d bytes) for %q",
				amp.ID, filename, len(pem), lbID))
		}
		if a.files == nil {
			a.files = map[string][]byte{}
		}
		a.files[lbID+"/"+filename] = slices.Clone(pem)
		return nil
	})
}

// IssueServerCert implements ports.Certificates: valid from now for
// validity (default 2 years).
func (c *Cloud) IssueServerCert(ctx context.Context, amphoraID string, validity time.Duration) (ports.Certificate, error) {
	var out ports.Certificate
	err := c.call(ctx, OpIssueServerCert, func() error {
		if validity <= 0 {
			validity = 2 * 365 * 24 * time.Hour
		}
		c.certs[amphoraID]++
		serial := fmt.Sprintf("%s-%d", amphoraID, c.certs[amphoraID])
		out = ports.Certificate{Serial: serial,
			PEM:       []byte("-----BEGIN CERTIFICATE-----\nCN=" + amphoraID + "\nserial=" + serial + "\n-----END CERTIFICATE-----\n"),
			ExpiresAt: c.cfg.Now().Add(validity).UTC().Truncate(time.Second)}
		c.issued[serial] = out
		return nil
	})
	return out, err
}

// AgentView is what one amphora's agent was told.
type AgentView struct {
	VIP               *ports.VIPPlug
	Generation        int64
	Config            []byte
	Reloads           int
	Keepalived        []byte
	KeepalivedStarted int
	// Networks are the member-network interfaces, by MAC.
	Networks map[string]ports.NetworkPlug
	// CertSerial is the serial of the certificate pushed last (empty: the
	// one from the config drive); CertUpdates counts the pushes.
	CertSerial  string
	CertUpdates int
	// Files are the uploaded TLS files by "<lb_id>/<filename>";
	// ConfigFiles are the files the agent held when it stored Config.
	Files       map[string][]byte
	ConfigFiles map[string][]byte
}

// Agent returns what the agent of an amphora holds.
func (c *Cloud) Agent(amphoraID string) (AgentView, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.agents[amphoraID]
	if !ok {
		return AgentView{}, false
	}
	return AgentView{VIP: a.vip, Generation: a.generation, Config: slices.Clone(a.config), Reloads: a.reloads,
		Keepalived: slices.Clone(a.keepalived), KeepalivedStarted: a.kaStarts, Networks: maps.Clone(a.networks),
		CertSerial: a.certSerial, CertUpdates: a.certUpdates, Files: maps.Clone(a.files),
		ConfigFiles: maps.Clone(a.configFiles)}, true
}

// Servers returns the live servers.
func (c *Cloud) Servers() []ports.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ports.Server, 0, len(c.servers))
	for _, s := range c.servers {
		v := s.Server
		v.Metadata = maps.Clone(s.Metadata)
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Ports returns the live ports.
func (c *Cloud) Ports() []ports.Port {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ports.Port, 0, len(c.ports))
	for _, p := range c.ports {
		out = append(out, clonePort(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ServerGroupOf returns the server group a server was booted in.
func (c *Cloud) ServerGroupOf(serverID string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.servers[serverID]; ok {
		return s.groupID
	}
	return ""
}

// Created returns how many resources of a kind were ever created under
// each name.
func (c *Cloud) Created(kind string) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.created[kind])
}

// Duplicates lists names under which more than one resource of a kind was
// created over the cloud's life ("kind name xN").
func (c *Cloud) Duplicates() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for kind, names := range c.created {
		for name, n := range names {
			if n > 1 {
				out = append(out, fmt.Sprintf("%s %s x%d", kind, name, n))
			}
		}
	}
	sort.Strings(out)
	return out
}

// Live describes every resource still present, optionally only those whose
// name contains filter.
func (c *Cloud) Live(filter string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	add := func(kind, id, name string) {
		if filter == "" || strings.Contains(name, filter) {
			out = append(out, kind+" "+id+" "+name)
		}
	}
	for _, s := range c.servers {
		add(KindServer, s.ID, s.Name)
	}
	for _, p := range c.ports {
		add(KindPort, p.ID, p.Name)
	}
	for _, g := range c.groups {
		add(KindServerGroup, g.ID, g.Name)
	}
	for _, g := range c.sgs {
		add(KindSecurityGroup, g.ID, g.Name)
	}
	sort.Strings(out)
	return out
}
