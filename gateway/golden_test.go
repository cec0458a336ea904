package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ostia/ostia/gateway"
	"github.com/ostia/ostia/internal/drivers/noop"
	"github.com/ostia/ostia/projections"
	"github.com/ostia/ostia/projections/views"
	"github.com/ostia/ostia/sagas/lbflows"
)

// The golden scenario is a recorded session against the real Octavia
// (../shared/golden, odd sequence numbers). The even-numbered steps were
// not kept; the test re-creates them from what later answers show (names,
// bodies), then replays every recorded request, with ids translated, and
// compares status codes and JSON bodies field for field. Generated values
// (ids of objects created in the session, timestamps, VIP and amphora
// addresses and ports) are normalised; everything else must match.

const goldenDir = "../../shared/golden"

type goldenPair struct {
	Seq     int    `json:"seq"`
	Slug    string `json:"slug"`
	Request struct {
		Method string  `json:"method"`
		Path   string  `json:"path"`
		Body   *string `json:"body"`
	} `json:"request"`
	Response struct {
		Status  int    `json:"status"`
		BodyRaw string `json:"body_raw"`
	} `json:"response"`
}

func loadGoldenScenario(t *testing.T) map[int]goldenPair {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files in %s (%v)", goldenDir, err)
	}
	out := map[int]goldenPair{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var p goldenPair
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[p.Seq] = p
	}
	return out
}

// generated are attributes whose values Octavia and Ostia make up
// independently; only null versus set is compared.
var generated = map[string]bool{
	"created_at": true, "updated_at": true, "vip_address": true, "vip_port_id": true, "vip_network_id": true,
	"compute_id": true, "lb_network_ip": true, "vrrp_ip": true, "ha_ip": true, "vrrp_port_id": true,
	"ha_port_id": true, "cert_expiration": true, "x-openstack-request-id": true,
}

type goldenRun struct {
	t *testing.T
	e *apiEnv
	// ids maps Octavia's ids to Ostia's and back.
	toOstia, toOctavia map[string]string
	mismatches         []string
}

func (g *goldenRun) mapID(octavia, ostia string) {
	if octavia == "" || ostia == "" {
		return
	}
	g.toOstia[octavia] = ostia
	g.toOctavia[ostia] = octavia
}

func (g *goldenRun) translate(s string) string {
	for oct, ost := range g.toOstia {
		s = strings.ReplaceAll(s, oct, ost)
	}
	return s
}

// normalise rewrites a decoded body for comparison: Ostia's ids become
// Octavia's, generated values become "<set>", links use Octavia's host.
func (g *goldenRun) normalise(v any, key string, ostia bool) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			out[k] = g.normalise(val, k, ostia)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = g.normalise(val, key, ostia)
		}
		return out
	case string:
		if generated[key] {
			return "<set>"
		}
		if ostia {
			if oct, ok := g.toOctavia[x]; ok {
				return oct
			}
			for ost, oct := range g.toOctavia {
				x = strings.ReplaceAll(x, ost, oct)
			}
			x = strings.ReplaceAll(x, g.e.srv.URL, "http://127.0.0.1:9876")
		}
		return x
	}
	return v
}

// diff lists the differences between two normalised values.
func diff(path string, want, got any, out *[]string) {
	wm, wok := want.(map[string]any)
	gm, gok := got.(map[string]any)
	if wok && gok {
		keys := map[string]bool{}
		for k := range wm {
			keys[k] = true
		}
		for k := range gm {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			wv, win := wm[k]
			gv, gin := gm[k]
			switch {
			case !win:
				*out = append(*out, fmt.Sprintf("%s.%s: unexpected attribute (= %v)", path, k, gv))
			case !gin:
				*out = append(*out, fmt.Sprintf("%s.%s: missing (Octavia: %v)", path, k, wv))
			default:
				diff(path+"."+k, wv, gv, out)
			}
		}
		return
	}
	wl, wok := want.([]any)
	gl, gok := got.([]any)
	if wok && gok {
		if len(wl) != len(gl) {
			*out = append(*out, fmt.Sprintf("%s: %d items, Octavia has %d", path, len(gl), len(wl)))
			return
		}
		for i := range wl {
			diff(fmt.Sprintf("%s[%d]", path, i), wl[i], gl[i], out)
		}
		return
	}
	if !reflect.DeepEqual(want, got) {
		*out = append(*out, fmt.Sprintf("%s: %v, Octavia: %v", path, got, want))
	}
}

// step replays one recorded request and compares the answer.
func (g *goldenRun) step(p goldenPair) *response {
	g.t.Helper()
	var body any
	if p.Request.Body != nil {
		body = g.translate(*p.Request.Body)
	}
	if p.Request.Method == "POST" && p.Response.Status == 201 {
		var created map[string]map[string]any
		if json.Unmarshal([]byte(p.Response.BodyRaw), &created) == nil {
			for _, obj := range created {
				if gid, ok := obj["id"].(string); ok {
					g.e.withID(gid)
				}
			}
		}
	}
	r := g.e.do(p.Request.Method, g.translate(p.Request.Path), body)
	where := fmt.Sprintf("%03d %s %s", p.Seq, p.Request.Method, p.Request.Path)
	if r.status != p.Response.Status {
		g.mismatches = append(g.mismatches, fmt.Sprintf("%s: status %d, Octavia %d (%s)", where, r.status, p.Response.Status, r.raw))
		return r
	}
	var want any
	if p.Response.BodyRaw != "" {
		if err := json.Unmarshal([]byte(p.Response.BodyRaw), &want); err != nil {
			g.t.Fatalf("%s: golden body: %v", where, err)
		}
	}
	// A create teaches the id mapping.
	if p.Request.Method == "POST" && p.Response.Status == 201 {
		if wm, ok := want.(map[string]any); ok {
			for k, v := range wm {
				if obj, ok := v.(map[string]any); ok {
					gid, _ := obj["id"].(string)
					g.mapID(gid, id(r, k))
				}
			}
		}
	}
	var got any
	if len(r.raw) > 0 {
		if err := json.Unmarshal(r.raw, &got); err != nil {
			g.mismatches = append(g.mismatches, fmt.Sprintf("%s: body is not JSON: %s", where, r.raw))
			return r
		}
	}
	var ds []string
	diff("", g.normalise(want, "", false), g.normalise(got, "", true), &ds)
	for _, d := range ds {
		g.mismatches = append(g.mismatches, where+": "+d)
	}
	return r
}

func (g *goldenRun) create(path string, body string, octaviaID, key string) string {
	g.t.Helper()
	g.e.withID(octaviaID)
	r := g.e.must(201, "POST", g.translate(path), g.translate(body))
	ostiaID := id(r, key)
	g.mapID(octaviaID, ostiaID)
	return ostiaID
}

func TestGoldenScenario(t *testing.T) {
	pairs := loadGoldenScenario(t)
	// VIP ports are allocated by the API, as Octavia's does, so the 201
	// of a load balancer already shows its VIP.
	e := newAPIEnv(t, envOptions{vips: &lbflows.VIPAllocator{Network: noop.New(noop.Config{})}, providers: []gateway.Provider{
		{Name: "amphora", Description: "The Octavia Amphora driver."},
		{Name: "amphorav1", Description: "The Octavia Amphora driver v1."},
		{Name: "octavia", Description: "Deprecated alias of the Octavia Amphora driver."},
		{Name: "noop_driver", Description: "The No-Op driver."},
	}})
	g := &goldenRun{t: t, e: e, toOstia: map[string]string{}, toOctavia: map[string]string{}}
	const (
		project = "e3cd678b11784734bc366148aa37580e"
		lbID    = "3cf8b617-ac09-4318-a4bd-7a4f934c139c"
		lisID   = "36ff41c5-b287-4acc-aefe-363ab81980c6"
		poolID  = "f02954f6-1458-4ebf-8f96-7a13f65ead0f"
		pool2ID = "9553fa8b-b83c-40eb-994a-5a4a82de7887"
	)
	run := func(seqs ...int) {
		for _, s := range seqs {
			p, ok := pairs[s]
			if !ok {
				t.Fatalf("golden step %d missing", s)
			}
			g.step(p)
		}
	}
	mapAmphorae := func() {
		page, err := e.views.List(context.Background(), views.KindAmphora, projections.Query{
			Filters: map[string][]string{"loadbalancer_id": {g.toOstia[lbID]}}})
		if err != nil || len(page.Items) != 1 {
			t.Fatalf("amphora of the golden LB: %v (%d)", err, len(page.Items))
		}
		g.mapID("7d9822f2-6908-40e8-af9b-245c4cca59a0", page.FirstID)
	}

	run(1, 3, 5)
	g.create("/v2/lbaas/loadbalancers", `{"loadbalancer": {"name": "golden-lb", "description": "golden scenario LB",
		"vip_subnet_id": "`+subnet+`", "project_id": "`+project+`", "tags": ["golden", "t1"]}}`, lbID, "loadbalancer")
	run(7, 9)
	e.worker()
	run(11)
	e.worker()
	run(13)
	g.create("/v2/lbaas/pools", `{"pool": {"name": "golden-pool", "listener_id": "`+lisID+`", "protocol": "HTTP",
		"lb_algorithm": "ROUND_ROBIN", "session_persistence": {"type": "HTTP_COOKIE"}}}`, poolID, "pool")
	e.worker()
	run(15)
	g.create("/v2/lbaas/pools/"+poolID+"/members", `{"member": {"name": "golden-m1", "address": "192.0.2.10",
		"protocol_port": 8080, "subnet_id": "`+subnet+`"}}`, "111bcb43-679f-4bf4-91b9-212a0e0dd38f", "member")
	e.worker()
	for _, s := range []int{17, 19, 21} {
		run(s)
		e.worker()
	}
	g.create("/v2/lbaas/l7policies", `{"l7policy": {"name": "golden-l7p", "listener_id": "`+lisID+`",
		"action": "REDIRECT_TO_POOL", "redirect_pool_id": "`+pool2ID+`"}}`, "f3d4a782-0d49-4070-807d-b7dcf0a26ff8", "l7policy")
	e.worker()
	run(23)
	e.worker()
	run(25)
	g.create("/v2/lbaas/loadbalancers", `{"loadbalancer": {"name": "golden-lb-extra-0", "vip_subnet_id": "`+subnet+`",
		"project_id": "`+project+`"}}`, "11429d6f-c4aa-4f30-84a8-f7f46955c771", "loadbalancer")
	run(27)
	g.create("/v2/lbaas/loadbalancers", `{"loadbalancer": {"name": "golden-lb-extra-2", "vip_subnet_id": "`+subnet+`",
		"project_id": "`+project+`"}}`, "a9f3ea57-b11e-4a73-917c-50534d50fab1", "loadbalancer")
	e.worker()
	run(29, 31, 33, 35, 37, 39, 41, 43, 45, 47, 49, 51, 53)
	e.must(202, "PUT", "/v2/lbaas/quotas/admin", `{"quota": {"loadbalancer": 25, "listener": 45, "member": 205,
		"pool": 25, "healthmonitor": 5, "l7policy": 55, "l7rule": 105}}`)
	e.must(202, "PUT", "/v2/lbaas/quotas/0c0ffee0000000000000000000000001", `{"quota": {"loadbalancer": null}}`)
	run(55, 57)
	mapAmphorae()
	run(59)
	for _, s := range []int{61, 63, 65, 67, 69} {
		run(s)
		e.worker()
	}
	run(71, 73, 75, 77, 79, 81, 83, 85, 87, 89, 91, 93, 95, 97)
	e.worker()
	run(99, 101, 103)
	e.must(202, "PUT", "/v2/lbaas/quotas/0c0ffee0000000000000000000000001", `{"quota": {"load_balancer": 1, "listener": 1, "member": 5}}`)
	e.must(201, "POST", "/v2/lbaas/loadbalancers", `{"loadbalancer": {"name": "quota-lb-1", "vip_subnet_id": "`+subnet+`",
		"project_id": "0c0ffee0000000000000000000000001"}}`)
	e.worker()
	run(105, 107)
	e.worker()
	run(109)
	e.worker()
	g.mapID("3bffef1b-5323-414b-af10-29d7457227fa", g.toOstia["7d9822f2-6908-40e8-af9b-245c4cca59a0"])
	run(111)
	e.worker()
	run(113)
	e.worker()
	run(115)
	e.worker()
	run(117, 119, 121, 123)

	t.Logf("%d golden steps replayed", len(pairs))
	if len(g.mismatches) > 0 {
		t.Errorf("%d differences from Octavia:\n%s", len(g.mismatches), strings.Join(g.mismatches, "\n"))
	}
	for s := range pairs {
		if s%2 == 0 {
			t.Errorf("golden step %d was not replayed", s)
		}
	}
}
