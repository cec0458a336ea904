package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/ostia/ostia/internal/pki"
)

// Route is a subnet host route.
type Route struct {
	Destination netip.Prefix
	Nexthop     netip.Addr
}

// VIP is a VIP address with its subnet.
type VIP struct {
	Address netip.Addr
	Subnet  netip.Prefix
	// Gateway is invalid (zero) when the subnet has none.
	Gateway    netip.Addr
	HostRoutes []Route
}

// VIPPlug is what PlugVIP configures.
type VIPPlug struct {
	MAC        net.HardwareAddr
	MTU        int
	VRRPIP     netip.Addr
	Primary    VIP
	Additional []VIP
	// ManagedByKeepalived leaves the VIP addresses to keepalived.
	ManagedByKeepalived bool
	SRIOV               bool
}

// FixedIP is an address of a plugged member network port.
type FixedIP struct {
	Address    netip.Addr
	Subnet     netip.Prefix
	Gateway    netip.Addr
	HostRoutes []Route
}

// NetworkPlug is what PlugNetwork configures.
type NetworkPlug struct {
	MAC      net.HardwareAddr
	MTU      int
	FixedIPs []FixedIP
	SRIOV    bool
	// VIP is set when the port is the amphora's VRRP port.
	VIP *VIPPlug
}

// InterfaceInfo describes an interface of the amphora namespace.
type InterfaceInfo struct {
	Name      string
	MAC       string
	MTU       int
	Up        bool
	Addresses []string // CIDR notation
	RxBytes   uint64
	TxBytes   uint64
}

// NetPlumber configures the amphora's load-balancing interfaces.
// Implementations return errors wrapping errNotFound (no NIC with that MAC
// or no interface with that IP) and errExists (VIP NIC already plugged).
type NetPlumber interface {
	PlugVIP(ctx context.Context, p VIPPlug) (ifname string, err error)
	PlugNetwork(ctx context.Context, p NetworkPlug) (ifname string, updated bool, err error)
	InterfaceForIP(ctx context.Context, ip netip.Addr) (string, error)
	Interfaces(ctx context.Context) ([]InterfaceInfo, error)
}

// LinuxPlumber configures interfaces with the ip command. NICs attached by
// Nova appear in SourceNamespace (normally the root namespace, "") and are
// moved into Namespace (Octavia: amphora-haproxy), renamed eth1 (VIP) or
// eth2, eth3... (member networks). When both namespaces are equal the NIC
// keeps its name. VIP-sourced traffic is policy-routed through RouteTable.
type LinuxPlumber struct {
	Namespace       string
	SourceNamespace string
	// IPBin is the ip binary (default "ip").
	IPBin string
	// StateFile records "<mac> <ifname>" lines of plugged NICs (optional).
	StateFile string
	// VIPInterface is the name of the VIP NIC (default eth1).
	VIPInterface string
	// RouteTable is the policy routing table of VIP traffic (default 1).
	RouteTable int

	mu sync.Mutex
}

type ipLink struct {
	Ifname    string   `json:"ifname"`
	Address   string   `json:"address"`
	MTU       int      `json:"mtu"`
	Operstate string   `json:"operstate"`
	Flags     []string `json:"flags"`
	LinkType  string   `json:"link_type"`
	AddrInfo  []struct {
		Local     string `json:"local"`
		Prefixlen int    `json:"prefixlen"`
		Scope     string `json:"scope"`
	} `json:"addr_info"`
	Stats64 struct {
		Rx struct {
			Bytes uint64 `json:"bytes"`
		} `json:"rx"`
		Tx struct {
			Bytes uint64 `json:"bytes"`
		} `json:"tx"`
	} `json:"stats64"`
}

func (p *LinuxPlumber) ip(ctx context.Context, ns string, args ...string) ([]byte, error) {
	bin := p.IPBin
	if bin == "" {
		bin = "ip"
	}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (p *LinuxPlumber) links(ctx context.Context, ns string, detail ...string) ([]ipLink, error) {
	args := append([]string{"-json"}, detail...)
	out, err := p.ip(ctx, ns, args...)
	if err != nil {
		return nil, err
	}
	var links []ipLink
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("parse ip -json output: %w", err)
	}
	return links, nil
}

func findByMAC(links []ipLink, mac net.HardwareAddr) *ipLink {
	for i := range links {
		if strings.EqualFold(links[i].Address, mac.String()) {
			return &links[i]
		}
	}
	return nil
}

func (p *LinuxPlumber) vipIf() string {
	if p.VIPInterface != "" {
		return p.VIPInterface
	}
	return "eth1"
}

func (p *LinuxPlumber) table() string {
	if p.RouteTable > 0 {
		return strconv.Itoa(p.RouteTable)
	}
	return "1"
}

// attach finds the NIC with mac and moves it into the target namespace
// under name (when the namespaces differ). It returns the final name and
// whether the NIC was already in the target namespace.
func (p *LinuxPlumber) attach(ctx context.Context, mac net.HardwareAddr, name func([]ipLink) string) (string, bool, error) {
	target, err := p.links(ctx, p.Namespace, "link", "show")
	if err != nil {
		return "", false, err
	}
	if l := findByMAC(target, mac); l != nil && (p.Namespace != p.SourceNamespace || p.isRecorded(mac)) {
		return l.Ifname, true, nil
	}
	if p.Namespace == p.SourceNamespace {
		l := findByMAC(target, mac)
		if l == nil {
			return "", false, fmt.Errorf("%w: no network interface with MAC %s", errNotFound, mac)
		}
		return l.Ifname, false, nil
	}
	src, err := p.links(ctx, p.SourceNamespace, "link", "show")
	if err != nil {
		return "", false, err
	}
	l := findByMAC(src, mac)
	if l == nil {
		return "", false, fmt.Errorf("%w: no network interface with MAC %s", errNotFound, mac)
	}
	newName := name(target)
	if _, err := p.ip(ctx, p.SourceNamespace, "link", "set", "dev", l.Ifname, "down"); err != nil {
		return "", false, err
	}
	if p.Namespace == "" {
		return "", false, fmt.Errorf("moving NICs into the agent's own namespace is not supported")
	}
	if _, err := p.ip(ctx, p.SourceNamespace, "link", "set", "dev", l.Ifname, "netns", p.Namespace); err != nil {
		return "", false, err
	}
	if _, err := p.ip(ctx, p.Namespace, "link", "set", "dev", l.Ifname, "name", newName); err != nil {
		return "", false, err
	}
	return newName, false, nil
}

func (p *LinuxPlumber) isRecorded(mac net.HardwareAddr) bool {
	if p.StateFile == "" {
		return false
	}
	data, err := os.ReadFile(p.StateFile)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && strings.EqualFold(f[0], mac.String()) {
			return true
		}
	}
	return false
}

func (p *LinuxPlumber) record(mac net.HardwareAddr, ifname string) error {
	if p.StateFile == "" {
		return nil
	}
	var lines []string
	if data, err := os.ReadFile(p.StateFile); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if f := strings.Fields(line); len(f) == 2 && !strings.EqualFold(f[0], mac.String()) {
				lines = append(lines, line)
			}
		}
	}
	lines = append(lines, mac.String()+" "+ifname)
	return pki.WriteFileAtomic(p.StateFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

func (p *LinuxPlumber) linkUp(ctx context.Context, ifname string, mtu int) error {
	if mtu > 0 {
		if _, err := p.ip(ctx, p.Namespace, "link", "set", "dev", ifname, "mtu", strconv.Itoa(mtu)); err != nil {
			return err
		}
	}
	_, err := p.ip(ctx, p.Namespace, "link", "set", "dev", ifname, "up")
	return err
}

func hostBits(a netip.Addr) int {
	if a.Is4() {
		return 32
	}
	return 128
}

// configureVIP writes addresses, routes and policy rules of a VIP NIC.
func (p *LinuxPlumber) configureVIP(ctx context.Context, ifname string, v VIPPlug) error {
	ns := p.Namespace
	run := func(args ...string) error {
		_, err := p.ip(ctx, ns, args...)
		return err
	}
	if v.VRRPIP.IsValid() {
		pfx := netip.PrefixFrom(v.VRRPIP, v.Primary.Subnet.Bits())
		if err := run("addr", "replace", pfx.String(), "dev", ifname); err != nil {
			return err
		}
	}
	vips := append([]VIP{v.Primary}, v.Additional...)
	seen := map[netip.Prefix]bool{}
	for _, vip := range vips {
		// The first VIP of a subnet (the primary one first) is the source
		// of that subnet's route; additional VIPs in the same subnet only
		// get their policy rule.
		firstOfSubnet := !seen[vip.Subnet.Masked()]
		seen[vip.Subnet.Masked()] = true
		if !v.ManagedByKeepalived {
			if err := run("addr", "replace", netip.PrefixFrom(vip.Address, hostBits(vip.Address)).String(), "dev", ifname); err != nil {
				return err
			}
		}
		if vip.Gateway.IsValid() {
			if err := run("route", "replace", "default", "via", vip.Gateway.String(), "dev", ifname, "onlink"); err != nil {
				return err
			}
		}
		// A VIP keepalived manages is not on the interface yet, so no
		// route can use it as source; keepalived adds those routes
		// (virtual_routes) when it takes the VIP.
		srcRoute := firstOfSubnet && !v.ManagedByKeepalived
		if err := p.policyRouting(ctx, ifname, vip.Address, vip.Subnet, vip.Gateway, vip.HostRoutes, srcRoute); err != nil {
			return err
		}
	}
	return nil
}

func (p *LinuxPlumber) policyRouting(ctx context.Context, ifname string, src netip.Addr, subnet netip.Prefix, gw netip.Addr, routes []Route, subnetRoutes bool) error {
	ns, table := p.Namespace, p.table()
	run := func(args ...string) error {
		_, err := p.ip(ctx, ns, args...)
		return err
	}
	if !subnetRoutes {
		return p.rule(ctx, src)
	}
	if err := run("route", "replace", subnet.Masked().String(), "dev", ifname, "src", src.String(), "scope", "link", "table", table); err != nil {
		return err
	}
	if gw.IsValid() {
		if err := run("route", "replace", "default", "via", gw.String(), "dev", ifname, "onlink", "table", table); err != nil {
			return err
		}
	}
	for _, r := range routes {
		if err := run("route", "replace", r.Destination.Masked().String(), "via", r.Nexthop.String(), "dev", ifname, "onlink", "table", table); err != nil {
			return err
		}
		if err := run("route", "replace", r.Destination.Masked().String(), "via", r.Nexthop.String(), "dev", ifname, "onlink"); err != nil {
			return err
		}
	}
	return p.rule(ctx, src)
}

// rule routes traffic sourced from a VIP through the policy table.
func (p *LinuxPlumber) rule(ctx context.Context, src netip.Addr) error {
	from, table := netip.PrefixFrom(src, hostBits(src)).String(), p.table()
	// Replace the rule so repeated plugs stay idempotent.
	for i := 0; i < 16; i++ {
		if _, err := p.ip(ctx, p.Namespace, "rule", "del", "from", from, "table", table, "priority", "100"); err != nil {
			break
		}
	}
	_, err := p.ip(ctx, p.Namespace, "rule", "add", "from", from, "table", table, "priority", "100")
	return err
}

// PlugVIP implements NetPlumber.
func (p *LinuxPlumber) PlugVIP(ctx context.Context, v VIPPlug) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ifname, existed, err := p.attach(ctx, v.MAC, func([]ipLink) string { return p.vipIf() })
	if err != nil {
		return "", err
	}
	if existed {
		return ifname, fmt.Errorf("%w: interface %s with MAC %s is already plugged", errExists, ifname, v.MAC)
	}
	if err := p.linkUp(ctx, ifname, v.MTU); err != nil {
		return "", err
	}
	if err := p.configureVIP(ctx, ifname, v); err != nil {
		return "", err
	}
	return ifname, p.record(v.MAC, ifname)
}

// PlugNetwork implements NetPlumber.
func (p *LinuxPlumber) PlugNetwork(ctx context.Context, n NetworkPlug) (string, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ifname, existed, err := p.attach(ctx, n.MAC, nextEthName)
	if err != nil {
		return "", false, err
	}
	if existed {
		// Rewrite the interface: member subnets may have been added or removed.
		if _, err := p.ip(ctx, p.Namespace, "addr", "flush", "dev", ifname); err != nil {
			return "", false, err
		}
	}
	if err := p.linkUp(ctx, ifname, n.MTU); err != nil {
		return "", false, err
	}
	for _, f := range n.FixedIPs {
		if _, err := p.ip(ctx, p.Namespace, "addr", "replace", netip.PrefixFrom(f.Address, f.Subnet.Bits()).String(), "dev", ifname); err != nil {
			return "", false, err
		}
		for _, r := range f.HostRoutes {
			if _, err := p.ip(ctx, p.Namespace, "route", "replace", r.Destination.Masked().String(), "via", r.Nexthop.String(), "dev", ifname, "onlink"); err != nil {
				return "", false, err
			}
		}
	}
	if n.VIP != nil {
		if err := p.configureVIP(ctx, ifname, *n.VIP); err != nil {
			return "", false, err
		}
	}
	return ifname, existed, p.record(n.MAC, ifname)
}

// nextEthName picks the first free ethN with N >= 2.
func nextEthName(links []ipLink) string {
	used := map[string]bool{}
	for _, l := range links {
		used[l.Ifname] = true
	}
	for i := 2; ; i++ {
		if n := "eth" + strconv.Itoa(i); !used[n] {
			return n
		}
	}
}

// InterfaceForIP implements NetPlumber.
func (p *LinuxPlumber) InterfaceForIP(ctx context.Context, ip netip.Addr) (string, error) {
	links, err := p.links(ctx, p.Namespace, "addr", "show")
	if err != nil {
		return "", err
	}
	for _, l := range links {
		for _, a := range l.AddrInfo {
			if addr, err := netip.ParseAddr(a.Local); err == nil && addr.Unmap() == ip.Unmap() {
				return l.Ifname, nil
			}
		}
	}
	return "", fmt.Errorf("%w: no interface holds %s", errNotFound, ip)
}

// Interfaces implements NetPlumber.
func (p *LinuxPlumber) Interfaces(ctx context.Context) ([]InterfaceInfo, error) {
	stats, err := p.links(ctx, p.Namespace, "-s", "link", "show")
	if err != nil {
		return nil, err
	}
	addrs, err := p.links(ctx, p.Namespace, "addr", "show")
	if err != nil {
		return nil, err
	}
	byName := map[string][]string{}
	for _, l := range addrs {
		for _, a := range l.AddrInfo {
			byName[l.Ifname] = append(byName[l.Ifname], a.Local+"/"+strconv.Itoa(a.Prefixlen))
		}
	}
	out := make([]InterfaceInfo, 0, len(stats))
	for _, l := range stats {
		up := false
		for _, f := range l.Flags {
			if f == "UP" {
				up = true
			}
		}
		out = append(out, InterfaceInfo{
			Name: l.Ifname, MAC: l.Address, MTU: l.MTU, Up: up,
			Addresses: byName[l.Ifname], RxBytes: l.Stats64.Rx.Bytes, TxBytes: l.Stats64.Tx.Bytes,
		})
	}
	return out, nil
}

// RecordingPlumber is a NetPlumber that changes nothing on the host: it
// records the calls and simulates the resulting interfaces, for tests and
// development. Every MAC is assumed to exist unless listed in Missing.
type RecordingPlumber struct {
	mu      sync.Mutex
	Missing map[string]bool
	calls   []string
	ifaces  map[string]*InterfaceInfo // by MAC
}

// Calls returns the recorded calls.
func (r *RecordingPlumber) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *RecordingPlumber) iface(mac net.HardwareAddr, name func() string) (*InterfaceInfo, bool, error) {
	if r.Missing[mac.String()] {
		return nil, false, fmt.Errorf("%w: no network interface with MAC %s", errNotFound, mac)
	}
	if r.ifaces == nil {
		r.ifaces = map[string]*InterfaceInfo{}
	}
	if i, ok := r.ifaces[mac.String()]; ok {
		return i, true, nil
	}
	i := &InterfaceInfo{Name: name(), MAC: mac.String(), Up: true}
	r.ifaces[mac.String()] = i
	return i, false, nil
}

// PlugVIP implements NetPlumber.
func (r *RecordingPlumber) PlugVIP(_ context.Context, v VIPPlug) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("PlugVIP mac=%s vip=%s vrrp=%s", v.MAC, v.Primary.Address, v.VRRPIP))
	i, existed, err := r.iface(v.MAC, func() string { return "eth1" })
	if err != nil {
		return "", err
	}
	if existed {
		return i.Name, fmt.Errorf("%w: interface %s is already plugged", errExists, i.Name)
	}
	i.MTU = v.MTU
	if v.VRRPIP.IsValid() {
		i.Addresses = append(i.Addresses, netip.PrefixFrom(v.VRRPIP, v.Primary.Subnet.Bits()).String())
	}
	if !v.ManagedByKeepalived {
		for _, vip := range append([]VIP{v.Primary}, v.Additional...) {
			i.Addresses = append(i.Addresses, netip.PrefixFrom(vip.Address, hostBits(vip.Address)).String())
		}
	}
	return i.Name, nil
}

// PlugNetwork implements NetPlumber.
func (r *RecordingPlumber) PlugNetwork(_ context.Context, n NetworkPlug) (string, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("PlugNetwork mac=%s fixed_ips=%d", n.MAC, len(n.FixedIPs)))
	i, existed, err := r.iface(n.MAC, func() string {
		used := map[string]bool{}
		for _, x := range r.ifaces {
			used[x.Name] = true
		}
		for k := 2; ; k++ {
			if name := "eth" + strconv.Itoa(k); !used[name] {
				return name
			}
		}
	})
	if err != nil {
		return "", false, err
	}
	i.MTU = n.MTU
	i.Addresses = nil
	for _, f := range n.FixedIPs {
		i.Addresses = append(i.Addresses, netip.PrefixFrom(f.Address, f.Subnet.Bits()).String())
	}
	return i.Name, existed, nil
}

// InterfaceForIP implements NetPlumber.
func (r *RecordingPlumber) InterfaceForIP(_ context.Context, ip netip.Addr) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "InterfaceForIP "+ip.String())
	for _, i := range r.ifaces {
		for _, a := range i.Addresses {
			if pfx, err := netip.ParsePrefix(a); err == nil && pfx.Addr() == ip {
				return i.Name, nil
			}
		}
	}
	return "", fmt.Errorf("%w: no interface holds %s", errNotFound, ip)
}

// Interfaces implements NetPlumber.
func (r *RecordingPlumber) Interfaces(context.Context) ([]InterfaceInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]InterfaceInfo, 0, len(r.ifaces))
	for _, i := range r.ifaces {
		c := *i
		c.Addresses = append([]string(nil), i.Addresses...)
		out = append(out, c)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}
