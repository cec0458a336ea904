package gateway

import (
	"context"
	"net/http"
)

// apiVersions are the minor versions Ostia announces, with Octavia's dates.
// Ostia answers as Octavia 11 does: v2.0 to v2.26, the last one CURRENT.
var apiVersions = [...]struct{ id, updated string }{
	{"v2.0", "2016-12-11T00:00:00Z"}, {"v2.1", "2018-04-20T00:00:00Z"}, {"v2.2", "2018-07-31T00:00:00Z"},
	{"v2.3", "2018-12-18T00:00:00Z"}, {"v2.4", "2018-12-19T00:00:00Z"}, {"v2.5", "2019-01-21T00:00:00Z"},
	{"v2.6", "2019-01-25T00:00:00Z"}, {"v2.7", "2018-01-25T12:00:00Z"}, {"v2.8", "2019-02-12T00:00:00Z"},
	{"v2.9", "2019-03-04T00:00:00Z"}, {"v2.10", "2019-03-05T00:00:00Z"}, {"v2.11", "2019-06-24T00:00:00Z"},
	{"v2.12", "2019-09-11T00:00:00Z"}, {"v2.13", "2019-09-13T00:00:00Z"}, {"v2.14", "2019-11-10T00:00:00Z"},
	{"v2.15", "2020-03-10T00:00:00Z"}, {"v2.16", "2020-03-15T00:00:00Z"}, {"v2.17", "2020-04-29T00:00:00Z"},
	{"v2.18", "2020-04-29T01:00:00Z"}, {"v2.19", "2020-05-12T00:00:00Z"}, {"v2.20", "2020-08-02T00:00:00Z"},
	{"v2.21", "2020-09-03T00:00:00Z"}, {"v2.22", "2020-09-04T00:00:00Z"}, {"v2.23", "2020-09-07T00:00:00Z"},
	{"v2.24", "2020-10-15T00:00:00Z"}, {"v2.25", "2021-10-02T00:00:00Z"}, {"v2.26", "2022-08-29T00:00:00Z"},
}

type link struct {
	Href string `json:"href"`
	Rel  string `json:"rel"`
}

type version struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Updated string `json:"updated"`
	Links   []link `json:"links"`
}

// baseURL is the URL the client used to reach the API, for links.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request) {
	out := make([]version, len(apiVersions))
	self := []link{{Href: baseURL(r) + "/v2", Rel: "self"}}
	for i, v := range apiVersions {
		status := "SUPPORTED"
		if i == len(apiVersions)-1 {
			status = "CURRENT"
		}
		out[i] = version{ID: v.id, Status: status, Updated: v.updated, Links: self}
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": out})
}

// versionRoot answers GET /v2, /v2/lbaas and /v2/octavia with the JSON string "v2".
func (s *Server) versionRoot(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, "v2")
}

type requestIDKey struct{}

// WithRequestID stores the request id (the correlation id of the events the
// request causes) in a context.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id stored by WithRequestID.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
