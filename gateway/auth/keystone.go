package auth

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// KeystoneConfig configures token validation ([keystone_authtoken]).
type KeystoneConfig struct {
	// AuthURL is the identity v3 endpoint, e.g. http://127.0.0.1:5000/v3.
	AuthURL string
	// The service user's password credentials, scoped to a project.
	Username          string
	Password          string
	UserDomainName    string // default "Default"
	ProjectName       string
	ProjectDomainName string // default "Default"
	// Policy decides IsAdmin (context_is_admin).
	Policy Policy
	// CacheTTL bounds how long a validated token is trusted (default 5m,
	// keystonemiddleware's token_cache_time); never past the token's expiry.
	CacheTTL time.Duration
	// InvalidTTL is how long a refused token is remembered (default 10s).
	InvalidTTL time.Duration
	// CacheSize bounds the cache (default 10000 tokens, least recently used
	// evicted first).
	CacheSize int
	// HTTPClient talks to Keystone (default: a client with a 10s timeout).
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Keystone validates user tokens against Keystone with a service token.
type Keystone struct {
	cfg    KeystoneConfig
	client *http.Client
	log    *slog.Logger

	mu           sync.Mutex
	serviceToken string
	serviceExp   time.Time
	cache        *lru
}

// NewKeystone builds a validator; it does not contact Keystone yet.
func NewKeystone(cfg KeystoneConfig) (*Keystone, error) {
	if cfg.AuthURL == "" || cfg.Username == "" || cfg.ProjectName == "" {
		return nil, fmt.Errorf("auth: keystone auth URL, username and project name are required")
	}
	cfg.AuthURL = strings.TrimRight(cfg.AuthURL, "/")
	if cfg.UserDomainName == "" {
		cfg.UserDomainName = "Default"
	}
	if cfg.ProjectDomainName == "" {
		cfg.ProjectDomainName = "Default"
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 5 * time.Minute
	}
	if cfg.InvalidTTL <= 0 {
		cfg.InvalidTTL = 10 * time.Second
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	k := &Keystone{cfg: cfg, client: cfg.HTTPClient, log: cfg.Logger, cache: newLRU(cfg.CacheSize)}
	if k.client == nil {
		k.client = &http.Client{Timeout: 10 * time.Second}
	}
	if k.log == nil {
		k.log = slog.Default()
	}
	return k, nil
}

// token is the part of a Keystone v3 token body Ostia reads.
type token struct {
	Token struct {
		ExpiresAt time.Time `json:"expires_at"`
		User      struct {
			ID     string `json:"id"`
			Name   string `json:"name"`
			Domain struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"domain"`
		} `json:"user"`
		Project *struct {
			ID     string `json:"id"`
			Name   string `json:"name"`
			Domain struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"domain"`
		} `json:"project"`
		Roles []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"roles"`
	} `json:"token"`
}

// Validate returns the caller of a user token: from the cache, or by
// asking Keystone (GET /v3/auth/tokens). An invalid or expired token is
// ErrUnauthorized; Keystone trouble is wrapped ErrUnavailable.
func (k *Keystone) Validate(ctx context.Context, userToken string) (*Credentials, error) {
	key := sha256.Sum256([]byte(userToken))
	now := k.cfg.Now()
	k.mu.Lock()
	e, ok := k.cache.get(key, now)
	k.mu.Unlock()
	if ok {
		if e.creds == nil {
			return nil, fmt.Errorf("cached invalid token: %w", ErrUnauthorized)
		}
		c := *e.creds
		c.Roles = append([]string(nil), e.creds.Roles...)
		return &c, nil
	}
	creds, err := k.fetch(ctx, userToken)
	now = k.cfg.Now()
	switch {
	case err == nil:
		exp := now.Add(k.cfg.CacheTTL)
		if creds.ExpiresAt.Before(exp) {
			exp = creds.ExpiresAt
		}
		k.mu.Lock()
		k.cache.put(key, &cacheEntry{creds: creds, expires: exp}, now)
		k.mu.Unlock()
		c := *creds
		c.Roles = append([]string(nil), creds.Roles...)
		return &c, nil
	case errors.Is(err, ErrUnauthorized):
		k.mu.Lock()
		k.cache.put(key, &cacheEntry{expires: now.Add(k.cfg.InvalidTTL)}, now)
		k.mu.Unlock()
		return nil, err
	default:
		return nil, err
	}
}

// fetch validates with Keystone, re-authenticating the service once when
// Keystone refuses the service token.
func (k *Keystone) fetch(ctx context.Context, userToken string) (*Credentials, error) {
	for attempt := 0; ; attempt++ {
		svc, err := k.service(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.cfg.AuthURL+"/auth/tokens", nil)
		if err != nil {
			return nil, fmt.Errorf("build token validation request: %w", err)
		}
		req.Header.Set("X-Auth-Token", svc)
		req.Header.Set("X-Subject-Token", userToken)
		req.Header.Set("Accept", "application/json")
		resp, err := k.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("validate token: %v: %w", err, ErrUnavailable)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read token validation: %v: %w", err, ErrUnavailable)
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			return k.credentials(body)
		case resp.StatusCode == http.StatusNotFound:
			return nil, fmt.Errorf("keystone: token not found: %w", ErrUnauthorized)
		case resp.StatusCode == http.StatusUnauthorized && attempt == 0:
			k.log.InfoContext(ctx, "keystone refused the service token; re-authenticating")
			continue
		default:
			return nil, fmt.Errorf("keystone answered %d to token validation: %w", resp.StatusCode, ErrUnavailable)
		}
	}
}

func (k *Keystone) credentials(body []byte) (*Credentials, error) {
	var t token
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, fmt.Errorf("decode keystone token: %v: %w", err, ErrUnavailable)
	}
	if !t.Token.ExpiresAt.IsZero() && !t.Token.ExpiresAt.After(k.cfg.Now()) {
		return nil, fmt.Errorf("token expired at %s: %w", t.Token.ExpiresAt, ErrUnauthorized)
	}
	c := &Credentials{
		UserID:     t.Token.User.ID,
		UserName:   t.Token.User.Name,
		UserDomain: t.Token.User.Domain.ID,
		ExpiresAt:  t.Token.ExpiresAt,
	}
	if p := t.Token.Project; p != nil {
		c.ProjectID, c.ProjectName, c.ProjectDomain = p.ID, p.Name, p.Domain.ID
	}
	for _, r := range t.Token.Roles {
		c.Roles = append(c.Roles, r.Name)
	}
	c.IsAdmin = k.cfg.Policy.ContextIsAdmin(c)
	return c, nil
}

// service returns a valid service token, authenticating when there is
// none, it is about to expire, or renew is set.
func (k *Keystone) service(ctx context.Context, renew bool) (string, error) {
	k.mu.Lock()
	tok, exp := k.serviceToken, k.serviceExp
	k.mu.Unlock()
	if !renew && tok != "" && k.cfg.Now().Add(time.Minute).Before(exp) {
		return tok, nil
	}
	tok, exp, err := k.authenticate(ctx)
	if err != nil {
		return "", err
	}
	k.mu.Lock()
	k.serviceToken, k.serviceExp = tok, exp
	k.mu.Unlock()
	return tok, nil
}

// authenticate gets a project-scoped token with the service's password.
func (k *Keystone) authenticate(ctx context.Context) (string, time.Time, error) {
	return PasswordToken(ctx, k.client, k.cfg.AuthURL, k.cfg.Username, k.cfg.Password,
		k.cfg.UserDomainName, k.cfg.ProjectName, k.cfg.ProjectDomainName)
}

// PasswordToken obtains a project-scoped token by password authentication
// (POST /v3/auth/tokens) and returns it with its expiry.
func PasswordToken(ctx context.Context, client *http.Client, authURL, user, password, userDomain, project, projectDomain string) (string, time.Time, error) {
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{
			"methods": []string{"password"},
			"password": map[string]any{"user": map[string]any{
				"name": user, "password": password, "domain": map[string]string{"name": userDomain},
			}},
		},
		"scope": map[string]any{"project": map[string]any{
			"name": project, "domain": map[string]string{"name": projectDomain},
		}},
	}}
	b, err := json.Marshal(body)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("encode auth request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(authURL, "/")+"/auth/tokens", bytes.NewReader(b))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("build auth request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("authenticate %s: %v: %w", user, err, ErrUnavailable)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusCreated {
		return "", time.Time{}, fmt.Errorf("authenticate %s: keystone answered %d: %w", user, resp.StatusCode, ErrUnavailable)
	}
	var t token
	if err := json.Unmarshal(rb, &t); err != nil {
		return "", time.Time{}, fmt.Errorf("decode auth answer: %v: %w", err, ErrUnavailable)
	}
	tok := resp.Header.Get("X-Subject-Token")
	if tok == "" {
		return "", time.Time{}, fmt.Errorf("keystone answered without X-Subject-Token: %w", ErrUnavailable)
	}
	return tok, t.Token.ExpiresAt, nil
}

// cacheEntry is a validated (creds set) or refused (creds nil) token.
type cacheEntry struct {
	key     [32]byte
	creds   *Credentials
	expires time.Time
}

// lru is a size-bounded least-recently-used map with per-entry expiry.
// Callers hold Keystone.mu.
type lru struct {
	max   int
	order *list.List // front: most recent
	items map[[32]byte]*list.Element
}

func newLRU(max int) *lru {
	return &lru{max: max, order: list.New(), items: map[[32]byte]*list.Element{}}
}

func (c *lru) get(key [32]byte, now time.Time) (*cacheEntry, bool) {
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.items, key)
		return nil, false
	}
	c.order.MoveToFront(el)
	return e, true
}

func (c *lru) put(key [32]byte, e *cacheEntry, now time.Time) {
	if !now.Before(e.expires) {
		return
	}
	e.key = key
	if el, ok := c.items[key]; ok {
		el.Value = e
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(e)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

// Len is the number of cached tokens (expired ones included until touched).
func (k *Keystone) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cache.order.Len()
}
