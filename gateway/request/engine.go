package request

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ostia/ostia/aggregates"
)

// The decoder mimics WSME's two phases. "fromjson" converts the JSON value
// to the attribute's base type; its ValueErrors surface at the top with the
// argument name and the whole body ("Invalid input for field/attribute
// load_balancer. Value: '{...}'. Value not a valid list: x"). Validation of
// the converted value fails per attribute ("Invalid input for field/attribute
// vip_subnet_id. Value: 'x'. Value should be UUID format"). Attributes are
// checked in Octavia's declaration order and the first failure wins.
//
// Body structs describe their attributes with a `wsme` tag:
//
//	wsme:"<name>,<type>[,mandatory][,min=N][,max=N][,minlen=N][,maxlen=N][,pattern=P][,enum=E]"
//
// where <type> is string, int, bool, uuid, ip, url, urlpath, enum, intenum,
// floatenum, object, []string, []uuid, []cidr, []alpn, []object or {}string,
// and every field is an aggregates.Field so absent, null and a value stay
// distinct.

// fieldSpec is one parsed wsme tag.
type fieldSpec struct {
	index     int
	name      string
	typ       string
	mandatory bool
	min, max  *big.Int
	minLen    int
	maxLen    int
	pattern   string
	enum      string
	schema    string // the WSME type of an object attribute when it differs from the Go type
}

func parseSpecs(t reflect.Type) []fieldSpec {
	var out []fieldSpec
	for i := range t.NumField() {
		tag, ok := t.Field(i).Tag.Lookup("wsme")
		if !ok {
			continue
		}
		parts := strings.Split(tag, ",")
		fs := fieldSpec{index: i, name: parts[0], typ: parts[1], maxLen: -1}
		for _, p := range parts[2:] {
			k, v, _ := strings.Cut(p, "=")
			switch k {
			case "mandatory":
				fs.mandatory = true
			case "min":
				fs.min, _ = new(big.Int).SetString(v, 10)
			case "max":
				fs.max, _ = new(big.Int).SetString(v, 10)
			case "minlen":
				fs.minLen, _ = strconv.Atoi(v)
			case "maxlen":
				fs.maxLen, _ = strconv.Atoi(v)
			case "pattern":
				fs.pattern = v
			case "enum":
				fs.enum = v
			case "schema":
				fs.schema = v
			}
		}
		out = append(out, fs)
	}
	return out
}

// unknownAttrError is WSME's UnknownAttribute while it travels up the
// object tree collecting the attribute path.
type unknownAttrError struct {
	path  []string
	attrs []string
}

func (e *unknownAttrError) Error() string { return "unknown attribute" }

// engine decodes one request body.
type engine struct {
	arg  string   // the controller argument name WSME reports, e.g. load_balancer
	root *pyValue // the whole body, quoted by top-level errors
}

func invalidInput(field, value, msg string) error {
	return aggregates.Errorf(aggregates.KindInvalid,
		"Invalid input for field/attribute %s. Value: '%s'. %s", field, value, msg)
}

// topLevel is a fromjson ValueError: reported against the argument.
func (e *engine) topLevel(msg string) error {
	return invalidInput(e.arg, pyStrOf(e.root), msg)
}

// decodeObject fills the struct rv (addressable) from a JSON object.
func (e *engine) decodeObject(v *pyValue, rv reflect.Value) error {
	if v.kind != pyDict {
		return e.topLevel("Value not a valid dict: " + pyStrOf(v))
	}
	specs := parseSpecs(rv.Type())
	known := make(map[string]bool, len(specs))
	for _, s := range specs {
		known[s.name] = true
	}
	var unknown []string
	for _, k := range v.keys {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return &unknownAttrError{attrs: unknown}
	}
	for _, s := range specs {
		jv, present := v.get(s.name)
		fv := rv.Field(s.index)
		if !present || jv.kind == pyNone {
			if s.mandatory {
				return invalidInput(s.name, "None", "Mandatory field missing.")
			}
			if present {
				fv.FieldByName("Set").SetBool(true)
				fv.FieldByName("Null").SetBool(true)
			}
			continue
		}
		if err := e.decodeValue(s, jv, fv.FieldByName("Value")); err != nil {
			var ua *unknownAttrError
			if errors.As(err, &ua) {
				ua.path = append([]string{s.name}, ua.path...)
			}
			return err
		}
		fv.FieldByName("Set").SetBool(true)
	}
	return nil
}

func (e *engine) decodeValue(s fieldSpec, jv *pyValue, dst reflect.Value) error {
	switch s.typ {
	case "string":
		str, err := checkString(s, jv)
		if err != nil {
			return invalidInput(s.name, pyStrOf(jv), err.Error())
		}
		dst.SetString(str)
	case "int":
		n, err := e.toInt(jv)
		if err != nil {
			return err
		}
		if err := checkRange(s, n, dst.Kind()); err != nil {
			return invalidInput(s.name, n.String(), err.Error())
		}
		dst.SetInt(n.Int64())
	case "bool":
		b, err := e.toBool(jv)
		if err != nil {
			return err
		}
		dst.SetBool(b)
	case "uuid", "ip", "url", "urlpath", "enum":
		str, err := checkScalar(s, jv)
		if err != nil {
			return invalidInput(s.name, pyStrOf(jv), err.Error())
		}
		dst.SetString(str)
	case "intenum":
		n, err := e.toInt(jv)
		if err != nil {
			return err
		}
		vals := enumValues(s.enum)
		if !slices.Contains(vals, n.String()) {
			return invalidInput(s.name, n.String(), "Value should be one of: "+strings.Join(vals, ", "))
		}
		dst.SetInt(n.Int64())
	case "floatenum":
		f, err := e.toFloat(jv)
		if err != nil {
			return err
		}
		vals := enumValues(s.enum)
		if !slices.Contains(vals, pyFloatRepr(f)) {
			return invalidInput(s.name, pyFloatRepr(f), "Value should be one of: "+strings.Join(vals, ", "))
		}
		dst.SetFloat(f)
	case "[]string", "[]uuid", "[]cidr", "[]alpn":
		if jv.kind != pyList {
			return e.topLevel("Value not a valid list: " + pyStrOf(jv))
		}
		item := s
		item.typ = strings.TrimPrefix(s.typ, "[]")
		out := make([]string, 0, len(jv.list))
		for _, it := range jv.list {
			str, err := checkScalar(item, it)
			if err != nil {
				return invalidInput(s.name, pyStrOf(jv), err.Error())
			}
			out = append(out, str)
		}
		dst.Set(reflect.ValueOf(out))
	case "{}string":
		if jv.kind != pyDict {
			return e.topLevel("Value not a valid dict: " + pyStrOf(jv))
		}
		out := make(map[string]string, len(jv.keys))
		for _, k := range jv.keys {
			str, err := checkString(s, jv.items[k])
			if err != nil {
				return invalidInput(s.name, pyStrOf(jv), err.Error())
			}
			out[k] = str
		}
		dst.Set(reflect.ValueOf(out))
	case "object":
		obj, err := e.decodeSchema(s.schema, jv, dst.Type())
		if err != nil {
			return err
		}
		dst.Set(obj)
	case "[]object":
		if jv.kind != pyList {
			return e.topLevel("Value not a valid list: " + pyStrOf(jv))
		}
		out := reflect.MakeSlice(dst.Type(), 0, len(jv.list))
		for _, it := range jv.list {
			if it.kind == pyNone {
				return invalidInput(s.name, pyStrOf(jv), "Value should be an object")
			}
			obj, err := e.decodeSchema(s.schema, it, dst.Type().Elem())
			if err != nil {
				return err
			}
			out = reflect.Append(out, obj)
		}
		dst.Set(out)
	default:
		return fmt.Errorf("request: unsupported wsme type %q on %s", s.typ, s.name)
	}
	return nil
}

// decodeSchema decodes an object with the WSME type named by schema (or
// the Go type itself) and copies it into a value of type t.
func (e *engine) decodeSchema(schema string, jv *pyValue, t reflect.Type) (reflect.Value, error) {
	st := schemaType(schema)
	if st == nil {
		st = t
	}
	src := reflect.New(st).Elem()
	if err := e.decodeObject(jv, src); err != nil {
		return reflect.Value{}, err
	}
	if st == t {
		return src, nil
	}
	dst := reflect.New(t).Elem()
	for i := range st.NumField() {
		dst.FieldByName(st.Field(i).Name).Set(src.Field(i))
	}
	return dst, nil
}

// schemaType maps the WSME types that differ from the exported body structs.
func schemaType(name string) reflect.Type {
	switch name {
	case "listener_single":
		return reflect.TypeFor[listenerSingleCreate]()
	case "pool_single":
		return reflect.TypeFor[poolSingleCreate]()
	case "member_single":
		return reflect.TypeFor[memberSingleCreate]()
	case "hm_single":
		return reflect.TypeFor[healthMonitorSingleCreate]()
	case "l7policy_single":
		return reflect.TypeFor[l7PolicySingleCreate]()
	case "l7rule_single":
		return reflect.TypeFor[l7RuleSingleCreate]()
	case "sp_post":
		return reflect.TypeFor[sessionPersistencePOST]()
	}
	return nil
}

// checkString is StringType.validate.
func checkString(s fieldSpec, jv *pyValue) (string, error) {
	if jv.kind != pyStr {
		return "", errors.New("Value should be string")
	}
	// PostgreSQL and CockroachDB text (and JSONB) cannot hold NUL; refuse
	// it here instead of failing later in a read model.
	if strings.ContainsRune(jv.s, 0) {
		return "", errors.New("Value should not contain NUL characters")
	}
	n := utf8.RuneCountInString(jv.s)
	if s.minLen > 0 && n < s.minLen {
		return "", fmt.Errorf("Value should have a minimum character requirement of %d", s.minLen)
	}
	if s.maxLen >= 0 && n > s.maxLen {
		return "", fmt.Errorf("Value should have a maximum character requirement of %d", s.maxLen)
	}
	if s.pattern != "" {
		if ok, src := matchPattern(s.pattern, jv.s); !ok {
			return "", fmt.Errorf("Value should match the pattern %s", src)
		}
	}
	return jv.s, nil
}

// checkScalar validates the string-based user types; it returns the
// normalized value (UUIDs in canonical form, CIDRs masked).
func checkScalar(s fieldSpec, jv *pyValue) (string, error) {
	switch s.typ {
	case "string":
		return checkString(s, jv)
	case "uuid":
		if jv.kind == pyStr {
			if u, ok := pyUUID(jv.s); ok {
				return u, nil
			}
		}
		return "", errors.New("Value should be UUID format")
	case "ip":
		if jv.kind == pyStr && validIP(jv.s) {
			return jv.s, nil
		}
		return "", errors.New("Value should be IPv4 or IPv6 format")
	case "cidr":
		if jv.kind == pyStr {
			if c, ok := normalizeCIDR(jv.s); ok {
				return c, nil
			}
		}
		return "", errors.New("Value should be IPv4 or IPv6 CIDR format")
	case "alpn":
		if jv.kind == pyStr && slices.Contains(enumValues("alpn"), jv.s) {
			return jv.s, nil
		}
		return "", errors.New("Value should be a valid ALPN protocol ID")
	case "url":
		if jv.kind == pyStr && validURL(jv.s) {
			return jv.s, nil
		}
		return "", errors.New("Value must be a valid URL string")
	case "urlpath":
		if jv.kind == pyStr && validURLPath(jv.s) {
			return jv.s, nil
		}
		return "", errors.New("Value must be a valid URL Path string")
	case "enum":
		if jv.kind == pyList || jv.kind == pyDict {
			return "", fmt.Errorf("unhashable type: '%s'", jv.typeName())
		}
		vals := enumValues(s.enum)
		if jv.kind == pyStr && slices.Contains(vals, jv.s) {
			return jv.s, nil
		}
		return "", errors.New("Value should be one of: " + strings.Join(vals, ", "))
	}
	return "", fmt.Errorf("unsupported type %s", s.typ)
}

// checkRange is IntegerType.validate plus the bound of the Go field the
// value ends up in (Python ints are unbounded, Ostia's are not).
func checkRange(s fieldSpec, n *big.Int, k reflect.Kind) error {
	lo, hi := s.min, s.max
	limLo, limHi := big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)
	if k == reflect.Int32 {
		limLo, limHi = big.NewInt(math.MinInt32), big.NewInt(math.MaxInt32)
	}
	if lo == nil || lo.Cmp(limLo) < 0 {
		lo = limLo
	}
	if hi == nil || hi.Cmp(limHi) > 0 {
		hi = limHi
	}
	if n.Cmp(lo) < 0 {
		return fmt.Errorf("Value should be greater or equal to %s", lo)
	}
	if n.Cmp(hi) > 0 {
		return fmt.Errorf("Value should be lower or equal to %s", hi)
	}
	return nil
}

// toInt is Python's int(value) as WSME's numeric fromjson applies it.
func (e *engine) toInt(jv *pyValue) (*big.Int, error) {
	switch jv.kind {
	case pyBool:
		if jv.b {
			return big.NewInt(1), nil
		}
		return big.NewInt(0), nil
	case pyInt:
		return jv.i, nil
	case pyFloat:
		if math.IsInf(jv.f, 0) {
			return nil, e.topLevel("cannot convert float infinity to integer")
		}
		if math.IsNaN(jv.f) {
			return nil, e.topLevel("cannot convert float NaN to integer")
		}
		i, _ := big.NewFloat(math.Trunc(jv.f)).Int(nil)
		return i, nil
	case pyStr:
		if i, ok := pyParseInt(jv.s, 10); ok {
			return i, nil
		}
		return nil, e.topLevel("invalid literal for int() with base 10: " + pyStrRepr(jv.s))
	default:
		return nil, e.topLevel(fmt.Sprintf(
			"int() argument must be a string, a bytes-like object or a real number, not '%s'", jv.typeName()))
	}
}

// toFloat is Python's float(value).
func (e *engine) toFloat(jv *pyValue) (float64, error) {
	switch jv.kind {
	case pyBool:
		if jv.b {
			return 1, nil
		}
		return 0, nil
	case pyInt:
		f, _ := new(big.Float).SetInt(jv.i).Float64()
		return f, nil
	case pyFloat:
		return jv.f, nil
	case pyStr:
		t := strings.TrimSpace(jv.s)
		if !strings.Contains(t, "__") && !strings.HasPrefix(t, "_") && !strings.HasSuffix(t, "_") {
			if f, err := strconv.ParseFloat(strings.ReplaceAll(t, "_", ""), 64); err == nil || errors.Is(err, strconv.ErrRange) {
				if !strings.HasPrefix(strings.ToLower(strings.TrimLeft(t, "+-")), "0x") {
					return f, nil
				}
			}
		}
		return 0, e.topLevel("could not convert string to float: " + pyStrRepr(jv.s))
	default:
		return 0, e.topLevel(fmt.Sprintf("float() argument must be a string or a real number, not '%s'", jv.typeName()))
	}
}

// toBool is WSME's bool fromjson.
func (e *engine) toBool(jv *pyValue) (bool, error) {
	switch jv.kind {
	case pyBool:
		return jv.b, nil
	case pyInt:
		return jv.i.Sign() != 0, nil
	case pyStr:
		switch jv.s {
		case "true", "t", "yes", "y", "on", "1":
			return true, nil
		case "false", "f", "no", "n", "off", "0":
			return false, nil
		}
	}
	return false, e.topLevel("Value not an unambiguous boolean: " + pyStrOf(jv))
}

// pyUUID is str(uuid.UUID(s)).
func pyUUID(s string) (string, bool) {
	h := strings.ReplaceAll(strings.ReplaceAll(s, "urn:", ""), "uuid:", "")
	h = strings.Trim(h, "{}")
	h = strings.ReplaceAll(h, "-", "")
	if utf8.RuneCountInString(h) != 32 {
		return "", false
	}
	i, ok := pyParseInt(h, 16)
	if !ok || i.Sign() < 0 || i.BitLen() > 128 {
		return "", false
	}
	x := fmt.Sprintf("%032x", i)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:], true
}

func validIP(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Zone() == ""
}

// normalizeCIDR is ipaddress.ip_network(value, strict=False).with_prefixlen.
func normalizeCIDR(s string) (string, bool) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return "", false
		}
		return netip.PrefixFrom(a, a.BitLen()).String(), true
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "", false
	}
	return p.Masked().String(), true
}

// validURL approximates octavia.common.validate.url with require_scheme:
// http or https, a host, no whitespace or control characters.
func validURL(s string) bool {
	for _, r := range s {
		if r <= 0x20 || r == 0x7f {
			return false
		}
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	return u.Hostname() != ""
}

// validURLPath is octavia.common.validate.url_path: a path starting with /,
// no whitespace, scheme, user info, host or port.
func validURLPath(s string) bool {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") {
		return false
	}
	for _, r := range s {
		if r <= 0x20 || r == 0x7f || r == 0x85 || r == 0xa0 || r == 0x1680 || (r >= 0x2000 && r <= 0x200a) ||
			r == 0x2028 || r == 0x2029 || r == 0x202f || r == 0x205f || r == 0x3000 {
			return false
		}
	}
	_, err := url.Parse(s)
	return err == nil
}

var (
	// Compiled once, read-only: these are constants, not state.
	reCookieName   = regexp.MustCompile(`^[^\s,;\\]+$`)
	reNoCRLF       = regexp.MustCompile(`^[^\r\n]*$`)
	reExpectedCode = regexp.MustCompile(`^(\d{3}(\s*,\s*\d{3})*)$|^(\d{3}-\d{3})$`)
)

// matchPattern checks one of Octavia's StringType patterns and returns the
// pattern text WSME prints.
func matchPattern(name, s string) (bool, string) {
	switch name {
	case "cookie":
		return reCookieName.MatchString(s), `^[^\s,;\\]+$`
	case "nocrlf":
		return reNoCRLF.MatchString(s), `^[^\r\n]*$`
	case "codes":
		return reExpectedCode.MatchString(s), `^(\d{3}(\s*,\s*\d{3})*)$|^(\d{3}-\d{3})$`
	case "domain":
		return validDomainName(s), `^(?=.{1,253}\.?$)(?:(?!-|[^.]+_)[A-Za-z0-9-_]{1,63}(?<!-)(?:\.|$))+$`
	}
	return true, ""
}

// validDomainName is Octavia's DOMAIN_NAME_REGEX (which uses look-arounds
// Go's regexp lacks): at most 253 characters plus an optional final dot,
// labels of 1-63 [A-Za-z0-9-_] not starting or ending with '-', and '_'
// only in the last label.
func validDomainName(s string) bool {
	body := strings.TrimSuffix(s, ".")
	if len(body) < 1 || len(body) > 253 {
		return false
	}
	labels := strings.Split(body, ".")
	for i, l := range labels {
		if len(l) < 1 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			ok := c == '-' || c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
			if !ok {
				return false
			}
		}
		if strings.Contains(l, "_") && i != len(labels)-1 {
			return false
		}
	}
	return true
}

// enumValues lists an enumeration in the order Octavia prints it. WSME keeps
// enum values in a Python set, so the printed order of string enums depends
// on the process's hash seed; Ostia uses the declaration order, except for
// compare_type whose order is taken from a recorded Octavia answer.
func enumValues(name string) []string {
	switch name {
	case "listener_protocol":
		return []string{"TCP", "HTTPS", "HTTP", "TERMINATED_HTTPS", "UDP", "SCTP", "PROMETHEUS"}
	case "pool_protocol":
		return []string{"TCP", "HTTP", "HTTPS", "PROXY", "PROXYV2", "UDP", "SCTP"}
	case "lb_algorithm":
		return []string{"LEAST_CONNECTIONS", "ROUND_ROBIN", "SOURCE_IP", "SOURCE_IP_PORT"}
	case "sp_type":
		return []string{"SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE"}
	case "client_auth":
		return []string{"NONE", "OPTIONAL", "MANDATORY"}
	case "hm_type":
		return []string{"HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO", "UDP-CONNECT", "SCTP"}
	case "http_method":
		return []string{"GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"}
	case "http_version":
		return []string{"1.0", "1.1"}
	case "l7policy_action":
		return []string{"REJECT", "REDIRECT_TO_URL", "REDIRECT_TO_POOL", "REDIRECT_PREFIX"}
	case "redirect_code":
		return []string{"301", "302", "303", "307", "308"}
	case "l7rule_type":
		return []string{"HOST_NAME", "PATH", "FILE_TYPE", "HEADER", "COOKIE", "SSL_CONN_HAS_CERT",
			"SSL_VERIFY_RESULT", "SSL_DN_FIELD"}
	case "compare_type":
		return []string{"EQUAL_TO", "ENDS_WITH", "STARTS_WITH", "CONTAINS", "REGEX"}
	case "alpn":
		return []string{"h2", "http/1.1", "http/1.0"}
	}
	return nil
}

// decode runs the whole WSME argument parse: body -> root struct. arg is the
// controller's argument name, root a pointer to a struct whose tagged
// fields are the body's top-level keys.
func decode(ctx context.Context, body []byte, arg string, root any) error {
	if len(body) == 0 {
		return aggregates.Errorf(aggregates.KindInvalid, "Missing argument: \"%s\"", arg)
	}
	jv, err := parseJSON(body)
	if err != nil || jv.kind != pyDict {
		// Octavia answers 500 for a JSON document that is not an object;
		// Ostia treats it like any other malformed body.
		slog.DebugContext(ctx, "request body is not a JSON object", "argument", arg, "error", err)
		return aggregates.Errorf(aggregates.KindInvalid, "Request is not in valid JSON format")
	}
	e := &engine{arg: arg, root: jv}
	if err := e.decodeObject(jv, reflect.ValueOf(root).Elem()); err != nil {
		var ua *unknownAttrError
		if errors.As(err, &ua) {
			name := strings.Join(append([]string{arg}, ua.path...), ".")
			word := "attribute"
			if len(ua.attrs) > 1 {
				word = "attributes"
			}
			return aggregates.Errorf(aggregates.KindInvalid, "Unknown %s for argument %s: %s",
				word, name, strings.Join(ua.attrs, ", "))
		}
		return err
	}
	return nil
}
