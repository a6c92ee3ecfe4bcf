package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestMetricsAndRoutes(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	core, logs := observer.New(zapcore.InfoLevel)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/bundles/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) })
	h := WithRequestID(AccessLog(zap.New(core), m.Middleware(RecordRoute(mux))))

	for _, target := range []string{"/v1/bundles/B-1", "/v1/bundles/B-2", "/nowhere/0101011234"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
	}
	req := httptest.NewRequest("BREW", "/v1/bundles/B-3", nil)
	h.ServeHTTP(httptest.NewRecorder(), req)
	func() {
		defer func() { _ = recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/panic", nil))
	}()

	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	text, _ := io.ReadAll(w.Body)
	for _, want := range []string{
		`rehabgw_http_requests_total{method="GET",route="GET /v1/bundles/{id}",status="202",transport="tcp"} 2`,
		`rehabgw_http_requests_total{method="GET",route="unmatched",status="404",transport="tcp"} 1`,
		`rehabgw_http_requests_total{method="OTHER",route="unmatched",status="405",transport="tcp"} 1`,
		`rehabgw_http_requests_total{method="GET",route="GET /panic",status="500",transport="tcp"} 1`,
		`rehabgw_http_request_duration_seconds_count{method="GET",route="GET /v1/bundles/{id}",transport="tcp"} 2`,
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("metrics lack %s\n%s", want, text)
		}
	}
	entries := logs.FilterMessage("request").All()
	if len(entries) != 5 {
		t.Errorf("%d access log entries, want 5", len(entries))
	}
	for _, e := range entries {
		s := fmt.Sprint(e.ContextMap())
		if strings.Contains(s, "0101011234") || strings.Contains(s, "B-1") {
			t.Errorf("a raw path reached the log: %s", s)
		}
	}
}
