package loadbalancer

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var (
	listenerProtocols = []string{"HTTP", "HTTPS", "PROMETHEUS", "SCTP", "TCP", "TERMINATED_HTTPS", "UDP"}
	poolProtocols     = []string{"HTTP", "HTTPS", "PROXY", "PROXYV2", "SCTP", "TCP", "UDP"}
	lbAlgorithms      = []string{"LEAST_CONNECTIONS", "ROUND_ROBIN", "SOURCE_IP", "SOURCE_IP_PORT"}
	hmTypes           = []string{"HTTP", "HTTPS", "PING", "SCTP", "TCP", "TLS-HELLO", "UDP-CONNECT"}
	httpMethods       = []string{"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
	policyActions     = []string{"REDIRECT_PREFIX", "REDIRECT_TO_POOL", "REDIRECT_TO_URL", "REJECT"}
	ruleTypes         = []string{"COOKIE", "FILE_TYPE", "HEADER", "HOST_NAME", "PATH", "SSL_CONN_HAS_CERT", "SSL_DN_FIELD", "SSL_VERIFY_RESULT"}
	compareTypes      = []string{"CONTAINS", "ENDS_WITH", "EQUAL_TO", "REGEX", "STARTS_WITH"}
	clientAuthModes   = []string{"MANDATORY", "NONE", "OPTIONAL"}
	tlsVersions       = []string{"SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}
	alpnProtocols     = []string{"h2", "http/1.0", "http/1.1"}
	redirectCodes     = []int32{301, 302, 303, 307, 308}

	// compatible lists the pool protocols each listener protocol accepts.
	compatible = map[string][]string{
		"TCP":              {"HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP"},
		"HTTP":             {"HTTP", "PROXY", "PROXYV2"},
		"HTTPS":            {"HTTPS", "PROXY", "PROXYV2", "TCP"},
		"TERMINATED_HTTPS": {"HTTP", "PROXY", "PROXYV2"},
		"UDP":              {"UDP"},
		"SCTP":             {"SCTP"},
	}

	headerToken = regexp.MustCompile("^[a-zA-Z0-9!#$%&'*+.^_`|~-]+$")
	dnField     = regexp.MustCompile(`^([a-zA-Z][A-Za-z0-9-]*)$`)
	codesList   = regexp.MustCompile(`^(\d{3}(\s*,\s*\d{3})*)$`)
	codesRange  = regexp.MustCompile(`^(\d{3}-\d{3})$`)
)

// l4 maps a listener protocol to the transport protocol used for port
// uniqueness.
func l4(protocol string) string {
	switch protocol {
	case "UDP", "SCTP":
		return protocol
	default:
		return "TCP"
	}
}

func fieldErr(name string, value any, reason string) error {
	return invalid("Invalid input for field/attribute %s. Value: '%v'. %s", name, value, reason)
}

func checkEnum(name, v string, allowed []string) error {
	if !slices.Contains(allowed, v) {
		return fieldErr(name, v, "Value should be one of: "+strings.Join(allowed, ", "))
	}
	return nil
}

func checkRange(name string, v, lo, hi int64) error {
	if v < lo {
		return fieldErr(name, v, fmt.Sprintf("Value should be greater or equal to %d", lo))
	}
	if v > hi {
		return fieldErr(name, v, fmt.Sprintf("Value should be lower or equal to %d", hi))
	}
	return nil
}

func checkLen(name, v string, maxLen int) error {
	if len([]rune(v)) > maxLen {
		return fieldErr(name, v, fmt.Sprintf("Value should have a maximum character requirement of %d", maxLen))
	}
	return nil
}

func checkOptLen(name string, v *string, maxLen int) error {
	if v == nil {
		return nil
	}
	return checkLen(name, *v, maxLen)
}

func checkIP(name, v string) error {
	if _, err := netip.ParseAddr(v); err != nil {
		return fieldErr(name, v, "Value should be IPv4 or IPv6 format")
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func checkCompatible(listenerProto, poolProto string) error {
	if !slices.Contains(compatible[listenerProto], poolProto) {
		return validation("The pool protocol '%s' is invalid while the listener protocol is '%s'.", poolProto, listenerProto)
	}
	return nil
}

// checkRule validates an L7 rule (create, or the merged rule on update).
func checkRule(typ, cmp string, key *string, value string) error {
	if err := firstErr(checkEnum("type", typ, ruleTypes), checkEnum("compare_type", cmp, compareTypes),
		checkOptLen("key", key, 255), checkLen("value", value, 255)); err != nil {
		return err
	}
	bad := func(msg string) error { return invalid("Error parsing L7Rule: Invalid L7 Rule: %s", msg) }
	k := ""
	if key != nil {
		k = *key
	}
	if value == "" {
		return bad("value is required")
	}
	if strings.ContainsAny(value, "\r\n") || strings.ContainsAny(k, "\r\n") {
		return bad("key and value must not contain CR or LF")
	}
	if cmp == "REGEX" {
		if _, err := regexp.Compile(value); err != nil {
			return bad("invalid regex: " + value)
		}
	}
	switch typ {
	case "FILE_TYPE":
		if cmp != "REGEX" && cmp != "EQUAL_TO" {
			return bad("invalid comparison type for file type")
		}
	case "HEADER", "COOKIE":
		if k == "" {
			return bad("key is required for " + strings.ToLower(typ) + " rules")
		}
		if !headerToken.MatchString(k) {
			return bad("key contains invalid characters")
		}
	case "SSL_CONN_HAS_CERT":
		if k != "" {
			return bad("key must not be set for this rule type")
		}
		if cmp != "EQUAL_TO" {
			return bad("invalid comparison type for SSL_CONN_HAS_CERT")
		}
		if !strings.EqualFold(value, "true") {
			return bad("value must be true")
		}
	case "SSL_VERIFY_RESULT":
		if k != "" {
			return bad("key must not be set for this rule type")
		}
		if cmp != "EQUAL_TO" {
			return bad("invalid comparison type for SSL_VERIFY_RESULT")
		}
		if n, err := strconv.Atoi(value); err != nil || n < 0 {
			return bad("value must be a non-negative integer")
		}
	case "SSL_DN_FIELD":
		if !dnField.MatchString(k) {
			return bad("invalid key for SSL_DN_FIELD")
		}
	}
	return nil
}
