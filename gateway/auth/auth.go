// Package auth authenticates API requests (Keystone v3 tokens, validated
// the way keystonemiddleware's auth_token does, or Octavia's noauth mode)
// and authorizes them with Octavia's default RBAC policy.
//
// Noauth: like Octavia with auth_strategy=noauth, the identity comes from
// the request headers X-User-Id, X-Project-Id (or X-Tenant-Id) and X-Roles
// (comma separated), exactly as oslo.context reads them, and the context is
// always an admin context (Octavia sets is_admin when auth_strategy is
// noauth), so every policy check passes. No header means an admin with no
// project; callers then need the project from the body.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Credentials is the authenticated caller.
type Credentials struct {
	UserID      string
	UserName    string
	UserDomain  string
	ProjectID   string
	ProjectName string
	// ProjectDomain is the project's domain id.
	ProjectDomain string
	// Roles are role names (Keystone includes implied roles).
	Roles []string
	// IsAdmin is Octavia's context.is_admin: the context_is_admin rule, or
	// noauth mode.
	IsAdmin bool
	// ExpiresAt is the token's expiry (zero in noauth mode).
	ExpiresAt time.Time
}

// HasRole reports whether the caller has the role (case-insensitive, as
// oslo.policy compares role names).
func (c *Credentials) HasRole(role string) bool {
	for _, r := range c.Roles {
		if strings.EqualFold(r, role) {
			return true
		}
	}
	return false
}

type credentialsKey struct{}

// WithCredentials stores the caller in a context.
func WithCredentials(ctx context.Context, c *Credentials) context.Context {
	return context.WithValue(ctx, credentialsKey{}, c)
}

// FromContext returns the caller stored by WithCredentials.
func FromContext(ctx context.Context) (*Credentials, bool) {
	c, ok := ctx.Value(credentialsKey{}).(*Credentials)
	return c, ok && c != nil
}

// ErrUnauthorized is a missing, invalid or expired user token (HTTP 401).
var ErrUnauthorized = errors.New("the request you have made requires authentication")

// ErrUnavailable means the identity service could not be used (HTTP 503).
var ErrUnavailable = errors.New("identity service unavailable")

// NoAuthCredentials builds the noauth context from request headers.
func NoAuthCredentials(h http.Header) *Credentials {
	project := h.Get("X-Project-Id")
	if project == "" {
		project = h.Get("X-Tenant-Id")
	}
	var roles []string
	for _, r := range strings.Split(h.Get("X-Roles"), ",") {
		if r = strings.TrimSpace(r); r != "" {
			roles = append(roles, r)
		}
	}
	return &Credentials{
		UserID:      h.Get("X-User-Id"),
		UserName:    h.Get("X-User-Name"),
		ProjectID:   project,
		ProjectName: h.Get("X-Project-Name"),
		Roles:       roles,
		IsAdmin:     true,
	}
}

// TokenValidator validates a user token.
type TokenValidator interface {
	Validate(ctx context.Context, token string) (*Credentials, error)
}

// Middleware authenticates every request. With a nil validator it runs in
// noauth mode. wwwAuthenticateURI is the Keystone URL announced in the
// WWW-Authenticate header of 401 answers.
func Middleware(v TokenValidator, wwwAuthenticateURI string, log *slog.Logger, next http.Handler) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v == nil {
			next.ServeHTTP(w, r.WithContext(WithCredentials(r.Context(), NoAuthCredentials(r.Header))))
			return
		}
		token := r.Header.Get("X-Auth-Token")
		if token == "" {
			token = r.Header.Get("X-Storage-Token")
		}
		if token == "" {
			WriteUnauthorized(w, wwwAuthenticateURI)
			return
		}
		creds, err := v.Validate(r.Context(), token)
		switch {
		case errors.Is(err, ErrUnauthorized):
			log.InfoContext(r.Context(), "rejecting request with an invalid token")
			WriteUnauthorized(w, wwwAuthenticateURI)
			return
		case err != nil:
			log.ErrorContext(r.Context(), "token validation failed", "error", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": map[string]any{
				"code": http.StatusServiceUnavailable, "title": "Service Unavailable",
				"message": "The server is currently unavailable. Please try again at a later time.",
			}})
			return
		}
		next.ServeHTTP(w, r.WithContext(WithCredentials(r.Context(), creds)))
	})
}

// WriteUnauthorized writes keystonemiddleware's 401 answer.
func WriteUnauthorized(w http.ResponseWriter, wwwAuthenticateURI string) {
	if wwwAuthenticateURI != "" {
		w.Header().Set("WWW-Authenticate", `Keystone uri="`+wwwAuthenticateURI+`"`)
	}
	// keystonemiddleware's key order: code, title, message.
	body := `{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}`
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(body))
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
