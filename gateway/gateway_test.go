package gateway_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/gateway"
)

// golden is one recorded exchange with the real Octavia.
type golden struct {
	Request struct {
		Method string `json:"method"`
		Path   string `json:"path"`
	} `json:"request"`
	Response struct {
		Status   int `json:"status"`
		BodyJSON any `json:"body_json"`
	} `json:"response"`
}

func loadGolden(t *testing.T, name string) golden {
	t.Helper()
	b, err := os.ReadFile("../../shared/golden/" + name)
	if err != nil {
		t.Skipf("golden file not available: %v", err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func newServer(t *testing.T) *gateway.Server {
	t.Helper()
	s, err := gateway.New(gateway.Config{Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVersionDiscoveryMatchesOctavia(t *testing.T) {
	t.Parallel()
	g := loadGolden(t, "001-versions.json")
	srv := httptest.NewServer(newServer(t))
	defer srv.Close()
	req, _ := http.NewRequest(g.Request.Method, srv.URL+g.Request.Path, nil)
	req.Host = "127.0.0.1:9876" // the host the golden exchange used, for links
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != g.Response.Status || !reflect.DeepEqual(got, g.Response.BodyJSON) {
		t.Fatalf("status %d body %v\nwant %d %v", resp.StatusCode, got, g.Response.Status, g.Response.BodyJSON)
	}
	if id := resp.Header.Get("x-openstack-request-id"); !strings.HasPrefix(id, "req-") {
		t.Fatalf("request id header = %q", id)
	}
}

func TestVersionRootsAndFaults(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	cases := []struct {
		path, accept string
		status       int
		body         string
	}{
		{"/v2", "", 200, `"v2"`},
		{"/v2/lbaas", "application/json", 200, `"v2"`},
		{"/v2.0/octavia", "*/*", 200, `"v2"`},
		{"/v2/nothing-here", "", 404, `{"faultcode":"Client","faultstring":"The resource could not be found.","debuginfo":null}`},
		{"/", "text/html", 406, ""},
	}
	for _, c := range cases {
		req := httptest.NewRequest("GET", c.path, nil)
		if c.accept != "" {
			req.Header.Set("Accept", c.accept)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != c.status {
			t.Errorf("%s: status %d, want %d", c.path, rec.Code, c.status)
		}
		if c.body != "" && strings.TrimSpace(rec.Body.String()) != c.body {
			t.Errorf("%s: body %s, want %s", c.path, rec.Body.String(), c.body)
		}
		if c.status == 406 && !strings.Contains(rec.Body.String(), "Only content type application/json is accepted.") {
			t.Errorf("406 body %s", rec.Body.String())
		}
	}
}
