package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rehabgw/rehabgw/gateway/errs"
)

// edgeServeProblem runs WriteProblem for err behind WithRequestID and the
// access log, and returns the response and the log.
func edgeServeProblem(t *testing.T, err error) (*httptest.ResponseRecorder, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	h := WithRequestID(AccessLog(zap.New(core), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteProblem(w, r, err)
	})))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/v1/x", nil))
	return w, logs
}

func TestWriteProblemKinds(t *testing.T) {
	for _, tc := range []struct {
		kind   errs.Kind
		status int
		title  string
	}{
		{errs.Invalid, 400, "Invalid request"},
		{errs.Unauthenticated, 401, "Authentication required"},
		{errs.Forbidden, 403, "Forbidden"},
		{errs.BadSignature, 403, "Signature not accepted"},
		{errs.NotFound, 404, "Not found"},
		{errs.Conflict, 409, "Conflict"},
		{errs.TooLarge, 413, "Request too large"},
		{errs.TooEarly, 425, "Too early"},
		{errs.Unavailable, 503, "Service unavailable"},
		{errs.Other, 500, "Internal error"},
		{errs.Kind(99), 500, "Internal error"},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			if got := StatusOf(tc.kind); got != tc.status {
				t.Errorf("StatusOf = %d, want %d", got, tc.status)
			}
			err := errs.E(tc.kind, "test.code", "safe message for %s", tc.kind).InPart("doc-1.xml").At(3, "/A/B")
			w, logs := edgeServeProblem(t, err)
			if w.Code != tc.status {
				t.Errorf("status %d, want %d", w.Code, tc.status)
			}
			if ct := w.Header().Get("Content-Type"); ct != ProblemContentType {
				t.Errorf("Content-Type %q", ct)
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Error("no Cache-Control: no-store")
			}
			wantRetry := ""
			if tc.status == 503 {
				wantRetry = "5"
			}
			if got := w.Header().Get("Retry-After"); got != wantRetry {
				t.Errorf("Retry-After %q, want %q", got, wantRetry)
			}
			var raw map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{
				"type":       ProblemTypeBase + "test.code",
				"title":      tc.title,
				"status":     float64(tc.status),
				"code":       "test.code",
				"detail":     "doc-1.xml:3: /A/B: safe message for " + tc.kind.String(),
				"request_id": w.Header().Get(RequestIDHeader),
			}
			if tc.status == 500 {
				want["detail"] = internalDetail
			}
			if fmt.Sprint(raw) != fmt.Sprint(want) {
				t.Errorf("body\n got %v\nwant %v", raw, want)
			}
			if !requestIDPattern.MatchString(w.Header().Get(RequestIDHeader)) {
				t.Errorf("request ID %q", w.Header().Get(RequestIDHeader))
			}
			// The cause of a 5xx goes to the access log.
			entry := logs.FilterMessage("request").All()
			if len(entry) != 1 {
				t.Fatalf("%d log entries", len(entry))
			}
			_, hasErr := entry[0].ContextMap()["error"]
			if hasErr != (tc.status >= 500) {
				t.Errorf("error in log = %v for status %d", hasErr, tc.status)
			}
		})
	}
}

func TestWriteProblemInternalTextNeverShown(t *testing.T) {
	secret := "dial tcp 10.0.0.7:5432: password authentication failed for user gw (cpr 0101011234)"
	for name, err := range map[string]error{
		"plain":         errors.New(secret),
		"wrapped-other": errs.Wrap(errs.Other, "", errors.New(secret), "%s", secret),
		"fmt-wrapped":   fmt.Errorf("store: %w", errors.New(secret)),
	} {
		t.Run(name, func(t *testing.T) {
			w, logs := edgeServeProblem(t, err)
			body := w.Body.String()
			if w.Code != 500 || strings.Contains(body, "password") || strings.Contains(body, "10.0.0.7") {
				t.Errorf("status %d body %s", w.Code, body)
			}
			var p Problem
			_ = json.Unmarshal(w.Body.Bytes(), &p)
			if p.Code != "internal" || p.Detail != internalDetail || p.Type != ProblemTypeBase+"internal" {
				t.Errorf("problem %+v", p)
			}
			logged := fmt.Sprint(logs.All()[0].ContextMap()["error"])
			if !strings.Contains(logged, "password authentication failed") {
				t.Errorf("the cause is not in the log: %q", logged)
			}
			if strings.Contains(logged, "0101011234") {
				t.Errorf("a CPR-like number reached the log: %q", logged)
			}
		})
	}
}

func TestWriteProblemList(t *testing.T) {
	list := errs.List{
		errs.E(errs.Invalid, "xsd.invalid", "element Navn is not expected").InPart("doc-1.xml").At(12, "/Dok/Navn"),
		errs.E(errs.Invalid, "xsd.invalid", "missing element Dato").InPart("doc-1.xml").At(20, ""),
		errs.E(errs.Other, "internal", "secret internals"),
	}
	w, _ := edgeServeProblem(t, fmt.Errorf("validate: %w", list))
	if w.Code != 400 {
		t.Fatalf("status %d", w.Code)
	}
	var p Problem
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatal(err)
	}
	want := Problem{
		Type: ProblemTypeBase + "xsd.invalid", Title: "Invalid request", Status: 400, Code: "xsd.invalid",
		Detail: "3 problems; the first: doc-1.xml:12: /Dok/Navn: element Navn is not expected",
		Errors: []ProblemItem{
			{Code: "xsd.invalid", Part: "doc-1.xml", Line: 12, Path: "/Dok/Navn", Message: "element Navn is not expected"},
			{Code: "xsd.invalid", Part: "doc-1.xml", Line: 20, Message: "missing element Dato"},
			{Code: "internal", Message: "internal error"},
		},
		ErrorsTotal: 3,
		RequestID:   w.Header().Get(RequestIDHeader),
	}
	if fmt.Sprintf("%+v", p) != fmt.Sprintf("%+v", want) {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}

	// A long list is capped.
	var long errs.List
	for i := range 250 {
		long = append(long, errs.E(errs.Invalid, "xsd.invalid", "error %d", i))
	}
	w, _ = edgeServeProblem(t, long)
	p = Problem{}
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	if len(p.Errors) != MaxProblemItems || p.ErrorsTotal != 250 {
		t.Errorf("%d items, total %d", len(p.Errors), p.ErrorsTotal)
	}
}

func TestWriteProblemMaxBytes(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 10))
		WriteProblem(w, r, err)
	})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", 100))))
	if w.Code != 413 || !strings.Contains(w.Body.String(), `"code":"request.too_large"`) {
		t.Errorf("status %d body %s", w.Code, w.Body.String())
	}
}

func TestWriteProblemAfterResponseStarted(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	h := WithRequestID(AccessLog(zap.New(core), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "partial")
		WriteProblem(w, r, errs.E(errs.Invalid, "late", "too late"))
	})))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 200 || w.Body.String() != "partial" {
		t.Errorf("status %d body %q", w.Code, w.Body.String())
	}
	if got := fmt.Sprint(logs.All()[0].ContextMap()["error"]); !strings.Contains(got, "after the response started") {
		t.Errorf("log error %q", got)
	}
}

func TestWriteProblemWithoutRequestID(t *testing.T) {
	w := httptest.NewRecorder()
	WriteProblem(w, httptest.NewRequest("GET", "/", nil), errs.E(errs.NotFound, "x.not_found", "no such thing"))
	var raw map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &raw)
	if _, ok := raw["request_id"]; ok || w.Code != 404 {
		t.Errorf("status %d body %v", w.Code, raw)
	}
}
