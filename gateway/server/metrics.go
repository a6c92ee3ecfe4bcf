package server

// Observability: request IDs, the access log, route recording and the
// Prometheus metrics. The layers share one per-request record (reqInfo) in
// the context, so that the outer layers see the route pattern the mux chose
// and the organisation Identify found, although every inner layer that adds
// a context value works on a shallow copy of the request.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

// RequestIDHeader is the response header that carries the request ID.
const RequestIDHeader = "X-Request-ID"

// routeUnmatched is the route label of a request no pattern matched; the raw
// path is never a label or a log field (unbounded, and it is the caller's).
const routeUnmatched = "unmatched"

type reqInfoKey struct{}

// reqInfo is the mutable per-request record the layers share.
type reqInfo struct {
	id    string
	start time.Time
	route string // the mux pattern, set by RecordRoute
	org   string // the caller's organisation ID, set by Identify
	err   error  // an internal error WriteProblem answered with a generic 500
	sw    *statusWriter
}

func infoFrom(ctx context.Context) *reqInfo {
	ri, _ := ctx.Value(reqInfoKey{}).(*reqInfo)
	return ri
}

// RequestID returns the request's ID (128 random bits, hex), or "" outside
// WithRequestID.
func RequestID(ctx context.Context) string {
	if ri := infoFrom(ctx); ri != nil {
		return ri.id
	}
	return ""
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// WithRequestID gives every request a fresh random 128-bit ID, in the
// context (RequestID) and in the X-Request-ID response header. An
// X-Request-ID sent by the client is ignored: the ID must be unique and
// safe to log.
func WithRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if infoFrom(r.Context()) != nil {
			next.ServeHTTP(w, r)
			return
		}
		ri := &reqInfo{id: newRequestID(), start: time.Now()}
		ri.sw = &statusWriter{ResponseWriter: w}
		w.Header().Set(RequestIDHeader, ri.id)
		next.ServeHTTP(ri.sw, r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri)))
	})
}

// withInfo runs fn with the request's record, creating it (and the request
// ID) first when no WithRequestID layer is outside.
func withInfo(w http.ResponseWriter, r *http.Request, fn func(w http.ResponseWriter, r *http.Request, ri *reqInfo)) {
	if ri := infoFrom(r.Context()); ri != nil {
		fn(w, r, ri)
		return
	}
	WithRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fn(w, r, infoFrom(r.Context()))
	})).ServeHTTP(w, r)
}

// RecordRoute records the route pattern the mux matched (r.Pattern, Go
// 1.22 patterns such as "GET /v1/bundles/{id}") for the access log and the
// metrics. Wrap the mux with it directly: the mux sets r.Pattern on the
// request it receives.
func RecordRoute(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { // deferred: a panicking handler still has a route
			if ri := infoFrom(r.Context()); ri != nil && r.Pattern != "" {
				ri.route = r.Pattern
			}
		}()
		mux.ServeHTTP(w, r)
	})
}

// routeFallback names the route of a request that an outer layer
// (Identify) answered before the mux saw it, by asking the mux which pattern
// it would have chosen.
func routeFallback(mux http.Handler, next http.Handler) http.Handler {
	sm, ok := mux.(*http.ServeMux)
	if !ok {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		if ri := infoFrom(r.Context()); ri != nil && ri.route == "" {
			if _, p := sm.Handler(r); p != "" {
				ri.route = p
			}
		}
	})
}

// statusWriter records the status and the body size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Flush passes flushes on (long-polling and streamed downloads need them).
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush() // best effort, like http.Flusher
}

// Unwrap lets http.ResponseController reach the transport's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// code returns the status sent, 200 if the handler wrote nothing.
func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

func (ri *reqInfo) routeLabel() string {
	if ri.route == "" {
		return routeUnmatched
	}
	return ri.route
}

// AccessLog writes one log line per request with fixed keys: request_id,
// org, route (the mux pattern, never the raw path or query), method,
// status, bytes, duration and transport (h3|tcp); "error" (redacted) when
// the request ended in an internal error. Bodies, headers and query values
// are never logged. 5xx responses are logged at Error level, others at
// Info.
func AccessLog(log *zap.Logger, next http.Handler) http.Handler {
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("access")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		withInfo(w, r, func(w http.ResponseWriter, r *http.Request, ri *reqInfo) {
			panicked := true
			defer func() {
				status := ri.sw.code()
				if panicked {
					status = 500 // net/http aborts the response; record it as failed
				}
				level := zapcore.InfoLevel
				if status >= 500 {
					level = zapcore.ErrorLevel
				}
				if ce := log.Check(level, "request"); ce != nil {
					fields := []zap.Field{
						zap.String("request_id", ri.id),
						zap.String("org", ri.org),
						zap.String("route", ri.routeLabel()),
						zap.String("method", methodLabel(r.Method)),
						zap.Int("status", status),
						zap.Int64("bytes", ri.sw.bytes),
						zap.Duration("duration", time.Since(ri.start)),
						zap.String("transport", Transport(r)),
					}
					if ri.err != nil {
						fields = append(fields, zap.String("error", errs.Redact(ri.err.Error())))
					}
					ce.Write(fields...)
				}
			}()
			next.ServeHTTP(w, r)
			panicked = false
		})
	})
}

// Metrics holds the gateway's HTTP metrics.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics creates the HTTP metrics and registers them with reg (a new
// registry if reg is nil):
//
//	rehabgw_http_requests_total{route,method,status,transport}
//	rehabgw_http_request_duration_seconds{route,method,transport}
//
// route is the mux pattern ("unmatched" when none matched), method one of
// the standard methods or "OTHER", transport "h3" or "tcp".
func NewMetrics(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rehabgw", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests by route pattern, method, status and transport.",
		}, []string{"route", "method", "status", "transport"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "rehabgw", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "HTTP request latency by route pattern, method and transport.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "method", "transport"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// Middleware counts and times every request.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		withInfo(w, r, func(w http.ResponseWriter, r *http.Request, ri *reqInfo) {
			panicked := true
			defer func() {
				status := ri.sw.code()
				if panicked {
					status = 500
				}
				route, method, tr := ri.routeLabel(), methodLabel(r.Method), Transport(r)
				m.requests.WithLabelValues(route, method, strconv.Itoa(status), tr).Inc()
				m.duration.WithLabelValues(route, method, tr).Observe(time.Since(ri.start).Seconds())
			}()
			next.ServeHTTP(w, r)
			panicked = false
		})
	})
}

// Handler serves the registry in the Prometheus exposition format (mount
// it at /metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// methodLabel bounds the method label to the standard methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// recordInternal keeps an internal error for the access log line.
func recordInternal(r *http.Request, err error) {
	if ri := infoFrom(r.Context()); ri != nil {
		ri.err = errors.Join(ri.err, err)
	}
}
