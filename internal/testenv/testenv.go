// Package testenv lets tests depend on external tools and servers honestly:
// when one is missing the test is skipped with a visible reason on a
// developer's machine, and fails under CI (CI=true), where .ci/run provides
// everything, so the gate cannot rot silently.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (the CI environment variable is "true").
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test (or fails it under CI) because of what is missing.
func Missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("required under CI but missing: %s", what)
	}
	t.Skipf("skipped: %s (run `make test` or .ci/run to provide it)", what)
}

// RequireTool returns the path of a command-line tool, or skips/fails the test.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" not on PATH")
	}
	return p
}
