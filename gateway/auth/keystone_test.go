package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// counting counts Keystone requests by method+path.
type counting struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[r.Method+" "+r.URL.Path]++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *counting) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

func TestKeystoneFake(t *testing.T) {
	var svcGen atomic.Int32
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v3/auth/tokens":
			w.Header().Set("X-Subject-Token", fmt.Sprintf("svc-%d", svcGen.Add(1)))
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"token": {"expires_at": %q}}`, exp)
		case r.Method == http.MethodGet && r.URL.Path == "/v3/auth/tokens":
			if r.Header.Get("X-Auth-Token") == "svc-1" { // first service token "expired"
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			if r.Header.Get("X-Subject-Token") != "good" {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			fmt.Fprintf(w, `{"token": {"expires_at": %q, "user": {"id": "u1", "name": "demo", "domain": {"id": "default"}},
			 "project": {"id": "p1", "name": "demo", "domain": {"id": "default"}},
			 "roles": [{"id": "r1", "name": "member"}, {"id": "r2", "name": "reader"}]}}`, exp)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	rt := &counting{next: http.DefaultTransport}
	now := time.Now()
	k, err := NewKeystone(KeystoneConfig{AuthURL: srv.URL + "/v3", Username: "octavia", Password: "x", ProjectName: "service",
		HTTPClient: &http.Client{Transport: rt}, CacheTTL: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := k.Validate(ctx, "good")
	if err != nil {
		t.Fatal(err)
	}
	if c.UserID != "u1" || c.ProjectID != "p1" || !slices.Equal(c.Roles, []string{"member", "reader"}) || c.IsAdmin {
		t.Fatalf("credentials %+v", c)
	}
	if rt.count("POST /v3/auth/tokens") != 2 || rt.count("GET /v3/auth/tokens") != 2 {
		t.Fatalf("re-authentication on 401 not done: %v", rt.n)
	}
	for range 5 {
		if _, err := k.Validate(ctx, "good"); err != nil {
			t.Fatal(err)
		}
	}
	if rt.count("GET /v3/auth/tokens") != 2 {
		t.Fatalf("cache not used: %v", rt.n)
	}
	for range 3 {
		if _, err := k.Validate(ctx, "bad"); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("bad token: %v", err)
		}
	}
	if rt.count("GET /v3/auth/tokens") != 3 {
		t.Fatalf("invalid token not cached: %v", rt.n)
	}
	now = now.Add(2 * time.Minute) // past CacheTTL and InvalidTTL
	if _, err := k.Validate(ctx, "good"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Validate(ctx, "bad"); !errors.Is(err, ErrUnauthorized) {
		t.Fatal(err)
	}
	if rt.count("GET /v3/auth/tokens") != 5 {
		t.Fatalf("expired cache entries reused: %v", rt.n)
	}

	// The middleware: 401 body and credentials in the context.
	h := Middleware(k, srv.URL+"/v3", nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := FromContext(r.Context())
		fmt.Fprint(w, c.ProjectID)
	}))
	for _, tc := range []struct{ token, want string }{{"", "401"}, {"bad", "401"}, {"good", "p1"}} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/v2/lbaas/loadbalancers", nil)
		if tc.token != "" {
			req.Header.Set("X-Auth-Token", tc.token)
		}
		h.ServeHTTP(rec, req)
		got := rec.Body.String()
		if tc.want == "401" {
			if rec.Code != 401 || got != `{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}` ||
				!strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Keystone uri=") {
				t.Fatalf("401 answer %d %s", rec.Code, got)
			}
		} else if got != tc.want {
			t.Fatalf("got %d %s", rec.Code, got)
		}
	}
}

func TestLRUBound(t *testing.T) {
	c := newLRU(2)
	now := time.Now()
	for i := range 3 {
		c.put([32]byte{byte(i)}, &cacheEntry{expires: now.Add(time.Hour)}, now)
	}
	if _, ok := c.get([32]byte{0}, now); ok || c.order.Len() != 2 {
		t.Fatal("oldest entry not evicted")
	}
}

// keystoneURL is the real Keystone to test against, if any.
func keystoneURL(t *testing.T) string {
	if u := os.Getenv("OSTIA_TEST_KEYSTONE_URL"); u != "" {
		return strings.TrimRight(u, "/")
	}
	conn, err := net.DialTimeout("tcp", "127.0.0.1:5000", 500*time.Millisecond)
	if err != nil {
		t.Skip("no Keystone: set OSTIA_TEST_KEYSTONE_URL or run shared/anchors/keystone/keystone-setup.sh")
	}
	conn.Close()
	return "http://127.0.0.1:5000/v3"
}

// TestKeystoneIntegration validates tokens of the users keystone-setup.sh
// creates (admin, demo, reader; service user octavia).
func TestKeystoneIntegration(t *testing.T) {
	authURL := keystoneURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 30 * time.Second}
	tokens := map[string]string{}
	for _, u := range []struct{ user, project string }{{"admin", "admin"}, {"demo", "demo"}, {"reader", "demo"}} {
		tok, _, err := PasswordToken(ctx, client, authURL, u.user, u.user, "Default", u.project, "Default")
		if err != nil {
			t.Fatalf("password auth for %s: %v", u.user, err)
		}
		tokens[u.user] = tok
	}
	rt := &counting{next: http.DefaultTransport}
	k, err := NewKeystone(KeystoneConfig{AuthURL: authURL, Username: "octavia", Password: "octavia", ProjectName: "service",
		HTTPClient: &http.Client{Transport: rt, Timeout: 30 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(user string, roles []string, notRoles []string, isAdmin bool, project string) *Credentials {
		t.Helper()
		c, err := k.Validate(ctx, tokens[user])
		if err != nil {
			t.Fatalf("validate %s: %v", user, err)
		}
		for _, r := range roles {
			if !c.HasRole(r) {
				t.Errorf("%s lacks role %s: %v", user, r, c.Roles)
			}
		}
		for _, r := range notRoles {
			if c.HasRole(r) {
				t.Errorf("%s has role %s: %v", user, r, c.Roles)
			}
		}
		if c.IsAdmin != isAdmin || c.ProjectName != project || c.UserName != user || c.ProjectID == "" || c.UserID == "" {
			t.Errorf("%s: %+v", user, c)
		}
		if c.ExpiresAt.Before(time.Now()) {
			t.Errorf("%s expiry %v", user, c.ExpiresAt)
		}
		return c
	}
	admin := check("admin", []string{"admin", "member", "reader"}, nil, true, "admin")
	demo := check("demo", []string{"member", "reader", "load-balancer_member"}, []string{"admin"}, false, "demo")
	reader := check("reader", []string{"reader", "load-balancer_observer"}, []string{"member", "admin"}, false, "demo")
	if got := rt.count("GET /v3/auth/tokens"); got != 3 {
		t.Fatalf("validations %d, want 3", got)
	}
	if got := rt.count("POST /v3/auth/tokens"); got != 1 {
		t.Fatalf("service authentications %d, want 1", got)
	}
	for range 10 {
		check("demo", []string{"member"}, nil, false, "demo")
	}
	if got := rt.count("GET /v3/auth/tokens"); got != 3 {
		t.Fatalf("cached tokens re-validated: %d requests", got)
	}
	for range 3 {
		if _, err := k.Validate(ctx, "gAAAAAnotatoken"); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("bogus token: %v", err)
		}
	}
	if got := rt.count("GET /v3/auth/tokens"); got != 4 {
		t.Fatalf("invalid token not cached: %d requests", got)
	}
	// Policy over real tokens.
	if err := Authorize(demo, "loadbalancer:post", demo.ProjectID); err != nil {
		t.Errorf("demo post: %v", err)
	}
	if err := Authorize(reader, "loadbalancer:post", reader.ProjectID); err == nil {
		t.Error("reader may post")
	}
	if err := Authorize(reader, "loadbalancer:get_one", reader.ProjectID); err != nil {
		t.Errorf("reader get: %v", err)
	}
	if err := Authorize(demo, "loadbalancer:get_one", admin.ProjectID); err == nil {
		t.Error("demo reads another project")
	}
	if err := Authorize(admin, "amphora:get_all", admin.ProjectID); err != nil {
		t.Errorf("admin amphora: %v", err)
	}
}
