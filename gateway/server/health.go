package server

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"
)

// ReadyCheckTimeout bounds each readiness check.
const ReadyCheckTimeout = 2 * time.Second

// Values of the readiness map.
const (
	checkOK          = "ok"
	checkUnavailable = "unavailable"
)

// Health returns the liveness and readiness handlers.
//
// healthz answers 200 "ok" whenever the process can serve a request.
//
// readyz runs every check concurrently, each with a 2 s timeout, and answers
// a JSON object of check name to "ok" or "unavailable": 200 when all pass,
// 503 (with Retry-After) when any fails, panics or times out. A check's
// error text is never shown (it might hold a connection string); only its
// name. The checks map is copied; later changes to it have no effect.
func Health(checks map[string]func(context.Context) error) (healthz, readyz http.Handler) {
	checks = maps.Clone(checks)
	healthz = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	})
	readyz = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		result := make(map[string]string, len(checks))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for name, check := range checks {
			wg.Go(func() {
				ok := runCheck(r.Context(), check)
				mu.Lock()
				defer mu.Unlock()
				if ok {
					result[name] = checkOK
				} else {
					result[name] = checkUnavailable
				}
			})
		}
		wg.Wait()
		status := http.StatusOK
		for _, v := range result {
			if v != checkOK {
				status = http.StatusServiceUnavailable
			}
		}
		body, _ := json.Marshal(result) // map[string]string always marshals
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", fmt.Sprint(RetryAfterSeconds))
		}
		w.WriteHeader(status)
		_, _ = w.Write(append(body, '\n'))
	})
	return healthz, readyz
}

// runCheck runs one check with ReadyCheckTimeout. A check that ignores its
// context is abandoned at the timeout (its goroutine finishes on its own);
// a panicking check counts as failed.
func runCheck(ctx context.Context, check func(context.Context) error) bool {
	if check == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, ReadyCheckTimeout)
	defer cancel()
	done := make(chan bool, 1)
	go func() {
		ok := false
		defer func() {
			_ = recover()
			done <- ok
		}()
		ok = check(ctx) == nil
	}()
	select {
	case ok := <-done:
		return ok && ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}
