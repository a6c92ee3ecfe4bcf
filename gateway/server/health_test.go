package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealth(t *testing.T) {
	ok := func(context.Context) error { return nil }
	secret := func(context.Context) error {
		return errors.New("postgres://gw:hunter2@db:5432/gw: connection refused")
	}
	for _, tc := range []struct {
		name   string
		checks map[string]func(context.Context) error
		status int
		want   map[string]string
	}{
		{"ok/none", nil, 200, map[string]string{}},
		{"ok/all", map[string]func(context.Context) error{"store": ok, "blob": ok}, 200,
			map[string]string{"store": "ok", "blob": "ok"}},
		{"fail/one", map[string]func(context.Context) error{"store": secret, "blob": ok}, 503,
			map[string]string{"store": "unavailable", "blob": "ok"}},
		{"fail/panic", map[string]func(context.Context) error{"store": func(context.Context) error { panic("boom") }}, 503,
			map[string]string{"store": "unavailable"}},
		{"fail/nil-check", map[string]func(context.Context) error{"store": nil}, 503,
			map[string]string{"store": "unavailable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			healthz, readyz := Health(tc.checks)
			w := httptest.NewRecorder()
			healthz.ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
			if w.Code != 200 || w.Body.String() != "ok\n" {
				t.Errorf("healthz: %d %q", w.Code, w.Body.String())
			}
			w = httptest.NewRecorder()
			readyz.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
			if w.Code != tc.status {
				t.Errorf("readyz status %d, want %d", w.Code, tc.status)
			}
			if strings.Contains(w.Body.String(), "hunter2") || strings.Contains(w.Body.String(), "boom") {
				t.Errorf("a check's error text leaked: %s", w.Body.String())
			}
			var got map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			if (w.Header().Get("Retry-After") != "") != (tc.status == 503) {
				t.Errorf("Retry-After %q with status %d", w.Header().Get("Retry-After"), w.Code)
			}
		})
	}
}

func TestHealthTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	_, readyz := Health(map[string]func(context.Context) error{
		"honest": func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
		"stuck":  func(context.Context) error { <-release; return nil }, // ignores its context
	})
	start := time.Now()
	w := httptest.NewRecorder()
	readyz.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
	if d := time.Since(start); d < ReadyCheckTimeout || d > ReadyCheckTimeout+time.Second {
		t.Errorf("readyz took %v", d)
	}
	if w.Code != 503 || !strings.Contains(w.Body.String(), `"honest":"unavailable"`) || !strings.Contains(w.Body.String(), `"stuck":"unavailable"`) {
		t.Errorf("status %d body %s", w.Code, w.Body.String())
	}
}

func TestHealthCopiesChecks(t *testing.T) {
	checks := map[string]func(context.Context) error{"store": func(context.Context) error { return nil }}
	_, readyz := Health(checks)
	checks["late"] = func(context.Context) error { return errors.New("x") }
	w := httptest.NewRecorder()
	readyz.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
	if w.Code != 200 {
		t.Errorf("status %d body %s", w.Code, w.Body.String())
	}
}
