package templates

import (
	"fmt"
	"net"
	"strings"
	"unicode"
)

// The renderers refuse input that would break the line structure of the
// configuration files (whitespace or control characters in values that are
// written as one word, addresses that are not addresses). The Octavia API
// validates the same fields; this is a second line of defence against
// configuration injection.

type inputError struct {
	what, value, why string
}

func (e *inputError) Error() string {
	return fmt.Sprintf("templates: %s %q %s", e.what, e.value, e.why)
}

// word checks a value written as a single configuration word.
func word(what, v string) error {
	if v == "" {
		return nil
	}
	if strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return &inputError{what, v, "contains whitespace or control characters"}
	}
	if strings.ContainsAny(v, `"'#{}`) {
		return &inputError{what, v, "contains quotes, braces or #"}
	}
	return nil
}

func ipAddr(what, v string) error {
	if net.ParseIP(v) == nil {
		return &inputError{what, v, "is not an IP address"}
	}
	return nil
}

func cidrOrIP(what, v string) error {
	if _, _, err := net.ParseCIDR(v); err == nil {
		return nil
	}
	return ipAddr(what, v)
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (s Settings) validate() error {
	errs := []error{
		word("settings base path", s.BasePath), word("settings cert dir", s.CertDir),
		word("settings stats socket", s.StatsSocketPath), word("settings stats level", s.StatsSocketLevel),
		word("settings server state file", s.ServerStateFile), word("settings user", s.User),
		word("settings group", s.Group), word("settings log socket", s.LogSocket),
		word("settings user log facility", s.UserLogFacility), word("settings admin log facility", s.AdminLogFacility),
		word("settings stick size", s.StickSize), word("settings ping script", s.PingScriptPath),
		word("settings namespace", s.NetNamespace), word("settings UDP check script", s.UDPCheckScriptPath),
		word("settings SCTP check command", s.SCTPCheckCommand),
	}
	if strings.ContainsAny(s.UserLogFormat, "\r\n") {
		errs = append(errs, &inputError{"settings user log format", s.UserLogFormat, "contains a line break"})
	}
	return firstError(errs...)
}

// validate checks the load balancer tree before rendering.
func (cfg *LoadBalancerConfig) validate(s Settings) error {
	if err := s.validate(); err != nil {
		return err
	}
	lb := cfg.LoadBalancer
	errs := []error{word("load balancer id", lb.GetId()), word("project id", lb.GetProjectId())}
	for _, av := range lb.GetAdditionalVips() {
		errs = append(errs, ipAddr("additional VIP", av.GetIpAddress()))
	}
	for _, l := range cfg.Listeners {
		if l == nil {
			continue
		}
		// Invalid cipher strings fall back to the defaults (ciphersOf).
		errs = append(errs, word("listener id", l.GetId()), word("listener default pool id", l.GetDefaultPoolId()))
		for _, c := range l.GetAllowedCidrs() {
			errs = append(errs, cidrOrIP("listener allowed CIDR", c))
		}
		for _, a := range l.GetAlpnProtocols() {
			errs = append(errs, word("listener ALPN protocol", a))
		}
		if p := l.GetProtocolPort(); p < 1 || p > 65535 {
			errs = append(errs, &inputError{"listener port", fmt.Sprint(p), "is out of range"})
		}
	}
	for _, p := range cfg.Pools {
		if p == nil {
			continue
		}
		errs = append(errs, word("pool id", p.GetId()),
			word("session persistence cookie name", p.GetSessionPersistence().GetCookieName()),
			word("session persistence granularity", p.GetSessionPersistence().GetPersistenceGranularity()))
		for _, a := range p.GetAlpnProtocols() {
			errs = append(errs, word("pool ALPN protocol", a))
		}
	}
	for _, m := range cfg.Members {
		if m == nil || m.GetProvisioningStatus() == statusPendingDelete {
			continue
		}
		errs = append(errs, word("member id", m.GetId()), ipAddr("member address", m.GetAddress()))
		if m.GetMonitorAddress() != "" {
			errs = append(errs, ipAddr("member monitor address", m.GetMonitorAddress()))
		}
	}
	for _, h := range cfg.HealthMonitors {
		if h == nil {
			continue
		}
		errs = append(errs, word("monitor id", h.GetId()), word("monitor HTTP method", h.GetHttpMethod()),
			word("monitor URL path", h.GetUrlPath()), word("monitor domain name", h.GetDomainName()))
		if strings.Trim(h.GetExpectedCodes(), "0123456789-, ") != "" {
			errs = append(errs, &inputError{"monitor expected codes", h.GetExpectedCodes(), "is not a list of codes or ranges"})
		}
	}
	for _, p := range cfg.L7Policies {
		if p == nil {
			continue
		}
		errs = append(errs, word("L7 policy id", p.GetId()), word("L7 policy redirect pool id", p.GetRedirectPoolId()))
	}
	for _, r := range cfg.L7Rules {
		if r == nil {
			continue
		}
		errs = append(errs, word("L7 rule id", r.GetId()), word("L7 rule key", r.GetKey()))
		if strings.IndexFunc(r.GetValue(), unicode.IsControl) >= 0 {
			errs = append(errs, &inputError{"L7 rule value", r.GetValue(), "contains control characters"})
		}
	}
	for _, a := range cfg.Amphorae {
		if a != nil && a.GetVrrpIp() != "" {
			errs = append(errs, ipAddr("amphora VRRP address", a.GetVrrpIp()))
		}
	}
	for _, p := range cfg.Peers {
		errs = append(errs, word("peer name", p.Name), ipAddr("peer address", p.Address))
	}
	for _, m := range []map[string]string{cfg.Certs.CrtLists, cfg.Certs.Secrets, cfg.Certs.PoolCerts} {
		for _, v := range m {
			errs = append(errs, word("certificate path", v))
		}
	}
	return firstError(errs...)
}

// validate checks the VRRP input before rendering.
func (cfg *KeepalivedConfig) validate(s KeepalivedSettings) error {
	errs := []error{
		word("check script path", s.CheckScriptPath), word("interface", s.Interface),
		word("amphora interface", cfg.Amphora.GetVrrpInterface()),
	}
	for _, a := range cfg.Amphorae {
		if a != nil && a.GetVrrpIp() != "" {
			errs = append(errs, ipAddr("amphora VRRP address", a.GetVrrpIp()))
		}
	}
	for _, v := range append([]VIPNetwork{cfg.VIP}, cfg.AdditionalVIPs...) {
		errs = append(errs, ipAddr("VIP", v.Address))
		if v.SubnetCIDR != "" {
			errs = append(errs, cidrOrIP("VIP subnet", v.SubnetCIDR))
		}
		if v.Gateway != "" {
			errs = append(errs, ipAddr("VIP gateway", v.Gateway))
		}
		for _, hr := range v.HostRoutes {
			errs = append(errs, cidrOrIP("host route destination", hr.Destination), ipAddr("host route nexthop", hr.Nexthop))
		}
	}
	return firstError(errs...)
}
