package templates

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	eventsv1 "github.com/ostia/ostia/proto/ostia/events/v1"
)

// The view model of haproxy.cfg. Every field holds final directive text or
// values; the template only lays them out.
type haproxyView struct {
	LoadBalancerID string
	Global         globalView
	Log            bool
	Peers          *peersView
	Prometheus     bool
	Frontends      []frontendView
	Backends       []backendView
}

type globalView struct {
	User            string
	Group           string
	Logs            []string
	StatsSocket     string
	StatsLevel      string
	ServerStateFile string
	MaxConn         int64
	SSLCacheSize    int64
	NbThread        int
	ExternalCheck   bool
	InsecureFork    bool
}

type peersView struct {
	Name  string
	Peers []Peer
}

type aclView struct {
	Name      string
	Criterion string
}

type frontendView struct {
	Name           string
	MaxConn        int64
	RedirectHTTPS  bool
	HSTS           string
	Binds          []string
	Mode           string
	AllowedCIDRs   string
	ACLs           []aclView
	Actions        []string
	DefaultBackend string
	TimeoutClient  int64
	InspectDelay   int64
	LogFormat      string
}

type serverView struct {
	Name    string
	Address string
	Options string
}

type backendView struct {
	Name           string
	Mode           string
	HTTPReuse      bool
	Balance        string
	Persistence    []string
	HealthCheck    []string
	Headers        []string
	FullConn       int64
	TimeoutConnect int64
	TimeoutServer  int64
	Servers        []serverView
}

// haproxyVersion is a parsed major.minor version.
type haproxyVersion struct{ major, minor int }

func parseHAProxyVersion(v string) (haproxyVersion, error) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return haproxyVersion{}, fmt.Errorf("templates: haproxy version %q is not major.minor", v)
	}
	major, err1 := strconv.Atoi(parts[0])
	minorDigits := parts[1]
	if i := strings.IndexFunc(minorDigits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minorDigits = minorDigits[:i]
	}
	minor, err2 := strconv.Atoi(minorDigits)
	if err1 != nil || err2 != nil {
		return haproxyVersion{}, fmt.Errorf("templates: haproxy version %q is not major.minor", v)
	}
	return haproxyVersion{major, minor}, nil
}

func (v haproxyVersion) atLeast(major, minor int) bool {
	return v.major > major || (v.major == major && v.minor >= minor)
}

// features are the version dependent capabilities of the amphora's haproxy.
type features struct {
	httpReuse    bool // >= 1.6
	serverState  bool // >= 1.6
	poolALPN     bool // >= 1.9
	prometheus   bool // >= 2.0
	insecureFork bool // >= 2.2
}

func featuresOf(v haproxyVersion) features {
	return features{
		httpReuse:    v.atLeast(1, 6),
		serverState:  v.atLeast(1, 6),
		poolALPN:     v.atLeast(1, 9),
		prometheus:   v.atLeast(2, 0),
		insecureFork: v.atLeast(2, 2),
	}
}

// index groups the input objects by their parents, dropping objects that are
// being deleted.
type index struct {
	pools    map[string]*eventsv1.Pool
	members  map[string][]*eventsv1.Member
	monitors map[string]*eventsv1.HealthMonitor
	policies map[string][]*eventsv1.L7Policy
	rules    map[string][]*eventsv1.L7Rule
}

func newIndex(cfg *LoadBalancerConfig) index {
	ix := index{
		pools:    map[string]*eventsv1.Pool{},
		members:  map[string][]*eventsv1.Member{},
		monitors: map[string]*eventsv1.HealthMonitor{},
		policies: map[string][]*eventsv1.L7Policy{},
		rules:    map[string][]*eventsv1.L7Rule{},
	}
	for _, p := range cfg.Pools {
		if p != nil && p.GetProvisioningStatus() != statusPendingDelete {
			ix.pools[p.GetId()] = p
		}
	}
	for _, m := range cfg.Members {
		if m != nil && m.GetProvisioningStatus() != statusPendingDelete {
			ix.members[m.GetPoolId()] = append(ix.members[m.GetPoolId()], m)
		}
	}
	for _, h := range cfg.HealthMonitors {
		if h != nil && h.GetProvisioningStatus() != statusPendingDelete {
			ix.monitors[h.GetPoolId()] = h
		}
	}
	for _, p := range cfg.L7Policies {
		if p != nil && p.GetProvisioningStatus() != statusPendingDelete {
			ix.policies[p.GetListenerId()] = append(ix.policies[p.GetListenerId()], p)
		}
	}
	for id := range ix.policies {
		ps := ix.policies[id]
		sort.SliceStable(ps, func(i, j int) bool {
			if ps[i].GetPosition() != ps[j].GetPosition() {
				return ps[i].GetPosition() < ps[j].GetPosition()
			}
			return ps[i].GetId() < ps[j].GetId()
		})
	}
	for _, r := range cfg.L7Rules {
		if r != nil && r.GetProvisioningStatus() != statusPendingDelete && r.GetAdminStateUp() {
			ix.rules[r.GetL7PolicyId()] = append(ix.rules[r.GetL7PolicyId()], r)
		}
	}
	return ix
}

// enabledPool returns the pool with that id when it exists and is enabled.
func (ix index) enabledPool(id string) *eventsv1.Pool {
	p := ix.pools[id]
	if p == nil || !p.GetAdminStateUp() {
		return nil
	}
	return p
}

// enabledMonitor returns the pool's monitor when it is enabled.
func (ix index) enabledMonitor(poolID string) *eventsv1.HealthMonitor {
	h := ix.monitors[poolID]
	if h == nil || !h.GetAdminStateUp() {
		return nil
	}
	return h
}

// listenerMode maps a listener protocol to the haproxy mode.
func listenerMode(protocol string) string {
	switch protocol {
	case ProtocolHTTP, ProtocolTerminatedHTTPS, ProtocolPrometheus:
		return "http"
	default:
		return "tcp"
	}
}

// poolMode maps a pool protocol to the haproxy mode of its backend.
func poolMode(pool *eventsv1.Pool, listener *eventsv1.Listener) string {
	switch pool.GetProtocol() {
	case ProtocolHTTP:
		return "http"
	case ProtocolProxy, ProtocolProxyV2:
		return listenerMode(listener.GetProtocol())
	default:
		return "tcp"
	}
}

func balanceOf(algorithm string) string {
	switch algorithm {
	case AlgorithmLeastConnections:
		return "leastconn"
	case AlgorithmSourceIP:
		return "source"
	default:
		return "roundrobin"
	}
}

func verifyOf(clientAuth string) string {
	switch clientAuth {
	case "OPTIONAL":
		return "optional"
	case "MANDATORY":
		return "required"
	default:
		return "none"
	}
}

// isHAProxyProtocol tells whether a listener protocol is served by haproxy.
func isHAProxyProtocol(protocol string) bool {
	switch protocol {
	case ProtocolTCP, ProtocolHTTP, ProtocolHTTPS, ProtocolTerminatedHTTPS, ProtocolPrometheus:
		return true
	}
	return false
}

// terminatesTLS tells whether haproxy terminates TLS for the listener.
func terminatesTLS(l *eventsv1.Listener) bool {
	switch l.GetProtocol() {
	case ProtocolTerminatedHTTPS:
		return true
	case ProtocolPrometheus:
		return l.DefaultTlsContainerRef != nil
	}
	return false
}

var cipherString = regexp.MustCompile(`^[A-Za-z0-9_+!@=.:-]+$`)

// ciphersOf validates a cipher string; invalid ones fall back to def.
func ciphersOf(ciphers *string, def string) string {
	if ciphers == nil {
		return ""
	}
	if !cipherString.MatchString(*ciphers) {
		return def
	}
	return *ciphers
}

// tlsVersionFlags returns haproxy's no-* flags for every TLS version not in
// the allowed list (nothing when the list is empty).
func tlsVersionFlags(allowed []string) string {
	if len(allowed) == 0 {
		return ""
	}
	on := map[string]bool{}
	for _, v := range allowed {
		on[v] = true
	}
	all := []struct{ version, flag string }{
		{"SSLv3", "no-sslv3"}, {"TLSv1", "no-tlsv10"}, {"TLSv1.1", "no-tlsv11"},
		{"TLSv1.2", "no-tlsv12"}, {"TLSv1.3", "no-tlsv13"},
	}
	var flags []string
	for _, v := range all {
		if !on[v.version] {
			flags = append(flags, v.flag)
		}
	}
	return strings.Join(flags, " ")
}

// expandExpectedCodes turns "200-204" or "200, 202" into a list of codes.
func expandExpectedCodes(codes string) []string {
	var out []string
	for _, part := range strings.Split(codes, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if lo, hi, ok := strings.Cut(part, "-"); ok {
			a, err1 := strconv.Atoi(strings.TrimSpace(lo))
			b, err2 := strconv.Atoi(strings.TrimSpace(hi))
			if err1 == nil && err2 == nil && a <= b && b-a < 1000 {
				for c := a; c <= b; c++ {
					out = append(out, strconv.Itoa(c))
				}
				continue
			}
		}
		out = append(out, part)
	}
	return out
}

// escapeValue makes an L7 rule value one haproxy argument: backslashes are
// doubled and spaces, quotes and hashes are escaped.
func escapeValue(v string) string {
	var b strings.Builder
	for _, r := range v {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case ' ', '"', '\'', '#':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// usableRedirect tells whether a redirect URL or prefix can be written:
// like Octavia, URLs with control characters (or, here, whitespace) are
// dropped together with their policy.
func usableRedirect(u *string) bool {
	return u != nil && *u != "" && word("redirect", *u) == nil
}

// headerEnabled reads an insert_headers flag ("true", case-insensitively).
func headerEnabled(l *eventsv1.Listener, name string) bool {
	for k, v := range l.GetInsertHeaders() {
		if strings.EqualFold(k, name) {
			return strings.EqualFold(strings.TrimSpace(v), "true")
		}
	}
	return false
}

// hostPort joins an address and a port the way Octavia's templates do:
// IPv6 addresses are written plainly, haproxy splits at the last colon.
func hostPort(addr string, port int32) string {
	return addr + ":" + strconv.Itoa(int(port))
}

// haproxyBuilder turns a LoadBalancerConfig into the haproxy view.
type haproxyBuilder struct {
	cfg   *LoadBalancerConfig
	lb    *eventsv1.LoadBalancer
	s     Settings
	feat  features
	ix    index
	peers *peersView
}

func buildHAProxyView(cfg LoadBalancerConfig) (*haproxyView, error) {
	if cfg.LoadBalancer == nil {
		return nil, errors.New("templates: LoadBalancer is required")
	}
	if cfg.LoadBalancer.GetId() == "" {
		return nil, errors.New("templates: load balancer id is empty")
	}
	s := cfg.Settings.withDefaults()
	ver, err := parseHAProxyVersion(s.HAProxyVersion)
	if err != nil {
		return nil, err
	}
	if err := cfg.validate(s); err != nil {
		return nil, err
	}
	b := &haproxyBuilder{cfg: &cfg, lb: cfg.LoadBalancer, s: s, feat: featuresOf(ver), ix: newIndex(&cfg)}
	b.peers = b.buildPeers()

	listeners := b.haproxyListeners()
	v := &haproxyView{
		LoadBalancerID: b.lb.GetId(),
		Log:            !s.DisableConnectionLogging,
		Peers:          b.peers,
	}
	var maxconn int64
	for _, l := range listeners {
		maxconn += b.connectionLimit(l)
	}
	maxGlobal := int64(MaxGlobalConnections)
	if s.MaxGlobalConnections > 0 {
		maxGlobal = s.MaxGlobalConnections
	}
	if maxconn <= 0 || maxconn >= maxGlobal {
		maxconn = maxGlobal
	}
	if b.lb.GetAdminStateUp() {
		for _, l := range listeners {
			if l.GetProtocol() == ProtocolPrometheus {
				v.Prometheus = true
			}
			fe, err := b.frontend(l)
			if err != nil {
				return nil, err
			}
			v.Frontends = append(v.Frontends, fe)
			for _, pool := range b.listenerPools(l) {
				v.Backends = append(v.Backends, b.backend(l, pool))
			}
		}
	}
	v.Global = b.global(maxconn, v)
	return v, nil
}

// haproxyListeners are the enabled TCP-family listeners, ordered by port.
func (b *haproxyBuilder) haproxyListeners() []*eventsv1.Listener {
	var out []*eventsv1.Listener
	for _, l := range b.cfg.Listeners {
		if l == nil || !l.GetAdminStateUp() || l.GetProvisioningStatus() == statusPendingDelete {
			continue
		}
		if !isHAProxyProtocol(l.GetProtocol()) {
			continue
		}
		if l.GetProtocol() == ProtocolPrometheus && !b.feat.prometheus {
			continue
		}
		out = append(out, l)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].GetProtocolPort() != out[j].GetProtocolPort() {
			return out[i].GetProtocolPort() < out[j].GetProtocolPort()
		}
		return out[i].GetId() < out[j].GetId()
	})
	return out
}

func (b *haproxyBuilder) connectionLimit(l *eventsv1.Listener) int64 {
	if l.GetConnectionLimit() > 0 {
		return l.GetConnectionLimit()
	}
	return b.s.DefaultConnectionLimit
}

func orDefault(v, def int64) int64 {
	if v > 0 {
		return v
	}
	return def
}

func (b *haproxyBuilder) buildPeers() *peersView {
	if b.lb.GetTopology() != TopologyActiveStandby {
		return nil
	}
	peers := b.cfg.Peers
	if peers == nil {
		for _, a := range b.cfg.Amphorae {
			if a == nil || a.GetStatus() != statusAllocated || a.GetVrrpIp() == "" {
				continue
			}
			peers = append(peers, Peer{Name: PeerName(a.GetId()), Address: a.GetVrrpIp(), Port: b.s.PeerPort})
		}
	}
	if len(peers) == 0 {
		return nil
	}
	out := make([]Peer, len(peers))
	for i, p := range peers {
		if p.Port <= 0 {
			p.Port = b.s.PeerPort
		}
		out[i] = p
	}
	return &peersView{Name: PeersSectionName(b.lb.GetId()), Peers: out}
}

func (b *haproxyBuilder) global(maxconn int64, v *haproxyView) globalView {
	s := b.s
	g := globalView{
		User:  s.User,
		Group: s.Group,
		Logs: []string{
			s.LogSocket + " " + s.UserLogFacility,
			s.LogSocket + " " + s.AdminLogFacility + " notice",
		},
		StatsSocket: s.StatsSocketPath,
		StatsLevel:  s.StatsSocketLevel,
		MaxConn:     maxconn,
	}
	if g.StatsSocket == "" {
		g.StatsSocket = s.BasePath + "/" + b.lb.GetId() + ".sock"
	}
	if b.feat.serverState {
		g.ServerStateFile = s.ServerStateFile
		if g.ServerStateFile == "" {
			g.ServerStateFile = s.BasePath + "/" + b.lb.GetId() + "/servers-state"
		}
	}
	if d := b.cfg.Details; d != nil {
		if d.CPUCount > 1 && strings.Contains(d.ActiveTunedProfiles, "amphora") {
			g.NbThread = d.CPUCount - 1
		}
		terminated := false
		for _, fe := range v.Frontends {
			if fe.RedirectHTTPS {
				terminated = true
			}
		}
		if terminated {
			// Keep 32 KiB per connection for buffers, give 2/5 of what is
			// left to the session cache, about 4 sessions per KiB.
			avail := d.MemFree + d.MemBuffers + d.MemCached - 32*maxconn
			if size := avail * 2 / 5 * 4; size > 5000 {
				g.SSLCacheSize = size
			}
		}
	}
	for _, be := range v.Backends {
		for _, line := range be.HealthCheck {
			if line == "option external-check" {
				g.ExternalCheck = true
			}
		}
	}
	g.InsecureFork = g.ExternalCheck && b.feat.insecureFork
	return g
}

// tlsPath resolves the file of a secret ref.
func (b *haproxyBuilder) secretPath(ref string) string {
	if p, ok := b.cfg.Certs.Secrets[ref]; ok {
		return p
	}
	return SecretPath(b.s, b.lb.GetId(), ref)
}

func (b *haproxyBuilder) frontend(l *eventsv1.Listener) (frontendView, error) {
	fe := frontendView{
		Name:          l.GetId(),
		MaxConn:       b.connectionLimit(l),
		Mode:          listenerMode(l.GetProtocol()),
		TimeoutClient: orDefault(l.GetTimeoutClientData(), b.s.TimeoutClientData),
		InspectDelay:  orDefault(l.GetTimeoutTcpInspect(), b.s.TimeoutTCPInspect),
	}
	if l.GetProtocol() == ProtocolTerminatedHTTPS {
		fe.RedirectHTTPS = true
		if l.HstsMaxAge != nil {
			hsts := fmt.Sprintf("max-age=%d;", l.GetHstsMaxAge())
			if l.GetHstsIncludeSubdomains() {
				hsts += " includeSubDomains;"
			}
			if l.GetHstsPreload() {
				hsts += " preload;"
			}
			fe.HSTS = hsts
		}
	}

	bindOpts := ""
	if terminatesTLS(l) && l.DefaultTlsContainerRef != nil {
		crtList, ok := b.cfg.Certs.CrtLists[l.GetId()]
		if !ok {
			crtList = CrtListPath(b.s, b.lb.GetId(), l.GetId())
		}
		opts := []string{"ssl", "crt-list", crtList}
		if l.ClientCaTlsContainerRef != nil && l.GetClientAuthentication() != "" {
			opts = append(opts, "ca-file", b.secretPath(l.GetClientCaTlsContainerRef()),
				"verify", verifyOf(l.GetClientAuthentication()))
			if l.ClientCrlContainerRef != nil {
				opts = append(opts, "crl-file", b.secretPath(l.GetClientCrlContainerRef()))
			}
		}
		if c := ciphersOf(l.TlsCiphers, b.s.DefaultListenerCiphers); c != "" {
			opts = append(opts, "ciphers", c)
		}
		if f := tlsVersionFlags(l.GetTlsVersions()); f != "" {
			opts = append(opts, f)
		}
		if len(l.GetAlpnProtocols()) > 0 {
			opts = append(opts, "alpn", strings.Join(l.GetAlpnProtocols(), ","))
		}
		bindOpts = " " + strings.Join(opts, " ")
	}
	addrs := []string{b.lb.GetVipAddress()}
	for _, av := range b.lb.GetAdditionalVips() {
		if av.GetIpAddress() != "" {
			addrs = append(addrs, av.GetIpAddress())
		}
	}
	for _, a := range addrs {
		if a == "" {
			return fe, fmt.Errorf("templates: load balancer %s has no VIP address", b.lb.GetId())
		}
		fe.Binds = append(fe.Binds, hostPort(a, l.GetProtocolPort())+bindOpts)
	}

	if !b.s.SkipAllowedCIDRs && len(l.GetAllowedCidrs()) > 0 {
		fe.AllowedCIDRs = strings.Join(l.GetAllowedCidrs(), " ")
	}

	b.l7(l, &fe)

	if l.GetProtocol() == ProtocolPrometheus {
		fe.DefaultBackend = PrometheusInternalBackend
	} else if l.DefaultPoolId != nil {
		if p := b.ix.enabledPool(l.GetDefaultPoolId()); p != nil {
			fe.DefaultBackend = BackendName(p.GetId(), l.GetId())
		}
	}
	if !b.s.DisableConnectionLogging {
		fe.LogFormat = b.logFormat(fe.Mode == "http")
	}
	return fe, nil
}

func (b *haproxyBuilder) logFormat(httpMode bool) string {
	f := b.s.UserLogFormat
	f = strings.ReplaceAll(f, "{{ project_id }}", b.lb.GetProjectId())
	f = strings.ReplaceAll(f, "{{ lb_id }}", b.lb.GetId())
	if !httpMode {
		for _, tok := range []string{"%{+Q}r", "%r", "%{+Q}ST", "%ST"} {
			f = strings.ReplaceAll(f, tok, "-")
		}
	}
	return strings.ReplaceAll(f, " ", `\ `)
}

// compareFlag maps an L7 compare type to an haproxy match flag.
func compareFlag(ruleType, compare string) string {
	switch compare {
	case CompareRegex:
		return "-m reg"
	case CompareStartsWith:
		return "-m beg"
	case CompareEndsWith:
		return "-m end"
	case CompareContains:
		return "-m sub"
	case CompareEqualTo:
		if ruleType == RuleFileType {
			return ""
		}
		return "-m str"
	}
	return ""
}

// aclCriterion is what follows `acl <rule_id>` for a rule.
func aclCriterion(r *eventsv1.L7Rule) (string, bool) {
	flag := compareFlag(r.GetType(), r.GetCompareType())
	value := escapeValue(r.GetValue())
	var fetch string
	switch r.GetType() {
	case RuleHostName:
		fetch = "req.hdr(host) -i"
	case RulePath:
		fetch = "path"
	case RuleFileType:
		fetch = "path_end"
	case RuleHeader:
		fetch = "req.hdr(" + r.GetKey() + ")"
	case RuleCookie:
		fetch = "req.cook(" + r.GetKey() + ")"
	case RuleSSLConnHasCert:
		return "ssl_c_used", true
	case RuleSSLVerifyResult:
		return "ssl_c_verify eq " + value, true
	case RuleSSLDNField:
		fetch = "ssl_c_s_dn(" + r.GetKey() + ")"
	default:
		return "", false
	}
	parts := []string{fetch}
	if flag != "" {
		parts = append(parts, flag)
	}
	if strings.HasPrefix(value, "-") {
		// haproxy would read the pattern as an ACL flag.
		parts = append(parts, "--")
	}
	parts = append(parts, value)
	return strings.Join(parts, " "), true
}

// l7 renders the enabled L7 policies of a listener: every ACL first, then
// the actions in the order haproxy evaluates them (http-request deny, then
// redirects, then use_backend), each kind in position order.
func (b *haproxyBuilder) l7(l *eventsv1.Listener, fe *frontendView) {
	var denies, redirects, uses []string
	for _, p := range b.ix.policies[l.GetId()] {
		if !p.GetAdminStateUp() {
			continue
		}
		rules := b.ix.rules[p.GetId()]
		var acls []aclView
		var conds []string
		for _, r := range rules {
			crit, ok := aclCriterion(r)
			if !ok {
				continue
			}
			acls = append(acls, aclView{Name: r.GetId(), Criterion: crit})
			if r.GetInvert() {
				conds = append(conds, "!"+r.GetId())
			} else {
				conds = append(conds, r.GetId())
			}
		}
		if len(acls) == 0 {
			continue
		}
		cond := " if " + strings.Join(conds, " ")
		code := ""
		if p.RedirectHttpCode != nil {
			code = "code " + strconv.Itoa(int(p.GetRedirectHttpCode())) + " "
		}
		var action string
		switch p.GetAction() {
		case ActionReject:
			action = "http-request deny" + cond
			denies = append(denies, action)
		case ActionRedirectToURL:
			if !usableRedirect(p.RedirectUrl) {
				continue
			}
			action = "redirect " + code + "location " + p.GetRedirectUrl() + cond
			redirects = append(redirects, action)
		case ActionRedirectPrefix:
			if !usableRedirect(p.RedirectPrefix) {
				continue
			}
			action = "redirect " + code + "prefix " + p.GetRedirectPrefix() + cond
			redirects = append(redirects, action)
		case ActionRedirectToPool:
			pool := b.ix.enabledPool(p.GetRedirectPoolId())
			if pool == nil {
				continue
			}
			action = "use_backend " + BackendName(pool.GetId(), l.GetId()) + cond
			uses = append(uses, action)
		default:
			continue
		}
		fe.ACLs = append(fe.ACLs, acls...)
	}
	fe.Actions = append(append(denies, redirects...), uses...)
}

// listenerPools are the enabled pools a listener uses: its default pool and
// the pools its REDIRECT_TO_POOL policies point at.
func (b *haproxyBuilder) listenerPools(l *eventsv1.Listener) []*eventsv1.Pool {
	if l.GetProtocol() == ProtocolPrometheus {
		return nil
	}
	seen := map[string]bool{}
	var out []*eventsv1.Pool
	add := func(id string) {
		if seen[id] {
			return
		}
		if p := b.ix.enabledPool(id); p != nil {
			seen[id] = true
			out = append(out, p)
		}
	}
	if l.DefaultPoolId != nil {
		add(l.GetDefaultPoolId())
	}
	for _, p := range b.ix.policies[l.GetId()] {
		if p.GetAction() == ActionRedirectToPool && p.RedirectPoolId != nil {
			add(p.GetRedirectPoolId())
		}
	}
	return out
}

func (b *haproxyBuilder) backend(l *eventsv1.Listener, pool *eventsv1.Pool) backendView {
	mode := poolMode(pool, l)
	proxy := pool.GetProtocol() == ProtocolProxy || pool.GetProtocol() == ProtocolProxyV2
	be := backendView{
		Name:           BackendName(pool.GetId(), l.GetId()),
		Mode:           mode,
		HTTPReuse:      b.feat.httpReuse && (pool.GetProtocol() == ProtocolHTTP || (proxy && mode == "http")),
		Balance:        balanceOf(pool.GetLbAlgorithm()),
		FullConn:       b.connectionLimit(l),
		TimeoutConnect: orDefault(l.GetTimeoutMemberConnect(), b.s.TimeoutMemberConnect),
		TimeoutServer:  orDefault(l.GetTimeoutMemberData(), b.s.TimeoutMemberData),
	}

	peers := ""
	if b.peers != nil {
		peers = " peers " + b.peers.Name
	}
	sp := pool.GetSessionPersistence()
	switch sp.GetType() {
	case PersistenceSourceIP:
		be.Persistence = []string{
			"stick-table type ipv6 size " + b.s.StickSize + peers,
			"stick on src",
		}
	case PersistenceAppCookie:
		if name := sp.GetCookieName(); name != "" {
			be.Persistence = []string{
				"stick-table type string len 64 size " + b.s.StickSize + peers,
				"stick store-response res.cook(" + name + ")",
				"stick match req.cook(" + name + ")",
			}
		}
	case PersistenceHTTPCookie:
		be.Persistence = []string{"cookie SRV insert indirect nocache"}
	}

	hm := b.ix.enabledMonitor(pool.GetId())
	if hm != nil {
		be.HealthCheck = b.healthCheck(hm, pool)
	}

	if pool.GetProtocol() == ProtocolHTTP {
		if headerEnabled(l, "X-Forwarded-For") {
			be.Headers = append(be.Headers, "option forwardfor")
		}
		if headerEnabled(l, "X-Forwarded-Port") {
			be.Headers = append(be.Headers, "http-request set-header X-Forwarded-Port %[dst_port]")
		}
	}
	if headerEnabled(l, "X-Forwarded-Proto") {
		switch l.GetProtocol() {
		case ProtocolHTTP:
			be.Headers = append(be.Headers, "http-request set-header X-Forwarded-Proto http")
		case ProtocolTerminatedHTTPS:
			be.Headers = append(be.Headers, "http-request set-header X-Forwarded-Proto https")
		}
	}
	if l.GetProtocol() == ProtocolTerminatedHTTPS {
		sslHeaders := []struct{ name, value string }{
			{"X-SSL-Client-Verify", "%[ssl_c_verify]"},
			{"X-SSL-Client-Has-Cert", "%[ssl_c_used]"},
			{"X-SSL-Client-DN", "%{+Q}[ssl_c_s_dn]"},
			{"X-SSL-Client-CN", "%{+Q}[ssl_c_s_dn(cn)]"},
			{"X-SSL-Issuer", "%{+Q}[ssl_c_i_dn]"},
			{"X-SSL-Client-SHA1", "%{+Q}[ssl_c_sha1,hex]"},
			{"X-SSL-Client-Not-Before", "%[ssl_c_notbefore]"},
			{"X-SSL-Client-Not-After", "%[ssl_c_notafter]"},
		}
		for _, h := range sslHeaders {
			if headerEnabled(l, h.name) {
				be.Headers = append(be.Headers, "http-request set-header "+h.name+" "+h.value)
			}
		}
	}

	for _, m := range b.ix.members[pool.GetId()] {
		be.Servers = append(be.Servers, b.server(l, pool, hm, m))
	}
	return be
}

func (b *haproxyBuilder) healthCheck(hm *eventsv1.HealthMonitor, pool *eventsv1.Pool) []string {
	var lines []string
	if b.feat.serverState {
		lines = append(lines, "load-server-state-from-file global")
	}
	lines = append(lines, fmt.Sprintf("timeout check %ds", hm.GetTimeout()))
	switch hm.GetType() {
	case MonitorHTTP, MonitorHTTPS:
		method := hm.GetHttpMethod()
		if method == "" {
			method = "GET"
		}
		url := hm.GetUrlPath()
		if url == "" {
			url = "/"
		}
		chk := "option httpchk " + method + " " + url
		if hm.HttpVersion != nil {
			chk += fmt.Sprintf(" HTTP/%.1f", hm.GetHttpVersion())
		}
		lines = append(lines, chk)
		if hm.HttpVersion != nil && hm.GetHttpVersion() == 1.1 && hm.GetDomainName() != "" {
			lines = append(lines, "http-check send hdr Host "+hm.GetDomainName())
		}
		codes := hm.GetExpectedCodes()
		if codes == "" {
			codes = "200"
		}
		lines = append(lines, "http-check expect rstatus "+strings.Join(expandExpectedCodes(codes), "|"))
	case MonitorPing:
		lines = append(lines, "option external-check", "external-check command "+b.s.PingScriptPath)
	case MonitorTLSHello:
		if b.s.SSLHelloCheck && !pool.GetTlsEnabled() {
			lines = append(lines, "option ssl-hello-chk")
		}
	}
	return lines
}

func (b *haproxyBuilder) server(l *eventsv1.Listener, pool *eventsv1.Pool, hm *eventsv1.HealthMonitor, m *eventsv1.Member) serverView {
	var o strings.Builder
	fmt.Fprintf(&o, " weight %d", m.GetWeight())
	alpn := ""
	if pool.GetTlsEnabled() && b.feat.poolALPN && len(pool.GetAlpnProtocols()) > 0 {
		alpn = strings.Join(pool.GetAlpnProtocols(), ",")
	}
	if hm != nil {
		o.WriteString(" check")
		if hm.GetType() == MonitorHTTPS {
			o.WriteString(" check-ssl verify none")
		}
		if alpn != "" {
			o.WriteString(" check-alpn " + alpn)
		}
		fall := hm.GetMaxRetriesDown()
		if fall <= 0 {
			fall = 3
		}
		fmt.Fprintf(&o, " inter %ds fall %d rise %d", hm.GetDelay(), fall, hm.GetMaxRetries())
		if m.GetMonitorAddress() != "" {
			o.WriteString(" addr " + m.GetMonitorAddress())
		}
		if m.MonitorPort != nil {
			fmt.Fprintf(&o, " port %d", m.GetMonitorPort())
		}
	}
	if pool.GetSessionPersistence().GetType() == PersistenceHTTPCookie {
		o.WriteString(" cookie " + m.GetId())
	}
	switch pool.GetProtocol() {
	case ProtocolProxy:
		o.WriteString(" send-proxy")
	case ProtocolProxyV2:
		if terminatesTLS(l) {
			o.WriteString(" send-proxy-v2-ssl-cn")
		} else {
			o.WriteString(" send-proxy-v2")
		}
	}
	if m.GetBackup() {
		o.WriteString(" backup")
	}
	if !m.GetAdminStateUp() {
		o.WriteString(" disabled")
	}
	if pool.GetTlsEnabled() {
		o.WriteString(" ssl")
		if pool.TlsContainerRef != nil {
			crt, ok := b.cfg.Certs.PoolCerts[pool.GetId()]
			if !ok {
				crt = PoolCertPath(b.s, b.lb.GetId(), pool.GetId())
			}
			o.WriteString(" crt " + crt)
		}
		if pool.CaTlsContainerRef != nil {
			o.WriteString(" ca-file " + b.secretPath(pool.GetCaTlsContainerRef()))
			if pool.CrlContainerRef != nil {
				o.WriteString(" crl-file " + b.secretPath(pool.GetCrlContainerRef()) + " verify required")
			}
		} else {
			o.WriteString(" verify none")
		}
		o.WriteString(" sni ssl_fc_sni")
		if c := ciphersOf(pool.TlsCiphers, b.s.DefaultPoolCiphers); c != "" {
			o.WriteString(" ciphers " + c)
		}
		if f := tlsVersionFlags(pool.GetTlsVersions()); f != "" {
			o.WriteString(" " + f)
		}
		if alpn != "" {
			o.WriteString(" alpn " + alpn)
		}
	}
	return serverView{Name: m.GetId(), Address: hostPort(m.GetAddress(), m.GetProtocolPort()), Options: o.String()}
}
