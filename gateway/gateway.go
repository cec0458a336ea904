// Package gateway is Ostia's Octavia-v2-compatible REST API. This file holds
// the server skeleton: request ids, Octavia's fault bodies, version discovery
// and metrics. Resource handlers turn requests into aggregate commands and
// read the projections.
package gateway

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ostia/ostia/internal/qos"
)

// Config configures the gateway.
type Config struct {
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	// API, when set, serves the Octavia v2 resources; without it only
	// version discovery answers.
	API *API
	// Foreground, when set, is told about every write request (POST, PUT,
	// PATCH, DELETE) while it is served, so background work in the same
	// process can yield to it.
	Foreground *qos.Gate
}

// Server is the HTTP API.
type Server struct {
	fg       *qos.Gate
	log      *slog.Logger
	mux      *http.ServeMux
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New builds the API server.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		fg:  cfg.Foreground,
		log: cfg.Logger,
		mux: http.NewServeMux(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ostia_api_requests_total", Help: "API requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ostia_api_request_seconds", Help: "API request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route"}),
	}
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{s.requests, s.latency} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, err
			}
		}
	}
	s.handle("GET /{$}", "versions", s.versions)
	for _, p := range []string{"/v2", "/v2.0", "/v2/lbaas", "/v2.0/lbaas", "/v2/octavia", "/v2.0/octavia"} {
		s.handle("GET "+p+"/{$}", "version", s.versionRoot)
		s.handle("GET "+p, "version", s.versionRoot)
	}
	if cfg.API != nil {
		if cfg.API.Commands == nil || cfg.API.Views == nil {
			return nil, errors.New("gateway: API needs Commands and Views")
		}
		s.registerResources(&api{cfg: *cfg.API, log: cfg.Logger})
	}
	s.handle("/", "unknown", func(w http.ResponseWriter, r *http.Request) {
		WriteFault(w, http.StatusNotFound, "The resource could not be found.")
	})
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// handle registers a route with request ids, Accept checking, logging and metrics.
func (s *Server) handle(pattern, route string, h http.HandlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			defer s.fg.Enter()()
		}
		start := time.Now()
		reqID := "req-" + uuid.NewString()
		w.Header().Set("x-openstack-request-id", reqID)
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		if !acceptsJSON(r.Header.Get("Accept")) {
			writeNotAcceptable(rec, reqID)
		} else {
			h(rec, r.WithContext(WithRequestID(r.Context(), reqID)))
		}
		s.requests.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
		s.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
		s.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "status", rec.code,
			"request_id", reqID, "duration", time.Since(start))
	})
}

// acceptsJSON reports whether an Accept header allows application/json.
func acceptsJSON(accept string) bool {
	if accept == "" {
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		mt := strings.TrimSpace(strings.SplitN(part, ";", 2)[0])
		if mt == "*/*" || mt == "application/*" || mt == "application/json" {
			return true
		}
	}
	return false
}

// writeNotAcceptable answers 406 in the API-WG error format Octavia uses for it.
func writeNotAcceptable(w http.ResponseWriter, reqID string) {
	writeJSON(w, http.StatusNotAcceptable, map[string]any{"errors": []map[string]any{{
		"status": http.StatusNotAcceptable, "title": "Not Acceptable",
		"detail": "Only content type application/json is accepted.", "request_id": reqID,
	}}})
}

// Fault is Octavia's error body.
type Fault struct {
	FaultCode   string  `json:"faultcode"`
	FaultString string  `json:"faultstring"`
	DebugInfo   *string `json:"debuginfo"`
}

// WriteFault writes Octavia's error body: faultcode "Client" for 4xx and
// "Server" for 5xx, debuginfo null.
func WriteFault(w http.ResponseWriter, status int, msg string) {
	code := "Client"
	if status >= 500 {
		code = "Server"
	}
	writeJSON(w, status, Fault{FaultCode: code, FaultString: msg})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"faultcode": "Server", "faultstring": "response encoding failed", "debuginfo": null}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
