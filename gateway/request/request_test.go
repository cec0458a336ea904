package request

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ostia/ostia/aggregates"
)

// goldenFault reads a recorded Octavia exchange: request body and faultstring.
func goldenFault(t *testing.T, name string) (body []byte, fault string) {
	t.Helper()
	b, err := os.ReadFile("../../../shared/golden/" + name)
	if err != nil {
		t.Skipf("golden not available: %v", err)
	}
	var g struct {
		Request struct {
			Body *string `json:"body"`
		} `json:"request"`
		Response struct {
			BodyJSON struct {
				FaultString string `json:"faultstring"`
			} `json:"body_json"`
		} `json:"response"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return []byte(*g.Request.Body), g.Response.BodyJSON.FaultString
}

func wantInvalid(t *testing.T, err error, want string) {
	t.Helper()
	var ae *aggregates.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an aggregates.Error", err, err)
	}
	if ae.Kind != aggregates.KindInvalid || ae.Kind.HTTPStatus() != 400 {
		t.Fatalf("kind %v", ae.Kind)
	}
	if ae.Message != want {
		t.Fatalf("message\n got %q\nwant %q", ae.Message, want)
	}
}

func TestGoldenErrors(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		golden string
		decode func([]byte) error
	}{
		{"071-err-400-invalid-json.json", func(b []byte) error { _, err := DecodeLoadBalancerCreate(ctx, b); return err }},
		{"073-err-400-unknown-attr.json", func(b []byte) error { _, err := DecodeLoadBalancerCreate(ctx, b); return err }},
		{"075-err-400-bad-uuid.json", func(b []byte) error { _, err := DecodeLoadBalancerCreate(ctx, b); return err }},
		{"089-err-400-listener-port-0.json", func(b []byte) error { _, err := DecodeListenerCreate(ctx, b); return err }},
		{"101-err-400-l7rule-bad-compare.json", func(b []byte) error { _, err := DecodeL7RuleCreate(ctx, b); return err }},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			body, fault := goldenFault(t, c.golden)
			wantInvalid(t, c.decode(body), fault)
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	ctx := context.Background()
	lb := func(b string) error { _, err := DecodeLoadBalancerCreate(ctx, []byte(b)); return err }
	lis := func(b string) error { _, err := DecodeListenerCreate(ctx, []byte(b)); return err }
	pool := func(b string) error { _, err := DecodePoolCreate(ctx, []byte(b)); return err }
	mem := func(b string) error { _, err := DecodeMemberCreate(ctx, []byte(b)); return err }
	hm := func(b string) error { _, err := DecodeHealthMonitorCreate(ctx, []byte(b)); return err }
	l7p := func(b string) error { _, err := DecodeL7PolicyCreate(ctx, []byte(b)); return err }
	quota := func(b string) error { _, err := DecodeQuotaUpdate(ctx, []byte(b)); return err }
	flavor := func(b string) error { _, err := DecodeFlavorCreate(ctx, []byte(b)); return err }
	fp := func(b string) error { _, err := DecodeFlavorProfileCreate(ctx, []byte(b)); return err }
	az := func(b string) error { _, err := DecodeAvailabilityZoneCreate(ctx, []byte(b)); return err }
	azp := func(b string) error { _, err := DecodeAvailabilityZoneProfileCreate(ctx, []byte(b)); return err }
	batch := func(b string) error { _, err := DecodeMembersBatch(ctx, []byte(b)); return err }
	lbPut := func(b string) error { _, err := DecodeLoadBalancerUpdate(ctx, []byte(b)); return err }
	long := strings.Repeat("x", 256)
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"empty body", lb(""), `Missing argument: "load_balancer"`},
		{"array body", lb(`[1]`), "Request is not in valid JSON format"},
		{"two unknown", lb(`{"loadbalancer": {"b": 1, "a": 2}}`), "Unknown attributes for argument load_balancer.loadbalancer: a, b"},
		{"unknown root", lb(`{"lb": {}}`), "Unknown attribute for argument load_balancer: lb"},
		{"missing root", lb(`{}`), "Invalid input for field/attribute loadbalancer. Value: 'None'. Mandatory field missing."},
		{"name too long", lb(`{"loadbalancer": {"name": "` + long + `"}}`),
			"Invalid input for field/attribute name. Value: '" + long + "'. Value should have a maximum character requirement of 255"},
		{"name not string", lb(`{"loadbalancer": {"name": 5}}`), "Invalid input for field/attribute name. Value: '5'. Value should be string"},
		{"bad bool", lb(`{"loadbalancer": {"admin_state_up": "maybe", "name": "x"}}`),
			`Invalid input for field/attribute load_balancer. Value: '{'loadbalancer': {'admin_state_up': 'maybe', 'name': 'x'}}'. Value not an unambiguous boolean: maybe`},
		{"tags not list", lb(`{"loadbalancer": {"tags": "a"}}`),
			`Invalid input for field/attribute load_balancer. Value: '{'loadbalancer': {'tags': 'a'}}'. Value not a valid list: a`},
		{"bad vip", lb(`{"loadbalancer": {"vip_address": "1.2.3"}}`),
			"Invalid input for field/attribute vip_address. Value: '1.2.3'. Value should be IPv4 or IPv6 format"},
		{"bad sg list", lb(`{"loadbalancer": {"vip_sg_ids": ["x"]}}`),
			"Invalid input for field/attribute vip_sg_ids. Value: '['x']'. Value should be UUID format"},
		{"graph unknown", lb(`{"loadbalancer": {"pools": [{"members": [{"address": "1.1.1.1", "protocol_port": 80, "x": 1}]}]}}`),
			"Unknown attribute for argument load_balancer.loadbalancer.pools.members: x"},
		{"graph listener has no loadbalancer_id", lb(`{"loadbalancer": {"listeners": [{"protocol": "HTTP", "protocol_port": 80, "loadbalancer_id": "x"}]}}`),
			"Unknown attribute for argument load_balancer.loadbalancer.listeners: loadbalancer_id"},
		{"protocol enum", lis(`{"listener": {"protocol": "FOO", "protocol_port": 80, "loadbalancer_id": "3cf8b617-ac09-4318-a4bd-7a4f934c139c"}}`),
			"Invalid input for field/attribute protocol. Value: 'FOO'. Value should be one of: TCP, HTTPS, HTTP, TERMINATED_HTTPS, UDP, SCTP, PROMETHEUS"},
		{"protocol missing", lis(`{"listener": {"protocol_port": 80}}`),
			"Invalid input for field/attribute protocol. Value: 'None'. Mandatory field missing."},
		{"port too big", lis(`{"listener": {"protocol": "TCP", "protocol_port": 70000}}`),
			"Invalid input for field/attribute protocol_port. Value: '70000'. Value should be lower or equal to 65535"},
		{"port not int", lis(`{"listener": {"protocol": "TCP", "protocol_port": "abc"}}`),
			`Invalid input for field/attribute listener_. Value: '{'listener': {'protocol': 'TCP', 'protocol_port': 'abc'}}'. invalid literal for int() with base 10: 'abc'`},
		{"enum unhashable", lis(`{"listener": {"protocol": ["TCP"]}}`),
			"Invalid input for field/attribute protocol. Value: '['TCP']'. unhashable type: 'list'"},
		{"cidr", lis(`{"listener": {"protocol": "TCP", "protocol_port": 80, "loadbalancer_id": "3cf8b617-ac09-4318-a4bd-7a4f934c139c", "allowed_cidrs": ["10.0.0.0/33"]}}`),
			"Invalid input for field/attribute allowed_cidrs. Value: '['10.0.0.0/33']'. Value should be IPv4 or IPv6 CIDR format"},
		{"alpn", lis(`{"listener": {"protocol": "TCP", "protocol_port": 80, "loadbalancer_id": "3cf8b617-ac09-4318-a4bd-7a4f934c139c", "alpn_protocols": ["h3"]}}`),
			"Invalid input for field/attribute alpn_protocols. Value: '['h3']'. Value should be a valid ALPN protocol ID"},
		{"insert header value", lis(`{"listener": {"protocol": "HTTP", "protocol_port": 80, "loadbalancer_id": "3cf8b617-ac09-4318-a4bd-7a4f934c139c", "insert_headers": {"X-Forwarded-For": true}}}`),
			"Invalid input for field/attribute insert_headers. Value: '{'X-Forwarded-For': True}'. Value should be string"},
		{"lb_algorithm", pool(`{"pool": {"protocol": "HTTP", "lb_algorithm": "RANDOM"}}`),
			"Invalid input for field/attribute lb_algorithm. Value: 'RANDOM'. Value should be one of: LEAST_CONNECTIONS, ROUND_ROBIN, SOURCE_IP, SOURCE_IP_PORT"},
		{"sp type missing", pool(`{"pool": {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "session_persistence": {"cookie_name": "a"}}}`),
			"Invalid input for field/attribute type. Value: 'None'. Mandatory field missing."},
		{"cookie", pool(`{"pool": {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "session_persistence": {"type": "APP_COOKIE", "cookie_name": "a b"}}}`),
			`Invalid input for field/attribute cookie_name. Value: 'a b'. Value should match the pattern ^[^\s,;\\]+$`},
		{"weight", mem(`{"member": {"address": "192.0.2.1", "protocol_port": 80, "weight": 257}}`),
			"Invalid input for field/attribute weight. Value: '257'. Value should be lower or equal to 256"},
		{"member address", mem(`{"member": {"address": "host", "protocol_port": 80}}`),
			"Invalid input for field/attribute address. Value: 'host'. Value should be IPv4 or IPv6 format"},
		{"hm retries", hm(`{"healthmonitor": {"type": "HTTP", "delay": 1, "timeout": 1, "max_retries": 11, "pool_id": "f02954f6-1458-4ebf-8f96-7a13f65ead0f"}}`),
			"Invalid input for field/attribute max_retries. Value: '11'. Value should be lower or equal to 10"},
		{"hm http version", hm(`{"healthmonitor": {"type": "HTTP", "delay": 1, "timeout": 1, "max_retries": 1, "pool_id": "f02954f6-1458-4ebf-8f96-7a13f65ead0f", "http_version": 2}}`),
			"Invalid input for field/attribute http_version. Value: '2.0'. Value should be one of: 1.0, 1.1"},
		{"hm codes", hm(`{"healthmonitor": {"type": "HTTP", "delay": 1, "timeout": 1, "max_retries": 1, "pool_id": "f02954f6-1458-4ebf-8f96-7a13f65ead0f", "expected_codes": "2xx"}}`),
			`Invalid input for field/attribute expected_codes. Value: '2xx'. Value should match the pattern ^(\d{3}(\s*,\s*\d{3})*)$|^(\d{3}-\d{3})$`},
		{"hm url path", hm(`{"healthmonitor": {"type": "HTTP", "delay": 1, "timeout": 1, "max_retries": 1, "pool_id": "f02954f6-1458-4ebf-8f96-7a13f65ead0f", "url_path": "http://x/"}}`),
			"Invalid input for field/attribute url_path. Value: 'http://x/'. Value must be a valid URL Path string"},
		{"redirect code", l7p(`{"l7policy": {"action": "REDIRECT_TO_URL", "listener_id": "36ff41c5-b287-4acc-aefe-363ab81980c6", "redirect_http_code": 300}}`),
			"Invalid input for field/attribute redirect_http_code. Value: '300'. Value should be one of: 301, 302, 303, 307, 308"},
		{"redirect url", l7p(`{"l7policy": {"action": "REDIRECT_TO_URL", "redirect_url": "ftp://x"}}`),
			"Invalid input for field/attribute redirect_url. Value: 'ftp://x'. Value must be a valid URL string"},
		{"quota range", quota(`{"quota": {"listener": -2}}`),
			"Invalid input for field/attribute listener. Value: '-2'. Value should be greater or equal to -1"},
		{"flavor name", flavor(`{"flavor": {"flavor_profile_id": "f02954f6-1458-4ebf-8f96-7a13f65ead0f"}}`),
			"Invalid input for field/attribute name. Value: 'None'. Mandatory field missing."},
		{"flavor data long", fp(`{"flavorprofile": {"name": "a", "provider_name": "amphora", "flavor_data": "` + strings.Repeat("x", 4097) + `"}}`),
			"Invalid input for field/attribute flavor_data. Value: '" + strings.Repeat("x", 4097) + "'. Value should have a maximum character requirement of 4096"},
		{"az profile id", az(`{"availability_zone": {"name": "a", "availability_zone_profile_id": "nope"}}`),
			"Invalid input for field/attribute availability_zone_profile_id. Value: 'nope'. Value should be UUID format"},
		{"azp unknown", azp(`{"availability_zone_profile": {"name": "a", "x": 1}}`),
			"Unknown attribute for argument availability_zone_profile_.availability_zone_profile: x"},
		{"batch item", batch(`{"members": [{"address": "192.0.2.1"}]}`),
			"Invalid input for field/attribute protocol_port. Value: 'None'. Mandatory field missing."},
		{"lb put vip", lbPut(`{"loadbalancer": {"vip_address": "1.1.1.1"}}`),
			"Unknown attribute for argument load_balancer.loadbalancer: vip_address"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantInvalid(t, c.err, c.want) })
	}
}

func TestLoadBalancerGraphCommand(t *testing.T) {
	body := `{"loadbalancer": {"name": "lb", "vip_subnet_id": "8F0B8A61-5C2F-4B8B-9B8E-4A0BD1D0C0DE",
	 "tenant_id": "p1", "admin_state_up": null, "tags": ["a"],
	 "additional_vips": [{"subnet_id": "11429d6f-c4aa-4f30-84a8-f7f46955c771", "ip_address": "2001:db8::1"}],
	 "listeners": [{"protocol": "HTTP", "protocol_port": "80", "default_pool": {"name": "p"},
	   "l7policies": [{"action": "REDIRECT_TO_POOL", "redirect_pool": {"name": "p"}, "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/a"}]}]}],
	 "pools": [{"name": "p", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
	   "session_persistence": {"type": "HTTP_COOKIE"},
	   "healthmonitor": {"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 2, "http_version": 1.1},
	   "members": [{"address": "192.0.2.10", "protocol_port": 8080, "weight": 1.9}]}]}}`
	b, err := DecodeLoadBalancerCreate(context.Background(), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	c := b.Command()
	if c.VipSubnetID != "8f0b8a61-5c2f-4b8b-9b8e-4a0bd1d0c0de" || c.ProjectID != "p1" || *c.Name != "lb" {
		t.Fatalf("command %+v", c)
	}
	if c.AdminStateUp == nil || *c.AdminStateUp {
		t.Fatalf("admin_state_up null must mean false (Octavia to_dict), got %v", c.AdminStateUp)
	}
	if len(c.AdditionalVips) != 1 || c.AdditionalVips[0].IpAddress != "2001:db8::1" {
		t.Fatalf("additional vips %+v", c.AdditionalVips)
	}
	l := c.Listeners[0]
	if l.ProtocolPort != 80 || l.DefaultPool == nil || *l.DefaultPool.Name != "p" || l.DefaultPool.Protocol != "" {
		t.Fatalf("listener %+v", l)
	}
	if p := l.L7Policies[0]; p.RedirectPool == nil || len(p.Rules) != 1 || p.Rules[0].CompareType != "STARTS_WITH" {
		t.Fatalf("l7policy %+v", p)
	}
	p := c.Pools[0]
	if p.SessionPersistence.GetType() != "HTTP_COOKIE" || p.HealthMonitor.MaxRetries != 2 || *p.HealthMonitor.HTTPVersion != 1.1 {
		t.Fatalf("pool %+v", p)
	}
	if *p.Members[0].Weight != 1 { // int(1.9) == 1
		t.Fatalf("member %+v", p.Members[0])
	}
}

func TestUpdateTriState(t *testing.T) {
	ctx := context.Background()
	u, err := DecodeListenerUpdate(ctx, []byte(`{"listener": {"connection_limit": 1000, "default_pool_id": null, "insert_headers": {"X-Forwarded-For": "true"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	c := u.Command("id")
	if !c.ConnectionLimit.Set || c.ConnectionLimit.Value != 1000 {
		t.Fatalf("connection_limit %+v", c.ConnectionLimit)
	}
	if !c.DefaultPoolID.Set || !c.DefaultPoolID.Null {
		t.Fatalf("default_pool_id %+v", c.DefaultPoolID)
	}
	if c.Name.Set || c.TLSVersions.Set {
		t.Fatal("absent fields must stay unset")
	}
	if c.InsertHeaders.Value["X-Forwarded-For"] != "true" {
		t.Fatalf("insert_headers %+v", c.InsertHeaders)
	}
	m, err := DecodeMemberUpdate(ctx, []byte(`{"member": {"weight": 10, "admin_state_up": false}}`))
	if err != nil {
		t.Fatal(err)
	}
	mc := m.Command("p", "m")
	if mc.Weight.Value != 10 || !mc.AdminStateUp.Set || mc.AdminStateUp.Value {
		t.Fatalf("member update %+v", mc)
	}
	q, err := DecodeQuotaUpdate(ctx, []byte(`{"quota": {"load_balancer": 5, "healthmonitor": null}}`))
	if err != nil {
		t.Fatal(err)
	}
	qc := q.Command()
	if qc.LoadBalancer.Value != 5 || !qc.HealthMonitor.Null || qc.Listener.Set {
		t.Fatalf("quota %+v", qc)
	}
	pu, err := DecodePoolUpdate(ctx, []byte(`{"pool": {"session_persistence": null}}`))
	if err != nil {
		t.Fatal(err)
	}
	if sp := pu.Command("p").SessionPersistence; !sp.Set || !sp.Null {
		t.Fatalf("session_persistence %+v", sp)
	}
	ms, err := DecodeMembersBatch(ctx, []byte(`{"members": [{"address": "192.0.2.20", "protocol_port": 80}, {"address": "192.0.2.21", "protocol_port": 80}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if bc := BatchCommand("p", ms, false); len(bc.Members) != 2 || bc.Members[1].Address != "192.0.2.21" {
		t.Fatalf("batch %+v", bc)
	}
}

func TestPythonRepr(t *testing.T) {
	v, err := parseJSON([]byte(`{"a": [1, 2.5, 1e20, 100000.0, true, null, "it's", "q\"'"], "b": {}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{'a': [1, 2.5, 1e+20, 100000.0, True, None, "it's", 'q"\''], 'b': {}}`
	if got := pyRepr(v); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"loadbalancer": {"name": "x", "listeners": [{"protocol": "HTTP", "protocol_port": 80}]}}`,
		`{"listener": {"protocol_port": "1_0"}}`, `{bad`, `[]`, `{"pool": {"members": [null]}}`} {
		f.Add([]byte(s))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, b []byte) {
		decoders := []func([]byte) error{
			func(b []byte) error { _, err := DecodeLoadBalancerCreate(ctx, b); return err },
			func(b []byte) error { _, err := DecodeListenerCreate(ctx, b); return err },
			func(b []byte) error { _, err := DecodePoolCreate(ctx, b); return err },
			func(b []byte) error { _, err := DecodeHealthMonitorUpdate(ctx, b); return err },
			func(b []byte) error { _, err := DecodeL7PolicyCreate(ctx, b); return err },
			func(b []byte) error { _, err := DecodeMembersBatch(ctx, b); return err },
			func(b []byte) error { _, err := DecodeQuotaUpdate(ctx, b); return err },
		}
		for _, d := range decoders {
			if err := d(b); err != nil {
				var ae *aggregates.Error
				if !errors.As(err, &ae) || ae.Kind != aggregates.KindInvalid {
					t.Fatalf("error %v is not a 400", err)
				}
			}
		}
	})
}
